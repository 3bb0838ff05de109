"""``vertebral-fracture evaluate voxelmap``: vertebra and patient ROC of the voxel map (Nicolaes et al. 2019, §4).

On held-out cases (written case folders, ``--data``, e.g. ``runs/data/synth_test``; or freshly
generated ones, ``--synth N``) the map is computed on the band around the true centre-line, then:

- vertebra level: true centroids jittered by Gaussian noise (Nicolaes et al. 2019: sd 3 mm per axis), Gaussian-weighted
  cube mean (cube from the weights' validation, Nicolaes et al. 2019, §4), ROC AUC bootstrapped (n = 1000) over
  patients;
- patient level: the convex-hull ROC over (probability, noise) threshold pairs, bootstrapped.

``--compare W1 W2 ...`` evaluates several weights on the same cases (Nicolaes et al. 2019, Table 1: ``1slice``,
``5slices``, ``3d``, trained with ``train voxelmap --variant``) and overlays their ROC curves.
Figures: ``roc_vertebra.png`` and ``roc_patient.png`` in ``--out``; numbers: ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .data import DEFAULT_CACHE, Sample, cached, case_folders, folder_sample, make_sample

MODEL_NAME = "voxelmap"
EVALUATE_HELP = HELP = "vertebra- and patient-level ROC of the Nicolaes et al. 2019 voxel fracture map"
DEFAULT_TEST = Path("runs/data/synth_test")
TEST_PRESETS = ("spine", "abdomen", "chest", "scoliosis")


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``evaluate voxelmap``."""
    parser.add_argument("--data", help=f"folder of written cases (default {DEFAULT_TEST} when it exists)")
    parser.add_argument("--synth", type=int, default=0, help="generate this many held-out cases instead")
    parser.add_argument("--seed-offset", type=int, default=200_000, help="first generated test seed")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many cases")
    parser.add_argument("--weights", default=None, help="weights file (default: the shipped voxelmap.pt)")
    parser.add_argument("--compare", nargs="+", default=[], metavar="WEIGHTS",
                        help="several weights to compare on the same cases (Nicolaes et al. 2019, Table 1 variants)")
    parser.add_argument("--cube", type=int, default=0, help="vertebra cube in voxels (default: from the weights)")
    parser.add_argument("--edge-margin-mm", type=float, default=None,
                        help="patient level: ignore components this close (mm) to the first/last slice "
                        "(default: from the weights, else the validated DEFAULT_EDGE_MARGIN_MM; 0: off)")
    parser.add_argument("--jitter-mm", type=float, default=3.0, help="centroid noise sd per axis (the paper: 3 mm)")
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE), help="cache of band-grid test samples")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/voxelmap_eval", help="folder for metrics.json and ROC PNGs")
    parser.add_argument("--overlays", type=int, default=2, help="cases drawn as map overlays (the paper's Fig. 6)")
    return parser


def test_samples(args: argparse.Namespace, spacing: float, band_mm: float, log=print) -> List[Sample]:
    """The held-out cases as band-grid samples (cached)."""
    folder = Path(args.cache) / f"s{spacing:g}_b{band_mm:g}"
    samples: List[Sample] = []
    if args.synth:
        from ...synth import generate_case

        for n in range(args.synth):
            seed = args.seed_offset + n
            preset = TEST_PRESETS[n % len(TEST_PRESETS)]

            def make(seed=seed, preset=preset):
                case = generate_case(seed, preset, radiograph=False)
                return make_sample(f"test_{preset}_{seed}", case.ct, case.truth, case.centreline, spacing, band_mm)

            samples.append(cached(folder / "test" / f"test_{seed}.npz", make))
    else:
        root = Path(args.data) if args.data else DEFAULT_TEST
        if not root.exists():
            raise FileNotFoundError(f"{root}: no test cases (pass --data DIR or --synth N)")
        tag = root.name
        for case in case_folders(root):
            samples.append(cached(folder / tag / f"{case.name}.npz",
                                  lambda c=case: folder_sample(c, spacing, band_mm)))
            if args.limit and len(samples) >= args.limit:
                break
    if args.limit:
        samples = samples[: args.limit]
    log(f"{len(samples)} test cases, {sum(len(s.levels) for s in samples)} vertebrae, "
        f"{sum(int(s.fractured.sum()) for s in samples)} fractured, "
        f"{sum(int(not s.fractured.any()) for s in samples)} patients without fracture")
    return samples


