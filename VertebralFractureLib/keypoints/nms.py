"""Non-maximum suppression on the vertebrae's keypoint boxes (Pisov et al. 2020, §3.2).

Boxes are the axis-aligned boxes of the six predicted keypoints (Pisov et al. 2020, Fig. 3b), used for IoU at
test time as at training time.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

from .anchors import iou, keypoint_boxes


def nms_keypoints(
    keypoints: np.ndarray,
    scores: np.ndarray,
    iou_threshold: float = 0.3,
    vote_iou: float = 0.5,
) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """Greedy NMS on keypoint boxes, with optional keypoint voting.

    The highest-scoring candidate is kept and every candidate whose box overlaps it by more than
    ``iou_threshold`` is suppressed. With ``vote_iou`` < 1, the kept keypoints are the
    score-weighted mean of the candidates overlapping the kept one by more than ``vote_iou``
    (the kept one included): the many positive anchors of one vertebra then average their
    predictions (an addition to Pisov et al. 2020, which keeps the single best candidate; ``vote_iou=1.0``
    gives plain NMS).

    Args:
        keypoints: (N, 6, 2) candidate keypoints.
        scores: (N,) objectness.
        iou_threshold: suppression threshold.
        vote_iou: voting threshold (>= 1 disables voting).

    Returns:
        kept keypoints (M, 6, 2), their scores (M,), and the kept candidates' indices.

    """
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(scores) == 0:
        return np.zeros((0, 6, 2)), np.zeros(0), []
    boxes = keypoint_boxes(keypoints)
    order = np.argsort(-scores, kind="stable")
    overlaps = iou(boxes[order], boxes[order])
    alive = np.ones(len(order), dtype=bool)
    kept, kept_points, kept_scores = [], [], []
    for rank in range(len(order)):
        if not alive[rank]:
            continue
        row = overlaps[rank]
        if vote_iou < 1.0:
            voters = alive & (row > vote_iou)
            voters[rank] = True
            w = scores[order][voters]
            points = (keypoints[order][voters] * w[:, None, None]).sum(axis=0) / w.sum()
        else:
            points = keypoints[order[rank]]
        kept.append(int(order[rank]))
        kept_points.append(points)
        kept_scores.append(scores[order[rank]])
        alive &= row <= iou_threshold
        alive[rank] = False
    return np.asarray(kept_points), np.asarray(kept_scores), kept
