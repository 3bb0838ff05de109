"""Evaluation metrics of the keypoint detector.

Detection matching (Pisov et al. 2020, Table 1), ROC AUC / sensitivity / specificity (Pisov et al. 2020, Table 2) and
level
identification accuracy (Gartland et al. 2025, §2).
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...keypoints.anchors import iou, keypoint_boxes


def match_detections(
    predicted: Sequence[np.ndarray], scores: Sequence[float], truth: np.ndarray, min_iou: float = 0.5
) -> List[Tuple[int, int]]:
    """One-to-one matches (prediction, truth): the prediction's centre lies in the true box or IoU > 0.5.

    Predictions are taken by decreasing score; each takes the unmatched true vertebra with the
    highest IoU among those it qualifies for.
    """
    predicted = np.asarray(predicted, dtype=np.float64).reshape(-1, 6, 2)
    truth = np.asarray(truth, dtype=np.float64).reshape(-1, 6, 2)
    if len(predicted) == 0 or len(truth) == 0:
        return []
    true_boxes = keypoint_boxes(truth)
    overlaps = iou(keypoint_boxes(predicted), true_boxes)
    centres = predicted.mean(axis=1)
    inside = (
        (centres[:, None, 0] >= true_boxes[None, :, 0])
        & (centres[:, None, 0] <= true_boxes[None, :, 2])
        & (centres[:, None, 1] >= true_boxes[None, :, 1])
        & (centres[:, None, 1] <= true_boxes[None, :, 3])
    )
    ok = inside | (overlaps > min_iou)
    taken = np.zeros(len(truth), dtype=bool)
    pairs = []
    for p in np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable"):
        candidates = np.flatnonzero(ok[p] & ~taken)
        if len(candidates):
            t = int(candidates[np.argmax(overlaps[p, candidates])])
            taken[t] = True
            pairs.append((int(p), t))
    return pairs


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> Optional[float]:
    """Area under the ROC curve (Mann-Whitney U with ties counted half); None if one class is empty."""
    labels = np.asarray(labels, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    positive, negative = scores[labels], scores[~labels]
    if len(positive) == 0 or len(negative) == 0:
        return None
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def sensitivity_specificity(
    labels: Sequence[bool], predicted: Sequence[bool]
) -> Tuple[Optional[float], Optional[float]]:
    """Sensitivity and specificity of binary decisions (None where a class is empty)."""
    labels = np.asarray(labels, dtype=bool)
    predicted = np.asarray(predicted, dtype=bool)
    sensitivity = float(predicted[labels].mean()) if labels.any() else None
    specificity = float((~predicted[~labels]).mean()) if (~labels).any() else None
    return sensitivity, specificity


def binary_metrics(
    true_g: Sequence[float], predicted_g: Sequence[float], threshold: float
) -> Dict[str, Optional[float]]:
    """Table 2 entries (Pisov et al. 2020) for 'G <= threshold': AUC of 1 - G_pred, sensitivity, specificity, counts."""
    true_g = np.asarray(true_g, dtype=np.float64)
    predicted_g = np.asarray(predicted_g, dtype=np.float64)
    labels = true_g <= threshold + 1e-9
    sensitivity, specificity = sensitivity_specificity(labels, predicted_g <= threshold + 1e-9)
    return {
        "auc": roc_auc(labels, 1.0 - predicted_g),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "positives": int(labels.sum()),
        "negatives": int((~labels).sum()),
    }


def level_identification(
    true_centres: np.ndarray, true_levels: Sequence[str], predicted_centres: np.ndarray, predicted_levels: Sequence[str]
) -> Tuple[int, int]:
    """Level identification as in Gartland et al. 2025, §2.

    A level is identified when the predicted centroid carrying its label lies within half the mean
    distance between neighbouring true centroids of the image.

    Returns:
        (correct, total) over the true vertebrae.

    """
    true_centres = np.asarray(true_centres, dtype=np.float64).reshape(-1, 2)
    if len(true_centres) == 0:
        return 0, 0
    order = np.argsort(true_centres[:, 1])
    gaps = np.linalg.norm(np.diff(true_centres[order], axis=0), axis=1)
    radius = 0.5 * (float(gaps.mean()) if len(gaps) else 25.0)
    predicted = dict(zip(predicted_levels, np.asarray(predicted_centres, dtype=np.float64).reshape(-1, 2)))
    correct = sum(
        1
        for centre, level in zip(true_centres, true_levels)
        if level in predicted and np.linalg.norm(predicted[level] - centre) < radius
    )
    return correct, len(true_centres)


def mean_std(values: Sequence[float]) -> str:
    """``mean (std)`` with three decimals, or ``-``."""
    values = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if len(values) == 0:
        return "-"
    return f"{values.mean():.3f} ({values.std():.3f})"
