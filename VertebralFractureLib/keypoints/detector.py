"""Vertebrae, six keypoints and levels on a 2D mid-sagittal image (Pisov et al. 2020, §3.2; Gartland et al. 2025).

Input: the virtual mid-sagittal image of the straightened spine (or a lateral radiograph) as a
2D array ``[row, column]``, rows from superior to inferior, columns anterior -> posterior. The
image is normalised to zero mean and unit variance (Pisov et al. 2020, §5.1), resampled to 1 mm, passed through
the region-proposal U-Net; candidates above the score threshold are decoded (eq. 2), suppressed
(NMS on keypoint boxes) and labelled jointly (:mod:`.labelling`); a detection that fits no
consecutive labelling (a duplicate or a false positive) is dropped there. With the straightened CT, weaker
candidates (objectness down to :data:`.chain.EXTEND_THRESHOLD`, also from a laterally averaged slab) join
the confident ones before labelling where they continue the chain and the CT shows a vertebra
(:func:`.chain.extend_chain`): the upper thoracic bodies of a chest CT seen through oblique 3 mm slices
score 0.1-0.8. On the CT each stretch of the spine then keeps one box: of two boxes in one column sharing most of
their rows the weaker goes (:func:`.nms.suppress_stacked`), and a box lying on the disc between two bodies one level
apart goes where the refined boxes show it does not fit between them (:func:`.chain.interposed`); both were seen on
5 mm slices, where a box over half a body and its disc keeps an IoU near the NMS threshold.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .anchors import decode, grid_anchors, keypoint_centroids
from .chain import EXTEND_THRESHOLD, SECOND_LOOK_SLAB_MM, chain_has_room, ct_evidence, extend_chain, interposed
from .labelling import best_channels, sample_scores, select_and_decode
from .model import KeypointModel, load_model
from .nms import nms_keypoints, suppress_stacked

_CACHE: dict = {}
#: A vertebra whose keypoints reach this far (pixels) beyond the top or bottom row is cut by the view.
CUT_MARGIN_PX = 2.0


@dataclass
class Detection:
    """One detected vertebra.

    Attributes:
        keypoints: (6, 2) ``[column, row]`` in the input image's pixels, genant.KEYPOINT_NAMES order.
        score: objectness 0-1.
        label: level name.
        label_confidence: 0-1 (see :mod:`.labelling`).
        level_certain: False where the count from an anatomical anchor passes a gap whose length fits no single
            number of missed levels (:func:`.level_anchors.counted_from_anchor`).

    """

    keypoints: np.ndarray
    score: float
    label: str
    label_confidence: float
    level_certain: bool = True

    @property
    def centre(self) -> np.ndarray:
        """Mean of the six keypoints ``[column, row]``."""
        return self.keypoints.mean(axis=0)


def normalise_intensity(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance (the only preprocessing of Pisov et al. 2020, §5.1)."""
    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    return (image - float(image.mean())) / (std if std > 1e-6 else 1.0)


