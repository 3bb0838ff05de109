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
    order = np.argsort(-scores, kind="stable")
    boxes = keypoint_boxes(keypoints)[order]
    ordered_points, ordered_scores = keypoints[order], scores[order]
    alive = np.ones(len(order), dtype=bool)
    kept, kept_points, kept_scores = [], [], []
    for rank in range(len(order)):
        if not alive[rank]:
            continue
        # one row of overlaps per kept candidate: the whole N x N matrix of the weak candidates (thousands of anchors
        # below the detection threshold) cost a third of a second per call on a 512 x 512 x 300 CT
        row = iou(boxes[rank], boxes)[0]
        if vote_iou < 1.0:
            voters = alive & (row > vote_iou)
            voters[rank] = True
            w = ordered_scores[voters]
            points = (ordered_points[voters] * w[:, None, None]).sum(axis=0) / w.sum()
        else:
            points = ordered_points[rank]
        kept.append(int(order[rank]))
        kept_points.append(points)
        kept_scores.append(scores[order[rank]])
        alive &= row <= iou_threshold
        alive[rank] = False
    return np.asarray(kept_points), np.asarray(kept_scores), kept


#: Two kept vertebrae of one column may share at most this fraction of the shorter one's rows (its extent along the
#: spine). Neighbouring bodies are separated by their disc (thoracic 4-6 mm, lumbar 8-12 mm; Panjabi et al. 1991,
#: 1992), so their boxes share no rows, or a millimetre or two where the detector's corners spread; a box over the
#: lower half of one body and its disc overlaps that body's box by about half its height and its 2D IoU stays
#: near 0.3, the NMS threshold (measured on the sample CT at 5 mm slices: rows 136-165 and 152-176 mm of the
#: straightened spine, IoU 0.3, the second labelled "L6" below a body called L5).
STACKED_ROW_OVERLAP = 0.5
#: Least overlap of the two boxes' extents across the spine (keypoint columns) over the shorter one for them to be
#: in one column (:data:`.chain.MIN_AP_OVERLAP`: stacked bodies overlap over most of their depth).
STACKED_DEPTH_OVERLAP = 0.5


def suppress_stacked(keypoints: np.ndarray, scores: np.ndarray, max_row_overlap: float = STACKED_ROW_OVERLAP,
                     min_depth_overlap: float = STACKED_DEPTH_OVERLAP) -> List[int]:
    """Indices of the detections kept when two boxes of one column cover the same stretch of the spine.

    Greedy, best objectness first: a detection in the same column as a kept one (their depth extents overlap by at
    least ``min_depth_overlap`` of the shorter) that shares more than ``max_row_overlap`` of the shorter one's rows
    with it is dropped. Vertebral bodies are stacked with a disc between them, so two such boxes cannot both be
    bodies; the 2D IoU of the NMS (Pisov et al. 2020, §3.2) lets them through when one box covers half a body and its
    disc. An addition to Pisov et al. 2020.

    Args:
        keypoints: (N, 6, 2) keypoints ``[column, row]``, rows along the spine.
        scores: (N,) objectness.
        max_row_overlap: largest shared fraction of the shorter extent along the rows.
        min_depth_overlap: least shared fraction of the shorter extent along the columns for one column.

    Returns:
        the kept indices, in the input order.
    """
    from .chain import extent_overlap

    points = np.asarray(keypoints, dtype=np.float64).reshape(-1, 6, 2)
    kept: List[int] = []
    for i in np.argsort(-np.asarray(scores, dtype=np.float64).reshape(-1), kind="stable"):
        if all(extent_overlap(points[i, :, 0], points[j, :, 0]) < min_depth_overlap
               or extent_overlap(points[i, :, 1], points[j, :, 1]) <= max_row_overlap for j in kept):
            kept.append(int(i))
    return sorted(kept)
