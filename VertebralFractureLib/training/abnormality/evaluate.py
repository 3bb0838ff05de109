"""Evaluation of the abnormality score: distribution per Genant grade and AUC (Botros et al. 2022, section 3).

``vertebral-fracture evaluate abnormality`` scores held-out synthetic columns (fractured bodies
included; grades are the generator's commanded grades) and, with ``--real``, the real
sub-verse004 mask against the radiologists' grades, and prints mean +- sd per grade and the AUC
for grade >= 2 (Botros et al. 2022 reports 59.9 +- 24.8 for fractured vs 10.1 +- 6.9 for normal vertebrae).
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from ...shape.score import MODEL_NAME, WEIGHTS_NAME

#: One-line help of ``vertebral-fracture evaluate abnormality``.
EVALUATE_HELP = "abnormality score per Genant grade and AUC on held-out synthetic columns (and real masks)"
__all__ = ["MODEL_NAME", "add_evaluate_arguments", "auc", "evaluate_main", "summary"]


def auc(positive: Sequence[float], negative: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U / (n_pos n_neg)); ties count one half; NaN if a class is empty."""
    positive, negative = np.asarray(positive, float), np.asarray(negative, float)
    if len(positive) == 0 or len(negative) == 0:
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def by_grade(scores: Sequence[float], grades: Sequence[int]) -> Dict[int, Dict[str, float]]:
    """n, mean and sd of the scores per grade."""
    out = {}
    for grade in sorted(set(int(g) for g in grades)):
        values = np.asarray([s for s, g in zip(scores, grades) if int(g) == grade], float)
        out[grade] = {"n": int(len(values)), "mean": round(float(values.mean()), 1),
                      "sd": round(float(values.std(ddof=1)) if len(values) > 1 else 0.0, 1)}
    return out


def summary(scores: Sequence[float], grades: Sequence[int]) -> Dict:
    """Per-grade statistics, fractured (grade >= 1) vs normal, AUCs for grade >= 2 and >= 1."""
    scores, grades = np.asarray(scores, float), np.asarray(grades, int)
    split = by_grade(scores, (grades >= 1).astype(int))
    return {
        "by_grade": by_grade(scores, grades),
        "normal": split.get(0),
        "fractured": split.get(1),
        "auc_grade_ge2": round(auc(scores[grades >= 2], scores[grades < 2]), 3),
        "auc_grade_ge1": round(auc(scores[grades >= 1], scores[grades < 1]), 3),
    }


def evaluate_crops(model, path: str) -> Dict:
    """Scores of cached crops (``.npz`` from :func:`VertebralFractureLib.training.abnormality.data.build_set`).

    Bodies without any neighbour are left out (the product does not score them).
    """
    from ...shape.score import score_from_fraction, surplus_fraction

    data = np.load(path)
    facts = [ast.literal_eval(str(text)) for text in data["facts"]]
    # bodies without any neighbour are not scored by the product (abnormality_scores), nor here
    keep = np.array([f["n_context"] > 0 for f in facts])
    facts = [f for f, k in zip(facts, keep) if k]
    predicted = model.predict(data["context"][keep].astype(np.float32) / 255)
    actual = data["body"][keep].astype(np.float32) / 255
    fractions = np.array([surplus_fraction(p, a, sigma_pitch=model.sigma_pitch) for p, a in zip(predicted, actual)])
    scores = np.array([score_from_fraction(f, model.scale) for f in fractions])
    grades = np.array([f["grade"] for f in facts])
    out = {"set": str(path), "n": int(len(scores)), "scale": model.scale, **summary(scores, grades)}
    out["surplus_fraction_by_grade"] = {int(g): round(float(fractions[grades == g].mean()), 4)
                                        for g in sorted(set(grades))}
    kinds = sorted({f["type"] for f in facts if f["grade"] > 0})
    out["mean_by_type"] = {k: round(float(np.mean([s for s, f in zip(scores, facts) if f["type"] == k])), 1)
                           for k in kinds}
    context = np.array([f["n_context"] for f in facts])
    out["normal_by_context"] = {int(n): round(float(scores[(grades == 0) & (context == n)].mean()), 1)
                                for n in sorted(set(context)) if ((grades == 0) & (context == n)).any()}
    out["auc_grade_ge2_full_context"] = round(auc(scores[(grades >= 2) & (context == 4)],
                                                  scores[(grades < 2) & (context == 4)]), 3)
    out["scores"], out["grades"] = scores, grades
    return out


def verse_grades(csv_path: Path, subject: str = "sub-verse004") -> Dict[str, int]:
    """Radiologists' Genant grades of one VerSe subject."""
    with open(csv_path, newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["subject"] == subject]
    return {row["vertebra"]: int(row["genant_grade"]) for row in rows}


def evaluate_real(model, mask_path: Path, grades: Dict[str, int]) -> Dict:
    """Mask-derived G and abnormality of a real mask against reference grades."""
    from ...shape.measure import measure_from_mask
    from ...shape.score import abnormality_scores

    result = measure_from_mask(mask_path)
    abnormality_scores(str(mask_path), result, model)
    rows = [{"level": v.label, "G": round(v.measure.G, 3), "grade": v.measure.grade, "abnormality": v.abnormality,
             "reference_grade": grades.get(v.label)} for v in result.vertebrae]
    graded = [r for r in rows if r["reference_grade"] is not None]
    return {"mask": mask_path.name, "rows": rows,
            **summary([r["abnormality"] for r in graded], [r["reference_grade"] for r in graded])}


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vertebral-fracture evaluate abnormality``."""
    parser.add_argument("--weights", default=WEIGHTS_NAME, help="weights file (default: shipped)")
    parser.add_argument("--test", default="runs/data/cache_shape/test.npz",
                        help="held-out crops (.npz); built from synthetic columns 6000-6039 when missing")
    parser.add_argument("--real", action="store_true", help="also score the real sub-verse004 mask")
    parser.add_argument("--data-root", default="Testing/Data/real", help="folder of the real data")


def evaluate_main(args: argparse.Namespace) -> int:
    """Print the evaluation as JSON."""
    from ...shape.score import AbnormalityModel
    from .train import ensure_set

    model = AbnormalityModel.load(args.weights, device="cpu")
    test = ensure_set(args.test, range(6000, 6040), unfractured_only=False, fracture_prevalence=0.4)
    report = evaluate_crops(model, test)
    report.pop("scores"), report.pop("grades")
    print(json.dumps(report))
    if args.real:
        root = Path(args.data_root)
        grades = verse_grades(root / "verse" / "verse19_genant_grades.csv")
        print(json.dumps(evaluate_real(model, root / "verse" / "sub-verse004_seg-vert_msk.nii.gz", grades)))
    return 0
