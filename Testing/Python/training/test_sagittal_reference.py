"""Structure of the hand-made level reference of the 20 real sagittal CT images (covid_sagittal).

The reference (``Testing/Data/real/reference/covid_sagittal.json``) is read with the plain
``json`` module, as any reader would; see ``Testing/Data/real/reference/README_sagittal.md``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

REAL = Path(__file__).resolve().parents[2] / "Data" / "real"
REFERENCE = REAL / "reference" / "covid_sagittal.json"
ORDER = [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)] + ["S1"]


def _load() -> dict:
    return json.loads(REFERENCE.read_text())


def _images() -> list:
    return _load()["images"]


def test_header_and_twenty_images() -> None:
    """The file names its schema, frame and licence and lists the 20 images, 12 with the lumbar spine."""
    reference = _load()
    assert reference["schema"] == "vertebral-fracture-reference/1"
    assert reference["frame"] == "pixel"
    assert "CC BY 4.0" in reference["licence"]
    assert len(reference["images"]) == 20
    assert sum(image["lumbar_in_view"] for image in reference["images"]) == 12


@pytest.mark.parametrize("image", _images(), ids=lambda image: image["image"])
def test_image_exists_and_spacing(image: dict) -> None:
    """Every referenced image file is in Testing/Data/real with the spacing written in the reference."""
    import SimpleITK as sitk

    path = REAL / image["image"]
    assert path.exists(), path
    stored = sitk.ReadImage(str(path))
    assert stored.GetDimension() == 2
    assert stored.GetSpacing() == pytest.approx(image["spacing_mm"], abs=1e-5)
    width, height = stored.GetSize()
    for vertebra in image["vertebrae"]:
        column, row = vertebra["centroid"]
        assert 0 <= column < width and 0 <= row < height


@pytest.mark.parametrize("image", _images(), ids=lambda image: image["image"])
def test_levels_top_to_bottom_and_spacing(image: dict) -> None:
    """Labels run cranio-caudally down the image without gaps; neighbours lie 15-45 mm apart."""
    vertebrae = image["vertebrae"]
    rows = [vertebra["centroid"][1] for vertebra in vertebrae]
    assert rows == sorted(rows), "centroids must be listed top to bottom"
    labels = [vertebra["label"] for vertebra in vertebrae]
    if image["levels_certain"]:
        assert image["anchors_in_view"], "certain levels need an anchor"
        indices = [ORDER.index(label) for label in labels]
        assert indices == list(range(indices[0], indices[0] + len(indices))), labels
    elif any(label is not None for label in labels):
        indices = [ORDER.index(label) for label in labels]
        assert indices == sorted(indices)
    column_mm, row_mm = image["spacing_mm"]
    for upper, lower in zip(vertebrae, vertebrae[1:]):
        gap = math.hypot((lower["centroid"][0] - upper["centroid"][0]) * column_mm,
                         (lower["centroid"][1] - upper["centroid"][1]) * row_mm)
        assert 15.0 <= gap <= 45.0, (upper["label"], lower["label"], gap)


@pytest.mark.parametrize("image", _images(), ids=lambda image: image["image"])
def test_keypoints_around_centroid(image: dict) -> None:
    """Six keypoints (if given) surround their centroid: superior above inferior, within 30 mm."""
    column_mm, row_mm = image["spacing_mm"]
    for vertebra in image["vertebrae"]:
        points = vertebra["keypoints"]
        if points is None:
            continue
        assert len(points) == 6
        column, row = vertebra["centroid"]
        for point in points:
            assert math.hypot((point[0] - column) * column_mm, (point[1] - row) * row_mm) < 30.0
        for superior, inferior in ((0, 1), (2, 3), (4, 5)):
            assert points[superior][1] < points[inferior][1]


def test_known_values() -> None:
    """Spot values a reader can check on the rendered image: L3 of A058062_19010108-077, S1 present."""
    image = next(i for i in _images() if i["image"].endswith("A058062_19010108-077.nii.gz"))
    by_label = {vertebra["label"]: vertebra for vertebra in image["vertebrae"]}
    assert by_label["L3"]["centroid"] == pytest.approx([293, 231], abs=1)
    assert "S1" in by_label and image["levels_certain"]
