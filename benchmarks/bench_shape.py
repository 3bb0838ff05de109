"""Shape benchmarks (issue 9): mask-derived measures and the abnormality score of Botros et al. 2022.

    python benchmarks/bench_shape.py measure --cases 8            # mask heights vs synthetic truth
    python benchmarks/bench_shape.py scores --test runs/data/cache_shape/test.npz
    python benchmarks/bench_shape.py cases --cases 6              # abnormality from generated masks
    python benchmarks/bench_shape.py real                         # sub-verse004 + TPTBox, figure

Weights: ``--weights`` (default: the shipped ``abnormality_shape.pt``). Results are printed as
JSON lines; ``real`` writes docs/shape_verse004_keypoints.png, ``scores`` docs/shape_scores_by_grade.png.
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = ROOT / "Testing" / "Data" / "real"


from VertebralFractureLib.training.abnormality.evaluate import auc, summary  # noqa: E402


def load_model(weights):
    from VertebralFractureLib.shape.score import AbnormalityModel

    return AbnormalityModel.load(weights or "abnormality_shape.pt", device="cpu")


def cmd_scores(args) -> None:
    """Held-out synthetic crops (test.npz: columns with fractures, seeds 6000+)."""
    from VertebralFractureLib.training.abnormality.evaluate import evaluate_crops

    report = evaluate_crops(load_model(args.weights), args.test)
    scores, grades = report.pop("scores"), report.pop("grades")
    print(json.dumps(report))
    if args.figure:
        plot_by_grade(scores, grades, ROOT / "docs" / "shape_scores_by_grade.png",
                      f"abnormality, held-out synthetic vertebrae (n={len(scores)}), AUC grade>=2 "
                      f"{report['auc_grade_ge2']:.3f}")


def plot_by_grade(scores, grades, path, title) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from VertebralFractureLib.colors import grade_color

    figure, axis = plt.subplots(figsize=(6, 4))
    rng = np.random.default_rng(0)
    for grade in range(4):
        values = scores[grades == grade]
        if len(values) == 0:
            continue
        axis.scatter(grade + rng.uniform(-0.18, 0.18, len(values)), values, s=8, color=grade_color(grade), alpha=0.7)
        axis.errorbar(grade + 0.3, values.mean(), yerr=values.std(), fmt="o", color="black", capsize=3)
    axis.set_xticks(range(4))
    axis.set_xlabel("Genant grade (commanded)")
    axis.set_ylabel("abnormality score (0-100)")
    axis.set_title(title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _cases(count: int, start: int):
    """Generated cases: the lead's shared test set when ready, else generated here."""
    shared = Path("runs/data/synth_test")
    if (shared / "READY").exists():
        import SimpleITK as sitk

        from VertebralFractureLib.synth import read_truth

        folders = sorted(p for p in shared.iterdir() if p.is_dir())[:count]
        for folder in folders:
            truth, _ = read_truth(folder)
            yield folder.name, sitk.ReadImage(str(folder / "vert_msk.nii.gz")), \
                sitk.ReadImage(str(folder / "body_msk.nii.gz")), truth
        return
    from VertebralFractureLib.synth import generate_case

    presets = ("spine", "chest", "abdomen", "scoliosis")
    for seed in range(start, start + count):
        case = generate_case(seed, presets[seed % 4], fracture_prevalence=0.4, radiograph=False)
        yield f"seed{seed}", case.vert_mask, case.body_mask, case.truth


def cmd_measure(args) -> None:
    """Mask-derived heights / G / grade vs the generator's keypoints."""
    from VertebralFractureLib.shape.measure import measure_from_mask

    rows = {"vert": [], "body": [], "vert thin (<= 2 mm)": [], "vert thick (3 mm slices)": []}
    for name, vert, body, truth in _cases(args.cases, args.start):
        thick = max(vert.GetSpacing()) > 2.0
        for kind, mask in (("vert", vert), ("body", body)):
            started = time.process_time()
            result = measure_from_mask(mask)
            cpu = time.process_time() - started
            for v in truth.vertebrae:
                if v.label not in result.labels or v.measure is None:
                    rows[kind].append((np.nan, np.nan, v.measure.grade if v.measure else -1, -1))
                    continue
                m = result.vertebra(v.label).measure
                if m is None:  # not assessed (cut by the mask's edge, a fragment): counted as not measured
                    rows[kind].append((np.nan, np.nan, v.measure.grade, -1))
                    continue
                row = (float(np.mean(np.abs(np.subtract(m.heights, v.measure.heights)))),
                       abs(m.G - v.measure.G), v.measure.grade, m.grade)
                rows[kind].append(row)
                if kind == "vert":
                    rows["vert thick (3 mm slices)" if thick else "vert thin (<= 2 mm)"].append(row)
        print(json.dumps({"case": name, "cpu_s_last_mask": round(cpu, 1)}), flush=True)
    for kind, values in rows.items():
        if not values:
            continue
        a = np.array(values, float)
        found = ~np.isnan(a[:, 0])
        print(json.dumps({"mask": kind, "vertebrae": int(len(a)), "measured": int(found.sum()),
                          "mae_height_mm": round(float(a[found, 0].mean()), 3),
                          "mae_G": round(float(a[found, 1].mean()), 4),
                          "grade_agreement": round(float((a[found, 2] == a[found, 3]).mean()), 3),
                          "fractured_ge2_detected": round(float(((a[found, 3] >= 2) & (a[found, 2] >= 2)).sum()
                                                                / max(1, (a[found, 2] >= 2).sum())), 3)}))


