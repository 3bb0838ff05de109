from types import SimpleNamespace

import numpy as np
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
    model = tiny_model(3)
    weights = save_weights(model, tmp_path / "vm.pt", name="voxelmap", config=model.config,
                           meta={"spacing": 3.0, "band_mm": 9.0, "cube": 3, "probability_threshold": 0.3,
                                 "noise_mm3": 27.0})
    image = phantom_ct(size=(24, 24, 30), spacing=(2.0, 2.0, 2.0))
    result = SpineResult([_vertebra("L1", 12.0), _vertebra("L2", -12.0)])
    analysis = SimpleNamespace(image=image, centreline=SimpleNamespace(points=line_centreline(50)), result=result)
    VoxelMapStage().run(analysis, StageContext(device="cpu", weights={"voxel_map": str(weights)}), Progress())
    assert isinstance(analysis.fracture_map, sitk.Image)
    scores = [v.voxel_fracture_score for v in result.vertebrae]
    assert all(s is not None and 0 <= s <= 1 for s in scores)
    assert result.patient["voxel_fracture_score"] >= 0 and "voxel_fracture_positive" in result.patient
    assert "voxel_fracture_score" in result.to_dict()["vertebrae"][0]


def test_stage_without_centreline_warns():
    analysis = SimpleNamespace(image=None, centreline=None, result=SpineResult())
    VoxelMapStage().run(analysis, StageContext(), Progress())
    assert any("centre-line" in w for w in analysis.result.warnings)
