"""Slicer markups files (``.mrk.json``) written and read without Slicer.

A :class:`SpineResult` (frame ``LPS``) becomes two point lists:

* keypoints: six points per vertebra, cranio-caudal, in
  :data:`VertebralFractureLib.genant.KEYPOINT_NAMES` order, labelled ``"L1 anterior superior"``,
  with the key ``"L1:0"`` (level, keypoint index) as point ID and description;
* centroids: one point per vertebra labelled ``"L1"``, key ``"L1:centroid"``.

Reading maps each point back by its description, then its ID, then its label, so a file edited
in Slicer (points dragged, descriptions kept) comes back as the same vertebrae. Files follow
Slicer's markups schema v1.0.3 and are written in LPS like Slicer's own storage node; files in
RAS are converted on reading.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..genant import KEYPOINT_NAMES
from ..levels import UnknownLevelError, normalise_level
from ..schema import SpineResult, Vertebra
from .atomic import atomic_write

PathLike = Union[str, Path]
MARKUPS_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
    "markups-schema-v1.0.3.json#"
)
COORDINATE_SYSTEMS = ("LPS", "RAS")
CENTROID_SLOT = "centroid"
#: Orientation Slicer writes for an unrotated point in an LPS file.
_LPS_ORIENTATION = [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]
_KEY = re.compile(r"^\s*(?P<level>[A-Za-z]+\s*\d+)\s*:\s*(?P<slot>[0-5]|centroid)\s*$", re.IGNORECASE)
_LABEL = re.compile(
    r"^\s*(?P<level>[A-Za-z]+\s*\d+)(?:\s+(?P<name>(?:anterior|middle|posterior)\s+(?:superior|inferior)))?\s*$",
    re.IGNORECASE,
)

#: Display of the lists written here (keypoints cyan-ish, centroids yellow).
KEYPOINTS_COLOR = (0.4, 1.0, 1.0)
CENTROIDS_COLOR = (1.0, 0.85, 0.2)


class MarkupsFormatError(ValueError):
    """A markups file or point list that cannot be read; the message names the file and the place."""


@dataclass
class ControlPoint:
    """One markups control point, position in LPS mm."""

    position: np.ndarray
    label: str = ""
    id: str = ""
    description: str = ""
    selected: bool = True
    locked: bool = False
    visibility: bool = True
    position_status: str = "defined"

    def __post_init__(self) -> None:
        self.position = np.asarray(self.position, dtype=float).reshape(-1)
        if self.position.shape != (3,) or not np.all(np.isfinite(self.position)):
            raise MarkupsFormatError(f"point {self.label or self.id!r}: position must be 3 finite numbers")


@dataclass
class PointList:
    """A named list of control points (a Slicer ``Fiducial`` markup), LPS mm."""

    name: str = "F"
    points: List[ControlPoint] = field(default_factory=list)
    color: Optional[Tuple[float, float, float]] = None
    locked: bool = False
    #: Whether Slicer draws each point's label (off for the keypoints: 6 labels per vertebra would overlap;
    #: the centroid list labels each vertebra once).
    labels_visible: bool = True

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) LPS positions."""
        return np.array([p.position for p in self.points], dtype=float).reshape(-1, 3)

    @property
    def labels(self) -> List[str]:
        """Point labels in order."""
        return [p.label for p in self.points]


# ---------------------------------------------------------------------------- point keys
def keypoint_key(level: str, index: int) -> str:
    """Key of keypoint ``index`` of a vertebra: ``"L1:0"``."""
    return f"{normalise_level(level)}:{int(index)}"


def centroid_key(level: str) -> str:
    """Key of a vertebra's centroid point: ``"L1:centroid"``."""
    return f"{normalise_level(level)}:{CENTROID_SLOT}"


def parse_point(point: ControlPoint) -> Optional[Tuple[str, Union[int, str]]]:
    """(level, keypoint index or ``"centroid"``) of a point, from description, ID or label; None if none fits."""
    for text in (point.description, point.id):
        match = _KEY.match(text or "")
        if match:
            try:
                level = normalise_level(match["level"].replace(" ", ""))
            except UnknownLevelError:
                continue
            slot = match["slot"].lower()
            return level, (CENTROID_SLOT if slot == CENTROID_SLOT else int(slot))
    match = _LABEL.match(point.label or "")
    if match:
        try:
            level = normalise_level(match["level"].replace(" ", ""))
        except UnknownLevelError:
            return None
        if match["name"] is None:
            return level, CENTROID_SLOT
        return level, KEYPOINT_NAMES.index(" ".join(match["name"].lower().split()))
    return None


