"""SpineResult <-> markups nodes (keypoints and centroids), and .mrk.json through storage nodes.

Nodes hold RAS; results and files hold LPS (:func:`VertebralFractureLib.geometry.lps_to_ras`).
Point labels, keys (in the point description) and the mapping back are those of
:mod:`VertebralFractureLib.io.mrk_json`, so a node, a file written by the library and a file written
by Slicer all map to the same vertebrae. Nodes carry the attribute ``VertebralFracture.Role``
(``keypoints`` / ``centroids``).

A 2D result (frame ``"pixel"``, a radiograph) is placed through a pixel -> RAS matrix (the
radiograph volume's IJK -> RAS, see :mod:`.radiographs`), kept in the nodes' attribute
``VertebralFracture.PixelToRAS``; reading the nodes back maps the points to pixels again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from ..geometry import lps_to_ras, ras_to_lps
from ..io.atomic import atomic_path
from ..io.mrk_json import ControlPoint, PointList, centroids_list, keypoints_list, result_from_lists
from ..schema import SpineResult
from .scene import import_slicer, resolve_scene

PathLike = Union[str, Path]
ROLE_ATTRIBUTE = "VertebralFracture.Role"


def node_from_point_list(point_list: PointList, *, scene=None, node=None, role: str = ""):
    """A ``vtkMRMLMarkupsFiducialNode`` holding the list's points (RAS), labels and descriptions.

    Args:
        point_list: the points (LPS).
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer when None).
        node: an existing markups node to refill instead of creating one.
        role: value of the ``VertebralFracture.Role`` attribute.

    """
    import_slicer()
    if node is None:
        scene = resolve_scene(scene)
        node = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", scene.GenerateUniqueName(point_list.name))
    was_modifying = node.StartModify()
    node.RemoveAllControlPoints()
    for point in point_list.points:
        index = node.AddControlPoint(lps_to_ras(point.position).tolist(), point.label)
        node.SetNthControlPointDescription(index, point.description)
        node.SetNthControlPointLocked(index, point.locked)
        node.SetNthControlPointSelected(index, point.selected)
        node.SetNthControlPointVisibility(index, point.visibility)
    node.SetLocked(point_list.locked)
    if role:
        node.SetAttribute(ROLE_ATTRIBUTE, role)
    node.EndModify(was_modifying)
    if node.GetDisplayNode() is None:
        node.CreateDefaultDisplayNodes()
    display = node.GetDisplayNode()
    if display is not None and point_list.color is not None:
        display.SetSelectedColor(*point_list.color)
        display.SetColor(*point_list.color)
    return node


def point_list_from_node(node) -> PointList:
    """The node's control points as a :class:`PointList` (LPS); unplaced points keep their status."""
    slicer = import_slicer()
    points = []
    for index in range(node.GetNumberOfControlPoints()):
        status = node.GetNthControlPointPositionStatus(index)
        ras = np.zeros(3)
        node.GetNthControlPointPosition(index, ras)
        points.append(
            ControlPoint(
                position=ras_to_lps(ras),
                label=node.GetNthControlPointLabel(index),
                id=node.GetNthControlPointID(index),
                description=node.GetNthControlPointDescription(index),
                selected=bool(node.GetNthControlPointSelected(index)),
                locked=bool(node.GetNthControlPointLocked(index)),
                visibility=bool(node.GetNthControlPointVisibility(index)),
                position_status=_status_name(slicer, status),
            )
        )
    display = node.GetDisplayNode()
    color = tuple(display.GetSelectedColor()) if display is not None else None
    return PointList(name=node.GetName(), points=points, color=color, locked=bool(node.GetLocked()))


def _status_name(slicer, status: int) -> str:
    """Name of a control point position status, as in .mrk.json files."""
    node_class = slicer.vtkMRMLMarkupsNode
    names = {
        node_class.PositionDefined: "defined",
        node_class.PositionPreview: "preview",
        node_class.PositionMissing: "missing",
        node_class.PositionUndefined: "undefined",
    }
    return names.get(status, "defined")


