"""The module's Qt Designer file: valid XML, the expected widgets, bindings to real parameters."""

import ast
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[3] / "VertebralFracture"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "VertebralFracture.ui"
MODULE_FILE = MODULE_DIR / "VertebralFracture.py"


@pytest.fixture(scope="module")
def ui():
    return ElementTree.parse(UI_FILE).getroot()


def _widgets(ui):
    return {w.get("name"): w.get("class") for w in ui.iter("widget")}


def _parameter_names(ui):
    names = {}
    for widget in ui.iter("widget"):
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                names[widget.get("name")] = prop.find("string").text
    return names


def _parameter_fields():
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and any(
            isinstance(d, ast.Name) and d.id == "parameterNodeWrapper" for d in node.decorator_list
        ):
            return {
                statement.target.id: ast.unparse(statement.annotation)
                for statement in node.body
                if isinstance(statement, ast.AnnAssign)
            }
    raise AssertionError("no @parameterNodeWrapper class in VertebralFracture.py")


def test_ui_is_a_designer_file(ui):
    assert ui.tag == "ui" and ui.get("version") == "4.0"
    assert ui.find("class").text == "VertebralFracture"
    top = ui.find("widget")
    assert top.get("class") == "qMRMLWidget"


def test_expected_widgets(ui):
    widgets = _widgets(ui)
    expected = {
        "inputsCollapsibleButton": "ctkCollapsibleButton",
        "analysesCollapsibleButton": "ctkCollapsibleButton",
        "advancedCollapsibleButton": "ctkCollapsibleButton",
        "inputVolumeSelector": "qMRMLNodeComboBox",
        "inputSegmentationSelector": "qMRMLNodeComboBox",
        "deviceComboBox": "QComboBox",
        "applyButton": "QPushButton",
        "cancelButton": "QPushButton",
        "progressBar": "QProgressBar",
        "statusLabel": "QLabel",
        "resultsTableView": "qMRMLTableView",
        "patientSummaryLabel": "QLabel",
        "loadResultsButton": "QPushButton",
        "updateMeasuresButton": "QPushButton",
        "colorByComboBox": "QComboBox",
        "correctionCollapsibleButton": "ctkCollapsibleButton",
        "levelComboBox": "QComboBox",
        "followColumnCheckBox": "QCheckBox",
        "relabelButton": "QPushButton",
        "addVertebraButton": "QPushButton",
        "deleteVertebraButton": "QPushButton",
        "exchangeCollapsibleButton": "ctkCollapsibleButton",
        "exportFormatComboBox": "QComboBox",
        "exportButton": "QPushButton",
        "importButton": "QPushButton",
    }
    for name, widget_class in expected.items():
        assert widgets.get(name) == widget_class, name
    custom = {c.find("class").text for c in ui.iter("customwidget")}
    assert {"ctkCollapsibleButton", "qMRMLNodeComboBox", "qMRMLWidget", "qMRMLTableView"} <= custom


def test_every_parameter_binding_names_a_field(ui):
    fields = _parameter_fields()
    bound = _parameter_names(ui)
    assert set(bound.values()) <= set(fields), set(bound.values()) - set(fields)
    assert set(bound.values()) == set(fields), "every parameter has a widget"
    assert fields["inputVolume"] == "vtkMRMLScalarVolumeNode"
    assert fields["inputSegmentation"] == "vtkMRMLSegmentationNode"
    assert bound["inputVolumeSelector"] == "inputVolume" and bound["deviceComboBox"] == "device"
    assert bound["colorByComboBox"] == "colorBy" and bound["levelComboBox"] == "level"
    assert bound["followColumnCheckBox"] == "followColumn" and bound["exportFormatComboBox"] == "exportFormat"
    assert fields["colorBy"] == "Annotated[str, Choice(COLOR_MODES)]"
    assert fields["exportFormat"] == "Annotated[str, Choice(FORMATS)]"


def test_node_selectors_accept_the_parameter_types(ui):
    fields = _parameter_fields()
    for widget in ui.iter("widget"):
        if widget.get("class") != "qMRMLNodeComboBox":
            continue
        node_types = [
            s.text for p in widget.findall("property") if p.get("name") == "nodeTypes" for s in p.iter("string")
        ]
        parameter = _parameter_names(ui)[widget.get("name")]
        assert node_types == [fields[parameter]]


def test_module_code_uses_the_widgets(ui):
    source = MODULE_FILE.read_text(encoding="utf-8")
    for name in (
        "applyButton",
        "cancelButton",
        "progressBar",
        "statusLabel",
        "resultsTableView",
        "patientSummaryLabel",
        "colorByComboBox",
        "levelComboBox",
        "relabelButton",
        "addVertebraButton",
        "deleteVertebraButton",
        "exportButton",
        "importButton",
    ):
        assert f"self.ui.{name}" in source
    assert 'loadUI(self.resourcePath("UI/VertebralFracture.ui"))' in source


def test_rgb_radiographs_are_selectable(ui, slicer_core):
    """A colour picture loads as a vtkMRMLVectorVolumeNode: the input selector and the parameter node take it."""
    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLVectorVolumeNode

    selector = next(w for w in ui.iter("widget") if w.get("name") == "inputVolumeSelector")
    props = {p.get("name"): p for p in selector.findall("property")}
    assert props["showChildNodeTypes"].find("bool").text == "true"
    hidden = [s.text for s in props["hideChildNodeTypes"].iter("string")]
    assert "vtkMRMLVectorVolumeNode" not in hidden and "vtkMRMLLabelMapVolumeNode" in hidden
    assert isinstance(vtkMRMLVectorVolumeNode(), vtkMRMLScalarVolumeNode)  # so the typed parameter accepts it
    assert _parameter_fields()["inputVolume"] == "vtkMRMLScalarVolumeNode"


def test_minimum_slicer_version_is_declared_and_checked():
    from VertebralFractureLib.mrml.module_info import MINIMUM_SLICER_VERSION, version_problem, version_supported

    assert MINIMUM_SLICER_VERSION == (5, 6)
    assert version_supported(5, 6) and version_supported(5, 8) and version_supported(6, 0)
    assert not version_supported(5, 4) and not version_supported(4, 13)
    assert version_problem(5, 6) == ""
    assert version_problem(5, 2) == (
        "Vertebral Fracture needs Slicer 5.6 or later (this is Slicer 5.2); please update Slicer."
    )
    source = MODULE_FILE.read_text(encoding="utf-8")
    # checked at load (module class) and before Apply (the Apply button stays disabled on an older Slicer)
    assert "self.versionProblem = version_problem(slicer.app.majorVersion, slicer.app.minorVersion)" in source
    assert "ready = ready and not version_problem(slicer.app.majorVersion, slicer.app.minorVersion)" in source
