"""The widget's slots without Qt: the defects of issue #23 stay fixed.

The widget class of ``VertebralFracture.py`` is importable under slicer-core, but its ``setup()`` needs
Qt; these tests call its slots on a stand-in ``self`` whose controls are mocks (``unittest.mock``),
with the real Qt-free logic where one is needed.
"""

from __future__ import annotations

from types import SimpleNamespace
from unittest import mock

import pytest


@pytest.fixture
def slicer_app(module, monkeypatch):
    """``slicer.app`` of a Slicer 5.6 (slicer-core has none)."""
    app = SimpleNamespace(majorVersion=5, minorVersion=6, processEvents=lambda: None)
    monkeypatch.setattr(module.slicer, "app", app, raising=False)
    return app


class Combo:
    """A combo box that says whether its signals were blocked when the parameter node refilled it."""

    def __init__(self):
        self.blocked = False

    def blockSignals(self, block):  # noqa: N802 (Qt name)
        before, self.blocked = self.blocked, block
        return before


def test_connect_gui_refills_the_colour_combo_with_its_signals_blocked(module, monkeypatch):
    import vtk

    monkeypatch.setattr(module, "vtk", vtk, raising=False)
    combo = Combo()
    seen = []

    class Parameters:
        inputVolume = None

        def connectGui(self, ui):  # noqa: N802
            seen.append(combo.blocked)  # connectGui sets the combo box: a currentTextChanged would recolour
            return "tag"

    panel = SimpleNamespace(_parameterNode=None, ui=SimpleNamespace(colorByComboBox=combo),
                            addObserver=mock.Mock(), _checkCanApply=mock.Mock())
    module.VertebralFractureWidget.setParameterNode(panel, Parameters())
    assert seen == [True] and combo.blocked is False and panel._parameterNodeGuiTag == "tag"


def test_colour_combo_recolours_only_on_a_real_change(module):
    core = mock.Mock()
    panel = SimpleNamespace(nodes=SimpleNamespace(color_by="abnormality"), logic=SimpleNamespace(core=core))
    panel._edit = lambda message, action: action()
    module.VertebralFractureWidget.onColorBy(panel, "abnormality")  # the refill re-selecting the result's mode
    core.set_color_mode.assert_not_called()
    module.VertebralFractureWidget.onColorBy(panel, "grade")
    core.set_color_mode.assert_called_once_with(panel.nodes, "grade")


@pytest.mark.parametrize("abnormality, expected", [(True, "abnormality"), (False, "grade")])
def test_apply_sets_the_colour_mode_it_showed(module, slicer_app, monkeypatch, abnormality, expected):
    """The background run's end colours by the Apply flags, and the combo box follows the shown mode."""
    monkeypatch.setattr(module.slicer.util, "tryWithErrorDisplay", lambda *a, **k: mock.MagicMock(), raising=False)
    nodes = SimpleNamespace(color_by=None, table="table", warnings=[])
    core = mock.Mock()

    def finish(job, volume, color_by):
        nodes.color_by = color_by
        return nodes

    core.finish_background.side_effect = finish
    report = SimpleNamespace(state="done", fraction=1.0, message="done", log=["[100.0 %] done"], error="")
    parameters = SimpleNamespace(abnormality=abnormality, colorBy="grade" if abnormality else "abnormality")
    panel = SimpleNamespace(job=mock.Mock(), jobVolume="CT", ui=mock.MagicMock(), pollTimer=mock.Mock(),
                            logic=SimpleNamespace(core=core), _parameterNode=parameters, nodes=None,
                            _checkCanApply=mock.Mock(), _onResultChanged=mock.Mock(), onRow=mock.Mock())
    panel.job.poll.return_value = report
    panel.showNodes = lambda shown: module.VertebralFractureWidget.showNodes(panel, shown)
    module.VertebralFractureWidget.onPoll(panel)
    core.finish_background.assert_called_once()
    assert core.finish_background.call_args.kwargs == {"color_by": expected}
    assert parameters.colorBy == expected and panel.nodes is nodes and panel.job is None
    panel.pollTimer.stop.assert_called_once()


def test_a_cancelled_background_run_touches_nothing(module, slicer_app):
    core = mock.Mock()
    report = SimpleNamespace(state="cancelled", fraction=0.4, message="detecting", log=[], error="")
    panel = SimpleNamespace(job=mock.Mock(), ui=mock.MagicMock(), pollTimer=mock.Mock(), nodes=None,
                            logic=SimpleNamespace(core=core), _checkCanApply=mock.Mock())
    panel.job.poll.return_value = report
    module.VertebralFractureWidget.onPoll(panel)
    core.finish_background.assert_not_called()
    assert panel.ui.statusLabel.text == "Cancelled; the scene was not changed." and panel.job is None