def markups_nodes_from_result(
    result: SpineResult,
    *,
    scene=None,
    keypoints_node=None,
    centroids_node=None,
    name: str = "",
    pixel_to_ras: Optional[np.ndarray] = None,
) -> Tuple[object, object]:
    """Keypoints and centroids markups nodes of a result.

    Args:
        result: the vertebrae (frame LPS, or pixel with ``pixel_to_ras``).
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer when None).
        keypoints_node: an existing keypoints node to refill.
        centroids_node: an existing centroids node to refill.
        name: prefix of the node names (``"<name> keypoints"``).
        pixel_to_ras: for a 2D result, the 4 x 4 matrix mapping ``(column, row, 0, 1)`` to RAS
            (default: the one the nodes already hold, else :func:`.radiographs.default_pixel_to_ras`).

    Returns:
        ``(keypoints_node, centroids_node)``.

    """
    from . import radiographs

    matrix = None
    if result.frame == "pixel":
        matrix = pixel_to_ras if pixel_to_ras is not None else radiographs.node_pixel_to_ras(keypoints_node)
        if matrix is None:
            matrix = radiographs.default_pixel_to_ras(result.pixel_spacing)
        result = radiographs.lps_result_of_pixels(result, matrix)
    prefix = f"{name} " if name else ""
    keypoints = keypoints_list(result, name=f"{prefix}Keypoints".strip())
    centroids = centroids_list(result, name=f"{prefix}Centroids".strip())
    new_nodes = keypoints_node is None
    keypoints_node = node_from_point_list(keypoints, scene=scene, node=keypoints_node, role="keypoints")
    centroids_node = node_from_point_list(centroids, scene=scene, node=centroids_node, role="centroids")
    if new_nodes and centroids_node.GetDisplayNode() is not None:
        centroids_node.GetDisplayNode().SetGlyphScale(3.0)
    if new_nodes and keypoints_node.GetDisplayNode() is not None:
        # 6 labels per vertebra crowd the views; the labels stay on the points (lists, tooltips).
        keypoints_node.GetDisplayNode().SetPointLabelsVisibility(False)
    for node in (keypoints_node, centroids_node):
        if matrix is not None:
            node.SetAttribute(radiographs.PIXEL_TO_RAS_ATTRIBUTE, radiographs.matrix_text(matrix))
        else:
            node.RemoveAttribute(radiographs.PIXEL_TO_RAS_ATTRIBUTE)
    return keypoints_node, centroids_node


def result_from_markups_nodes(keypoints_node, centroids_node=None, *, template: Optional[SpineResult] = None):
    """A SpineResult from keypoints (and centroids) nodes, Genant measures recomputed.

    Nodes placed from a 2D result (attribute ``VertebralFracture.PixelToRAS``) give a 2D result
    (frame pixel) again, with the template's pixel spacing (else the mapping's); others give LPS.

    Args:
        keypoints_node: six points per vertebra, mapped back by description, ID or label.
        centroids_node: optional centroids (else the mean of each vertebra's keypoints).
        template: an earlier result whose scores and history are kept (see
            :func:`VertebralFractureLib.io.mrk_json.result_from_lists`).

    Raises:
        MarkupsFormatError: for unnamed, duplicated or missing keypoints.

    """
    from . import radiographs

    keypoints = point_list_from_node(keypoints_node)
    centroids = point_list_from_node(centroids_node) if centroids_node is not None else None
    matrix = radiographs.node_pixel_to_ras(keypoints_node)
    if matrix is None:
        if template is not None and template.frame == "pixel":
            matrix = radiographs.default_pixel_to_ras(template.pixel_spacing)
        else:
            return result_from_lists(keypoints, centroids, template=template)
    spacing = None
    if template is not None and template.frame == "pixel":
        spacing = template.pixel_spacing
        template = radiographs.lps_result_of_pixels(template, matrix)
    lps = result_from_lists(keypoints, centroids, template=template)
    return radiographs.pixel_result_from_lps(lps, matrix, spacing)


def write_markups_node(node, path: PathLike, *, overwrite: bool = False) -> Path:
    """Write a markups node to ``.mrk.json`` with ``vtkMRMLMarkupsJsonStorageNode`` (LPS, atomically).

    Raises:
        OSError: if the storage node reports a failure.

    """
    slicer = import_slicer()
    path = Path(path)
    storage = slicer.vtkMRMLMarkupsJsonStorageNode()
    storage.SetCoordinateSystem(slicer.vtkMRMLStorageNode.CoordinateSystemLPS)
    with atomic_path(path, overwrite=overwrite) as temporary:
        storage.SetFileName(str(temporary))
        if not storage.WriteData(node):
            raise OSError(f"writing markups {node.GetName()!r} to {path} failed")
    return path


def read_markups_node(path: PathLike, *, scene=None, name: Optional[str] = None):
    """Read a ``.mrk.json`` file into a new markups node with ``vtkMRMLMarkupsJsonStorageNode``.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the storage node cannot read it.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such markups file")
    scene = resolve_scene(scene)
    node_name = scene.GenerateUniqueName(name or path.name.split(".")[0])
    storage = scene.AddNewNodeByClass("vtkMRMLMarkupsJsonStorageNode")
    # AddNewMarkupsNodeFromFile (not ReadData) also restores the display properties in the file.
    node = storage.AddNewMarkupsNodeFromFile(str(path), node_name, 0)
    if node is None:
        scene.RemoveNode(storage)
        raise ValueError(f"{path}: Slicer's markups reader cannot read this file")
    if node.GetStorageNode() is None:
        node.SetAndObserveStorageNodeID(storage.GetID())
    return node
