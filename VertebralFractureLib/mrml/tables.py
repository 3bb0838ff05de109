"""The "Genant" table node: one typed row per vertebra of a SpineResult.

Columns (and their VTK array types, kept through ``.tsv`` + ``.schema.tsv`` files written by
``vtkMRMLTableStorageNode``): level, type and source are strings; heights, G, reductions,
confidence and probabilities are doubles (NaN when unknown); grade is an integer (-1 when the
vertebra could not be measured). The last three columns are the reader's review mark (accepted or
rejected, by whom, when; empty strings when not reviewed), as in ``genant.csv``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from ..io.atomic import atomic_path
from ..io.csv_tables import REVIEW_KEY
from ..schema import SpineResult, Vertebra
from .scene import resolve_scene

PathLike = Union[str, Path]
TABLE_NAME = "Genant"

#: (column name, VTK array class, unit, description), in table order.
COLUMNS: Tuple[Tuple[str, str, str, str], ...] = (
    ("Level", "vtkStringArray", "", "Vertebra level (C1-S1)"),
    ("Verdict", "vtkStringArray", "", "fracture, review, normal or not assessed (VertebralFractureLib.verdict)"),
    ("Status", "vtkStringArray", "", "assessed, or not assessed (never graded)"),
    ("Reason", "vtkStringArray", "", "Why the vertebra is not assessed"),
    ("ha", "vtkDoubleArray", "mm", "Anterior height"),
    ("hm", "vtkDoubleArray", "mm", "Middle height"),
    ("hp", "vtkDoubleArray", "mm", "Posterior height"),
    ("G", "vtkDoubleArray", "", "Genant index min(h)/max(h) (Pisov et al. 2020, eq. 1)"),
    ("Neighbour reduction", "vtkDoubleArray", "", "1 - max(h) / height expected from the neighbours"),
    ("Grade", "vtkIntArray", "", "Genant grade 0-3 (-1: not measured or not assessed)"),
    ("Type", "vtkStringArray", "", "Deformity type: none, wedge, biconcave, crush"),
    ("Confidence", "vtkDoubleArray", "", "Detection confidence 0-1"),
    ("Fracture probability", "vtkDoubleArray", "", "Classifier probability of a fracture (Husseini et al. 2020)"),
    ("Voxel fracture score", "vtkDoubleArray", "", "Aggregated voxel fracture map (Nicolaes et al. 2019)"),
    ("Abnormality", "vtkDoubleArray", "", "Shape abnormality 0-100 (Botros et al. 2022)"),
    ("Source", "vtkStringArray", "", "Where the keypoints came from ('moved by the reader' added once moved)"),
    ("Review", "vtkStringArray", "", "Reader's decision: accepted or rejected (empty: not reviewed)"),
    ("Reviewed by", "vtkStringArray", "", "Who accepted or rejected the vertebra"),
    ("Reviewed at", "vtkStringArray", "", "When (UTC, ISO 8601)"),
)
COLUMN_NAMES = tuple(c[0] for c in COLUMNS)
#: The title Slicer shows for each column: the name the CSV, the report and the JSON use
#: (:data:`VertebralFractureLib.io.csv_tables.GENANT_COLUMNS`), so one column has one name everywhere.
COLUMN_TITLES = dict(zip(COLUMN_NAMES, (
    "level", "verdict", "status", "status_reason", "ha_mm", "hm_mm", "hp_mm", "G", "neighbour_reduction", "grade",
    "type", "confidence", "fracture_probability", "voxel_fracture_score", "abnormality", "source", "review",
    "reviewed_by", "reviewed_at",
)))


def _nan(value: Optional[float]) -> float:
    return float("nan") if value is None else float(value)


def row_values(vertebra: Vertebra) -> Dict[str, Any]:
    """Column name -> value for one vertebra."""
    m = vertebra.measure
    heights = m.heights if m is not None else (None, None, None)
    mark = vertebra.extra.get(REVIEW_KEY)
    mark = mark if isinstance(mark, dict) else {}
    return {
        "Level": vertebra.label,
        "Verdict": vertebra.verdict()[0],
        "Status": "assessed" if vertebra.assessed else "not assessed",
        "Reason": vertebra.status_reason or "",
        "ha": _nan(heights[0]),
        "hm": _nan(heights[1]),
        "hp": _nan(heights[2]),
        "G": _nan(m.G if m is not None else None),
        "Neighbour reduction": _nan(m.neighbour_reduction if m is not None else None),
        "Grade": int(m.grade) if m is not None else -1,
        "Type": m.type if m is not None else "",
        "Confidence": _nan(vertebra.confidence),
        "Fracture probability": _nan(vertebra.fracture_probability),
        "Voxel fracture score": _nan(vertebra.voxel_fracture_score),
        "Abnormality": _nan(vertebra.abnormality),
        "Source": vertebra.points_shown_source,
        "Review": str(mark.get("decision") or ""),
        "Reviewed by": str(mark.get("by") or ""),
        "Reviewed at": str(mark.get("at") or ""),
    }


def _set_row(table, row: int, values: Dict[str, Any]) -> None:
    for column_index, (name, _, _, _) in enumerate(COLUMNS):
        array = table.GetColumn(column_index)
        value = values[name]
        if array.IsA("vtkStringArray"):
            array.SetValue(row, str(value))
        else:
            array.SetValue(row, value)
        array.Modified()


def _ensure_columns(node) -> None:
    import vtkmodules.vtkCommonCore as core

    table = node.GetTable()
    if [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())] == list(COLUMN_NAMES):
        return
    node.RemoveAllColumns()
    for name, array_class, unit, description in COLUMNS:
        array = getattr(core, array_class)()
        array.SetName(name)
        node.AddColumn(array)
        node.SetColumnUnitLabel(name, unit)
        node.SetColumnDescription(name, description)
        node.SetColumnTitle(name, COLUMN_TITLES[name])


def genant_table(result: SpineResult, *, scene=None, node=None, name: str = TABLE_NAME):
    """A ``vtkMRMLTableNode`` with one row per vertebra (cranio-caudal) of ``result``.

    Args:
        result: the vertebrae and their measures.
        scene: the MRML scene (``slicer.mrmlScene`` inside Slicer when None).
        node: an existing table node to refill.
        name: name of a new node.

    """
    if node is None:
        scene = resolve_scene(scene)
        node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name))
    was_modifying = node.StartModify()
    _ensure_columns(node)
    table = node.GetTable()
    table.SetNumberOfRows(len(result.vertebrae))
    for row, vertebra in enumerate(result.vertebrae):
        _set_row(table, row, row_values(vertebra))
    unit = "px" if result.height_unit == "pixel" else "mm"  # a radiograph with no pixel size: heights in pixels
    for column in ("ha", "hm", "hp"):
        node.SetColumnUnitLabel(column, unit)
        node.SetColumnTitle(column, f"{column}_{unit}")
    node.SetUseColumnTitleAsColumnHeader(True)
    node.SetLocked(True)
    table.Modified()
    node.Modified()
    node.EndModify(was_modifying)
    return node


def find_row(node, level: str) -> int:
    """Row index of a level, or -1."""
    from ..levels import normalise_level

    level = normalise_level(level)
    column = node.GetTable().GetColumnByName("Level")
    for row in range(node.GetNumberOfRows()):
        if column.GetValue(row) == level:
            return row
    return -1


def update_row(node, vertebra: Vertebra) -> int:
    """Refresh the row of one vertebra (appended if the level is new); returns its index.

    New levels are appended at the end; call :func:`genant_table` to re-sort.
    """
    table = node.GetTable()
    row = find_row(node, vertebra.label)
    if row < 0:
        row = table.GetNumberOfRows()
        table.SetNumberOfRows(row + 1)
    _set_row(table, row, row_values(vertebra))
    table.Modified()
    node.Modified()
    return row


def table_rows(node) -> List[Dict[str, Any]]:
    """Rows as dictionaries of Python values (NaN -> None)."""
    table = node.GetTable()
    names = [table.GetColumnName(i) for i in range(table.GetNumberOfColumns())]
    rows = []
    for row in range(table.GetNumberOfRows()):
        values: Dict[str, Any] = {}
        for column_index, column_name in enumerate(names):
            array = table.GetColumn(column_index)
            value = array.GetValue(row)
            if isinstance(value, float) and math.isnan(value):
                value = None
            values[column_name] = value
        rows.append(values)
    return rows


def write_table(node, path: PathLike, *, overwrite: bool = False) -> Path:
    """Write the table through ``vtkMRMLTableStorageNode`` (``.tsv``/``.csv`` + ``.schema`` file).

    Raises:
        OSError: if the storage node reports a failure.

    """
    from slicer import vtkMRMLTableStorageNode

    path = Path(path)
    storage = vtkMRMLTableStorageNode()
    with atomic_path(path, overwrite=overwrite) as temporary:
        storage.SetFileName(str(temporary))
        ok = storage.WriteData(node)
        schema_written = Path(storage.GetSchemaFileName() or "")
    if not ok:
        raise OSError(f"writing table {node.GetName()!r} to {path} failed")
    if schema_written.is_file():
        schema_target = Path(str(path)[: -len(path.suffix)] + ".schema" + path.suffix)
        schema_written.replace(schema_target)
    return path


def read_table(path: PathLike, *, scene=None, name: Optional[str] = None):
    """Read a table file (with its schema file, when present) into a new table node.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the storage node cannot read it.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such table file")
    scene = resolve_scene(scene)
    node = scene.AddNewNodeByClass("vtkMRMLTableNode", scene.GenerateUniqueName(name or path.name.split(".")[0]))
    storage = scene.AddNewNodeByClass("vtkMRMLTableStorageNode")
    storage.SetFileName(str(path))
    schema = Path(str(path)[: -len(path.suffix)] + ".schema" + path.suffix)
    if schema.is_file():
        storage.SetSchemaFileName(str(schema))
    if not storage.ReadData(node):
        scene.RemoveNode(node)
        scene.RemoveNode(storage)
        raise ValueError(f"{path}: cannot read this table")
    node.SetAndObserveStorageNodeID(storage.GetID())
    return node
