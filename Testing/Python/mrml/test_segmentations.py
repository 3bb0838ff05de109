import numpy as np
import pytest

from VertebralFractureLib.colors import GRADE_COLORS
from VertebralFractureLib.geometry import ImageGeometry


@pytest.fixture
def mask():
    direction = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])  # axis-permuted, sagittal-like
    geometry = ImageGeometry((12, 10, 8), (0.9, 0.9, 1.5), (-30.0, 12.0, 95.0), direction)
    labels = np.zeros((8, 10, 12), np.uint8)
    labels[1:3, 2:8, 2:10] = 19  # T12
    labels[3:5, 2:8, 2:10] = 20  # L1
    labels[5:7, 2:8, 2:10] = 21  # L2
    return labels, geometry


def test_segments_named_by_level_with_grade_colours(mrml_scene, spine_result, mask):
    from VertebralFractureLib.mrml.segmentations import grade_colors_for, segment_info, segmentation_from_labelmap

    labels, geometry = mask
    node = segmentation_from_labelmap(labels, geometry, scene=mrml_scene, colors=grade_colors_for(spine_result))
    info = segment_info(node)
    assert [s["id"] for s in info] == ["T12", "L1", "L2"]
    assert [s["name"] for s in info] == ["T12", "L1", "L2"]
    assert [s["label"] for s in info] == [19, 20, 21]
    assert info[1]["color"] == pytest.approx(GRADE_COLORS[2])
    assert info[0]["color"] == pytest.approx(GRADE_COLORS[0])


def test_seg_nrrd_save_and_load_keeps_names_colours_and_voxels(mrml_scene, mask, tmp_path):
    from VertebralFractureLib.mrml.segmentations import (
        labelmap_from_segmentation,
        read_segmentation,
        segment_info,
        segmentation_from_labelmap,
        write_segmentation,
    )
    from VertebralFractureLib.mrml.volumes import volume_from_array

    labels, geometry = mask
    colors = {19: (0.1, 0.2, 0.3), 20: (0.9, 0.1, 0.1), 21: (0.2, 0.8, 0.2)}
    names = {19: "T12", 20: "L1 fractured", 21: "L2"}
    node = segmentation_from_labelmap(labels, geometry, scene=mrml_scene, names=names, colors=colors)
    path = write_segmentation(node, tmp_path / "vertebrae.seg.nrrd")
    assert path.is_file()
    loaded = read_segmentation(path, scene=mrml_scene)
    assert loaded is not node and loaded.GetStorageNode() is not None
    info = segment_info(loaded)
    assert [s["name"] for s in info] == ["T12", "L1 fractured", "L2"]
    for s in info:
        assert s["color"] == pytest.approx(colors[s["label"]], abs=1e-5)
    reference = volume_from_array(np.zeros_like(labels), geometry, scene=mrml_scene)
    np.testing.assert_array_equal(labelmap_from_segmentation(loaded, reference), labels)
    only_l1 = labelmap_from_segmentation(loaded, reference, ["L1 fractured"], {"L1 fractured": 7})
    np.testing.assert_array_equal(only_l1, np.where(labels == 20, 7, 0))


def test_seg_nrrd_is_a_label_image_with_verse_values(mrml_scene, mask, tmp_path):
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of
    from VertebralFractureLib.mrml.segmentations import segmentation_from_labelmap, write_segmentation

    labels, geometry = mask
    node = segmentation_from_labelmap(labels, geometry, scene=mrml_scene)
    path = write_segmentation(node, tmp_path / "v.seg.nrrd")
    image = sitk.ReadImage(str(path))
    assert image.GetMetaData("Segment1_Name") == "L1"
    assert geometry_of(image).same_grid(geometry, 1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), labels)


def test_recolour_and_non_level_labels(mrml_scene):
    from VertebralFractureLib.mrml.segmentations import segment_info, segmentation_from_labelmap, set_segment_colors

    geometry = ImageGeometry((3, 3, 3), (1, 1, 1), (0, 0, 0), np.eye(3))
    labels = np.zeros((3, 3, 3), np.int64)
    labels[0, 0, 0], labels[2, 2, 2] = 20, 100
    node = segmentation_from_labelmap(labels, geometry, scene=mrml_scene)
    assert [s["name"] for s in segment_info(node)] == ["L1", "Label 100"]
    set_segment_colors(node, {"L1": GRADE_COLORS[3]})
    assert segment_info(node)[0]["color"] == pytest.approx(GRADE_COLORS[3])
    with pytest.raises(KeyError, match="no segment"):
        set_segment_colors(node, {"L5": (1, 1, 1)})


def test_bad_masks_and_files(mrml_scene, tmp_path):
    from VertebralFractureLib.mrml.segmentations import SegmentationError, read_segmentation, segmentation_from_labelmap

    geometry = ImageGeometry((2, 2, 2), (1, 1, 1), (0, 0, 0), np.eye(3))
    with pytest.raises(SegmentationError, match="integers"):
        segmentation_from_labelmap(np.full((2, 2, 2), 0.5), geometry, scene=mrml_scene)
    with pytest.raises(SegmentationError, match="same segment name"):
        segmentation_from_labelmap(np.arange(8).reshape(2, 2, 2), geometry, scene=mrml_scene, names={1: "A", 2: "A"})
    with pytest.raises(FileNotFoundError, match="missing.seg.nrrd: no such segmentation file"):
        read_segmentation(tmp_path / "missing.seg.nrrd", scene=mrml_scene)
    broken = tmp_path / "broken.seg.nrrd"
    broken.write_bytes(b"NRRD0004\ngarbage")
    with pytest.raises(SegmentationError, match="cannot read"):
        read_segmentation(broken, scene=mrml_scene)
