"""Determinism: the same input gives the same result, bit for bit, on the CPU (timings excluded)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hardhelpers import keypoint_weights_missing

from VertebralFractureLib.io.images import to_canonical
from VertebralFractureLib.pipeline import AnalysisOptions, analyze
from VertebralFractureLib.spine import straighten
from VertebralFractureLib.spine.centreline import find_centreline


def _without_timings(result) -> dict:
    document = json.loads(result.to_json())
    document.pop("timings_s")
    return document


def test_centreline_and_mid_sagittal_are_bit_identical_on_a_second_run(synthetic_case, analyses):
    first = analyses["LPS"][0]  # computed once for the session (by the pipeline when its weights exist)
    canonical = to_canonical(synthetic_case.ct)
    again = find_centreline(canonical)
    for name in ("points", "confidence", "slice_points", "presence", "spread_mm"):
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert np.array_equal(straighten(canonical, first).mid_sagittal(), straighten(canonical, again).mid_sagittal())


@pytest.mark.skipif(keypoint_weights_missing(), reason="keypoint detector weights (weights/keypoints.pt) not shipped")
def test_the_whole_analysis_is_bit_identical_on_a_second_run(synthetic_case, analyses):
    first = analyses["LPS"][1]
    again = analyze(synthetic_case.ct, AnalysisOptions(masks=False, device="cpu")).result
    assert first.vertebrae, "nothing detected: the comparison would be empty"
    assert _without_timings(first) == _without_timings(again)


def test_reading_and_checking_are_bit_identical(synthetic_case, tmp_path):
    import SimpleITK as sitk

    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(synthetic_case.ct, str(path))
    one = analyze(path, AnalysisOptions(keypoints=False, masks=False)).result
    two = analyze(path, AnalysisOptions(keypoints=False, masks=False)).result
    assert _without_timings(one) == _without_timings(two)
