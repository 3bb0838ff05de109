"""Scores of the whole radiograph analysis on held-out views: detection, keypoints, levels, G.

Detection recall and precision as in Pisov et al. 2020, Table 1 (right), mean keypoint error in mm, level
accuracy of the matched vertebrae and the mean absolute error of the Genant index G.

Detections are matched to the true vertebrae entirely in view with
:func:`VertebralFractureLib.training.keypoints.metrics.match_detections` (centre inside the true box or IoU > 0.5).
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

#: Genant index at or below which a vertebra counts as at least mildly fractured (Pisov et al. 2020, Table 2).
MILD_G = 0.8
#: Genant index at or below which a vertebra counts as at least moderately fractured.
MODERATE_G = 0.75


def score_detector(model, views: Sequence) -> Dict[str, float]:
    """Recall, precision, mean keypoint error (mm) of a detector alone on views (:class:`.views.View`)."""
    from ...keypoints.detector import detect_vertebrae
    from ...radiograph.analyze import refine_detections
    from ..keypoints.metrics import match_detections

    tp = fp = fn = 0
    errors = []
    for view in views:
        detections = detect_vertebrae(view.image, spacing_mm=view.pixel_mm, model=model)
        if model.config.get("radiograph_refine"):
            detections = refine_detections(view.image, (view.pixel_mm, view.pixel_mm), detections,
                                           model.config["radiograph_refine"])
        pairs = match_detections([d.keypoints for d in detections], [d.score for d in detections], view.keypoints)
        tp += len(pairs)
        fp += len(detections) - len(pairs)
        fn += len(view.keypoints) - len(pairs)
        for p, t in pairs:
            errors.append(np.linalg.norm(detections[p].keypoints - view.keypoints[t], axis=1).mean() * view.pixel_mm)
    return {"recall": tp / max(tp + fn, 1), "precision": tp / max(tp + fp, 1),
            "keypoint_error_mm": float(np.mean(errors)) if errors else float("nan"), "vertebrae": tp + fn}


def score_analysis(views: Sequence, centroid_model=None, keypoint_model=None) -> Dict[str, float]:
    """Whole analysis (:func:`.analyze.analyze_radiograph`, pixel size given): detection, levels, G.

    A matched vertebra that is not assessed calls no fracture (it counts in the sensitivity and the
    specificity as "not called"); a view on which no body is found misses all its vertebrae. The matched moderate
    fractures (true G <= 0.75) are also counted by what the report says of them: ``moderate_called`` (G <= 0.8),
    ``moderate_told_normal`` (assessed with G > 0.8: a wrong "no fracture") and ``moderate_not_assessed``.
    """
    from ...genant import GenantError, genant_index, heights
    from ...radiograph.analyze import analyze_radiograph
    from ...validation import InputError
    from ...verdict import FRACTURE, REVIEW, vertebra_verdict
    from ..keypoints.metrics import match_detections

    tp = fp = fn = right = withheld = 0
    g_errors, errors, fractured, learned = [], [], [], []
    moderate = {"called": 0, "told_normal": 0, "not_assessed": 0}
    flagged = {"moderate": 0, "moderate_n": 0, "normal": 0, "normal_n": 0}
    for view in views:
        try:
            result = analyze_radiograph(view.image, pixel_spacing=(view.pixel_mm, view.pixel_mm),
                                        centroid_model=centroid_model, keypoint_model=keypoint_model).result
        except InputError:  # "no vertebral body found": every vertebra of the view is missed
            fn += len(view.keypoints)
            continue
        found = result.vertebrae
        pairs = match_detections([v.keypoints for v in found], [v.confidence or 0.0 for v in found], view.keypoints)
        tp += len(pairs)
        fp += len(found) - len(pairs)
        fn += len(view.keypoints) - len(pairs)
        for p, t in pairs:
            right += found[p].label == view.levels[t]
            errors.append(np.linalg.norm(found[p].keypoints - view.keypoints[t], axis=1).mean() * view.pixel_mm)
            try:
                true_g = genant_index(heights(view.keypoints[t] * view.pixel_mm))
            except GenantError:
                continue
            if true_g <= MODERATE_G:
                kind = ("not_assessed" if found[p].measure is None
                        else "called" if found[p].measure.G <= MILD_G else "told_normal")
                moderate[kind] += 1
            if found[p].fracture_probability is not None:
                learned.append((true_g, float(found[p].fracture_probability)))
            group = "moderate" if true_g <= MODERATE_G else "normal" if true_g > MILD_G else None
            if group is not None:  # what the report says: "fracture" or "review" flags the body for a reader
                flagged[f"{group}_n"] += 1
                flagged[group] += vertebra_verdict(found[p])[0] in (FRACTURE, REVIEW)
            if found[p].measure is None:  # not assessed: no fracture called (counts against the sensitivity)
                withheld += 1
                fractured.append((true_g, 1.0))
                continue
            g_errors.append(abs(found[p].measure.G - true_g))
            fractured.append((true_g, found[p].measure.G))
    return {"recall": tp / max(tp + fn, 1), "precision": tp / max(tp + fp, 1), "level_accuracy": right / max(tp, 1),
            "keypoint_error_mm": float(np.mean(errors)) if errors else float("nan"),
            "G_mae": float(np.mean(g_errors)) if g_errors else float("nan"), "vertebrae": tp + fn,
            "not_assessed": withheld / max(tp, 1),
            **{f"moderate_{kind}": count for kind, count in moderate.items()},
            "moderate_flagged": flagged["moderate"], "moderate_n": flagged["moderate_n"],
            "normal_flagged": flagged["normal"], "normal_n": flagged["normal_n"],
            **_sensitivity(fractured), **_learned_operating_point(learned)}


def _auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    if not len(positive) or not len(negative):
        return float("nan")
    above = (positive[:, None] > negative[None]).sum() + 0.5 * (positive[:, None] == negative[None]).sum()
    return float(above / (len(positive) * len(negative)))


def _sensitivity(pairs) -> Dict[str, float]:
    """Fracture calls over matched vertebrae from (true G, predicted G) pairs.

    Sensitivity / specificity of G <= 0.8 (at least mild, Pisov et al. 2020, Table 2) and G <= 0.75 (moderate),
    and the AUC of the predicted G for the moderate fractures (true G <= 0.75).
    """
    values = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
    truth_g, called_g = values[:, 0], values[:, 1]
    scores: Dict[str, float] = {"fractured": int((truth_g <= MILD_G).sum())}
    for limit in (MILD_G, MODERATE_G):
        truth, called = truth_g <= limit, called_g <= limit
        scores[f"sensitivity_G<={limit}"] = float((called & truth).sum() / max(truth.sum(), 1))
        scores[f"specificity_G<={limit}"] = float((~called & ~truth).sum() / max((~truth).sum(), 1))
    moderate = truth_g <= MODERATE_G
    scores["AUC_G<=0.75"] = _auc(-called_g[moderate], -called_g[~moderate])
    scores.update(_operating_point(truth_g, called_g))
    return scores


#: Least specificity of the operating point at which the moderate-fracture sensitivity is read (issue 24's measure).
MIN_SPECIFICITY = 0.9


def _operating_point(truth_g: np.ndarray, called_g: np.ndarray) -> Dict[str, float]:
    """Moderate-fracture (true G <= 0.75) sensitivity at the highest G cut-off whose specificity is >= 0.9.

    A vertebra is called when its predicted G is at or below the cut-off; withheld ones carry G = 1 and are never
    called. This reads the ROC of the predicted G at one point; the analysis itself grades with Genant's fixed
    cut-offs (0.8 / 0.75 / 0.6), so the figure says how far the measured G ranks fractures, not what the report
    calls.
    """
    truth = truth_g <= MODERATE_G
    best = {"sensitivity_at_spec0.9": float("nan"), "cutoff_at_spec0.9": float("nan")}
    if not truth.any() or truth.all():
        return best
    best["sensitivity_at_spec0.9"] = 0.0
    for cutoff in np.unique(called_g[called_g < 1.0]):
        called = called_g <= cutoff
        if (~called & ~truth).sum() / (~truth).sum() < MIN_SPECIFICITY:
            break
        best = {"sensitivity_at_spec0.9": float((called & truth).sum() / truth.sum()),
                "cutoff_at_spec0.9": float(cutoff)}
    return best


def _learned_operating_point(pairs) -> Dict[str, float]:
    """The learned score's ranking of the moderate fractures (true G <= 0.75) against the rest of the matched bodies.

    ``classifier_AUC`` and the sensitivity at the highest score cut-off whose specificity is at least
    :data:`MIN_SPECIFICITY` (``classifier_sensitivity_at_spec0.9``; the issue's measure read on the learned score
    rather than on the measured G), and the sensitivity / specificity at the verdict's operating point 0.5.
    """
    values = np.asarray(list(pairs), dtype=np.float64).reshape(-1, 2)
    if not len(values):
        return {}
    truth, score = values[:, 0] <= MODERATE_G, values[:, 1]
    out = {"classifier_AUC": _auc(score[truth], score[~truth]),
           "classifier_sensitivity@0.5": float((score[truth] >= 0.5).mean()) if truth.any() else float("nan"),
           "classifier_specificity@0.5": float((score[~truth] < 0.5).mean()) if (~truth).any() else float("nan")}
    if truth.any() and (~truth).any():  # the measured G's reading, on 1 - score (a higher score calls first)
        out["classifier_sensitivity_at_spec0.9"] = _operating_point(values[:, 0], 1.0 - score)["sensitivity_at_spec0.9"]
    return out
