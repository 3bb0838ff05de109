"""CTs masked to one vertebra: G against the mask or the truth, real and generated.

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_masked_ct.py [--generated 6]

Real: the VerSe sub-verse004 L2 crop of Bonelab's spineFE benchmark (masked to its bone) against its sub-region mask
(body labels 1-2, the reference keypoints of ``Testing/Data/real/reference/verse004_L2_crop.json``), and the real
TPTBox CT masked here to its L3 label against the reference keypoints measured on its body sub-regions. Generated:
each vertebra wholly in view of ``--generated`` held-out spines (seeds 910000 on, preset ``spine``) masked out of its
CT the same way (the CT kept inside the vertebra's label, 0 elsewhere) and analysed as a user would
(:func:`VertebralFractureLib.pipeline.analyze`; file names without a level, so the level is reported unknown), against
the generator's keypoints. Printed: how many are measured, |G error| (mean, largest) and grades off the truth's.
See docs/findings.md "A CT masked to one vertebra, and masks whose header has front and back swapped".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "Testing" / "Data" / "real"


def _g(points) -> float:
    from VertebralFractureLib.genant import genant_index, heights

    return float(genant_index(heights(np.asarray(points, dtype=np.float64))))


def _masked(ct, mask_array: np.ndarray, label: int):
    """``ct`` with every voxel outside ``label`` set to 0 (as the real crop is)."""
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(ct).astype(np.float32)
    masked = sitk.GetImageFromArray(np.where(mask_array == label, array, 0.0).astype(np.float32))
    masked.CopyInformation(ct)
    return masked


def main(argv: Optional[List[str]] = None) -> int:
    """Print the real lines and the generated totals."""
    import SimpleITK as sitk

    from VertebralFractureLib.genant import grade_from_reduction
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.training.real.reference import load_case
    from VertebralFractureLib.validation import InputError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=6, help="generated spines (0: the real cases only)")
    args = parser.parse_args(argv)

    crop = analyze(REAL / "verse004_L2_crop" / "sub-verse004_0000_vertebra_21_im.nii.gz").result.vertebrae[0]
    reference = load_case("verse004_L2_crop").vertebrae[0]
    print(f"real VerSe L2 crop: {crop.status}, |G error| {abs(crop.measure.G - _g(reference.keypoints)):.3f}, grade "
          f"{crop.measure.grade} (radiologists 0)")
    ct = sitk.ReadImage(str(REAL / "tptbox" / "sub-ct_label-22_ct.nii.gz"))
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(REAL / "tptbox" / "sub-ct_seg-vert_label-22_msk.nii.gz")))
    l3 = next(v for v in load_case("tptbox_L3").vertebrae if v.label == "L3")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tptbox_masked.nii.gz"
        sitk.WriteImage(_masked(ct, labels, 22), str(path))
        tptbox = analyze(path).result.vertebrae[0]
    print(f"real TPTBox CT masked to L3: {tptbox.status}, |G error| {abs(tptbox.measure.G - _g(l3.keypoints)):.3f} "
          "against its body sub-regions")
    if not args.generated:
        return 0

    from VertebralFractureLib.levels import label_from_level
    from VertebralFractureLib.synth import generate_case

    errors, grades_off, unknown, refused, tried = [], 0, 0, 0, 0
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(910000, 910000 + args.generated):
            case = generate_case(seed, "spine")
            vert = sitk.GetArrayFromImage(case.vert_mask)
            for truth in case.truth.vertebrae:
                if truth.keypoints is None or getattr(truth, "in_view", "full") != "full":
                    continue
                label = label_from_level(truth.label)
                if not (vert == label).any():
                    continue
                tried += 1
                path = Path(folder) / f"seed{seed}_{tried}.nii.gz"  # no level in the name
                sitk.WriteImage(_masked(case.ct, vert, label), str(path))
                try:
                    result = analyze(path).result
                    measured = result.vertebrae[0]
                except InputError:
                    refused += 1
                    continue
                if measured.measure is None:
                    refused += 1
                    continue
                true_g = _g(truth.keypoints)
                errors.append(abs(measured.measure.G - true_g))
                grades_off += int(measured.measure.grade != grade_from_reduction(1.0 - true_g))
                unknown += int(result.patient["levels"]["certain"] is False)
    print(f"generated ({args.generated} spines): {tried} vertebrae masked out, measured {len(errors)}, refused or not "
          f"assessed {refused}; |G error| mean {np.mean(errors):.3f}, largest {np.max(errors):.3f}; grade off the "
          f"truth's {grades_off}; level reported unknown {unknown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
