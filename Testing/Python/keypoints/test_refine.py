"""End-plate refinement: keypoints follow a depressed (biconcave-like) end plate; on a real CT they return to the
endplates of its vertebra mask."""

import functools
from pathlib import Path

import numpy as np
import pytest

from VertebralFractureLib.keypoints.refine import (
    OFFSET_MM,
    refine_endplates,
    refine_on_ct,
    steepest_fall,
    trace_endplates,
)
from VertebralFractureLib.training.keypoints.targets import genant_of


def test_middle_points_follow_a_depressed_end_plate():
    image = np.zeros((80, 60), dtype=np.float32)
    image[20:45, 10:41] = 1.0  # body rows 20-44 (edges at 19.5 and 44.5), columns 10-40
    image[20:26, 20:31] = 0.0  # superior end plate depressed by 6 mm in the middle
    # detector-like guess: a normal box, 2 mm off everywhere
    guess = np.array([[11.0, 22.0], [11.0, 42.0], [25.0, 22.0], [25.0, 42.0], [39.0, 22.0], [39.0, 42.0]])
    refined = refine_endplates(image, guess)
    np.testing.assert_allclose(refined[:, 0], guess[:, 0])  # columns kept
    np.testing.assert_allclose(refined[[0, 4], 1], 19.5 + OFFSET_MM, atol=0.3)  # corners on the edge
    np.testing.assert_allclose(refined[2, 1], 25.5 + OFFSET_MM, atol=0.3)  # middle follows the depression
    np.testing.assert_allclose(refined[1::2, 1], 44.5 - OFFSET_MM, atol=0.3)  # inferior end plate
    g_guess, g_refined = genant_of(guess[None])[0], genant_of(refined[None])[0]
    assert g_guess == 1.0 and g_refined < 0.75  # now a moderate deformity
    # batch input keeps its shape
    assert refine_endplates(image, np.stack([guess, guess])).shape == (2, 6, 2)



def _drawn_body(superior_row, rim_row=None):
    """A 1 mm lateral view of one body: marrow 0.6, 1 mm cortical endplates 1.0, discs 0.1, columns 10-40.

    ``superior_row(column)`` is the superior endplate's row; ``rim_row`` adds the rim seen in projection at that row
    (1.0) where the endplate lies deeper, the depressed plate there fainter (0.8), the depression between them
    half filled (0.35). The inferior endplate lies at row 44.
    """
    image = np.full((80, 60), 0.1, dtype=np.float32)
    for column in range(10, 41):
        top = int(round(superior_row(column)))
        image[top:45, column] = 0.6
        image[top, column] = 1.0
        image[44, column] = 1.0
        if rim_row is not None and top > rim_row + 2:
            image[top, column] = 0.8
            image[rim_row, column] = 1.0
            image[rim_row + 1:top, column] = 0.35
    return image


#: A detector-like normal box on the drawn body: superior row 20.5, inferior 43.5 (1 mm inside the endplates).
NORMAL_BOX = np.array([[11.0, 20.5], [11.0, 43.5], [25.0, 20.5], [25.0, 43.5], [39.0, 20.5], [39.0, 43.5]])


def test_the_trace_follows_an_anterior_wedge_that_the_detector_drew_normal():
    # superior endplate 8 mm lower at the front (column 10) than at the back (column 40): an anterior wedge
    image = _drawn_body(lambda column: 28.0 - 8.0 * (column - 10) / 30.0)
    traced, done, own = trace_endplates(image, NORMAL_BOX)
    assert done.all() and own.all()
    np.testing.assert_allclose(traced[:, 0], NORMAL_BOX[:, 0])  # only the rows move
    expected = 28.0 - 8.0 * (NORMAL_BOX[[0, 2, 4], 0] - 10) / 30.0 - 0.5 + OFFSET_MM  # edge: the plate's outer face
    np.testing.assert_allclose(traced[[0, 2, 4], 1], expected, atol=0.8)
    np.testing.assert_allclose(traced[[1, 3, 5], 1], NORMAL_BOX[[1, 3, 5], 1], atol=0.5)
    assert genant_of(NORMAL_BOX[None])[0] == 1.0 and genant_of(traced[None])[0] < 0.75  # a moderate wedge found


