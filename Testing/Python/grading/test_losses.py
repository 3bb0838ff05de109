"""Grading loss (Husseini et al. 2020, eqs. 3-5) and the baselines on hand-made embeddings."""

import pytest
import torch

from VertebralFractureLib.training.grading.losses import (
    ALPHA,
    BETA,
    GAMMA,
    contrastive_loss,
    grading_loss,
    grading_loss_terms,
    squared_distance,
    triplet_loss,
)


def t(*rows):
    return torch.tensor(rows, dtype=torch.float64)


def test_paper_margins():
    assert (ALPHA, BETA, GAMMA) == (1.5, 1.0, 0.5)


def test_squared_distance():
    assert squared_distance(t([0.0, 0.0]), t([3.0, 4.0])).tolist() == [25.0]


def terms(g0, g2, g3, anchor, cls):
    out = grading_loss_terms(t(g0), t(g2), t(g3), t(anchor), torch.tensor([cls]))
    return {k: float(v[0]) for k, v in out.items()}


def test_all_terms_zero_when_the_margins_hold():
    # g0 at 0, g2 at 2, g3 at 3 on a line: d(g2,g3)=1, d(g2,g0)=4 -> 1 + 1.5 <= 4 (eq. 1);
    # d(g0,g2)=4, d(g0,g3)=9 -> 4 + 1 <= 9 (eq. 2); anchor of grade 0 at 0.5 -> d = 0.25 <= 0.5.
    assert terms([0.0], [2.0], [3.0], [0.5], 0) == {"L1": 0.0, "L2": 0.0, "L3": 0.0}


def test_l1_is_the_eq1_violation():
    # d(g2,g3) = 1, d(g2,g0) = 1 -> L1 = 1 - 1 + 1.5
    out = terms([0.0], [1.0], [2.0], [0.0], 0)
    assert out["L1"] == pytest.approx(1.5)
    # exactly on the margin: d(g2,g0) = d(g2,g3) + alpha -> zero
    g2 = 1.0
    g3 = g2 + 1.0  # d(g2,g3) = 1
    g0 = g2 - 2.5 ** 0.5  # d(g2,g0) = 2.5 = 1 + 1.5
    assert terms([g0], [g2], [g3], [g0], 0)["L1"] == pytest.approx(0.0, abs=1e-12)
    # just inside the violation -> positive
    assert terms([g0 + 1e-3], [g2], [g3], [g0], 0)["L1"] > 0


def test_l2_is_the_eq2_violation():
    # g0 = 0, g2 = 2, g3 = 2 (same point): d(g0,g2) = d(g0,g3) = 4 -> L2 = beta
    assert terms([0.0], [2.0], [2.0], [0.0], 0)["L2"] == pytest.approx(BETA)
    # d(g0,g3) = d(g0,g2) + beta exactly -> zero; a bit less -> positive
    g3 = (4.0 + BETA) ** 0.5
    assert terms([0.0], [2.0], [g3], [0.0], 0)["L2"] == pytest.approx(0.0, abs=1e-12)
    assert terms([0.0], [2.0], [g3 - 1e-3], [0.0], 0)["L2"] > 0


@pytest.mark.parametrize("cls,match", [(0, [0.0, 0.0]), (1, [5.0, 0.0]), (2, [0.0, 7.0])])
def test_l3_pulls_the_anchor_to_its_own_grade(cls, match):
    g0, g2, g3 = [0.0, 0.0], [5.0, 0.0], [0.0, 7.0]
    # within gamma of its match (squared distance 0.25 <= 0.5): zero
    inside = [match[0] + 0.5, match[1]]
    assert terms(g0, g2, g3, inside, cls)["L3"] == 0.0
    # on the boundary: zero; beyond: d - gamma (pull, not push as eq. 5 reads when printed)
    edge = [match[0] + GAMMA ** 0.5, match[1]]
    assert terms(g0, g2, g3, edge, cls)["L3"] == pytest.approx(0.0, abs=1e-12)
    far = [match[0], match[1] + 2.0]
    assert terms(g0, g2, g3, far, cls)["L3"] == pytest.approx(4.0 - GAMMA)
    # an anchor sitting exactly on its match costs nothing (the printed eq. 5 would charge gamma)
    assert terms(g0, g2, g3, match, cls)["L3"] == 0.0


def test_l3_gradient_moves_the_anchor_towards_the_match():
    anchor = torch.tensor([[3.0, 0.0]], requires_grad=True)
    loss = grading_loss(t([0.0, 0.0]), t([10.0, 0.0]), t([20.0, 0.0]), anchor, torch.tensor([0]))
    loss.backward()
    assert anchor.grad[0, 0] > 0  # gradient descent lowers x: towards g0 at the origin


def test_total_is_mean_of_the_sum():
    g0, g2, g3 = t([0.0], [0.0]), t([1.0], [2.0]), t([2.0], [3.0])
    anchor, cls = t([3.0], [2.0]), torch.tensor([0, 1])
    parts = grading_loss_terms(g0, g2, g3, anchor, cls)
    expected = float((parts["L1"] + parts["L2"] + parts["L3"]).mean())
    assert float(grading_loss(g0, g2, g3, anchor, cls)) == pytest.approx(expected)
    # hand values: first quadruplet L1 = 1 - 1 + 1.5, L2 = 1 - 4 + 1 -> 0, L3 = 9 - 0.5
    assert float(parts["L1"][0]) == pytest.approx(1.5)
    assert float(parts["L2"][0]) == 0.0
    assert float(parts["L3"][0]) == pytest.approx(8.5)


def test_contrastive_loss_values():
    a, b = t([0.0, 0.0], [0.0, 0.0]), t([1.0, 0.0], [0.5, 0.0])
    # similar pair: D^2 = 1; dissimilar pair at D = 0.5 < m = 2: (2 - 0.5)^2 = 2.25
    value = contrastive_loss(a, b, torch.tensor([1.0, 0.0]), margin=2.0)
    assert float(value) == pytest.approx((1.0 + 2.25) / 2)
    # dissimilar pair beyond the margin costs nothing
    assert float(contrastive_loss(t([0.0]), t([3.0]), torch.tensor([0.0]), margin=2.0)) == pytest.approx(0.0, abs=1e-9)


def test_triplet_loss_values():
    anchor, positive = t([0.0]), t([1.0])
    assert float(triplet_loss(anchor, positive, t([1.0]), margin=1.0)) == pytest.approx(1.0)
    assert float(triplet_loss(anchor, positive, t([2.0 ** 0.5]), margin=1.0)) == pytest.approx(0.0, abs=1e-12)
    assert float(triplet_loss(anchor, positive, t([3.0]), margin=1.0)) == 0.0
