"""The package's layout rules: what ships never imports the workbench, stages share one contract, no machine paths."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import VertebralFractureLib
from VertebralFractureLib.pipeline import default_stages
from VertebralFractureLib.stage import Stage

PACKAGE = Path(VertebralFractureLib.__file__).resolve().parent
SAMPLE_CT = PACKAGE / "data" / "sample_ct.nii.gz"


def _run(code: str) -> str:
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                               env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.slow
def test_an_analysis_of_the_sample_ct_imports_nothing_from_training():
    out = _run(
        "import json, sys\n"
        "from VertebralFractureLib.pipeline import analyze\n"
        f"analysis = analyze({str(SAMPLE_CT)!r})\n"
        "print(json.dumps({'levels': [v.label for v in analysis.result.vertebrae],\n"
        "                  'modules': sorted(m for m in sys.modules if m.startswith('VertebralFractureLib'))}))\n")
    report = json.loads(out.strip().splitlines()[-1])
    assert report["levels"] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    workbench = [m for m in report["modules"] if m.startswith("VertebralFractureLib.training")]
    assert workbench == []
    # the analysis did load its stages (so the check above looked at a real run)
    assert "VertebralFractureLib.keypoints.detector" in report["modules"]
    assert "VertebralFractureLib.voxelmap.inference" in report["modules"]


def test_cli_help_imports_no_torch():
    out = _run("import sys\n"
               "from VertebralFractureLib.cli import build_parser\n"
               "build_parser().format_help()\n"
               "print('torch' in sys.modules)")
    assert out.split() == ["False"]


def test_every_stage_implements_the_protocol_with_a_unique_name():
    stages = default_stages()
    assert [s.name for s in stages] == ["centreline", "straighten", "keypoints", "quality_gate", "masks",
                                        "mask_measures", "classifier", "voxel_map", "abnormality"]
    for stage in stages:
        assert isinstance(stage, Stage), stage
        assert stage.title and 0 < stage.share <= 1


def _string_literals(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_machine_specific_path_in_the_package():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for line, text in _string_literals(path):
            for marker in ("/work/", "/home/", "/Users/", "/tmp/", "C:\\"):
                if marker in text:
                    offenders.append(f"{path.relative_to(PACKAGE)}:{line}: {marker}")
    assert offenders == []


def test_module_file_names_are_unique_outside_role_names():
    """One name per meaning: a file name repeats only for the shared roles of method folders.

    ``cli/`` files are named after their sub-command (``cli/measure.py`` is ``vertebral-fracture measure``).
    """
    roles = {"__init__.py", "stage.py", "train.py", "evaluate.py", "data.py", "losses.py", "metrics.py",
             "figures.py", "network.py", "batches.py", "model.py", "targets.py"}
    seen = {}
    for path in PACKAGE.rglob("*.py"):
        if path.name not in roles and path.parent.name != "cli":
            seen.setdefault(path.name, []).append(str(path.relative_to(PACKAGE)))
    repeated = {name: places for name, places in seen.items() if len(places) > 1}
    assert repeated == {}
