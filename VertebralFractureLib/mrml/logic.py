"""The Slicer module's logic without Qt: scene nodes in, pipeline, scene nodes out.

``VertebralFracture/VertebralFracture.py`` wraps :class:`VertebralFractureLogic` in a
``ScriptedLoadableModuleLogic``; tests drive this class directly on a slicer-core scene. It only
adapts: volume and segmentation nodes become SimpleITK images, the library's
:func:`VertebralFractureLib.pipeline.analyze` (or an injected replacement) does the work, and the
:class:`~VertebralFractureLib.pipeline.Analysis` (or a plain :class:`SpineResult`) comes back as
scene nodes grouped under the input volume: keypoints and centroids markups, the "Genant" table,
the patient summary, a segmentation coloured by grade or abnormality with its colour legend, and
the straightened mid-sagittal image (:class:`~VertebralFractureLib.mrml.results.ResultNodes`).
A one-slice volume node is a lateral radiograph: :meth:`VertebralFractureLogic.run` then calls
:func:`VertebralFractureLib.radiograph.analyze.analyze_radiograph`, and the 2D result (frame
``"pixel"``) is shown on that volume (:mod:`.radiographs`).
Corrections (:mod:`.editing`), export / import (:mod:`.exchange`) and scene bundles
(:mod:`.bundle`) are mixed in.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

import numpy as np

from ..levels import UnknownLevelError, label_from_level, normalise_level
from ..schema import SpineResult
from . import display
from . import markups as markups_bridge
from . import radiographs as radiograph_bridge
from . import segmentations as segmentation_bridge
from . import tables as table_bridge
from .editing import EditingMixin
from .exchange import ExchangeMixin
from .results import COLOR_MODES, ResultNodes, find_results, write_store
from .review import ReviewMixin
from .scene import resolve_scene
from .volumes import DicomDatabase, dicom_file_of, geometry_of_volume, image_from_volume

PathLike = Union[str, Path]
ProgressCallback = Callable[[float, str], None]

#: Module analysis flags -> names of the pipeline's optional stages (see ``pipeline.default_stages``).
EXTRA_STAGE_FLAGS = {
    "fractureClassifier": "classifier",
    "voxelMap": "voxel_map",
    "abnormality": "abnormality",
}
DEVICES = ("auto", "cpu", "cuda")


def level_in_name(name: str) -> Optional[str]:
    """The level a segment name mentions: ``"L1"``, ``"vertebrae_L1"`` (TotalSegmentator), ``"T12 body"``."""
    for token in re.split(r"[^A-Za-z0-9]+", name):
        if token and not token.isdigit():
            try:
                return normalise_level(token)
            except UnknownLevelError:
                continue
    return None


def segment_label_values(segmentation_node) -> Dict[str, int]:
    """Segment ID -> VerSe label, from the level its name mentions, else its own label value."""
    values = {}
    for info in segmentation_bridge.segment_info(segmentation_node):
        level = level_in_name(str(info["name"]))
        values[str(info["id"])] = label_from_level(level) if level else int(info["label"])
    return values


class VertebralFractureLogic(EditingMixin, ExchangeMixin, ReviewMixin):
    """Runs the analysis on scene nodes and shows, corrects, exports and reloads its results.

    Args:
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer when None).
        analyze: the analysis function ``analyze(image, options, progress) -> Analysis``;
            default :func:`VertebralFractureLib.pipeline.analyze` (imported on first use).
        analyze_radiograph: the radiograph analysis
            ``analyze_radiograph(image, progress, pixel_spacing=...) -> Analysis``; default
            :func:`VertebralFractureLib.radiograph.analyze.analyze_radiograph`.
        dicom_database: where the DICOM files of volumes loaded by Slicer's DICOM module are found (their Slice
            Thickness, the plane a radiograph's header names); default ``slicer.dicomDatabase``.

    """

    def __init__(
        self,
        scene=None,
        analyze: Optional[Callable[..., Any]] = None,
        analyze_radiograph: Optional[Callable[..., Any]] = None,
        dicom_database: Optional[DicomDatabase] = None,
    ):
        self.scene = resolve_scene(scene)
        self._analyze = analyze
        self._analyze_radiograph = analyze_radiograph
        self._dicom_database = dicom_database
        self.cancel_event = threading.Event()
        self.on_result_changed = None

    # ------------------------------------------------------------------ analysis
    def options(
        self,
        *,
        keypoints: bool = True,
        fracture_classifier: bool = False,
        voxel_map: bool = False,
        abnormality: bool = False,
        device: str = "auto",
        segmentation=None,
    ):
        """The pipeline's ``AnalysisOptions`` for the module's flags.

        Raises:
            ValueError: for an unknown device.

        """
        from ..pipeline import AnalysisOptions

        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        flags = {"fractureClassifier": fracture_classifier, "voxelMap": voxel_map, "abnormality": abnormality}
        stages = tuple(EXTRA_STAGE_FLAGS[name] for name, on in flags.items() if on)
        return AnalysisOptions(
            keypoints=keypoints, masks=True, extra_stages=stages, device=device, segmentation=segmentation
        )

    def segmentation_image(self, segmentation_node, volume_node):
        """The user's segmentation as a VerSe label image on the volume's grid (SimpleITK)."""
        from ..io.images import image_from_array

        values = segment_label_values(segmentation_node)
        exported = segmentation_bridge.labelmap_from_segmentation(segmentation_node, volume_node, list(values), values)
        return image_from_array(exported, geometry_of_volume(volume_node))

    def run(
        self,
        volume_node,
        *,
        segmentation_node=None,
        keypoints: bool = True,
        fracture_classifier: bool = False,
        voxel_map: bool = False,
        abnormality: bool = False,
        device: str = "auto",
        progress: Optional[ProgressCallback] = None,
        name: str = "",
    ) -> ResultNodes:
        """Analyse a CT volume node (or a lateral radiograph) and show the result in the scene.

        Nothing is added to the scene before the analysis has finished, so a failed or cancelled
        run leaves the scene, earlier results and their corrections as they were. A one-slice
        volume is a radiograph and goes to :meth:`run_radiograph` (the classifier has a lateral-view form there;
        the other CT-only options are ignored, with a warning).

        Args:
            volume_node: the CT (scalar volume node, Hounsfield units) or a radiograph (one slice).
            segmentation_node: optional vertebra segmentation (segments named by level, e.g. from
                TotalSegmentator) used for the masks instead of the drawn ones.
            keypoints: detect vertebrae and keypoints.
            fracture_classifier: run the fracture classifier stage (Husseini et al. 2020).
            voxel_map: run the voxel fracture map stage (Nicolaes et al. 2019).
            abnormality: run the shape abnormality stage (Botros et al. 2022); segments are then coloured by it.
            device: ``auto``, ``cpu`` or ``cuda``.
            progress: receives (fraction 0-1, message).
            name: prefix of the output node names (default: the volume's name).

        Raises:
            ValueError: for a missing volume node.
            Cancelled: when :meth:`cancel` was called during the run.

        """
        from ..progress import Progress

        if volume_node is None:
            raise ValueError("select an input CT volume or radiograph")
        if radiograph_bridge.is_radiograph_volume(volume_node):
            ignored = [
                flag
                for flag, on in (
                    ("the segmentation", segmentation_node is not None),
                    ("the voxel fracture map", voxel_map),
                    ("the abnormality score", abnormality),
                )
                if on
            ]
            nodes = self.run_radiograph(volume_node, progress=progress, name=name,
                                        fracture_classifier=fracture_classifier)
            if ignored:
                nodes.warnings.append(f"not used for a radiograph (CT only): {', '.join(ignored)}")
            return nodes
        self.cancel_event.clear()
        segmentation = self.segmentation_image(segmentation_node, volume_node) if segmentation_node else None
        options = self.options(
            keypoints=keypoints,
            fracture_classifier=fracture_classifier,
            voxel_map=voxel_map,
            abnormality=abnormality,
            device=device,
            segmentation=segmentation,
        )
        analyze = self._analyze
        if analyze is None:
            from ..pipeline import analyze
        image = image_from_volume(volume_node, self._dicom_database)
        analysis = analyze(image, options, Progress(progress, self.cancel_event))
        return self.show_analysis(
            analysis, volume=volume_node, name=name or volume_node.GetName(), color_by=self._color_mode(abnormality)
        )

    def run_radiograph(
        self,
        volume_node,
        *,
        pixel_spacing: Optional[tuple] = None,
        progress: Optional[ProgressCallback] = None,
        name: str = "",
        fracture_classifier: bool = True,
    ) -> ResultNodes:
        """Analyse a lateral radiograph (a one-slice volume node) and show the 2D result on it.

        The image is ``array[0, row, column]`` of the node (row 0 superior, column 0 anterior).
        The pixel spacing is the node's, unless it is exactly 1 x 1 mm (what Slicer gives a PNG or
        JPEG without a physical size): the analysis then estimates it from the vertebrae (warning).

        Args:
            volume_node: the radiograph.
            pixel_spacing: ``(column mm, row mm)`` overriding the node's.
            progress: receives (fraction 0-1, message).
            name: prefix of the output node names (default: the volume's name).
            fracture_classifier: run the lateral-view fracture classifier
                (:mod:`VertebralFractureLib.radiograph.fracture`).

        Raises:
            ValueError: for a missing node or one that is not a single 2D image.
            InputError: for an image the radiograph analysis refuses, and for a picture loaded from a DICOM file
                whose header says it is not a lateral view (:mod:`VertebralFractureLib.radiograph.view_plane`).
            Cancelled: when :meth:`cancel` was called during the run.

        """
        from ..progress import Progress
        from ..radiograph.view_plane import LATERAL, not_lateral, read_header_view
        from ..validation import InputError

        if volume_node is None:
            raise ValueError("select an input radiograph")
        # the node's pixels carry no header; its DICOM file does: a frontal or oblique film is refused as the command
        # line refuses it, and the facing it names is used (the node keeps the file's rows and columns)
        source = dicom_file_of(volume_node, self._dicom_database)
        view = read_header_view(source) if source else None
        if view is not None and view.plane != LATERAL:
            raise InputError(not_lateral(volume_node.GetName(), view))
        image = radiograph_bridge.radiograph_array(volume_node)
        if pixel_spacing is None:
            spacing = radiograph_bridge.volume_pixel_spacing(volume_node)
            pixel_spacing = None if np.allclose(spacing, (1.0, 1.0), atol=1e-9) else spacing
        self.cancel_event.clear()
        analyze = self._analyze_radiograph
        if analyze is None:
            from ..radiograph.analyze import analyze_radiograph as analyze
        told = {"facing": view.facing} if view is not None and view.facing else {}
        analysis = analyze(image, Progress(progress, self.cancel_event), pixel_spacing=pixel_spacing,
                           **({} if fracture_classifier else {"fracture_model": False}), **told)
        analysis.result.input["path"] = volume_node.GetName()
        if view is not None:
            analysis.result.input["view_plane"] = view.describe()
        if told:
            analysis.result.input["facing_source"] = view.tag
        return self.show_analysis(analysis, volume=volume_node, name=name or volume_node.GetName(), color_by="grade")

    def cancel(self) -> None:
        """Ask a running analysis to stop at its next progress report."""
        self.cancel_event.set()

    # ------------------------------------------------------------------ analysis in a background process
    def start_background(
        self,
        volume_node,
        folder: PathLike,
        *,
        segmentation_node=None,
        device: str = "auto",
        python: Optional[str] = None,
        input_path: Optional[PathLike] = None,
    ):
        """Start ``vertebral-fracture analyze`` on a CT volume node in a child process (returns at once).

        The volume (and the optional segmentation, as a VerSe label image) is written to ``folder``
        unless ``input_path`` names the file it was loaded from; the outputs go to ``folder/out``.
        Nothing is added to the scene: poll the returned job, then call :meth:`finish_background`
        on the main thread. The command line runs every stage (classifier, voxel map, abnormality).

        Raises:
            ValueError: for a missing volume, an unknown device or a radiograph (run those with :meth:`run`).

        """
        import SimpleITK as sitk

        from .background import BackgroundAnalysis

        if volume_node is None:
            raise ValueError("select an input CT volume")
        if radiograph_bridge.is_radiograph_volume(volume_node):
            raise ValueError("a radiograph is analysed in the application (run), not in the background")
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if input_path is None:
            input_path = folder / "input.nrrd"
            sitk.WriteImage(image_from_volume(volume_node), str(input_path), True)
        labels = None
        if segmentation_node is not None:
            labels = folder / "segmentation_input.nrrd"
            sitk.WriteImage(self.segmentation_image(segmentation_node, volume_node), str(labels), True)
        return BackgroundAnalysis(input_path, folder / "out", device=device, segmentation=labels, python=python).start()

    def finish_background(self, job, volume_node, *, name: str = "", color_by: str = "grade") -> ResultNodes:
        """Show the outputs of a finished background run on its volume (main thread; checked geometry).

        Raises:
            RuntimeError: if the run did not finish successfully (nothing is added then).
            GeometryMismatchError: if the outputs do not belong to the volume.

        """
        import SimpleITK as sitk

        report = job.poll()
        if report.state != "done":
            raise RuntimeError(f"the analysis {report.state}: {report.error or report.message}")
        results, segmentation = job.outputs()
        result = self.load_result(results)
        labels = None
        if segmentation.is_file():
            labels = sitk.ReadImage(str(segmentation))
            if labels.GetNumberOfComponentsPerPixel() != 1 or labels.GetDimension() != 3:
                labels = None  # overlapping segments: the table and markups are enough
        nodes = self.show_result(
            result, labels=labels, volume=volume_node, name=name or volume_node.GetName(), color_by=color_by
        )
        nodes.warnings = list(result.warnings)
        return nodes

    @staticmethod
    def _color_mode(abnormality: bool) -> str:
        return "abnormality" if abnormality else "grade"

    # ------------------------------------------------------------------ results in the scene
    @staticmethod
    def load_result(path: PathLike) -> SpineResult:
        """Read a results JSON written by the library (``vertebral-fracture analyze``).

        Raises:
            FileNotFoundError: if the file does not exist.
            SchemaError: if it is not a results document.

        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such results file")
        return SpineResult.from_json(path.read_text(encoding="utf-8"))

    def load_results(self, path: PathLike, volume=None, *, name: str = "") -> ResultNodes:
        """Show a results JSON of ``vertebral-fracture analyze`` on ``volume`` (checked to be its image).

        Raises:
            FileNotFoundError / SchemaError: see :meth:`load_result`.
            GeometryMismatchError: if the result was made on another image; nothing is added then.

        """
        from .geometry_check import check_geometry

        result = self.load_result(path)
        check_geometry(result, volume, Path(path).name)
        return self.show_result(result, volume=volume, name=name or Path(path).stem, check=False)

    def show_analysis(self, analysis, *, volume=None, name: str = "", color_by: Optional[str] = None) -> ResultNodes:
        """Show a pipeline ``Analysis``: its result, body labels and straightened mid-sagittal image.

        For a radiograph (frame pixel) the image is the radiograph itself: shown as a new volume
        (:func:`.radiographs.radiograph_volume`) when no ``volume`` is given.
        """
        result = analysis.result
        if color_by is None:
            color_by = "abnormality" if any(v.abnormality is not None for v in result.vertebrae) else "grade"
        if result.frame == "pixel":
            image = getattr(analysis, "image", None)
            if not isinstance(image, np.ndarray) or image.ndim != 2:
                image = None
            nodes = self.show_result(result, volume=volume, name=name, color_by=color_by, radiograph=image)
            nodes.warnings = list(result.warnings)
            return nodes
        straightened = None
        if getattr(analysis, "mid_sagittal", None) is not None:
            straightened = (analysis.mid_sagittal, getattr(analysis, "mid_spacing", (1.0, 1.0)))
        nodes = self.show_result(
            result,
            labels=getattr(analysis, "labels", None),
            volume=volume,
            name=name,
            color_by=color_by,
            straightened=straightened,
        )
        nodes.warnings = list(result.warnings)
        return nodes

    def show_result(
        self,
        result: SpineResult,
        *,
        labels=None,
        volume=None,
        name: str = "",
        nodes: Optional[ResultNodes] = None,
        color_by: str = "grade",
        straightened=None,
        radiograph: Optional[np.ndarray] = None,
        check: bool = True,
    ) -> ResultNodes:
        """Create (or refill) the nodes of a result and start following keypoint edits.

        A 2D result (frame pixel) is placed on ``volume`` when that is a one-slice volume (its
        IJK -> RAS maps the pixels), else on a radiograph volume made from ``radiograph``, else
        on the plane such a volume would have (:mod:`.radiographs`).

        Args:
            result: the result (LPS frame, or pixel frame for a radiograph).
            labels: optional SimpleITK VerSe label image of the vertebral bodies.
            volume: the input volume node (the nodes are grouped under it in the subject hierarchy).
            name: prefix of new node names.
            nodes: nodes of an earlier call to refill instead of creating new ones.
            color_by: segment colours: ``"grade"`` (Genant) or ``"abnormality"`` (0-100 ramp).
            straightened: optional ``(mid_sagittal [row, column], (row mm, column mm))`` image.
            radiograph: for a 2D result without a volume: the image ``[row, column]`` to show.
            check: refuse a result made on another image than ``volume`` (:mod:`.geometry_check`).

        Raises:
            ValueError: for an unknown colour mode.
            GeometryMismatchError: when ``check`` and the result's frame, extent or series UID differ
                from the volume's; nothing is added to the scene then.

        """
        if color_by not in COLOR_MODES:
            raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}, got {color_by!r}")
        if check and volume is not None:
            from .geometry_check import check_geometry

            check_geometry(result, volume, str(result.input.get("path") or "the result"))
        nodes = nodes or ResultNodes(result=result)
        nodes.result, nodes.live, nodes.color_by = result, None, color_by
        nodes.volume = volume if volume is not None else nodes.volume
        nodes.name = name or nodes.name
        prefix = f"{nodes.name} " if nodes.name else ""
        if result.frame == "pixel" and nodes.volume is None and radiograph is not None:
            nodes.volume = radiograph_bridge.radiograph_volume(
                radiograph, result.pixel_spacing, scene=self.scene, name=nodes.name or "Radiograph"
            )
        if labels is not None:
            import SimpleITK as sitk

            from ..io.images import geometry_of

            nodes.segmentation = segmentation_bridge.segmentation_from_labelmap(
                sitk.GetArrayFromImage(labels),
                geometry_of(labels),
                scene=self.scene,
                name=f"{prefix}Vertebrae",
                node=nodes.segmentation,
            )
        if straightened is not None:
            reference = geometry_of_volume(volume) if volume is not None else None
            display.show_straightened(nodes, straightened[0], straightened[1], self.scene, nodes.name, reference)
        self.refresh(nodes, points=True, store=True)
        display.group_in_hierarchy(nodes, self.scene)
        self.watch(nodes)
        return nodes

    def refresh(self, nodes: ResultNodes, *, points: bool = True, store: bool = True) -> None:
        """Bring the nodes in line with ``nodes.result`` (or the live result during a drag).

        Args:
            nodes: the result's nodes.
            points: also refill the keypoints and centroids nodes (after relabel, add, delete).
            store: also refresh the colour legend and the stored annotation JSON (committed edits).

        """
        nodes.busy = True
        try:
            prefix = f"{nodes.name} " if nodes.name else ""
            if points or nodes.keypoints is None:
                nodes.keypoints, nodes.centroids = markups_bridge.markups_nodes_from_result(
                    nodes.result,
                    scene=self.scene,
                    keypoints_node=nodes.keypoints,
                    centroids_node=nodes.centroids,
                    name=nodes.name,
                    pixel_to_ras=self.pixel_to_ras(nodes),
                )
            nodes.table = table_bridge.genant_table(
                nodes.shown, scene=self.scene, node=nodes.table, name=f"{prefix}{table_bridge.TABLE_NAME}"
            )
            display.show_summary(nodes, self.scene, nodes.name)
            display.color_segments(nodes)
            if store:
                display.show_legend(nodes, self.scene, nodes.name)
                write_store(nodes, self.scene)
        finally:
            nodes.busy = False

    @staticmethod
    def pixel_to_ras(nodes: ResultNodes) -> Optional[np.ndarray]:
        """For a 2D result: the pixel -> RAS matrix of its radiograph volume (None: keep the nodes' own)."""
        if nodes.result.frame != "pixel":
            return None
        if radiograph_bridge.is_radiograph_volume(nodes.volume):
            return radiograph_bridge.volume_pixel_to_ras(nodes.volume)
        return None

    def set_color_mode(self, nodes: ResultNodes, color_by: str) -> None:
        """Colour the segments by ``"grade"`` or ``"abnormality"`` (legend follows).

        Raises:
            ValueError: for an unknown mode.

        """
        if color_by not in COLOR_MODES:
            raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}, got {color_by!r}")
        if color_by != nodes.color_by:
            nodes.color_by = color_by
            if nodes.colors is not None:
                self.scene.RemoveNode(nodes.colors)
                nodes.colors = None
        self.refresh(nodes, points=False, store=True)
        display.group_in_hierarchy(nodes, self.scene)

    @staticmethod
    def grade_colors(result: SpineResult) -> Dict[int, tuple]:
        """VerSe label -> Genant grade colour for every vertebra of the result."""
        return segmentation_bridge.grade_colors_for(result)

    def recolor_segmentation(self, nodes: ResultNodes) -> None:
        """Colour each vertebra's segment by the colour mode (grade by default)."""
        display.color_segments(nodes)

    def update_from_markups(self, nodes: ResultNodes) -> SpineResult:
        """Fold edits of the keypoints node back now: measures recomputed, table and colours refreshed.

        Scores and history of each vertebra are kept; moved keypoints add an edit entry.

        Raises:
            MarkupsFormatError: if the edited points no longer name six keypoints per vertebra.

        """
        result = markups_bridge.result_from_markups_nodes(nodes.keypoints, nodes.centroids, template=nodes.result)
        result.warnings = list(nodes.result.warnings)
        nodes.result, nodes.live, nodes.last_error = result, None, ""
        self.refresh(nodes, points=False, store=True)
        return result

    # ------------------------------------------------------------------ navigation
    @staticmethod
    def row_position(nodes: ResultNodes, row: int) -> np.ndarray:
        """RAS position of the centroid of the vertebra in a table row.

        Raises:
            IndexError: for a row the table does not have.

        """
        from ..geometry import lps_to_ras

        vertebrae = nodes.shown.vertebrae
        if not 0 <= row < len(vertebrae):
            raise IndexError(f"row {row} is not in the table ({len(vertebrae)} rows)")
        if nodes.shown.frame == "pixel":
            matrix = radiograph_bridge.node_pixel_to_ras(nodes.keypoints)
            if matrix is None:
                matrix = radiograph_bridge.default_pixel_to_ras(nodes.shown.pixel_spacing)
            return radiograph_bridge.pixels_to_ras(vertebrae[row].centroid, matrix)[0]
        return np.asarray(lps_to_ras(vertebrae[row].centroid), dtype=float)

    def jump_to_row(self, nodes: ResultNodes, row: int) -> np.ndarray:
        """Centre the slice views on the vertebra of a table row; returns its RAS position."""
        from .scene import scene_logics

        position = self.row_position(nodes, row)
        markups_logic = scene_logics(self.scene).get("Markups")
        if markups_logic is not None:
            markups_logic.JumpSlicesToLocation(*position.tolist(), True)
        return position

    # ------------------------------------------------------------------ saving
    def save_result(self, nodes: ResultNodes, folder: PathLike, *, stem: str = "result", overwrite: bool = False):
        """Write the result JSON, keypoints/centroids ``.mrk.json``, the table and the segmentation.

        Returns:
            The paths written.

        """
        from ..io.atomic import atomic_write

        folder = Path(folder)
        written = [atomic_write(folder / f"{stem}.json", nodes.result.to_json() + "\n", overwrite=overwrite)]
        written.append(
            markups_bridge.write_markups_node(
                nodes.keypoints, folder / f"{stem}_keypoints.mrk.json", overwrite=overwrite
            )
        )
        written.append(
            markups_bridge.write_markups_node(
                nodes.centroids, folder / f"{stem}_centroids.mrk.json", overwrite=overwrite
            )
        )
        written.append(table_bridge.write_table(nodes.table, folder / f"{stem}_genant.tsv", overwrite=overwrite))
        if nodes.segmentation is not None:
            written.append(
                segmentation_bridge.write_segmentation(
                    nodes.segmentation, folder / f"{stem}.seg.nrrd", overwrite=overwrite
                )
            )
        return written

    def save_scene(self, path: PathLike, results: Optional[List[ResultNodes]] = None, *, overwrite: bool = False):
        """Save the scene as a ``.mrb`` bundle, the results' stored JSON refreshed first."""
        from .bundle import save_bundle

        for nodes in results or []:
            write_store(nodes, self.scene)
        return save_bundle(self.scene, path, overwrite=overwrite)

    def load_scene(self, path: PathLike, *, clear: bool = True) -> List[ResultNodes]:
        """Load a ``.mrb`` bundle and make its results editable again (keypoint edits followed)."""
        from .bundle import load_bundle

        load_bundle(self.scene, path, clear=clear)
        return self.reattach()

    def reattach(self) -> List[ResultNodes]:
        """The results of the scene (e.g. after Slicer loaded a ``.mrb``), each followed for edits."""
        known = {n.store: n for n in self.watched.values() if n.store is not None}
        results = [known.get(nodes.store, nodes) for nodes in find_results(self.scene)]
        for nodes in results:
            self.watch(nodes)
        return results
