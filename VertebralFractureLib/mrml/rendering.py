"""Offscreen pictures of a result: a sagittal slice view and a 3D view, or the three slice views, as PNG.

Real Slicer views without the application: trame-slicer's :class:`ViewManager` with its
``DirectViewFactory`` renders slice and 3D views of a slicer-core scene offscreen (VTK picks EGL +
Mesa llvmpipe when there is no display; DESIGN.md section 3). Used by the rendering test and to
make the screenshots in ``docs/screenshots``. Inside the Slicer application use Slicer's own
screen capture instead.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Tuple, Union

from ..geometry import lps_to_ras
from ..io.atomic import atomic_path
from .results import ResultNodes
from .scene import scene_logics

PathLike = Union[str, Path]
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")


class RenderingUnavailableError(ImportError):
    """trame-slicer (the offscreen view factory) is not installed."""


def _view_manager(scene):
    try:
        from trame_slicer.core.view_manager import ViewManager
        from trame_slicer.views.direct_view_factory import DirectViewFactory
    except ImportError as error:
        raise RenderingUnavailableError(f"offscreen views need trame-slicer: {error}") from None
    from slicer import (
        vtkMRMLSliceNode,
        vtkMRMLSliceViewDisplayableManagerFactory,
        vtkMRMLThreeDViewDisplayableManagerFactory,
    )

    app_logic = scene_logics(scene)["ApplicationLogic"]
    vtkMRMLThreeDViewDisplayableManagerFactory.GetInstance().SetMRMLApplicationLogic(app_logic)
    vtkMRMLSliceViewDisplayableManagerFactory.GetInstance().SetMRMLApplicationLogic(app_logic)
    if scene.GetFirstNodeByClass("vtkMRMLSliceNode") is None:
        vtkMRMLSliceNode.AddDefaultSliceOrientationPresets(scene, True)
    manager = ViewManager(scene, app_logic)
    manager.register_factory(DirectViewFactory(do_render_offscreen=True))
    return manager


def _write_png(view, path: Path, overwrite: bool) -> Path:
    from vtkmodules.vtkIOImage import vtkPNGWriter
    from vtkmodules.vtkRenderingCore import vtkWindowToImageFilter

    view.render()
    capture = vtkWindowToImageFilter()
    capture.SetInput(view.render_window())
    capture.ReadFrontBufferOff()
    capture.Update()
    with atomic_path(path, overwrite=overwrite) as temporary:
        writer = vtkPNGWriter()
        writer.SetFileName(str(temporary))
        writer.SetInputConnection(capture.GetOutputPort())
        writer.Write()
    return path


def render_result(
    nodes: ResultNodes,
    folder: PathLike,
    *,
    size: Tuple[int, int] = (640, 640),
    level: str = "",
    overwrite: bool = False,
) -> Dict[str, Path]:
    """Write ``slice_view.png`` (sagittal: CT, coloured segments, keypoints) and ``3d_view.png``.

    Args:
        nodes: a shown result with its input volume.
        folder: where the PNGs go.
        size: pixels of each picture.
        level: vertebra whose centroid the sagittal slice passes through (default: the middle one).
        overwrite: replace existing PNGs.

    Returns:
        ``{"slice": path, "3d": path}``.

    Raises:
        RenderingUnavailableError: without trame-slicer.

    """
    from trame_slicer.views.view_layout_definition import ViewLayoutDefinition

    scene = nodes.keypoints.GetScene()
    folder = Path(folder)
    manager = _view_manager(scene)
    vertebrae = nodes.result.vertebrae
    centre = nodes.result.vertebra(level) if level else vertebrae[len(vertebrae) // 2]
    ras = lps_to_ras(centre.centroid)

    slice_view = manager.create_view(ViewLayoutDefinition.sagittal_view())
    slice_view.render_window().SetSize(*size)
    if nodes.volume is not None:
        slice_view.set_background_volume_id(nodes.volume.GetID())
    slice_view.fit_view_to_content()
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):  # the planes through the centroid
        scene.GetNthNodeByClass(index, "vtkMRMLSliceNode").JumpSliceByOffsetting(*(float(c) for c in ras))
    if nodes.segmentation is not None:
        display = nodes.segmentation.GetDisplayNode()
        display.SetOpacity2DFill(0.45)
        display.SetVisibility2DOutline(True)
    # points of vertebrae off the plane (a column is never flat) are drawn projected, then restored
    displays = [n.GetDisplayNode() for n in (nodes.keypoints, nodes.centroids) if n.GetDisplayNode() is not None]
    projections = [(d, d.GetSliceProjection(), d.GetSliceProjectionOpacity()) for d in displays]
    for display, _, _ in projections:
        display.SetSliceProjection(True)
        display.SetSliceProjectionOpacity(0.9)
    try:
        written = {"slice": _write_png(slice_view, folder / "slice_view.png", overwrite)}
    finally:
        for display, projection, opacity in projections:
            display.SetSliceProjection(projection)
            display.SetSliceProjectionOpacity(opacity)

    threed = manager.create_view(ViewLayoutDefinition.threed_view())
    threed.render_window().SetSize(*size)
    if nodes.segmentation is not None:
        nodes.segmentation.CreateClosedSurfaceRepresentation()
    camera = threed.renderer().GetActiveCamera()
    threed.reset_camera()
    camera.SetFocalPoint(*ras)
    camera.SetPosition(ras[0] - 400.0, ras[1] + 150.0, ras[2] + 60.0)  # patient's right, anterior, above
    camera.SetViewUp(0.0, 0.0, 1.0)
    threed.renderer().ResetCamera()
    written["3d"] = _write_png(threed, folder / "3d_view.png", overwrite)
    return written


def render_review_views(
    nodes: ResultNodes,
    path: PathLike,
    *,
    level: str,
    size: Tuple[int, int] = (360, 360),
    field_of_view_mm: float = 200.0,
    overwrite: bool = False,
) -> Path:
    """The three slice views as the review panel leaves them on ``level``: one PNG, axial | sagittal | coronal.

    The slice views are centred on the vertebra's centroid the way the review keys do it
    (:meth:`~VertebralFractureLib.mrml.review.ReviewMixin.focus`: ``JumpSlicesToLocation``), so the
    sagittal view shows its mid-sagittal plane; the CT, the grade-coloured segments, the keypoints and
    the centroids with their levels are drawn by Slicer's own displayable managers (points near each
    plane, nothing projected). Each view shows ``field_of_view_mm`` around the vertebra.

    Raises:
        RenderingUnavailableError: without trame-slicer.
        KeyError: for a level not in the result.

    """
    import numpy as np
    import SimpleITK as sitk
    from trame_slicer.views.view_layout_definition import ViewLayoutDefinition

    scene = nodes.keypoints.GetScene()
    manager = _view_manager(scene)
    ras = lps_to_ras(nodes.result.vertebra(level).centroid)
    views = []
    for definition in (ViewLayoutDefinition.axial_view(), ViewLayoutDefinition.sagittal_view(),
                       ViewLayoutDefinition.coronal_view()):
        view = manager.create_view(definition)
        view.render_window().SetSize(*size)
        if nodes.volume is not None:
            view.set_background_volume_id(nodes.volume.GetID())
        view.fit_view_to_content()
        views.append(view)
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSliceNode")):
        slice_node = scene.GetNthNodeByClass(index, "vtkMRMLSliceNode")
        thickness = slice_node.GetFieldOfView()[2]
        slice_node.SetFieldOfView(field_of_view_mm, field_of_view_mm * size[1] / size[0], thickness)
    markups_logic = scene_logics(scene).get("Markups")
    if markups_logic is not None:
        markups_logic.JumpSlicesToLocation(*(float(c) for c in ras), True)
    if nodes.segmentation is not None:
        display = nodes.segmentation.GetDisplayNode()
        display.SetOpacity2DFill(0.35)
        display.SetVisibility2DOutline(True)
    pictures = []
    with tempfile.TemporaryDirectory(prefix="vf-views-") as scratch:
        for index, view in enumerate(views):
            written = _write_png(view, Path(scratch) / f"view{index}.png", True)
            pictures.append(sitk.GetArrayFromImage(sitk.ReadImage(str(written))))
    gap = np.full((pictures[0].shape[0], 4) + pictures[0].shape[2:], 255, dtype=pictures[0].dtype)
    joined = np.concatenate([pictures[0], gap, pictures[1], gap, pictures[2]], axis=1)
    path = Path(path)
    with atomic_path(path, overwrite=overwrite) as temporary:
        sitk.WriteImage(sitk.GetImageFromArray(joined, isVector=joined.ndim == 3), str(temporary))
    return path
