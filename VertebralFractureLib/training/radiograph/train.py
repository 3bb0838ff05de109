"""``vertebral-fracture train radiograph-centroids``: the Gartland et al. 2025 level-centroid U-Net.

Data: generated long columns (:mod:`.columns`) cut into overlapping view pairs with Gartland et al. 2025's
labelling (:mod:`.views`), a fresh random cut every time a column is drawn. ``--loss all`` trains
the four models of Gartland et al. 2025, Table 1 (Base, L1, L2, L3) side by side on identical batches, so they differ
only in the loss. Schedule: Adam (learning rate ``--lr``), halved after 60 % and 80 % of the run
(by steps or by ``--minutes``, whichever is reached first).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

NAME = MODEL_NAME = "radiograph-centroids"
HELP = TRAIN_HELP = ("level centroids T4-L4 on lateral radiographs "
                     "(Gartland et al. 2025: U-Net, 13 heatmaps, losses Base/L1/L2/L3)")
#: Fractions of the run after which the learning rate is halved.
LR_MILESTONES = (0.6, 0.8)


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``train radiograph-centroids``."""
    parser.add_argument("--columns", default="runs/radiograph/columns", help="folder of cached columns (.npz)")
    parser.add_argument("--count", type=int, default=0, help="generate missing columns (seeds from --first-seed)")
    parser.add_argument("--first-seed", type=int, default=700000)
    parser.add_argument("--loss", default="l2", choices=("base", "l1", "l2", "l3", "all"),
                        help="Gartland et al. 2025, appendix B loss; 'all' trains the four Table 1 models side by side")
    parser.add_argument("--mode", default="resize", choices=("resize", "native"),
                        help="resize to --size x --size (Gartland et al. 2025) or isotropic --native-mm pixels")
    parser.add_argument("--size", type=int, default=264)
    parser.add_argument("--native-mm", type=float, default=1.5)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this wall time (0: no limit)")
    parser.add_argument("--pairs", type=int, default=4, help="view pairs per batch (batch = 2 x pairs)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shared", help="also train on the single, fully labelled views of generated case "
                        "folders (radiograph.png + radiograph.json), e.g. the shared training set")
    parser.add_argument("--shared-per-batch", type=int, default=2, help="such views per batch")
    parser.add_argument("--appearance", default="none", choices=("none", "clinical"),
                        help="'clinical': every training view given a clinical radiograph's look (scatter, heel "
                        "effect, processing, collimation, text, grid, 8-bit JPEG; training/radiograph/appearance.py)")
    parser.add_argument("--init", help="start from these weights (one loss only; fine-tuning or a longer run)")
    parser.add_argument("--out-dir", default="runs/radiograph", help="folder for radiograph_centroids_<loss>.pt")
    parser.add_argument("--register", action="store_true", help="add the files to their folder's manifest.json")
    parser.add_argument("--overwrite", action="store_true")
    return parser


def learning_rate(fraction: float, base: float) -> float:
    """Base rate halved after each milestone fraction of the run."""
    return base * 0.5 ** sum(fraction >= m for m in LR_MILESTONES)


