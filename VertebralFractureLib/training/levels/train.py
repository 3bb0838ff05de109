"""Training of the per-vertebra level classifier (:mod:`VertebralFractureLib.keypoints.levelnet`).

``python -m VertebralFractureLib.training.levels.train --cache CACHE --case-dir CASES --out FILE [--register]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ...keypoints.levelnet import LevelClassifier, build_classifier, context_inputs
from ...levels import LABEL_LEVELS
from ..keypoints.sample import Sample


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


def training_features(cache, case_dir, profiles=None, log=None):
    """Per-case (features, levels) of cached samples (true keypoints) with their bone-band profiles.

    Args:
        cache: folder of ``.npz`` samples named ``<set>_<case>.npz`` (:func:`..keypoints.data.case_folder_sample`).
        case_dir: folder holding ``<case>/ct.nii.gz`` (the generated cases the samples come from).
        profiles: folder of cached profiles (default ``<cache>_levelprof``).
        log: optional callable for progress lines.

    """
    from ...keypoints.levelfeatures import cached_profile, vertebra_features

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
    """``python -m VertebralFractureLib.training.levels.train``: train the level classifier."""
    import argparse

    import torch

    parser = argparse.ArgumentParser(description="train the 3D-cue level classifier (weights/keypoints_levels.pt)")
    parser.add_argument("--cache", default="runs/keypoints_cache", help="training samples (.npz)")
    parser.add_argument("--case-dir", required=True, help="generated cases (ct.nii.gz)")
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
        from ...nn.weights import register

        register(path, model="keypoints_levels", description=(
            "Level classifier on 3D cues (training/levels/train.py); "
            f"python -m VertebralFractureLib.training.levels.train --cache {args.cache} --case-dir {args.case_dir} "
            f"--epochs {args.epochs} --missing {args.missing} --seed {args.seed}"))
    print(f"{sum(len(x) for x in levels)} vertebrae of {len(levels)} cases -> {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    import sys

    sys.exit(main())