def pad_to(image: np.ndarray, divisor: int, min_shape: Tuple[int, int] = (0, 0), value: float = 0.0) -> np.ndarray:
    """Pad bottom/right to a multiple of ``divisor`` (and at least ``min_shape``)."""
    rows = max(image.shape[0], min_shape[0])
    cols = max(image.shape[1], min_shape[1])
    rows = -(-rows // divisor) * divisor
    cols = -(-cols // divisor) * divisor
    out = np.full((rows, cols), value, dtype=np.float32)
    out[: image.shape[0], : image.shape[1]] = image
    return out


def level_input(image_1mm: np.ndarray, cell_mm: float = 4.0) -> np.ndarray:
    """Downsample a normalised 1 mm image to the level net's grid by block averaging."""
    factor = int(round(cell_mm))
    rows = -(-image_1mm.shape[0] // factor) * factor
    cols = -(-image_1mm.shape[1] // factor) * factor
    padded = np.full((rows, cols), float(image_1mm.min()), dtype=np.float32)
    padded[: image_1mm.shape[0], : image_1mm.shape[1]] = image_1mm
    return padded.reshape(rows // factor, factor, cols // factor, factor).mean(axis=(1, 3))


def resample_2d(image: np.ndarray, spacing_mm: Tuple[float, float], target_mm: float = 1.0) -> np.ndarray:
    """Linear resampling of ``[row, column]`` pixels with (row, column) spacing to ``target_mm``."""
    from scipy.ndimage import zoom

    factors = (spacing_mm[0] / target_mm, spacing_mm[1] / target_mm)
    if np.allclose(factors, 1.0):
        return np.asarray(image, dtype=np.float32)
    return zoom(np.asarray(image, dtype=np.float32), factors, order=1)


def rpn_candidates(model: KeypointModel, image: np.ndarray, threshold: float) -> Tuple[np.ndarray, np.ndarray]:
    """Decoded keypoints (N, 6, 2) and scores (N,) of every anchor above ``threshold``."""
    import torch

    from ..nn.device import module_device

    rpn = model.rpn
    padded = pad_to(image, rpn.divisor, value=float(image.min()))
    with torch.no_grad():
        logits, encoded = rpn(torch.from_numpy(padded)[None, None].to(module_device(rpn)))
    scores = torch.sigmoid(logits)[0].cpu().numpy()
    encoded = encoded[0].cpu().numpy()
    anchors = grid_anchors(scores.shape[1:], model.config["stride"], model.shapes)
    keep = scores > threshold
    points = decode(encoded[keep].reshape(-1, 6, 2), anchors[keep])
    return points, scores[keep]


def level_heatmaps(model: KeypointModel, image: np.ndarray) -> np.ndarray:
    """Level heatmaps (C, H4, W4) of a normalised 1 mm image."""
    import torch

    from ..nn.device import module_device

    small = level_input(image, model.config["level_cell_mm"])
    padded = pad_to(small, model.levels.divisor, value=float(small.min()))
    with torch.no_grad():
        out = model.levels(torch.from_numpy(padded)[None, None].to(module_device(model.levels)))[0].cpu().numpy()
    return out[:, : small.shape[0], : small.shape[1]]


def _model(model: Optional[KeypointModel]) -> KeypointModel:
    if model is not None:
        return model
    if "default" not in _CACHE:
        _CACHE["default"] = load_model()
    return _CACHE["default"]


def _is_shipped_ct_model(model: KeypointModel) -> bool:
    """Whether ``model`` holds the shipped CT weights (weights/keypoints.pt) that :mod:`.refine` was tuned for."""
    if "shipped_sha256" not in _CACHE:
        from ..nn.weights import sha256_of
        from .model import default_weights_path

        path = default_weights_path()
        _CACHE["shipped_sha256"] = sha256_of(path) if path.exists() else None
    return getattr(model, "sha256", None) is not None and model.sha256 == _CACHE["shipped_sha256"]


def _level_classifier():
    if "levels" not in _CACHE:
        from .levelnet import LevelClassifier

        _CACHE["levels"] = LevelClassifier.load()
    return _CACHE["levels"]


def _in_view(
    kept: np.ndarray, kept_scores: np.ndarray, shape: Tuple[int, int], config: dict, target: float, keep_cut: bool
) -> Tuple[np.ndarray, np.ndarray]:
    """Drop candidates too far off the centre column (``max_offset_mm``) and, unless ``keep_cut``, cut ones."""
    max_offset = config.get("max_offset_mm")
    if max_offset is not None and len(kept):
        centre_column = (shape[1] - 1) / 2.0
        near = np.abs(kept.mean(axis=1)[:, 0] - centre_column) * target <= max_offset
        kept, kept_scores = kept[near], kept_scores[near]
    if not keep_cut and len(kept):
        inside = (kept[:, :, 1].min(axis=1) >= -CUT_MARGIN_PX) & (
            kept[:, :, 1].max(axis=1) <= shape[0] - 1 + CUT_MARGIN_PX
        )
        kept, kept_scores = kept[inside], kept_scores[inside]
    return kept, kept_scores


def _weak_candidates(
    points: np.ndarray, scores: np.ndarray, strong: np.ndarray, threshold: float, config: dict
) -> Tuple[np.ndarray, np.ndarray]:
    """Candidates below ``threshold`` after their own NMS, without those overlapping a confident detection."""
    from .anchors import iou, keypoint_boxes

    low = scores <= threshold
    weak, weak_scores, _ = nms_keypoints(points[low], scores[low], config["nms_iou"], config["vote_iou"])
    if len(weak) and len(strong):
        overlap = iou(keypoint_boxes(weak), keypoint_boxes(strong)).max(axis=1)
        free = overlap <= config["nms_iou"]
        weak, weak_scores = weak[free], weak_scores[free]
    return weak, weak_scores


def _second_look(
    model: KeypointModel,
    straightened,
    spacing: Tuple[float, float],
    target: float,
    strong: np.ndarray,
    weak: np.ndarray,
    weak_scores: np.ndarray,
) -> Tuple[np.ndarray, np.ndarray]:
    """Add the candidates of a laterally averaged mid-sagittal slab (:data:`.chain.SECOND_LOOK_SLAB_MM`) to ``weak``.

    Only candidates that do not overlap a confident detection are added; duplicates of the weak ones are
    removed by NMS (the higher objectness stays, without voting between the two images).
    """
    slab = normalise_intensity(resample_2d(straightened.mid_sagittal(slab_mm=SECOND_LOOK_SLAB_MM), spacing, target))
    points, scores = rpn_candidates(model, slab, EXTEND_THRESHOLD)
    more, more_scores = _weak_candidates(points, scores, strong, np.inf, model.config)
    if len(more) == 0:
        return weak, weak_scores
    both = np.concatenate([weak.reshape(-1, 6, 2), more])
    both_scores = np.concatenate([weak_scores, more_scores])
    kept, kept_scores, _ = nms_keypoints(both, both_scores, model.config["nms_iou"], 1.0)
    return kept, kept_scores


def _without_boxes_on_discs(kept: np.ndarray, straightened, ct, scale: np.ndarray) -> List[int]:
    """Indices of ``kept`` without the boxes that lie on a disc between two bodies (:func:`.chain.interposed`).

    An interposed box goes when the CT does not show a vertebra there (:func:`.chain.ct_evidence`) or when, it and its
    two neighbours refined on the CT (:func:`.refine.refine_on_ct`, on the detector's plane, as the analysis refines
    them), it is taller than the gap between the neighbours' facing endplates: a body between them has a disc on
    each side inside that gap (a collapsed one is short and fits), a box whose borders are the neighbours' endplates
    does not. Measured on the sample CT at 5 mm slices: the box over the L4/L5 disc refined to 28 mm, the gap
    between L4 and L5 17 mm; the CT shows bone in it (the blurred endplates), so the evidence alone kept it.

    Args:
        kept: (n, 6, 2) detector-grid keypoints ``[column, row]``.
        straightened: the :class:`~VertebralFractureLib.spine.StraightenedSpine` of the mid-sagittal image.
        ct: the canonical SimpleITK CT.
        scale: (2,) factors from the detector grid to the mid-sagittal pixels (``[column, row]``).
    """
    from .refine import refine_on_ct

    between = interposed(kept)
    if not between:
        return list(range(len(kept)))
    evidence = ct_evidence(straightened, ct, scale)

    @functools.cache
    def refined_rows(index: int) -> Tuple[float, float]:  # a neighbour of two interposed boxes is refined once
        detected = straightened.mid_sagittal_to_patient(np.asarray(kept[index], dtype=np.float64) * scale,
                                                        order="col_row")
        rows = straightened.patient_to_mid_sagittal(refine_on_ct(ct, detected, midplane=False))[0][:, 0] / scale[1]
        return float(rows.min()), float(rows.max())

    order = list(np.argsort(keypoint_centroids(kept)[:, 1], kind="stable"))
    drop = set()
    for i in between:
        if not evidence(kept[i]):
            drop.add(i)
            continue
        k = order.index(i)
        top, bottom = refined_rows(i)
        gap = refined_rows(int(order[k + 1]))[0] - refined_rows(int(order[k - 1]))[1]
        if bottom - top > gap:
            drop.add(i)
    return [i for i in range(len(kept)) if i not in drop]


def detect_vertebrae(
    mid_sagittal_image: np.ndarray,
    spacing_mm: float | Tuple[float, float] = 1.0,
    model: Optional[KeypointModel] = None,
    score_threshold: Optional[float] = None,
    keep_cut: bool = False,
    straightened=None,
    level_profile=None,
    level_classifier=None,
    refine: Optional[bool] = None,
    ct=None,
    level_report: Optional[dict] = None,
    extend_chain_enabled: bool = True,
    order_levels: bool = True,
) -> List[Detection]:
    """Vertebrae with six keypoints, score, level and its confidence (Pisov et al. 2020, §3.2; Gartland et al. 2025).

    Args:
        mid_sagittal_image: 2D array ``[row, column]``; rows superior -> inferior, columns
            anterior -> posterior.
        spacing_mm: pixel size (one value, or (row, column)).
        model: a :class:`KeypointModel`; the shipped weights by default.
        score_threshold: objectness threshold (default: the model's).
        keep_cut: keep vertebrae whose predicted keypoints reach beyond the top or bottom of the
            image (cut by the field of view, so not measurable); dropped by default.
        straightened: the :class:`~VertebralFractureLib.spine.StraightenedSpine` (with its volume,
            lateral half width >= 60 mm) the image is the mid-sagittal plane of. When given, levels
            come from the 3D cues (ribs, pelvis, size: :mod:`.levelnet`) instead of the 2D
            heatmaps of Gartland et al. 2025, which cannot tell thoracic from lumbar vertebrae.
        level_profile: alternatively the precomputed :class:`.levelfeatures.RowProfile` of that volume.
        level_classifier: a :class:`.levelnet.LevelClassifier` (default: the shipped one).
        refine: snap the keypoints to the end-plate edges (:mod:`.refine`); default: the model
            config's ``refine_endplates``, else True for the shipped CT weights only (the snapping
            was tuned on mid-sagittal CT images, not on radiographs or other models).
        ct: the CT (canonical SimpleITK image) ``straightened`` was made from; with it the level count
            is anchored on the 12th rib and the iliac crests (:mod:`.level_anchors`) and the classifier
            only fills in the levels around the anchor.
        level_report: a dict that receives ``{"anchor", "certain", "method", "confidence"}`` (how the
            levels were decided; :meth:`.level_anchors.LevelAnchor.to_dict`) when levels come from 3D cues.
        extend_chain_enabled: with ``straightened`` and ``ct``, also take candidates down to
            :data:`.chain.EXTEND_THRESHOLD` that continue the chain of confident detections and that the CT
            shows as vertebrae (:func:`.chain.extend_chain`).
        order_levels: with the 2D level heatmaps, label the detections as one cranio-caudal sequence that
            leaves out detections not fitting it (:func:`.labelling.select_and_decode`). False: keep every
            detection and give each its best level channel alone, for a caller that gates the detections and
            names the levels itself (the radiograph analysis): on a film with many false candidates (bowel,
            abdominal wall, pelvis) the one-level-each sequence keeps false ones and drops true bodies before
            any image check has run (a real lumbar slice: T6-T12 and L2, L4 dropped, 21 kept of 30).

    Returns:
        Detections sorted superior -> inferior, keypoints in the input image's pixels.

    """
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model = _model(model).eval()
    spacing = np.broadcast_to(np.asarray(spacing_mm, dtype=np.float64), (2,))
    image = np.asarray(mid_sagittal_image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"expected a 2D image, got shape {image.shape}")
    target = float(model.config["spacing_mm"])
    resampled = normalise_intensity(resample_2d(image, (spacing[0], spacing[1]), target))
    threshold = model.config["score_threshold"] if score_threshold is None else score_threshold
    extend = extend_chain_enabled and straightened is not None and ct is not None and threshold > EXTEND_THRESHOLD
    points, scores = rpn_candidates(model, resampled, min(threshold, EXTEND_THRESHOLD) if extend else threshold)
    strong = scores > threshold
    kept, kept_scores, _ = nms_keypoints(points[strong], scores[strong], model.config["nms_iou"],
                                         model.config["vote_iou"])
    kept, kept_scores = _in_view(kept, kept_scores, resampled.shape, model.config, target, keep_cut)
    # a chain that fills the view leaves nothing to add: no weak candidates, no second look
    if extend and len(kept) and chain_has_room(kept, resampled.shape[0]):
        weak, weak_scores = _weak_candidates(points, scores, kept, threshold, model.config)
        if straightened.volume is not None:
            weak, weak_scores = _second_look(model, straightened, (spacing[0], spacing[1]), target, kept, weak,
                                             weak_scores)
        weak, weak_scores = _in_view(weak, weak_scores, resampled.shape, model.config, target, keep_cut)
        scale = np.array([target / spacing[1], target / spacing[0]])
        added = extend_chain(kept, weak, weak_scores, ct_evidence(straightened, ct, scale))
        if added:
            kept = np.concatenate([kept, weak[added]])
            kept_scores = np.concatenate([kept_scores, weak_scores[added]])
    if straightened is not None and len(kept):
        # one box per stretch of the CT's spine: two boxes sharing most of their rows are not two bodies
        stacked = suppress_stacked(kept, kept_scores)
        kept, kept_scores = kept[stacked], kept_scores[stacked]
        if ct is not None:
            body = _without_boxes_on_discs(kept, straightened, ct, np.array([target / spacing[1], target / spacing[0]]))
            kept, kept_scores = kept[body], kept_scores[body]
    if len(kept) == 0:
        return []
    if refine is None:
        refine = bool(model.config.get("refine_endplates", _is_shipped_ct_model(model)))
    if refine:
        from .refine import refine_endplates

        kept = refine_endplates(resampled, kept)
    centres_mm = keypoint_centroids(kept) * target
    level_certain = None  # per kept detection: counted from an anatomical anchor (None: as the labelling says)
    if straightened is not None and level_profile is None:
        from .levelfeatures import profile_of_spine

        level_profile = profile_of_spine(straightened)
    if level_profile is not None:
        from .levelfeatures import vertebra_features
        from .levelnet import decode_with_classifier

        classifier = level_classifier if level_classifier is not None else _level_classifier()
        features = np.zeros((len(kept), level_profile.values.shape[1] * 3 + 4))
        order = np.argsort(centres_mm[:, 1], kind="stable")
        features[order] = vertebra_features(kept[order] * target, level_profile)
        anchor = None
        if ct is not None and straightened is not None:
            from .level_anchors import anchor_of_detections

            anchor = anchor_of_detections(ct, straightened.curve, kept[order] * target)
        keep, labelling = decode_with_classifier(classifier, features, centres_mm[:, 1], anchor=anchor)
        if anchor is not None and anchor.certain:
            from .level_anchors import counted_from_anchor

            rows = centres_mm[keep, 1]
            sorted_kept = np.argsort(rows, kind="stable")
            counted = counted_from_anchor([labelling.labels[i] for i in sorted_kept], rows[sorted_kept],
                                          anchor.anchored_levels)
            level_certain = np.empty(len(keep), dtype=bool)
            level_certain[sorted_kept] = counted
        if level_report is not None:
            from .level_anchors import uncertain_report

            level_report.update(anchor.to_dict() if anchor is not None else uncertain_report())
    else:
        heatmaps = level_heatmaps(model, resampled)
        scores = sample_scores(heatmaps, centres_mm, model.config["level_cell_mm"])
        if model.config.get("normalise_level_scores", False) and len(scores):
            scores = scores / max(float(scores.max()), 0.05) if scores.max() < 1.0 else scores
        if order_levels:
            keep, labelling = select_and_decode(scores, centres_mm[:, 1], model.config["levels"])
        else:
            keep, labelling = np.arange(len(kept)), best_channels(scores, model.config["levels"])
    kept, kept_scores = kept[keep], kept_scores[keep]
    scale = np.array([target / spacing[1], target / spacing[0]])  # (col, row) back to input pixels
    if level_certain is None:
        level_certain = np.ones(len(kept), dtype=bool)
    detections = [
        Detection(points * scale, float(score), label, float(conf), bool(sure))
        for points, score, label, conf, sure in zip(kept, kept_scores, labelling.labels, labelling.confidence,
                                                    level_certain)
    ]
    detections.sort(key=lambda d: d.centre[1])
    return detections