def evaluate_model(model, meta: Dict, samples: Sequence[Sample], args: argparse.Namespace, log=print) -> Dict:
    """All figures of one model on the samples."""
    from ...voxelmap.aggregate import DEFAULT_EDGE_MARGIN_MM, roc_auc, roc_points
    from .metrics import (
        bootstrap_patient_auc,
        bootstrap_vertebra_auc,
        choose_cube,
        patient_level,
        summary,
        vertebra_level,
    )
    from .train import sample_maps

    started = time.perf_counter()
    maps = sample_maps(model, samples)
    seconds = time.perf_counter() - started
    cube = int(args.cube or meta.get("cube", 5))
    table = vertebra_level(maps, cube, args.jitter_mm, seed=0)
    exact = vertebra_level(maps, cube, 0.0)
    _, cube_aucs = choose_cube(maps, jitter_mm=args.jitter_mm)
    vertebra_boot = bootstrap_vertebra_auc(table, args.bootstrap)
    margin = getattr(args, "edge_margin_mm", None)
    margin = float(meta.get("edge_margin_mm", DEFAULT_EDGE_MARGIN_MM) if margin is None else margin)
    patient = patient_level(maps, margin)
    patient_boot = bootstrap_patient_auc(maps, args.bootstrap, edge_margin_mm=margin)
    by_grade = {}
    normals = table["scores"][~table["truth"]]
    for grade in (1, 2, 3):
        chosen = table["scores"][table["grades"] == grade]
        if len(chosen) and len(normals):
            truth = np.r_[np.ones(len(chosen), bool), np.zeros(len(normals), bool)]
            by_grade[str(grade)] = roc_auc(np.r_[chosen, normals], truth)
    result = {
        "variant": meta.get("variant", "3d"),
        "cube_voxels": cube,
        "spacing_mm": meta.get("spacing"),
        "vertebra_auc_jittered": summary(vertebra_boot, roc_auc(table["scores"], table["truth"])),
        "vertebra_auc_exact_centroids": roc_auc(exact["scores"], exact["truth"]),
        "vertebra_auc_by_grade_vs_normal": by_grade,
        "vertebra_auc_by_cube": {str(k): v for k, v in cube_aucs.items()},
        "patient_auc_hull": summary(patient_boot, patient["auc"]),
        "patient_edge_margin_mm": margin,
        "n_cases": len(maps), "n_vertebrae": int(len(table["truth"])), "n_fractured": int(table["truth"].sum()),
        "n_negative_patients": int((~patient["truth"]).sum()),
        "map_seconds_per_case": seconds / max(1, len(maps)),
    }
    curves = {"vertebra": roc_points(table["scores"], table["truth"]), "patient_hull": patient["hull"],
              "patient_points": patient["points"], "vertebra_boot": _boot_curves(table, args.bootstrap)}
    vj, pa = result["vertebra_auc_jittered"], result["patient_auc_hull"]
    log(f"[{result['variant']}] vertebra AUC (centroids jittered {args.jitter_mm:g} mm) {vj['point']:.3f} "
        f"(bootstrap {vj['mean']:.3f} ± {vj['sd']:.3f}, 95% CI {vj['ci95'][0]:.3f}-{vj['ci95'][1]:.3f}); "
        f"exact centroids {result['vertebra_auc_exact_centroids']:.3f}; patient hull AUC {pa['point']:.3f} "
        f"(edge margin {margin:g} mm) "
        f"(bootstrap {pa['mean']:.3f} ± {pa['sd']:.3f}, 95% CI {pa['ci95'][0]:.3f}-{pa['ci95'][1]:.3f})")
    return {"metrics": result, "curves": curves, "maps": maps, "cube": cube}


def _boot_curves(table: Dict, n: int, seed: int = 1) -> np.ndarray:
    """Bootstrapped vertebra ROC curves (TPR at a fixed FPR grid), resampling patients."""
    from ...voxelmap.aggregate import roc_points

    grid = np.linspace(0, 1, 101)
    rng = np.random.default_rng(seed)
    groups = table["groups"]
    members = [np.nonzero(groups == g)[0] for g in np.unique(groups)]
    curves = []
    for _ in range(min(n, 1000)):
        idx = np.concatenate([members[p] for p in rng.integers(0, len(members), len(members))])
        t = table["truth"][idx]
        if t.all() or not t.any():
            continue
        pts = roc_points(table["scores"][idx], t)
        curves.append(np.interp(grid, pts[:, 0], pts[:, 1]))
    return np.asarray(curves)