def test_the_trace_finds_a_depressed_middle_inside_a_stronger_rim():
    # biconcave: the superior endplate a dish 6 mm deep in the middle, the rim still seen at row 20 across it
    image = _drawn_body(lambda column: 20.0 + 6.0 * (1.0 - ((column - 25) / 15.0) ** 2), rim_row=20)
    traced, done, _ = trace_endplates(image, NORMAL_BOX)
    assert done[0, 0]
    assert traced[2, 1] > NORMAL_BOX[2, 1] + 3.0  # the middle point went down into the depression
    np.testing.assert_allclose(traced[[0, 4], 1], NORMAL_BOX[[0, 4], 1], atol=1.0)  # the corners stay on the rim


def test_the_trace_leaves_a_normal_body_as_it_is():
    image = _drawn_body(lambda column: 20.0)
    traced, done, own = trace_endplates(image, NORMAL_BOX + np.array([0.0, 1.5]))  # a box 1.5 mm low
    assert done.all() and own.all()
    np.testing.assert_allclose(traced[[0, 2, 4], 1], 19.5 + OFFSET_MM, atol=0.5)
    np.testing.assert_allclose(traced[[1, 3, 5], 1], 44.5 - OFFSET_MM, atol=0.5)
    assert genant_of(traced[None])[0] > 0.97


def test_an_endplate_without_a_continuous_border_is_not_traced():
    image = np.random.default_rng(0).normal(0.5, 0.2, (80, 60)).astype(np.float32)  # texture, no endplate
    traced, done, _ = trace_endplates(image, NORMAL_BOX)
    np.testing.assert_array_equal(traced[~np.repeat(done, 3, axis=1)[:, [0, 3, 1, 4, 2, 5]].ravel()],
                                  NORMAL_BOX[~np.repeat(done, 3, axis=1)[:, [0, 3, 1, 4, 2, 5]].ravel()])
    assert not done.all()


# ---------------------------------------------------------------------------------------------- on the real CT
TPTBOX = Path(__file__).resolve().parents[2] / "Data" / "real" / "tptbox"


@functools.cache
def _tptbox():
    """The TPTBox CT (1.5 mm) and the six L3 keypoints measured from its vertebra mask (reference file)."""
    import SimpleITK as sitk

    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("tptbox_L3")
    truth = next(v for v in reference.vertebrae if v.label == "L3").keypoints
    return sitk.ReadImage(str(TPTBOX / "sub-ct_label-22_ct.nii.gz")), truth


def _frame(points):
    p = points[4:6].mean(0) - points[0:2].mean(0)
    p /= np.linalg.norm(p)
    s = points[0::2].mean(0) - points[1::2].mean(0)
    s -= s.dot(p) * p
    return p, s / np.linalg.norm(s)


@pytest.mark.parametrize("shift_mm", [3.0, -3.0, 5.0])
def test_refined_points_return_to_the_mask_endplates_of_a_real_ct(shift_mm):
    image, truth = _tptbox()
    p, s = _frame(truth)
    # a detector-like error: every endplate point shift_mm off along the body axis (superior points
    # outwards when positive, the inferior ones inwards) and the columns 2 mm anterior
    sign = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)[:, None]
    guess = truth + shift_mm * sign * s + (-2.0 * p)
    refined = refine_on_ct(image, guess)
    along_axis = (refined - truth) @ s
    across = (refined - truth) @ p
    # on average within 1.5 mm (one voxel of this CT) of the mask's endplate, every point within 2.5 mm: the
    # anterior-inferior corner of this L3 carries a rim lip that the image edge follows 2 mm below the mask; across,
    # the posterior points stand 2.2-2.5 mm in front of the mask's (its posterior wall's cortex, which the mask
    # includes and the image's fall into the canal does not, on a plane that the body's ring puts 0.3 mm beside the
    # mask's middle)
    assert np.abs(along_axis).mean() <= 1.5, along_axis
    assert np.abs(along_axis).max() <= 2.5, along_axis
    assert np.abs(across).mean() <= 1.5, across
    assert np.abs(across).max() <= 2.75, across
    assert np.abs(np.abs((guess - truth) @ s)).min() >= abs(shift_mm) - 1e-6  # the guess really was off


