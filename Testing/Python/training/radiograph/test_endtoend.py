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


def test_moderate_fractures_are_counted_by_what_the_report_says_of_them(monkeypatch):
    """called (G <= 0.8), told normal (assessed with G > 0.8: the wrong "no fracture") or not assessed."""
    from types import SimpleNamespace

    import VertebralFractureLib.radiograph.analyze as analyze
    from VertebralFractureLib.schema import SpineResult, Vertebra
    from VertebralFractureLib.training.radiograph.endtoend import score_analysis

    def box(column, top, anterior):  # 30 px deep, 25 px high at the back, ``anterior`` px high in front
        return np.array([[column, top + 25 - anterior], [column, top + 25], [column + 15, top], [column + 15, top + 25],
                         [column + 30, top], [column + 30, top + 25]], dtype=float)

    truth = np.array([box(10, 10, 15), box(10, 45, 16), box(10, 80, 16), box(10, 115, 25)])  # G 0.6, 0.64, 0.64, 1
    view = SimpleNamespace(image=np.zeros((160, 60), np.float32), pixel_mm=1.0, levels=["T10", "T11", "T12", "L1"],
                           keypoints=truth)
    reported = [box(10, 10, 17), box(10, 45, 24), box(10, 80, 16), box(10, 115, 25)]  # G 0.68, 0.96, -, 1

    def fake(image, pixel_spacing, centroid_model=None, keypoint_model=None):
        result = SpineResult(frame="pixel", pixel_spacing=(1.0, 1.0))
        for label, points in zip(view.levels, reported):
            result.vertebrae.append(Vertebra(label=label, centroid=points.mean(axis=0), keypoints=points,
                                             confidence=0.9))
        result.recompute()
        result.vertebrae[2].not_assessed("keypoints not clearly on the endplates")
        return SimpleNamespace(result=result)

    monkeypatch.setattr(analyze, "analyze_radiograph", fake)
    scores = score_analysis([view])
    assert (scores["moderate_called"], scores["moderate_told_normal"], scores["moderate_not_assessed"]) == (1, 1, 1)
    assert scores["recall"] == 1.0 and scores["level_accuracy"] == 1.0


def test_the_learned_score_is_read_at_its_own_operating_point():
    from VertebralFractureLib.training.radiograph.endtoend import _learned_operating_point

    normal = [(0.95, s) for s in (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.95)]  # one above 0.5 of ten
    fractured = [(0.6, 0.99), (0.7, 0.97), (0.65, 0.4), (0.55, 0.9)]
    scores = _learned_operating_point(normal + fractured)
    # the cut-off may come down to 0.9 (one normal called: specificity 0.9): 3 of 4 fractures
    assert scores["classifier_sensitivity_at_spec0.9"] == pytest.approx(3 / 4)
    assert scores["classifier_sensitivity@0.5"] == pytest.approx(3 / 4)
    assert scores["classifier_specificity@0.5"] == pytest.approx(8 / 10)
    assert scores["classifier_AUC"] == pytest.approx((10 + 10 + 9 + 7.5) / 40)  # 0.4 ties one normal body
    assert _learned_operating_point([]) == {}