def cmd_cases(args) -> None:
    """Abnormality from whole generated masks (full mask path) by the truth grade."""
    from VertebralFractureLib.shape.score import abnormality_scores

    model = load_model(args.weights)
    scores, grades = [], []
    for name, vert, _, truth in _cases(args.cases, args.start):
        values = abnormality_scores(vert, None, model)
        for v in truth.vertebrae:
            if v.label in values:
                scores.append(values[v.label])
                grades.append(int(v.extra.get("commanded_grade", v.measure.grade if v.measure else 0)))
        print(json.dumps({"case": name, "scores": values}), flush=True)
    print(json.dumps({"set": "generated masks", "n": len(scores), **summary(scores, grades)}))


def cmd_real(args) -> None:
    """sub-verse004 (radiologists' grades) and TPTBox L3: measures, abnormality, figure."""
    from VertebralFractureLib.export.mask_figure import render_keypoints_figure
    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.shape.measure import measure_from_mask
    from VertebralFractureLib.shape.score import abnormality_scores

    grades = {}
    with open(REAL / "verse" / "verse19_genant_grades.csv") as handle:
        for row in csv.DictReader(handle):
            if row["subject"] == "sub-verse004":
                grades[row["vertebra"]] = int(row["genant_grade"])
    mask = read_image(REAL / "verse" / "sub-verse004_seg-vert_msk.nii.gz")
    result = measure_from_mask(mask)
    model = None
    try:
        model = load_model(args.weights)
        abnormality_scores(mask, result, model)
    except Exception as error:  # weights not trained yet
        print(json.dumps({"abnormality": f"skipped: {error}"}))
    rows = []
    for v in result.vertebrae:
        m = v.measure
        rows.append({"level": v.label, "heights_mm": [round(h, 1) for h in m.heights], "G": round(m.G, 3),
                     "grade": m.grade, "type": m.type, "neighbour_reduction": None if m.neighbour_reduction is None
                     else round(m.neighbour_reduction, 3), "radiologist_grade": grades.get(v.label),
                     "abnormality": v.abnormality})
        print(json.dumps(rows[-1]))
    graded = [r for r in rows if r["radiologist_grade"] is not None]
    if model is not None:
        scores = [r["abnormality"] for r in graded]
        reference = [r["radiologist_grade"] for r in graded]
        print(json.dumps({"set": "sub-verse004 (radiologists)", **summary(scores, reference)}))
    g_scores = [1 - r["G"] for r in graded]
    print(json.dumps({"sub-verse004 reduction 1-G AUC grade>=2": round(auc(
        [s for s, r in zip(g_scores, graded) if r["radiologist_grade"] >= 2],
        [s for s, r in zip(g_scores, graded) if r["radiologist_grade"] < 2]), 3)}))
    render_keypoints_figure(mask, result, ROOT / "docs" / "shape_verse004_keypoints.png",
                            title="sub-verse004 (VerSe 2019, real mask): keypoints from the mask", grades=grades)
    tpt = measure_from_mask(REAL / "tptbox" / "sub-ct_seg-vert_label-22_msk.nii.gz",
                            REAL / "tptbox" / "sub-ct_seg-subreg_label-22_msk.nii.gz")
    for v in tpt.vertebrae:
        print(json.dumps({"tptbox": v.label, "heights_mm": [round(h, 1) for h in v.measure.heights],
                          "G": round(v.measure.G, 3), "grade": v.measure.grade,
                          "touches_border": bool(v.extra["mask"].get("touches_border"))}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("measure", "scores", "cases", "real"):
        p = sub.add_parser(name)
        p.add_argument("--weights", default=None)
        p.add_argument("--cases", type=int, default=6)
        p.add_argument("--start", type=int, default=7000)
        p.add_argument("--test", default="runs/data/cache_shape/test.npz")
        p.add_argument("--figure", action="store_true")
    args = parser.parse_args()
    {"measure": cmd_measure, "scores": cmd_scores, "cases": cmd_cases, "real": cmd_real}[args.command](args)


if __name__ == "__main__":
    main()
