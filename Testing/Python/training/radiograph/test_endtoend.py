"""The whole-analysis scores of generated radiographs: the operating point of issue 24's fracture measure."""

import numpy as np
import pytest

from VertebralFractureLib.training.radiograph.endtoend import _sensitivity


def test_sensitivity_is_read_at_the_highest_cutoff_that_keeps_specificity_at_least_0_9():
    # ten normal bodies (true G 0.95), one measured 0.84: the cut-off may call it (specificity 0.9) but no more
    normal = [(0.95, g) for g in (0.84, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97, 0.98)]
    # four moderate fractures: two measured low, one measured 0.84 (called only at the 0.84 cut-off), one withheld
    fractured = [(0.6, 0.62), (0.7, 0.74), (0.65, 0.84), (0.55, 1.0)]
    scores = _sensitivity(normal + fractured)
    assert scores["cutoff_at_spec0.9"] == pytest.approx(0.84)
    assert scores["sensitivity_at_spec0.9"] == pytest.approx(3 / 4)  # the withheld one is never called
    assert scores["sensitivity_G<=0.75"] == pytest.approx(2 / 4)  # Genant's fixed cut-off calls two
    # one more normal body measured 0.80 pushes the specificity under 0.9 at 0.84: the cut-off falls to 0.80
    scores = _sensitivity(normal + fractured + [(0.95, 0.80)])
    assert scores["cutoff_at_spec0.9"] == pytest.approx(0.80)
    assert scores["sensitivity_at_spec0.9"] == pytest.approx(2 / 4)


def test_no_fracture_gives_no_operating_point():
    scores = _sensitivity([(0.95, 0.9), (0.9, 0.95)])
    assert np.isnan(scores["sensitivity_at_spec0.9"])
