"""Rendered cases: masks against keypoints, centre-line inside the bodies, files, determinism, orientation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import geometry_of, read_image
from VertebralFractureLib.levels import TYPICAL_LEVELS, label_from_level
from VertebralFractureLib.schema import SpineResult
from VertebralFractureLib.synth import PRESETS, SynthParamsError, generate_case, read_truth, write_case


def _array(image) -> np.ndarray:
    return sitk.GetArrayFromImage(image)


def _boundary_points(mask: np.ndarray, geometry: ImageGeometry) -> np.ndarray:
    """LPS centres of mask voxels with a 6-neighbour outside the mask."""
    from scipy.ndimage import binary_erosion

    border = mask & ~binary_erosion(mask)
    index = np.argwhere(border)[:, ::-1]  # (i, j, k)
    return geometry.index_to_lps(index)


def test_truth_grades_types_and_labels(spine_case):
    truth = spine_case.truth
    assert truth.frame == "LPS"
    positions = [TYPICAL_LEVELS.index(v.label) for v in truth.vertebrae]
    assert positions == list(range(positions[0], positions[0] + len(positions)))
    assert any(v.extra["commanded_grade"] > 0 for v in truth.vertebrae)
    for v in truth.vertebrae:
        assert v.source == "synthetic"
        assert v.measure.grade == v.extra["commanded_grade"], v.label
        assert v.measure.type == v.extra["commanded_type"], v.label
        assert v.extra["verse_label"] == label_from_level(v.label)


def test_keypoints_lie_on_the_body_surface(spine_case):
    geometry = geometry_of(spine_case.body_mask)
    body = _array(spine_case.body_mask)
    voxel = max(geometry.spacing)
    for v in spine_case.truth.vertebrae:
        boundary = _boundary_points(body == v.extra["verse_label"], geometry)
        assert len(boundary) > 50, v.label
        for point in v.keypoints:
            distance = np.min(np.linalg.norm(boundary - point, axis=1))
            assert distance <= 1.5 * voxel, (v.label, point, distance)
        # and the points sit inside the image
        assert np.all(geometry.contains(v.keypoints))


def test_every_truth_and_partial_vertebra_is_in_the_masks(spine_case):
    vert = _array(spine_case.vert_mask)
    body = _array(spine_case.body_mask)
    labels = set(np.unique(vert)) - {0}
    truth_labels = {v.extra["verse_label"] for v in spine_case.truth.vertebrae}
    partial = {label_from_level(n) for n in spine_case.truth.input["synthetic"]["partial_levels"]}
    assert truth_labels | partial == labels
    assert partial, "the field of view cuts into a neighbour at each end"
    assert set(np.unique(body)) - {0} <= labels
    assert np.all(vert[body > 0] == body[body > 0])  # body is part of its vertebra
    assert (vert > 0).sum() > 1.5 * (body > 0).sum()  # posterior elements present


def test_centreline_runs_inside_the_bodies(spine_case):
    geometry = geometry_of(spine_case.body_mask)
    body = _array(spine_case.body_mask)
    line = spine_case.centreline
    assert line.shape[1] == 3 and len(line) > 100
    steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
    assert np.all(steps < 1.05)
    z_extent = geometry.extent_mm[2]
    assert np.ptp(line[:, 2]) > 0.9 * (z_extent - 2 * geometry.spacing[2])
    for v in spine_case.truth.vertebrae:
        half = 0.3 * min(v.measure.heights)
        near = line[np.abs(line[:, 2] - v.centroid[2]) < half]
        assert len(near) > 2
        index = np.rint(geometry.lps_to_index(near)).astype(int)
        values = body[index[:, 2], index[:, 1], index[:, 0]]
        assert np.all(values == v.extra["verse_label"]), v.label


def test_ct_geometry_and_intensity_types(spine_case):
    ct = spine_case.ct
    assert ct.GetPixelID() == sitk.sitkInt16
    assert spine_case.vert_mask.GetPixelID() == sitk.sitkUInt8
    assert ct.GetSpacing() == pytest.approx((2.0, 2.0, 2.0))
    assert geometry_of(ct).same_grid(geometry_of(spine_case.vert_mask))
    values = _array(ct)
    assert values.min() >= -1024 and values.max() <= 3071
    assert (values < -900).mean() > 0.02  # air outside the body
    assert spine_case.truth.input["size"] == list(ct.GetSize())


def test_same_seed_same_case_other_seed_other_case():
    a = generate_case(3, "radiograph", spacing=(3.0, 2.0, 2.0))
    b = generate_case(3, "radiograph", spacing=(3.0, 2.0, 2.0))
    c = generate_case(4, "radiograph", spacing=(3.0, 2.0, 2.0))
    assert np.array_equal(_array(a.ct), _array(b.ct))
    assert np.array_equal(_array(a.vert_mask), _array(b.vert_mask))
    assert a.truth.to_dict()["vertebrae"] == b.truth.to_dict()["vertebrae"]
    assert np.array_equal(a.radiograph, b.radiograph)
    assert a.ct.GetSize() != c.ct.GetSize() or not np.array_equal(_array(a.ct), _array(c.ct))


def test_write_case_files_round_trip(fine_case, tmp_path):
    folder = write_case(fine_case, tmp_path / "case_0000")
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "ct.nii.gz",
        "vert_msk.nii.gz",
        "body_msk.nii.gz",
        "truth.json",
        "centreline.json",
        "radiograph.png",
        "radiograph.json",
    }
    ct = read_image(folder / "ct.nii.gz")
    assert np.array_equal(_array(ct), _array(fine_case.ct))
    assert np.array_equal(_array(read_image(folder / "body_msk.nii.gz")), _array(fine_case.body_mask))
    truth, centreline = read_truth(folder)
    assert truth.labels == fine_case.truth.labels
    for a, b in zip(truth.vertebrae, fine_case.truth.vertebrae):
        assert np.allclose(a.keypoints, b.keypoints)
        assert a.extra["commanded_grade"] == b.extra["commanded_grade"] == a.measure.grade
    assert np.allclose(centreline, fine_case.centreline, atol=1e-3)
    stored = json.loads((folder / "truth.json").read_text())["input"]["synthetic"]
    assert np.allclose(stored["centreline_lps"], fine_case.centreline, atol=1e-3)
    assert stored["seed"] == 11 and stored["params"]["preset"] == "radiograph"
    drr = SpineResult.from_json((folder / "radiograph.json").read_text())
    assert drr.frame == "pixel" and drr.pixel_spacing == pytest.approx(fine_case.radiograph_truth.pixel_spacing)
    picture = _array(read_image(folder / "radiograph.png"))
    assert picture.shape == fine_case.radiograph.shape and picture.dtype == np.uint8
    with pytest.raises(FileExistsError, match=r"ct\.nii\.gz exists; refusing to overwrite"):
        write_case(fine_case, folder)


def test_non_identity_direction_keeps_patient_coordinates():
    lps = generate_case(5, "radiograph", spacing=(3.0, 2.0, 2.0), fracture_prevalence=0.0)
    for code in ("RAS", "PIR", "oblique", "random"):
        case = generate_case(5, "radiograph", spacing=(3.0, 2.0, 2.0), fracture_prevalence=0.0, direction=code)
        direction = np.asarray(case.ct.GetDirection()).reshape(3, 3)
        assert np.allclose(direction, np.eye(3)) == (case.params.direction == "LPS")
        assert np.allclose(case.truth.vertebrae[0].keypoints, lps.truth.vertebrae[0].keypoints)
        geometry = geometry_of(case.body_mask)
        body = _array(case.body_mask)
        for v in case.truth.vertebrae:
            i, j, k = np.rint(geometry.lps_to_index(v.centroid)).astype(int)
            assert body[k, j, i] == v.extra["verse_label"], (code, v.label)


def test_spacing_and_thick_slices():
    case = generate_case(6, "radiograph", spacing=(0.8, 0.8, 3.0), max_voxels=6_000_000)
    assert case.ct.GetSpacing() == pytest.approx((0.8, 0.8, 3.0))
    assert np.prod(case.ct.GetSize()) <= 6_000_000 * 1.05
    assert all(v.measure.grade == v.extra["commanded_grade"] for v in case.truth.vertebrae)


def test_metal_adds_very_bright_voxels():
    plain = generate_case(8, "radiograph", spacing=(3.0, 2.0, 2.0))
    metal = generate_case(8, "radiograph", spacing=(3.0, 2.0, 2.0), metal=True)
    assert (_array(plain.ct) > 2500).sum() == 0
    assert (_array(metal.ct) > 2500).sum() > 20
    assert len(metal.truth.input["synthetic"]["instrumented_levels"]) >= 2


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"spacing": (0.1, 1.0, 1.0)}, "spacing"),
        ({"fracture_prevalence": 1.5}, "fracture_prevalence"),
        ({"top_level": "L4", "bottom_level": "T10"}, "top_level"),
        ({"colour": "red"}, "unknown synthetic parameters"),
        ({"direction": "XYZ"}, "direction"),
    ],
)
def test_bad_parameters_are_named(overrides, message):
    with pytest.raises(SynthParamsError, match=message):
        generate_case(0, "radiograph", **overrides)


def test_unknown_preset_is_named():
    with pytest.raises(SynthParamsError, match="unknown preset"):
        generate_case(0, "knee")
    assert {"spine", "chest", "abdomen", "scoliosis", "radiograph"} <= set(PRESETS)


def test_a_short_floating_rib_whose_arc_would_end_before_it_starts_is_drawn_without_arc():
    """Seed 720017 with many fractures: T12's rib arc started past its end (theta1 < theta0), the arc's fraction
    went negative, its power NaN, and the case could not be drawn (about 10 % of fracture-rich seeds)."""
    from VertebralFractureLib.training.radiograph.columns import generate_column

    column = generate_column(720017, fracture_prevalence=0.5, grade_weights=(0.2, 0.4, 0.4))
    assert "T12" in column.levels and np.isfinite(column.image).all()
