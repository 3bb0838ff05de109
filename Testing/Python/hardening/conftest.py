"""Fixtures of the hardening tests; puts this folder on ``sys.path`` so tests import ``hardhelpers``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(scope="session")
def synthetic_case():
    """One small synthetic abdomen CT (2 mm voxels, LPS), generated once per session."""
    from VertebralFractureLib.synth import generate_case

    return generate_case(0, "abdomen", spacing=(2.0, 2.0, 2.0))


@pytest.fixture(scope="session")
def orientations(synthetic_case):
    """The synthetic CT written in several orientations: name -> SimpleITK image (same anatomy)."""
    import SimpleITK as sitk
    from hardhelpers import oblique

    ct = synthetic_case.ct
    return {
        "LPS": ct,
        "RAS": sitk.DICOMOrient(ct, "RAS"),  # two axes flipped
        "PIR": sitk.DICOMOrient(ct, "PIR"),  # axes permuted (a sagittal acquisition)
        "oblique": oblique(ct, (0.10, 0.05, 0.15)),  # about 6, 3 and 9 degrees
    }


@pytest.fixture(scope="session")
def analyses(orientations):
    """name -> (centre-line, result or None): the whole analysis when the keypoint weights exist."""
    import torch
    from hardhelpers import keypoint_weights_missing

    from VertebralFractureLib.io.images import to_canonical
    from VertebralFractureLib.pipeline import AnalysisOptions, analyze
    from VertebralFractureLib.spine.centreline import find_centreline

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        found = {}
        for name, image in orientations.items():
            if keypoint_weights_missing():
                found[name] = (find_centreline(to_canonical(image)), None)
            else:
                analysis = analyze(image, AnalysisOptions(masks=False, device="cpu"))
                found[name] = (analysis.centreline, analysis.result)
        return found
    finally:
        torch.set_num_threads(before)
