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
disc) for every point, and per case the mean and the mean absolute value.

The anterior and posterior points are also read across the body (``wall`` rows): along the body's
antero-posterior axis through the point moved :data:`WALL_INSET_MM` into the body along its superior axis
(so the profile crosses the anterior or posterior wall just inside the endplate, not the endplate's own
plate), averaged over +-1.5 mm laterally and +-0.75 mm along the superior axis. The wall's cortical peak,
the darker tissue outside it (prevertebral fat and ligament, or the canal) and the half-maximum border are
found as above. The project's anterior and posterior keypoints on real bodies sit the larger of 1.5 mm and 8 %
of the body's depth inside its outer border (``keypoints.refine.CT_INSET_MM`` / ``CT_INSET_FRACTION``, the
convention of the mask measure that gave the TPTBox and VerSe reference points), so a wall row prints the
point's signed distance from that position (positive = outside it) and, where the wall is measured
(:data:`WALL_MIN_CONTRAST_HU`), ``corrected_lps``: the point moved there along the antero-posterior axis.

The border rule is a measurement, not ground truth: a bright artefact inside the body (a bone island) can
take the peak, so every flagged point is to be looked at on the body's mid-sagittal PNG before a reference is changed.
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
#: Wall rows: the profile across the body runs this far inside the endplate (mm) ...
WALL_INSET_MM = 3.0
#: A wall's cortical peak is looked for up to this far outside the point (mm): a column of points on a vertical
#: line through a tilted body lies up to about 6 mm inside one of its walls.
WALL_PEAK_OUTSIDE_MM = 8.0
#: A wall row is measured (``corrected_lps`` given) only when its cortical peak is at least this much brighter
#: than the tissue outside it (HU; cortex against fat, muscle or the canal is 150-400 HU brighter) and does not
#: sit at the end of its search window.
WALL_MIN_CONTRAST_HU = 100.0
#: The tissue outside a wall is looked for up to this far beyond its cortical peak (mm): the fat plane in
#: front of a lumbar body or the canal behind it can lie 10 mm beyond the peak of a cortex blurred by 3 mm voxels.
WALL_OUTSIDE_MM = 12.0
UNMEASURED = "  (not measured: weak or at the window end)"


def half_max_border(positions: np.ndarray, profile: np.ndarray, point: float, outward: float,
                    peak_outside_mm: float = PEAK_OUTSIDE_MM, beyond_mm: float = DISC_MM) -> Optional[Dict]:
    """Peak, disc and half-maximum border of one endplate on a profile (None when no peak/disc pair is found).

    Args:
        positions: (n,) sample positions along the body's superior axis (mm), increasing.
        profile: (n,) HU at ``positions``.
        point: the reference point's position (mm).
        outward: +1 for a superior point (the disc is above), -1 for an inferior one.
        peak_outside_mm: how far outside the point the cortical peak may lie.
        beyond_mm: how far beyond the peak the darker tissue (the disc) is looked for.

    Returns:
        ``{"peak", "peak_hu", "disc", "disc_hu", "border", "offset"}``; ``offset`` is the point's signed
        distance from the border, positive outward (into the disc).

    """
    depth = (positions - point) * outward
    window = np.flatnonzero((depth >= -PEAK_INSIDE_MM) & (depth <= peak_outside_mm))
    if len(window) == 0:
        return None
    peak = int(window[np.argmax(profile[window])])
    beyond = np.flatnonzero(((positions - positions[peak]) * outward > 0)
                            & ((positions - positions[peak]) * outward <= beyond_mm))
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


#: Sample positions (mm) of every profile, along its direction from the point.
ALONG = np.arange(-PEAK_INSIDE_MM - DISC_MM - 4, PEAK_INSIDE_MM + DISC_MM + 4 + 1e-6, STEP_MM)


def _profile(image, point: np.ndarray, along: np.ndarray, across: np.ndarray, lateral: np.ndarray) -> np.ndarray:
    """HU at :data:`ALONG` from ``point`` in direction ``along``, averaged over :data:`AP_MM` x :data:`LATERAL_MM`
    offsets along ``across`` and ``lateral`` (NaN samples outside the image left out)."""
    from VertebralFractureLib.spine.straighten import sample_image

    grid = np.array([[point + t * along + a * across + w * lateral for t in ALONG]
                     for a in AP_MM for w in LATERAL_MM])
    return np.nanmean(sample_image(image, grid, fill=np.nan), axis=0)


