"""``vertebral-fracture train keypoints``: the detector (Pisov et al. 2020, §3.2) and level net (Gartland et al. 2025).

Data: generated cases (``--synth N``: seeds ``--seed-offset`` ... straightened on the true
centre-line with a random perturbation, cached as ``.npz``), real CTs with annotation JSON
(``--pair CT ANNOTATION``, repeatable, or ``--pairs FILE`` with two paths per line) and, for smoke
tests only, drawn spines (``--drawn N``).

Schedule (Pisov et al. 2020, §5.1, scaled to CPU): Adam, learning rate ``--lr`` (1e-3) halved after 25 %, 35 %
and 50 % of the steps (the paper's 1k, 1.4k and 2k of 4k iterations). After training the score
threshold is calibrated on the validation samples (best detection F1).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .sample import Sample

NAME = MODEL_NAME = "keypoints"
HELP = TRAIN_HELP = ("vertebra detector with six keypoints and level labels "
                     "(Pisov et al. 2020, §3.2; Gartland et al. 2025)")
#: Fractions of the run after which the learning rate is halved (Pisov et al. 2020, §5.1: 1k, 1.4k, 2k of 4k).
LR_MILESTONES = (0.25, 0.35, 0.5)


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``train keypoints``."""
    parser.add_argument("--synth", type=int, default=0, help="number of generated training cases")
    parser.add_argument("--seed-offset", type=int, default=0, help="first generated case seed")
    parser.add_argument("--synth-preset", nargs="+", default=["spine"], metavar="PRESET",
                        help="generator presets, taken in turn per generated case (default: spine)")
    parser.add_argument("--realism", nargs="+", default=["v1"], choices=("v1", "hospital"),
                        help="generator realism profiles, taken in turn per round of presets "
                             "(e.g. 'hospital hospital v1': two thirds hospital; default: v1)")
    parser.add_argument("--size-scale", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="body-size factor of the generated cases, uniform per case from its own random stream "
                             "(default: the generator's N(1, 0.05); real bodies are 1.0-1.3 times its mean)")
    parser.add_argument("--cache", default="runs/keypoints_cache", help="folder of cached .npz samples")
    parser.add_argument("--case-dir", action="append", default=[],
                        help="folder of generated cases written by synth.write_case (repeatable)")
    parser.add_argument("--from-cache", action="store_true",
                        help="also train on every .npz already in --cache, rescanning it every 200 steps")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("CT", "ANNOTATION"),
                        help="a real CT and its annotation JSON (repeatable)")
    parser.add_argument("--pairs", help="text file with 'CT ANNOTATION' per line")
    parser.add_argument("--drawn", type=int, default=0, help="number of drawn 2D spines (smoke tests)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--level-batch", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--crop", type=int, nargs=2, default=(192, 96), metavar=("ROWS", "COLS"))
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--perturb-mm", type=float, default=1.5, help="random centre-line perturbation")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1-2; 1 is faster on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="start from these weights (fine-tuning on corrected cases)")
    parser.add_argument("--parts", nargs="+", choices=("detector", "levels"), default=["detector", "levels"],
                        help="which nets to train (e.g. only 'levels' to fine-tune the level net)")
    parser.add_argument("--sigma-mm", type=float, help="Gaussian width of the level heatmaps (default 6 mm)")
    parser.add_argument("--level-cell-mm", type=float, help="pixel size of the level net (default 4 mm)")
    parser.add_argument("--reset-levels", action="store_true", help="start the level net afresh (with --init)")
    parser.add_argument("--freeze-norm", action="store_true",
                        help="keep the detector's batch-norm statistics as loaded (fine-tuning with --init)")
    parser.add_argument("--level-channels", type=int, nargs="+", help="level U-Net widths (with --reset-levels)")
    parser.add_argument("--out", default="runs/keypoints/keypoints.pt", help="weights to write")
    parser.add_argument("--overwrite", action="store_true")
    return parser


def _pairs(args: argparse.Namespace) -> List[tuple]:
    pairs = [tuple(p) for p in args.pair]
    if args.pairs:
        for line in Path(args.pairs).read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                ct, annotation = line.split()[:2]
                pairs.append((ct, annotation))
    return pairs


def collect_samples(args: argparse.Namespace) -> List[Sample]:
    """Every training sample the options name."""
    from .data import AnnotatedCTDataset, generated_samples
    from .drawn import draw_spine

    samples: List[Sample] = []
    if args.synth:
        presets = list(getattr(args, "synth_preset", None) or ["spine"])
        realisms = list(getattr(args, "realism", None) or ["v1"])
        for k, seed in enumerate(range(args.seed_offset, args.seed_offset + args.synth)):
            params = {}
            if presets != ["spine"]:
                params["preset"] = presets[k % len(presets)]
            if realisms != ["v1"]:
                params["realism"] = realisms[(k // len(presets)) % len(realisms)]
            if getattr(args, "size_scale", None):
                from ...synth.params import drawn_size_scale

                params["size_scale"] = round(drawn_size_scale(seed, *args.size_scale), 4)  # 4 decimals: its cache name
            samples.extend(generated_samples([seed], args.perturb_mm, cache=args.cache, **params))
            if (k + 1) % 10 == 0:
                print(f"prepared {k + 1}/{args.synth} generated cases", flush=True)
    from .data import case_folder_sample

    for folder in args.case_dir:
        cases = sorted(p for p in Path(folder).glob("case_*") if (p / "truth.json").exists())
        for k, case in enumerate(cases):
            samples.append(case_folder_sample(case, args.perturb_mm, seed=args.seed + k, cache=args.cache))
    if args.from_cache:
        from .data import load_cached

        known = {s.name for s in samples}
        samples.extend(s for s in load_cached(args.cache) if s.name not in known)
    pairs = _pairs(args)
    if pairs:
        samples.extend(AnnotatedCTDataset(pairs, perturb_mm=args.perturb_mm, seed=args.seed, cache=args.cache))
    rng = np.random.default_rng(args.seed + 1)
    samples.extend(draw_spine(rng) for _ in range(args.drawn))
    return samples


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def learning_rate(step: int, steps: int, base: float) -> float:
    """Pisov et al. 2020, §5.1 schedule scaled to ``steps``: halved after 25 %, 35 % and 50 %."""
    return base * 0.5 ** sum(step >= int(m * steps) for m in LR_MILESTONES)


def train(
    train_samples: Sequence[Sample],
    val_samples: Sequence[Sample],
    steps: int = 3000,
    batch: int = 8,
    level_batch: int = 8,
    lr: float = 1e-3,
    crop: tuple = (192, 96),
    seed: int = 0,
    model=None,
    log=print,
    refresh=None,
    parts: Sequence[str] = ("detector", "levels"),
    freeze_norm: bool = False,
    genant_power: float = 1.0,
):
    """Train both nets; returns the :class:`.model.KeypointModel` (threshold calibrated on ``val_samples``).

    ``parts`` selects the nets to train (e.g. only ``("levels",)`` to fine-tune the level net of a
    trained model). ``freeze_norm`` keeps the detector's batch-norm running statistics (eval mode) while its
    weights train. ``genant_power`` k weighs each vertebra's keypoint term by 1 / G**k
    (eq. 3: k = 1). ``refresh``, when given, is called every 200 steps and returns further training samples
    (e.g. cases cached while training runs).
    """
    import torch

    from ...keypoints.model import KeypointModel
    from .batches import detector_batch
    from .batches import level_batch as make_level_batch
    from .losses import detection_loss, tailored_heatmap_loss

    model = model or KeypointModel.create(seed=seed)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    config = model.config
    shapes = model.shapes
    longest = max(s.image.shape[0] for s in train_samples)
    factor = int(config["level_cell_mm"])
    divisor = model.levels.divisor
    grid_rows = min(_round_up(_round_up(longest, factor) // factor, divisor), 192)
    grid_cols = _round_up(_round_up(config["width_px"] + 1, factor) // factor, divisor)
    optimisers = [torch.optim.Adam(model.rpn.parameters(), lr=lr), torch.optim.Adam(model.levels.parameters(), lr=lr)]
    model.rpn.train("detector" in parts)
    if freeze_norm:
        for module in model.rpn.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()
    for module in model.rpn.modules():  # frozen layers (requires_grad False) keep their batch-norm statistics
        own = list(module.parameters(recurse=False))
        if own and not any(p.requires_grad for p in own):
            module.eval()
    model.levels.train()
    started = time.time()
    running = np.zeros(4)
    train_samples = list(train_samples)
    for step in range(steps):
        if refresh is not None and step and step % 200 == 0:
            extra = refresh()
            if extra:
                train_samples.extend(extra)
                log(f"step {step}: +{len(extra)} samples ({len(train_samples)} in all)")
        for optimiser in optimisers:
            for group in optimiser.param_groups:
                group["lr"] = learning_rate(step, steps, lr)
        if "detector" in parts:
            data = detector_batch(train_samples, rng, batch, tuple(crop), config["stride"], shapes,
                                  genant_power=genant_power)
            logits, encoded = model.rpn(torch.from_numpy(data["image"]))
            losses = detection_loss(
                logits,
                encoded,
                torch.from_numpy(data["objectness"]),
                torch.from_numpy(data["encoded"]),
                torch.from_numpy(data["weight"]),
                valid=torch.from_numpy(data["valid"]),
            )
            optimisers[0].zero_grad()
            losses["loss"].backward()
            optimisers[0].step()
        else:
            zero = torch.zeros(())
            losses = {"loss": zero, "bce": zero, "mae": zero}
        level_value = 0.0
        if "levels" in parts:
            levels = make_level_batch(
                train_samples, rng, level_batch, (grid_rows, grid_cols), config["level_cell_mm"],
                config["heatmap_sigma_mm"], config["levels"],
            )
            predicted = model.levels(torch.from_numpy(levels["image"]))
            level_loss = tailored_heatmap_loss(
                predicted,
                torch.from_numpy(levels["heatmaps"]),
                torch.from_numpy(levels["layer_weight"]),
                torch.from_numpy(levels["mask"]),
            )
            optimisers[1].zero_grad()
            level_loss.backward()
            optimisers[1].step()
            level_value = level_loss.item()
        running += [losses["loss"].item(), losses["bce"].item(), losses["mae"].item(), level_value]
        if (step + 1) % 50 == 0 or step + 1 == steps:
            mean = running / (50 if (step + 1) % 50 == 0 else (step + 1) % 50)
            running[:] = 0
            log(
                f"step {step + 1}/{steps} lr {learning_rate(step, steps, lr):.2e} loss {mean[0]:.4f} "
                f"(bce {mean[1]:.4f} mae {mean[2]:.4f}) level {mean[3]:.4f} [{time.time() - started:.0f} s]"
            )
    model.eval()
    if val_samples:
        threshold, f1 = calibrate_threshold(model, val_samples)
        model.config["score_threshold"] = threshold
        log(f"score threshold {threshold:.2f} (validation detection F1 {f1:.4f})")
    return model


def calibrate_threshold(model, samples: Sequence[Sample], candidates=(0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)):
    """The objectness threshold with the best detection F1 on ``samples``."""
    from ...keypoints.detector import detect_vertebrae
    from .metrics import match_detections

    best = (model.config["score_threshold"], -1.0)
    low = min(candidates)
    runs = [(detect_vertebrae(s.image, model=model, score_threshold=low), s) for s in samples]
    for threshold in candidates:
        tp = fp = fn = 0
        for detections, sample in runs:
            kept = [d for d in detections if d.score > threshold]
            pairs = match_detections([d.keypoints for d in kept], [d.score for d in kept], sample.keypoints)
            tp += len(pairs)
            fp += len(kept) - len(pairs)
            fn += len(sample.keypoints) - len(pairs)
        f1 = 2 * tp / max(2 * tp + fp + fn, 1)
        if f1 > best[1]:
            best = (threshold, f1)
    return best


def train_main(args: argparse.Namespace) -> int:
    """Run ``train keypoints``; writes the weights and a JSON log beside them."""
    import torch

    from ...keypoints.model import load_model

    torch.set_num_threads(max(1, min(args.threads, 2)))
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    samples = collect_samples(args)
    if not samples:
        raise ValueError("no training data: give --synth N, --pair CT ANNOTATION, --pairs FILE or --drawn N")
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(samples))
    n_val = int(round(args.val_fraction * len(samples))) if len(samples) > 4 else 0
    val = [samples[i] for i in order[:n_val]]
    training = [samples[i] for i in order[n_val:]]
    print(f"{len(training)} training and {len(val)} validation samples", flush=True)
    model = load_model(args.init) if args.init else None
    if args.sigma_mm or args.level_cell_mm or args.reset_levels:
        from ...keypoints.model import KeypointModel
        from ...keypoints.network import LevelNet

        model = model or KeypointModel.create(seed=args.seed)
        model.config["heatmap_sigma_mm"] = args.sigma_mm or model.config["heatmap_sigma_mm"]
        model.config["level_cell_mm"] = args.level_cell_mm or model.config["level_cell_mm"]
        if args.reset_levels:
            model.config["level_channels"] = args.level_channels or model.config["level_channels"]
            torch.manual_seed(args.seed)
            model.levels = LevelNet(len(model.config["levels"]), model.config["level_channels"])
    started = time.time()
    refresh = None
    if args.from_cache:
        from .data import load_cached

        seen = {s.name for s in samples}

        def refresh() -> List[Sample]:
            new = [s for s in load_cached(args.cache) if s.name not in seen]
            seen.update(s.name for s in new)
            return new

    model = train(
        training, val, args.steps, args.batch, args.level_batch, args.lr, tuple(args.crop), args.seed, model,
        log=lambda text: print(text, flush=True), refresh=refresh, parts=tuple(args.parts),
        freeze_norm=args.freeze_norm,
    )
    path = model.save(out, overwrite=True)
    summary = {
        "weights": str(path),
        "seconds": round(time.time() - started, 1),
        "steps": args.steps,
        "train_samples": len(training),
        "val_samples": len(val),
        "config": model.config,
    }
    (out.parent / (out.stem + "_train.json")).write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.keypoints.train``."""
    parser = add_train_arguments(argparse.ArgumentParser(description=HELP))
    return train_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
