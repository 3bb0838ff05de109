"""What a result looks like in the scene beyond points and rows.

* the patient summary: a one-line text in the Genant table's attributes
  (``VertebralFracture.Summary``, ``VertebralFracture.MaxGrade`` ...) and a ``vtkMRMLTextNode``;
* segment colours by Genant grade or by abnormality (0-100 ramp), and a colour table node with the
  same colours, shown by a colour legend display node on the segmentation;
* the straightened mid-sagittal image as a volume node in a sagittal plane;
* the subject hierarchy: every output node in one folder under the input volume.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..colors import GRADE_COLORS, UNKNOWN_COLOR, abnormality_color, grade_color
from ..geometry import ImageGeometry
from ..schema import SpineResult
from .results import COLOR_MODES, ResultNodes

SUMMARY_ATTRIBUTE = "VertebralFracture.Summary"
FOLDER_NAME = "Vertebral fracture"
GRADE_NAMES = ("Grade 0 normal", "Grade 1 mild", "Grade 2 moderate", "Grade 3 severe", "Not measured")
#: Abnormality legend entries: score -> colour every 10 points.
ABNORMALITY_STEPS = tuple(range(0, 101, 10))
RGB = Tuple[float, float, float]


# ---------------------------------------------------------------------------- patient summary
def summary_text(result: SpineResult) -> str:
    """One line for the user, e.g. ``6 vertebrae, 1 fractured (L1 grade 2 wedge), review: L3, highest grade 2``."""
    summary = result.patient_summary()
    fractured = [result.vertebra(level) for level in summary["fractured_levels"]]
    details = ", ".join(f"{v.label} grade {v.measure.grade} {v.measure.type}" for v in fractured)
    text = f"{summary['n_vertebrae']} vertebrae, {summary['n_fractured']} fractured"
    text += f" ({details})" if details else ""
    if summary["review_levels"]:
        text += f", review: {', '.join(summary['review_levels'])}"
    if summary["not_assessed"]:
        text += f", not assessed: {', '.join(summary['not_assessed'])}"
    text += f", highest grade {summary['max_grade']}"
    if summary["min_G"] is not None:
        text += f", min G {summary['min_G']:.2f}"
    if "max_fracture_probability" in summary:
        text += f", max fracture probability {summary['max_fracture_probability']:.2f}"
    if "max_abnormality" in summary:
        text += f", max abnormality {summary['max_abnormality']:.0f}"
    return text


def summary_attributes(result: SpineResult) -> Dict[str, str]:
    """Table attributes of the patient summary (plain strings, no ``:`` or ``;``)."""
    summary = result.patient_summary()
    return {
        SUMMARY_ATTRIBUTE: summary_text(result),
        "VertebralFracture.MaxGrade": str(summary["max_grade"]),
        "VertebralFracture.NumberOfVertebrae": str(summary["n_vertebrae"]),
        "VertebralFracture.NumberFractured": str(summary["n_fractured"]),
        "VertebralFracture.FracturedLevels": " ".join(summary["fractured_levels"]),
        "VertebralFracture.WorstLevel": summary["worst_level"] or "",
    }


def show_summary(nodes: ResultNodes, scene, name: str = "") -> Any:
    """Write the summary of ``nodes.shown`` into the table's attributes and the summary text node."""
    result = nodes.shown
    if nodes.table is not None:
        for key, value in summary_attributes(result).items():
            nodes.table.SetAttribute(key, value)
    if nodes.summary is None:
        nodes.summary = scene.AddNewNodeByClass(
            "vtkMRMLTextNode", scene.GenerateUniqueName(f"{name} patient summary".strip())
        )
    nodes.summary.SetText(summary_text(result))
    return nodes.summary


# ---------------------------------------------------------------------------- colours and legend
def vertebra_color(vertebra, color_by: str = "grade") -> RGB:
    """Segment colour of a vertebra: its Genant grade, or its abnormality score."""
    if color_by == "abnormality":
        return abnormality_color(vertebra.abnormality)
    return grade_color(vertebra.measure.grade if vertebra.measure is not None else None)


def legend_entries(color_by: str = "grade") -> List[Tuple[str, RGB]]:
    """(name, colour) of each legend entry."""
    if color_by not in COLOR_MODES:
        raise ValueError(f"colour mode must be one of {', '.join(COLOR_MODES)}, got {color_by!r}")
    if color_by == "abnormality":
        return [(f"Abnormality {s}", abnormality_color(s)) for s in ABNORMALITY_STEPS] + [("Not scored", UNKNOWN_COLOR)]
    return [(GRADE_NAMES[g], GRADE_COLORS[g]) for g in range(4)] + [(GRADE_NAMES[4], UNKNOWN_COLOR)]


def color_table(scene, color_by: str = "grade", node=None, name: str = ""):
    """A ``vtkMRMLColorTableNode`` with the legend entries of the colour mode."""
    entries = legend_entries(color_by)
    if node is None:
        title = "Genant grade colours" if color_by == "grade" else "Abnormality colours"
        node = scene.AddNewNodeByClass("vtkMRMLColorTableNode", scene.GenerateUniqueName(f"{name} {title}".strip()))
    was_modifying = node.StartModify()
    node.SetTypeToUser()
    node.SetNumberOfColors(len(entries))
    for index, (label, rgb) in enumerate(entries):
        node.SetColor(index, label, *rgb, 1.0)
    node.SetAttribute("VertebralFracture.ColorBy", color_by)
    node.EndModify(was_modifying)
    return node


