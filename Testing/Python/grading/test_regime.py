"""The three-stage regime, the ablation fold, the embeddings plot (tiny real models)."""

import dataclasses

import numpy as np
import pytest
import torch

from VertebralFractureLib.training.grading.ablation import format_tables, run_fold
from VertebralFractureLib.training.grading.figures import plot_embeddings
from VertebralFractureLib.training.grading.regime import RegimeConfig, new_model, predict, run_regime, train_stage

TINY = RegimeConfig(width=0.125, batch=12, steps_label=3, steps_representation=3, steps_fracture=3, lr=1e-3,
                    max_shift=2, seed=1)


def test_config_switches():
    assert RegimeConfig().name() == "label+grading+fracture"
    assert RegimeConfig(label_pretrain=False, representation="none").name() == "fracture"
    with pytest.raises(ValueError, match="representation must be one of .* got 'softmax'"):
        RegimeConfig(representation="softmax")


def test_each_stage_runs_and_excludes_grade_one(tiny_set):
    """Grade-1 patches are poisoned with NaN: one grade-1 row drawn by any stage makes its loss NaN."""
    assert np.sum(tiny_set.grades == 1) >= 5
    patches = tiny_set.patches.copy()
    patches[tiny_set.grades == 1] = np.nan
    poisoned = dataclasses.replace(tiny_set, patches=patches)
    model = new_model(TINY)
    for stage, representation in (("label", None), ("representation", "grading"),
                                  ("representation", "triplet"), ("representation", "contrastive"),
                                  ("fracture", None)):
        losses = train_stage(model, stage, poisoned, TINY, 6, representation=representation)
        assert len(losses) == 6 and all(np.isfinite(losses)), (stage, representation)
    for name in ("label", "fracture"):  # the poison works: a stage that draws grade-1 rows does get NaN
        grade_one_as_grade_zero = dataclasses.replace(poisoned, grades=np.where(poisoned.grades == 1, 0,
                                                                                poisoned.grades))
        losses = train_stage(new_model(TINY), name, grade_one_as_grade_zero, TINY, 6)
        assert not all(np.isfinite(losses)), name
    with pytest.raises(ValueError, match="cannot feed the representation stage"):
        train_stage(model, "representation", tiny_set.subset(tiny_set.grades != 3), TINY, 1, representation="grading")


def test_fracture_stage_learns_the_box_heights(tiny_set):
    config = dataclasses.replace(TINY, batch=8, lr=3e-3, max_shift=0, fracture_fraction=0.5, seed=2)
    model = new_model(config)
    losses = train_stage(model, "fracture", tiny_set, config, 40)
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:10])
    out = predict(model, tiny_set)
    keep = tiny_set.train_mask
    assert out["embedding"].shape == (len(tiny_set), 8)
    p, y = out["probability"][keep], tiny_set.fractured[keep]
    auc = np.mean(p[y == 1][:, None] > p[y == 0][None, :])  # every fractured box ranked above every healthy one
    assert auc >= 0.95
    assert np.mean((p >= 0.5) == y.astype(bool)) >= 0.85


def test_grading_stage_lowers_its_loss(tiny_set):
    config = dataclasses.replace(TINY, lr=3e-3, max_shift=0)
    model = new_model(config)
    losses = train_stage(model, "representation", tiny_set, config, 25, representation="grading")
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_full_regime_snapshots(tiny_set):
    snapshots = {}
    run_regime(tiny_set, TINY, snapshots=snapshots)
    assert set(snapshots) == {"label", "representation"}


def test_one_fold_of_the_ablation(tiny_set, tmp_path):
    test_rows = np.flatnonzero(np.isin(tiny_set.cases, ["case0", "case1", "case2"]))
    result = run_fold(tiny_set, test_rows, TINY, rows=((False, None), (True, "grading"), (False, "grading")))
    assert set(result["table2"]) == {"none", "label+grading", "grading"}
    assert set(result["table1"]) == {"grading"}
    in_test = np.isin(tiny_set.cases, ["case0", "case1", "case2"])
    assert result["n_test"] == int(np.sum(in_test & (tiny_set.grades != 1)))  # grade 1 left out
    assert result["n_train"] == int(np.sum(~in_test & (tiny_set.grades != 1)))
    text = format_tables([result, result])
    assert "Table 1" in text and "Table 2" in text and "81.5" in text
    png = plot_embeddings({"grading": (np.random.default_rng(0).normal(size=(30, 8)), np.arange(30) % 4)},
                          tmp_path / "tsne.png")
    assert png.stat().st_size > 1000


def test_load_results_takes_table1_from_the_probe_run(tmp_path):
    import json

    from VertebralFractureLib.training.grading.ablation import load_results

    scores = {"SN": 50.0, "SP": 90.0, "F1": 60.0}
    base = {"fold": 0, "n_test": 10, "test_counts": {"0": 8, "2": 1, "3": 1},
            "table1": {"grading": {**scores, "SN": 0}}, "table2": {"none": scores}}
    (tmp_path / "fold_0.json").write_text(json.dumps(base))
    (tmp_path / "table1_fold_0.json").write_text(json.dumps({**base, "table1": {"grading": scores}, "table2": {},
                                                             "embeddings": {"grades": [0], "grading": [[0.0] * 8]}}))
    (tmp_path / "table1_fold_1.json").write_text(json.dumps({**base, "fold": 1, "table1": {"grading": scores}}))
    results = load_results(tmp_path)
    assert [r["fold"] for r in results] == [0, 1]
    assert results[0]["table1"]["grading"]["SN"] == 50.0 and results[0]["table1_unweighted_svm"]["grading"]["SN"] == 0
    assert results[0]["table2"]["none"] == scores and "embeddings" in results[0]
    assert results[1]["table2"] == {}


def test_an_ensemble_trains_its_members_from_successive_seeds(tiny_set):
    from VertebralFractureLib.grading.network import GradingEnsemble
    from VertebralFractureLib.training.grading.regime import run_ensemble

    config = RegimeConfig(label_pretrain=False, representation=None, steps_fracture=3, batch=8, width=0.125, seed=4)
    ensemble = run_ensemble(tiny_set, config, 2)
    second = run_regime(tiny_set, dataclasses.replace(config, seed=5))
    assert isinstance(ensemble, GradingEnsemble)
    for a, b in zip(ensemble.members[1].state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    out = predict(ensemble, tiny_set)
    assert out["probability"].shape == (len(tiny_set),) and out["embedding"].shape == (len(tiny_set), 8)
    assert np.allclose(out["probability"], np.mean([predict(m, tiny_set)["probability"] for m in ensemble.members], 0),
                       atol=1e-6)
    assert not isinstance(run_ensemble(tiny_set, config, 1), GradingEnsemble)
