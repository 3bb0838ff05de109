"""The public six-point vertebra height annotation of CTLungCa-500 (Pisov et al. 2020; Zakharov et al. 2023).

One JSON file per CT series (github ``neuro-ml/vertebral-fractures-severity`` and
``neuro-ml/anchor-free-genant``, folder ``annotation/``)::

    {"Folder": "...", "SeriesInstanceUID": "...",
     "Annotation": {"expert1": [vertebra, ...], "expert2": [...]}}

Two spellings of a vertebra occur:

* 2020 release (Pisov et al. 2020): six points ``[[p0, p1, p2] x 6]``, vertebrae listed cranio-caudally
  with no level names;
* 2023 release: ``{"segments": [[sup, inf] x 3], "type": "Th7"}``.

Point order, checked against the released files (the same vertebra appears in both releases):
the six points are the three segments ``anterior, middle, posterior``, each ``superior,
inferior`` -- exactly :data:`VertebralFractureLib.genant.KEYPOINT_NAMES`; ``segments`` is the same
order reshaped to 3 x 2 x 3.

Coordinates: the release's loader stacks the axial DICOM slices as ``image[row, column, slice]``
(slices sorted by InstanceNumber) and draws ``image[:, p1].T`` with the points' ``(p0, p2)``. So a
point is ``[row, column, slice]`` in voxels: ``p1`` is the sagittal (column) index and is nearly
constant within a vertebra, ``p0`` runs anterior -> posterior, ``p2`` cranial -> caudal. With
ITK indices ``(i, j, k) = (column, row, slice)`` this is ``point_axes = (1, 0, 2)`` (point
component m is ITK axis ``point_axes[m]``), the default. InstanceNumber order is often the
opposite of the order SimpleITK reads a series in (by position, usually feet first); by default
(``reverse_slices=None``) the slice direction is chosen from the anatomy on import (superior
endplate points must lie cranial of inferior ones) and, on export, so that the slice index grows
caudally as in the released files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..geometry import ImageGeometry
from ..levels import UnknownLevelError, level_index, normalise_level, shift_level
from ..schema import SchemaError, SpineResult, Vertebra
from .atomic import atomic_write
from .verse import reference_geometry

PathLike = Union[str, Path]
#: Point component m of ``[row, column, slice]`` is ITK index axis ``DEFAULT_POINT_AXES[m]``.
DEFAULT_POINT_AXES = (1, 0, 2)


class CTLungCaError(ValueError):
    """A CTLungCa-500 annotation that cannot be used; the message names the file, expert and vertebra."""


def ctlungca_level_name(level: str) -> str:
    """Level in the dataset's spelling: thoracic ``Th7``, others unchanged (``L1``, ``C7``)."""
    level = normalise_level(level)
    return "Th" + level[1:] if level.startswith("T") else level


def _check_axes(point_axes: Sequence[int]) -> Tuple[int, int, int]:
    axes = tuple(int(a) for a in point_axes)
    if sorted(axes) != [0, 1, 2]:
        raise CTLungCaError(f"point_axes must be a permutation of (0, 1, 2), got {tuple(point_axes)}")
    return axes  # type: ignore[return-value]


def points_to_index(
    points: np.ndarray,
    geometry: ImageGeometry,
    point_axes: Sequence[int] = DEFAULT_POINT_AXES,
    reverse_slices: bool = False,
) -> np.ndarray:
    """File points ``[row, column, slice]`` (..., 3) to continuous ITK indices (..., 3)."""
    axes = _check_axes(point_axes)
    points = np.asarray(points, dtype=float)
    index = np.empty_like(points)
    for m, axis in enumerate(axes):
        index[..., axis] = points[..., m]
    if reverse_slices:
        k = axes[2]
        index[..., k] = geometry.size[k] - 1 - index[..., k]
    return index


def index_to_points(
    index: np.ndarray,
    geometry: ImageGeometry,
    point_axes: Sequence[int] = DEFAULT_POINT_AXES,
    reverse_slices: bool = False,
) -> np.ndarray:
    """Inverse of :func:`points_to_index`."""
    axes = _check_axes(point_axes)
    index = np.array(index, dtype=float)
    if reverse_slices:
        k = axes[2]
        index[..., k] = geometry.size[k] - 1 - index[..., k]
    return np.stack([index[..., axis] for axis in axes], axis=-1)