def color_segments(nodes: ResultNodes) -> None:
    """Colour each vertebra's segment (matched by segment name = level) by the colour mode."""
    if nodes.segmentation is None:
        return
    segmentation = nodes.segmentation.GetSegmentation()
    by_level = {v.label: v for v in nodes.shown.vertebrae}
    for index in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(index)
        vertebra = by_level.get(segment.GetName())
        rgb = vertebra_color(vertebra, nodes.color_by) if vertebra is not None else UNKNOWN_COLOR
        if tuple(round(c, 6) for c in segment.GetColor()) != tuple(round(c, 6) for c in rgb):
            segment.SetColor(*rgb)
            segment.SetColorAutoGenerated(False)


def show_legend(nodes: ResultNodes, scene, name: str = "") -> None:
    """Refresh the colour table and show it as a colour legend on the segmentation."""
    nodes.colors = color_table(scene, nodes.color_by, node=nodes.colors, name=name)
    if nodes.segmentation is None:
        return
    from .scene import import_slicer

    colors_logic = import_slicer().vtkSlicerColorLogic  # static methods
    legend = colors_logic.GetColorLegendDisplayNode(nodes.segmentation)
    if legend is None:
        legend = colors_logic.AddDefaultColorLegendDisplayNode(nodes.segmentation)
    if legend is not None:
        legend.SetAndObserveColorNodeID(nodes.colors.GetID())
        legend.SetTitleText("Genant grade" if nodes.color_by == "grade" else "Abnormality (0-100)")


# ---------------------------------------------------------------------------- straightened image
def straightened_geometry(shape: Tuple[int, int], spacing: Tuple[float, float], reference=None) -> ImageGeometry:
    """A sagittal-plane geometry for a ``[row, column]`` mid-sagittal image (row 0 superior, column anterior).

    Columns run posterior (LPS +y), rows inferior (LPS -z); the plane sits at the middle of the
    reference volume's left-right extent, its first pixel at the reference's anterior-superior
    corner, so the image shows in the sagittal (yellow) view beside the CT.
    """
    rows, columns = shape
    direction = np.array([[0.0, 0.0, -1.0], [1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
    origin = np.zeros(3)
    if reference is not None:
        corners = np.array(
            [reference.index_to_lps(np.array(c) * (np.asarray(reference.size) - 1)) for c in np.ndindex(2, 2, 2)]
        )
        low, high = corners.min(axis=0), corners.max(axis=0)
        origin = np.array([(low[0] + high[0]) / 2, low[1], high[2]])
    return ImageGeometry((columns, rows, 1), (spacing[1], spacing[0], 1.0), origin, direction)


def show_straightened(nodes: ResultNodes, image: np.ndarray, spacing, scene, name: str = "", reference=None):
    """The straightened mid-sagittal image as a scalar volume node (``nodes.straightened``)."""
    from .volumes import volume_from_array

    image = np.asarray(image, dtype=np.float32)
    geometry = straightened_geometry(image.shape, tuple(spacing), reference)
    nodes.straightened = volume_from_array(
        image[None], geometry, scene=scene, name=f"{name} straightened sagittal".strip(), node=nodes.straightened
    )
    nodes.straightened.SetAttribute("VertebralFracture.Role", "straightened")
    display = nodes.straightened.GetDisplayNode()
    if display is not None:
        display.SetAutoWindowLevel(False)
        display.SetWindowLevel(1500.0, 300.0)
    return nodes.straightened


# ---------------------------------------------------------------------------- subject hierarchy
def group_in_hierarchy(nodes: ResultNodes, scene, name: str = FOLDER_NAME) -> int:
    """Put every output node in a folder under the input volume (or the scene); returns the folder item."""
    shn = scene.GetSubjectHierarchyNode()
    if shn is None:
        return 0
    if not nodes.folder or not shn.GetItemName(nodes.folder):
        parent = _item_of(shn, nodes.volume, shn.GetSceneItemID()) if nodes.volume is not None else 0
        nodes.folder = shn.CreateFolderItem(parent or shn.GetSceneItemID(), name)
    for node in nodes.scene_nodes().values():
        item = _item_of(shn, node, nodes.folder)
        if shn.GetItemParent(item) != nodes.folder:
            shn.SetItemParent(item, nodes.folder)
    return nodes.folder


def _item_of(shn, node, parent: int) -> int:
    """The node's subject hierarchy item, created under ``parent`` when missing.

    Inside Slicer the subject hierarchy plugins create items for new nodes; plain MRML does not.
    """
    item = shn.GetItemByDataNode(node)
    return item if item else shn.CreateItem(parent, node)


def hierarchy_parent(scene, node) -> Optional[int]:
    """Subject hierarchy parent item of a node (None when the node has no item)."""
    shn = scene.GetSubjectHierarchyNode()
    item = shn.GetItemByDataNode(node) if shn is not None else 0
    return shn.GetItemParent(item) if item else None
