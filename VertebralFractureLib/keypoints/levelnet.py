"""Per-vertebra level classifier on 3D anatomical cues, decoded with the consecutive-order constraint.

004 predicts one heatmap per level from the 2D image; trained on the mid-sagittal images of our CTs
that net sees no positional cue and collapsed (labels started near T7 whatever the level). Here
each detected vertebra gets a probability per level from a small MLP on the features of
:mod:`.levelfeatures` (rib / pelvis bone bands along the straightened volume, vertebral size) of
itself and of its upper and lower neighbours. The probabilities become emission scores
``clip(1 + log10(p) / 3, 0, 1)`` (1 for certainty, 0 below p = 0.001) of the dynamic programming
of :mod:`.labelling` (004's consecutive-order constraint across the column, T13 / L6 transitional
levels, missing-vertebra gaps), which also yields each vertebra's label confidence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from .levelfeatures import N_FEATURES
from .targets import LABEL_LEVELS

#: Shipped weights of the classifier.
WEIGHTS_NAME = "keypoints_levels.pt"
#: Gap penalty of the decoding (:mod:`.labelling`): with confident 3D emissions the distance between
#: detections is trusted more than with 004's heatmaps (a skipped level when the gap is twice the
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
        with torch.no_grad():
            logits = self.net(torch.as_tensor(inputs, dtype=torch.float32))
        return torch.softmax(logits, dim=1).numpy().astype(np.float64)

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


def fit_classifier(
    features: Sequence[np.ndarray],
    levels: Sequence[Sequence[str]],
    epochs: int = 300,
    hidden: int = 64,
    seed: int = 0,
    noise: float = 0.05,
    missing: float = 0.0,
    log=None,
) -> LevelClassifier:
    """Train on cases: per case (n, N_FEATURES) features of its vertebrae (sorted) and their levels.

    Full-batch Adam with cross-entropy; Gaussian feature noise (``noise`` x feature std) and random
    dropping of a case's first / last vertebra (other fields of view) and, with probability
    ``missing``, of one interior vertebra (a missed detection: the neighbours' context shifts) as
    augmentation.
    """
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    channels = list(LABEL_LEVELS)
    cases = [(np.asarray(f, dtype=np.float64), [channels.index(x) for x in lv]) for f, lv in zip(features, levels)]
    all_inputs = np.concatenate([context_inputs(f) for f, _ in cases])
    mean, std = all_inputs.mean(axis=0), all_inputs.std(axis=0) + 1e-3
    net = build_classifier(hidden, len(channels))
    optimiser = torch.optim.Adam(net.parameters(), lr=3e-3, weight_decay=1e-4)
    for epoch in range(epochs):
        xs, ys = [], []
        for f, y in cases:
            lo = int(rng.random() < 0.3) if len(y) > 3 else 0
            hi = len(y) - (int(rng.random() < 0.3) if len(y) > 3 else 0)
            index = np.arange(lo, hi)
            if missing > 0 and len(index) > 4 and rng.random() < missing:
                index = np.delete(index, int(rng.integers(1, len(index) - 1)))
            f_aug = f[index] * (1.0 + noise * rng.normal(size=f[index].shape))
            xs.append(context_inputs(f_aug))
            ys.extend(y[i] for i in index)
        x = torch.as_tensor((np.concatenate(xs) - mean) / std, dtype=torch.float32)
        target = torch.as_tensor(ys)
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if log and (epoch % 50 == 0 or epoch == epochs - 1):
            log(f"epoch {epoch} loss {float(loss):.4f}")
    return LevelClassifier(net, channels, mean, std)


def decode_with_classifier(
    classifier: LevelClassifier, features: np.ndarray, rows_mm: np.ndarray, gap_penalty: float = GAP_PENALTY
) -> Tuple[np.ndarray, object]:
    """Kept detections and their :class:`.labelling.Labelling` (inputs in any order)."""
    from .labelling import select_and_decode

    rows_mm = np.asarray(rows_mm, dtype=np.float64)
    order = np.argsort(rows_mm, kind="stable")
    scores = np.zeros((len(rows_mm), len(classifier.channels)))
    scores[order] = classifier.scores(np.asarray(features)[order])
    return select_and_decode(scores, rows_mm, classifier.channels, gap_penalty=gap_penalty)


def training_features(cache, case_dir, profiles=None, log=None):
    """Per-case (features, levels) of cached samples (true keypoints) with their bone-band profiles.

    Args:
        cache: folder of ``.npz`` samples named ``<set>_<case>.npz`` (:func:`.dataset.case_folder_sample`).
        case_dir: folder holding ``<case>/ct.nii.gz`` (the generated cases the samples come from).
        profiles: folder of cached profiles (default ``<cache>_levelprof``).
        log: optional callable for progress lines.

    """
    from .levelfeatures import cached_profile, vertebra_features
    from .sample import Sample

    cache, case_dir = Path(cache), Path(case_dir)
    profiles = Path(profiles) if profiles is not None else Path(str(cache) + "_levelprof")
    features, levels = [], []
    for path in sorted(cache.glob("*.npz")):
        sample = Sample.load(path)
        if not sample.levels:
            continue
        case = "_".join(path.stem.split("_")[-2:])
        profile = cached_profile(case_dir / case / "ct.nii.gz", sample.meta["curve"], profiles / path.name)
        order = np.argsort(sample.centroids[:, 1])
        features.append(vertebra_features(sample.keypoints[order], profile))
        levels.append([sample.levels[i] for i in order])
        if log:
            log(f"{path.name}: {len(order)} vertebrae")
    return features, levels


def main(argv=None) -> int:
    """``python -m VertebralFractureLib.keypoints.levelnet``: train the level classifier."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description="train the 3D-cue level classifier (weights/keypoints_levels.pt)")
    parser.add_argument("--cache", default="runs/keypoints_cache", help="training samples (.npz)")
    parser.add_argument("--case-dir", default="/work/data/synth_train", help="generated cases (ct.nii.gz)")
    parser.add_argument("--profiles", help="profile cache (default: <cache>_levelprof)")
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--missing", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    parser.add_argument("--register", action="store_true", help="add the manifest entry of --out")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    features, levels = training_features(args.cache, args.case_dir, args.profiles)
    classifier = fit_classifier(features, levels, epochs=args.epochs, seed=args.seed, missing=args.missing, log=print)
    path = classifier.save(args.out)
    if args.register:
        from ..nn.weights import register

        register(path, model="keypoints_levels", description=(
            "Level classifier on 3D cues (keypoints/levelnet.py); "
            f"python -m VertebralFractureLib.keypoints.levelnet --cache {args.cache} --case-dir {args.case_dir} "
            f"--epochs {args.epochs} --missing {args.missing} --seed {args.seed}"))
    print(f"{sum(len(x) for x in levels)} vertebrae of {len(levels)} cases -> {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
