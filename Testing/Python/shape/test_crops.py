import numpy as np

from VertebralFractureLib.shape.crops import CROP_SHAPE, PITCH_VOXELS, BodyPose, crop_frame, neighbours


def test_neighbours_stop_at_gaps_and_ends():
    present = ["T10", "T11", "T12", "L1", "L4"]
    assert neighbours("T12", present) == ["T10", "T11", "L1", None]
    assert neighbours("T10", present) == [None, None, "T11", "T12"]
    assert neighbours("L4", present) == [None, None, None, None]


def test_crop_frame_comes_from_the_neighbours_only():
    poses = {
        name: BodyPose(np.array([0.0, 2.0 * i, -32.0 * i]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0]))
        for i, name in enumerate(["T11", "T12", "L1"])
    }
    poses["T12"] = BodyPose(np.array([5.0, 9.0, -40.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]))
    frame = crop_frame("T12", poses, [None, "T11", "L1", None])
    np.testing.assert_allclose(frame.centre, [0.0, 2.0, -32.0])
    superior = frame.rotation[:, 2]
    np.testing.assert_allclose(superior, np.array([0.0, -4.0, 64.0]) / np.hypot(4, 64))
    assert abs(frame.spacing - np.hypot(4, 64) / 2 / PITCH_VOXELS) < 1e-9
    points = frame.points()
    assert points.shape == (*CROP_SHAPE, 3)
    centre = points[tuple((n - 1) // 2 for n in CROP_SHAPE)]
    assert np.linalg.norm(centre - frame.centre) < frame.spacing


def test_crop_frame_with_one_neighbour_uses_the_body_centre():
    poses = {
        "L4": BodyPose(np.array([0.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])),
        "L5": BodyPose(np.array([0.0, 5.0, -35.0]), np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])),
    }
    frame = crop_frame("L5", poses, [None, "L4", None, None])
    np.testing.assert_allclose(frame.centre, poses["L5"].centre)
    assert abs(frame.spacing * PITCH_VOXELS - np.hypot(5, 35)) < 1e-9