# ---------------------------------------------------------------------------- result <-> lists
def _require_lps(result: SpineResult) -> None:
    if result.frame != "LPS":
        raise MarkupsFormatError(
            f"markups need 3D points in LPS mm; this result is in the {result.frame!r} frame "
            "(2D radiograph results are not exported as markups yet)"
        )


def keypoints_list(result: SpineResult, name: str = "Keypoints") -> PointList:
    """The six keypoints of every vertebra as one point list."""
    _require_lps(result)
    points = [
        ControlPoint(
            position=v.keypoints[i],
            label=f"{v.label} {KEYPOINT_NAMES[i]}",
            id=keypoint_key(v.label, i),
            description=keypoint_key(v.label, i),
        )
        for v in result.vertebrae
        for i in range(len(KEYPOINT_NAMES))
    ]
    return PointList(name=name, points=points, color=KEYPOINTS_COLOR, labels_visible=False)


def centroids_list(result: SpineResult, name: str = "Centroids") -> PointList:
    """One centroid point per vertebra, labelled with the level."""
    _require_lps(result)
    points = [
        ControlPoint(position=v.centroid, label=v.label, id=centroid_key(v.label), description=centroid_key(v.label))
        for v in result.vertebrae
    ]
    return PointList(name=name, points=points, color=CENTROIDS_COLOR)


def _group_points(lists: Iterable[PointList]) -> Dict[str, Dict[Union[int, str], np.ndarray]]:
    grouped: Dict[str, Dict[Union[int, str], np.ndarray]] = {}
    for point_list in lists:
        for number, point in enumerate(point_list.points):
            if point.position_status != "defined":
                continue
            parsed = parse_point(point)
            if parsed is None:
                raise MarkupsFormatError(
                    f"{point_list.name}: point {number + 1} (label {point.label!r}, id {point.id!r}) names no "
                    "vertebra keypoint; expected a description/ID like 'L1:0' or a label like 'L1 anterior superior'"
                )
            level, slot = parsed
            slots = grouped.setdefault(level, {})
            if slot in slots:
                what = "centroid" if slot == CENTROID_SLOT else KEYPOINT_NAMES[int(slot)]
                raise MarkupsFormatError(f"{point_list.name}: {level} {what} appears twice")
            slots[slot] = point.position
    return grouped


def result_from_lists(
    keypoints: PointList,
    centroids: Optional[PointList] = None,
    *,
    template: Optional[SpineResult] = None,
    source: str = "annotator",
    tolerance_mm: float = 1e-3,
) -> SpineResult:
    """A SpineResult from keypoint (and centroid) point lists; Genant measures recomputed.

    Args:
        keypoints: six points per vertebra (any order; mapped by key or label).
        centroids: centroid points; missing centroids are the mean of the six keypoints.
        template: an earlier result for the same image: its scores, history, input and patient
            values are kept, and vertebrae whose points moved get an ``edit keypoints`` entry and are measured on
            the moved points, a withheld one included
            (:meth:`~VertebralFractureLib.schema.Vertebra.measured_on_reader_points`).
        source: source of vertebrae not in the template.
        tolerance_mm: movements below this are not recorded as edits.

    Raises:
        MarkupsFormatError: for unnamed, duplicated or missing keypoints.

    """
    grouped = _group_points([keypoints])
    centres = _group_points([centroids]) if centroids is not None else {}
    vertebrae = []
    for level, slots in grouped.items():
        missing = [KEYPOINT_NAMES[i] for i in range(6) if i not in slots]
        if missing:
            raise MarkupsFormatError(f"{keypoints.name}: {level} lacks keypoints: {', '.join(missing)}")
        points = np.array([slots[i] for i in range(6)])
        centroid = centres.get(level, {}).get(CENTROID_SLOT)
        if centroid is None:
            centroid = slots.get(CENTROID_SLOT, points.mean(axis=0))
        previous = None
        if template is not None and level in template.labels:
            previous = template.vertebra(level)
        if previous is None:
            vertebrae.append(Vertebra(label=level, centroid=centroid, keypoints=points, source=source))
            continue
        vertebra = previous.copy(label=level, centroid=centroid, keypoints=points)
        if previous.keypoints.shape == points.shape:
            moved = np.linalg.norm(previous.keypoints - points, axis=1)
            names = [f"{KEYPOINT_NAMES[i]} {moved[i]:.1f} mm" for i in range(6) if moved[i] > tolerance_mm]
            if names:
                vertebra.record("edit keypoints", "moved " + ", ".join(names))
                vertebra.measured_on_reader_points()
        vertebrae.append(vertebra)
    kept = {}
    if template is not None:
        kept = {k: dict(getattr(template, k)) for k in ("input", "patient", "timings_s", "models")}
    return SpineResult(vertebrae=vertebrae, frame="LPS", **kept)


