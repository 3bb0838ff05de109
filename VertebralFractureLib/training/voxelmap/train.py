"""``vertebral-fracture train voxelmap``: train the Nicolaes et al. 2019, §3.2 dual-pathway voxel classifier.

Data: generated cases (``--synth N`` seeds from ``--seed-offset``, varied presets, spacings,
orientations and fracture prevalence; cached as band-grid ``.npz`` under ``--cache``) and/or
written case folders (``--data DIR``: ``ct.nii.gz`` + ``truth.json`` + ``centreline.json``).

Regime (Nicolaes et al. 2019, §3.2, scaled to a CPU budget): weighted segment sampling, noise and flip augmentation,
cross-entropy, RMSprop (initial learning rate 1e-3), L1 + L2 regularisation, learning rate halved
when the validation loss plateaus; a wall-clock limit (``--minutes``) replaces Nicolaes et al. 2019's 35 epochs.
After training, the held-out validation cases choose the vertebra cube size (Nicolaes et al. 2019, §4: "determined
using cross-validation") and the patient-level operating point; both are stored with the weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ...voxelmap.band_grid import DEFAULT_BAND_MM, DEFAULT_SPACING
from ...voxelmap.network_constants import FRACTURE, IGNORE, VARIANTS
from .data import DEFAULT_CACHE, Sample, cached, case_folders, folder_sample, synth_samples

MODEL_NAME = "voxelmap"
TRAIN_HELP = HELP = "3D voxel fracture map, dual-pathway CNN (Nicolaes et al. 2019)"


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``train voxelmap``."""
    parser.add_argument("--synth", type=int, default=160, help="number of generated training cases")
    parser.add_argument("--seed-offset", type=int, default=100_000, help="first generated case seed")
    parser.add_argument("--data", action="append", default=[], help="folder of written cases (repeatable)")
    parser.add_argument("--data-limit", type=int, default=0, help="use at most this many cases of each --data folder")
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="folder of cached band-grid samples")
    parser.add_argument("--variant", choices=VARIANTS, default="3d", help="Nicolaes et al. 2019, Table 1 model")
    parser.add_argument("--spacing", type=float, default=DEFAULT_SPACING, help="grid spacing in mm")
    parser.add_argument("--band-mm", type=float, default=DEFAULT_BAND_MM, help="band half-width around the centre-line")
    parser.add_argument("--segment", type=int, default=6, help="output segment side in voxels (multiple of 3)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--class-weights", type=float, nargs=3, default=(0.2, 0.4, 0.4),
                        metavar=("BACKGROUND", "NORMAL", "FRACTURE"), help="segment centre class probabilities")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--l1", type=float, default=1e-6)
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--epoch-steps", type=int, default=50, help="steps between validations")
    parser.add_argument("--val-batches", type=int, default=8, help="validation batches (fixed segments)")
    parser.add_argument("--steps", type=int, default=100_000, help="maximum steps")
    parser.add_argument("--minutes", type=float, default=22.0, help="wall-clock limit of the training loop")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--val-last", type=int, default=0,
                        help="validate on the last N collected cases (e.g. of the last --data folder) instead")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="start from these weights")
    parser.add_argument("--out", default="runs/voxelmap/voxelmap.pt", help="weights to write")
    parser.add_argument("--manifest", action="store_true", help="register the weights in the folder's manifest.json")
    parser.add_argument("--overwrite", action="store_true")
    return parser


def collect_samples(args: argparse.Namespace, log=print) -> List[Sample]:
    """Cached generated and folder samples."""
    samples = list(synth_samples(range(args.seed_offset, args.seed_offset + args.synth), args.cache, args.spacing,
                                 args.band_mm, log=None))
    for root in args.data:
        folder_cache = Path(args.cache) / f"s{args.spacing:g}_b{args.band_mm:g}" / "folders" / Path(root).name
        for folder in case_folders(root)[: args.data_limit or None]:
            samples.append(cached(folder_cache / f"{folder.name}.npz",
                                  lambda f=folder: folder_sample(f, args.spacing, args.band_mm)))
    log(f"{len(samples)} samples, {sum(len(s.levels) for s in samples)} vertebrae, "
        f"{sum(int(s.fractured.sum()) for s in samples)} fractured")
    return samples


