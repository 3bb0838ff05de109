"""CSV tables: the Genant measures per vertebra, and the keypoints for editing in a spreadsheet.

Genant table (one row per vertebra, cranio-caudal, every vertebra found with its status and verdict;
empty cell = no value)::

    case,level,verdict,verdict_reason,status,status_reason,ha_mm,hm_mm,hp_mm,ha_px,hm_px,hp_px,G,grade,type,
    neighbour_reduction,confidence,quality,fracture_probability,voxel_fracture_score,abnormality,source,
    review,reviewed_by,reviewed_at

Heights are in mm (``ha_mm``, ``hm_mm``, ``hp_mm``), or, for a picture with no pixel size (an 8-bit export
of a radiograph, ``SpineResult.height_unit == "pixel"``), in pixels (``ha_px``, ``hm_px``, ``hp_px``, the mm
cells empty): one unit per column, never pixels under a mm name. Numbers are rounded to what is measured
(:data:`DECIMALS`: heights 0.1 mm, G, reductions, confidences
and probabilities 0.01, abnormality 0.1 on its 0-100 scale). These column names are the one naming
scheme of the outputs: the HTML report's table uses them (with :data:`COLUMN_UNITS`), and the Slicer
table shows them as its column titles. ``review`` / ``reviewed_by`` / ``reviewed_at`` are a reader's
mark from the Slicer review panel (``Vertebra.extra["review"]``: accepted or rejected, by whom, when,
UTC); empty when nobody reviewed the vertebra.

Keypoint table (one row per vertebra): ``level``, the six keypoints in
:data:`VertebralFractureLib.genant.KEYPOINT_NAMES` order as ``anterior_superior_x``,
``anterior_superior_y``, ``anterior_superior_z``, ... (x, y, z in LPS mm; a 2D ``pixel`` result
has no ``_z`` columns and x, y are column and row), then ``centroid_x/y/z`` (may be left empty:
the mean of the keypoints is used) and ``source``. Numbers are written with Python's shortest
exact representation, so a table read back gives the same points.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..genant import KEYPOINT_NAMES
from ..levels import UnknownLevelError, normalise_level
from ..schema import SCORE_FIELDS, SchemaError, SpineResult, Vertebra
from .atomic import atomic_write
from .text import read_text_file

PathLike = Union[str, Path]

GENANT_COLUMNS = (
    "case",
    "level",
    "verdict",
    "verdict_reason",
    "status",
    "status_reason",
    "ha_mm",
    "hm_mm",
    "hp_mm",
    "ha_px",
    "hm_px",
    "hp_px",
    "G",
    "grade",
    "type",
    "neighbour_reduction",
    "confidence",
    "quality",
    "fracture_probability",
    "voxel_fracture_score",
    "abnormality",
    "source",
    "review",
    "reviewed_by",
    "reviewed_at",
)
#: ``Vertebra.extra`` key of a reader's review mark (``{"decision", "by", "at"}``, set by the Slicer module).
REVIEW_KEY = "review"
_FLOAT_COLUMNS = (
    "ha_mm",
    "hm_mm",
    "hp_mm",
    "ha_px",
    "hm_px",
    "hp_px",
    "G",
    "neighbour_reduction",
    "confidence",
    "quality",
    *SCORE_FIELDS,
)
#: Decimal places kept for each number column (what the measurement supports).
DECIMALS: Dict[str, int] = {
    "ha_mm": 1,
    "hm_mm": 1,
    "hp_mm": 1,
    "ha_px": 1,
    "hm_px": 1,
    "hp_px": 1,
    "G": 2,
    "neighbour_reduction": 2,
    "confidence": 2,
    "quality": 2,
    "fracture_probability": 2,
    "voxel_fracture_score": 2,
    "abnormality": 1,
}
#: Unit and meaning of every Genant column (report header, Slicer column descriptions).
COLUMN_UNITS: Dict[str, Tuple[str, str]] = {
    "case": ("", "case: the input file (or the batch case folder)"),
    "level": ("", "vertebra level"),
    "verdict": ("", "fracture, review, normal or not assessed"),
    "verdict_reason": ("", "why this verdict"),
    "status": ("", "assessed, or not_assessed (never graded)"),
    "status_reason": ("", "why the vertebra is not assessed"),
    "ha_mm": ("mm", "anterior height"),
    "hm_mm": ("mm", "middle height"),
    "hp_mm": ("mm", "posterior height"),
    "ha_px": ("px", "anterior height in pixels (a picture with no pixel size)"),
    "hm_px": ("px", "middle height in pixels (a picture with no pixel size)"),
    "hp_px": ("px", "posterior height in pixels (a picture with no pixel size)"),
    "G": ("0-1", "Genant index min(h) / max(h)"),
    "grade": ("0-3", "Genant grade"),
    "type": ("", "deformity type: none, wedge, biconcave, crush"),
    "neighbour_reduction": ("0-1", "loss against the normal neighbours (detected points: size only)"),
    "confidence": ("0-1", "detection confidence"),
    "quality": ("0-1", "image quality score of the quality gate"),
    "fracture_probability": ("0-1", "patch classifier probability (Husseini et al. 2020)"),
    "voxel_fracture_score": ("0-1", "voxel fracture map score (Nicolaes et al. 2019)"),
    "abnormality": ("0-100", "shape abnormality (Botros et al. 2022)"),
    "source": ("", "where the keypoints came from ('moved by the reader' added once a reader moved them)"),
    "review": ("", "a reader's decision: accepted or rejected (empty: not reviewed)"),
    "reviewed_by": ("", "who reviewed"),
    "reviewed_at": ("", "when (UTC, ISO 8601)"),
}
_TEXT_COLUMNS = ("case", "verdict", "verdict_reason", "status", "status_reason", "type", "source", "review",
                 "reviewed_by", "reviewed_at")
KEYPOINT_PREFIXES = tuple(name.replace(" ", "_") for name in KEYPOINT_NAMES)


class TableError(ValueError):
    """A CSV table that cannot be read; the message names the file, the row and the column."""


def keypoint_columns(dimension: int = 3) -> List[str]:
    """Column names of the keypoint table for 3D (LPS) or 2D (pixel) points."""
    axes = "xyz"[:dimension]
    columns = ["level"]
    columns += [f"{prefix}_{axis}" for prefix in KEYPOINT_PREFIXES for axis in axes]
    columns += [f"centroid_{axis}" for axis in axes]
    columns.append("source")
    return columns


def _cell(value: Any) -> Any:
    return "" if value is None else value


def case_id(result: SpineResult) -> str:
    """The case a result belongs to: ``input["case"]`` when set (batch), else the input's file name."""
    return str(result.input.get("case") or result.input.get("path") or "")


