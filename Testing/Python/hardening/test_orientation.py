"""Oblique and flipped orientations: the same anatomy gives the same result, up to resampling error.

One synthetic abdomen CT (2 mm voxels) is written as LPS, RAS (two axes flipped), PIR (axes
permuted) and on an oblique grid (rotated by about 6, 3 and 9 degrees,
resampled linearly). Axis-aligned orientations are reoriented exactly (no interpolation), so
their centre-lines and keypoints must be bit-identical. The oblique one is resampled twice
(onto the oblique grid, back to the canonical one), each time with linear interpolation at
2 mm; tolerances: centre-line within 2 mm (one voxel) everywhere but the last 10 mm of each
end, median 1 mm; keypoints median 1.5 mm, each within 3 mm (1.5 voxels); same levels.
"""

from __future__ import annotations

import numpy as np
import pytest
from hardhelpers import keypoint_weights_missing

AXIS_ALIGNED = ("RAS", "PIR")


@pytest.mark.parametrize("code", ["RAS", "PIR", "LPI", "SAL", "IRP"])
def test_every_axis_aligned_orientation_reaches_the_same_canonical_volume(synthetic_case, code):
    """Why the analysis cannot differ: exactly the same voxels and geometry enter it (no interpolation)."""
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import to_canonical

    base = to_canonical(synthetic_case.ct)
    other = to_canonical(sitk.DICOMOrient(synthetic_case.ct, code))
    assert np.array_equal(sitk.GetArrayViewFromImage(base), sitk.GetArrayViewFromImage(other))
    assert base.GetDirection() == other.GetDirection() and base.GetSpacing() == other.GetSpacing()
    np.testing.assert_allclose(base.GetOrigin(), other.GetOrigin(), atol=1e-9)


@pytest.mark.parametrize("name", AXIS_ALIGNED)
def test_axis_aligned_orientations_give_identical_centrelines(analyses, name):
    base, other = analyses["LPS"][0], analyses[name][0]
    assert np.array_equal(base.points, other.points)
    assert np.array_equal(base.confidence, other.confidence)


def test_oblique_centreline_agrees_within_resampling_error(analyses):
    base, other = analyses["LPS"][0], analyses["oblique"][0]
    low = max(base.points[:, 2].min(), other.points[:, 2].min()) + 10
    high = min(base.points[:, 2].max(), other.points[:, 2].max()) - 10
    assert high - low > 120  # most of the spine is compared
    z = np.arange(low, high, 2.0)
    distance = np.linalg.norm(other.point_at_z(z) - base.point_at_z(z), axis=1)
    assert distance.max() <= 2.0
    assert np.median(distance) <= 1.0


def _keypoints(result):
    return {v.label: np.asarray(v.keypoints, float) for v in result.vertebrae}


@pytest.mark.skipif(keypoint_weights_missing(), reason="keypoint detector weights (weights/keypoints.pt) not shipped")
@pytest.mark.parametrize("name", AXIS_ALIGNED)
def test_axis_aligned_orientations_give_identical_results(analyses, name):
    base, other = analyses["LPS"][1], analyses[name][1]
    assert base.labels and base.labels == other.labels
    for label, points in _keypoints(base).items():
        assert np.array_equal(points, _keypoints(other)[label]), label
    assert [v.measure for v in base.vertebrae] == [v.measure for v in other.vertebrae]


@pytest.mark.skipif(keypoint_weights_missing(), reason="keypoint detector weights (weights/keypoints.pt) not shipped")
def test_oblique_result_agrees_within_resampling_error(analyses):
    base, other = analyses["LPS"][1], analyses["oblique"][1]
    assert other.labels == base.labels
    distances = np.concatenate([np.linalg.norm(_keypoints(other)[label] - points, axis=1)
                                for label, points in _keypoints(base).items()])
    assert np.median(distances) <= 1.5
    assert distances.max() <= 3.0