def test_heights_and_g_of_the_refined_points_match_the_mask():
    from VertebralFractureLib.genant import heights

    image, truth = _tptbox()
    p, s = _frame(truth)
    sign = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)[:, None]
    refined = refine_on_ct(image, truth - 3.0 * sign * s)  # a box 6 mm too short
    assert np.abs(heights(refined) - heights(truth)).mean() <= 1.5  # the height-error target
    assert heights(refined).max() - heights(truth - 3.0 * sign * s).max() >= 4.0  # the 6 mm were recovered
    g = heights(refined).min() / heights(refined).max()
    g_true = heights(truth).min() / heights(truth).max()
    assert abs(g - g_true) <= 0.05


def test_steepest_fall_is_sub_sample_and_respects_polarity_and_window():
    positions = np.arange(0.0, 20.0, 0.25)
    # a bone (400 HU) / disc (80 HU) step at 10.1 mm, blurred like a 1 mm voxel
    from scipy.special import erf

    profile = 80 + 320 * 0.5 * (1 - erf((positions - 10.1) / (np.sqrt(2) * 0.6)))
    assert steepest_fall(positions, profile, +1.0, 9.0, 4.0, 0.5) == pytest.approx(10.1, abs=0.05)
    assert steepest_fall(positions, profile, -1.0, 9.0, 4.0, 0.5) is None  # wrong polarity: a rise
    assert steepest_fall(positions, profile, +1.0, 3.0, 4.0, 0.5) is None  # edge outside the window
    assert steepest_fall(positions, np.full_like(positions, 100.0), +1.0, 9.0, 4.0, 0.5) is None  # flat


# ---------------------------------------------------------------------------------------------- thick slices
def _slab_ct(structure_z, slice_mm: float = 3.0, size=(60, 60), z_extent: float = 96.0):
    """(array[k, j, i], geometry) of a body box (x, y 15-45 mm) whose HU along z is ``structure_z(z)``.

    The CT is made like a scanner makes it: the fine HU profile (0.05 mm) is averaged over each
    slice's thickness (partial volume), 1 mm in-plane; soft tissue (40 HU) around the bodies.
    """
    from VertebralFractureLib.geometry import ImageGeometry

    fine = np.arange(0.0, z_extent, 0.05)
    values = structure_z(fine)
    centres = np.arange(slice_mm / 2, z_extent - slice_mm / 2 + 1e-6, slice_mm)
    slabs = np.array([values[np.abs(fine - c) < slice_mm / 2].mean() for c in centres])
    array = np.full((len(centres),) + size, 40.0, dtype=np.float32)
    array[:, 15:46, 15:46] = slabs[:, None, None]
    geometry = ImageGeometry(origin=(0.0, 0.0, slice_mm / 2), spacing=(1.0, 1.0, slice_mm),
                             direction=np.eye(3), size=(size[1], size[0], len(centres)))
    return array, geometry


def _box_keypoints(z_superior: float, z_inferior: float) -> np.ndarray:
    inset = max(1.5, 0.08 * 30.0)  # refine.CT_INSET_MM / CT_INSET_FRACTION of the 30 mm deep body
    columns = (15.0 - 0.5 + inset, 30.0, 45.5 - inset)  # walls at the voxel faces y = 14.5 and 45.5
    return np.array([[30.0, y, z] for y in columns for z in (z_superior, z_inferior)])


def test_refinement_on_3mm_slices_finds_the_endplates_within_half_a_millimetre():
    # dense bone (300 HU) / disc (90 HU): endplates at 46.2 and 20.7 mm, off the 3 mm slice grid
    def structure(z):
        return np.where(((z >= 20.7) & (z <= 46.2)) | (z >= 54.2) | (z <= 12.7), 300.0, 90.0)

    image = _slab_ct(structure)
    truth = _box_keypoints(46.2, 20.7)
    sign = np.where(np.arange(6) % 2 == 0, 1.0, -1.0)
    guess = truth + np.c_[np.zeros(6), np.full(6, -1.0), 2.5 * sign]  # 5 mm too tall, 1 mm anterior
    refined = refine_on_ct(image, guess)
    np.testing.assert_allclose(refined[:, 2], truth[:, 2], atol=0.5)
    np.testing.assert_allclose(refined[:, 1], truth[:, 1], atol=0.5)


