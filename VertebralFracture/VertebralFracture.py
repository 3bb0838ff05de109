"""VertebralFracture: find, measure (Genant) and correct vertebral compression fractures in 3D Slicer.

A thin module file (DESIGN.md section 5): metadata, a widget bound to a ``parameterNodeWrapper``
parameter node, a Logic adapter over :class:`VertebralFractureLib.mrml.logic.VertebralFractureLogic`
(Qt-free, tested in plain pytest) and the self-test. The analysis itself lives in the
``VertebralFractureLib`` package installed beside this file. Heavy imports (torch) happen inside
the analysis, never at module load.
"""

import logging
import os
import shutil
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Annotated, Optional

_HERE = Path(__file__).resolve().parent
if not (_HERE / "VertebralFractureLib").is_dir() and (_HERE.parent / "VertebralFractureLib").is_dir():
    sys.path.insert(0, str(_HERE.parent))  # running from the source tree (module path = VertebralFracture/)

import slicer  # noqa: E402

try:  # the Slicer application (Qt); slicer-core (plain Python, tests) has none of these
    import qt
    import vtk
    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
    from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
    from slicer.ScriptedLoadableModule import (
        ScriptedLoadableModule,
        ScriptedLoadableModuleLogic,
        ScriptedLoadableModuleTest,
        ScriptedLoadableModuleWidget,
    )
    from slicer.util import VTKObservationMixin

    HAVE_SLICER_APP = True
except ImportError:
    import dataclasses

    from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode

    HAVE_SLICER_APP = False
    ScriptedLoadableModuleTest = unittest.TestCase

    ScriptedLoadableModule = type("ScriptedLoadableModule", (), {})
    ScriptedLoadableModuleWidget = type("ScriptedLoadableModuleWidget", (), {})
    VTKObservationMixin = type("VTKObservationMixin", (), {})

    class ScriptedLoadableModuleLogic:  # noqa: D101
        def __init__(self):
            pass

    def Choice(values):  # noqa: D103, N802
        return tuple(values)

    def parameterNodeWrapper(cls):  # noqa: D103, N802
        return dataclasses.dataclass(cls)


from VertebralFractureLib.levels import LEVEL_NAMES  # noqa: E402
from VertebralFractureLib.mrml import logic as core_logic  # noqa: E402
from VertebralFractureLib.mrml.exchange import FILTERS, FORMATS  # noqa: E402
from VertebralFractureLib.mrml.module_info import ACKNOWLEDGEMENT, HELP_TEXT, PAPERS, version_problem  # noqa: E402, F401
from VertebralFractureLib.mrml.results import COLOR_MODES  # noqa: E402
from VertebralFractureLib.mrml.review import SHORTCUTS  # noqa: E402
from VertebralFractureLib.mrml.scenarios import SCENARIOS  # noqa: E402
from VertebralFractureLib.mrml.widget_review import ReviewPanelMixin  # noqa: E402

DEVICES = core_logic.DEVICES


