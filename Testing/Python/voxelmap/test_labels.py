import numpy as np
from vmhelpers import line_centreline

from VertebralFractureLib.training.voxelmap.targets import Annotation, annotations_from_result, label_volume
from VertebralFractureLib.voxelmap.band_grid import band_grid
from VertebralFractureLib.voxelmap.network_constants import BACKGROUND, FRACTURE, IGNORE, NORMAL


def _grid():
    return band_grid(line_centreline(120), spacing=1.0, band_mm=20.0)


def test_normal_and_flattened_fracture_ellipsoids():
    grid = _grid()
    annotations = [Annotation("L1", np.array([0, 0, 15.0]), False, None, 10.0, 8.0),
                   Annotation("L2", np.array([0, 0, -15.0]), True, None, 10.0, 8.0)]
    labels = label_volume(grid, annotations, line_centreline(120), flattening=0.5)
    n_normal, n_fracture = int((labels == NORMAL).sum()), int((labels == FRACTURE).sum())
    expected = 4 / 3 * np.pi * 10 * 10 * 8
    assert abs(n_normal - expected) / expected < 0.08
    assert abs(n_fracture - expected / 2) / (expected / 2) < 0.1
    k = np.nonzero((labels == FRACTURE).any(axis=(1, 2)))[0]
    assert len(k) <= 9  # 2 x 4 mm semi-axis along the spine, 1 mm voxels
    assert (labels == BACKGROUND).any()
    assert (labels[~grid.mask] == IGNORE).all()


def test_unannotated_ends_are_ignored():
    grid = _grid()
    annotations = [Annotation("L1", np.array([0, 0, 15.0]), False), Annotation("L2", np.array([0, 0, -15.0]), False)]
    labels = label_volume(grid, annotations, line_centreline(120))
    top = grid.geometry.lps_to_index([[0.0, 0.0, 45.0]]).round().astype(int)[0]
    middle = grid.geometry.lps_to_index([[0.0, 0.0, 0.0]]).round().astype(int)[0]
    assert labels[top[2], top[1], top[0]] == IGNORE
    assert labels[middle[2], middle[1], middle[0]] == BACKGROUND


def test_annotations_from_keypoints_and_grades():
    from VertebralFractureLib.schema import SpineResult, Vertebra

    def vertebra(label, z, ha, grade):
        kp = np.array([[0, -15, z + ha / 2], [0, -15, z - ha / 2], [0, 0, z + 12], [0, 0, z - 12],
                       [0, 15, z + 12], [0, 15, z - 12]], float)
        return Vertebra(label, kp.mean(axis=0), kp, extra={"commanded_grade": grade})

    result = SpineResult([vertebra("L1", 30, 24, 0), vertebra("L2", 0, 14, 2)])
    a = annotations_from_result(result)
    assert [x.fractured for x in a] == [False, True] and a[1].grade == 2
    assert np.isclose(a[0].radial_mm, 0.4 * 30) and np.isclose(a[0].axial_mm, 0.35 * 24)
    np.testing.assert_allclose(a[0].axis, [0, 0, -1], atol=0.05)
