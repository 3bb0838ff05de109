import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import geometry_of, image_from_array, read_image, to_canonical
from VertebralFractureLib.spine.centreline import (
    Centreline,
    CentrelineError,
    _present_run,
    curve_from_slices,
    find_centreline,
    smooth_curve,
)


def _truth(z):
    return np.stack([10 * np.sin(z / 50), -20 + 8 * np.cos(z / 70)], axis=1)


def test_present_run_bridges_small_gaps_and_picks_the_longest():
    presence = np.array([0.9, 0, 0, 0, 0.8, 0.9, 0.2, 0.9, 0.9, 0.9, 0, 0, 0, 0.7])
    assert _present_run(presence) == (4, 10)
    assert _present_run(np.zeros(5)) is None


def test_curve_from_slices_smooths_noise_rejects_outliers_and_interpolates():
    rng = np.random.default_rng(0)
    z = np.arange(40) * 3.0 - 60
    xy = _truth(z) + rng.normal(0, 1.0, size=(40, 2))
    xy[17] += [25.0, -30.0]  # one wild slice
    presence = np.ones(40)
    presence[:3] = 0.1  # spine absent at the bottom
    slice_points = np.column_stack([xy, z])
    points, confidence = curve_from_slices(slice_points, presence, np.full(40, 4.0), z_step=1.0)
    assert points[0, 2] == pytest.approx(z[-1]) and points[-1, 2] == pytest.approx(z[3])
    assert np.allclose(np.diff(points[:, 2]), -1.0)
    error = np.hypot(*(points[:, :2] - _truth(points[:, 2])).T)
    assert error.mean() < 0.9 and error.max() < 2.5  # noise 1 mm per slice
    assert confidence.min() > 0.5 and confidence.max() <= 1.0


def test_no_spine_is_an_error():
    with pytest.raises(CentrelineError, match="no axial slice"):
        curve_from_slices(np.zeros((5, 3)), np.zeros(5), np.ones(5), 1.0)


def test_smooth_curve_keeps_a_straight_line():
    z = np.arange(30) * 3.0
    xy = np.column_stack([0.5 * z, 10 - 0.2 * z])
    out = smooth_curve(z, xy, np.ones(30), np.array([4.5, 40.0]))
    assert np.allclose(out, [[2.25, 9.1], [20.0, 2.0]], atol=1e-6)


def _eager_model():
    import torch

    from VertebralFractureLib.spine.network import CentrelineNet

    torch.manual_seed(0)
    model = CentrelineNet(channels=(4, 8), convs=(1, 1), stem_channels=4).eval()
    with torch.no_grad():  # a presence bias so that every slice counts as spine
        model.unet.head.bias[1] = 5.0
    return model


def test_find_centreline_runs_any_model_on_any_orientation():
    ct = sitk.DICOMOrient(read_image(real("tptbox", "sub-ct_label-22_ct.nii.gz")), "RAS")
    geometry = geometry_of(to_canonical(ct))
    result = find_centreline(ct, _eager_model())
    assert isinstance(result, Centreline)
    assert np.all(result.presence > 0.5)
    assert np.allclose(np.diff(result.points[:, 2]), -1.5)
    assert geometry.contains(result.points, margin=2).all()
    assert set(result.to_dict()) >= {"points", "confidence", "presence", "frame"}
    assert set(result.timings_s) == {"resample", "load_model", "network", "anatomy", "curve"}


def test_a_model_that_sees_spine_everywhere_is_overruled_where_there_is_no_bone():
    """A volume of -500 HU has no bone and no canal: whatever the network says, no spine is found."""
    geometry = ImageGeometry((40, 30, 20), (2.0, 2.0, 2.5), (-40.0, -30.0, 0.0), np.eye(3))
    image = sitk.DICOMOrient(image_from_array(np.full((20, 30, 40), -500, np.int16), geometry), "RAS")
    with pytest.raises(CentrelineError, match="no spinal canal found"):
        find_centreline(image, _eager_model())


