"""The detector's working scale on a picture that does not state its pixel size.

The keypoint detector (Pisov et al. 2020, §3.2) was trained on a fixed mm grid; a PNG or JPEG export says nothing
of its pixels' size. The picture is read at a few candidate scales and the one at which the 2D quality gate
(:mod:`.gate2d`) finds the best spine column is kept (:func:`search_scale`). The scale only chooses the detector's
resampling: nothing in mm is reported from it (heights are then in pixels).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

#: Candidate lengths (mm) of the long side of a picture without a pixel size: a lateral lumbar or
#: thoracic film is 30 x 40 or 35 x 43 cm (ICRU / film sizes); a crop or a whole-trunk view is smaller
#: or larger. Steps of 2^(1/4) (19 %): the detector was measured to lose the column when the working
#: scale is 30 % off (sqrt(2) steps left 4 of 12 real sagittal exports with no column).
CANDIDATE_LONG_SIDE_MM = tuple(round(200.0 * 2.0 ** (k / 4.0), 1) for k in range(9))  # 200 ... 800 mm
#: Centre-to-centre distance of neighbouring adult thoracic and lumbar bodies (mm): 25-45 mm
#: (body height 18-30 mm + disc 4-12 mm, Panjabi et al. 1991, 1992). Used only to choose the
#: detector's resampling, never to report a length.
NEIGHBOUR_SPACING_MM = (25.0, 45.0)


def working_scale(located: dict, shape: Tuple[int, int]) -> float:
    """A first working pixel size (mm) for an image that does not state its own; never reported.

    The level-centroid estimate (:func:`.spacing.estimate_spacing`) when it is plausible for a
    lateral spine view (0.05-1.5 mm per pixel), else the long side taken as 400 mm.
    """
    from .spacing import estimate_spacing

    estimate = estimate_spacing(located)
    if estimate is not None and 0.05 <= estimate <= 1.5:
        return float(estimate)
    return 400.0 / float(max(shape))


def candidate_scales(located: dict, shape: Tuple[int, int]) -> List[float]:
    """Working pixel sizes (mm) to try for a picture without a pixel size.

    :data:`CANDIDATE_LONG_SIDE_MM` over the long side, plus the level-centroid estimate when it is
    plausible (:func:`working_scale`).
    """
    scales = [length / float(max(shape)) for length in CANDIDATE_LONG_SIDE_MM]
    first = working_scale(located, shape)
    if all(abs(np.log(first / s)) > 0.1 for s in scales):
        scales.append(first)
    return sorted(scales)


def neighbour_spacing_px(centres: np.ndarray) -> Optional[float]:
    """Median distance (pixels) from each body centre to its nearest neighbour in the column."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if len(centres) < 2:
        return None
    distances = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    return float(np.median(distances.min(axis=1)))


