"""``vertebral-fracture evaluate centreline``: localisation error of the centre-line (Pisov et al. 2020, Table 1).

For every ground-truth vertebra of every held-out case:

* curve error: distance (mm) from the vertebral-body centre to the predicted 3D curve (Pisov et al. 2020, §5.2
  reports 0.97 mm mean for all vertebrae, 1.14 mm for moderate / severe fractures);
* in-slice error: distance (mm) in the axial plane through the centre between the centre and the
  curve's point on that plane.

Rows: all vertebrae, fractured (Genant grade >= 1), moderate / severe (grade >= 2), and per case
preset. Presence accuracy is counted over all 3 mm slices.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

from .data import CachedCase

MODEL_NAME = "centreline"
EVALUATE_HELP = "centre-line localisation error (mm) and presence accuracy on held-out cases"


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``evaluate centreline``."""
    parser.add_argument("--data", action="append", default=[], help="folder of cached .npz cases or synthetic case "
                        "folders (repeatable)")
    parser.add_argument("--synth", type=int, default=0, metavar="N", help="generate N held-out synthetic cases")
    parser.add_argument("--synth-start", type=int, default=100000, help="first seed of --synth (held out: 100000)")
    parser.add_argument("--cache", default="runs/centreline/cache_test", help="cache folder for --synth")
    parser.add_argument("--weights", default=None, help="weights file (default: the shipped centreline.pt)")
    parser.add_argument("--json", default=None, help="also write the per-vertebra results to this JSON file")
    parser.add_argument("--smoothing", type=float, default=30.0, help="curve smoothing length in mm")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default=None)


def _distance_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """Distance of each point to a polyline (exact point-to-segment distances)."""
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    length2 = np.maximum((ab**2).sum(axis=1), 1e-12)
    out = np.empty(len(points))
    for n, p in enumerate(points):
        t = np.clip(((p - a) * ab).sum(axis=1) / length2, 0.0, 1.0)
        out[n] = np.sqrt((((a + t[:, None] * ab) - p) ** 2).sum(axis=1)).min()
    return out


def evaluate_case(model, case: CachedCase, smoothing_mm: float = 30.0) -> Dict[str, object]:
    """Errors of one case (per vertebra) and its presence accuracy."""
    from ...spine.centreline import CentrelineError, curve_from_slices, effective_presence, predict_slices

    raw = predict_slices(model, case.hu, case.geometry)
    _, present = case.targets()
    predicted = effective_presence(raw["presence"], raw["spread_mm"]) >= 0.5
    try:
        points, _ = curve_from_slices(raw["points"], raw["presence"], raw["spread_mm"], 1.0, smoothing_mm)
    except CentrelineError:
        points = None
    centres = case.centroids
    if points is None or len(points) < 2:
        curve_error = np.full(len(centres), np.nan)
        slice_error = np.full(len(centres), np.nan)
        outside = np.ones(len(centres), bool)
    else:
        curve_error = _distance_to_polyline(centres, points)
        order = np.argsort(points[:, 2])
        zs, pts = points[order, 2], points[order]
        xy = np.stack([np.interp(centres[:, 2], zs, pts[:, d]) for d in range(2)], axis=1)
        slice_error = np.hypot(*(xy - centres[:, :2]).T)
        outside = (centres[:, 2] < zs[0] - 1.5) | (centres[:, 2] > zs[-1] + 1.5)
    return {
        "name": case.name,
        "preset": case.name.split("-")[1] if case.name.startswith("synth-") else "other",
        "labels": list(case.labels),
        "grades": np.asarray(case.grades).tolist(),
        "curve_error_mm": curve_error.tolist(),
        "slice_error_mm": slice_error.tolist(),
        "outside_curve": outside.tolist(),
        "presence_correct": int((predicted == (present > 0)).sum()),
        "slices": int(len(present)),
    }


def _stats(values: Sequence[float]) -> str:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return f"{'-':>22}"
    return f"{values.mean():6.2f} ({values.std():4.2f}) {np.median(values):5.2f} {np.percentile(values, 95):5.2f}"


def summary_table(results: List[Dict[str, object]]) -> str:
    """The printed table (mean (std), median and 95th percentile in mm)."""
    rows = []
    curve = np.concatenate([np.asarray(r["curve_error_mm"], float) for r in results]) if results else np.zeros(0)
    inslice = np.concatenate([np.asarray(r["slice_error_mm"], float) for r in results]) if results else np.zeros(0)
    grades = np.concatenate([np.asarray(r["grades"], int) for r in results]) if results else np.zeros(0, int)
    outside = np.concatenate([np.asarray(r["outside_curve"], bool) for r in results]) if results else np.zeros(0, bool)
    presets = np.concatenate([[r["preset"]] * len(r["grades"]) for r in results]) if results else np.zeros(0)
    groups = [("all vertebrae", np.ones(len(grades), bool)), ("fractured (grade >= 1)", grades >= 1),
              ("moderate/severe (grade >= 2)", grades >= 2)]  # fmt: skip
    groups += [(f"preset {p}", presets == p) for p in sorted(set(presets.tolist()))]
    header = (
        f"{'group':<30} {'n':>5}  {'curve error mm: mean (std) med p95':>36}  {'in-slice error mm':>24}  "
        f"{'missed':>6}"
    )
    rows.append(header)
    rows.append("-" * len(header))
    for name, mask in groups:
        rows.append(
            f"{name:<30} {int(mask.sum()):>5}  {_stats(curve[mask]):>36}  {_stats(inslice[mask]):>24}  "
            f"{int(outside[mask].sum()):>6}"
        )
    correct = sum(int(r["presence_correct"]) for r in results)
    slices = sum(int(r["slices"]) for r in results)
    rows.append(
        f"presence accuracy: {correct / max(slices, 1):.4f} ({correct}/{slices} slices of {len(results)} cases)"
    )
    rows.append("missed = vertebra centre beyond the ends of the predicted curve")
    return "\n".join(rows)


def evaluate_main(args: argparse.Namespace) -> int:
    """Entry point of ``vertebral-fracture evaluate centreline``."""
    from ...io.atomic import atomic_write
    from ...nn.device import limit_threads
    from ...spine.centreline import load_model
    from .train import collect_cases

    limit_threads(args.threads)
    folders = list(args.data)
    if args.synth:
        from .data import build_synthetic_cache

        build_synthetic_cache(range(args.synth_start, args.synth_start + args.synth), args.cache)
        folders.append(args.cache)
    if not folders:
        raise ValueError("nothing to evaluate: give --data DIR or --synth N")
    cases = collect_cases(folders, log=None)
    model = load_model(args.weights, device=args.device)
    results = [evaluate_case(model, case, args.smoothing) for case in cases]
    print(summary_table(results))
    if args.json:
        atomic_write(Path(args.json), json.dumps(results, indent=1) + "\n", overwrite=True)
    return 0
