"""The Slicer module's logic without Qt: scene nodes in, pipeline, scene nodes out.

``VertebralFracture/VertebralFracture.py`` wraps :class:`VertebralFractureLogic` in a
``ScriptedLoadableModuleLogic``; tests drive this class directly on a slicer-core scene. It only
adapts: volume and segmentation nodes become SimpleITK images, the library's
:func:`VertebralFractureLib.pipeline.analyze` (or an injected replacement) does the work, and the
:class:`SpineResult` comes back as markups, a "Genant" table and a grade-coloured segmentation
through the bridge modules. Corrections made by dragging keypoints are folded back with
:meth:`VertebralFractureLogic.update_from_markups`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Union

from ..colors import grade_color
from ..levels import UnknownLevelError, label_from_level, normalise_level
from ..schema import SpineResult
from . import markups as markups_bridge
from . import segmentations as segmentation_bridge
from . import tables as table_bridge
from .scene import resolve_scene
from .volumes import geometry_of_volume, image_from_volume

PathLike = Union[str, Path]
ProgressCallback = Callable[[float, str], None]

#: Module analysis flags -> names of the pipeline's optional stages (``pipeline.EXTRA_STAGES``).
EXTRA_STAGE_FLAGS = {
    "fractureClassifier": "classifier",
    "voxelMap": "voxel_map",
    "abnormality": "abnormality",
}
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ResultNodes:
    """The scene nodes showing one result, and the result itself.

    Attributes:
        result: the current SpineResult (LPS mm).
        keypoints: markups node, six points per vertebra.
        centroids: markups node, one point per vertebra.
        table: the "Genant" table node.
        segmentation: segmentation node of the vertebral bodies (grade colours), or None.
        warnings: messages for the user from the analysis.

    """

    result: SpineResult
    keypoints: Any = None
    centroids: Any = None
    table: Any = None
    segmentation: Any = None
    warnings: List[str] = field(default_factory=list)


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


class VertebralFractureLogic:
    """Runs the analysis on scene nodes and shows / updates its results in the scene.

    Args:
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer when None).
        analyze: the analysis function ``analyze(image, options, progress) -> Analysis``;
            default :func:`VertebralFractureLib.pipeline.analyze` (imported on first use).

    """

    def __init__(self, scene=None, analyze: Optional[Callable[..., Any]] = None):
        self.scene = resolve_scene(scene)
        self._analyze = analyze
        self.cancel_event = threading.Event()

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
        """Analyse a CT volume node and show the result in the scene.

        Args:
            volume_node: the CT (scalar volume node, Hounsfield units).
            segmentation_node: optional vertebra segmentation (segments named by level, e.g. from
                TotalSegmentator) used for the masks instead of the drawn ones.
            keypoints: detect vertebrae and keypoints.
            fracture_classifier: run the fracture classifier stage (paper 000).
            voxel_map: run the voxel fracture map stage (paper 002).
            abnormality: run the shape abnormality stage (paper 003).
            device: ``auto``, ``cpu`` or ``cuda``.
            progress: receives (fraction 0-1, message).
            name: prefix of the output node names (default: the volume's name).

        Raises:
            ValueError: for a missing volume node.
            Cancelled: when :meth:`cancel` was called during the run.

        """
        from ..progress import Progress

        if volume_node is None:
            raise ValueError("select an input CT volume")
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
        image = image_from_volume(volume_node)
        analysis = analyze(image, options, Progress(progress, self.cancel_event))
        labels = getattr(analysis, "labels", None)
        nodes = self.show_result(analysis.result, labels=labels, name=name or volume_node.GetName())
        nodes.warnings = list(analysis.result.warnings)
        return nodes

    def cancel(self) -> None:
        """Ask a running analysis to stop at its next progress report."""
        self.cancel_event.set()

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

    def show_result(
        self,
        result: SpineResult,
        *,
        labels=None,
        name: str = "",
        nodes: Optional[ResultNodes] = None,
    ) -> ResultNodes:
        """Create (or refresh) the markups, table and segmentation nodes of a result.

        Args:
            result: the result (LPS frame).
            labels: optional SimpleITK VerSe label image of the vertebral bodies.
            name: prefix of new node names.
            nodes: nodes of an earlier call to refill instead of creating new ones.

        """
        nodes = nodes or ResultNodes(result=result)
        nodes.result = result
        prefix = f"{name} " if name else ""
        nodes.keypoints, nodes.centroids = markups_bridge.markups_nodes_from_result(
            result, scene=self.scene, keypoints_node=nodes.keypoints, centroids_node=nodes.centroids, name=name
        )
        nodes.table = table_bridge.genant_table(
            result, scene=self.scene, node=nodes.table, name=f"{prefix}{table_bridge.TABLE_NAME}"
        )
        if labels is not None:
            import SimpleITK as sitk

            from ..io.images import geometry_of

            nodes.segmentation = segmentation_bridge.segmentation_from_labelmap(
                sitk.GetArrayFromImage(labels),
                geometry_of(labels),
                scene=self.scene,
                name=f"{prefix}Vertebrae",
                colors=self.grade_colors(result),
                node=nodes.segmentation,
            )
        elif nodes.segmentation is not None:
            self.recolor_segmentation(nodes)
        return nodes

    @staticmethod
    def grade_colors(result: SpineResult) -> Dict[int, tuple]:
        """VerSe label -> Genant grade colour for every vertebra of the result."""
        return segmentation_bridge.grade_colors_for(result)

    def recolor_segmentation(self, nodes: ResultNodes) -> None:
        """Colour each vertebra's segment by its current Genant grade."""
        if nodes.segmentation is None:
            return
        present = {str(info["id"]) for info in segmentation_bridge.segment_info(nodes.segmentation)}
        colors = {
            v.label: grade_color(v.measure.grade if v.measure is not None else None)
            for v in nodes.result.vertebrae
            if v.label in present
        }
        segmentation_bridge.set_segment_colors(nodes.segmentation, colors)

    def update_from_markups(self, nodes: ResultNodes) -> SpineResult:
        """Fold edits of the keypoints node back: measures recomputed, table and colours refreshed.

        Scores and history of each vertebra are kept; moved keypoints add an edit entry.

        Raises:
            MarkupsFormatError: if the edited points no longer name six keypoints per vertebra.

        """
        result = markups_bridge.result_from_markups_nodes(nodes.keypoints, nodes.centroids, template=nodes.result)
        nodes.result = result
        table_bridge.genant_table(result, scene=self.scene, node=nodes.table)
        self.recolor_segmentation(nodes)
        return result

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