# ---------------------------------------------------------------------------- JSON documents
def _point_dict(point: ControlPoint) -> Dict[str, Any]:
    return {
        "id": point.id,
        "label": point.label,
        "description": point.description,
        "associatedNodeID": "",
        "position": [float(x) for x in point.position],
        "orientation": list(_LPS_ORIENTATION),
        "selected": bool(point.selected),
        "locked": bool(point.locked),
        "visibility": bool(point.visibility),
        "positionStatus": point.position_status,
    }


def list_to_markup(point_list: PointList) -> Dict[str, Any]:
    """One entry of the file's ``markups`` array (coordinate system LPS)."""
    markup: Dict[str, Any] = {
        "type": "Fiducial",
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": bool(point_list.locked),
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(point_list.points),
        "controlPoints": [_point_dict(p) for p in point_list.points],
        "measurements": [],
    }
    if point_list.color is not None:
        markup["display"] = {
            "visibility": True,
            "opacity": 1.0,
            "color": [float(c) for c in point_list.color],
            "selectedColor": [float(c) for c in point_list.color],
            "pointLabelsVisibility": bool(point_list.labels_visible),
            "textScale": 2.0,
            "glyphType": "Sphere3D",
            "glyphScale": 1.5,
            "useGlyphScale": True,
        }
    return markup


def markups_document(lists: Union[PointList, Sequence[PointList]]) -> Dict[str, Any]:
    """A whole ``.mrk.json`` document for one or more point lists."""
    if isinstance(lists, PointList):
        lists = [lists]
    return {"@schema": MARKUPS_SCHEMA, "markups": [list_to_markup(p) for p in lists]}


def write_markups_json(
    path: PathLike, lists: Union[PointList, Sequence[PointList]], *, overwrite: bool = False
) -> Path:
    """Write point lists to a ``.mrk.json`` file (atomically).

    Raises:
        ExistingFileError: if the file exists and ``overwrite`` is False.

    """
    text = json.dumps(markups_document(lists), indent=4, allow_nan=False)
    return atomic_write(path, text + "\n", overwrite=overwrite)


def _bool(value: Any, default: bool) -> bool:
    return default if value is None else bool(value)


