"""k-fold Tables 1 (linear-SVM probe of the representations) and 2 (ablation) of Husseini et al. 2020.

Protocol (Husseini et al. 2020, §3.1, scaled to a CPU): the cases of a held-out generated set are split into ``k``
folds, grouped by case (no vertebra of a test case is seen in training) and stratified so that
every fold keeps about the same healthy : grade 2 : grade 3 proportions (Husseini et al. 2020: "the proportion of
healthy:g2:g3 is preserved through all the folds"). For each fold, one network initialisation is
shared by all rows; the label pre-training is run once and branched from; then

* Table 1: the network after *representation learning only* (contrastive, triplet, grading) embeds
  the training and test patches; a linear SVM fitted on the training embeddings classifies the
  test ones;
* Table 2: each of the eight stage combinations ends with the fracture stage; test vertebrae are
  called fractured when the probability is >= 0.5.

Test rows are vertebrae of grades 0, 2 and 3 (grade 1 excluded, Husseini et al. 2020, §1). Scores are SN, SP and F1
in percent, reported as mean ± standard deviation over the folds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .data import PatchSet
from .metrics import detection_scores, mean_std
from .regime import RegimeConfig, new_model, predict, train_stage

#: Rows of Husseini et al. 2020, Table 2: (label pre-train, representation learning).
TABLE2_ROWS: Tuple[Tuple[bool, Optional[str]], ...] = (
    (False, None), (True, None),
    (False, "contrastive"), (False, "triplet"), (False, "grading"),
    (True, "contrastive"), (True, "triplet"), (True, "grading"),
)  # fmt: skip
#: Rows of Husseini et al. 2020, Table 1.
TABLE1_ROWS = ("contrastive", "triplet", "grading")
#: Husseini et al. 2020's own figures (mean SN, SP, F1) for the closing comparison.
PAPER_TABLE1 = {"contrastive": (54.2, 95.6, 57.4), "triplet": (71.7, 90.2, 57.3), "grading": (67.1, 95.3, 65.2)}
PAPER_TABLE2 = {
    (False, None): (71.0, 96.4, 71.2), (True, None): (72.4, 97.8, 75.9),
    (False, "contrastive"): (73.7, 98.0, 77.6), (False, "triplet"): (73.7, 96.4, 73.6),
    (False, "grading"): (76.0, 97.8, 78.6), (True, "contrastive"): (74.3, 98.0, 78.2),
    (True, "triplet"): (75.7, 97.6, 77.5), (True, "grading"): (76.9, 98.5, 81.5),
}  # fmt: skip


def row_key(label: bool, representation: Optional[str]) -> str:
    """Name of a Table 2 row, e.g. ``label+grading``."""
    return "+".join((["label"] if label else []) + [representation or "none"])


def case_folds(data: PatchSet, k: int, seed: int = 0) -> List[np.ndarray]:
    """Split the cases into ``k`` folds with similar grade-2 / grade-3 / healthy counts.

    Cases are dealt greedily, the most fractured first, each to the fold that is furthest below its
    share (grade 3 first, then grade 2, then all vertebrae), ties broken at random.

    Returns:
        For each fold, the row indices of its cases.

    Raises:
        ValueError: for fewer cases than folds.

    """
    cases = np.unique(data.cases)
    if len(cases) < k:
        raise ValueError(f"{len(cases)} cases cannot make {k} folds")
    rng = np.random.default_rng(seed)
    counts = {c: np.array([np.sum((data.cases == c) & (data.grades == g)) for g in (3, 2, 0)]) for c in cases}
    order = sorted(cases, key=lambda c: (-counts[c][0], -counts[c][1], rng.random()))
    totals = np.zeros((k, 3))
    members: List[List[str]] = [[] for _ in range(k)]
    for case in order:
        need = counts[case] > 0
        key = [(tuple(totals[f][need]) if need.any() else (), len(members[f]), rng.random()) for f in range(k)]
        fold = min(range(k), key=lambda f: key[f])
        totals[fold] += counts[case]
        members[fold].append(case)
    return [np.flatnonzero(np.isin(data.cases, m)) for m in members]


def run_fold(data: PatchSet, test_rows: np.ndarray, config: RegimeConfig,
             rows: Sequence[Tuple[bool, Optional[str]]] = TABLE2_ROWS,
             log: Optional[Callable[[str], None]] = None, fold: int = 0, table1_only: bool = False) -> Dict:
    """Train and score every Table 1 and Table 2 row on one fold.

    With ``table1_only`` only the representation-only networks of Table 1 are trained and probed
    (no fracture stage), from the same initialisation and with the same sampling as in the full run.

    Returns:
        ``{"table1": {loss: scores}, "table2": {row: scores}, "n_train", "n_test", "seconds"}``.

    """
    started = time.perf_counter()
    is_test = np.zeros(len(data), bool)
    is_test[test_rows] = True
    train = data.subset(np.flatnonzero(~is_test & data.train_mask))
    test = data.subset(np.flatnonzero(is_test & data.train_mask))
    base = new_model(dataclasses.replace(config, seed=config.seed + fold))
    label_model = None
    out: Dict = {"fold": fold, "table1": {}, "table2": {}, "n_train": len(train), "n_test": len(test),
                 "test_counts": {str(g): int(np.sum(test.grades == g)) for g in (0, 2, 3)}}
    if table1_only:
        rows = [(False, name) for name in TABLE1_ROWS]
    for label, representation in rows:
        if label and label_model is None:
            label_model = copy.deepcopy(base)
            train_stage(label_model, "label", train, config, config.steps_label, log=log, seed_offset=1)
        model = copy.deepcopy(label_model if label else base)
        if representation:
            train_stage(model, "representation", train, config, config.steps_representation,
                        representation=representation, log=log, seed_offset=2)
            if not label and representation in TABLE1_ROWS:
                from .probe import fit_linear_svm

                svm = fit_linear_svm(predict(model, train)["embedding"], train.fractured)
                test_embedding = predict(model, test)["embedding"]
                scores = detection_scores(test.fractured, svm.predict(test_embedding))
                out["table1"][representation] = scores
                out.setdefault("embeddings", {"grades": test.grades.tolist()})[representation] = (
                    np.round(test_embedding, 4).tolist())
                if log:
                    log(f"fold {fold} table1 {representation}: SN {scores['SN']:.1f} SP {scores['SP']:.1f} "
                        f"F1 {scores['F1']:.1f}")
        if table1_only:
            continue
        train_stage(model, "fracture", train, config, config.steps_fracture, log=log, seed_offset=3)
        probability = predict(model, test)["probability"]
        scores = detection_scores(test.fractured, probability >= 0.5)
        out["table2"][row_key(label, representation)] = scores
        if log:
            log(f"fold {fold} table2 {row_key(label, representation)}: SN {scores['SN']:.1f} "
                f"SP {scores['SP']:.1f} F1 {scores['F1']:.1f}")
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out


def run_ablation(data: PatchSet, config: RegimeConfig, k: int = 5, folds: Optional[Sequence[int]] = None,
                 out_dir: Optional[Path] = None, log: Optional[Callable[[str], None]] = None,
                 rows: Sequence[Tuple[bool, Optional[str]]] = TABLE2_ROWS, table1_only: bool = False) -> List[Dict]:
    """Run (some of) the ``k`` folds; each fold's result is written to ``out_dir/fold_<i>.json``.

    With ``table1_only`` the files are ``table1_fold_<i>.json`` (see :func:`run_fold`); when both exist,
    :func:`load_results` takes Table 1 from the latter.
    """
    splits = case_folds(data, k, seed=config.seed)
    results = []
    prefix = "table1_fold" if table1_only else "fold"
    for fold in folds if folds is not None else range(k):
        if out_dir is not None and (Path(out_dir) / f"{prefix}_{fold}.json").exists():
            results.append(json.loads((Path(out_dir) / f"{prefix}_{fold}.json").read_text()))
            if log:
                log(f"fold {fold}: reusing {Path(out_dir) / f'{prefix}_{fold}.json'}")
            continue
        result = run_fold(data, splits[fold], config, rows=rows, log=log, fold=fold, table1_only=table1_only)
        result["config"] = config.to_dict()
        result["k"] = k
        results.append(result)
        if out_dir is not None:
            from ...io.atomic import atomic_write

            Path(out_dir).mkdir(parents=True, exist_ok=True)
            atomic_write(Path(out_dir) / f"{prefix}_{fold}.json", json.dumps(result, indent=1), overwrite=True)
    return results


def load_results(out_dir: Path) -> List[Dict]:
    """Fold results of a folder: ``fold_<i>.json``, Table 1 replaced from ``table1_fold_<i>.json`` if present."""
    out_dir = Path(out_dir)
    results = {}
    for path in sorted(out_dir.glob("fold_*.json")):
        result = json.loads(path.read_text())
        results[result["fold"]] = result
    for path in sorted(out_dir.glob("table1_fold_*.json")):
        extra = json.loads(path.read_text())
        if extra["fold"] in results:
            results[extra["fold"]]["table1_unweighted_svm"] = results[extra["fold"]].get("table1")
            results[extra["fold"]]["table1"] = extra["table1"]
            if extra.get("embeddings"):
                results[extra["fold"]]["embeddings"] = extra["embeddings"]
        else:
            results[extra["fold"]] = {**extra, "table2": {}}
    return [results[f] for f in sorted(results)]


def format_tables(results: Sequence[Dict]) -> str:
    """Tables 1 and 2 as text: mean ± std over the folds, with Husseini et al. 2020's figures beside them."""
    lines = [f"Folds: {len(results)} (case-grouped, stratified); test vertebrae per fold: "
             + ", ".join(f"{r['n_test']} ({r['test_counts']['0']}/{r['test_counts']['2']}/{r['test_counts']['3']})"
                         for r in results) + "  [healthy/g2/g3]", ""]
    lines.append("Table 1 (representation learn only -> linear SVM on the embeddings)")
    lines.append(f"{'Setup':<14}{'SN':>14}{'SP':>14}{'F1':>14}   paper: SN / SP / F1")
    for name in TABLE1_ROWS:
        got = [r["table1"][name] for r in results if name in r.get("table1", {})]
        if not got:
            continue
        paper = PAPER_TABLE1[name]
        cells = "".join(f"{mean_std([g[m] for g in got]):>14}" for m in ("SN", "SP", "F1"))
        lines.append(f"{name.capitalize():<14}{cells}   {paper[0]:.1f} / {paper[1]:.1f} / {paper[2]:.1f}")
    lines += ["", "Table 2 (label pre-train -> representation learn -> fracture train)"]
    lines.append(f"{'Label':<7}{'Rep. learn':<13}{'Frac':<6}{'SN':>14}{'SP':>14}{'F1':>14}   paper: SN / SP / F1")
    for label, representation in TABLE2_ROWS:
        key = row_key(label, representation)
        got = [r["table2"][key] for r in results if key in r.get("table2", {})]
        if not got:
            continue
        paper = PAPER_TABLE2[(label, representation)]
        lines.append(f"{'yes' if label else 'no':<7}{(representation or '-').capitalize():<13}{'yes':<6}"
                     + "".join(f"{mean_std([g[m] for g in got]):>14}" for m in ("SN", "SP", "F1"))
                     + f"   {paper[0]:.1f} / {paper[1]:.1f} / {paper[2]:.1f}")
    return "\n".join(lines)