def _parse_vertebra(entry: Any, where: str) -> Tuple[Optional[str], np.ndarray]:
    label = None
    if isinstance(entry, dict):
        if "segments" not in entry:
            raise CTLungCaError(f"{where}: a vertebra object needs 'segments' (3 x 2 points) and 'type'")
        raw = entry["segments"]
        if "type" in entry:
            try:
                label = normalise_level(entry["type"])
            except UnknownLevelError as error:
                raise CTLungCaError(f"{where}: {error}") from None
        expected = (3, 2, 3)
    elif isinstance(entry, list):
        raw, expected = entry, (6, 3)
    else:
        raise CTLungCaError(f"{where}: expected six [row, column, slice] points or an object with 'segments'")
    try:
        points = np.asarray(raw, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise CTLungCaError(f"{where}: points are not a regular array of numbers") from None
    if points.shape != expected:
        raise CTLungCaError(f"{where}: expected points of shape {expected}, got {points.shape}")
    if not np.all(np.isfinite(points)):
        raise CTLungCaError(f"{where}: points contain non-finite values")
    return label, points.reshape(6, 3)


def _parse_experts(document: Any, source: str, first_level: Optional[str]) -> Dict[str, List[Tuple[str, np.ndarray]]]:
    if not isinstance(document, dict):
        raise CTLungCaError(f"{source}: expected a JSON object with 'Annotation'")
    annotation = document.get("Annotation")
    if not isinstance(annotation, dict) or not annotation:
        raise CTLungCaError(f"{source}: 'Annotation' must be an object of expert name -> list of vertebrae")
    experts: Dict[str, List[Tuple[str, np.ndarray]]] = {}
    for expert, entries in annotation.items():
        if not isinstance(entries, list):
            raise CTLungCaError(f"{source}: {expert}: expected a list of vertebrae")
        vertebrae: List[Tuple[str, np.ndarray]] = []
        for number, entry in enumerate(entries, start=1):
            where = f"{source}: {expert}, vertebra {number}"
            label, points = _parse_vertebra(entry, where)
            if label is None:
                if first_level is None:
                    raise CTLungCaError(
                        f"{where}: the file does not name the levels; pass first_level (the level of the "
                        "first listed vertebra, e.g. 'T1')"
                    )
                try:
                    label = shift_level(first_level, number - 1)
                except UnknownLevelError as error:
                    raise CTLungCaError(f"{where}: {error}") from None
            if any(label == other for other, _ in vertebrae):
                raise CTLungCaError(f"{where}: duplicate level {label}")
            vertebrae.append((label, points))
        experts[str(expert)] = vertebrae
    return experts


def _choose_reverse(experts: Mapping[str, List[Tuple[str, np.ndarray]]], geometry, point_axes) -> bool:
    """True if superior points come out caudal of inferior ones without reversing the slices."""
    points = np.array([p for vertebrae in experts.values() for _, p in vertebrae]).reshape(-1, 3, 2, 3)
    if points.size == 0:
        return False
    lps = geometry.index_to_lps(points_to_index(points, geometry, point_axes, False))
    return bool(np.mean(lps[..., 0, 2] - lps[..., 1, 2]) < 0)


def parse_ctlungca(
    document: Any,
    reference: Any,
    *,
    point_axes: Sequence[int] = DEFAULT_POINT_AXES,
    reverse_slices: Optional[bool] = None,
    first_level: Optional[str] = None,
    source: str = "CTLungCa-500 annotation",
) -> Dict[str, SpineResult]:
    """Results (one per expert) from a parsed CTLungCa-500 annotation; see :func:`read_ctlungca`."""
    geometry = reference_geometry(reference)
    if geometry.dimension != 3:
        raise CTLungCaError(f"{source}: the reference image must be 3D")
    _check_axes(point_axes)
    if first_level is not None:
        try:
            first_level = normalise_level(first_level)
        except UnknownLevelError as error:
            raise CTLungCaError(f"{source}: first_level: {error}") from None
    experts = _parse_experts(document, source, first_level)
    if reverse_slices is None:
        reverse_slices = _choose_reverse(experts, geometry, point_axes)
    results: Dict[str, SpineResult] = {}
    for expert, vertebrae in experts.items():
        items = []
        for label, points in vertebrae:
            lps = geometry.index_to_lps(points_to_index(points, geometry, point_axes, reverse_slices))
            items.append(Vertebra(label, lps.mean(axis=0), lps, confidence=None, source=f"CTLungCa-500 {expert}"))
        info = {
            **geometry.to_dict(),
            "format": "CTLungCa-500",
            "Folder": document.get("Folder"),
            "SeriesInstanceUID": document.get("SeriesInstanceUID"),
            "expert": expert,
            "reverse_slices": bool(reverse_slices),
        }
        try:
            results[expert] = SpineResult(items, frame="LPS", input=info)
        except SchemaError as error:
            raise CTLungCaError(f"{source}: {expert}: {error}") from None
    return results


def read_ctlungca(
    path: PathLike,
    reference: Any,
    *,
    point_axes: Sequence[int] = DEFAULT_POINT_AXES,
    reverse_slices: Optional[bool] = None,
    first_level: Optional[str] = None,
) -> Dict[str, SpineResult]:
    """Read a CTLungCa-500 annotation file into one :class:`SpineResult` per expert.

    Args:
        path: the annotation JSON.
        reference: geometry of the series the points belong to (ImageGeometry, SimpleITK image or
            image path).
        point_axes: ITK index axis of each point component (default ``[row, column, slice]``).
        reverse_slices: count the slice index from the other end; None chooses from the anatomy.
        first_level: level of the first listed vertebra, needed for files without ``type`` labels.

    Returns:
        Expert name -> result in LPS mm (centroid = mean of the six points).

    Raises:
        CTLungCaError: for invalid JSON or malformed entries, naming the file, expert and vertebra.

    """
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CTLungCaError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise CTLungCaError(f"{path}: cannot read the file: {error}") from None
    except json.JSONDecodeError as error:
        raise CTLungCaError(f"{path}: not valid JSON (empty or truncated?): {error}") from None
    return parse_ctlungca(
        document,
        reference,
        point_axes=point_axes,
        reverse_slices=reverse_slices,
        first_level=first_level,
        source=str(path),
    )


def ctlungca_document(
    results: Mapping[str, SpineResult],
    reference: Any,
    *,
    folder: str = "",
    series_uid: str = "",
    point_axes: Sequence[int] = DEFAULT_POINT_AXES,
    reverse_slices: Optional[bool] = None,
    labelled: bool = True,
) -> Dict[str, Any]:
    """The CTLungCa-500 JSON document of one result per expert (inverse of :func:`parse_ctlungca`).

    Args:
        results: expert name -> result (LPS frame).
        reference: geometry of the series.
        folder: the ``Folder`` field (the series folder name in the dataset).
        series_uid: the ``SeriesInstanceUID`` field.
        point_axes: as in :func:`read_ctlungca`.
        reverse_slices: None makes the slice index grow caudally, as in the released files.
        labelled: write the 2023 ``{"segments", "type"}`` form; False writes bare six-point lists
            (2020 form), which only makes sense for a run of consecutive levels.

    Raises:
        CTLungCaError: for a non-LPS result.

    """
    geometry = reference_geometry(reference)
    axes = _check_axes(point_axes)
    if reverse_slices is None:
        reverse_slices = bool(geometry.direction[2, axes[2]] > 0)
    annotation: Dict[str, Any] = {}
    for expert, result in results.items():
        if result.frame != "LPS":
            raise CTLungCaError(f"{expert}: only LPS (CT) results can be exported, got frame {result.frame!r}")
        entries = []
        for v in sorted(result.vertebrae, key=lambda x: level_index(x.label)):
            points = index_to_points(geometry.lps_to_index(v.keypoints), geometry, axes, reverse_slices)
            if labelled:
                entries.append({"segments": points.reshape(3, 2, 3).tolist(), "type": ctlungca_level_name(v.label)})
            else:
                entries.append(points.tolist())
        annotation[str(expert)] = entries
    return {"Folder": folder, "SeriesInstanceUID": series_uid, "Annotation": annotation}


def write_ctlungca(
    path: PathLike,
    results: Mapping[str, SpineResult],
    reference: Any,
    *,
    folder: str = "",
    series_uid: str = "",
    point_axes: Sequence[int] = DEFAULT_POINT_AXES,
    reverse_slices: Optional[bool] = None,
    labelled: bool = True,
    overwrite: bool = False,
) -> Path:
    """Write results as a CTLungCa-500 annotation file (atomically); see :func:`ctlungca_document`.

    Raises:
        CTLungCaError: for a non-LPS result.
        ExistingFileError: if the file exists and ``overwrite`` is False.

    """
    document = ctlungca_document(
        results,
        reference,
        folder=folder,
        series_uid=series_uid,
        point_axes=point_axes,
        reverse_slices=reverse_slices,
        labelled=labelled,
    )
    return atomic_write(path, json.dumps(document, indent=2, allow_nan=False), overwrite=overwrite)


__all__ = [
    "DEFAULT_POINT_AXES",
    "CTLungCaError",
    "ctlungca_document",
    "ctlungca_level_name",
    "index_to_points",
    "parse_ctlungca",
    "points_to_index",
    "read_ctlungca",
    "write_ctlungca",
]