def test_merged_endplate_band_of_thick_slices_gives_the_disc_not_the_neighbour():
    # osteoporotic marrow (100 HU), 1 mm cortical endplates (700 HU), a 3 mm disc (90 HU): at 3 mm
    # slices the two endplates and the disc are one bright band whose outer fall is the neighbour's
    from VertebralFractureLib.keypoints.refine import endplate_edge

    def structure(z):
        hu = np.full_like(z, 100.0)
        for low, high in ((44.2, 45.2), (48.2, 49.2), (17.7, 18.7), (21.7, 22.7)):  # plates
            hu[(z >= low) & (z < high)] = 700.0
        hu[((z >= 45.2) & (z < 48.2)) | ((z >= 18.7) & (z < 21.7))] = 90.0  # discs
        return hu

    image = _slab_ct(structure)
    truth = _box_keypoints(45.2, 21.7)  # the bone / disc borders of the middle body
    refined = refine_on_ct(image, truth + np.c_[np.zeros(6), np.zeros(6), np.tile([1.5, -1.5], 3)])
    error = (refined - truth)[:, 2] * np.tile([1.0, -1.0], 3)  # positive = outward (into the disc)
    assert np.all(np.abs(error) <= 1.5 + 0.6), error  # within half the 3 mm disc (+ 0.6 mm)
    # from a point in the disc, the steepest fall alone lands on the neighbour's inner face, a disc and a
    # plate beyond the border (the former refinement); the band rule stays within half the disc
    array, geometry = image
    t = np.arange(30.0, 60.0, 0.25)
    profile = np.interp(t, geometry.origin[2] + 3.0 * np.arange(array.shape[0]), array[:, 30, 30])
    assert steepest_fall(t, profile, 1.0, 46.7, 8.0, 1.5) > 45.2 + 4.0
    position, _, kind = endplate_edge(t, profile, 1.0, 46.7, 8.0, 3.0)
    assert kind == "band" and abs(position - 45.2) <= 2.1


# ---------------------------------------------------------------------------------------------- the endplate line
def _waisted_body():
    """A 1 mm CT of a normal body (bone 250 HU, endplates at z 20.5 and 45.5, discs 90 HU, walls at y 14.5 / 45.5)
    whose front is cut in just above the inferior endplate: prevertebral fat (-100 HU) fills y 14.5-19 at z 22-26.5,
    the concave waist of a real body as a keypoint column 2.9 mm inside the anterior wall meets it."""
    from VertebralFractureLib.geometry import ImageGeometry

    z = np.arange(70) + 0.5
    column = np.where(((z >= 20.5) & (z <= 45.5)) | (z >= 53.5) | (z <= 12.5), 250.0, 90.0).astype(np.float32)
    array = np.full((70, 60, 60), -100.0, dtype=np.float32)
    array[:, 15:46, 15:46] = column[:, None, None]
    array[22:26, 15:19, 15:46] = -100.0  # voxels whose centres lie in z 22.5-25.5: the waist
    geometry = ImageGeometry(origin=(0.0, 0.0, 0.5), spacing=(1.0, 1.0, 1.0), direction=np.eye(3), size=(60, 60, 70))
    return array, geometry


def test_a_corner_whose_column_meets_the_waist_stays_on_the_endplate_traced_across_the_body(monkeypatch):
    """On the real 3 mm chest CT the anterior-inferior corners of normal T12 and L1 were moved 7-9 mm into their
    bodies by such a fall (graded as crushes, then withheld); the endplate traced over the whole body overrules it."""
    import VertebralFractureLib.keypoints.refine as refine
    from VertebralFractureLib.genant import heights

    image = _waisted_body()
    truth = _box_keypoints(45.5, 20.5)
    placed = []
    refined = refine_on_ct(image, truth, line_placed=placed)
    assert abs(refined[1, 2] - 20.5) <= 1.0, refined[:, 2]  # the anterior-inferior corner on the endplate
    assert placed == [1]  # ... as an estimate from the line: its own column still shows the waist
    np.testing.assert_allclose(refined[:, 2], truth[:, 2], atol=1.0)
    assert heights(refined).min() / heights(refined).max() > 0.9  # a normal body stays normal
    # the same refinement without the traced line takes the waist's fall for the endplate: a false wedge
    monkeypatch.setattr(refine, "endplate_line", lambda *args, **kwargs: None)
    fooled = refine_on_ct(image, truth)
    assert fooled[1, 2] > 20.5 + 4.0, fooled[:, 2]
    assert heights(fooled).min() / heights(fooled).max() < 0.85