@pytest.mark.parametrize("version, enabled", [((5, 6), True), ((5, 4), False)])
def test_apply_is_disabled_on_a_slicer_older_than_declared(module, slicer_app, version, enabled):
    slicer_app.majorVersion, slicer_app.minorVersion = version
    panel = SimpleNamespace(_parameterNode=SimpleNamespace(inputVolume="CT"), job=None, nodes=None,
                            ui=mock.MagicMock())
    module.VertebralFractureWidget._checkCanApply(panel)
    assert panel.ui.applyButton.enabled is enabled


def test_apply_reports_the_dependency_outcome_and_runs_nothing(module, slicer_app):
    from VertebralFractureLib.mrml.dependencies import DependencyStatus

    message = "The PyTorch extension is installed: restart Slicer, then press Apply again."
    logic = mock.Mock()
    logic.ensureDependencies.return_value = DependencyStatus(False, message, restart=True)
    panel = SimpleNamespace(_parameterNode=SimpleNamespace(inputVolume="CT"), logic=logic, ui=mock.MagicMock())
    module.VertebralFractureWidget.onApplyButton(panel)
    assert panel.ui.statusLabel.text == message
    logic.core.start_background.assert_not_called()
    logic.core.run.assert_not_called()


def test_apply_on_a_radiograph_runs_it_here_with_the_lateral_view_classifier(module, slicer_app, monkeypatch):
    """A radiograph is analysed in the application with every score, as a CT's background run computes them all."""
    from VertebralFractureLib.mrml.dependencies import DependencyStatus

    monkeypatch.setattr(module.slicer.util, "tryWithErrorDisplay", lambda *a, **k: mock.MagicMock(), raising=False)
    monkeypatch.setattr(module.core_logic.radiograph_bridge, "is_radiograph_volume", lambda volume: True)
    logic = mock.Mock()
    logic.ensureDependencies.return_value = DependencyStatus(True, "")
    panel = SimpleNamespace(_parameterNode=SimpleNamespace(inputVolume="film"), logic=logic, ui=mock.MagicMock(),
                            showNodes=mock.Mock(), _progress=mock.Mock())
    module.VertebralFractureWidget.onApplyButton(panel)
    logic.core.start_background.assert_not_called()
    logic.core.run.assert_called_once_with("film", progress=panel._progress, fracture_classifier=True)
    panel.showNodes.assert_called_once_with(logic.core.run.return_value)


def test_export_asks_for_a_path_then_writes(module, slicer_app, monkeypatch, mrml_scene, tmp_path):
    """Export goes through ``askExportPath`` (the dialog; the Slicer self-test answers it) and the real logic."""
    from VertebralFractureLib.io.csv_tables import read_genant_csv
    from VertebralFractureLib.mrml.logic import VertebralFractureLogic
    from VertebralFractureLib.mrml.scenarios import review_result

    monkeypatch.setattr(module.slicer.util, "tryWithErrorDisplay", lambda *a, **k: mock.MagicMock(), raising=False)
    core = VertebralFractureLogic(mrml_scene)
    nodes = core.show_result(review_result(), name="r")
    core.accept(nodes, "L2", reviewer="Dr Who")
    path = tmp_path / "genant.csv"
    panel = SimpleNamespace(_parameterNode=SimpleNamespace(exportFormat="genant_csv"), nodes=nodes,
                            logic=SimpleNamespace(core=core), ui=mock.MagicMock(),
                            askExportPath=lambda fmt: str(path) if fmt == "genant_csv" else "")
    module.VertebralFractureWidget.onExport(panel)
    assert panel.ui.statusLabel.text == f"Written: {path}"
    assert [(r["level"], r["review"], r["reviewed_by"]) for r in read_genant_csv(path) if r["review"]] == [
        ("L2", "accepted", "Dr Who")
    ]
    panel.askExportPath = lambda fmt: ""  # dialog cancelled: nothing written, nothing said
    panel.ui.statusLabel.text = "unchanged"
    path.unlink()
    module.VertebralFractureWidget.onExport(panel)
    assert not path.exists() and panel.ui.statusLabel.text == "unchanged"
