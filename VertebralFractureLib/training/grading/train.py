r"""``vertebral-fracture train grading``: the three-stage regime of Husseini et al. 2020 on generated or real cases.

The shipped ``grading_full.pt`` (2026-12-04; the mean of three networks, 240 generated cases alternating the hospital
and the plain generator profile, the preset's voxels, 3 mm isotropic and 0.8 x 0.8 x 3 mm in turn, body sizes 0.9-1.3
times the generator's mean, :class:`~VertebralFractureLib.training.grading.data.SynthMix`; 8 min of generation and
5 min of training on one core)::

    OMP_NUM_THREADS=1 vertebral-fracture train grading --synth 240 --seed-offset 620000 --realism hospital v1 \\
        --spacings preset 3 0.8,0.8,3 --size-scale 0.9 1.3 --fracture-prevalence 0.3 --ensemble 3 \\
        --cache runs/data/cache_grading --width 0.25 --batch 16 --lr 1e-3 --steps-label 150 \\
        --steps-representation 150 --steps-fracture 400 --threads 1 --seed 0 \\
        --out VertebralFractureLib/weights/grading_full.pt --ship --overwrite

The single network shipped before (2026-11-21; issue 12's closing note) came from ``--cases runs/data/synth_train
--cases runs/data/cache_grading/synth_a`` (``synth_a``: 69 generated cases, seeds 50000-50068, presets cycled by
seed, ``--synth 69 --seed-offset 50000``) with the same network and stage settings.

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
    parser.add_argument("--realism", nargs="+", default=["v1"], choices=("v1", "hospital"),
                        help="generator profiles of the --synth cases, one per case in turn")
    parser.add_argument("--spacings", nargs="+", default=["preset"], metavar="MM",
                        help="voxel sizes of the --synth cases, one per case in turn: 'preset', one value "
                             "(isotropic) or x,y,z (e.g. preset 3 0.8,0.8,3)")
    parser.add_argument("--size-scale", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="body-size factor of the --synth cases, uniform (default: the generator's N(1, 0.05))")
    parser.add_argument("--fracture-prevalence", type=float, help="share of fractured vertebrae of the --synth cases")
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
    parser.add_argument("--fov-cut", type=float, default=0.0,
                        help="probability of a field-of-view edge in a training patch (augmentation)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``train grading``."""
    add_regime_arguments(parser)
    parser.add_argument("--ensemble", type=int, default=1, metavar="K",
                        help="train K networks (seeds --seed ... --seed + K - 1) and ship their mean probability")
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
                        fracture_fraction=args.fracture_fraction, max_shift=args.max_shift,
                        fov_cut=getattr(args, "fov_cut", 0.0), seed=args.seed,
                        cosine=not args.constant_lr,
                        **switches)


def _spacing(text: str):
    """``'preset'`` -> None, ``'3'`` -> (3, 3, 3), ``'0.8,0.8,3'`` -> (0.8, 0.8, 3)."""
    if text == "preset":
        return None
    values = tuple(float(v) for v in text.split(","))
    if len(values) == 1:
        return values * 3
    if len(values) != 3:
        raise ValueError(f"--spacings: {text!r} is neither 'preset', one value nor x,y,z")
    return values


def synth_mix(args: argparse.Namespace):
    """The :class:`~.data.SynthMix` of the ``--synth`` options."""
    from .data import SynthMix

    return SynthMix(realism=tuple(getattr(args, "realism", None) or ("v1",)),
                    spacings=tuple(_spacing(t) for t in (getattr(args, "spacings", None) or ["preset"])),
                    size_scale=tuple(args.size_scale) if getattr(args, "size_scale", None) else None,
                    fracture_prevalence=getattr(args, "fracture_prevalence", None))


def synth_rows(args: argparse.Namespace):
    """Patch rows of the ``--synth`` cases (seeds from ``--seed-offset``, varied by :func:`synth_mix`), cached."""
    from .data import build_cache

    mix = synth_mix(args)
    seeds = list(range(args.seed_offset, args.seed_offset + args.synth))
    return build_cache(seeds, Path(args.cache) / f"synth_{args.seed_offset}{mix.tag()}", mix=mix)


def load_training_data(args: argparse.Namespace):
    """Patch rows of ``--cases`` and ``--synth``."""
    from .data import PatchSet, load_sets

    sets = []
    if args.cases:
        sets.append(load_sets(args.cases, args.cache))
    if args.synth:
        sets.append(synth_rows(args))
    data = PatchSet.concatenate(sets)
    if not len(data):
        raise ValueError("no training data: give --cases DIR and/or --synth N")
    return data


def train_main(args: argparse.Namespace) -> int:
    """Run ``train grading``; returns the exit code."""
    from ...grading.classifier import save_model
    from ...nn.device import limit_threads
    from .metrics import detection_scores
    from .regime import predict, run_ensemble

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
    model = run_ensemble(data, config, args.ensemble, log=lambda line: print(line, flush=True))
    seconds = time.perf_counter() - started
    meta = {"data": data.summary(), "train_seconds": round(seconds, 1), "sources": [str(c) for c in args.cases],
            "ensemble": args.ensemble, "synth": args.synth, "synth_mix": repr(synth_mix(args)) if args.synth else None}
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
               description=f"Husseini et al. 2020 fracture classifier ({config.name()}, width {config.width}"
                           + (f", mean of {args.ensemble} networks" if args.ensemble > 1 else "") + ")")
    print(json.dumps({"weights": str(out), "regime": config.name(), "seconds": round(seconds, 1)}))
    return 0


def main(argv=None) -> int:
    """``python -m VertebralFractureLib.training.grading.train``."""
    parser = add_train_arguments(argparse.ArgumentParser(prog="vertebral-fracture train grading", description=HELP))
    return train_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
