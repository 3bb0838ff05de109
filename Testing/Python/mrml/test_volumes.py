import numpy as np
import pytest
from mrml.helpers import DicomDatabase

from VertebralFractureLib.geometry import ImageGeometry, lps_to_ras


def _rotation(axis, degrees):
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


@pytest.fixture
def oblique():
    direction = _rotation(2, 25) @ _rotation(0, -15) @ np.diag([1.0, -1.0, 1.0])  # oblique, left-handed
    geometry = ImageGeometry((7, 6, 5), (0.8, 1.1, 2.5), (-120.5, 33.0, 410.0), direction)
    array = np.arange(7 * 6 * 5, dtype=np.int16).reshape(5, 6, 7) - 100
    return array, geometry


def test_voxel_lands_at_same_patient_point(mrml_scene, slicer_core, oblique):
    from VertebralFractureLib.mrml.volumes import volume_from_array

    array, geometry = oblique
    node = volume_from_array(array, geometry, scene=mrml_scene, name="CT")
    assert node.IsA("vtkMRMLScalarVolumeNode") and node.GetName() == "CT"
    from vtkmodules.vtkCommonMath import vtkMatrix4x4

    matrix = vtkMatrix4x4()
    node.GetIJKToRASMatrix(matrix)
    ijk_to_ras = slicer_core.util.arrayFromVTKMatrix(matrix)
    for ijk in [(0, 0, 0), (6, 5, 4), (3, 1, 2), (2.5, 4.25, 0.5)]:
        ras = (ijk_to_ras @ [*ijk, 1.0])[:3]
        np.testing.assert_allclose(ras, lps_to_ras(geometry.index_to_lps(ijk)), atol=1e-9)
        lps = geometry.index_to_lps(ijk)
        np.testing.assert_allclose(ras, [-lps[0], -lps[1], lps[2]], atol=1e-9)
    np.testing.assert_allclose(node.GetSpacing(), geometry.spacing)
    voxels = slicer_core.util.arrayFromVolume(node)
    assert voxels.shape == (5, 6, 7) and voxels[2, 1, 3] == array[2, 1, 3]


def test_sitk_round_trip_keeps_geometry_and_values(mrml_scene, oblique):
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of, image_from_array
    from VertebralFractureLib.mrml.volumes import geometry_of_volume, image_from_volume, volume_from_image

    array, geometry = oblique
    image = image_from_array(array, geometry)
    node = volume_from_image(image, scene=mrml_scene, name="CT")
    assert geometry_of_volume(node).same_grid(geometry, 1e-9)
    back = image_from_volume(node)
    assert geometry_of(back).same_grid(geometry, 1e-9)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(back), array)


def test_file_written_by_slicer_has_itk_geometry(mrml_scene, slicer_core, oblique, tmp_path):
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of
    from VertebralFractureLib.mrml.volumes import volume_from_array

    array, geometry = oblique
    node = volume_from_array(array, geometry, scene=mrml_scene)
    storage = slicer_core.vtkMRMLVolumeArchetypeStorageNode()
    storage.SetFileName(str(tmp_path / "ct.nrrd"))
    assert storage.WriteData(node)
    image = sitk.ReadImage(str(tmp_path / "ct.nrrd"))
    assert geometry_of(image).same_grid(geometry, 1e-5)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), array)


def test_labelmap_bool_and_update(mrml_scene):
    from VertebralFractureLib.mrml.volumes import array_from_volume, volume_from_array

    geometry = ImageGeometry((4, 3, 2), (1, 1, 1), (0, 0, 0), np.eye(3))
    mask = np.zeros((2, 3, 4), bool)
    mask[1, 2, 3] = True
    node = volume_from_array(mask, geometry, scene=mrml_scene, labelmap=True)
    assert node.IsA("vtkMRMLLabelMapVolumeNode")
    assert array_from_volume(node).dtype == np.uint8 and array_from_volume(node)[1, 2, 3] == 1
    same = volume_from_array(mask * 5, geometry, node=node)
    assert same is node and array_from_volume(node).max() == 5


def test_2d_geometry_becomes_one_slice(mrml_scene):
    from VertebralFractureLib.mrml.volumes import array_from_volume, geometry_of_volume, volume_from_array

    geometry = ImageGeometry((5, 4), (0.2, 0.3), (10.0, 20.0), np.eye(2))
    node = volume_from_array(np.ones((4, 5)), geometry, scene=mrml_scene)
    assert array_from_volume(node).shape == (1, 4, 5)
    back = geometry_of_volume(node)
    assert back.size == (5, 4, 1) and back.spacing[:2] == pytest.approx((0.2, 0.3))


def test_shape_mismatch_is_refused(mrml_scene, oblique):
    from VertebralFractureLib.mrml.volumes import volume_from_array

    _, geometry = oblique
    with pytest.raises(ValueError, match="does not match geometry size"):
        volume_from_array(np.zeros((7, 6, 5)), geometry, scene=mrml_scene)


