import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.export.segmentation import Segment, SegmentationFileError, read_seg_nrrd, write_seg_nrrd
from VertebralFractureLib.io.atomic import ExistingFileError


def _labels():
    array = np.zeros((10, 12, 14), np.uint8)
    array[2:5, 3:6, 4:8] = 20
    array[6:8, 1:3, 1:3] = 21
    image = sitk.GetImageFromArray(array)
    image.SetSpacing((0.5, 0.7, 2.0))
    image.SetOrigin((1.0, -2.0, 3.0))
    image.SetDirection((0, 1, 0, -1, 0, 0, 0, 0, 1))
    return array, image


def test_round_trip_keeps_voxels_geometry_names_and_colours(tmp_path):
    array, image = _labels()
    segments = [Segment(20, "L1", (0.2, 0.7, 0.3)), Segment(21, "L2", (0.85, 0.1, 0.1))]
    path = write_seg_nrrd(image, segments, tmp_path / "s.seg.nrrd")
    back, read_segments = read_seg_nrrd(path)
    assert np.array_equal(sitk.GetArrayFromImage(back), array)
    assert back.GetSpacing() == pytest.approx(image.GetSpacing())
    assert back.GetDirection() == pytest.approx(image.GetDirection())
    assert [(s.value, s.name) for s in read_segments] == [(20, "L1"), (21, "L2")]
    assert read_segments[1].color == pytest.approx((0.85, 0.1, 0.1))
    header = path.read_bytes()[:3000]
    assert b"Segment0_Extent:=4 7 3 5 2 4" in header
    assert b"Segment1_Extent:=1 2 1 2 6 7" in header


def test_a_segment_without_voxels_is_kept_with_an_empty_extent(tmp_path):
    """A vertebra found without a mask (value absent from the image, also above its largest label) stays listed."""
    _, image = _labels()
    segments = [Segment(3, "T12", (0, 1, 0)), Segment(20, "L1", (0, 1, 0)), Segment(40, "L3", (1, 0, 0))]
    path = write_seg_nrrd(image, segments, tmp_path / "s.seg.nrrd")
    header = path.read_bytes()[:4000]
    assert b"Segment0_Extent:=0 -1 0 -1 0 -1" in header and b"Segment2_Extent:=0 -1 0 -1 0 -1" in header
    assert b"Segment1_Extent:=4 7 3 5 2 4" in header
    assert [s.name for s in read_seg_nrrd(path)[1]] == ["T12", "L1", "L3"]


def test_refuses_overwrite_and_wrong_suffix(tmp_path):
    _, image = _labels()
    path = write_seg_nrrd(image, [Segment(20, "L1", (0, 1, 0))], tmp_path / "s.seg.nrrd")
    before = path.read_bytes()
    with pytest.raises(ExistingFileError, match=r"s\.seg\.nrrd exists; refusing to overwrite"):
        write_seg_nrrd(image, [Segment(20, "T1", (0, 1, 0))], path)
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="seg.nrrd"):
        write_seg_nrrd(image, [], tmp_path / "s.nrrd")
    with pytest.raises(ValueError, match="unique"):
        write_seg_nrrd(image, [Segment(1, "a", (0, 0, 0)), Segment(1, "b", (0, 0, 0))], tmp_path / "t.seg.nrrd")


def test_plain_nrrd_is_not_a_segmentation(tmp_path):
    _, image = _labels()
    sitk.WriteImage(image, str(tmp_path / "plain.nrrd"))
    with pytest.raises(SegmentationFileError, match="no segment descriptions"):
        read_seg_nrrd(tmp_path / "plain.nrrd")


def test_levels_carry_snomed_ct_terminology_read_back_by_slicerio_and_slicer(tmp_path, mrml_scene):
    import slicerio

    from VertebralFractureLib.mrml.segmentations import read_segmentation

    array, image = _labels()
    array[0:1, 0:1, 0:1] = 25
    image = sitk.GetImageFromArray(array)
    segments = [Segment(20, "L1", (0.2, 0.7, 0.3)), Segment(21, "L2", (0.85, 0.1, 0.1)), Segment(25, "L6", (0, 0, 1))]
    path = write_seg_nrrd(image, segments, tmp_path / "s.seg.nrrd")

    document = slicerio.read_segmentation(str(path))
    by_name = {s["name"]: s for s in document["segments"]}
    assert by_name["L1"]["terminology"]["category"] == ["SCT", "123037004", "Anatomical Structure"]
    assert by_name["L1"]["terminology"]["type"] == ["SCT", "66794005", "L1 vertebra"]
    assert by_name["L2"]["terminology"]["type"] == ["SCT", "14293000", "L2 vertebra"]
    assert by_name["L6"]["terminology"]["type"] == ["SCT", "51282000", "Vertebra"]
    assert by_name["L1"]["labelValue"] == 20 and by_name["L1"]["color"] == pytest.approx([0.2, 0.7, 0.3])
    assert np.array_equal(document["voxels"].transpose(2, 1, 0), array)  # slicerio gives [i, j, k]

    _, read_segments = read_seg_nrrd(path)
    assert "SCT^66794005^L1 vertebra" in read_segments[0].terminology

    node = read_segmentation(path, scene=mrml_scene)
    segmentation = node.GetSegmentation()
    l1 = segmentation.GetSegment(segmentation.GetSegmentIdBySegmentName("L1"))
    entry = l1.GetTerminology()
    assert "~SCT^123037004^Anatomical Structure~SCT^66794005^L1 vertebra~" in entry
    assert entry.startswith("Segmentation category and type - DICOM master list")
    assert l1.GetName() == "L1"


def test_a_segment_not_named_by_level_has_no_terminology(tmp_path):
    from VertebralFractureLib.export.segmentation import read_terminology, vertebra_terminology

    _, image = _labels()
    path = write_seg_nrrd(image, [Segment(20, "implant", (1, 1, 0)), Segment(21, "T11", (1, 0, 0))],
                          tmp_path / "s.seg.nrrd")
    terms = read_terminology(path)
    assert list(terms) == ["T11"] and terms["T11"]["type"] == ["SCT", "12989004", "T11 vertebra"]
    assert vertebra_terminology("implant") is None
