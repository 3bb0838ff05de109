import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.voxelmap.aggregate import (
    component_sizes,
    convex_hull,
    edge_slices,
    hull_auc,
    largest_components,
    patient_roc,
    patient_score,
    roc_auc,
    roc_points,
    vertebra_scores,
)


def _geometry(shape, spacing=2.0):
    return ImageGeometry(list(shape[::-1]), [spacing] * 3, [0.0, 0.0, 0.0], np.eye(3))


def test_vertebra_scores_gaussian_cube_mean():
    shape = (30, 20, 20)
    prob = np.zeros(shape, np.float32)
    prob[4:9, 8:13, 8:13] = 0.9  # a fractured vertebra around voxel (6, 10, 10)
    geometry = _geometry(shape)
    centroids = {"L1": [20.0, 20.0, 12.0], "L2": [20.0, 20.0, 44.0]}  # LPS mm = 2 * (i, j, k)
    scores = vertebra_scores((prob, geometry), centroids, cube=5)
    assert scores["L1"] == pytest.approx(0.9)
    assert scores["L2"] == pytest.approx(0.0)
    # a larger cube reaches beyond the blob: the Gaussian keeps the centre dominant
    wide = vertebra_scores((prob, geometry), centroids, cube=9)["L1"]
    assert 0.3 < wide < 0.9
    assert vertebra_scores((prob, geometry), [[500.0, 0, 0]])[0] is None


def test_vertebra_scores_from_sitk_image():
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.full((10, 10, 10), 0.25, np.float32))
    image.SetSpacing((2.0, 2.0, 2.0))
    image.SetOrigin((-10.0, -10.0, -10.0))
    assert vertebra_scores(image, {"T12": [0.0, 0.0, 0.0]})["T12"] == pytest.approx(0.25)


def test_patient_score_components_and_noise_threshold():
    prob = np.zeros((20, 20, 20), np.float32)
    prob[2:6, 2:6, 2:6] = 0.8  # 64 voxels = 512 mm^3 at 2 mm
    prob[15, 15, 15] = 0.95  # one noisy voxel = 8 mm^3
    geometry = _geometry(prob.shape)
    assert list(component_sizes(prob, 0.5)) == [64, 1]
    score = patient_score((prob, geometry), 0.5, noise_mm3=100.0, edge_margin_mm=0.0)
    assert score.positive and score.n_components == 1 and score.fracture_volume_mm3 == pytest.approx(512.0)
    assert not patient_score((prob, geometry), 0.9, noise_mm3=100.0, edge_margin_mm=0.0).positive
    assert largest_components((prob, geometry), [0.5, 0.9], edge_margin_mm=0.0) == {0.5: 512.0, 0.9: 8.0}


def test_edge_margin_ignores_components_at_the_first_and_last_slices():
    prob = np.zeros((40, 12, 12), np.float32)  # 40 slices of 2 mm
    prob[0:4, 2:6, 2:6] = 0.9  # cut vertebra at the first slice: 64 voxels
    prob[18:22, 2:6, 2:6] = 0.9  # fracture in the middle: 64 voxels
    prob[33:36, 6:10, 6:10] = 0.9  # 48 voxels starting 6 mm from the last slice
    geometry = _geometry(prob.shape)
    assert edge_slices(geometry.spacing, 0.0) == 0 and edge_slices(geometry.spacing, 8.0) == 4
    assert list(component_sizes(prob, 0.5)) == [64, 64, 48]
    assert list(component_sizes(prob, 0.5, edge=2)) == [64, 48]  # the first-slice one is ignored
    assert list(component_sizes(prob, 0.5, edge=5)) == [64]  # the one 6 mm from the end too (edge 10 mm)
    assert list(component_sizes(prob, 0.5, edge=3)) == [64, 48]  # 6 mm from the end: outside a 6 mm margin
    score = patient_score((prob, geometry), 0.5, noise_mm3=100.0, edge_margin_mm=10.0)
    assert score.positive and score.n_components == 1 and score.edge_margin_mm == 10.0
    only_edge = prob.copy()
    only_edge[18:22] = 0.0
    assert patient_score((only_edge, geometry), 0.5, noise_mm3=100.0, edge_margin_mm=0.0).positive
    assert not patient_score((only_edge, geometry), 0.5, noise_mm3=100.0, edge_margin_mm=10.0).positive
    assert largest_components((only_edge, geometry), [0.5], edge_margin_mm=10.0) == {0.5: 0.0}
    assert largest_components((prob, geometry), [0.5]) == {0.5: 512.0}  # default margin keeps the middle one


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=2, max_size=40))
def test_auc_matches_pairwise_definition(pairs):
    scores = np.array([p[0] for p in pairs])
    truth = np.array([p[1] for p in pairs])
    if truth.all() or not truth.any():
        assert np.isnan(roc_auc(scores, truth))
        return
    pos, neg = scores[truth], scores[~truth]
    expected = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(scores, truth) == pytest.approx(expected)
    points = roc_points(scores, truth)
    assert hull_auc(convex_hull(points)) >= roc_auc(scores, truth) - 1e-9  # the hull dominates the curve


def test_convex_hull_of_known_points():
    hull = convex_hull(np.array([[0.1, 0.6], [0.2, 0.5], [0.5, 0.9], [0.3, 0.95]]))
    np.testing.assert_allclose(hull, [[0, 0], [0.1, 0.6], [0.3, 0.95], [1, 1]])
    assert hull_auc(hull) == pytest.approx(0.5 * 0.1 * 0.6 + 0.2 * (0.6 + 0.95) / 2 + 0.7 * (0.95 + 1) / 2)


def test_patient_roc_perfect_separation():
    largest = [{0.5: 900.0, 0.8: 300.0}, {0.5: 40.0, 0.8: 0.0}, {0.5: 700.0, 0.8: 100.0}, {0.5: 0.0, 0.8: 0.0}]
    points, hull = patient_roc(largest, [True, False, True, False])
    assert hull_auc(hull) == pytest.approx(1.0)
    assert len(points) >= 4
