"""The quality gate's building blocks on a drawn body whose every value is known: its frame, its size, its bone.

The real and generated spines of ``test_gate.py`` show that the gate withholds what it should; these show that each
check reads what its docstring says, with the numbers a reader sees in the reason.
"""

import numpy as np
import pytest

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.quality.checks import BodyFrame, band, check_bone, check_size

SPACING = 0.5
#: The drawn body (LPS mm): 30 mm wide (x), 30 mm deep (y, posterior +), 25 mm tall (z, superior +).
BODY = {"x": (10.0, 40.0), "y": (10.0, 40.0), "z": (12.5, 37.5)}
CORTEX_MM = 1.5


def keypoints(height: float = 25.0, depth: float = 25.2, centre=(25.0, 25.0, 25.0)) -> np.ndarray:
    """Six LPS keypoints (AS, AI, MS, MI, PS, PI) of an upright body, columns ``depth`` apart."""
    cx, cy, cz = centre
    points = []
    for y in (cy - depth / 2, cy, cy + depth / 2):
        points += [[cx, y, cz + height / 2], [cx, y, cz - height / 2]]
    return np.array(points)


def drawn_body(cortex_hu: float = 700.0, core_hu: float = 200.0, outside_hu: float = 40.0):
    """A 50 mm cube at 0.5 mm (``volume[k, j, i]``, identity direction) holding the body of :data:`BODY`."""
    n = int(50 / SPACING)
    centres = (np.arange(n) + 0.0) * SPACING
    z, y, x = np.meshgrid(centres, centres, centres, indexing="ij")
    inside = np.ones_like(x, dtype=bool)
    core = np.ones_like(x, dtype=bool)
    for axis, values in (("x", x), ("y", y), ("z", z)):
        low, high = BODY[axis]
        inside &= (values >= low) & (values <= high)
        core &= (values >= low + CORTEX_MM) & (values <= high - CORTEX_MM)
    volume = np.full(x.shape, outside_hu, dtype=np.float32)
    volume[inside] = cortex_hu
    volume[core] = core_hu
    geometry = ImageGeometry(size=(n, n, n), spacing=(SPACING,) * 3, origin=(0.0, 0.0, 0.0), direction=np.eye(3))
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
