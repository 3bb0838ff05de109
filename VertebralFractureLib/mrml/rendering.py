"""Offscreen pictures of a result: a sagittal slice view and a 3D view, written as PNG.

Real Slicer views without the application: trame-slicer's :class:`ViewManager` with its
``DirectViewFactory`` renders slice and 3D views of a slicer-core scene offscreen (VTK picks EGL +
Mesa llvmpipe when there is no display; DESIGN.md section 3). Used by the rendering test and to
make the screenshots in ``docs/screenshots``. Inside the Slicer application use Slicer's own
screen capture instead.
"""

from __future__ import annotations

import os
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
