"""The quality gate's building blocks on a drawn body whose every value is known: its frame, its size, its bone.

The real and generated spines of ``test_gate.py`` show that the gate withholds what it should; these show that each
check reads what its docstring says, with the numbers a reader sees in the reason.
"""

import numpy as np
import pytest
from testdata import box_keypoints

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.quality.checks import (
    BodyFrame,
    band,
    body_runs_out_sideways,
    check_bone,
    check_canal_and_posterior,
    check_field_of_view,
    check_neighbours,
    check_size,
)

SPACING = 0.5
#: The drawn body (LPS mm): 30 mm wide (x), 30 mm deep (y, posterior +), 25 mm tall (z, superior +).
BODY = {"x": (10.0, 40.0), "y": (10.0, 40.0), "z": (12.5, 37.5)}
CORTEX_MM = 1.5


def keypoints(height=25.0, depth: float = 25.2, centre=(25.0, 25.0, 25.0)) -> np.ndarray:
    """:func:`testdata.box_keypoints` of an upright body; ``height`` one for the three columns or (a, m, p)."""
    return box_keypoints(centre, heights=tuple(np.broadcast_to(np.asarray(height, float), (3,))), depth=depth)


#: The drawn arch behind the body (x, y ranges in mm; it spans the body's height): two pedicles, a lamina and a
#: spinous process round a canal at x 18-32, y 40-52.
ARCH = (((12.0, 18.0), (40.0, 52.0)), ((32.0, 38.0), (40.0, 52.0)), ((12.0, 38.0), (52.0, 58.0)),
        ((22.0, 28.0), (58.0, 75.0)))


def drawn_body(cortex_hu: float = 700.0, core_hu: float = 200.0, outside_hu: float = 40.0, arch_hu=None,
               arch_z=None):
    """50 x 100 x 50 mm at 0.5 mm (``volume[k, j, i]``, identity direction) holding the body of :data:`BODY`.

    ``arch_hu``: the HU of the :data:`ARCH` drawn behind it (None: no arch, soft tissue behind the body), over
    ``arch_z`` (z range, mm; default the body's height).
    """
    n = int(50 / SPACING)
    centres = (np.arange(n) + 0.0) * SPACING
    z, y, x = np.meshgrid(centres, np.arange(2 * n) * SPACING, centres, indexing="ij")
    inside = np.ones_like(x, dtype=bool)
    core = np.ones_like(x, dtype=bool)
    for axis, values in (("x", x), ("y", y), ("z", z)):
        low, high = BODY[axis]
        inside &= (values >= low) & (values <= high)
        core &= (values >= low + CORTEX_MM) & (values <= high - CORTEX_MM)
    volume = np.full(x.shape, outside_hu, dtype=np.float32)
    volume[inside] = cortex_hu
    volume[core] = core_hu
    if arch_hu is not None:
        low, high = arch_z or BODY["z"]
        height = (z >= low) & (z <= high)
        for (x0, x1), (y0, y1) in ARCH:
            volume[height & (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)] = arch_hu
    geometry = ImageGeometry(size=(n, 2 * n, n), spacing=(SPACING,) * 3, origin=(0.0, 0.0, 0.0),
                             direction=np.eye(3))
    return volume, geometry


def test_band_is_a_trapezoid():
    limits = (0.25, 0.5, 1.45, 1.8)
    assert [band(x, limits) for x in (0.2, 0.25, 0.375, 0.5, 1.0, 1.45, 1.625, 1.8, 2.0)] == pytest.approx(
        [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0])
    assert band(float("nan"), limits) == 0.0


def test_the_body_frame_of_an_upright_body():
    frame = BodyFrame.from_keypoints(keypoints())
    assert frame.p == pytest.approx([0, 1, 0]) and frame.s == pytest.approx([0, 0, 1])
    assert frame.l == pytest.approx([1, 0, 0])  # l = p x s
    assert frame.heights == pytest.approx([25, 25, 25]) and frame.depth == pytest.approx(25.2)
    assert frame.points(0.0, 5.0, 0.0) == pytest.approx([25, 25, 30])  # t along the superior axis
    assert frame.points(2.0, 0.0, 3.0) == pytest.approx([28, 27, 25])  # u posterior, w lateral
    # the columns lie 8 % of the wall-to-wall depth inside the walls, at least 1.5 mm
    assert frame.inset == pytest.approx(0.08 * 25.2 / 0.84)
    assert BodyFrame.from_keypoints(keypoints(depth=10.0)).inset == pytest.approx(1.5)
    # each endplate line moved outwards by the margin; beyond the columns the lines keep their end values
    inferior, superior = frame.grown_endplates(np.array([-30.0, 0.0, 30.0]), 2.0)
    assert inferior == pytest.approx([-14.5] * 3) and superior == pytest.approx([14.5] * 3)