def _round(column: str, value: Any) -> Any:
    if value == "" or column not in DECIMALS:
        return value
    rounded = round(float(value), DECIMALS[column])
    return rounded + 0.0  # no "-0.0"


def genant_rows(result: SpineResult, case: Optional[str] = None) -> List[Dict[str, Any]]:
    """One dict per vertebra with the :data:`GENANT_COLUMNS`, rounded (:data:`DECIMALS`); ``""`` where no value.

    Args:
        result: the vertebrae.
        case: the ``case`` cell (default :func:`case_id`).
    """
    case = case_id(result) if case is None else case
    rows = []
    for v in result.vertebrae:
        m = v.measure
        verdict, verdict_reason = v.verdict()
        row: Dict[str, Any] = {"case": case, "level": v.label, "verdict": verdict, "verdict_reason": verdict_reason,
                               "status": v.status, "status_reason": _cell(v.status_reason)}
        heights = m.heights if m is not None else (None, None, None)
        pixels = result.height_unit == "pixel"
        row.update(zip(("ha_mm", "hm_mm", "hp_mm"), map(_cell, (None,) * 3 if pixels else heights)))
        row.update(zip(("ha_px", "hm_px", "hp_px"), map(_cell, heights if pixels else (None,) * 3)))
        row["G"] = _cell(m.G if m else None)
        row["grade"] = _cell(m.grade if m else None)
        row["type"] = _cell(m.type if m else None)
        row["neighbour_reduction"] = _cell(m.neighbour_reduction if m else None)
        row["confidence"] = _cell(v.confidence)
        row["quality"] = _cell(v.quality)
        for name in SCORE_FIELDS:
            row[name] = _cell(getattr(v, name))
        row["source"] = v.points_shown_source
        mark = v.extra.get(REVIEW_KEY)
        mark = mark if isinstance(mark, dict) else {}
        row.update({"review": _cell(mark.get("decision")), "reviewed_by": _cell(mark.get("by")),
                    "reviewed_at": _cell(mark.get("at"))})
        rows.append({column: _round(column, value) for column, value in row.items()})
    return rows


