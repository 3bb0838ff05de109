"""The Slicer module file under slicer-core: it imports, its Logic runs the real library, its self-test passes."""

import py_compile
from pathlib import Path

import pytest

MODULE_FILE = Path(__file__).resolve().parents[3] / "VertebralFracture" / "VertebralFracture.py"


def test_module_byte_compiles(tmp_path):
    py_compile.compile(str(MODULE_FILE), cfile=str(tmp_path / "VertebralFracture.pyc"), doraise=True)


def test_module_file_stays_short():
    assert len(MODULE_FILE.read_text(encoding="utf-8").splitlines()) < 500


def test_imports_without_the_application(module):
    assert module.HAVE_SLICER_APP is False
    assert len(module.PAPERS) == 5
    assert any("Grading loss" in p for p in module.PAPERS) and any("contextual modeling" in p for p in module.PAPERS)
    parameters = module.VertebralFractureParameterNode(inputVolume=None, inputSegmentation=None)
    assert parameters.device == "auto" and parameters.keypoints is True and parameters.abnormality is False


def test_logic_adapts_the_library_to_the_scene(module, mrml_scene, spine_result, tmp_path):
    logic = module.VertebralFractureLogic(mrml_scene)
    path = tmp_path / "result.json"
    path.write_text(spine_result.to_json())
    nodes = logic.core.show_result(logic.core.load_result(path), name="case")
    assert nodes.table.GetNumberOfRows() == 3 and nodes.keypoints.GetNumberOfControlPoints() == 18
    assert mrml_scene.GetFirstNodeByName("case Genant") is nodes.table


SCENARIO_NAMES = [
    "volume_geometry",
    "markups_round_trip",
    "segmentation_round_trip",
    "table_types",
    "keypoint_edit",
    "withheld_edit",
    "analysis_to_nodes",
    "relabel_add_delete",
    "export_import",
    "scene_bundle",
    "cancel_keeps_scene",
    "radiograph_result",
    "review_queue_keys",
    "review_persistence",
    "undo_redo",
    "geometry_refused",
    "sample_ct_analysis",
]


@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_self_test_scenarios_pass_on_slicer_core(module, name):
    case = module.VertebralFractureTest(f"test_{name}")
    case.setUp()
    folder = case.folder
    try:
        getattr(case, f"test_{name}")()
    finally:
        case.tearDown()
    assert not folder.exists()


def test_self_test_covers_every_scenario(module):
    from VertebralFractureLib.mrml.scenarios import SCENARIOS

    assert list(SCENARIOS) == SCENARIO_NAMES
    for name in SCENARIOS:
        method = getattr(module.VertebralFractureTest, f"test_{name}")
        assert method.__doc__ == SCENARIOS[name].__doc__.strip().splitlines()[0]


def test_run_test_runs_every_scenario(module, monkeypatch):
    from VertebralFractureLib.mrml import scenarios

    ran, folders = [], []

    def record(scene, folder, name):
        ran.append(name)
        folders.append(folder)
        (folder / "export.csv").write_text("written by the scenario")

    recorders = {name: lambda scene, folder, n=name: record(scene, folder, n) for name in SCENARIO_NAMES}
    monkeypatch.setattr(module, "SCENARIOS", recorders)
    module.VertebralFractureTest("runTest").runTest()
    assert ran == SCENARIO_NAMES and scenarios.SCENARIOS is not module.SCENARIOS
    assert len(set(folders)) == len(SCENARIO_NAMES)
    assert not any(folder.exists() for folder in folders), "the self-test left its scratch folders behind"


def test_parameter_node_has_the_module_state(module):
    parameters = module.VertebralFractureParameterNode(inputVolume=None, inputSegmentation=None)
    assert (parameters.colorBy, parameters.level, parameters.followColumn, parameters.exportFormat) == (
        "grade",
        "L1",
        True,
        "annotations",
    )