class VertebralFracture(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Vertebral Fracture"
        self.parent.categories = ["Quantification"]
        self.parent.dependencies = ["Markups", "Segmentations", "Tables"]
        self.parent.contributors = ["VertebralFracture developers"]
        self.parent.helpText, self.parent.acknowledgementText = HELP_TEXT, ACKNOWLEDGEMENT
        self.versionProblem = version_problem(slicer.app.majorVersion, slicer.app.minorVersion)
        if self.versionProblem:  # declared minimum (module_info.MINIMUM_SLICER_VERSION), checked at load
            self.parent.helpText = f"<b>{self.versionProblem}</b><br><br>" + self.parent.helpText
            logging.error(self.versionProblem)


@parameterNodeWrapper
class VertebralFractureParameterNode:
    """Module state, saved with the scene.

    inputVolume: the CT or a lateral radiograph (one slice).
    inputSegmentation: optional vertebra segmentation (segments named by level; CT only).
    keypoints / fractureClassifier / voxelMap / abnormality: analyses to run. device: auto, cpu or cuda.
    colorBy: segment colours (grade or abnormality). level / followColumn: the level a selected vertebra
    is given (and whether the others follow) or that a new vertebra gets. exportFormat: export / import format.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    inputSegmentation: vtkMRMLSegmentationNode
    keypoints: bool = True
    fractureClassifier: bool = False
    voxelMap: bool = False
    abnormality: bool = False
    device: Annotated[str, Choice(DEVICES)] = "auto"
    colorBy: Annotated[str, Choice(COLOR_MODES)] = "grade"
    level: Annotated[str, Choice(LEVEL_NAMES)] = "L1"
    followColumn: bool = True
    exportFormat: Annotated[str, Choice(FORMATS)] = "annotations"


class VertebralFractureWidget(ScriptedLoadableModuleWidget, VTKObservationMixin, ReviewPanelMixin):
    """The module panel: inputs, analyses, Apply / Cancel, the Genant table, corrections, export / import.

    Thin: every action calls ``self.logic.core`` (:class:`VertebralFractureLib.mrml.logic.VertebralFractureLogic`)
    and shows its outcome or its error.
    """

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.nodes: Optional[core_logic.ResultNodes] = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None

    def setup(self):
        """Load the .ui file, connect buttons and the parameter node."""
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/VertebralFracture.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        for combo, items in (
            (self.ui.deviceComboBox, DEVICES),
            (self.ui.colorByComboBox, COLOR_MODES),
            (self.ui.levelComboBox, LEVEL_NAMES),
            (self.ui.exportFormatComboBox, FORMATS),
        ):
            if combo.count == 0:
                combo.addItems(list(items))
        self.logic = VertebralFractureLogic()
        self.logic.core.on_result_changed = self._onResultChanged
        self.logic.core.defer = lambda action: qt.QTimer.singleShot(0, action)  # never inside a node's own event
        self.job, self.pollTimer = None, qt.QTimer()
        self.pollTimer.setInterval(200)
        self.pollTimer.connect("timeout()", self.onPoll)
        self.shortcuts = []
        for keys, action, _ in SHORTCUTS:  # active while the module panel (or a child) has the focus
            shortcut = qt.QShortcut(qt.QKeySequence(keys), self.parent)
            shortcut.setContext(qt.Qt.WidgetWithChildrenShortcut)
            shortcut.connect("activated()", lambda action=action: self.onKey(action))
            self.shortcuts.append(shortcut)
        for action in ("previous", "next", "accept", "reject", "undo", "redo"):
            getattr(self.ui, f"{action}Button").connect("clicked(bool)", lambda _=False, a=action: self.onKey(a))
        self.ui.reviewQueueList.connect("currentRowChanged(int)", self.onQueueRow)
        self.ui.statusLabel.text = version_problem(slicer.app.majorVersion, slicer.app.minorVersion)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndImportEvent, self.onSceneImported)
        for button, slot in (
            (self.ui.applyButton, self.onApplyButton),
            (self.ui.cancelButton, self.onCancelButton),
            (self.ui.loadResultsButton, self.onLoadResultsButton),
            (self.ui.updateMeasuresButton, self.onUpdate),
            (self.ui.relabelButton, self.onRelabel),
            (self.ui.addVertebraButton, self.onAddVertebra),
            (self.ui.deleteVertebraButton, self.onDeleteVertebra),
            (self.ui.exportButton, self.onExport),
            (self.ui.importButton, self.onImport),
        ):
            button.connect("clicked(bool)", slot)
        self.ui.resultsTableView.connect("clicked(QModelIndex)", self.onTableClicked)
        self.ui.colorByComboBox.connect("currentTextChanged(QString)", self.onColorBy)
        self.ui.cancelButton.enabled = False
        self.initializeParameterNode()

    def cleanup(self):
        """Called when the application closes and the module widget is destroyed."""
        self.removeObservers()

    def enter(self):
        """Called each time the user opens this module."""
        self.initializeParameterNode()

    def exit(self):
        """Called each time the user opens a different module."""
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        """Forget the parameter node and results of the closing scene."""
        self.setParameterNode(None)
        self.nodes = None
        for nodes in list(self.logic.core.watched.values()):
            self.logic.core.unwatch(nodes)

    def onSceneEndClose(self, caller, event):
        """Make a fresh parameter node once the scene is closed."""
        if self.parent.isEntered:
            self.initializeParameterNode()

    def onSceneImported(self, caller, event):
        """A loaded scene (.mrb): make its results editable again and show the last one."""
        results = self.logic.core.reattach()
        if results:
            self.showNodes(results[-1])

    def initializeParameterNode(self):
        """Use the scene's parameter node; select the first volume when none is selected."""
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            firstVolumeNode = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if firstVolumeNode:
                self._parameterNode.inputVolume = firstVolumeNode

    def setParameterNode(self, inputParameterNode):
        """Bind the widgets (SlicerParameterName properties) to a parameter node."""
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
        self._parameterNode = inputParameterNode
        if self._parameterNode:
            blocked = self.ui.colorByComboBox.blockSignals(True)  # connectGui refills the combo box
            try:
                self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            finally:
                self.ui.colorByComboBox.blockSignals(blocked)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None):
        ready = bool(self._parameterNode and self._parameterNode.inputVolume) and self.job is None
        ready = ready and not version_problem(slicer.app.majorVersion, slicer.app.minorVersion)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = (
            "Analyse the selected CT or radiograph" if ready else "Select an input CT volume or radiograph"
        )
        names = "relabel addVertebra deleteVertebra export updateMeasures previous next accept reject"
        for name in names.split():
            getattr(self.ui, f"{name}Button").enabled = self.nodes is not None
        history = self.nodes.history if self.nodes is not None else None
        for name, can, text in (("undo", "can_undo", "undo_text"), ("redo", "can_redo", "redo_text")):
            enabled = bool(history and getattr(history, can))
            getattr(self.ui, f"{name}Button").enabled = enabled
            getattr(self.ui, f"{name}Button").toolTip = getattr(history, text)() if enabled else ""

    def _progress(self, fraction, message):
        self.ui.progressBar.value = int(round(100 * fraction))
        self.ui.statusLabel.text = message
        slicer.app.processEvents()  # lets the Cancel button be clicked during the analysis

    def onApplyButton(self):
        """Run the analysis: a CT in a background process (polled), a radiograph here (it takes seconds)."""
        p = self._parameterNode
        dependencies = self.logic.ensureDependencies(analysis=True)
        if not dependencies:
            self.ui.statusLabel.text = dependencies.message
            return
        self.ui.logTextEdit.clear()
        with slicer.util.tryWithErrorDisplay("Vertebral fracture analysis failed."):
            if not core_logic.radiograph_bridge.is_radiograph_volume(p.inputVolume):
                python = shutil.which("PythonSlicer") or sys.executable
                folder = tempfile.mkdtemp(prefix="VertebralFracture-")
                self.job = self.logic.core.start_background(
                    p.inputVolume, folder, segmentation_node=p.inputSegmentation, device=p.device, python=python
                )
                self.jobVolume, self.ui.cancelButton.enabled = p.inputVolume, True
                self._checkCanApply()
                self.pollTimer.start()
                return
            # every score is computed, as the CT's background run computes every stage: here the lateral-view classifier
            nodes = self.logic.core.run(p.inputVolume, progress=self._progress, fracture_classifier=True)
            self.showNodes(nodes)

    def onCancelButton(self):
        """Stop the running analysis (the background process, or the in-application run)."""
        if self.job is not None:
            self.job.cancel()
        self.logic.core.cancel()
        self.ui.statusLabel.text = "Cancelling..."

    def onLoadResultsButton(self):
        """Show a results JSON written by ``vertebral-fracture analyze``."""
        path = qt.QFileDialog.getOpenFileName(self.parent, "Load results", "", "Results (*.json)")
        if path:
            with slicer.util.tryWithErrorDisplay("Cannot load these results.", waitCursor=True):
                self.showNodes(self.logic.core.load_results(path, self._parameterNode.inputVolume))

    def _selectedLevel(self):
        row = self.ui.resultsTableView.currentIndex().row() if self.nodes is not None else -1
        if self.nodes is None or not 0 <= row < len(self.nodes.shown.vertebrae):
            self.ui.statusLabel.text = "Select a vertebra (a row of the table) first."
            return None
        return self.nodes.shown.vertebrae[row].label

    def _edit(self, message, action):
        with slicer.util.tryWithErrorDisplay(message):
            action()
            self.ui.statusLabel.text = "Done."

    def onUpdate(self):
        """Recompute the measures from the keypoints now (they also update while dragging)."""
        self._edit(
            "Cannot update the measures from these keypoints.", lambda: self.logic.core.update_from_markups(self.nodes)
        )
        self._onResultChanged(self.nodes)

    def onTableClicked(self, index):
        """Centre the slice views on the vertebra of the clicked row."""
        if self.nodes is not None:
            self.logic.core.jump_to_row(self.nodes, index.row())

    def onRelabel(self):
        """The selected vertebra is the chosen level; the others follow unless unchecked."""
        level = self._selectedLevel()
        if level:
            p = self._parameterNode
            self._edit(
                f"Cannot relabel {level}.",
                lambda: self.logic.core.relabel(self.nodes, level, p.level, follow=p.followColumn),
            )

    def onAddVertebra(self):
        """Place six keypoints (anterior, middle, posterior; superior then inferior) of a new vertebra."""
        level = self._parameterNode.level

        def done(vertebra, error):
            self.ui.statusLabel.text = error or f"{vertebra.label} added."

        with slicer.util.tryWithErrorDisplay(f"Cannot add {level}."):
            self.logic.core.begin_placing(self.nodes, level, done)
            self.ui.statusLabel.text = f"Place the six keypoints of {level}, anterior superior first."

    def onDeleteVertebra(self):
        """Delete the selected vertebra after asking."""
        level = self._selectedLevel()
        if level and slicer.util.confirmOkCancelDisplay(f"Delete {level} (its points, row and segment)?"):
            self._edit(f"Cannot delete {level}.", lambda: self.logic.core.delete_vertebra(self.nodes, level))

    def onColorBy(self, mode):
        """Colour the segments by grade or abnormality (the user's choice only: same mode, nothing done)."""
        if self.nodes is not None and mode in COLOR_MODES and mode != self.nodes.color_by:
            self._edit("Cannot recolour the segments.", lambda: self.logic.core.set_color_mode(self.nodes, mode))

    def onExport(self):
        """Export the annotations; an existing file is only replaced after asking."""
        from VertebralFractureLib.io.atomic import ExistingFileError

        fmt = self._parameterNode.exportFormat
        path = self.askExportPath(fmt)
        if not path:
            return
        with slicer.util.tryWithErrorDisplay("Export failed; no file was changed.", waitCursor=True):
            try:
                written = self.logic.core.export_annotations(self.nodes, path, file_format=fmt)
            except ExistingFileError as error:
                if not slicer.util.confirmOkCancelDisplay(f"{error}.\nReplace it?"):
                    return
                written = self.logic.core.export_annotations(self.nodes, path, file_format=fmt, overwrite=True)
            self.ui.statusLabel.text = "Written: " + ", ".join(str(w) for w in written)

    def askExportPath(self, fmt):
        """The file to export to, from a save dialog ("" when cancelled); the self-test answers it."""
        dialog = qt.QFileDialog(self.parent, "Export annotations", "", FILTERS[fmt])
        dialog.setAcceptMode(qt.QFileDialog.AcceptSave)
        dialog.setOption(qt.QFileDialog.DontConfirmOverwrite, True)  # asked by onExport, for every file written
        return dialog.selectedFiles()[0] if dialog.exec_() and dialog.selectedFiles() else ""

    def onImport(self):
        """Import annotations (or VerSe centroids) of the selected CT."""
        fmt = self._parameterNode.exportFormat
        path = qt.QFileDialog.getOpenFileName(self.parent, "Import annotations", "", FILTERS[fmt])
        if not path:
            return
        with slicer.util.tryWithErrorDisplay("Cannot import this file.", waitCursor=True):
            volume = self._parameterNode.inputVolume
            if fmt == "verse":
                self.logic.core.import_verse_centroids(path, volume)
                self.ui.statusLabel.text = "VerSe centroids imported as a markups node."
            else:
                file_format = "csv" if fmt == "genant_csv" else fmt
                self.showNodes(self.logic.core.import_annotations(path, file_format=file_format, volume=volume))

    def showNodes(self, nodes):
        """Show a result's table and summary."""
        self.nodes = nodes
        self.ui.resultsTableView.setMRMLTableNode(nodes.table)
        self.ui.resultsTableView.selectionModel().connect("currentRowChanged(QModelIndex,QModelIndex)", self.onRow)
        if self._parameterNode is not None and self._parameterNode.colorBy != nodes.color_by:
            self._parameterNode.colorBy = nodes.color_by  # the combo box shows the mode the result uses
        self.ui.progressBar.value = 100
        self.ui.statusLabel.text = "; ".join(nodes.warnings) or "Done."
        self._onResultChanged(nodes)
        self._checkCanApply()

    def _onResultChanged(self, nodes):
        if nodes is self.nodes and nodes is not None:
            self._showQueue()
            self.ui.patientSummaryLabel.text = nodes.summary.GetText() if nodes.summary else ""
            if nodes.last_error:
                self.ui.statusLabel.text = f"Keypoints not folded back: {nodes.last_error}"