def test_a_wedge_and_a_concave_endplate_traced_across_the_body_keep_their_shape():
    """The line follows what most of the endplate shows: a tilted superior endplate (anterior wedge, 7 mm lower at
    the front) and a concave inferior one (4 mm deeper in the middle) are measured as such."""
    from VertebralFractureLib.genant import heights
    from VertebralFractureLib.geometry import ImageGeometry

    y = np.arange(60) + 0.5
    z = np.arange(70) + 0.5
    superior = 45.5 - 7.0 * np.clip((45.5 - y) / 31.0, 0, 1)  # 38.5 at the anterior wall, 45.5 at the posterior
    inferior = 20.5 + 4.0 * np.clip(1 - ((y - 30.0) / 15.5) ** 2, 0, 1)  # 24.5 in the middle, 20.5 at the walls
    bone = (z[:, None] >= inferior[None]) & (z[:, None] <= superior[None])
    column = np.where(bone | (z[:, None] >= 53.5) | (z[:, None] <= 12.5), 250.0, 90.0).astype(np.float32)
    array = np.full((70, 60, 60), -100.0, dtype=np.float32)
    array[:, 15:46, 15:46] = column[:, 15:46, None]
    geometry = ImageGeometry(origin=(0.0, 0.0, 0.5), spacing=(1.0, 1.0, 1.0), direction=np.eye(3), size=(60, 60, 70))
    guess = _box_keypoints(44.0, 22.0)  # a detector-like normal box
    refined = refine_on_ct((array, geometry), guess)
    columns = refined[:, 1]
    np.testing.assert_allclose(refined[0::2, 2], np.interp(columns[0::2], y, superior), atol=1.0)
    np.testing.assert_allclose(refined[1::2, 2], np.interp(columns[1::2], y, inferior), atol=1.0)
    h = heights(refined)
    assert h[0] < h[2] - 4.0 and h[1] < h[2] - 2.0  # anterior and middle heights short of the posterior


# ---------------------------------------------------------------------------------------------- the body's plane
@pytest.mark.parametrize("side_mm", [4.0, -4.0])
def test_points_beside_the_middle_of_a_real_body_move_onto_its_mid_sagittal_plane(side_mm):
    from VertebralFractureLib.keypoints.refine import body_midplane

    image, truth = _tptbox()
    p, s = _frame(truth)
    lateral = np.cross(p, s)
    guess = truth + side_mm * lateral  # the centre line passing 4 mm beside the body's middle
    refined = refine_on_ct(image, guess)
    # the mask's own middle (the reference points') within 1 mm, from 4 mm off
    assert abs(float(np.mean((refined - truth) @ lateral))) <= 1.0
    assert abs(float(np.mean((guess - truth) @ lateral))) == pytest.approx(abs(side_mm))
    # the plane found is the canal's middle, the same from either side
    middle = body_midplane(image, guess, 1.5)
    assert middle is not None and abs(middle + side_mm) <= 1.0
    # measured on the detector's own plane when asked (the chain's check)
    kept = refine_on_ct(image, guess, midplane=False)
    assert float(np.mean((kept - truth) @ lateral)) == pytest.approx(side_mm, abs=0.3)


