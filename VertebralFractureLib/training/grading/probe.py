"""Linear SVM probe of learnt representations (Husseini et al. 2020, §3.1, Table 1).

Husseini et al. 2020 fits "a support vector machine with a linear kernel" on the training embeddings and reports its
fracture detection on the test embeddings. Implemented here without extra dependencies: the primal
L2-regularised squared-hinge SVM (the objective of LIBLINEAR / scikit-learn's ``LinearSVC`` default,
``C = 1``) on standardised features, solved with L-BFGS, with balanced class weights by default
(Husseini et al. 2020 does not say how its SVM treats the 1 : 8 imbalance; unweighted, a short-trained embedding
makes the SVM call every vertebra healthy, which measures the imbalance, not the separability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass
class LinearSVM:
    """A fitted linear SVM: ``predict(x) = [(x - mean) / scale] . w + b > 0``."""

    weights: np.ndarray
    bias: float
    mean: np.ndarray
    scale: np.ndarray

    def decision(self, x: np.ndarray) -> np.ndarray:
        """Signed margin of each row."""
        return ((np.asarray(x, float) - self.mean) / self.scale) @ self.weights + self.bias

    def predict(self, x: np.ndarray) -> np.ndarray:
        """1 for the positive (fractured) class, else 0."""
        return (self.decision(x) > 0).astype(np.int64)


def fit_linear_svm(x: np.ndarray, y: np.ndarray, c: float = 1.0, class_weight: Optional[str] = "balanced") -> LinearSVM:
    """Minimise ``0.5 |w|^2 + C sum_i k_i max(0, 1 - y_i (w . x_i + b))^2`` with labels ``y in {-1, +1}``.

    Args:
        x: features ``(N, D)``.
        y: binary labels ``(N,)`` (0/1 or -1/+1).
        c: inverse regularisation strength.
        class_weight: ``"balanced"`` weighs each class by ``N / (2 N_class)`` (scikit-learn's
            ``class_weight="balanced"``), so a rare class (fractures: about 1 in 8) is not simply
            ignored; ``None``: every sample weighs 1.

    Raises:
        ValueError: when only one class is present.

    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=float)
    y = np.where(np.asarray(y) > 0, 1.0, -1.0)
    if len(np.unique(y)) < 2:
        raise ValueError("the linear SVM needs both classes in its training data")
    if class_weight == "balanced":
        k = np.where(y > 0, len(y) / (2.0 * np.sum(y > 0)), len(y) / (2.0 * np.sum(y < 0)))
    elif class_weight is None:
        k = np.ones(len(y))
    else:
        raise ValueError(f"class_weight must be 'balanced' or None, got {class_weight!r}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-12] = 1.0
    z = (x - mean) / scale
    d = z.shape[1]

    def objective(theta: np.ndarray):
        w, b = theta[:d], theta[d]
        margin = 1.0 - y * (z @ w + b)
        active = np.maximum(margin, 0.0)
        value = 0.5 * w @ w + c * np.sum(k * active**2)
        g_common = -2.0 * c * k * active * y
        grad = np.concatenate([w + z.T @ g_common, [g_common.sum()]])
        return value, grad

    result = minimize(objective, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return LinearSVM(result.x[:d], float(result.x[d]), mean, scale)