def _format(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _csv_text(columns: Sequence[str], rows: Sequence[Dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_format(row.get(c, "")) for c in columns])
    return buffer.getvalue()


def write_genant_csv(result: SpineResult, path: PathLike, overwrite: bool = False, *,
                     case: Optional[str] = None) -> Path:
    """Write the Genant table of a result (atomically), rounded to what is measured.

    Args:
        result: the vertebrae.
        path: target ``.csv``.
        overwrite: replace an existing file.
        case: the ``case`` cell (default :func:`case_id`).

    Raises:
        ExistingFileError: if the file exists and ``overwrite`` is False.

    """
    return atomic_write(path, _csv_text(GENANT_COLUMNS, genant_rows(result, case)), overwrite=overwrite)


def _read_rows(path: PathLike, required: Sequence[str]) -> Tuple[List[str], List[Dict[str, str]]]:
    path = Path(path)
    text = read_text_file(path, TableError, encoding="utf-8-sig")
    if not text.strip():
        raise TableError(f"{path}: the file is empty")
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    rows = []
    for row in reader:
        if None in row:
            raise TableError(f"{path}: line {reader.line_num}: more cells than columns")
        if not any((value or "").strip() for value in row.values()):
            continue
        rows.append({k: (v or "").strip() for k, v in row.items()})
        rows[-1]["__line__"] = str(reader.line_num)
    return header, rows


def _float(path: PathLike, row: Dict[str, str], column: str, *, required: bool = False) -> Optional[float]:
    text = row.get(column, "")
    where = f"{path}: line {row['__line__']} ({row.get('level') or 'no level'}), column {column!r}"
    if text == "":
        if required:
            raise TableError(f"{where}: value missing")
        return None
    try:
        value = float(text)
    except ValueError:
        raise TableError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise TableError(f"{where}: {text!r} is not finite")
    return value


def _level(path: PathLike, row: Dict[str, str], seen: set) -> str:
    try:
        level = normalise_level(row["level"])
    except UnknownLevelError as error:
        raise TableError(f"{path}: line {row['__line__']}, column 'level': {error}") from None
    if level in seen:
        raise TableError(f"{path}: line {row['__line__']}: duplicate level {level}")
    seen.add(level)
    return level


def read_genant_csv(path: PathLike) -> List[Dict[str, Any]]:
    """Read a Genant table written by :func:`write_genant_csv`.

    Returns:
        One dict per row: ``level`` (canonical name), ``case``, floats for heights / G / reductions /
        scores, an int ``grade``, strings ``status``, ``status_reason``, ``type``, ``source`` and the review
        mark (``review``, ``reviewed_by``, ``reviewed_at``); None for empty cells.

    Raises:
        TableError: for a missing column, an unknown or duplicate level, or a cell that is not a
            number where one is expected; the message names the file, line and column.

    """
    _, rows = _read_rows(path, ("level",))
    out, seen = [], set()
    for row in rows:
        record: Dict[str, Any] = {"level": _level(path, row, seen)}
        for column in _FLOAT_COLUMNS:
            record[column] = _float(path, row, column)
        grade = _float(path, row, "grade")
        if grade is not None and (grade != int(grade) or not 0 <= grade <= 3):
            raise TableError(f"{path}: line {row['__line__']}, column 'grade': expected 0-3, got {row['grade']!r}")
        record["grade"] = None if grade is None else int(grade)
        for column in _TEXT_COLUMNS:
            record[column] = row.get(column) or None
        out.append(record)
    return out


def keypoint_rows(result: SpineResult) -> List[Dict[str, Any]]:
    """One dict per vertebra with the :func:`keypoint_columns` of the result's dimension."""
    dimension = 2 if result.frame == "pixel" else 3
    axes = "xyz"[:dimension]
    rows = []
    for v in result.vertebrae:
        row: Dict[str, Any] = {"level": v.label, "source": v.source}
        for prefix, point in zip(KEYPOINT_PREFIXES, v.keypoints):
            row.update({f"{prefix}_{a}": float(c) for a, c in zip(axes, point)})
        row.update({f"centroid_{a}": float(c) for a, c in zip(axes, v.centroid)})
        rows.append(row)
    return rows


def write_keypoints_csv(result: SpineResult, path: PathLike, overwrite: bool = False) -> Path:
    """Write the keypoints of a result as a table a spreadsheet user can edit (atomically).

    Raises:
        ExistingFileError: if the file exists and ``overwrite`` is False.

    """
    dimension = 2 if result.frame == "pixel" else 3
    return atomic_write(path, _csv_text(keypoint_columns(dimension), keypoint_rows(result)), overwrite=overwrite)


def read_keypoints_csv(
    path: PathLike,
    *,
    input: Optional[Dict[str, Any]] = None,
    pixel_spacing: Sequence[float] = (1.0, 1.0),
    source: str = "annotator",
) -> SpineResult:
    """Read a keypoint table into a :class:`SpineResult` (Genant measures recomputed).

    Args:
        path: CSV file written by :func:`write_keypoints_csv` (or edited from one).
        input: the ``input`` block of the result (image geometry), if known.
        pixel_spacing: mm per pixel for 2D tables (no ``_z`` columns).
        source: source of rows whose ``source`` cell is empty or absent.

    Raises:
        TableError: for missing columns, unknown or duplicate levels, empty or non-numeric
            coordinates; the message names the file, line, vertebra and column.

    """
    header, _ = _read_rows(path, ("level",))
    dimension = 3 if any(c.endswith("_z") for c in header) else 2
    axes = "xyz"[:dimension]
    required = [c for c in keypoint_columns(dimension) if not c.startswith("centroid_") and c != "source"]
    _, rows = _read_rows(path, required)
    vertebrae, seen = [], set()
    for row in rows:
        level = _level(path, row, seen)
        points = np.array(
            [[_float(path, row, f"{prefix}_{a}", required=True) for a in axes] for prefix in KEYPOINT_PREFIXES]
        )
        centroid_cells = [_float(path, row, f"centroid_{a}") for a in axes]
        if all(c is None for c in centroid_cells):
            centroid = points.mean(axis=0)
        elif any(c is None for c in centroid_cells):
            raise TableError(f"{path}: line {row['__line__']} ({level}): centroid is only partly filled in")
        else:
            centroid = np.array(centroid_cells)
        try:
            vertebrae.append(Vertebra(level, centroid, points, source=row.get("source") or source))
        except SchemaError as error:
            raise TableError(f"{path}: line {row['__line__']}: {error}") from None
    try:
        return SpineResult(
            vertebrae,
            frame="LPS" if dimension == 3 else "pixel",
            input=dict(input or {}),
            pixel_spacing=tuple(pixel_spacing),
        )
    except SchemaError as error:
        raise TableError(f"{path}: {error}") from None


__all__ = [
    "COLUMN_UNITS",
    "DECIMALS",
    "GENANT_COLUMNS",
    "KEYPOINT_PREFIXES",
    "TableError",
    "case_id",
    "genant_rows",
    "keypoint_columns",
    "keypoint_rows",
    "read_genant_csv",
    "read_keypoints_csv",
    "write_genant_csv",
    "write_keypoints_csv",
]