def _body_with_canal(aorta: bool, canal: bool = True, canal_x: float = 40.0, cortex: bool = True,
                     rib_head: bool = False, strut: bool = False):
    """(array[k, j, i], geometry) of a 1 mm CT: a body (x 20-60, y 20-50 mm, 250 HU with a 700 HU cortex, or none)
    with, behind it, a bony ring round a 20 mm wide canal (CSF 20 HU) centred at ``canal_x``; optionally a
    contrast-filled aorta (350 HU, 24 mm across) against the body's side at x 60-84 mm, or a rib head (a 900 HU
    plate 2 mm thick, 6 mm beyond the body's left side, as a costovertebral joint in the slice), or a trabecular
    strut (a 450 HU plate 2 mm thick inside the body, 6 mm from its left cortex); fat (-80 HU) around."""
    from VertebralFractureLib.geometry import ImageGeometry

    z, y, x = np.mgrid[0:60, 0:100, 0:100].astype(np.float32)  # voxel centres at whole mm
    array = np.full(z.shape, -80.0, dtype=np.float32)
    body = (x >= 20) & (x <= 60) & (y >= 20) & (y <= 50) & (z >= 15) & (z <= 45)
    array[body] = 700.0 if cortex else 250.0
    inner = (x >= 21.5) & (x <= 58.5) & (y >= 21.5) & (y <= 48.5) & (z >= 16.5) & (z <= 43.5)
    array[inner] = 250.0
    if rib_head:
        array[(x >= 66) & (x <= 67) & (y >= 25) & (y <= 45) & (z >= 15) & (z <= 45)] = 900.0
    if strut:
        array[(x >= 53) & (x <= 54) & (y >= 25) & (y <= 45) & (z >= 20) & (z <= 40)] = 450.0
    ring = (np.abs(x - canal_x) <= 17) & (y > 50) & (y <= 72) & (z >= 15) & (z <= 45)
    array[ring] = 600.0
    if canal:
        array[(np.abs(x - canal_x) <= 10) & (y > 50) & (y <= 66) & (z >= 15) & (z <= 45)] = 20.0
    if aorta:
        array[((x - 72) ** 2 + (y - 30) ** 2 <= 12 ** 2) & (x > 60)] = 350.0
    geometry = ImageGeometry(origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0), direction=np.eye(3),
                             size=(100, 100, 60))
    return array, geometry


def _points_at(x: float) -> np.ndarray:
    """Six keypoints of the drawn body on the sagittal plane at ``x`` (anterior y 22.4, posterior 47.6)."""
    return np.array([[x, y, z] for y in (22.4, 35.0, 47.6) for z in (45.0, 15.0)])


@pytest.mark.parametrize("aorta", [False, True])
def test_the_plane_is_the_middle_of_the_canal_with_an_aorta_against_the_body(aorta):
    from VertebralFractureLib.keypoints.refine import body_midplane

    image = _body_with_canal(aorta)
    points = _points_at(43.0)  # 3 mm to the left of the canal's middle (x = 40)
    frame_lateral = np.cross(points[4:6].mean(0) - points[0:2].mean(0), points[0::2].mean(0) - points[1::2].mean(0))
    sign = float(np.sign(frame_lateral[0]))
    middle = body_midplane(image, points, 1.0)
    assert middle is not None and middle * sign == pytest.approx(-3.0, abs=0.3)
    np.testing.assert_allclose(refine_on_ct(image, points)[:, 0], 40.0, atol=0.3)


def _sign(points) -> float:
    """+1 when the body frame's lateral axis of ``points`` points along +x."""
    return float(np.sign(np.cross(points[4:6].mean(0) - points[0:2].mean(0),
                                  points[0::2].mean(0) - points[1::2].mean(0))[0]))


def test_without_a_canal_the_cortical_ring_gives_the_plane_and_without_either_the_points_stay():
    from VertebralFractureLib.keypoints.refine import body_midplane, ring_middle

    points = _points_at(43.0)
    image = _body_with_canal(aorta=False, canal=False)
    assert ring_middle(image, points, 1.0) * _sign(points) == pytest.approx(-3.0, abs=0.3)
    np.testing.assert_allclose(refine_on_ct(image, points)[:, 0], 40.0, atol=0.3)
    bare = _body_with_canal(aorta=False, canal=False, cortex=False)  # no cortex resolved, no canal
    assert ring_middle(bare, points, 1.0) is None and body_midplane(bare, points, 1.0) is None
    np.testing.assert_allclose(refine_on_ct(bare, points)[:, 0], 43.0, atol=1e-6)


def test_without_a_resolved_cortex_the_plane_is_the_canal_s_middle():
    from VertebralFractureLib.keypoints.refine import body_midplane, ring_middle

    image = _body_with_canal(aorta=False, cortex=False)
    points = _points_at(43.0)
    assert ring_middle(image, points, 1.0) is None
    assert body_midplane(image, points, 1.0) * _sign(points) == pytest.approx(-3.0, abs=0.3)


