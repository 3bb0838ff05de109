from types import SimpleNamespace

import numpy as np
import pytest
import SimpleITK as sitk
from vmhelpers import line_centreline, phantom_ct, tiny_model

from VertebralFractureLib.nn.weights import save_weights
from VertebralFractureLib.progress import Progress
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.stage import StageContext
from VertebralFractureLib.voxelmap.stage import VoxelMapStage


def _vertebra(label, z):
    kp = np.array([[0, -12, z + 10], [0, -12, z - 10], [0, 0, z + 10], [0, 0, z - 10], [0, 12, z + 10],
                   [0, 12, z - 10]], float)
    return Vertebra(label, kp.mean(axis=0), kp)


def test_stage_fills_scores_and_map(tmp_path):
    """The scores a reader sees are those of the map shown, at each vertebra's own centroid, with the weights' meta."""
    from VertebralFractureLib.voxelmap.aggregate import patient_score, vertebra_scores
    from VertebralFractureLib.voxelmap.inference import MODEL_NAME, fracture_map, load_model

    model = tiny_model(3)
    meta = {"spacing": 3.0, "band_mm": 9.0, "cube": 3, "probability_threshold": 0.3, "noise_mm3": 27.0,
            "edge_margin_mm": 0.0}
    weights = save_weights(model, tmp_path / "vm.pt", name="voxelmap", config=model.config, meta=meta)
    ramp = lambda x, y, z: 100.0 + 40.0 * z + 5.0 * x  # noqa: E731 - a CT that differs between L1 and L2
    image = phantom_ct(size=(24, 24, 30), spacing=(2.0, 2.0, 2.0), value=ramp)
    result = SpineResult([_vertebra("L1", 12.0), _vertebra("L2", -12.0)])
    analysis = SimpleNamespace(image=image, centreline=SimpleNamespace(points=line_centreline(50)), result=result)
    VoxelMapStage().run(analysis, StageContext(device="cpu", weights={"voxel_map": str(weights)}), Progress())
    assert isinstance(analysis.fracture_map, sitk.Image)

    loaded, _ = load_model(str(weights), "cpu")
    expected_map = fracture_map(image, line_centreline(50), loaded)
    np.testing.assert_allclose(sitk.GetArrayFromImage(analysis.fracture_map), sitk.GetArrayFromImage(expected_map),
                               atol=1e-5)
    expected = vertebra_scores(expected_map, {v.label: v.centroid for v in result.vertebrae}, cube=3)
    scores = {v.label: v.voxel_fracture_score for v in result.vertebrae}
    assert scores == pytest.approx(expected, abs=1e-6)
    assert all(s is not None and 0 <= s <= 1 for s in scores.values())
    assert abs(scores["L1"] - scores["L2"]) > 1e-6, "the two vertebrae see different parts of the map"
    patient = patient_score(expected_map, 0.3, 27.0, 0.0)
    assert result.patient["voxel_fracture_volume_mm3"] == pytest.approx(round(patient.fracture_volume_mm3, 1))
    assert result.patient["voxel_fracture_components"] == patient.n_components
    # the patient-level flag is positive on 4 of 5 real CTs without a fracture: not reported as a finding
    assert result.patient["voxel_fracture_positive"] is None
    assert "research only, not a finding" in result.patient["voxel_fracture_patient_level"]
    assert result.patient_summary()["voxel_fracture_positive"] is None
    assert "voxel_fracture_score" in result.to_dict()["vertebrae"][0]
    assert "vm.pt" in result.models[MODEL_NAME]  # the reader can tell which weights made the map


def test_stage_without_centreline_warns():
    analysis = SimpleNamespace(image=None, centreline=None, result=SpineResult())
    VoxelMapStage().run(analysis, StageContext(), Progress())
    assert any("centre-line" in w for w in analysis.result.warnings)


def test_the_patient_level_flag_is_reported_once_validated_on_enough_real_ct(monkeypatch):
    """The gate of the patient-level flag: at most MAX_REAL_FPR of at least 10 real CTs without a fracture."""
    from VertebralFractureLib.voxelmap import stage

    assert stage.patient_level_validated() is False  # 4 of 5 measured
    monkeypatch.setattr(stage, "REAL_NORMAL_POSITIVE", 1)
    monkeypatch.setattr(stage, "REAL_NORMAL_CTS", 12)
    assert stage.patient_level_validated() is True
    monkeypatch.setattr(stage, "REAL_NORMAL_CTS", 9)  # too few, however clean
    monkeypatch.setattr(stage, "REAL_NORMAL_POSITIVE", 0)
    assert stage.patient_level_validated() is False
    monkeypatch.setattr(stage, "REAL_NORMAL_CTS", 10)
    monkeypatch.setattr(stage, "REAL_NORMAL_POSITIVE", 2)  # 0.2 > 0.1
    assert stage.patient_level_validated() is False


def test_stage_with_a_centreline_but_no_vertebra_draws_no_map(tmp_path):
    """A centre-line that found no vertebral body (the real chest CT's anterior half: it ran through the heart) gives
    no map: hot voxels there would be drawn on the heart."""
    model = tiny_model(3)
    weights = save_weights(model, tmp_path / "vm.pt", name="voxelmap", config=model.config,
                           meta={"spacing": 3.0, "band_mm": 9.0, "cube": 3})
    image = phantom_ct(size=(24, 24, 30), spacing=(2.0, 2.0, 2.0), value=lambda x, y, z: 100.0 + 0.0 * x)
    analysis = SimpleNamespace(image=image, centreline=SimpleNamespace(points=line_centreline(50)),
                               result=SpineResult(), fracture_map=None)
    VoxelMapStage().run(analysis, StageContext(device="cpu", weights={"voxel_map": str(weights)}), Progress())
    assert analysis.fracture_map is None
    assert "voxel_fracture_volume_mm3" not in analysis.result.patient
    assert any("no vertebra was found on the centre-line" in w for w in analysis.result.warnings)
