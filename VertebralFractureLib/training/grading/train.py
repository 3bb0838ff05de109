r"""``vertebral-fracture train grading``: the three-stage regime of Husseini et al. 2020 on generated or real cases.

Example (the shipped ``grading_full.pt``; see the closing note of issue 12 for the figures)::

    vertebral-fracture train grading --cases runs/data/synth_train --cases runs/data/cache_grading/synth_a \\
        --cache runs/data/cache_grading --width 0.25 --batch 16 --lr 1e-3 --steps-label 150 \\
        --steps-representation 150 --steps-fracture 400 --test-cases runs/data/synth_test \\
        --out VertebralFractureLib/weights/grading_full.pt --ship --overwrite

(``synth_a``: 69 generated cases, seeds 50000-50068, presets cycled by seed, cut by
:func:`~VertebralFractureLib.training.grading.data.build_cache`; ``--synth 69 --seed-offset 50000`` makes them.)

Stages can be switched off (``--no-label``, ``--representation none``, ``--no-fracture``) to train any
row of Husseini et al. 2020, Table 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

NAME = MODEL_NAME = "grading"
HELP = TRAIN_HELP = ("fracture classifier with the grading loss (Husseini et al. 2020): "
                     "label pre-train -> representation -> fracture")


def add_regime_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Data and regime options shared by ``train grading`` and ``evaluate grading``."""
    parser.add_argument("--cases", action="append", default=[], metavar="DIR",
                        help="folder of case folders (ct.nii.gz, truth.json, centreline.json), one case "
                             "folder, or a folder of cached .npz patches (repeatable)")
    parser.add_argument("--synth", type=int, default=0, help="also generate this many cases (seeds from --seed-offset)")
    parser.add_argument("--seed-offset", type=int, default=50000)
    parser.add_argument("--cache", default="runs/grading_cache", help="patch cache root (one sub-folder per source)")
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier (1.0: the paper's §2.3)")
    parser.add_argument("--batch", type=int, default=32, help="patches per step")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (Husseini et al. 2020: 1e-4)")
    parser.add_argument("--steps-label", type=int, default=300)
    parser.add_argument("--steps-representation", type=int, default=300)
    parser.add_argument("--steps-fracture", type=int, default=300)
    parser.add_argument("--fracture-fraction", type=float, default=0.25, help="share of fractures in fracture batches")
    parser.add_argument("--constant-lr", action="store_true", help="no cosine annealing within the stages")
    parser.add_argument("--max-shift", type=int, default=6, help="augmentation shift, pixels (0: no augmentation)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``train grading``."""
    add_regime_arguments(parser)
    parser.add_argument("--no-label", action="store_true", help="skip the label pre-training (§2.2)")
    parser.add_argument("--representation", default="grading", choices=("grading", "triplet", "contrastive", "none"))
    parser.add_argument("--no-fracture", action="store_true", help="skip the fracture stage")
    parser.add_argument("--test-cases", action="append", default=[], metavar="DIR",
                        help="held-out cases scored after training (SN, SP, F1 at 0.5)")
    parser.add_argument("--out", default="runs/grading/grading_full.pt", help="weights to write")
    parser.add_argument("--ship", action="store_true", help="register the weights in their folder's manifest.json")
    parser.add_argument("--overwrite", action="store_true")
    return parser


def regime_from_args(args: argparse.Namespace, **switches):
    """A :class:`~VertebralFractureLib.training.grading.regime.RegimeConfig` from parsed options."""
    from .regime import RegimeConfig

    return RegimeConfig(width=args.width, batch=args.batch, lr=args.lr, steps_label=args.steps_label,
                        steps_representation=args.steps_representation, steps_fracture=args.steps_fracture,
                        fracture_fraction=args.fracture_fraction, max_shift=args.max_shift, seed=args.seed,
                        cosine=not args.constant_lr,
                        **switches)


def load_training_data(args: argparse.Namespace):
    """Patch rows of ``--cases`` and ``--synth``."""
    from .data import PatchSet, build_cache, load_sets

    sets = []
    if args.cases:
        sets.append(load_sets(args.cases, args.cache))
    if args.synth:
        seeds = list(range(args.seed_offset, args.seed_offset + args.synth))
        sets.append(build_cache(seeds, Path(args.cache) / f"synth_{args.seed_offset}"))
    data = PatchSet.concatenate(sets)
    if not len(data):
        raise ValueError("no training data: give --cases DIR and/or --synth N")
    return data


def train_main(args: argparse.Namespace) -> int:
    """Run ``train grading``; returns the exit code."""
    from ...grading.classifier import save_model
    from ...nn.device import limit_threads
    from .metrics import detection_scores
    from .regime import predict, run_regime

    limit_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; use --overwrite")
    config = regime_from_args(args, label_pretrain=not args.no_label,
                              representation=None if args.representation == "none" else args.representation,
                              fracture=not args.no_fracture)
    data = load_training_data(args)
    print(f"training {config.name()} on {data.summary()}", flush=True)
    started = time.perf_counter()
    model = run_regime(data, config, log=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - started
    meta = {"data": data.summary(), "train_seconds": round(seconds, 1), "sources": [str(c) for c in args.cases],
            "synth": args.synth}
    if args.test_cases:
        from .data import load_sets

        test = load_sets(args.test_cases, args.cache)
        test = test.subset(test.train_mask)
        scores = detection_scores(test.fractured, predict(model, test)["probability"] >= 0.5)
        meta["held_out"] = {"cases": [str(c) for c in args.test_cases], "rows": test.summary(),
                            **{k: round(v, 2) for k, v in scores.items()}}
        print(f"held-out: SN {scores['SN']:.1f} SP {scores['SP']:.1f} F1 {scores['F1']:.1f} "
              f"(tp {scores['tp']} fp {scores['fp']} fn {scores['fn']} tn {scores['tn']})", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, out, regime=config.to_dict(), meta=meta, manifest=args.ship,
               description=f"Husseini et al. 2020 fracture classifier ({config.name()}, width {config.width})")
    print(json.dumps({"weights": str(out), "regime": config.name(), "seconds": round(seconds, 1)}))
    return 0


def main(argv=None) -> int:
    """``python -m VertebralFractureLib.training.grading.train``."""
    parser = add_train_arguments(argparse.ArgumentParser(prog="vertebral-fracture train grading", description=HELP))
    return train_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
