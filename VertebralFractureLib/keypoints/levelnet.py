"""Per-vertebra level classifier on 3D anatomical cues, decoded with the consecutive-order constraint.

Gartland et al. 2025 predicts one heatmap per level from the 2D image; trained on the mid-sagittal images of our CTs
that net sees no positional cue and collapsed (labels started near T7 whatever the level). Here
each detected vertebra gets a probability per level from a small MLP on the features of
:mod:`.levelfeatures` (rib / pelvis bone bands along the straightened volume, vertebral size) of
itself and of its upper and lower neighbours. The probabilities become emission scores
``clip(1 + log10(p) / 3, 0, 1)`` (1 for certainty, 0 below p = 0.001) of the dynamic programming
of :mod:`.labelling` (Gartland et al. 2025's consecutive-order constraint across the column, T13 / L6 transitional
levels, missing-vertebra gaps), which also yields each vertebra's label confidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..levels import LABEL_LEVELS
from .levelfeatures import N_FEATURES

#: Shipped weights of the classifier.
WEIGHTS_NAME = "keypoints_levels.pt"
#: Gap penalty of the decoding (:mod:`.labelling`): with confident 3D emissions the distance between
#: detections is trusted more than with Gartland et al. 2025's heatmaps (a skipped level when the gap is twice the
#: neighbouring ones); 2.5 chosen over 0.6 / 1.0 / 1.5 on the detector's output for synth_test.
GAP_PENALTY = 2.5
#: Inputs: own features, upper and lower neighbour features, two presence flags.
N_INPUTS = 3 * N_FEATURES + 2


def context_inputs(features: np.ndarray) -> np.ndarray:
    """(n, N_INPUTS) inputs of vertebrae sorted superior -> inferior: own, upper, lower features + flags."""
    features = np.asarray(features, dtype=np.float64).reshape(-1, N_FEATURES)
    n = len(features)
    zero = np.zeros((1, N_FEATURES))
    upper = np.concatenate([zero, features[:-1]]) if n else features
    lower = np.concatenate([features[1:], zero]) if n else features
    flags = np.stack([np.arange(n) > 0, np.arange(n) < n - 1], axis=1).astype(np.float64)
    return np.concatenate([features, upper, lower, flags], axis=1)


def build_classifier(hidden: int = 64, channels: int = len(LABEL_LEVELS)):
    """The MLP (inputs -> level logits)."""
    import torch.nn as nn

    return nn.Sequential(
        nn.Linear(N_INPUTS, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, channels),
    )


class LevelClassifier:
    """Level probabilities of sorted vertebrae from their :func:`.levelfeatures.vertebra_features`."""

    def __init__(self, net, channels: Sequence[str] = LABEL_LEVELS, mean: Optional[np.ndarray] = None,
                 std: Optional[np.ndarray] = None):
        self.net = net.eval()
        self.channels = tuple(channels)
        self.mean = np.zeros(N_INPUTS) if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = np.ones(N_INPUTS) if std is None else np.asarray(std, dtype=np.float64)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, C) level probabilities of vertebrae sorted superior -> inferior."""
        import torch

        inputs = (context_inputs(features) - self.mean) / self.std
        if len(inputs) == 0:
            return np.zeros((0, len(self.channels)))
        from ..nn.device import module_device

        with torch.no_grad():
            logits = self.net(torch.as_tensor(inputs, dtype=torch.float32, device=module_device(self.net)))
        return torch.softmax(logits, dim=1).cpu().numpy().astype(np.float64)

    def scores(self, features: np.ndarray) -> np.ndarray:
        """Emission scores in [0, 1] for :func:`.labelling.select_and_decode` (see module doc)."""
        return emission_scores(self.probabilities(features))

    def state(self) -> Dict:
        """Checkpoint dictionary."""
        return {"state_dict": self.net.state_dict(), "channels": list(self.channels), "mean": self.mean.tolist(),
                "std": self.std.tolist(), "hidden": int(self.net[0].out_features), "n_inputs": N_INPUTS}

    def save(self, path: Union[str, Path]) -> Path:
        """Write the checkpoint (``torch.save``)."""
        import torch

        path = Path(path)
        torch.save(self.state(), path)
        return path

    @classmethod
    def load(cls, path: Union[str, Path, None] = None) -> LevelClassifier:
        """Read a checkpoint (default: the shipped weights)."""
        import torch

        if path is None:
            path = Path(__file__).resolve().parent.parent / "weights" / WEIGHTS_NAME
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("n_inputs") != N_INPUTS:
            raise ValueError(f"{path}: {state.get('n_inputs')} inputs, this code expects {N_INPUTS}")
        net = build_classifier(state["hidden"], len(state["channels"]))
        net.load_state_dict(state["state_dict"])
        return cls(net, state["channels"], np.asarray(state["mean"]), np.asarray(state["std"]))


def emission_scores(probabilities: np.ndarray) -> np.ndarray:
    """``clip(1 + log10(p) / 3, 0, 1)``: 1 for p = 1, 0.67 for p = 0.1, 0 for p <= 0.001."""
    return np.clip(1.0 + np.log10(np.clip(probabilities, 1e-12, 1.0)) / 3.0, 0.0, 1.0)


def decode_with_classifier(
    classifier: LevelClassifier, features: np.ndarray, rows_mm: np.ndarray, gap_penalty: float = GAP_PENALTY,
    anchor=None,
) -> Tuple[np.ndarray, object]:
    """Kept detections and their :class:`.labelling.Labelling` (inputs in any order).

    Args:
        classifier: the level classifier.
        features: (n, N_FEATURES) per detection.
        rows_mm: (n,) row of each detection.
        gap_penalty: see :mod:`.labelling`.
        anchor: a :class:`.level_anchors.LevelAnchor` (its index counts detections sorted superior ->
            inferior): the anchored detection is pinned to its level, the consecutive decoding places the
            others around it; each label's confidence becomes the anchor's, reduced by 0.02 per level away
            from the anchor. Without an anchored level the classifier's labels are kept and their
            confidence is capped at 0.5 (levels uncertain).
    """
    from .labelling import DROP_PENALTY, IN_COLUMN_DROP_PENALTY, in_column, select_and_decode
    from .level_anchors import anchored_confidence, anchored_scores

    rows_mm = np.asarray(rows_mm, dtype=np.float64)
    order = np.argsort(rows_mm, kind="stable")
    scores = np.zeros((len(rows_mm), len(classifier.channels)))
    scores[order] = classifier.scores(np.asarray(features)[order])
    if anchor is None or anchor.index is None:  # no anatomical anchor found (a report without an anchored level)
        # a body in the column keeps a label even where the classifier's scores do not fit it (labelling.in_column).
        # Not with an anchor: its emissions are flat, so no body is dropped for them, and a drop must stay cheaper
        # than moving the anchored level when the column holds more bodies than levels (a neck-to-chest CT's
        # cervical bodies above C7 are left out, not the 12th rib's level moved)
        drop = np.where(in_column(rows_mm), IN_COLUMN_DROP_PENALTY, DROP_PENALTY)
        keep, labelling = select_and_decode(scores, rows_mm, classifier.channels, drop_penalty=drop,
                                            gap_penalty=gap_penalty)
        if anchor is not None:
            labelling.confidence = anchored_confidence(labelling.labels, labelling.confidence, anchor)
        return keep, labelling
    scores = anchored_scores(scores, anchor, classifier.channels, order)
    keep, labelling = select_and_decode(scores, rows_mm, classifier.channels, gap_penalty=gap_penalty)
    labelling.confidence = anchored_confidence(labelling.labels, labelling.confidence, anchor)
    return keep, labelling