def audit_case(case: str) -> List[Dict]:
    """One row per reference keypoint of ``case`` (see :func:`half_max_border` for the fields)."""
    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case(case)
    return audit_points(read_image(reference.image_path), case, reference.vertebrae)


def audit_points(image, case: str, vertebrae) -> List[Dict]:
    """The audit rows of the reference ``vertebrae`` (``label``, ``keypoints`` (6, 3) LPS mm or None) in ``image``.

    Args:
        image: the CT (SimpleITK image, any orientation).
        case: the name put in each row.
        vertebrae: objects with ``label`` and ``keypoints``
            (:class:`VertebralFractureLib.training.real.reference.ReferenceVertebra`).

    Returns:
        One row per endplate point (six per vertebra) and per wall point (anterior and posterior, four).

    """
    from VertebralFractureLib.keypoints.refine import CT_INSET_FRACTION, CT_INSET_MM

    rows = []
    for vertebra in vertebrae:
        if vertebra.keypoints is None:
            continue
        points = np.asarray(vertebra.keypoints, float).reshape(6, 3)
        superior = points[0::2].mean(0) - points[1::2].mean(0)
        superior /= np.linalg.norm(superior)
        posterior = points[4:6].mean(0) - points[0:2].mean(0)
        posterior -= posterior.dot(superior) * superior
        inset = max(CT_INSET_MM, CT_INSET_FRACTION * float(np.linalg.norm(posterior)))
        posterior /= np.linalg.norm(posterior)
        lateral = np.cross(posterior, superior)
        for index, point in enumerate(points):
            outward = 1.0 if index % 2 == 0 else -1.0
            found = half_max_border(ALONG, _profile(image, point, superior, posterior, lateral), 0.0, outward)
            row = {"case": case, "level": vertebra.label, "index": index, "superior": outward > 0}
            if found is not None:
                row.update(found)
                row["border_lps"] = [round(float(c), 2) for c in point + found["border"] * superior]
            rows.append(row)
        for index in (0, 1, 4, 5):
            point = points[index]
            inward = -superior if index % 2 == 0 else superior
            outward = -1.0 if index < 2 else 1.0  # along +posterior
            profile = _profile(image, point + WALL_INSET_MM * inward, posterior, superior, lateral)
            found = half_max_border(ALONG, profile, 0.0, outward, WALL_PEAK_OUTSIDE_MM, WALL_OUTSIDE_MM)
            row = {"case": case, "level": vertebra.label, "index": index, "wall": "anterior" if index < 2 else
                   "posterior", "superior": index % 2 == 0}
            if found is not None:
                row.update(found)
                row["offset"] = found["offset"] + inset
                row["border_lps"] = [round(float(c), 2) for c in point + found["border"] * posterior]
                measured = (found["peak_hu"] - found["disc_hu"] >= WALL_MIN_CONTRAST_HU
                            and -PEAK_INSIDE_MM + 0.1 < found["peak"] < WALL_PEAK_OUTSIDE_MM - 0.1)
                if measured:
                    row["corrected_lps"] = [round(float(c), 2) for c in
                                            point + (found["border"] - outward * inset) * posterior]
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
            side = ("sup" if row["superior"] else "inf") + (f" {row['wall'][:4]}" if "wall" in row else "")
            if "border" not in row:
                print(f"  {row['level']:4s} {row['index']} {side}  no endplate peak / disc pair found")
                continue
            print(f"  {row['level']:4s} {row['index']} {side}  cortex peak {row['peak']:+5.1f} mm "
                  f"({row['peak_hu']:4.0f} HU)"
                  f"  {'outside' if 'wall' in row else 'disc'} {row['disc']:+5.1f} ({row['disc_hu']:4.0f})  point - "
                  f"{'corner' if 'wall' in row else 'border'} {row['offset']:+.1f} mm"
                  f"{UNMEASURED if 'wall' in row and 'corrected_lps' not in row else ''}")
        for kind, chosen in (("endplate", [r for r in rows if "wall" not in r]),
                             ("wall", [r for r in rows if "wall" in r])):
            offsets = np.array([r["offset"] for r in chosen
                                if "offset" in r and ("wall" not in r or "corrected_lps" in r)])
            if len(offsets):
                print(f"  {case} {kind}: {len(offsets)} points, mean {offsets.mean():+.2f} mm (+ = outward), "
                      f"mean |offset| {np.abs(offsets).mean():.2f} mm, "
                      f"|offset| > 1.5 mm: {(np.abs(offsets) > 1.5).sum()}")
    if args.json:
        args.json.write_text(json.dumps(every, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