def train(columns: Sequence, kinds: Sequence[str], steps: int = 400, pairs: int = 4, lr: float = 1e-3,
          config: Optional[Dict] = None, seed: int = 0, minutes: float = 0.0, log=print,
          refresh: Optional[Callable[[], Sequence]] = None, init: Optional[str] = None,
          extra_views: Sequence = (), extra: int = 0) -> Dict[str, object]:
    """Train one model per loss in ``kinds`` on the same batches; returns kind -> :class:`.model.CentroidModel`.

    ``refresh`` (optional) returns the current columns; it is called every 50 steps so a run can
    start while the column cache is still being filled. ``init`` names weights to start from
    (its settings win over ``config``). ``extra`` views of ``extra_views`` (single, fully labelled
    radiographs) join every batch.
    """
    import torch

    from ...radiograph.model import CentroidModel
    from .batches import centroid_batch
    from .losses import heatmap_loss, layer_classes

    if init:
        start = CentroidModel.load(init)
        start.config.pop("meta", None)
        models = {kind: CentroidModel(start.net, {**start.config, "loss": kind}) for kind in kinds[:1]}
    else:
        models = {kind: CentroidModel.create({**(config or {}), "loss": kind}, seed=seed) for kind in kinds}
    first = next(iter(models.values()))
    optimisers = {kind: torch.optim.Adam(m.net.parameters(), lr=lr) for kind, m in models.items()}
    for m in models.values():
        m.net.train()
    rng = np.random.default_rng(seed)
    started = time.time()
    running = {kind: 0.0 for kind in kinds}
    count = 0
    step = 0
    for step in range(steps):
        elapsed = time.time() - started
        fraction = max(step / steps, elapsed / (60 * minutes) if minutes else 0.0)
        if fraction >= 1.0:
            break
        if refresh is not None and step and step % 50 == 0:
            columns = refresh() or columns
        data = centroid_batch(columns, rng, pairs, first.config, extra_views, extra)
        images = torch.from_numpy(data["image"])
        target = torch.from_numpy(data["heatmaps"])
        weights = torch.from_numpy(layer_classes(data["labelled"], first.levels))
        for kind, model in models.items():
            for group in optimisers[kind].param_groups:
                group["lr"] = learning_rate(fraction, lr)
            loss = heatmap_loss(kind, model.net(images), target, weights)
            optimisers[kind].zero_grad()
            loss.backward()
            optimisers[kind].step()
            running[kind] += float(loss.item())
        count += 1
        if (step + 1) % 20 == 0:
            text = " ".join(f"{k} {v / count:.5f}" for k, v in running.items())
            log(f"step {step + 1}/{steps} lr {learning_rate(fraction, lr):.1e} {text} [{time.time() - started:.0f} s]")
            running = {kind: 0.0 for kind in kinds}
            count = 0
    for m in models.values():
        m.net.eval()
        m.config["trained_steps"] = int(m.config.get("trained_steps", 0)) + step + 1
    return models


def train_main(args: argparse.Namespace) -> int:
    """Run ``train radiograph-centroids``; writes ``radiograph_centroids_<loss>.pt`` and a JSON log."""
    import torch

    from .columns import cached_columns, load_columns

    torch.set_num_threads(max(1, min(int(args.threads), 2)))
    out_dir = Path(args.out_dir)
    kinds = ("base", "l1", "l2", "l3") if args.loss == "all" else (args.loss,)
    if args.init and len(kinds) > 1:
        raise ValueError("--init continues one model; give --loss base, l1, l2 or l3")
    targets = {kind: out_dir / f"radiograph_centroids_{kind}.pt" for kind in kinds}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing and not args.overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist; pass --overwrite to replace them")
    if args.count:
        columns = list(cached_columns(range(args.first_seed, args.first_seed + args.count), args.columns, log=print))
    else:
        columns = load_columns(args.columns)
    if not columns:
        raise ValueError(f"{args.columns}: no cached columns; generate some with --count N")
    extra_views = []
    if args.shared:
        from .evaluate import shared_views

        extra_views = shared_views(args.shared)
    print(f"{len(columns)} columns, {len(extra_views)} single views; training {', '.join(kinds)}", flush=True)
    config = {"mode": args.mode, "size": args.size, "native_mm": args.native_mm, "appearance": args.appearance}
    started = time.time()
    models = train(columns, kinds, args.steps, args.pairs, args.lr, config, args.seed, args.minutes,
                   log=lambda text: print(text, flush=True), refresh=lambda: load_columns(args.columns),
                   init=args.init, extra_views=extra_views, extra=args.shared_per_batch)
    meta = {"columns": len(load_columns(args.columns)), "seconds": round(time.time() - started, 1), "pairs": args.pairs,
            "lr": args.lr, "seed": args.seed, "single_views": len(extra_views), "init": args.init}
    written: List[str] = []
    for kind, model in models.items():
        written.append(str(model.save(targets[kind], meta=meta, register=args.register)))
    summary = {"weights": written, **meta, "steps": next(iter(models.values())).config.get("trained_steps", 0)}
    (out_dir / "radiograph_centroids_train.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.radiograph.train``."""
    return train_main(add_train_arguments(argparse.ArgumentParser(description=HELP)).parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
