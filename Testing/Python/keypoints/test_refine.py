"""End-plate refinement: keypoints follow a depressed (biconcave-like) end plate."""

import numpy as np

from VertebralFractureLib.keypoints.refine import OFFSET_MM, refine_endplates
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
