"""Linear SVM probe (Husseini et al. 2020, Table 1), detection metrics, case folds."""

import numpy as np
import pytest

from VertebralFractureLib.training.grading.ablation import case_folds
from VertebralFractureLib.training.grading.data import PatchSet
from VertebralFractureLib.training.grading.metrics import detection_scores, mean_std
from VertebralFractureLib.training.grading.probe import fit_linear_svm


def test_detection_scores_by_hand():
    s = detection_scores([1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0, 0])
    assert (s["tp"], s["fn"], s["fp"], s["tn"]) == (2, 1, 1, 4)
    assert s["SN"] == pytest.approx(200 / 3)
    assert s["SP"] == pytest.approx(80.0)
    assert s["F1"] == pytest.approx(100 * 4 / 6)
    assert np.isnan(detection_scores([0, 0], [0, 0])["SN"])


def test_mean_std():
    assert mean_std([80.0, 90.0]) == " 85.0 ±  5.0"
    assert mean_std([float("nan")]) == "n/a"


def test_linear_svm_separates_separable_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8))
    y = (x[:, 0] + 0.5 * x[:, 3] > 0.3).astype(int)
    svm = fit_linear_svm(x * 5 + 2, y)
    assert np.mean(svm.predict(x * 5 + 2) == y) > 0.97
    w = svm.weights / np.linalg.norm(svm.weights)
    assert w[0] > 0.8 and w[3] > 0.3
    with pytest.raises(ValueError, match="needs both classes"):
        fit_linear_svm(x, np.zeros(200))


def test_balanced_svm_finds_the_rare_class():
    rng = np.random.default_rng(1)
    y = (rng.random(800) < 0.1).astype(int)
    x = rng.normal(size=(800, 4)) + y[:, None] * 1.2  # overlapping classes, 1 positive in 10
    plain = fit_linear_svm(x, y, class_weight=None)
    balanced = fit_linear_svm(x, y)
    s_plain = detection_scores(y, plain.predict(x))
    s_bal = detection_scores(y, balanced.predict(x))
    assert s_bal["SN"] > 70 and s_bal["SN"] > s_plain["SN"] + 20
    assert s_plain["SP"] > s_bal["SP"]
    with pytest.raises(ValueError, match="class_weight must be 'balanced' or None, got 'auto'"):
        fit_linear_svm(x, y, class_weight="auto")


def test_case_folds_group_cases_and_spread_fractures():
    cases, grades = [], []
    for c in range(20):
        for level in range(8):
            cases.append(f"c{c}")
            grades.append(3 if (c % 5 == 0 and level == 2) else 2 if (c % 4 == 0 and level == 5) else 0)
    data = PatchSet(np.zeros((len(cases), 4, 4), np.float16), np.array(grades), np.zeros(len(cases), int),
                    np.array(["L1"] * len(cases)), np.array(cases))
    folds = case_folds(data, 4)
    rows = np.concatenate(folds)
    assert sorted(rows.tolist()) == list(range(len(cases)))
    for fold in folds:
        assert len(set(data.cases[fold])) == 5  # whole cases, evenly spread
        assert np.sum(data.grades[fold] == 3) == 1
        assert np.sum(data.grades[fold] == 2) in (1, 2)
    with pytest.raises(ValueError, match="20 cases cannot make 50 folds"):
        case_folds(data, 50)