def test_shipped_network_stays_inside_the_real_vertebral_body():
    """Acceptance (issue 4): on the real TPTBox crop the curve lies inside the vertebral body (labels 49 + 50).

    Counted on the slices that cut the body's core (label 50): slices at the endplates, where the mask is
    only a thin rim of cortex (3-170 voxels instead of ~650) cannot contain a curve through the body centres.
    """
    ct = read_image(real("tptbox", "sub-ct_label-22_ct.nii.gz"))
    mask = to_canonical(read_image(real("tptbox", "sub-ct_seg-subreg_label-22_msk.nii.gz")))
    labels = sitk.GetArrayFromImage(mask)
    body = np.isin(labels, (49, 50))
    result = find_centreline(ct)
    from VertebralFractureLib.io.images import geometry_of

    geometry = geometry_of(mask)
    slices = np.flatnonzero((labels == 50).any(axis=(1, 2)))
    assert len(slices) >= 30
    z = geometry.index_to_lps(np.column_stack([np.zeros(len(slices)), np.zeros(len(slices)), slices]))[:, 2]
    index = np.rint(geometry.lps_to_index(result.point_at_z(z))).astype(int)
    inside = [
        0 <= j < body.shape[1] and 0 <= i < body.shape[2] and body[k, j, i]
        for (i, j, _), k in zip(index, slices)
    ]
    assert np.mean(inside) >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("side", ["left", "right"])
def test_a_colon_filled_with_oral_contrast_beside_the_spine_does_not_take_the_centre_line(side):
    """The real abdominal CT with its descending (left) or ascending (right) colon filled with positive oral contrast
    beside L2-L4 (450 HU, 36 mm across, 80 mm beside the column: ``bench_real_variants.oral_contrast_colon``). Before
    2026-12-07 the network put the spine into the colon on 11 slices with full confidence, the edge of the colon passed
    the bone test, and the network's points there led the canal's path off the canal: the curve passed 36 mm beside
    L3 (on the unchanged CT 1.6 mm; with the colon now 3.8-3.9 mm). It must pass within 12 mm of L1-L5."""
    from testdata import benchmark

    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("sample_ct")
    image = benchmark("bench_real_variants").oral_contrast_colon(read_image(reference.image_path), reference, side)
    result = find_centreline(image)
    centroids = np.array([v.centroid for v in reference.vertebrae if v.label in ("L1", "L2", "L3", "L4", "L5")])
    distance = np.hypot(*(result.point_at_z(centroids[:, 2])[:, :2] - centroids[:, :2]).T)
    assert distance.max() <= 12.0, np.round(distance, 1)


@pytest.mark.slow
def test_a_network_point_in_bone_is_never_moved_away_from_the_middle_of_the_body():
    """The real abdominal CT as a 180 mm reconstruction around its spine
    (``bench_real_variants.reconstruction_circle``): below L5 the canal track follows the ilium, 60-80 mm beside the
    middle, while the network's points lie on the sacrum and the pelvis nearer it. A point in bone without a canal of
    its own is overruled only toward the body's left-right middle (a colon beside the spine); moved out to the ilium
    here (20 -> 62 mm), L1 and L5 came out assessed on a plane through the pelvis (keypoint error 2.3 -> 3.7 mm).
    Points off bone may move either way."""
    from testdata import benchmark

    from VertebralFractureLib.spine.anatomy import body_midline_x
    from VertebralFractureLib.spine.centreline import (
        NET_SPACING,
        apply_anatomy,
        bone_evidence,
        load_model,
        predict_slices,
        prepare_volume,
        track_beside_column,
    )
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("sample_ct")
    middle_xy = np.median(np.array([v.centroid for v in reference.vertebrae]), axis=0)[:2]
    image = to_canonical(benchmark("bench_real_variants").reconstruction_circle(read_image(reference.image_path),
                                                                               middle_xy, 90.0))
    hu, geometry = prepare_volume(image, NET_SPACING)
    raw = predict_slices(load_model(), hu, geometry)
    track = track_beside_column(image, raw)
    before = raw["points"].copy()
    in_bone = bone_evidence(hu, geometry, before) >= 0.5
    apply_anatomy(raw, track, hu, geometry)
    middle = body_midline_x(hu, geometry)
    moved = np.hypot(*(raw["points"][:, :2] - before[:, :2]).T) > 1.0
    assert moved.any()  # the track overrules some points of this CT
    outward = np.abs(raw["points"][:, 0] - middle) > np.abs(before[:, 0] - middle) + 1.0
    assert not (moved & in_bone & outward).any(), before[moved & in_bone & outward, 2]