def plot(results: Dict[str, Dict], out: Path) -> List[Path]:
    """ROC figures of Nicolaes et al. 2019, Fig. 4 (patient) and Fig. 5 (vertebra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    grid = np.linspace(0, 1, 101)
    fig, ax = plt.subplots(figsize=(5.2, 5))
    for label, r in results.items():
        m, c = r["metrics"], r["curves"]
        boot = c["vertebra_boot"]
        if len(boot):
            mean, sd = boot.mean(0), boot.std(0)
            line, = ax.plot(grid, mean, label=f"{label}: AUC {m['vertebra_auc_jittered']['mean']:.3f} "
                            f"± {m['vertebra_auc_jittered']['sd']:.3f}")
            ax.fill_between(grid, np.clip(mean - sd, 0, 1), np.clip(mean + sd, 0, 1), alpha=0.2, color=line.get_color())
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1.01),
           title="Vertebra level (centroids jittered 3 mm), bootstrap mean ± sd")
    ax.title.set_fontsize(9)
    ax.legend(loc="lower right", fontsize=8)
    paths.append(out / "roc_vertebra.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5.2, 5))
    for label, r in results.items():
        m, c = r["metrics"], r["curves"]
        line, = ax.plot(c["patient_hull"][:, 0], c["patient_hull"][:, 1], "-",
                        label=f"{label}: hull AUC {m['patient_auc_hull']['point']:.3f} "
                        f"(bootstrap {m['patient_auc_hull']['mean']:.3f} ± {m['patient_auc_hull']['sd']:.3f})")
        ax.plot(c["patient_points"][:, 0], c["patient_points"][:, 1], ".", ms=2, alpha=0.3, color=line.get_color())
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(-0.01, 1), ylim=(0, 1.01),
           title="Patient level: convex hull over (probability, noise) thresholds")
    ax.title.set_fontsize(9)
    ax.legend(loc="lower right", fontsize=8)
    paths.append(out / "roc_patient.png")
    fig.savefig(paths[-1], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def plot_overlays(maps, samples: Sequence[Sample], cube: int, out: Path, count: int = 2) -> List[Path]:
    """Fig. 6 of Nicolaes et al. 2019: a sagittal slice with p(fracture) overlaid (values < 0.05 hidden)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...voxelmap.aggregate import vertebra_scores
    from ...voxelmap.network_constants import MARGIN

    chosen = [n for n, m in enumerate(maps) if m.positive][:max(0, count - 1)]
    chosen += [n for n, m in enumerate(maps) if not m.positive][: count - len(chosen)]
    if not chosen:
        return []
    fig, axes = plt.subplots(1, len(chosen), figsize=(4.2 * len(chosen), 7), squeeze=False)
    for ax, n in zip(axes[0], chosen):
        m, s = maps[n], samples[n]
        g = m.geometry
        index = g.lps_to_index(m.centroids)  # (i, j, k)
        i = int(np.clip(np.round(np.median(index[:, 0])), 0, m.prob.shape[2] - 1))
        ct = s.context[MARGIN:-MARGIN, MARGIN:-MARGIN, MARGIN:-MARGIN][:, :, i].astype(float)
        prob = np.ma.masked_less(m.prob[:, :, i], 0.05)
        extent = (0, g.size[1] * g.spacing[1], 0, g.size[2] * g.spacing[2])
        ax.imshow(ct, cmap="gray", vmin=-1.5, vmax=3.0, origin="lower", extent=extent)
        image = ax.imshow(prob, cmap="jet", vmin=0, vmax=1, alpha=0.55, origin="lower", extent=extent)
        scores = vertebra_scores((m.prob, g), list(m.centroids), cube=cube)
        for v, (level, grade) in enumerate(zip(m.levels, m.grades)):
            y = (index[v, 2] + 0.5) * g.spacing[2]
            ax.text(extent[1] * 1.02, y, f"{level} g{grade} {scores[v]:.2f}", fontsize=7, va="center",
                    color="red" if grade >= 1 else "black", clip_on=False)
        ax.set_title(f"{m.name}: sagittal slice, p(fracture)", fontsize=8)
        ax.set_xlabel("anterior -> posterior (mm)", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.5)
    path = out / "overlay.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return [path]


def evaluate_main(args: argparse.Namespace) -> int:
    """Run ``evaluate voxelmap``; prints the AUCs and writes ``metrics.json`` and the ROC PNGs."""
    import torch

    from ...voxelmap.inference import load_model

    torch.set_num_threads(max(1, args.threads))
    weights = list(args.compare) or [args.weights]
    models = [load_model(w, "cpu") for w in weights]
    spacing = float(models[0][1].get("spacing", 2.0))
    band_mm = float(models[0][1].get("band_mm", 25.0))
    samples = test_samples(args, spacing, band_mm)
    if not samples:
        print("evaluate voxelmap: no test cases", file=sys.stderr)
        return 2
    results = {}
    for w, (model, meta) in zip(weights, models):
        if float(meta.get("spacing", spacing)) != spacing or float(meta.get("band_mm", band_mm)) != band_mm:
            print(f"evaluate voxelmap: {w} uses another grid; compare models of the same spacing", file=sys.stderr)
            return 2
        label = meta.get("variant", "3d")
        label = label if label not in results else f"{label} ({w})"
        results[label] = evaluate_model(model, meta, samples, args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({k: r["metrics"] for k, r in results.items()}, indent=2) + "\n")
    paths = plot(results, out)
    first = next(iter(results.values()))
    if args.overlays:
        paths += plot_overlays(first["maps"], samples, first["cube"], out, args.overlays)
    for path in paths:
        print(f"wrote {path}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.voxelmap.evaluate``."""
    parser = argparse.ArgumentParser(prog="vertebral-fracture evaluate voxelmap", description=HELP)
    add_evaluate_arguments(parser)
    return evaluate_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
