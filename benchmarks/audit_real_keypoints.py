"""Audit the hand-placed keypoints of the real reference CTs against the image: where is each endplate border?

Usage::

    OMP_NUM_THREADS=1 python benchmarks/audit_real_keypoints.py [--cases sample_ct cptac_chest ...] [--json out.json]

A reference point that sits in the disc instead of on the endplate makes every keypoint and height
error measured against it wrong by as much, so the reference itself is checked here, independently of
any analysis result. For each keypoint of a reference vertebra (``Testing/Data/real/reference``) the CT
is read along the body's own superior axis (from the six reference points: mean superior minus mean
inferior point) through the point, averaged over +-1.5 mm laterally and +-0.75 mm antero-posteriorly
(trilinear, 0.25 mm steps, original voxels). On that profile:

* the endplate's cortical peak is the brightest sample from 8 mm inside the point to 4 mm outside it;
* the disc is the darkest sample up to 8 mm beyond that peak (outward: upwards for a superior point);
* the border is where the profile falls to half-way between the two (the full-width-at-half-maximum
  convention for the edge of a blurred plate).

It prints the signed distance of the reference point from that border (positive = outward, into the
disc) for every point, and per case the mean and the mean absolute value. The border rule is a
measurement, not ground truth: a bright artefact inside the body (a bone island) can take the peak, so
every flagged point is to be looked at on the body's mid-sagittal PNG before a reference is changed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: Search for the cortical peak: this far inside the point ...
PEAK_INSIDE_MM = 8.0
#: ... to this far outside it (mm).
PEAK_OUTSIDE_MM = 4.0
#: The disc minimum is looked for up to this far beyond the peak (mm).
DISC_MM = 8.0
#: Lateral and antero-posterior half-offsets (mm) of the averaged profiles.
LATERAL_MM = (-1.5, 0.0, 1.5)
AP_MM = (-0.75, 0.0, 0.75)
STEP_MM = 0.25


def half_max_border(positions: np.ndarray, profile: np.ndarray, point: float, outward: float) -> Optional[Dict]:
    """Peak, disc and half-maximum border of one endplate on a profile (None when no peak/disc pair is found).

    Args:
        positions: (n,) sample positions along the body's superior axis (mm), increasing.
        profile: (n,) HU at ``positions``.
        point: the reference point's position (mm).
        outward: +1 for a superior point (the disc is above), -1 for an inferior one.

    Returns:
        ``{"peak", "peak_hu", "disc", "disc_hu", "border", "offset"}``; ``offset`` is the point's signed
        distance from the border, positive outward (into the disc).

    """
    depth = (positions - point) * outward
    window = np.flatnonzero((depth >= -PEAK_INSIDE_MM) & (depth <= PEAK_OUTSIDE_MM))
    if len(window) == 0:
        return None
    peak = int(window[np.argmax(profile[window])])
    beyond = np.flatnonzero(((positions - positions[peak]) * outward > 0)
                            & ((positions - positions[peak]) * outward <= DISC_MM))
    if len(beyond) == 0:
        return None
    disc = int(beyond[np.argmin(profile[beyond])])
    half = 0.5 * (profile[peak] + profile[disc])
    step = 1 if disc > peak else -1
    k = peak
    while k != disc and profile[k] > half:
        k += step
    if k == peak:
        return None
    before = k - step
    fraction = (profile[before] - half) / (profile[before] - profile[k])
    border = float(positions[before] + fraction * (positions[k] - positions[before]))
    return {"peak": float(positions[peak]), "peak_hu": float(profile[peak]), "disc": float(positions[disc]),
            "disc_hu": float(profile[disc]), "border": border, "offset": float((point - border) * outward)}


def audit_case(case: str) -> List[Dict]:
    """One row per reference keypoint of ``case`` (see :func:`half_max_border` for the fields)."""
    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.spine.straighten import sample_image
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case(case)
    image = read_image(reference.image_path)
    rows = []
    for vertebra in reference.vertebrae:
        if vertebra.keypoints is None:
            continue
        points = np.asarray(vertebra.keypoints, float).reshape(6, 3)
        superior = points[0::2].mean(0) - points[1::2].mean(0)
        superior /= np.linalg.norm(superior)
        posterior = points[4:6].mean(0) - points[0:2].mean(0)
        posterior -= posterior.dot(superior) * superior
        posterior /= np.linalg.norm(posterior)
        lateral = np.cross(posterior, superior)
        for index, point in enumerate(points):
            outward = 1.0 if index % 2 == 0 else -1.0
            along = np.arange(-PEAK_INSIDE_MM - DISC_MM - 4, PEAK_INSIDE_MM + DISC_MM + 4 + 1e-6, STEP_MM)
            grid = np.array([[point + t * superior + a * posterior + w * lateral for t in along]
                             for a in AP_MM for w in LATERAL_MM])
            profile = np.nanmean(sample_image(image, grid, fill=np.nan), axis=0)
            found = half_max_border(along, profile, 0.0, outward)
            row = {"case": case, "level": vertebra.label, "index": index, "superior": outward > 0}
            if found is not None:
                row.update(found)
                row["border_lps"] = [round(float(c), 2) for c in point + found["border"] * superior]
            rows.append(row)
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    """Print the audit table; optionally write it as JSON."""
    from VertebralFractureLib.training.real.reference import list_cases, load_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=None, help="reference cases (default: every case with keypoints)")
    parser.add_argument("--json", type=Path, default=None, help="write the rows here")
    args = parser.parse_args(argv)
    cases = args.cases or [c for c in list_cases() if any(v.keypoints is not None for v in load_case(c).vertebrae)]
    every = []
    for case in cases:
        rows = audit_case(case)
        every += rows
        print(f"{case}")
        for row in rows:
            side = "sup" if row["superior"] else "inf"
            if "border" not in row:
                print(f"  {row['level']:4s} {row['index']} {side}  no endplate peak / disc pair found")
                continue
            print(f"  {row['level']:4s} {row['index']} {side}  cortex peak {row['peak']:+5.1f} mm "
                  f"({row['peak_hu']:4.0f} HU)"
                  f"  disc {row['disc']:+5.1f} ({row['disc_hu']:4.0f})  point - border {row['offset']:+.1f} mm")
        offsets = np.array([r["offset"] for r in rows if "offset" in r])
        if len(offsets):
            print(f"  {case}: {len(offsets)} points, mean {offsets.mean():+.2f} mm (+ = into the disc), "
                  f"mean |offset| {np.abs(offsets).mean():.2f} mm, |offset| > 1.5 mm: {(np.abs(offsets) > 1.5).sum()}")
    if args.json:
        args.json.write_text(json.dumps(every, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
