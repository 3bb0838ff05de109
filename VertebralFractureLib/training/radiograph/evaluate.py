"""``vertebral-fracture evaluate radiograph-centroids``: Table 1 of Gartland et al. 2025 on generated radiographs.

For each model (Base, L1, L2, L3) the held-out views (:func:`.views.evaluation_views`: one view
pair per held-out column, Gartland et al. 2025's labelling) are scored as in Gartland et al. 2025, §2
(:mod:`.metrics`): vertebra
identification accuracy and RMSE of the correctly identified centroids, in 264 x 264 input
pixels, plus mm and relative figures. Two scorings: ``labelled`` (Gartland et al. 2025's protocol: the labelled
vertebrae of each view) and ``visible`` (every T4 ... L4 vertebra entirely in view, labelled or
not: how well the model names the vertebrae its labels left out). ``--shared DIR`` adds the
generator's single-view ``radiograph.png`` / ``radiograph.json`` cases.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from ...radiograph.model import LOSSES, MODEL_NAMES

NAME = MODEL_NAME = "radiograph-centroids"
HELP = EVALUATE_HELP = ("Gartland et al. 2025, Table 1: vertebra identification accuracy and centroid RMSE "
                        "on held-out radiographs")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``evaluate radiograph-centroids``."""
    parser.add_argument("--columns", default="runs/radiograph/test_columns", help="held-out columns (.npz)")
    parser.add_argument("--count", type=int, default=0,
                        help="generate missing held-out columns (seeds from --first-seed)")
    parser.add_argument("--first-seed", type=int, default=800000)
    parser.add_argument("--weights-dir", default=None,
                        help="folder with radiograph_centroids_<loss>.pt (default: the shipped weights folder)")
    parser.add_argument("--model", action="append", default=[], metavar="LOSS=PATH",
                        help="a model to score (repeatable); default: every radiograph_centroids_<loss>.pt found")
    parser.add_argument("--shared", help="folder of generated cases with radiograph.png + radiograph.json")
    parser.add_argument("--figure", help="write sample predictions of the most accurate model to this PNG")
    parser.add_argument("--json", help="write the table as JSON")
    parser.add_argument("--real", help="also score the real sagittal CT slices of this level reference "
                        "(e.g. Testing/Data/real/reference/covid_sagittal.json: the slices whose levels are certain)")
    parser.add_argument("--appearance", default="none", choices=("none", "clinical"),
                        help="'clinical': score the held-out views given a clinical radiograph's look, one fixed "
                        "random look per view (training/radiograph/appearance.py)")
    parser.add_argument("--threads", type=int, default=1)
    return parser


def model_paths(args: argparse.Namespace) -> Dict[str, Path]:
    """Loss -> weights file of the models to score."""
    if args.model:
        return {item.split("=", 1)[0]: Path(item.split("=", 1)[1]) for item in args.model}
    from ...nn.weights import WEIGHTS_DIR

    folder = Path(args.weights_dir) if args.weights_dir else WEIGHTS_DIR
    found = {kind: folder / f"radiograph_centroids_{kind}.pt" for kind in LOSSES}
    return {kind: path for kind, path in found.items() if path.exists()}


def score_views(model, views: Sequence, truths: Optional[Sequence] = None) -> Dict[str, Dict[str, float]]:
    """Gartland et al. 2025, §2 scores of one model on views (:class:`.views.View`)."""
    from ...radiograph.locate import predict_centroids
    from ...radiograph.transform import frame_for
    from .metrics import Tally

    labelled, visible = Tally(), Tally()
    config = model.config
    for view in views:
        found = predict_centroids(view.image, model, view.pixel_mm)
        predicted = {level: np.array(v[:2]) for level, v in found.items()}
        frame = frame_for(view.image.shape, config["mode"], config["size"], view.pixel_mm, config["native_mm"])
        scale = np.asarray(frame.scale)
        reference = {k: np.asarray(v) for k, v in view.visible(model.levels).items()}
        labelled.add({k: np.asarray(v) for k, v in view.labels(model.levels).items()}, predicted, scale,
                     view.pixel_mm, reference)
        visible.add(reference, predicted, scale, view.pixel_mm, reference)
    return {"labelled": labelled.summary(), "visible": visible.summary()}


def shared_views(folder) -> List:
    """Single, fully labelled views from generated case folders (``radiograph.png`` + ``radiograph.json``)."""
    from ...radiograph.reading import read_radiograph
    from ...schema import SpineResult
    from .columns import Column
    from .views import View

    views = []
    for case in sorted(Path(folder).glob("*/radiograph.json")):
        truth = SpineResult.from_json(case.read_text())
        image, _ = read_radiograph(case.parent / "radiograph.png")
        column = Column.from_truth(image / 255.0, truth)
        views.append(View(column.image, column.pixel_mm, column.levels, column.centroids, column.keypoints,
                          np.ones(len(column.levels), dtype=bool)))
    return views


def format_table(rows: Dict[str, Dict[str, Dict[str, float]]], title: str) -> str:
    """Gartland et al. 2025, Table 1 layout plus the extra columns."""
    lines = [title, f"{'Model':10s} {'ID acc':>8s} {'RMSE px':>8s} {'RMSE mm':>8s} {'RMSE/d %':>8s} {'n':>5s}"
             f" | {'visible acc':>11s} {'RMSE px':>8s} {'n':>5s}"]
    for kind, scores in rows.items():
        a, v = scores["labelled"], scores["visible"]
        lines.append(f"{MODEL_NAMES.get(kind, kind):10s} {a['accuracy_pct']:7.1f}% {a['rmse_px']:8.2f} "
                     f"{a['rmse_mm']:8.2f} {a['rmse_rel_pct']:8.2f} {a['n']:5d} | {v['accuracy_pct']:10.1f}% "
                     f"{v['rmse_px']:8.2f} {v['n']:5d}")
    return "\n".join(lines)


