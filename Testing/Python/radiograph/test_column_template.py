"""Bodies placed above the spine column (VertebralFractureLib.radiograph.column_template), drawn and real views."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from VertebralFractureLib.radiograph import column_template
from VertebralFractureLib.radiograph.analyze import analyze_radiograph
from VertebralFractureLib.radiograph.gate2d import REASONS

ROOT = Path(__file__).resolve().parents[2] / "Data" / "real"
REFERENCE = json.loads((ROOT / "reference" / "covid_sagittal.json").read_text())
ENTRIES = {Path(e["image"]).name[: -len(".nii.gz")]: e for e in REFERENCE["images"]}
FOREGROUND = 0.2


def drawn_column(bodies: int = 8, shown: int | None = None, tilt: float = 0.25) -> tuple:
    """A body-windowed lateral view (column 0 anterior): ``bodies`` stacked bodies, each with a bright rim, a grey
    interior and a darker disc below; the column leans forwards going up (``tilt`` columns per row). Only the lowest
    ``shown`` bodies are drawn (default all); the others' places are soft tissue. Returns the image and every
    body's six keypoints ``[column, row]`` (top to bottom)."""
    rng = np.random.default_rng(3)
    image = np.full((400, 300), 0.3, dtype=np.float64)  # soft tissue
    image[:, 250:] = 0.02  # air behind the back
    height, depth, disc = 22.0, 30.0, 7.0
    keypoints = []
    top = 40.0
    for _ in range(bodies):
        left = 150.0 - tilt * (360.0 - top)
        middle, back = left + depth / 2, left + depth
        keypoints.append(np.array([[left, top], [left, top + height], [middle, top], [middle, top + height],
                                   [back, top], [back, top + height]]))
        top += height + disc
    shown = bodies if shown is None else shown
    for k in keypoints[bodies - shown:]:
        (c0, r0), (c1, r1) = k[0], k[5]
        rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]]
        inside = (rows >= r0) & (rows < r1) & (cols >= c0) & (cols < c1)
        image[inside] = 0.85
        core = (rows >= r0 + 2) & (rows < r1 - 2) & (cols >= c0 + 2) & (cols < c1 - 2)
        image[core] = 0.55
        below = (rows >= r1) & (rows < r1 + disc) & (cols >= c0) & (cols < c1)
        image[below] = 0.33
    image += rng.normal(0.0, 0.01, image.shape)
    return image, keypoints


def _centre(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float64).reshape(6, 2).mean(axis=0)


def test_bodies_above_the_column_are_placed_on_the_drawn_bodies_one_level_apart():
    image, keypoints = drawn_column()
    column = keypoints[4:]  # the detector found the lowest four
    placed = column_template.continue_upwards(image, FOREGROUND, column)
    assert len(placed) == 4  # every body above, up to the top of the drawing
    for found, truth in zip(placed, keypoints[3::-1]):  # from the lowest to the highest
        assert np.linalg.norm(_centre(found) - _centre(truth)) < 2.5


def test_nothing_is_placed_where_the_image_shows_no_body():
    image, keypoints = drawn_column(shown=4)
    assert column_template.continue_upwards(image, FOREGROUND, keypoints[4:]) == []


def test_placing_stops_at_the_levels_left_above_the_top_body():
    image, keypoints = drawn_column()
    assert len(column_template.continue_upwards(image, FOREGROUND, keypoints[4:], limit=2)) == 2


def test_a_body_unlike_its_neighbours_is_not_placed():
    # the places above hold bright rings around fat (a slice through the pedicles: cortical rings, no marrow), which
    # pass the rim-and-disc checks a body must pass but do not look like the bodies below
    image, keypoints = drawn_column(shown=4)
    for k in keypoints[:4]:
        (c0, r0), (c1, r1) = k[0], k[5]
        image[int(r0):int(r1), int(c0):int(c1)] = 0.85
        image[int(r0) + 3:int(r1) - 3, int(c0) + 3:int(c1) - 3] = 0.1
    assert column_template.continue_upwards(image, FOREGROUND, keypoints[4:]) == []


def _nearest(vertebra, entry):
    sx, sy = entry["spacing_mm"]
    best = min(entry["vertebrae"], key=lambda a: math.hypot((vertebra.centroid[0] - a["centroid"][0]) * sx,
                                                           (vertebra.centroid[1] - a["centroid"][1]) * sy))
    return best, math.hypot((vertebra.centroid[0] - best["centroid"][0]) * sx,
                            (vertebra.centroid[1] - best["centroid"][1]) * sy)


@pytest.fixture(scope="module")
def upper_thoracic():
    name = "A027284_19000925-083"  # T1-T3 in view; the detector boxes none of them well
    return analyze_radiograph(ROOT / ENTRIES[name]["image"]).result, ENTRIES[name]


def test_real_upper_thoracic_bodies_are_placed_at_their_levels_and_not_assessed(upper_thoracic):
    result, entry = upper_thoracic
    placed = [v for v in result.vertebrae if column_template.PLACED_CHECK in v.checks]
    assert {v.label for v in placed} >= {"T2", "T3"}
    for vertebra in placed:
        best, distance = _nearest(vertebra, entry)
        assert distance < 12.0 and best["label"] == vertebra.label  # the annotated body of that level
        assert vertebra.status == "not_assessed" and vertebra.status_reason == REASONS["placed"]
        assert vertebra.extra["level_certain"] is True  # counted from the sacrum like the column below
    labels = [v.label for v in result.vertebrae]
    assert len(labels) == len(set(labels))
    # the detector's box across the T2/T3 disc gave way to the placed bodies
    gone = [r for r in result.input["rejected_detections"] if r["reason"] == column_template.PLACED_REASON]
    assert len(gone) == 1 and 29 < gone[0]["centre"][1] < 43
    assert any("placed above the spine column" in w for w in result.warnings)


def test_a_placed_body_gets_no_learned_score(upper_thoracic):
    # its box is the body below moved up, so the lateral-view classifier's patch is not this body's
    result, _ = upper_thoracic
    placed = [v for v in result.vertebrae if column_template.PLACED_CHECK in v.checks]
    assert placed and all(v.fracture_probability is None for v in placed)
    assert all(v.verdict != "review" for v in placed)
    assert any(v.fracture_probability is not None for v in result.vertebrae if v.label in ("T4", "T6"))
