"""VertebralFracture: find, measure (Genant) and correct vertebral compression fractures in 3D Slicer.

A thin module file (DESIGN.md section 5): metadata, a widget bound to a ``parameterNodeWrapper``
parameter node, a Logic adapter over :class:`VertebralFractureLib.mrml.logic.VertebralFractureLogic`
(Qt-free, tested in plain pytest) and the self-test. The analysis itself lives in the
``VertebralFractureLib`` package installed beside this file. Heavy imports (torch) happen inside
the analysis, never at module load.
"""

import os
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

    class ScriptedLoadableModule:  # noqa: D101
        pass

    class ScriptedLoadableModuleWidget:  # noqa: D101
        pass

    class VTKObservationMixin:  # noqa: D101
        pass

    class ScriptedLoadableModuleLogic:  # noqa: D101
        def __init__(self):
            pass

    def Choice(values):  # noqa: D103, N802
        return tuple(values)

    def parameterNodeWrapper(cls):  # noqa: D103, N802
        return dataclasses.dataclass(cls)


from VertebralFractureLib.mrml import logic as core_logic  # noqa: E402

DEVICES = core_logic.DEVICES
PAPERS = (
    'Husseini M, Sekuboyina A, et al. "Grading loss: a fracture grade-based metric loss for vertebral fracture '
    'detection." MICCAI 2020 (fracture classifier).',
    'Pisov M, Kondratenko V, et al. "Keypoints localization for joint vertebra detection and fracture severity '
    'quantification." MICCAI 2020 (centre-line, six keypoints, Genant measures).',
    'Nicolaes J, Raeymaeckers S, et al. "Detection of vertebral fractures in CT using 3D convolutional neural '
    'networks." 2019 (voxel fracture map).',
    'Botros M, Rutten M, van Laarhoven T, Lessmann N. "A vertebral compression fracture score based on deep '
    'generative contextual modeling." MIDL 2022 (shape abnormality 0-100).',
    'Gartland C, Koromani F, Healy J, Roshchupkin G, Rivadeneira F, Redmond SJ. "Tailoring loss to boost vertebra '
    'centroid localization and classification in sagittal spinal radiographs." MIDL 2025 (radiograph centroids).',
)


class VertebralFracture(ScriptedLoadableModule):
    """Module metadata."""

    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Vertebral Fracture"
        self.parent.categories = ["Quantification"]
        self.parent.dependencies = ["Markups", "Segmentations", "Tables"]
        self.parent.contributors = ["VertebralFracture developers"]
        self.parent.helpText = (
            "Finds vertebrae in a CT, places six keypoints per vertebral body, measures the anterior, middle and "
            "posterior heights and grades osteoporotic compression fractures the Genant way (G = min/max height). "
            "Drag keypoints to correct them: the measures and the table update. "
            "See docs/slicer_module.md in the extension's repository.<br><br>Methods:<ul>"
            + "".join(f"<li>{paper}</li>" for paper in PAPERS)
            + "</ul>Not for clinical use."
        )
        self.parent.acknowledgementText = (
            "Built on 3D Slicer, SimpleITK and PyTorch. Methods from the papers listed in the help; test data from "
            "VerSe (Sekuboyina et al.) and TotalSegmentator (Wasserthal et al.) under their licences."
        )


@parameterNodeWrapper
class VertebralFractureParameterNode:
    """Module state, saved with the scene.

    inputVolume: the CT. inputSegmentation: optional vertebra segmentation (segments named by level).
    keypoints / fractureClassifier / voxelMap / abnormality: analyses to run. device: auto, cpu or cuda.
    """

    inputVolume: vtkMRMLScalarVolumeNode
    inputSegmentation: vtkMRMLSegmentationNode
    keypoints: bool = True
    fractureClassifier: bool = False
    voxelMap: bool = False
    abnormality: bool = False
    device: Annotated[str, Choice(DEVICES)] = "auto"


class VertebralFractureWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    """The module panel: inputs, analyses, Apply / Cancel, progress and the Genant table."""

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
        if self.ui.deviceComboBox.count == 0:
            self.ui.deviceComboBox.addItems(list(DEVICES))
        self.logic = VertebralFractureLogic()
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApplyButton)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancelButton)
        self.ui.loadResultsButton.connect("clicked(bool)", self.onLoadResultsButton)
        self.ui.updateMeasuresButton.connect("clicked(bool)", self.onKeypointsEdited)
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
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)

    def onSceneStartClose(self, caller, event):
        """Forget the parameter node and results of the closing scene."""
        self.setParameterNode(None)
        self.nodes = None

    def onSceneEndClose(self, caller, event):
        """Make a fresh parameter node once the scene is closed."""
        if self.parent.isEntered:
            self.initializeParameterNode()

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
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self._checkCanApply)
            self._checkCanApply()

    def _checkCanApply(self, caller=None, event=None):
        ready = bool(self._parameterNode and self._parameterNode.inputVolume)
        self.ui.applyButton.enabled = ready
        self.ui.applyButton.toolTip = "Analyse the selected CT" if ready else "Select an input CT volume"

    def _progress(self, fraction, message):
        self.ui.progressBar.value = int(round(100 * fraction))
        self.ui.statusLabel.text = message
        slicer.app.processEvents()  # lets the Cancel button be clicked during the analysis

    def onApplyButton(self):
        """Run the analysis on the selected volume."""
        p = self._parameterNode
        if not self.logic.ensureDependencies(analysis=True):
            self.ui.statusLabel.text = "Required Python packages are missing; nothing was run."
            return
        from VertebralFractureLib.progress import Cancelled

        self.ui.applyButton.enabled, self.ui.cancelButton.enabled = False, True
        try:
            with slicer.util.tryWithErrorDisplay("Vertebral fracture analysis failed.", waitCursor=True):
                try:
                    nodes = self.logic.core.run(
                        p.inputVolume,
                        segmentation_node=p.inputSegmentation,
                        keypoints=p.keypoints,
                        fracture_classifier=p.fractureClassifier,
                        voxel_map=p.voxelMap,
                        abnormality=p.abnormality,
                        device=p.device,
                        progress=self._progress,
                    )
                except Cancelled:
                    self.ui.statusLabel.text = "Cancelled; the scene was not changed."
                    return
                self.showNodes(nodes)
        finally:
            self.ui.cancelButton.enabled = False
            self._checkCanApply()

    def onCancelButton(self):
        """Stop the running analysis at its next progress report."""
        self.logic.core.cancel()
        self.ui.statusLabel.text = "Cancelling..."

    def onLoadResultsButton(self):
        """Show a results JSON written by ``vertebral-fracture analyze``."""
        path = qt.QFileDialog.getOpenFileName(self.parent, "Load results", "", "Results (*.json)")
        if path:
            with slicer.util.tryWithErrorDisplay("Cannot load these results.", waitCursor=True):
                self.showNodes(self.logic.core.show_result(self.logic.core.load_result(path), name=Path(path).stem))

    def onKeypointsEdited(self, caller=None, event=None):
        """Recompute the measures after keypoints were dragged."""
        if self.nodes is not None:
            with slicer.util.tryWithErrorDisplay("Cannot update the measures from these keypoints."):
                self.logic.core.update_from_markups(self.nodes)
                self._showSummary()

    def showNodes(self, nodes):
        """Show a result's table and summary; watch its keypoints for edits."""
        if self.nodes is not None and self.nodes.keypoints is not None:
            self.removeObserver(
                self.nodes.keypoints, slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent, self.onKeypointsEdited
            )
        self.nodes = nodes
        self.addObserver(nodes.keypoints, slicer.vtkMRMLMarkupsNode.PointEndInteractionEvent, self.onKeypointsEdited)
        self.ui.resultsTableView.setMRMLTableNode(nodes.table)
        self.ui.progressBar.value = 100
        self.ui.statusLabel.text = "; ".join(nodes.warnings) or "Done."
        self._showSummary()

    def _showSummary(self):
        summary = self.nodes.result.patient_summary()
        fractured = ", ".join(summary["fractured_levels"]) or "none"
        self.ui.patientSummaryLabel.text = (
            f"{summary['n_vertebrae']} vertebrae; fractured (grade >= 1): {fractured}; "
            f"highest grade {summary['max_grade']}"
        )


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
    def ensureDependencies(analysis: bool = True) -> bool:
        """Install missing Python packages (PyTorch through the PyTorch extension) after asking.

        Returns:
            True when everything needed is importable.

        """
        import importlib.util

        needed = (("skimage", "scikit-image"), ("scipy", "scipy"))
        missing = [pip for module, pip in needed if importlib.util.find_spec(module) is None]
        if missing:
            if not slicer.util.confirmOkCancelDisplay(f"VertebralFracture needs {', '.join(missing)}. Install now?"):
                return False
            slicer.util.pip_install(" ".join(missing))
        if analysis and importlib.util.find_spec("torch") is None:
            try:
                import PyTorchUtils
            except ImportError:
                slicer.util.errorDisplay("Install the PyTorch extension (Extensions Manager) to run the analysis.")
                return False
            if PyTorchUtils.PyTorchUtilsLogic().installTorch(askConfirmation=True) is None:
                return False
        return True


class VertebralFractureTest(ScriptedLoadableModuleTest):
    """Self-test: the MRML bridge scenarios of ``VertebralFractureLib.mrml.scenarios`` on a cleared scene."""

    scene = None

    def setUp(self):
        """Clear the scene and make a scratch folder."""
        if HAVE_SLICER_APP:
            slicer.mrmlScene.Clear()
            self.scene = slicer.mrmlScene
        else:
            from VertebralFractureLib.mrml.scene import create_scene

            self.scene = create_scene()
        self.folder = Path(tempfile.mkdtemp(prefix="VertebralFractureTest-"))

    def runTest(self):
        """Run every scenario on a fresh scene."""
        from VertebralFractureLib.mrml.scenarios import SCENARIOS

        for name in SCENARIOS:
            self.setUp()
            getattr(self, f"test_{name}")()

    def _scenario(self, name):
        from VertebralFractureLib.mrml.scenarios import SCENARIOS

        if HAVE_SLICER_APP:
            self.delayDisplay(f"Scenario {name}")
        SCENARIOS[name](self.scene, self.folder)
        if HAVE_SLICER_APP:
            self.delayDisplay(f"Scenario {name} passed")

    def test_volume_geometry(self):
        """Oblique volume: same patient point in the node and in SimpleITK."""
        self._scenario("volume_geometry")

    def test_markups_round_trip(self):
        """Markups nodes <-> .mrk.json with the storage node and the library."""
        self._scenario("markups_round_trip")

    def test_segmentation_round_trip(self):
        """Named, coloured segments through .seg.nrrd."""
        self._scenario("segmentation_round_trip")

    def test_table_types(self):
        """Typed Genant table columns."""
        self._scenario("table_types")

    def test_keypoint_edit(self):
        """Dragging a keypoint recomputes the grade."""
        self._scenario("keypoint_edit")


if __name__ == "__main__" and not HAVE_SLICER_APP:  # pragma: no cover
    os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    unittest.main()
