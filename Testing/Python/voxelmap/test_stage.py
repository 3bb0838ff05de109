from types import SimpleNamespace

import numpy as np
import SimpleITK as sitk
from vmhelpers import line_centreline, phantom_ct, tiny_model

from VertebralFractureLib.nn.weights import save_weights
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.voxelmap import stage_voxel_map


def _vertebra(label, z):
    kp = np.array([[0, -12, z + 10], [0, -12, z - 10], [0, 0, z + 10], [0, 0, z - 10], [0, 12, z + 10],
                   [0, 12, z - 10]], float)
    return Vertebra(label, kp.mean(axis=0), kp)


def test_stage_fills_scores_and_map(tmp_path):
    model = tiny_model(3)
    weights = save_weights(model, tmp_path / "vm.pt", name="voxelmap", config=model.config,
                           meta={"spacing": 3.0, "band_mm": 9.0, "cube": 3, "probability_threshold": 0.3,
                                 "noise_mm3": 27.0})
    image = phantom_ct(size=(24, 24, 30), spacing=(2.0, 2.0, 2.0))
    result = SpineResult([_vertebra("L1", 12.0), _vertebra("L2", -12.0)])
    analysis = SimpleNamespace(image=image, centreline=SimpleNamespace(points=line_centreline(50)), result=result)
    stage_voxel_map(analysis, SimpleNamespace(device="cpu", voxelmap_weights=str(weights)), None)
    assert isinstance(analysis.fracture_map, sitk.Image)
    scores = [v.voxel_fracture_score for v in result.vertebrae]
    assert all(s is not None and 0 <= s <= 1 for s in scores)
    assert result.patient["voxel_fracture_score"] >= 0 and "voxel_fracture_positive" in result.patient
    assert "voxel_fracture_score" in result.to_dict()["vertebrae"][0]


def test_stage_without_centreline_warns():
    analysis = SimpleNamespace(image=None, centreline=None, result=SpineResult())
    stage_voxel_map(analysis, None, None)
    assert any("centre-line" in w for w in analysis.result.warnings)