def real_views(reference_path) -> List:
    """The real slices of a level reference whose levels are certain, as views labelled with T4 ... L4.

    Each image is read and cleared of a collimator's shadow as :func:`...radiograph.analyze.analyze_radiograph`
    reads it (a 2D NIfTI in HU, a PNG...), the patient facing left as annotated; the labels are the annotated
    body centres of the centroid net's levels.
    """
    from ...radiograph.analyze import _load
    from ...radiograph.gate2d import collimation_mask, without_collimation
    reference = json.loads(Path(reference_path).read_text())
    root = Path(reference_path).resolve().parents[1]
    views = []
    for entry in reference["images"]:
        if not entry.get("levels_certain") or not entry["vertebrae"]:
            continue
        image, _, _ = _load(root / entry["image"])
        if collimation_mask(image).any():
            image = without_collimation(image)
        centroids = {v["label"]: np.asarray(v["centroid"], dtype=np.float64) for v in entry["vertebrae"] if v["label"]}
        views.append(_RealView(np.asarray(image, dtype=np.float32), float(entry["spacing_mm"][0]), centroids,
                               Path(entry["image"]).name))
    return views


class _RealView:
    """A real slice with annotated centroids, scored like a generated :class:`.views.View`."""

    def __init__(self, image: np.ndarray, pixel_mm: float, centroids: Dict[str, np.ndarray], name: str) -> None:
        self.image, self.pixel_mm, self.centroids, self.name = image, pixel_mm, centroids, name

    def labels(self, channels: Sequence[str]) -> Dict[str, np.ndarray]:
        """Annotated centroids of the levels in ``channels``."""
        return {k: v for k, v in self.centroids.items() if k in channels}

    visible = labels


def clinical_views(views: Sequence, first_seed: int = 900000) -> List:
    """The views with a clinical radiograph's look (:func:`.appearance.clinical_appearance`), seed per view."""
    import dataclasses

    from .appearance import clinical_appearance

    return [dataclasses.replace(view, image=clinical_appearance(view.image, view.pixel_mm, seed=first_seed + k))
            for k, view in enumerate(views)]


def evaluate_main(args: argparse.Namespace) -> int:
    """Print Gartland et al. 2025, Table 1 for the models found; optionally write JSON and a sample figure."""
    import torch

    from ...radiograph.model import CentroidModel
    from .columns import cached_columns, load_columns
    from .views import evaluation_views

    torch.set_num_threads(max(1, min(int(args.threads), 2)))
    paths = model_paths(args)
    if not paths:
        raise FileNotFoundError("no radiograph_centroids_<loss>.pt found; give --weights-dir or --model LOSS=PATH")
    if args.count:
        columns = list(cached_columns(range(args.first_seed, args.first_seed + args.count), args.columns, log=print))
    else:
        columns = load_columns(args.columns)
    if not columns:
        raise ValueError(f"{args.columns}: no held-out columns; generate them with --count N")
    views = evaluation_views(columns)
    if getattr(args, "appearance", "none") == "clinical":
        views = clinical_views(views)
    models = {kind: CentroidModel.load(path) for kind, path in paths.items()}
    report: Dict[str, object] = {"held_out": {"columns": len(columns), "views": len(views)}, "models": {}}
    rows = {kind: score_views(model, views) for kind, model in models.items()}
    report["models"] = {kind: {"weights": str(paths[kind]), "sha256": models[kind].sha256, **rows[kind]}
                        for kind in rows}
    size = next(iter(models.values())).config["size"]
    look = " with a clinical look" if getattr(args, "appearance", "none") == "clinical" else ""
    print(format_table(rows, f"Gartland et al. 2025, Table 1 on {len(views)} held-out generated radiographs{look} "
                             f"({len(columns)} spines, "
                             f"two overlapping views each); px = pixels of the {size} x {size} input"))
    if args.shared:
        extra = shared_views(args.shared)
        shared_rows = {kind: score_views(model, extra) for kind, model in models.items()}
        report["shared"] = {"folder": str(args.shared), "views": len(extra), "models": shared_rows}
        print()
        print(format_table(shared_rows, f"single fully labelled views: {len(extra)} generated cases in {args.shared}"))
    if getattr(args, "real", None):
        real = real_views(args.real)
        real_rows = {kind: score_views(model, real) for kind, model in models.items()}
        report["real"] = {"reference": str(args.real), "images": len(real), "models": real_rows}
        print()
        print(format_table(real_rows, f"real sagittal CT slices with certain levels: {len(real)} images of "
                                      f"{Path(args.real).name} (T4-L4 annotated bodies)"))
    if args.figure:
        from .figures import sample_figure

        kind = max(rows, key=lambda k: rows[k]["labelled"]["accuracy_pct"])
        title = f"{MODEL_NAMES.get(kind, kind)} on held-out views"
        path = sample_figure(models[kind], views[:8], args.figure, title=title)
        print(f"figure: {path}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.radiograph.evaluate``."""
    return evaluate_main(add_evaluate_arguments(argparse.ArgumentParser(description=HELP)).parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