def test_a_rotated_vertebra_is_measured_on_its_body_s_middle_not_its_canal_s():
    # a rotated vertebra (scoliosis): the canal 4 mm off the body's middle (the real chest CT's L1: 9 mm)
    from VertebralFractureLib.keypoints.refine import body_midplane

    image = _body_with_canal(aorta=False, canal_x=44.0)
    points = _points_at(43.0)
    assert body_midplane(image, points, 1.0) * _sign(points) == pytest.approx(-3.0, abs=0.3)
    np.testing.assert_allclose(refine_on_ct(image, points)[:, 0], 40.0, atol=0.3)
    # without the ring (the coronal turn's neighbour centres, keypoints/column_tilt.py) the canal and the walls
    # disagree and the plane stays
    assert body_midplane(image, points, 1.0, ring=False) is None


def test_a_body_cut_by_the_field_of_view_gives_no_ring():
    # the image ends 2 mm inside the body's left side: no cortex there, and the flat continuation beyond the edge
    # is no fall, so the ring is not found (not half-way to the image's edge)
    from VertebralFractureLib.keypoints.refine import ring_middle

    array, geometry = _body_with_canal(aorta=False)
    cut = array[:, :, :59].copy()
    from VertebralFractureLib.geometry import ImageGeometry

    cut_geometry = ImageGeometry(origin=geometry.origin, spacing=geometry.spacing, direction=geometry.direction,
                                 size=(59, 100, 60))
    points = _points_at(43.0)
    assert ring_middle((cut, cut_geometry), points, 1.0) is None
    assert ring_middle((array, geometry), points, 1.0) is not None  # the whole body: found


@pytest.mark.parametrize("other", ["rib_head", "strut"])
def test_a_rib_head_beyond_the_body_s_side_or_a_strut_inside_it_is_not_its_cortex(other):
    # the innermost plate that falls at least half as far as the strongest: the rib head falls further and lies
    # outside, the strut (450 HU in 250 HU bone) lies inside but falls far less than the cortex (700 HU to fat)
    from VertebralFractureLib.keypoints.refine import ring_middle

    image = _body_with_canal(aorta=False, **{other: True})
    points = _points_at(43.0)
    assert ring_middle(image, points, 1.0) * _sign(points) == pytest.approx(-3.0, abs=0.3)


def test_where_canal_and_side_walls_disagree_the_points_move_only_as_far_as_both_support():
    # no cortex resolved (the ring is not found), the canal 3.5 mm off the body's middle (x = 40), the points 7 mm
    # off it on the same side: both measures say "move towards -x", by 3.5 and by 7 mm; the smaller move is made
    image = _body_with_canal(aorta=False, canal_x=43.5, cortex=False)
    np.testing.assert_allclose(refine_on_ct(image, _points_at(47.0))[:, 0], 43.5, atol=0.3)


# ---------------------------------------------------------------------------------------------- the CT as it is read
def test_a_ct_of_1_mm_or_coarser_is_read_as_it_is():
    from VertebralFractureLib.keypoints.refine import reading_ct

    image = _body_with_canal(aorta=False)  # 1 mm voxels
    assert reading_ct(image, _points_at(40.0)) is image


