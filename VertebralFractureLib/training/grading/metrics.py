"""Detection metrics of Husseini et al. 2020, Tables 1-2: sensitivity (SN), specificity (SP) and F1, in percent."""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np


def detection_scores(truth: Sequence[int], predicted: Sequence[int]) -> Dict[str, float]:
    """SN, SP, F1 (percent) and the confusion counts of binary labels (1 = fractured).

    Undefined ratios (no positives, no negatives, no predictions) are reported as NaN.
    """
    t = np.asarray(truth).astype(bool)
    p = np.asarray(predicted).astype(bool)
    tp, fp = int(np.sum(t & p)), int(np.sum(~t & p))
    fn, tn = int(np.sum(t & ~p)), int(np.sum(~t & ~p))
    sn = tp / (tp + fn) if tp + fn else float("nan")
    sp = tn / (tn + fp) if tn + fp else float("nan")
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else float("nan")
    return {"SN": 100 * sn, "SP": 100 * sp, "F1": 100 * f1, "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def mean_std(values: Sequence[float]) -> str:
    """``"mean ± std"`` with one decimal (population std over folds, NaNs ignored)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "n/a"
    return f"{v.mean():5.1f} ± {v.std():4.1f}"