def split(samples: Sequence[Sample], fraction: float, seed: int = 0) -> tuple:
    """(train, validation) by case."""
    order = np.random.default_rng(seed).permutation(len(samples))
    n_val = max(1, int(round(fraction * len(samples)))) if len(samples) > 1 else 0
    return [samples[i] for i in order[n_val:]], [samples[i] for i in order[:n_val]]


def l1_penalty(model) -> "torch.Tensor":  # noqa: F821
    """Sum of absolute convolution weights (the L1 term of Nicolaes et al. 2019, §3.2)."""
    return sum(p.abs().sum() for name, p in model.named_parameters() if name.endswith("weight") and p.dim() == 5)


def train(model, train_samples: Sequence[Sample], val_samples: Sequence[Sample], args: argparse.Namespace,
          log=print) -> dict:
    """Train in place; returns the history. Keeps the best validation weights."""
    import torch

    from .sampling import SegmentSampler

    sampler = SegmentSampler(train_samples, args.segment, tuple(args.class_weights), seed=args.seed)
    val_sampler = SegmentSampler(val_samples or train_samples[:1], args.segment, (0.2, 0.4, 0.4), seed=args.seed + 1,
                                 noise=0.0, flip=False)
    val_batches = [val_sampler.batch(args.batch) for _ in range(args.val_batches)]
    optimiser = torch.optim.RMSprop(model.parameters(), lr=args.lr, alpha=0.9, eps=1e-4, weight_decay=args.l2)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, mode="max", factor=0.5, patience=3)
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=IGNORE)
    history, best, best_state = [], -float("inf"), None
    started = time.perf_counter()
    step, running = 0, []
    while step < args.steps and time.perf_counter() - started < 60 * args.minutes:
        model.train()
        x, y = sampler.batch(args.batch)
        logits = model(torch.from_numpy(x))
        loss = loss_fn(logits, torch.from_numpy(y)) + args.l1 * l1_penalty(model)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        running.append(float(loss.detach()))
        step += 1
        if step % args.epoch_steps == 0:
            val_loss, val_auc = validate(model, val_batches, loss_fn)
            score = val_auc if np.isfinite(val_auc) else -val_loss
            scheduler.step(score)
            lr = optimiser.param_groups[0]["lr"]
            history.append({"step": step, "train_loss": round(float(np.mean(running)), 4),
                            "val_loss": round(val_loss, 4), "val_voxel_auc": round(val_auc, 4), "lr": lr,
                            "seconds": round(time.perf_counter() - started)})
            log(json.dumps(history[-1]))
            running = []
            if score > best:
                best = score
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is not None:
        model.load_state_dict(best_state)
    return {"history": history, "steps": step, "best_val_score": best, "seconds": time.perf_counter() - started}


def validate(model, batches, loss_fn) -> tuple:
    """Mean validation loss and the fracture-vs-normal AUC of p(fracture) over labelled vertebra voxels.

    The AUC (not the loss) selects the kept weights: it is what the vertebra level needs, and it
    does not depend on the calibration of the background class.
    """
    import torch

    from ...voxelmap.aggregate import roc_auc
    from ...voxelmap.network_constants import NORMAL

    model.eval()
    losses, scores, truth = [], [], []
    with torch.no_grad():
        for x, y in batches:
            logits = model(torch.from_numpy(x))
            target = torch.from_numpy(y)
            losses.append(float(loss_fn(logits, target)))
            prob = torch.softmax(logits, 1)[:, FRACTURE]
            vertebra = (target == FRACTURE) | (target == NORMAL)
            scores.append(prob[vertebra].numpy())
            truth.append((target[vertebra] == FRACTURE).numpy())
    auc = roc_auc(np.concatenate(scores), np.concatenate(truth)) if scores else float("nan")
    return float(np.mean(losses)), auc