def _markup_to_list(markup: Any, where: str) -> PointList:
    if not isinstance(markup, dict):
        raise MarkupsFormatError(f"{where}: a markup must be an object")
    system = str(markup.get("coordinateSystem", "LPS")).upper()
    if system not in COORDINATE_SYSTEMS:
        raise MarkupsFormatError(f"{where}: unknown coordinateSystem {system!r}; expected LPS or RAS")
    units = markup.get("coordinateUnits", "mm")
    if units not in ("mm", None):
        raise MarkupsFormatError(f"{where}: coordinates in {units!r}; only mm is supported")
    entries = markup.get("controlPoints", [])
    if not isinstance(entries, list):
        raise MarkupsFormatError(f"{where}: 'controlPoints' must be a list")
    points = []
    for number, entry in enumerate(entries):
        here = f"{where}, control point {number + 1}"
        if not isinstance(entry, dict):
            raise MarkupsFormatError(f"{here}: must be an object")
        status = str(entry.get("positionStatus", "defined"))
        position = entry.get("position")
        if status != "defined" and position is None:
            position = [0.0, 0.0, 0.0]
        try:
            xyz = np.asarray(position, dtype=float)
        except (TypeError, ValueError):
            raise MarkupsFormatError(f"{here}: position {position!r} is not 3 numbers") from None
        if xyz.shape != (3,) or not all(math.isfinite(x) for x in xyz):
            raise MarkupsFormatError(f"{here}: position {position!r} is not 3 finite numbers")
        if system == "RAS":
            xyz = xyz * np.array([-1.0, -1.0, 1.0])
        points.append(
            ControlPoint(
                position=xyz,
                label=str(entry.get("label", "")),
                id=str(entry.get("id", "")),
                description=str(entry.get("description", "")),
                selected=_bool(entry.get("selected"), True),
                locked=_bool(entry.get("locked"), False),
                visibility=_bool(entry.get("visibility"), True),
                position_status=status,
            )
        )
    display = markup.get("display")
    name = str(markup.get("name", "")) or "F"
    return PointList(
        name=name,
        points=points,
        color=_color(display.get("color") if isinstance(display, dict) else None),
        locked=_bool(markup.get("locked"), False),
    )


def _color(value: Any) -> Optional[Tuple[float, float, float]]:
    """An RGB display colour, or None for a missing or malformed one (it is cosmetic: never an error)."""
    if not isinstance(value, list) or len(value) != 3:
        return None
    try:
        rgb = tuple(float(c) for c in value)
    except (TypeError, ValueError):
        return None
    return rgb if all(math.isfinite(c) for c in rgb) else None


def parse_markups_document(document: Any, where: str = "markups") -> List[PointList]:
    """Point lists (LPS) of a parsed ``.mrk.json`` document.

    Raises:
        MarkupsFormatError: naming the place of the first problem.

    """
    if not isinstance(document, dict):
        raise MarkupsFormatError(f"{where}: expected a JSON object at the top level")
    schema = str(document.get("@schema", ""))
    if "markups-schema" not in schema:
        raise MarkupsFormatError(f"{where}: not a Slicer markups file (@schema is {schema!r})")
    markups = document.get("markups")
    if not isinstance(markups, list) or not markups:
        raise MarkupsFormatError(f"{where}: 'markups' must be a non-empty list")
    return [_markup_to_list(m, f"{where}, markup {i + 1}") for i, m in enumerate(markups)]


def read_markups_json(path: PathLike) -> List[PointList]:
    """Read every point list of a ``.mrk.json`` file, positions converted to LPS.

    Raises:
        FileNotFoundError: if the file does not exist.
        MarkupsFormatError: for a file that is not valid JSON or not a markups document.

    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such markups file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise MarkupsFormatError(f"{path}: not valid JSON: {error}") from None
    lists = parse_markups_document(document, str(path))
    stem = path.name.split(".")[0]
    for point_list in lists:
        if point_list.name == "F":
            point_list.name = stem
    return lists


def write_result_markups(
    result: SpineResult,
    keypoints_path: PathLike,
    centroids_path: Optional[PathLike] = None,
    *,
    overwrite: bool = False,
) -> List[Path]:
    """Write a result's keypoints (and centroids) as ``.mrk.json`` files; returns the paths written."""
    written = [write_markups_json(keypoints_path, keypoints_list(result), overwrite=overwrite)]
    if centroids_path is not None:
        written.append(write_markups_json(centroids_path, centroids_list(result), overwrite=overwrite))
    return written


def read_result_markups(
    keypoints_path: PathLike,
    centroids_path: Optional[PathLike] = None,
    *,
    template: Optional[SpineResult] = None,
) -> SpineResult:
    """A SpineResult from ``.mrk.json`` keypoints (and centroids) files; see :func:`result_from_lists`."""
    keypoints = _merge(read_markups_json(keypoints_path))
    centroids = _merge(read_markups_json(centroids_path)) if centroids_path is not None else None
    return result_from_lists(keypoints, centroids, template=template)


def _merge(lists: List[PointList]) -> PointList:
    if len(lists) == 1:
        return lists[0]
    return PointList(name=lists[0].name, points=[p for point_list in lists for p in point_list.points])
