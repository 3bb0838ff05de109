"""Real-shape mode: the VerSe sub-verse004 mask drawn as a CT with the generator's tissue model."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.io.images import geometry_of, read_image
from VertebralFractureLib.synth import SynthParamsError, generate_from_mask, write_case


@pytest.fixture(scope="module")
def verse_case(real_file):
    mask = read_image(real_file("verse/sub-verse004_seg-vert_msk.nii.gz"))
    case = generate_from_mask(
        mask,
        3,
        spacing=(2.0, 2.0, 2.0),
        grades={"T9": 2, "T10": 2, "L1": 3},
        osteoporosis=0.5,
        fov_xy_mm=(220.0, 200.0),
    )
    return mask, case


def test_levels_masks_and_keypoints(verse_case):
    _, case = verse_case
    vert = sitk.GetArrayFromImage(case.vert_mask)
    body = sitk.GetArrayFromImage(case.body_mask)
    assert set(np.unique(vert)) - {0} == set(range(16, 25))  # T9 ... L5
    assert set(np.unique(body)) - {0} <= set(range(16, 25))
    assert np.all(vert[body > 0] == body[body > 0])
    assert np.asarray(case.ct.GetDirection()) == pytest.approx(np.eye(3).flatten())
    # keypoints are measured on the rendered masks by shape.measure (it may skip a level it cannot measure)
    levels = ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert set(case.truth.labels) <= set(levels) and len(case.truth.labels) >= 7
    assert case.truth.input["synthetic"]["levels"] == levels
    l1 = case.truth.vertebra("L1")
    assert l1.extra["commanded_grade"] == 3 and l1.measure.grade >= 2  # the real grade-3 fracture shows
    assert case.truth.vertebra("L3").measure.grade == 0


def test_tissue_model_is_the_generators(verse_case):
    _, case = verse_case
    from scipy.ndimage import binary_erosion

    hu = sitk.GetArrayFromImage(case.ct).astype(float)
    body = sitk.GetArrayFromImage(case.body_mask) > 0
    core = binary_erosion(body, iterations=2)
    assert abs(np.median(hu[core]) - case.tissue.trabecular) < 60
    assert np.median(hu[body & ~core]) > np.median(hu[core]) + 40  # brighter rim (cortex)
    assert (hu < -900).mean() > 0.02 and ((hu > -150) & (hu < -50)).mean() > 0.05  # air and fat around


def test_centreline_inside_the_bodies_and_files(verse_case, tmp_path):
    _, case = verse_case
    geometry = geometry_of(case.body_mask)
    body = sitk.GetArrayFromImage(case.body_mask)
    for v in case.truth.vertebrae:
        near = case.centreline[np.abs(case.centreline[:, 2] - v.centroid[2]) < 3.0]
        index = np.rint(geometry.lps_to_index(near)).astype(int)
        assert np.mean(body[index[:, 2], index[:, 1], index[:, 0]] == v.extra["verse_label"]) > 0.5, v.label
    folder = write_case(case, tmp_path / "verse004")
    assert (folder / "truth.json").exists() and (folder / "radiograph.png").exists()


def test_empty_mask_is_refused():
    empty = sitk.Image(10, 10, 10, sitk.sitkUInt8)
    with pytest.raises(SynthParamsError, match="no labelled voxel"):
        generate_from_mask(empty, 0)
