import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from VertebralFractureLib.geometry import GeometryError, ImageGeometry, lps_to_ras, ras_to_lps


def rotation(a, b, c):
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


ANGLE = st.floats(-np.pi, np.pi)
POSITIVE = st.floats(0.1, 5.0)
COORD = st.floats(-500, 500)


@settings(max_examples=60, deadline=None)
@given(
    angles=st.tuples(ANGLE, ANGLE, ANGLE),
    spacing=st.tuples(POSITIVE, POSITIVE, POSITIVE),
    origin=st.tuples(COORD, COORD, COORD),
    flip=st.sampled_from([1.0, -1.0]),
    index=st.lists(st.tuples(COORD, COORD, COORD), min_size=1, max_size=4),
)
def test_index_lps_round_trip_oblique(angles, spacing, origin, flip, index):
    direction = rotation(*angles) @ np.diag([1.0, 1.0, flip])  # left-handed grids too
    geometry = ImageGeometry((10, 20, 30), spacing, origin, direction)
    index = np.array(index)
    lps = geometry.index_to_lps(index)
    np.testing.assert_allclose(geometry.lps_to_index(lps), index, atol=1e-7)
    # same as SimpleITK
    image = sitk.Image(10, 20, 30, sitk.sitkUInt8)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction.ravel().tolist())
    expected = image.TransformContinuousIndexToPhysicalPoint(index[0].tolist())
    np.testing.assert_allclose(lps[0], expected, atol=1e-7)
    homogeneous = geometry.affine @ np.append(index[0], 1.0)
    np.testing.assert_allclose(homogeneous[:3], lps[0], atol=1e-7)


def test_index_to_lps_by_hand():
    geometry = ImageGeometry((4, 5, 6), (0.5, 2.0, 3.0), (10.0, 20.0, 30.0), np.diag([-1.0, -1.0, 1.0]))
    np.testing.assert_allclose(geometry.index_to_lps([2, 1, 1]), [9.0, 18.0, 33.0])
    np.testing.assert_allclose(geometry.index_to_lps([[0, 0, 0], [1, 1, 1]]), [[10, 20, 30], [9.5, 18, 33]])
    np.testing.assert_allclose(geometry.lps_to_index([9.0, 18.0, 33.0]), [2, 1, 1])
    assert geometry.extent_mm.tolist() == [2.0, 10.0, 18.0]


@pytest.mark.parametrize(
    "direction, code",
    [
        (np.eye(3), "LPS"),
        (np.diag([-1.0, -1.0, 1.0]), "RAS"),
        (np.array([[0, 0, -1], [1, 0, 0], [0, -1, 0]], float), "PIR"),
        (np.array([[0, 0, 1], [-1, 0, 0], [0, 1, 0]], float), "ASL"),
        (np.diag([1.0, -1.0, -1.0]), "LAI"),
        (rotation(0.2, 0.1, -0.3), "LPS"),
    ],
)
def test_orientation_codes_match_simpleitk(direction, code):
    geometry = ImageGeometry((3, 3, 3), (1, 1, 1), (0, 0, 0), direction)
    assert geometry.orientation_code == code
    itk_code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(direction.ravel().tolist())
    assert itk_code == code
    assert geometry.is_axis_aligned == bool(np.allclose(np.abs(direction).max(axis=0), 1))


def test_2d_geometry():
    geometry = ImageGeometry((100, 50), (0.2, 0.3), (1.0, 2.0), np.eye(2))
    assert geometry.dimension == 2
    np.testing.assert_allclose(geometry.index_to_lps([10, 10]), [3.0, 5.0])
    assert geometry.orientation_code == "LP"
    assert geometry.affine.shape == (3, 3)


def test_ras_lps():
    points = np.array([[1.0, 2.0, 3.0], [-4.0, 5.5, -6.0]])
    np.testing.assert_allclose(lps_to_ras(points), [[-1, -2, 3], [4, -5.5, -6]])
    np.testing.assert_allclose(ras_to_lps(lps_to_ras(points)), points)
    assert lps_to_ras([1.0, 2.0, 3.0]).tolist() == [-1.0, -2.0, 3.0]
    original = points.copy()
    lps_to_ras(points)
    assert np.array_equal(points, original)  # input untouched


def test_contains():
    geometry = ImageGeometry((10, 10, 10), (2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3))
    inside = geometry.contains([[0, 0, 0], [18, 18, 18], [19.5, 0, 0], [-1.5, 0, 0], [10, 10, 30]])
    assert inside.tolist() == [True, True, False, False, False]
    assert geometry.contains([19.0, 0, 0]).item() is True