@pytest.mark.parametrize("points", [keypoints(height=0.0), keypoints(depth=0.0), np.zeros((6, 3))])
def test_a_body_without_depth_or_height_has_no_frame(points):
    with pytest.raises(ValueError, match="no depth or no height"):
        BodyFrame.from_keypoints(points)


def test_size_against_the_levels_normal_size():
    normal = check_size(BodyFrame.from_keypoints(keypoints()), "L1")
    assert normal.score == 1.0 and normal.reason is None and normal.values["height_mm"] == 25.0
    tall = check_size(BodyFrame.from_keypoints(keypoints(height=60.0)), "L1")
    assert tall.score == 0.0
    assert tall.reason.startswith("body height 60 mm is too large for L1 (normal about ")
    flat = check_size(BodyFrame.from_keypoints(keypoints(height=4.0)), "L1")
    assert flat.score == 0.0 and flat.reason.startswith("body height 4 mm is too small for L1")
    shallow = check_size(BodyFrame.from_keypoints(keypoints(depth=4.0)), "L1")
    assert shallow.reason.startswith("body depth 4 mm is too small for L1")
    assert check_size(BodyFrame.from_keypoints(keypoints()), "L9").reason == "no normal size known for level L9"
    # a crushed wedge keeps its posterior height: the size check reads the largest, so a fracture is not "too small"
    wedge = check_size(BodyFrame.from_keypoints(keypoints(height=(6.0, 14.0, 25.0))), "L1")
    assert wedge.score == 1.0 and wedge.values["height_mm"] == 25.0


def test_bone_reads_the_rim_and_the_core_of_the_drawn_body():
    volume, geometry = drawn_body()
    result = check_bone(volume, geometry, BodyFrame.from_keypoints(keypoints()))
    assert result.score == 1.0 and result.reason is None
    assert result.values["rim_hu"] == pytest.approx(700.0, abs=1.0)
    assert result.values["core_hu"] == pytest.approx(200.0, abs=1.0)
    assert result.values["rim_contrast_hu"] == pytest.approx(500.0, abs=1.0)
    # the same keypoints half a body behind it: the box holds the posterior wall only, no rim around a core
    behind = keypoints(centre=(25.0, 40.0, 25.0))
    assert not check_bone(volume, geometry, BodyFrame.from_keypoints(behind)).passed


@pytest.mark.parametrize("inside_hu, what", [(-300.0, "fat or air"), (250.0, "soft tissue or contrast"),
                                             (40.0, "soft tissue")])
def test_no_bone_says_what_is_there_instead(inside_hu, what):
    volume, geometry = drawn_body(cortex_hu=inside_hu, core_hu=inside_hu)
    result = check_bone(volume, geometry, BodyFrame.from_keypoints(keypoints()))
    assert result.score == 0.0
    assert result.reason.startswith(f"no cortical bone where the body should be ({what}, HU ")


def test_a_canal_closed_by_bone_and_the_posterior_elements_behind_it():
    volume, geometry = drawn_body(arch_hu=600.0)
    canal, posterior = check_canal_and_posterior(volume, geometry, BodyFrame.from_keypoints(keypoints()))
    assert canal.score == 1.0 and canal.values["walls"] == 3.0 and canal.reason is None
    assert canal.values["content_hu"] == pytest.approx(40.0)
    assert 9.0 <= canal.values["depth_mm"] <= 12.0  # y 40-52, on 1 mm samples from the wall (edges partial)
    assert posterior.score == 1.0 and posterior.values["bone_area_mm2"] > 100
    # an arch beside the upper half of the body only (where the pedicles join it): the best of the three planes
    volume, geometry = drawn_body(arch_hu=600.0, arch_z=(28.0, 37.5))
    canal, posterior = check_canal_and_posterior(volume, geometry, BodyFrame.from_keypoints(keypoints()))
    assert canal.score == 1.0 and posterior.score == 1.0
    # no arch: soft tissue behind the body is no bony canal, and nothing stands behind it
    volume, geometry = drawn_body(arch_hu=None)
    canal, posterior = check_canal_and_posterior(volume, geometry, BodyFrame.from_keypoints(keypoints()))
    assert canal.score == 0.0 and canal.reason.startswith("no bony spinal canal behind the body")
    assert posterior.score == 0.0
    assert posterior.reason == "no posterior elements (lamina, spinous process) behind the canal"
    # a bright homogeneous blob (a contrast-filled heart) has no low run behind its "wall" at all
    volume, geometry = drawn_body(cortex_hu=300.0, core_hu=300.0, outside_hu=300.0)
    canal, _ = check_canal_and_posterior(volume, geometry, BodyFrame.from_keypoints(keypoints()))
    assert canal.score == 0.0 and canal.reason == "no spinal canal behind the body"


