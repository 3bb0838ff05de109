"""Fracture probabilities for an analysis and the pipeline stage (tiny real model)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.grading import classifier as inference
from VertebralFractureLib.grading.classifier import (
    fracture_probabilities,
    load_model,
    save_model,
)
from VertebralFractureLib.grading.network import GradingNet
from VertebralFractureLib.grading.patches import extract_patch, model_input, normalise_hu, straighten_for_patches
from VertebralFractureLib.grading.stage import ClassifierStage
from VertebralFractureLib.progress import Progress
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.stage import StageContext


def vertebra(label, z, height=20.0):
    c = np.array([0.0, 0.0, z])
    kp = []
    for y in (-14.0, 0.0, 14.0):  # anterior, middle, posterior (LPS: anterior = smaller y)
        kp += [c + [0, y, height / 2], c + [0, y, -height / 2]]
    return Vertebra(label=label, centroid=c, keypoints=np.array(kp), source="test")


@pytest.fixture(scope="module")
def case():
    array = np.full((201, 161, 161), -1000.0, np.float32)
    for z0 in (40, 70, 100, 130, 160):
        array[z0 - 10:z0 + 10, 66:94, 70:90] = 400.0
    geometry = ImageGeometry((161, 161, 201), (1.0, 1.0, 1.0), (-80.0, -80.0, 0.0), np.eye(3))
    image = (array, geometry)
    curve = np.stack([np.zeros(201), np.zeros(201), np.arange(201.0)], 1)
    result = SpineResult(vertebrae=[vertebra("C7", 160), vertebra("T12", 130), vertebra("L1", 100),
                                    vertebra("L2", 70), vertebra("S1", 40)])
    torch.manual_seed(0)
    model = GradingNet(width=0.125).eval()
    return image, curve, result, model


def test_probabilities_match_the_network_on_the_patches(case):
    image, curve, result, model = case
    st = straighten_for_patches(image, curve)
    got = fracture_probabilities((st, result), model)
    assert set(got) == {"T12", "L1", "L2"}  # C7 and S1 are outside Husseini et al. 2020's scope
    x = np.stack([model_input(normalise_hu(extract_patch(st, result.vertebra(level).centroid))) for level in got])
    with torch.no_grad():
        expected = model.fracture_probability(torch.from_numpy(x)).numpy()
    assert np.allclose(list(got.values()), expected, atol=1e-6)
    assert all(0.0 < p < 1.0 for p in got.values())


def test_saved_weights_round_trip_and_pipeline_stage(case, tmp_path, monkeypatch):
    image, curve, result, model = case
    path = save_model(model, tmp_path / "grading_test.pt", regime={"width": 0.125})
    loaded = load_model(path, device="cpu")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    fresh = SpineResult(vertebrae=[vertebra(v.label, v.centroid[2]) for v in result.vertebrae])
    analysis = SimpleNamespace(result=fresh,
                               image=image, straightened=SimpleNamespace(curve=SimpleNamespace(points=curve)),
                               centreline=None)
    direct = fracture_probabilities(analysis, loaded)
    monkeypatch.setattr(inference, "WEIGHTS_NAME", str(path))
    ClassifierStage().run(analysis, StageContext(device="cpu"), Progress())
    res = analysis.result
    assert res.vertebra("L1").fracture_probability == pytest.approx(direct["L1"], abs=1e-6)
    assert res.vertebra("C7").fracture_probability is None
    assert res.patient["fracture_probability"] == pytest.approx(max(direct.values()))
    assert "fracture_classifier" in res.models
    assert "fracture_probability" in res.to_dict()["vertebrae"][1]


def test_stage_with_every_vertebra_withheld_keeps_their_scores_and_says_nothing_false(case, tmp_path, monkeypatch):
    """Every vertebra not assessed (a crop of the real chest CT: its bodies cut or their losses unconfirmed): each keeps
    its probability, the patient gets no maximum (none is assessed), and no warning claims the CT was missing."""
    image, curve, result, model = case
    path = save_model(model, tmp_path / "grading_test.pt", regime={"width": 0.125})
    fresh = SpineResult(vertebrae=[vertebra(v.label, v.centroid[2]) for v in result.vertebrae])
    for v in fresh.vertebrae:
        v.not_assessed("cut by the edge of the field of view")
    analysis = SimpleNamespace(result=fresh, image=image,
                               straightened=SimpleNamespace(curve=SimpleNamespace(points=curve)), centreline=None)
    monkeypatch.setattr(inference, "WEIGHTS_NAME", str(path))
    ClassifierStage().run(analysis, StageContext(device="cpu"), Progress())
    res = analysis.result
    assert res.vertebra("L1").fracture_probability is not None
    assert "fracture_probability" not in res.patient
    assert not any("no CT" in w for w in res.warnings)
    assert "fracture_classifier" in res.models


def test_stage_without_image_warns(case, monkeypatch):
    _, _, result, _ = case
    monkeypatch.setattr(inference, "WEIGHTS_NAME", "grading_does_not_exist.pt")
    analysis = SimpleNamespace(result=SpineResult(vertebrae=[vertebra("L1", 100.0), vertebra("L2", 70.0)]),
                               image=None, straightened=None, centreline=None)
    ClassifierStage().run(analysis, StageContext(), Progress())
    assert analysis.result.vertebra("L1").fracture_probability is None
    assert any("no CT" in w for w in analysis.result.warnings)


def test_stage_without_weights_file_warns(case, tmp_path, monkeypatch):
    image, curve, _, _ = case
    monkeypatch.setattr(inference, "WEIGHTS_NAME", str(tmp_path / "missing.pt"))
    analysis = SimpleNamespace(result=SpineResult(vertebrae=[vertebra("L1", 100.0), vertebra("L2", 70.0)]),
                               image=image, straightened=None, centreline=None)
    ClassifierStage().run(analysis, StageContext(), Progress())
    assert analysis.result.vertebra("L1").fracture_probability is None
    assert any("fracture classifier skipped" in w for w in analysis.result.warnings)


def test_an_ensemble_gives_the_mean_of_its_members_and_round_trips(case, tmp_path):
    from VertebralFractureLib.grading.network import GradingEnsemble

    image, curve, result, model = case
    torch.manual_seed(1)
    ensemble = GradingEnsemble(3, width=0.125).eval()
    st = straighten_for_patches(image, curve)
    got = fracture_probabilities((st, result), ensemble)
    each = [fracture_probabilities((st, result), member.eval()) for member in ensemble.members]
    assert len({round(e["L1"], 6) for e in each}) == 3  # three different networks
    for level in got:
        assert got[level] == pytest.approx(np.mean([e[level] for e in each]), abs=1e-6)
    path = save_model(ensemble, tmp_path / "grading_ensemble.pt", regime={"width": 0.125})
    loaded = load_model(path, device="cpu")
    assert isinstance(loaded, GradingEnsemble) and len(loaded.members) == 3
    assert fracture_probabilities((st, result), loaded) == pytest.approx(got, abs=1e-6)
    single = load_model(save_model(model, tmp_path / "grading_single.pt"), device="cpu")
    assert isinstance(single, GradingNet)
