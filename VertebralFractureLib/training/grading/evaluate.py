r"""``vertebral-fracture evaluate grading``: Husseini et al. 2020, Tables 1-2 by k-fold, held-out scores, Fig. 3 plot.

Runs the k-fold ablation, or scores trained weights on held-out cases and draws the embedding plot.

Examples::

    # Tables 1 and 2 (k-fold on generated cases; folds can be split over several runs, the results
    # of each fold are kept in --out and re-used, --tables-only prints what is there)
    vertebral-fracture evaluate grading --cases runs/data/synth_train --cache runs/data/cache_grading \\
        --k 3 --width 0.125 --batch 16 --lr 1e-3 --steps-label 150 --steps-representation 150 \\
        --steps-fracture 400 --out runs/grading_ablation

    # the shipped model on held-out cases, with the t-SNE of its embeddings
    vertebral-fracture evaluate grading --weights grading_full.pt --test-cases runs/data/synth_test \\
        --cache runs/data/cache_grading --tsne docs/grading_tsne.png

    # the shipped model on held-out generated seeds (plain; hospital profile; hospital at 3 mm isotropic)
    vertebral-fracture evaluate grading --weights grading_full.pt --synth 48 --seed-offset 900000 --cache DIR
    vertebral-fracture evaluate grading --weights grading_full.pt --synth 24 --seed-offset 905000 --realism hospital \\
        --cache DIR
    vertebral-fracture evaluate grading --weights grading_full.pt --synth 24 --seed-offset 906000 --realism hospital \\
        --spacings 3 --cache DIR
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .train import HELP, MODEL_NAME, add_regime_arguments, load_training_data, regime_from_args

EVALUATE_HELP = "fracture classifier (Husseini et al. 2020): Tables 1-2 by k-fold, or trained weights on held-out cases"
__all__ = ["EVALUATE_HELP", "MODEL_NAME", "add_evaluate_arguments", "evaluate_main"]


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``evaluate grading``."""
    add_regime_arguments(parser)
    parser.add_argument("--k", type=int, default=5, help="number of folds")
    parser.add_argument("--folds", type=int, nargs="*", help="run only these folds (default: all)")
    parser.add_argument("--out", default="runs/grading_ablation", help="folder of per-fold results (JSON)")
    parser.add_argument("--tables-only", action="store_true", help="print the tables from the fold results in --out")
    parser.add_argument("--table1-only", action="store_true",
                        help="train only the representation-only networks and probe them (Table 1)")
    parser.add_argument("--weights", help="evaluate these trained weights on --test-cases instead of the k-fold")
    parser.add_argument("--test-cases", action="append", default=[], metavar="DIR")
    parser.add_argument("--tsne", help="write a t-SNE PNG: of the --weights embeddings of --test-cases, or (k-fold) "
                                       "of the Table 1 test-fold embeddings of the first fold "
                                       "(Husseini et al. 2020, Fig. 3)")
    return parser


def _held_out(args: argparse.Namespace) -> int:
    import numpy as np

    from ...grading.classifier import load_model
    from .data import PatchSet, load_sets
    from .metrics import detection_scores
    from .regime import predict

    if not args.test_cases and not args.synth:
        raise ValueError("--weights needs --test-cases DIR or --synth N (held-out seeds from --seed-offset)")
    sets = [load_sets(args.test_cases, args.cache)] if args.test_cases else []
    if args.synth:  # held-out generated cases, varied as for training (--realism, --spacings, --size-scale)
        from .train import synth_rows

        sets.append(synth_rows(args))
    data = PatchSet.concatenate(sets)
    model = load_model(args.weights, device="cpu")
    out = predict(model, data)
    keep = data.train_mask
    scores = detection_scores(data.fractured[keep], out["probability"][keep] >= 0.5)
    from ...voxelmap.aggregate import roc_auc

    auc = roc_auc(out["probability"][keep], data.fractured[keep])  # NaN without both classes
    print(f"{args.weights} on {data.summary()}")
    print(f"grades 0/2/3: SN {scores['SN']:.1f}  SP {scores['SP']:.1f}  F1 {scores['F1']:.1f}  AUC {auc:.3f}  "
          f"(tp {scores['tp']} fp {scores['fp']} fn {scores['fn']} tn {scores['tn']})")
    for grade in range(4):
        p = out["probability"][data.grades == grade]
        if len(p):
            print(f"  grade {grade}: n {len(p):4d}  mean probability {p.mean():.3f}  "
                  f"called fractured {np.mean(p >= 0.5):.1%}")
    if args.tsne:
        from .figures import plot_embeddings

        path = plot_embeddings({f"{Path(str(args.weights)).name}": (out["embedding"], data.grades)}, args.tsne)
        print(f"embedding plot: {path}")
    return 0


def evaluate_main(args: argparse.Namespace) -> int:
    """Run ``evaluate grading``; returns the exit code."""
    from ...nn.device import limit_threads
    from .ablation import format_tables, load_results, run_ablation

    limit_threads(args.threads)
    if args.weights:
        return _held_out(args)
    out = Path(args.out)
    if args.tables_only:
        results = load_results(out)
        if not results:
            raise FileNotFoundError(f"{out}: no fold results (fold_*.json)")
    else:
        data = load_training_data(args)
        config = regime_from_args(args)
        print(f"k-fold ({args.k}) on {data.summary()}; stages: label {config.steps_label}, representation "
              f"{config.steps_representation}, fracture {config.steps_fracture} steps of {config.batch}; "
              f"width {config.width}; lr {config.lr}", flush=True)
        run_ablation(data, config, k=args.k, folds=args.folds, out_dir=out, table1_only=args.table1_only,
                     log=lambda line: print(line, flush=True))
        results = load_results(out)
    print(format_tables(results))
    if args.tsne:
        import numpy as np

        from .figures import plot_embeddings

        stored = next((r["embeddings"] for r in results if r.get("embeddings")), None)
        if stored is None:
            raise ValueError(f"{out}: no stored embeddings for --tsne (run with --table1-only first)")
        grades = np.asarray(stored["grades"])
        names = [name for name in ("contrastive", "triplet", "grading") if name in stored]
        panels = {name.capitalize(): (np.asarray(stored[name]), grades) for name in names}
        print(f"embedding plot: {plot_embeddings(panels, args.tsne)}")
    return 0


def main(argv=None) -> int:
    """``python -m VertebralFractureLib.training.grading.evaluate``."""
    parser = add_evaluate_arguments(argparse.ArgumentParser(prog="vertebral-fracture evaluate grading",
                                                            description=HELP))
    return evaluate_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