class VertebralFractureLogic(ScriptedLoadableModuleLogic):
    """Slicer-side logic: parameter node and dependencies; the work is done by ``self.core``.

    Args:
        scene: the MRML scene (``slicer.mrmlScene`` when None).

    """

    def __init__(self, scene=None):
        ScriptedLoadableModuleLogic.__init__(self)
        self.core = core_logic.VertebralFractureLogic(scene)

    def getParameterNode(self):
        """The module's parameter node, typed."""
        return VertebralFractureParameterNode(super().getParameterNode())

    @staticmethod
    def ensureDependencies(analysis: bool = True):
        """Install missing packages after asking; torch through the PyTorch extension (offered when missing).

        Returns:
            A :class:`~VertebralFractureLib.mrml.dependencies.DependencyStatus`, truthy when the analysis can run.

        """
        from VertebralFractureLib.mrml.dependencies import SlicerTorchInstaller, ensure_dependencies

        u = slicer.util
        return ensure_dependencies(
            u.confirmOkCancelDisplay, u.pip_install, u.errorDisplay, SlicerTorchInstaller(), analysis=analysis
        )


class VertebralFractureTest(ScriptedLoadableModuleTest):
    """Self-test: every scenario of ``VertebralFractureLib.mrml.scenarios`` on a cleared scene.

    One ``test_<scenario>`` method per scenario (added below the class); ``runTest`` runs them all.
    """

    def setUp(self):
        """Clear the scene and make a scratch folder."""
        from VertebralFractureLib.mrml.scene import create_scene

        if HAVE_SLICER_APP:
            slicer.mrmlScene.Clear()
        self.scene = slicer.mrmlScene if HAVE_SLICER_APP else create_scene()
        self.folder = Path(tempfile.mkdtemp(prefix="VertebralFractureTest-"))

    def tearDown(self):
        """Remove the scratch folder (every scenario writes its exports there)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def runTest(self):
        """Run every scenario on a fresh scene, then (in Slicer) drive the panel itself."""
        steps = [lambda n=name: self._scenario(n) for name in SCENARIOS] + [self.test_widget_workflow] * HAVE_SLICER_APP
        for step in steps:
            self.setUp()
            try:
                step()
            finally:
                self.tearDown()

    def test_widget_workflow(self):
        """Through the panel's own controls: Apply on the sample CT, drag, relabel, accept, export (Slicer only)."""
        if not HAVE_SLICER_APP:
            self.skipTest("the module panel needs the Slicer application (Qt)")
        from VertebralFractureLib.mrml.widget_selftest import widget_workflow

        slicer.util.selectModule("VertebralFracture")
        widget_workflow(slicer.util.getModuleWidget("VertebralFracture"), self.scene, self.folder, self.delayDisplay)
        self.delayDisplay("The panel workflow passed")

    def _scenario(self, name):
        say = self.delayDisplay if HAVE_SLICER_APP else (lambda message: None)
        say(f"Scenario {name}")
        SCENARIOS[name](self.scene, self.folder)
        say(f"Scenario {name} passed")


def _scenario_test(name):
    def test(self):
        self._scenario(name)

    test.__name__ = f"test_{name}"
    test.__doc__ = (SCENARIOS[name].__doc__ or name).strip().splitlines()[0]
    return test


for _name in SCENARIOS:
    setattr(VertebralFractureTest, f"test_{_name}", _scenario_test(_name))


if __name__ == "__main__" and not HAVE_SLICER_APP:  # pragma: no cover
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    unittest.main()