def _dicom_volume(tmp_path, mrml_scene, thickness):
    """A real DICOM series (spacing 1.5 mm, Slice Thickness ``thickness``) shown as Slicer's DICOM module loads it:
    a volume node listing its instances' UIDs; and the UID -> file table of its database."""
    import sys
    from pathlib import Path

    import SimpleITK as sitk

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.mrml.volumes import DICOM_INSTANCES_ATTRIBUTE, volume_from_image

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
    from test_images import write_dicom_series

    image = sitk.GetImageFromArray(np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7))
    image.SetSpacing((0.7, 0.7, 1.5))
    write_dicom_series(tmp_path / "series", image, slice_thickness=thickness)
    files = {}
    for path in sorted((tmp_path / "series").glob("*.dcm")):
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
        files[reader.GetMetaData("0008|0018").strip("\0 ")] = str(path)
    node = volume_from_image(read_image(tmp_path / "series"), scene=mrml_scene, name="CT")
    node.SetAttribute(DICOM_INSTANCES_ATTRIBUTE, " ".join(files))
    return node, DicomDatabase(files)


def test_a_volume_loaded_from_dicom_carries_its_slice_thickness_into_the_analysis(tmp_path, mrml_scene):
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of, read_image
    from VertebralFractureLib.mrml.volumes import DICOM_INSTANCES_ATTRIBUTE, dicom_slice_thickness, image_from_volume

    node, database = _dicom_volume(tmp_path, mrml_scene, 3.0)
    assert dicom_slice_thickness(node, database) == 3.0
    geometry = geometry_of(image_from_volume(node, database))
    np.testing.assert_allclose(geometry.spacing, (0.7, 0.7, 1.5))
    assert geometry.resolution == pytest.approx((0.7, 0.7, 3.0))
    assert geometry.resolved_mm[2] == pytest.approx(3.0)
    # the background analysis reads the volume from the NRRD the logic writes: the thickness goes with it
    sitk.WriteImage(image_from_volume(node, database), str(tmp_path / "input.nrrd"), True)
    assert geometry_of(read_image(tmp_path / "input.nrrd")).resolution == pytest.approx((0.7, 0.7, 3.0))
    # not from DICOM, a database that does not hold the files, or no database: the spacing stands
    node.SetAttribute(DICOM_INSTANCES_ATTRIBUTE, "")
    assert dicom_slice_thickness(node, database) is None
    assert geometry_of(image_from_volume(node, database)).resolution is None
    node.SetAttribute(DICOM_INSTANCES_ATTRIBUTE, " ".join(database.files))
    assert dicom_slice_thickness(node, DicomDatabase({})) is None
    assert dicom_slice_thickness(node) is None  # slicer-core has no slicer.dicomDatabase


@pytest.mark.parametrize("thickness, recorded", [(1.0, None), (12.0, None)])
def test_a_dicom_slice_thickness_at_the_spacing_or_implausible_records_nothing(tmp_path, mrml_scene, thickness,
                                                                            recorded):
    from VertebralFractureLib.io.images import geometry_of
    from VertebralFractureLib.mrml.volumes import image_from_volume

    node, database = _dicom_volume(tmp_path, mrml_scene, thickness)
    assert geometry_of(image_from_volume(node, database)).resolution is recorded


def test_an_enhanced_ct_loaded_from_dicom_carries_the_thickness_of_its_functional_groups(tmp_path, mrml_scene):
    """Slicer's DICOM module loads an enhanced (multi-frame) CT as one volume listing its one instance; its Slice
    Thickness is in the Pixel Measures macro, not a top-level tag."""
    import SimpleITK as sitk
    from pydicom.uid import generate_uid
    from testdata import real, write_ct_series, write_enhanced_ct

    from VertebralFractureLib.io.images import geometry_of, read_image
    from VertebralFractureLib.mrml.volumes import (
        DICOM_INSTANCES_ATTRIBUTE,
        dicom_slice_thickness,
        image_from_volume,
        volume_from_image,
    )

    sample = sitk.ReadImage(str(real("totalsegmentator", "example_ct.nii.gz")))[:, :, 40:60]
    write_ct_series(sample, tmp_path / "series", study_uid=generate_uid(), series_uid=generate_uid())
    enhanced = write_enhanced_ct(tmp_path / "series", tmp_path / "enhanced" / "ct.dcm", slice_thickness=5.0)
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(enhanced))
    reader.ReadImageInformation()
    uid = reader.GetMetaData("0008|0018").strip("\0 ")
    node = volume_from_image(read_image(enhanced), scene=mrml_scene, name="CT")
    node.SetAttribute(DICOM_INSTANCES_ATTRIBUTE, uid)
    assert dicom_slice_thickness(node, DicomDatabase({uid: str(enhanced)})) == 5.0
    assert geometry_of(image_from_volume(node, DicomDatabase({uid: str(enhanced)}))).resolution[2] == pytest.approx(5.0)