def search_scale(windowed: np.ndarray, foreground: float, detect: Callable[[Tuple[float, float]], list],
                 scales: Sequence[float], view_rows: Optional[Tuple[int, int]] = None
                 ) -> Tuple[float, list, list, List[dict]]:
    """The working scale at which the detector finds the best spine column (no pixel size known).

    Each candidate pixel size resamples the picture for the detector (Pisov et al. 2020, §3.2; trained at
    a fixed mm grid); the 2D quality gate (:mod:`.gate2d`) keeps the detections in the spine column.
    A candidate is *plausible* when its column has at least 3 bodies and their nearest-neighbour
    spacing, in the candidate's mm, lies within :data:`NEIGHBOUR_SPACING_MM` (at a wrong scale the
    detector either finds nothing or boxes that are too close or too far apart for vertebrae).
    The chosen candidate is the plausible one with the most column bodies, ties broken by the summed
    detector score; with no plausible candidate, the one with the most column bodies (still at least 3). A
    faint column (:func:`.gate2d.faint_column`) is a candidate only when no scale gives a column seeded by three
    bone-confirmed bodies: at a wrong scale a faint run of boxes can be longer, and its spacing plausible, where
    the true column's is not (a real slice as PNG: the true column at 0.75 mm, spacing 25 mm, against a faint run
    of five at 1.27 mm).
    When a neighbouring candidate gives a column as long as the chosen one's, the true scale lies between them: the
    scale half-way (geometric mean) is read too and the same rule chooses among all. The candidates are 19 % apart, so
    the chosen one can be 9 % off, and there the detector misses the bodies it reads least surely: a real lumbar slice
    exported as PNG (1.18 mm) gave columns of 10 bodies at 1.10 and 1.31 mm, 1.31 was chosen and its L5 was never
    boxed (levels uncertain); half-way, 1.20 mm, L5 is boxed and the slice anchored. Half a step around every choice
    was tried first: on a generated view read as a PNG (Slicer's 1 x 1 mm) it chose a scale whose column was longer
    but less bone-confirmed, and the mirrored picture won the facing.
    Only the detection depends on the choice: heights are then reported in pixels.

    Args:
        windowed: the :func:`.gate2d.body_window` image.
        foreground: its patient threshold.
        detect: ``(row_mm, column_mm) -> [Detection]`` on ``windowed``.
        scales: candidate pixel sizes (mm).
        view_rows: the rows the view shows (:func:`.gate2d.assess_bodies`).

    Returns:
        (chosen scale, its detections, their gate findings, one summary dict per candidate).

    """
    from .gate2d import FAINT_COLUMN_KEY, assess_bodies

    tried: List[dict] = []

    def read(scale: float) -> None:
        detections = list(detect((scale, scale)))
        findings = (assess_bodies(windowed, foreground, [d.keypoints for d in detections], view_rows)
                    if detections else [])
        members = [i for i, f in enumerate(findings) if f.checks.get("column", 0.0) >= 0.5]
        faint = any(findings[i].values.get(FAINT_COLUMN_KEY) for i in members)
        spacing = neighbour_spacing_px([detections[i].centre for i in members])
        spacing_mm = None if spacing is None else spacing * scale
        plausible = (len(members) >= 3 and spacing_mm is not None
                     and NEIGHBOUR_SPACING_MM[0] <= spacing_mm <= NEIGHBOUR_SPACING_MM[1])
        tried.append({"scale": scale, "detections": detections, "findings": findings,
                      "summary": {"working_mm_per_pixel": round(scale, 4), "detections": len(detections),
                                  "column_bodies": len(members), "faint_column": bool(faint),
                                  "score": round(float(sum(detections[i].score for i in members)), 3),
                                  "neighbour_spacing_at_this_scale_mm": None if spacing_mm is None
                                  else round(spacing_mm, 1), "plausible": bool(plausible)}})

    def choose() -> dict:
        seeded = [t for t in tried if t["summary"]["column_bodies"] and not t["summary"]["faint_column"]] or tried
        pool = [t for t in seeded if t["summary"]["plausible"]] or seeded
        return max(pool, key=lambda t: (t["summary"]["column_bodies"], t["summary"]["score"]))

    for scale in scales:
        read(scale)
    coarse = choose()
    ranked = sorted(tried, key=lambda t: t["scale"])
    k = ranked.index(coarse)
    for neighbour in ranked[max(0, k - 1): k] + ranked[k + 1: k + 2]:
        if (coarse["summary"]["column_bodies"] and neighbour["summary"]["plausible"] == coarse["summary"]["plausible"]
                and neighbour["summary"]["column_bodies"] == coarse["summary"]["column_bodies"]):
            read(float(np.sqrt(coarse["scale"] * neighbour["scale"])))  # the truth lies between two equal columns
    best = choose()
    for t in tried:
        t["summary"]["chosen"] = t is best
    return best["scale"], best["detections"], best["findings"], [t["summary"] for t in tried]
