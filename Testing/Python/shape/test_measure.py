import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.genant import heights
from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import geometry_of, image_from_array
from VertebralFractureLib.shape.body_axes import column_axes, find_bodies
from VertebralFractureLib.shape.measure import REASON_CUT, MaskMeasureError, measure_from_mask


def test_bodies_are_separated_at_the_canal(column_models, column_mask):
    array = sitk.GetArrayFromImage(column_mask)
    bodies = find_bodies(array, geometry_of(column_mask))
    assert list(bodies) == [m.name for m in column_models]
    for m in column_models:
        body = bodies[m.name]
        assert body.separated
        assert np.linalg.norm(body.centre - m.centroid()) < (2.0 if m.grade == 0 else 3.0)
        assert body.posterior @ m.rotation[:, 1] > 0.97
        # arch removed: the body holds no voxel far behind the posterior wall
        points = geometry_of(column_mask).index_to_lps(body.index[:, ::-1].astype(float))
        assert ((points - m.origin) @ m.rotation[:, 1]).max() < m.depth / 2 + 2.5


def test_mask_heights_match_the_generator(column_models, column_mask):
    result = measure_from_mask(column_mask)
    assert result.frame == "LPS"
    assert result.labels == [m.name for m in column_models]
    for m in column_models:
        v = result.vertebra(m.name)
        assert v.source == "mask" and v.confidence is None
        truth = heights(m.keypoints())
        # 1 mm binary mask: +-0.5 mm per endplate; the keypoint inset (8 % of the depth, for the rounded
        # rims of real bodies, against 1.5 mm in the generator) raises a severe wedge's anterior height
        wedge = m.grade > 0
        np.testing.assert_allclose(v.measure.heights, truth, atol=1.6 if wedge else 1.0)
        assert abs(v.measure.G - truth.min() / truth.max()) < (0.1 if wedge else 0.07)
    wedge = result.vertebra(column_models[2].name)
    assert wedge.measure.grade == 3 and wedge.measure.type == "wedge"
    assert all(result.vertebra(m.name).measure.grade == 0 for m in column_models if m.grade == 0)
    # the six points are ordered anterior -> posterior along the body's own axis
    posterior = column_models[0].rotation[:, 1]
    points = result.vertebra(column_models[0].name).keypoints
    assert points[0] @ posterior < points[2] @ posterior < points[4] @ posterior


def test_real_verse_mask_grades():
    result = measure_from_mask(str(real("verse", "sub-verse004_seg-vert_msk.nii.gz")))
    assert result.labels == ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    grades = {v.label: v.measure.grade for v in result.vertebrae}
    assert grades["L1"] == 3  # radiologists: grade 3
    # radiologists: grade 2; each is the other's neighbour, so both are measured against T11
    assert grades["T9"] == 2 and grades["T10"] == 2
    assert all(grades[level] == 0 for level in ("T11", "T12", "L2", "L3", "L4", "L5"))
    for v in result.vertebrae:
        assert v.extra["mask"]["body_separated"]
        assert 12.0 < max(v.measure.heights) < 35.0


def test_tptbox_body_subregions_give_the_body():
    vert = str(real("tptbox", "sub-ct_seg-vert_label-22_msk.nii.gz"))
    subreg = str(real("tptbox", "sub-ct_seg-subreg_label-22_msk.nii.gz"))
    result = measure_from_mask(vert, subreg)
    l3 = result.vertebra("L3")
    assert "touches_border" not in l3.extra["mask"]
    assert 20.0 < l3.measure.heights[1] < 30.0
    assert 30.0 < l3.extra["mask"]["depth_mm"] < 45.0
    assert result.labels == ["L2", "L3", "L4"]
    assert [v.status for v in result.vertebrae] == ["not_assessed", "assessed", "not_assessed"]
    assert result.vertebra("L2").status_reason == REASON_CUT  # L2 and L4 are cut by the crop
    assert result.vertebra("L4").measure is None


def test_column_axes_follow_the_neighbours():
    centroids = {"L1": np.array([0.0, 0.0, 0.0]), "T12": np.array([0.0, -3.0, 30.0]), "L2": np.array([0.0, 3.0, -30.0])}
    axes = column_axes(centroids)
    np.testing.assert_allclose(axes["L1"], np.array([0.0, -6.0, 60.0]) / np.hypot(6, 60))
    assert axes["T12"] @ np.array([0.0, 0.0, 1.0]) > 0.99
    np.testing.assert_allclose(column_axes({"L1": np.zeros(3)})["L1"], [0, 0, 1])


def test_a_mask_without_vertebrae_is_refused():
    geometry = ImageGeometry((8, 8, 8), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    array = np.zeros((8, 8, 8), np.uint8)
    array[2:5, 2:5, 2:5] = 41
    with pytest.raises(MaskMeasureError, match="no vertebra label"):
        measure_from_mask(image_from_array(array, geometry))


def test_a_real_mask_mirrored_front_to_back_is_read_from_its_anatomy():
    """A header whose antero-posterior axis is reversed (the arch at lower y than the body, as in the real Bonelab
    crop of VerSe sub-verse004 L2) is read from where the canal and the arch lie: the same G level by level, said."""
    path = real("verse", "sub-verse004_seg-vert_msk.nii.gz")
    given = sitk.ReadImage(str(path))
    # the image index axis that runs front to back (LPS y), as an array axis ([k, j, i])
    front_to_back = 2 - int(np.argmax(np.abs(np.asarray(given.GetDirection()).reshape(3, 3)[1])))
    mirrored = sitk.GetImageFromArray(np.flip(sitk.GetArrayFromImage(given), axis=front_to_back).copy())
    mirrored.CopyInformation(given)
    straight, reversed_ = measure_from_mask(given), measure_from_mask(mirrored)
    assert reversed_.labels == straight.labels
    for a, b in zip(straight.vertebrae, reversed_.vertebrae):
        assert b.extra["mask"]["body_separated"]
        assert abs(a.measure.G - b.measure.G) < 0.02, a.label
        assert a.measure.grade == b.measure.grade, a.label
    assert not any("looks reversed" in w for w in straight.warnings)
    assert sum("antero-posterior axis looks reversed" in w for w in reversed_.warnings) == 1
