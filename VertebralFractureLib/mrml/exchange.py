"""Export and import of annotations from the module: project JSON, VerSe centroids, CSV, ``.mrk.json``.

:class:`ExchangeMixin` is part of :class:`VertebralFractureLib.mrml.logic.VertebralFractureLogic`.
Formats (chosen from the file name unless given):

========================  =============================  ==========================================
format                    file name                      content
========================  =============================  ==========================================
``annotations``           ``*.json``                     the project's annotation file: keypoints,
                                                         centroids, scores and every edit history
``verse``                 ``*_ctd.json``                 VerSe centroid file (voxel indices of the
                                                         input volume; needs the volume)
``csv``                   ``*.csv``                      keypoint table (one row per vertebra)
``genant_csv``            (export only)                  Genant measures table
``markups``               ``*.mrk.json``                 keypoints through Slicer's storage node,
                                                         centroids beside it (``*_centroids.mrk.json``)
========================  =============================  ==========================================

A 2D result (frame ``"pixel"``, a radiograph) exports as annotations (the lossless format: points
``[column, row]`` and the pixel spacing), keypoint CSV and Genant CSV as for a CT; ``.mrk.json``
files hold the points where the scene shows them, in the physical (LPS mm) frame of the radiograph
volume, written by Slicer's storage node, and read back to pixels when imported with that volume
selected. VerSe centroid files (3D voxel indices) are refused for 2D results.

Exports go through :mod:`VertebralFractureLib.io.atomic`: an existing file is refused unless
``overwrite`` is given (the widget asks first), and a failed write leaves no partial file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Union

from ..io.atomic import ExistingFileError
from ..schema import SpineResult
from .results import ResultNodes

PathLike = Union[str, Path]
FORMATS = ("annotations", "verse", "csv", "genant_csv", "markups")
IMPORT_FORMATS = ("annotations", "csv", "markups")
#: File dialog filters of the formats.
FILTERS = {
    "annotations": "Annotations (*.json)",
    "verse": "VerSe centroids (*_ctd.json)",
    "csv": "Keypoint table (*.csv)",
    "genant_csv": "Genant table (*.csv)",
    "markups": "Slicer markups (*.mrk.json)",
}


def format_of(path: PathLike) -> str:
    """The format a file name implies (see the module table).

    Raises:
        ValueError: for a name no format uses.

    """
    name = Path(path).name.lower()
    if name.endswith(".mrk.json"):
        return "markups"
    if name.endswith("_ctd.json"):
        return "verse"
    if name.endswith(".json"):
        return "annotations"
    if name.endswith(".csv"):
        return "csv"
    raise ValueError(f"{Path(path).name}: cannot tell the format (use .json, _ctd.json, .csv or .mrk.json)")


def centroids_path(path: PathLike) -> Path:
    """The centroids file written beside a keypoints ``.mrk.json`` (``x.mrk.json`` -> ``x_centroids.mrk.json``)."""
    path = Path(path)
    stem = path.name[: -len(".mrk.json")] if path.name.lower().endswith(".mrk.json") else path.stem
    return path.with_name(f"{stem}_centroids.mrk.json")


class ExchangeMixin:
    """Export / import (mixed into the module logic; needs ``scene`` and ``show_result``)."""

    def export_annotations(
        self, nodes: ResultNodes, path: PathLike, *, file_format: Optional[str] = None, overwrite: bool = False
    ) -> List[Path]:
        """Write the current result in a format; returns the files written.

        Raises:
            ExistingFileError: if a target exists and ``overwrite`` is False (nothing is written).
            ValueError: for an unknown format, or VerSe without an input volume.

        """
        from ..io.annotations import write_annotations
        from ..io.csv_tables import write_genant_csv, write_keypoints_csv
        from ..io.verse import write_verse_centroids
        from .markups import write_markups_node
        from .volumes import geometry_of_volume

        path = Path(path)
        file_format = file_format or format_of(path)
        result = nodes.result
        if file_format == "annotations":
            return [write_annotations(result, path, overwrite=overwrite)]
        if file_format == "csv":
            return [write_keypoints_csv(result, path, overwrite=overwrite)]
        if file_format == "genant_csv":
            return [write_genant_csv(result, path, overwrite=overwrite)]
        if file_format == "verse":
            if result.frame == "pixel":
                raise ValueError(
                    "VerSe centroid files hold 3D voxel indices of a CT; a radiograph result (2D points) "
                    "exports as annotations (.json), a keypoint CSV or .mrk.json"
                )
            if nodes.volume is None:
                raise ValueError("VerSe centroids are voxel indices: the result needs its input volume")
            centroids = {v.label: v.centroid for v in result.vertebrae}
            return [write_verse_centroids(path, centroids, geometry_of_volume(nodes.volume), overwrite=overwrite)]
        if file_format == "markups":
            second = centroids_path(path)
            for target in (path, second):
                if target.exists() and not overwrite:
                    raise ExistingFileError(f"{target} exists; refusing to overwrite it")
            existed = second.exists()
            written = [write_markups_node(nodes.keypoints, path, overwrite=overwrite)]
            try:
                written.append(write_markups_node(nodes.centroids, second, overwrite=overwrite))
            except BaseException:
                if not existed and not overwrite:
                    path.unlink(missing_ok=True)
                raise
            return written
        raise ValueError(f"unknown export format {file_format!r}; expected one of {', '.join(FORMATS)}")

    def read_annotations_file(self, path: PathLike, *, file_format: Optional[str] = None, volume=None) -> SpineResult:
        """Read an annotation, keypoint CSV or ``.mrk.json`` file into a result (nothing added to the scene).

        With a radiograph ``volume`` (one slice), a 2D keypoint CSV takes the volume's pixel
        spacing, and ``.mrk.json`` points are mapped back to pixels through the volume (frame pixel).

        Raises:
            AnnotationError / TableError / MarkupsFormatError: naming the file and the problem.
            ValueError: for a format that holds no keypoints (VerSe: see :meth:`import_verse_centroids`).

        """
        from ..io.annotations import read_annotations
        from ..io.csv_tables import read_keypoints_csv
        from ..io.mrk_json import read_result_markups
        from . import radiographs

        path = Path(path)
        file_format = file_format or format_of(path)
        if file_format == "annotations":
            return read_annotations(path)
        radiograph = radiographs.is_radiograph_volume(volume)
        if file_format == "csv":
            if radiograph:
                spacing = radiographs.volume_pixel_spacing(volume)
                return read_keypoints_csv(path, input=self._input_block(volume), pixel_spacing=spacing)
            return read_keypoints_csv(path, input=self._input_block(volume))
        if file_format == "markups":
            second = centroids_path(path)
            result = read_result_markups(path, second if second.is_file() else None)
            if radiograph:
                result = radiographs.pixel_result_from_lps(result, radiographs.volume_pixel_to_ras(volume))
            result.input = self._input_block(volume)
            return result
        raise ValueError(
            f"{path.name}: {file_format} files hold no keypoints; import annotations, a keypoint CSV or .mrk.json"
        )

    def import_annotations(
        self, path: PathLike, *, file_format: Optional[str] = None, volume=None, name: str = ""
    ) -> ResultNodes:
        """Read a file (see :meth:`read_annotations_file`) and show it in the scene, editable.

        Raises:
            GeometryMismatchError: if the file was made on another image than ``volume``
                (:mod:`.geometry_check`); nothing is added to the scene then.

        """
        from .geometry_check import check_geometry

        result = self.read_annotations_file(path, file_format=file_format, volume=volume)
        check_geometry(result, volume, Path(path).name)
        return self.show_result(result, volume=volume, name=name or Path(path).name.split(".")[0], check=False)

    def import_verse_centroids(self, path: PathLike, volume) -> Any:
        """A centroids markups node from a VerSe ``*_ctd.json`` file of ``volume``.

        Raises:
            VerseFormatError: naming the file and the entry.

        """
        from ..geometry import lps_to_ras
        from ..io.verse import read_verse_centroids
        from .volumes import geometry_of_volume

        centroids = read_verse_centroids(path, geometry_of_volume(volume))
        node = self.scene.AddNewNodeByClass(
            "vtkMRMLMarkupsFiducialNode", self.scene.GenerateUniqueName(Path(path).name.split(".")[0])
        )
        for level, point in centroids.items():
            index = node.AddControlPoint(lps_to_ras(point).tolist(), level)
            node.SetNthControlPointDescription(index, f"{level}:centroid")
        node.CreateDefaultDisplayNodes()
        return node

    @staticmethod
    def _input_block(volume) -> dict:
        if volume is None:
            return {}
        from . import radiographs
        from .volumes import geometry_of_volume

        if radiographs.is_radiograph_volume(volume):
            spacing = list(radiographs.volume_pixel_spacing(volume))
            dimensions = volume.GetImageData().GetDimensions()
            return {"path": volume.GetName(), "modality": "lateral radiograph", "size": list(dimensions[:2]),
                    "pixel_spacing": spacing}

        geometry = geometry_of_volume(volume)
        return {**geometry.to_dict(), "orientation": geometry.orientation_code, "path": volume.GetName()}
