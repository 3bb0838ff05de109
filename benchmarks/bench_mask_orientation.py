"""Masks whose header has front and back swapped, and vertebrae alone: the same grades as the whole mask read right?

Usage::

    OMP_NUM_THREADS=2 python benchmarks/bench_mask_orientation.py [--generated 6]

Each real vertebra mask of ``Testing/Data/real`` (VerSe sub-verse004, sample001 from ``../shared`` when present,
TPTBox) and each generated spine (``--generated N``, held-out seeds 910000 on, preset ``spine``) is measured as given
and mirrored front to back (the voxels flipped along the image axis that runs antero-posteriorly, the header kept:
the arch then lies in front of the body in the image's axes, as in the real Bonelab crop of sub-verse004 L2).
Printed per mask: vertebrae measured both ways, how many change grade, the largest change of G, and for the generated
spines the mean |G error| of the mask as given against the generator's truth. For the real masks also each vertebra
alone (its label only, as a single-structure file or a masked crop gives it): how many are measured and keep the grade
they have in the whole mask (alone a vertebra has no neighbour to be compared with, so a grade can differ). See
docs/findings.md "A CT masked to one vertebra, and masks whose header has front and back swapped".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "Testing" / "Data" / "real"
MASKS = {
    "sub-verse004": REAL / "verse" / "sub-verse004_seg-vert_msk.nii.gz",
    "sample001": REPO.parent / "shared" / "data" / "real" / "verse_sample001" / "sub-sample001_seg-vert_msk.nii.gz",
    "tptbox": REAL / "tptbox" / "sub-ct_seg-vert_label-22_msk.nii.gz",
}


def mirrored(image):
    """``image`` with its voxels flipped along the axis that runs front to back (LPS y), the header kept."""
    import SimpleITK as sitk

    axis = 2 - int(np.argmax(np.abs(np.asarray(image.GetDirection()).reshape(3, 3)[1])))
    flipped = sitk.GetImageFromArray(np.flip(sitk.GetArrayFromImage(image), axis=axis).copy())
    flipped.CopyInformation(image)
    return flipped


def compare(image) -> tuple:
    """(vertebrae measured both ways, grade changes, largest |G change|, the result as given)."""
    from VertebralFractureLib.shape.measure import measure_from_mask

    given, flipped = measure_from_mask(image), measure_from_mask(mirrored(image))
    pairs = [(a, b) for a, b in zip(given.vertebrae, flipped.vertebrae) if a.measure and b.measure]
    changes = sum(a.measure.grade != b.measure.grade for a, b in pairs)
    largest = max((abs(a.measure.G - b.measure.G) for a, b in pairs), default=0.0)
    return len(pairs), changes, largest, given


def lone_measure(image, level: str):
    """The vertebra ``level`` of a mask measured with its label alone (None when it cannot be measured)."""
    import SimpleITK as sitk

    from VertebralFractureLib.levels import label_from_level
    from VertebralFractureLib.shape.measure import measure_from_mask

    array = sitk.GetArrayFromImage(image)
    alone = sitk.GetImageFromArray(np.where(array == label_from_level(level), array, 0).astype(array.dtype))
    alone.CopyInformation(image)
    vertebra = measure_from_mask(alone).vertebrae[0]
    return vertebra if vertebra.measure is not None else None


def main(argv: Optional[List[str]] = None) -> int:
    """Print one line per mask and the totals."""
    import SimpleITK as sitk

    from VertebralFractureLib.genant import heights

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=6, help="generated spines (0: real masks only)")
    args = parser.parse_args(argv)
    for name, path in MASKS.items():
        if not path.exists():
            print(f"{name}: {path} not found, skipped")
            continue
        image = sitk.ReadImage(str(path))
        n, changes, largest, given = compare(image)
        print(f"real {name}: {n} vertebrae, grade changed when mirrored {changes}, largest |G change| {largest:.3f}")
        alone = [lone_measure(image, vertebra.label) for vertebra in given.vertebrae if vertebra.measure is not None]
        kept = [(v, a) for v, a in zip([v for v in given.vertebrae if v.measure is not None], alone) if a is not None]
        print(f"real {name}, each vertebra alone: measured {len(kept)} of {len(alone)}, same grade "
              f"{sum(v.measure.grade == a.measure.grade for v, a in kept)}, largest |G change| "
              f"{max((abs(v.measure.G - a.measure.G) for v, a in kept), default=0.0):.3f}")
    if args.generated:
        from VertebralFractureLib.synth import generate_case

        total, changed, worst, errors = 0, 0, 0.0, []
        for seed in range(910000, 910000 + args.generated):
            case = generate_case(seed, "spine")
            n, changes, largest, given = compare(case.vert_mask)
            total, changed, worst = total + n, changed + changes, max(worst, largest)
            truth = {v.label: v for v in case.truth.vertebrae if v.keypoints is not None}
            for vertebra in given.vertebrae:
                if vertebra.measure is not None and vertebra.label in truth:
                    h = heights(np.asarray(truth[vertebra.label].keypoints))
                    errors.append(abs(vertebra.measure.G - h.min() / h.max()))
        print(f"generated ({args.generated} spines): {total} vertebrae, grade changed when mirrored {changed}, largest "
              f"|G change| {worst:.3f}; |G error| against the truth as given {np.mean(errors):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