def test_dict_round_trip_and_same_grid():
    geometry = ImageGeometry((10, 20, 30), (0.5, 0.6, 2.5), (1.5, -2.5, 100.0), rotation(0.1, 0.2, 0.3))
    data = geometry.to_dict()
    assert data["size"] == [10, 20, 30] and len(data["direction"]) == 9
    back = ImageGeometry.from_dict(data)
    assert back == geometry and back.same_grid(geometry)
    np.testing.assert_array_equal(back.direction, geometry.direction)
    moved = ImageGeometry(geometry.size, geometry.spacing, (1.5, -2.5, 100.1), geometry.direction)
    assert not moved.same_grid(geometry)


@pytest.mark.parametrize(
    "data",
    [
        {"size": [2, 2, 2], "spacing": [1, 1, 1], "origin": [0, 0, 0]},
        {"size": [2, 2, 2], "spacing": [1, 1], "origin": [0, 0, 0], "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
        {"size": [2, 2, 2], "spacing": [1, 1, 1], "origin": [0, 0, 0], "direction": [1, 0, 0]},
        {"size": 3, "spacing": [1, 1, 1], "origin": [0, 0, 0], "direction": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
    ],
)
def test_malformed_dicts(data):
    with pytest.raises(GeometryError, match="malformed image geometry|must all have"):
        ImageGeometry.from_dict(data)


@pytest.mark.parametrize(
    "spacing, origin, direction, message",
    [
        ((1, 0, 1), (0, 0, 0), np.eye(3), "spacing must be positive"),
        ((1, -1, 1), (0, 0, 0), np.eye(3), "spacing must be positive"),
        ((1, np.nan, 1), (0, 0, 0), np.eye(3), "spacing"),
        ((1, 1, 1), (0, np.inf, 0), np.eye(3), "origin must be finite"),
        ((1, 1, 1), (0, 0, 0), np.zeros((3, 3)), "singular"),
        ((1, 1, 1), (0, 0, 0), [[1, 0, 0], [1, 0, 0], [0, 0, 1]], "singular"),
        ((1, 1), (0, 0, 0), np.eye(3), "must all have 3 values"),
    ],
)
def test_invalid_geometries(spacing, origin, direction, message):
    with pytest.raises(GeometryError, match=message):
        ImageGeometry((4, 4, 4), spacing, origin, direction)


def test_voxel_extent_along_a_direction_is_the_spacing_on_an_index_axis():
    import numpy as np

    from VertebralFractureLib.geometry import ImageGeometry

    rotated = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    geometry = ImageGeometry((10, 10, 10), (0.7, 0.8, 3.0), (0.0, 0.0, 0.0), rotated)
    assert geometry.voxel_extent_along([0.0, 0.0, 1.0]) == 3.0
    assert abs(geometry.voxel_extent_along([1.0, 0.0, 0.0]) - 0.8) < 1e-12  # LPS x is the second index axis here
    oblique = np.array([0.0, 0.6, 0.8])  # between y (index axis 0, 0.7 mm) and z (3 mm)
    assert abs(geometry.voxel_extent_along(oblique) - (0.6 * 0.7 + 0.8 * 3.0)) < 1e-12


def test_the_resolution_of_slices_thicker_than_their_spacing_sets_the_voxel_extent():
    from VertebralFractureLib.geometry import ImageGeometry

    geometry = ImageGeometry((10, 10, 10), (0.7, 0.7, 2.5), (0.0, 0.0, 0.0), np.eye(3), resolution=(0.5, 0.7, 5.0))
    assert geometry.resolution == (0.7, 0.7, 5.0)  # never finer than the spacing
    assert geometry.voxel_extent_along([0.0, 0.0, 1.0]) == 5.0
    tilted = np.array([0.0, 0.6, 0.8])
    assert abs(geometry.voxel_extent_along(tilted) - (0.6 * 0.7 + 0.8 * 5.0)) < 1e-12
    assert ImageGeometry.from_dict(geometry.to_dict()).resolution == (0.7, 0.7, 5.0)
    plain = ImageGeometry((10, 10, 10), (0.7, 0.7, 2.5), (0.0, 0.0, 0.0), np.eye(3))
    assert plain.voxel_extent_along([0.0, 0.0, 1.0]) == 2.5 and "resolution" not in plain.to_dict()