def test_neighbours_above_and_below_in_line_and_of_the_same_size():
    l2 = BodyFrame.from_keypoints(keypoints())
    above, below = keypoints(centre=(25.0, 25.0, 58.0)), keypoints(centre=(25.0, 25.0, -8.0))
    result = check_neighbours(l2, "L2", [("L1", above), ("L3", below)])
    assert result.score == 1.0 and result.reason is None
    assert result.values == {"L1_height_ratio": 1.0, "L1_spacing_ratio": 1.32, "L3_height_ratio": 1.0,
                             "L3_spacing_ratio": 1.32}
    # two levels away the distance counts per level; farther, and unknown labels, are not neighbours
    assert check_neighbours(l2, "L2", [("L4", keypoints(centre=(25.0, 25.0, -41.0)))]).values == {
        "L4_height_ratio": 1.0, "L4_spacing_ratio": 1.32}
    assert check_neighbours(l2, "L2", [("L5", keypoints(centre=(25.0, 25.0, -74.0))), ("X", above)]) is None
    assert check_neighbours(l2, "L2", []) is None
    # heights compared by the largest: a wedge beside a normal body is in line with it
    wedge = check_neighbours(l2, "L2", [("L1", keypoints(height=(8.0, 15.0, 25.0), centre=(25.0, 25.0, 58.0)))])
    assert wedge.score == 1.0 and wedge.values["L1_height_ratio"] == 1.0
    crushed = BodyFrame.from_keypoints(keypoints(height=(8.0, 15.0, 25.0)))
    assert check_neighbours(crushed, "L2", [("L1", above)]).values["L1_height_ratio"] == 1.0


@pytest.mark.parametrize("neighbour, reason", [
    (keypoints(centre=(25.0, 25.0, -8.0)), "L1 is on the wrong side"),
    (keypoints(height=100.0, centre=(25.0, 25.0, 90.0)), "height differs from L1 (ratio 0.25)"),
    (keypoints(centre=(25.0, 25.0, 95.0)), "spacing to L1 is implausible (ratio 2.80)"),
])
def test_a_neighbour_out_of_line_says_how(neighbour, reason):
    result = check_neighbours(BodyFrame.from_keypoints(keypoints()), "L2", [("L1", neighbour)])
    assert result.score == 0.0
    assert result.reason == "inconsistent with its neighbours: " + reason


@pytest.mark.parametrize("keep, cut_at_mm, expected", [
    ("left", 20.0, ["right"]),  # image from x 20 on: the body's right part (x 10-20) is cut away
    ("right", 30.0, ["left"]),  # image up to x 30: its left part (30-40) is cut away
    ("right", 44.0, []),  # image to x 44: 4 mm of soft tissue beyond the body's left wall, the body is whole
])
def test_a_body_cut_by_the_side_of_the_image_runs_out_sideways(keep, cut_at_mm, expected):
    """The body's bone reaches the image's side edge: cut, whatever plane the keypoints were put on."""
    volume, geometry = drawn_body()
    column = int(round(cut_at_mm / SPACING))
    if keep == "left":  # LPS: +x is the patient's left
        volume = volume[:, :, column:]
        geometry = ImageGeometry(size=(volume.shape[2], volume.shape[1], volume.shape[0]), spacing=(SPACING,) * 3,
                                 origin=(column * SPACING, 0.0, 0.0), direction=np.eye(3))
    else:
        volume = volume[:, :, :column]
        geometry = ImageGeometry(size=(volume.shape[2], volume.shape[1], volume.shape[0]), spacing=(SPACING,) * 3,
                                 origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    # the keypoint plane where a half body would put it: 5 mm into the part left in view
    centre_x = 30.0 if keep == "left" else 20.0
    frame = BodyFrame.from_keypoints(keypoints(centre=(centre_x, 25.0, 25.0)))
    assert body_runs_out_sideways(volume, geometry, frame) == expected
    result = check_field_of_view(geometry, frame, volume=volume)
    if expected:
        assert result.score == 0.49 and result.reason == f"cut by the {expected[0]} edge of the field of view"
    else:
        assert result.score == 1.0 and result.reason is None
    # without the volume only the keypoint box is read: its core slab lies inside the image, so the check passes
    alone = check_field_of_view(geometry, frame)
    assert alone.score >= 0.5 and alone.reason is None
