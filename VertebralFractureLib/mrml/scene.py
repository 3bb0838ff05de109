"""A real MRML scene outside the Slicer application (slicer-core), with module logics attached.

Inside Slicer the application builds the scene (``slicer.mrmlScene``) and registers every module
logic. Outside it (plain pytest, CLI tools) :func:`create_scene` does the part the bridge needs:
a ``vtkSlicerApplicationLogic`` (it creates the selection and interaction singletons the markups
logic asks for), the default colour tables, and the colors, volumes, markups, segmentations,
subject hierarchy, tables and data module logics, each given the application logic before the
scene (DESIGN.md section 3; modelled on trame-slicer's ``core/slicer_app.py``).

The logics are kept alive on the returned scene object (:func:`scene_logics`), so they are not
garbage-collected while the scene is in use.
"""

from __future__ import annotations

import os
import weakref
from pathlib import Path
from typing import Any, Dict, Optional

#: Offscreen rendering without a display (VTK picks EGL + Mesa llvmpipe).
os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

# Logics of the scenes made here, by scene; values live as long as their scene.
_LOGICS: weakref.WeakKeyDictionary[Any, Dict[str, Any]] = weakref.WeakKeyDictionary()


class SlicerUnavailableError(ImportError):
    """slicer-core (or the Slicer application) is not importable in this Python."""


def import_slicer():
    """Import and return the ``slicer`` package (Slicer's own or slicer-core from PyPI).

    Raises:
        SlicerUnavailableError: with an explanation of how to get it.

    """
    try:
        import slicer

        slicer.vtkMRMLScene  # noqa: B018  (slicer-core exposes the MRML classes at the top level)
    except (ImportError, AttributeError) as error:
        raise SlicerUnavailableError(
            "MRML classes are not available: run inside 3D Slicer or `pip install 'trame-slicer[standalone]'` "
            f"(slicer-core) ({error})"
        ) from None
    return slicer


def default_scene():
    """``slicer.mrmlScene`` inside the Slicer application, else None."""
    try:
        import slicer
    except ImportError:
        return None
    return getattr(slicer, "mrmlScene", None)


def resolve_scene(scene=None):
    """The given scene, or Slicer's application scene when none is given.

    Raises:
        ValueError: when no scene is given outside the Slicer application.

    """
    if scene is not None:
        return scene
    scene = default_scene()
    if scene is None:
        raise ValueError("no MRML scene given and slicer.mrmlScene does not exist (pass scene=create_scene())")
    return scene


def _share_directory() -> Optional[Path]:
    """Folder with Slicer's terminology files (shipped by trame-slicer), when installed."""
    try:
        from trame_slicer.resources import resources_path
    except ImportError:
        return None
    path = Path(resources_path())
    return path if path.joinpath("terminologies").is_dir() else None


def create_scene(*, terminologies: bool = True):
    """A new ``vtkMRMLScene`` with an application logic and the module logics the bridge uses.

    Args:
        terminologies: also register the terminologies logic when its data files are found.

    Returns:
        The scene; its logics are available through :func:`scene_logics`.

    Raises:
        SlicerUnavailableError: if slicer-core cannot be imported.

    """
    slicer = import_slicer()
    from vtkmodules.vtkCommonCore import vtkCollection

    scene = slicer.vtkMRMLScene()
    crosshair = slicer.vtkMRMLCrosshairNode()
    crosshair.SetCrosshairName("default")
    scene.AddNode(crosshair)

    app_logic = slicer.vtkSlicerApplicationLogic()
    app_logic.SetMRMLScene(scene)
    color_logic = app_logic.GetColorLogic()
    color_logic.SetMRMLScene(scene)
    color_logic.AddDefaultColorNodes()
    app_logic.SetSliceLogics(vtkCollection())
    app_logic.SetViewLogics(vtkCollection())

    logics: Dict[str, Any] = {"ApplicationLogic": app_logic, "Colors": color_logic}
    app_logic.SetModuleLogic("Colors", color_logic)

    def register(name: str, logic: Any, share: Optional[Path] = None) -> None:
        if share is not None and hasattr(logic, "SetModuleShareDirectory"):
            logic.SetModuleShareDirectory(share.as_posix())
        logic.SetMRMLApplicationLogic(app_logic)
        logic.SetMRMLScene(scene)
        app_logic.SetModuleLogic(name, logic)
        logics[name] = logic

    share = _share_directory()
    if terminologies and share is not None:
        register("Terminologies", slicer.vtkSlicerTerminologiesModuleLogic(), share / "terminologies")
    register("Volumes", slicer.vtkSlicerVolumesLogic())
    register("Markups", slicer.vtkSlicerMarkupsLogic())
    register("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic())
    register("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic())
    register("Tables", slicer.vtkSlicerTablesLogic())
    register("Data", slicer.vtkSlicerDataModuleLogic())
    # In Slicer the Colors module registers the colour legend node; here nobody does.
    if not scene.IsNodeClassRegistered("vtkMRMLColorLegendDisplayNode"):
        scene.RegisterNodeClass(slicer.vtkMRMLColorLegendDisplayNode())
    _LOGICS[scene] = logics
    return scene


def scene_logics(scene) -> Dict[str, Any]:
    """Module logics registered by :func:`create_scene` (``{"Volumes": ..., "Markups": ...}``).

    Inside the Slicer application, logics of a scene not made here come from ``slicer.modules``.
    """
    if scene in _LOGICS:
        return _LOGICS[scene]
    try:
        import slicer

        modules = slicer.modules
    except (ImportError, AttributeError):
        return {}
    names = {
        "Volumes": "volumes",
        "Markups": "markups",
        "Segmentations": "segmentations",
        "SubjectHierarchy": "subjecthierarchy",
        "Tables": "tables",
    }
    return {key: getattr(modules, name).logic() for key, name in names.items() if hasattr(modules, name)}