def sample_maps(model, samples: Sequence[Sample]) -> list:
    """:class:`~.metrics.CaseMap` of each sample (the network run over its whole band)."""
    from ...voxelmap.inference import predict_probabilities
    from .metrics import CaseMap

    maps = []
    for s in samples:
        prob = predict_probabilities(model, s.context.astype(np.float32), s.mask)[FRACTURE]
        maps.append(CaseMap(s.name, prob, s.geometry, s.levels, s.centroids, s.grades))
    return maps


def calibrate(model, val_samples: Sequence[Sample], log=print) -> dict:
    """Cube size (Nicolaes et al. 2019, §4), scan-edge margin and patient operating point, chosen on validation."""
    from .metrics import choose_cube, choose_edge_margin, operating_point

    if not val_samples:
        return {}
    maps = sample_maps(model, val_samples)
    cube, aucs = choose_cube(maps)
    margin, margin_aucs = choose_edge_margin(maps)
    point = operating_point(maps, margin)
    log(f"validation: vertebra AUC by cube {aucs} -> cube {cube}; patient hull AUC by edge margin (mm) "
        f"{ {k: round(v, 4) for k, v in margin_aucs.items()} } -> {margin:g} mm, AUC {margin_aucs[margin]:.3f}; "
        f"operating point {point}")
    return {"cube": cube, "cube_aucs": aucs, "edge_margin_mm": margin,
            "edge_margin_aucs": {f"{k:g}": v for k, v in margin_aucs.items()},
            "val_patient_auc": margin_aucs[margin], **point}


def train_main(args: argparse.Namespace) -> int:
    """Run ``train voxelmap``."""
    import torch

    from ...nn.weights import load_weights, save_weights
    from ...voxelmap.network import DualPathwayCNN, count_parameters

    torch.set_num_threads(max(1, args.threads))
    torch.manual_seed(args.seed)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        print(f"train voxelmap: {out} exists; pass --overwrite", file=sys.stderr)
        return 2
    samples = collect_samples(args)
    if not samples:
        print("train voxelmap: no training data (use --synth N or --data DIR)", file=sys.stderr)
        return 2
    if args.val_last:
        train_samples, val_samples = samples[: -args.val_last], samples[-args.val_last:]
    else:
        train_samples, val_samples = split(samples, args.val_fraction, args.seed)
    model = DualPathwayCNN(args.variant)
    if args.init:
        model.load_state_dict(load_weights(args.init, model="voxelmap")["state_dict"])
    print(f"model {args.variant}: {count_parameters(model)} parameters, receptive field {model.receptive_field()}; "
          f"{len(train_samples)} training / {len(val_samples)} validation cases", flush=True)
    report = train(model, train_samples, val_samples, args, log=lambda m: print(m, flush=True))
    model.eval()
    meta = {"spacing": args.spacing, "band_mm": args.band_mm, "steps": report["steps"],
            "best_val_score": report["best_val_score"], "seconds": round(report["seconds"]),
            "train_cases": len(train_samples), "val_cases": len(val_samples), "segment": args.segment,
            "batch": args.batch, "variant": args.variant, "parameters": count_parameters(model),
            "synth": args.synth, "seed_offset": args.seed_offset}
    meta.update(calibrate(model, val_samples, log=lambda m: print(m, flush=True)))
    meta["cube_aucs"] = {str(k): v for k, v in meta.get("cube_aucs", {}).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, out, name="voxelmap", config=model.config, meta=meta, overwrite=True,
                 manifest=args.manifest, description=f"voxel classifier, Nicolaes et al. 2019 ({args.variant})")
    print(f"wrote {out}", flush=True)
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.voxelmap.train``."""
    parser = argparse.ArgumentParser(prog="vertebral-fracture train voxelmap", description=HELP)
    add_train_arguments(parser)
    return train_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