def test_finer_pixels_are_read_low_passed_to_1_mm_around_the_bodies_and_in_place():
    from VertebralFractureLib.geometry import ImageGeometry
    from VertebralFractureLib.keypoints.refine import CT_READING_MARGIN_MM, reading_ct

    rng = np.random.default_rng(3)
    size = (400, 300, 40)  # i, j, k: 0.5 mm pixels, 3 mm slices
    array = rng.normal(0.0, 100.0, size[::-1]).astype(np.float32)  # a sharp kernel's pixel noise
    array[:, 100:110, 200:210] += 1000.0  # a bright rod 5 x 5 mm at x 100-105, y 50-55 mm
    geometry = ImageGeometry(size=size, spacing=(0.5, 0.5, 3.0), origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    around = np.array([[102.0, 52.0, 60.0]])
    read, read_geometry = reading_ct((array, geometry), around)
    # only the box of the bodies plus the margin, at the same place in the patient
    assert read_geometry.spacing == geometry.spacing and read.shape[0] == 40
    low = np.asarray(read_geometry.origin)
    np.testing.assert_allclose(low[:2], np.maximum(around[0, :2] - CT_READING_MARGIN_MM, 0.0), atol=0.5)
    rod = read_geometry.lps_to_index([[102.5, 52.5, 60.0]])[0].round().astype(int)
    assert read[20, rod[1], rod[0]] > 800.0  # the rod is where it was, still bright
    # in-plane noise low-passed (Gaussian of sqrt(0.5^2 - 0.25^2) = 0.43 mm), the 3 mm slices left as they are
    assert np.std(read[:, :60, :60]) < 0.55 * np.std(array[:, :60, :60])
    assert read_geometry.resolution == (1.0, 1.0, 3.0)


@pytest.mark.parametrize("covered_to_y, found", [(35.0, True), (37.5, False)])
def test_two_columns_that_show_both_cortices_are_the_ring(covered_to_y, found):
    # the chest CT's T4: a contrast-filled aorta pressed against its left side hides the cortex on the front
    # columns of the ring (CT_RING_COLUMNS: y 28.7, 31.2, 33.7, 36.3, 38.8 here). Bone-bright tissue against the
    # left side up to y 35 leaves two columns with both cortices: they give the ring's middle; up to y 37.5, one
    # column: no ring (the plane is then the canal's, checked against the side walls).
    from VertebralFractureLib.keypoints.refine import ring_middle

    array, geometry = _body_with_canal(aorta=False)
    z, y, x = np.mgrid[0:60, 0:100, 0:100]
    array[(x > 60) & (x <= 72) & (y >= 10) & (y <= covered_to_y) & (z >= 10) & (z <= 50)] = 700.0
    points = _points_at(43.0)
    middle = ring_middle((array, geometry), points, 1.0)
    if found:
        assert middle is not None and middle * _sign(points) == pytest.approx(-3.0, abs=0.3)
    else:
        assert middle is None


def test_a_ring_move_under_half_a_voxel_is_made_and_a_canal_move_is_not():
    # points 0.4 mm beside the body's middle: the cortical ring, a sub-voxel peak on both sides, moves them; the
    # canal's middle (no cortex resolved) is below what its walls resolve at half a voxel and leaves them
    with_ring = _body_with_canal(aorta=False)
    np.testing.assert_allclose(refine_on_ct(with_ring, _points_at(40.4))[:, 0], 40.0, atol=0.15)
    canal_only = _body_with_canal(aorta=False, cortex=False)
    np.testing.assert_allclose(refine_on_ct(canal_only, _points_at(40.4))[:, 0], 40.4, atol=1e-6)


def test_the_faint_ring_of_a_3_mm_soft_kernel_ct_puts_the_points_on_the_body_s_middle():
    # the real sample CT (3 mm voxels, soft kernel): L4's cortex stands 50-60 HU above its marrow, under the sharp
    # CT's 100 HU; read at the voxel's contrast (CT_RING_SHARP_MM) the ring is found. Points 1.5 mm to the right of
    # both readers' plane (x 4.0 mm; the canal's middle is under half a voxel away and does not move them) come back
    # onto it, and the box no longer leans with walls read off the middle (keypoint error 3.9 mm before)
    import SimpleITK as sitk

    import VertebralFractureLib.keypoints.refine as refine
    from VertebralFractureLib.io.images import geometry_of
    from VertebralFractureLib.keypoints.refine import ring_middle
    from VertebralFractureLib.training.real.reference import load_case

    reference = load_case("sample_ct")
    truth = next(v for v in reference.vertebrae if v.label == "L4").keypoints
    image = sitk.ReadImage(str(reference.image_path))
    start = truth + np.array([-1.5, 0.0, 0.0])
    refined = refine_on_ct(image, start)
    assert abs(float(refined[:, 0].mean()) - 4.0) <= 0.6
    assert float(np.linalg.norm(refined - truth, axis=1).mean()) <= 1.5
    # at the full thresholds (a plate as sharp as a 1 mm voxel shows it) the ring is not found on this CT
    array = sitk.GetArrayFromImage(image)
    original = refine.CT_RING_SHARP_MM
    try:
        refine.CT_RING_SHARP_MM = 100.0
        assert ring_middle((array, geometry_of(image)), start, 3.0) is None
    finally:
        refine.CT_RING_SHARP_MM = original
    assert ring_middle((array, geometry_of(image)), start, 3.0) is not None
