"""Scene bundles (``.mrb``) saved and loaded through the MRML scene itself, outside the Slicer application.

``vtkMRMLScene.WriteToMRB`` writes every storable node through its storage node (volumes ``.nrrd``,
markups ``.mrk.json``, tables ``.tsv``, segmentations ``.seg.nrrd``, text nodes ``.txt``) plus the
``.mrml`` file; ``ReadFromMRB`` needs the remote IO and data IO manager logics on the scene
(DESIGN.md section 3), which :func:`enable_bundle_reading` adds when missing. Writing goes to a
temporary file renamed at the end, so an existing bundle is never half-overwritten.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, Union

from ..io.atomic import atomic_path
from .scene import import_slicer, scene_logics

PathLike = Union[str, Path]


class BundleError(OSError):
    """A scene bundle that could not be written or read."""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep VTK's per-file "Zip: adding ..." messages out of the console while zipping / unzipping."""
    from vtkmodules.vtkCommonCore import vtkOutputWindow, vtkStringOutputWindow

    previous = vtkOutputWindow.GetInstance()
    previous.Register(None)
    vtkOutputWindow.SetInstance(vtkStringOutputWindow())
    try:
        yield
    finally:
        vtkOutputWindow.SetInstance(previous)
        previous.UnRegister(None)


def enable_bundle_reading(scene) -> None:
    """Give the scene a data IO manager (remote IO + data IO manager logics) when it has none."""
    slicer = import_slicer()
    if scene.GetDataIOManager() is not None:
        return
    logics = scene_logics(scene)
    app_logic = logics.get("ApplicationLogic")
    remote = slicer.vtkMRMLRemoteIOLogic()
    remote.SetMRMLScene(scene)
    io_logic = slicer.vtkDataIOManagerLogic()
    if app_logic is not None:
        io_logic.SetMRMLApplicationLogic(app_logic)
    io_logic.SetAndObserveDataIOManager(remote.GetDataIOManager())
    remote.AddDataIOToScene()
    logics["RemoteIO"], logics["DataIOManager"] = remote, io_logic


def save_bundle(scene, path: PathLike, *, overwrite: bool = False) -> Path:
    """Write the whole scene to a ``.mrb`` file.

    Raises:
        ExistingFileError: if the file exists and ``overwrite`` is False.
        BundleError: if the scene reports a failure.

    """
    path = Path(path)
    if path.suffix.lower() != ".mrb":
        raise ValueError(f"{path.name}: a scene bundle must end in .mrb")
    # The bundle's inner folder and .mrml file take the file's name: write it under its own name in a
    # private folder beside the target, then move it into place (atomic_path checks and renames).
    with atomic_path(path, overwrite=overwrite) as temporary:
        folder = Path(tempfile.mkdtemp(prefix=".vf-bundle-", dir=path.parent))
        try:
            with _quiet():
                ok = scene.WriteToMRB(str(folder / path.name))
            if not ok or not (folder / path.name).is_file():
                raise BundleError(f"writing the scene to {path} failed")
            os.replace(folder / path.name, temporary)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return path


def load_bundle(scene, path: PathLike, *, clear: bool = True) -> None:
    """Read a ``.mrb`` file into the scene (cleared first unless ``clear`` is False).

    Raises:
        FileNotFoundError: if the file does not exist.
        BundleError: if the scene cannot read it.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such scene bundle")
    if not zipfile.is_zipfile(path):
        raise BundleError(f"{path}: not a scene bundle (a .mrb is a zip archive)")
    enable_bundle_reading(scene)
    # vtkArchive changes the working directory while unpacking and, when reading fails, leaves it
    # in a folder it then deletes: restore it whatever happens.
    cwd = os.getcwd()
    try:
        with _quiet():
            ok = scene.ReadFromMRB(str(path), clear)
    finally:
        os.chdir(cwd)
    if not ok:
        raise BundleError(f"{path}: the scene cannot read this bundle")
