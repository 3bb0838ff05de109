"""Annotated real CTs (``Testing/Data/real/reference/<case>.json``) and a scorer for analysis results.

Each reference file lists the vertebral bodies in view of one real CT, with their levels (decided
from the anatomy: ribs, sacrum), their centroids in LPS mm, six Genant keypoints for some of them,
whether they look fractured, and a few spheres inside organs where no vertebra can be (heart, aorta,
liver, lung). Format (``vertebral-fracture-reference/1``)::

    {"schema": "vertebral-fracture-reference/1", "case": "cptac_chest",
     "image": "cptac_chest/cptac_chest.nii.gz",      # relative to Testing/Data/real
     "frame": "LPS", "source": "...", "licence": "...", "annotated_by": "...", "date": "YYYY-MM-DD",
     "levels_method": "how the levels were decided",
     "vertebrae": [{"label": "T7", "centroid": [x, y, z], "in_view": "full" | "partial",
                    "keypoints": [[x, y, z] x 6] | null, "keypoint_source": "manual" | "mask" | null,
                    "looks_fractured": false, "note": "..."}],
     "no_spine_regions": [{"name": "heart", "centre": [x, y, z], "radius_mm": 40}]}

Keypoints follow :data:`VertebralFractureLib.genant.KEYPOINT_NAMES` (anterior, middle, posterior;
superior = cranial endplate first). Heights and G are those of Pisov et al. 2020 (eq. 1) and
Genant et al. 1993, computed by :mod:`VertebralFractureLib.genant`.

:func:`score_case` matches reported vertebrae to reference centroids (Hungarian assignment,
at most :data:`MATCH_MM` apart) and counts found / missed / reported outside the spine, level
accuracy, keypoint and height errors, grades >= 2 on vertebrae that look normal, and vertebrae the
analysis declined to assess (``Vertebra.status`` / ``status_reason`` when present).
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ...genant import GenantError, genant_index, heights, measure
from ...levels import UnknownLevelError, level_index, normalise_level
from ...schema import LEVEL_CERTAIN_KEY
from ...verdict import REVIEW, vertebra_verdict

SCHEMA = "vertebral-fracture-reference/1"
IN_VIEW = ("full", "partial")
KEYPOINT_SOURCES = ("manual", "mask", None)
#: A reported vertebra further than this (mm) from every reference centroid is outside the spine.
#: About half a vertebral body's height plus its disc: a neighbour's centroid is 25-35 mm away.
MATCH_MM = 15.0
_REQUIRED = ("schema", "case", "image", "frame", "source", "licence", "annotated_by", "date",
             "levels_method", "vertebrae", "no_spine_regions")

PathLike = Union[str, Path]


class ReferenceError(ValueError):
    """A reference file that does not follow the schema; the message names the file and the field."""


@dataclass
class ReferenceVertebra:
    """One annotated vertebral body.

    Attributes:
        label: level name (``"T7"``).
        centroid: body centre, LPS mm.
        in_view: ``"full"`` (whole body in the field of view) or ``"partial"`` (cut by it).
        keypoints: (6, 3) LPS mm or None.
        keypoint_source: ``"manual"``, ``"mask"`` or None.
        looks_fractured: True when the body looks collapsed (the note says why).
        note: free text.

    """

    label: str
    centroid: np.ndarray
    in_view: str = "full"
    keypoints: Optional[np.ndarray] = None
    keypoint_source: Optional[str] = None
    looks_fractured: bool = False
    note: str = ""

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {
            "label": self.label,
            "centroid": [round(float(c), 2) for c in self.centroid],
            "in_view": self.in_view,
            "keypoints": None if self.keypoints is None else np.round(self.keypoints, 2).tolist(),
            "keypoint_source": self.keypoint_source,
            "looks_fractured": self.looks_fractured,
            "note": self.note,
        }


@dataclass
class NoSpineRegion:
    """A sphere inside an organ where no vertebra can be (LPS mm)."""

    name: str
    centre: np.ndarray
    radius_mm: float

    def contains(self, point: np.ndarray) -> bool:
        """Whether ``point`` lies inside the sphere."""
        return bool(np.linalg.norm(np.asarray(point, float) - self.centre) <= self.radius_mm)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {"name": self.name, "centre": [round(float(c), 2) for c in self.centre], "radius_mm": self.radius_mm}


@dataclass
class Reference:
    """The annotations of one real CT (see the module docstring for the JSON layout)."""

    case: str
    image: str
    vertebrae: List[ReferenceVertebra]
    no_spine_regions: List[NoSpineRegion]
    frame: str = "LPS"
    source: str = ""
    licence: str = ""
    annotated_by: str = ""
    date: str = ""
    levels_method: str = ""
    path: Optional[Path] = None

    @property
    def image_path(self) -> Path:
        """The CT, found relative to ``Testing/Data/real`` (the folder above ``reference/``)."""
        base = self.path.parent.parent if self.path is not None else reference_dir().parent
        return base / self.image

    def labels(self) -> List[str]:
        """Reference levels, cranio-caudal."""
        return [v.label for v in self.vertebrae]

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form."""
        return {
            "schema": SCHEMA, "case": self.case, "image": self.image, "frame": self.frame, "source": self.source,
            "licence": self.licence, "annotated_by": self.annotated_by, "date": self.date,
            "levels_method": self.levels_method, "vertebrae": [v.to_dict() for v in self.vertebrae],
            "no_spine_regions": [r.to_dict() for r in self.no_spine_regions],
        }


def reference_dir() -> Path:
    """``Testing/Data/real/reference`` of the source checkout holding this package."""
    return Path(__file__).resolve().parents[3] / "Testing" / "Data" / "real" / "reference"


def list_cases(folder: Optional[PathLike] = None) -> List[str]:
    """Names of the 3D reference cases (``<case>.json`` of schema :data:`SCHEMA`, frame LPS), sorted.

    Other JSON files in the folder (e.g. the 2D sagittal reference, frame ``pixel``) are skipped.
    """
    folder = Path(folder) if folder is not None else reference_dir()
    cases = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            kind = (data.get("schema"), data.get("frame"))
        except (json.JSONDecodeError, AttributeError):
            kind = None
        if kind == (SCHEMA, "LPS"):
            cases.append(path.stem)
    return cases


def load_case(case: str) -> Reference:
    """The reference of one case by name (``"cptac_chest"``)."""
    return load_reference(reference_dir() / f"{case}.json")


def _point(value: Any, where: str) -> np.ndarray:
    try:
        point = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ReferenceError(f"{where}: expected [x, y, z] numbers, got {value!r}") from None
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise ReferenceError(f"{where}: expected three finite numbers [x, y, z], got {value!r}")
    return point


def _vertebra(item: Any, where: str) -> ReferenceVertebra:
    if not isinstance(item, dict):
        raise ReferenceError(f"{where}: expected an object, got {type(item).__name__}")
    for key in ("label", "centroid", "in_view"):
        if key not in item:
            raise ReferenceError(f"{where}: missing field '{key}'")
    try:
        label = normalise_level(item["label"])
    except (UnknownLevelError, ValueError, TypeError) as error:
        raise ReferenceError(f"{where}.label: {error}") from None
    where = f"{where} ({label})"
    if item["in_view"] not in IN_VIEW:
        raise ReferenceError(f"{where}.in_view: expected one of {IN_VIEW}, got {item['in_view']!r}")
    keypoints = item.get("keypoints")
    source = item.get("keypoint_source")
    if source not in KEYPOINT_SOURCES:
        raise ReferenceError(f"{where}.keypoint_source: expected one of {KEYPOINT_SOURCES}, got {source!r}")
    if keypoints is not None:
        try:
            keypoints = np.asarray(keypoints, dtype=float)
        except (TypeError, ValueError):
            raise ReferenceError(f"{where}.keypoints: not numeric") from None
        if keypoints.shape != (6, 3) or not np.all(np.isfinite(keypoints)):
            raise ReferenceError(f"{where}.keypoints: expected 6 finite [x, y, z] points, got shape {keypoints.shape}")
        if source is None:
            raise ReferenceError(f"{where}: keypoints given without keypoint_source ('manual' or 'mask')")
    elif source is not None:
        raise ReferenceError(f"{where}: keypoint_source {source!r} given without keypoints")
    fractured = item.get("looks_fractured", False)
    if not isinstance(fractured, bool):
        raise ReferenceError(f"{where}.looks_fractured: expected true or false, got {fractured!r}")
    return ReferenceVertebra(label, _point(item["centroid"], f"{where}.centroid"), item["in_view"], keypoints,
                             source, fractured, str(item.get("note", "")))


def reference_from_dict(data: Any, where: str = "reference") -> Reference:
    """Validate a parsed reference document (see :func:`load_reference`)."""
    if not isinstance(data, dict):
        raise ReferenceError(f"{where}: expected a JSON object at the top level")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise ReferenceError(f"{where}: missing field(s) {', '.join(missing)}")
    if data["schema"] != SCHEMA:
        raise ReferenceError(f"{where}: schema is {data['schema']!r}, expected {SCHEMA!r}")
    if data["frame"] != "LPS":
        raise ReferenceError(f"{where}: frame is {data['frame']!r}, only 'LPS' is supported")
    if not isinstance(data["vertebrae"], list) or not isinstance(data["no_spine_regions"], list):
        raise ReferenceError(f"{where}: 'vertebrae' and 'no_spine_regions' must be lists")
    vertebrae = [_vertebra(item, f"{where}: vertebrae[{i}]") for i, item in enumerate(data["vertebrae"])]
    labels = [v.label for v in vertebrae]
    if len(set(labels)) != len(labels):
        raise ReferenceError(f"{where}: a level appears twice in 'vertebrae' ({labels})")
    order = [level_index(label) for label in labels]
    if order != sorted(order):
        raise ReferenceError(f"{where}: 'vertebrae' must be in cranio-caudal order, got {labels}")
    regions = []
    for i, item in enumerate(data["no_spine_regions"]):
        at = f"{where}: no_spine_regions[{i}]"
        if not isinstance(item, dict) or not {"name", "centre", "radius_mm"} <= set(item):
            raise ReferenceError(f"{at}: expected {{'name', 'centre', 'radius_mm'}}")
        radius = item["radius_mm"]
        if not isinstance(radius, (int, float)) or not math.isfinite(radius) or radius <= 0:
            raise ReferenceError(f"{at}.radius_mm: expected a positive number, got {radius!r}")
        regions.append(NoSpineRegion(str(item["name"]), _point(item["centre"], f"{at}.centre"), float(radius)))
    return Reference(
        case=str(data["case"]), image=str(data["image"]), vertebrae=vertebrae, no_spine_regions=regions,
        frame=data["frame"], source=str(data["source"]), licence=str(data["licence"]),
        annotated_by=str(data["annotated_by"]), date=str(data["date"]), levels_method=str(data["levels_method"]),
    )


def load_reference(path: PathLike) -> Reference:
    """Read and validate one reference file.

    Raises:
        ReferenceError: for a missing file, invalid JSON or a document that does not follow the
            schema; the message names the file and the offending field.

    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReferenceError(f"{path}: no such reference file") from None
    except json.JSONDecodeError as error:
        raise ReferenceError(f"{path}: not valid JSON ({error})") from None
    reference = reference_from_dict(data, str(path))
    reference.path = path
    return reference


# --------------------------------------------------------------------------------------------- scoring


@dataclass
class VertebraMatch:
    """One reported vertebra and what it was matched to."""

    reported: str
    centroid: List[float]
    reference: Optional[str]
    distance_mm: Optional[float]
    status: str
    status_reason: Optional[str]
    grade: Optional[int]
    outside: bool = False
    region: Optional[str] = None
    keypoint_error_mm: Optional[float] = None
    keypoint_error_sagittal_mm: Optional[float] = None
    height_error_mm: Optional[float] = None
    #: LPS centroid of the matched reference body (the same body in two crops of one scan has the same one).
    reference_centroid: Optional[List[float]] = None


@dataclass
class CaseScore:
    """Scores of one analysis result against one reference.

    Attributes:
        case: reference case name.
        n_reference / n_full: reference vertebrae in view / fully in view.
        n_reported: vertebrae in the result.
        found: reference vertebrae matched by a reported one.
        missed: fully-in-view reference vertebrae without a match (partial ones are not missable).
        outside: reported vertebrae matched to no reference vertebra or lying in a no-spine region.
        outside_graded: of those, how many carry a grade >= 2 (the "fracture in the heart" failure).
        level_correct: matched vertebrae whose level equals the reference level.
        level_uncertain: matched vertebrae whose level the analysis marks uncertain (no anchor: the result's
            ``patient["levels"]["certain"]`` false, or the vertebra's own ``level_certain`` false); issue 17 asks
            for right levels where an anchor is in view and "levels uncertain" otherwise.
        level_wrong_certain: matched vertebrae given a wrong level without that mark (a confident wrong level).
        keypoint_errors_mm: per matched, assessed vertebra with reference keypoints, mean distance of the 6 points.
        keypoint_errors_sagittal_mm: the same distances within the body's mid-sagittal plane (the component
            along the reference body's lateral axis removed): the 2D error of Pisov et al. 2020, which a
            plane placed a few mm beside the body's centre does not change.
        height_errors_mm: same vertebrae, mean absolute error of h_a, h_m, h_p.
        mask_g_errors: ``{level: |G error|}`` of every matched vertebra whose reference keypoints come from a mask,
            withheld ones included (the G of the reported keypoints against the mask's: issue 18's measure).
        false_grade: matched, assessed vertebrae graded >= 2 that the reference says look normal.
        false_review: matched vertebrae whose verdict (:func:`VertebralFractureLib.verdict.vertebra_verdict`) is
            "review" although the reference says they look normal (issue 18 asks for at most 10 %), of
            ``looks_normal_matched`` matched vertebrae that look normal.
        missed_fracture: matched reference vertebrae that look fractured, assessed, graded < 2.
        not_assessed: reason (see :func:`reason_key`) -> count of reported vertebrae not ``assessed``.
        matches: one :class:`VertebraMatch` per reported vertebra.
        centreline_inside / centreline_planes: of the 1 mm planes across the reference bodies that have
            keypoints (:func:`centreline_in_bodies`), how many the centre-line crosses inside the body;
            0 / 0 when no centre-line was given.
        seconds: analysis time, when the caller sets it.

    """

    case: str
    n_reference: int = 0
    n_full: int = 0
    n_reported: int = 0
    found: int = 0
    missed: List[str] = field(default_factory=list)
    outside: int = 0
    outside_graded: int = 0
    level_correct: int = 0
    level_uncertain: int = 0
    level_wrong_certain: int = 0
    keypoint_errors_mm: List[float] = field(default_factory=list)
    keypoint_errors_sagittal_mm: List[float] = field(default_factory=list)
    height_errors_mm: List[float] = field(default_factory=list)
    keypoint_errors_all_mm: List[float] = field(default_factory=list)
    keypoint_errors_sagittal_all_mm: List[float] = field(default_factory=list)
    height_errors_all_mm: List[float] = field(default_factory=list)
    mask_g_errors: Dict[str, float] = field(default_factory=dict)
    false_grade: List[str] = field(default_factory=list)
    false_review: List[str] = field(default_factory=list)
    looks_normal_matched: int = 0
    missed_fracture: List[str] = field(default_factory=list)
    not_assessed: Dict[str, int] = field(default_factory=dict)
    matches: List[VertebraMatch] = field(default_factory=list)
    centreline_inside: int = 0
    centreline_planes: int = 0
    seconds: Optional[float] = None
    error: Optional[str] = None

    @property
    def centreline_fraction(self) -> Optional[float]:
        """Fraction of the body planes the centre-line crosses inside the body (None without planes)."""
        return self.centreline_inside / self.centreline_planes if self.centreline_planes else None

    @property
    def level_accuracy(self) -> Optional[float]:
        """Fraction of matched vertebrae with the right level (None when nothing matched)."""
        return self.level_correct / self.found if self.found else None

    @property
    def keypoint_error_mm(self) -> Optional[float]:
        """Mean keypoint error over the vertebrae that have one."""
        return float(np.mean(self.keypoint_errors_mm)) if self.keypoint_errors_mm else None

    @property
    def keypoint_error_sagittal_mm(self) -> Optional[float]:
        """Mean in-plane (sagittal) keypoint error over the vertebrae that have one."""
        return float(np.mean(self.keypoint_errors_sagittal_mm)) if self.keypoint_errors_sagittal_mm else None

    @property
    def height_error_mm(self) -> Optional[float]:
        """Mean height error over the vertebrae that have one."""
        return float(np.mean(self.height_errors_mm)) if self.height_errors_mm else None

    @property
    def keypoint_error_all_mm(self) -> Optional[float]:
        """Mean keypoint error over every matched vertebra with reference keypoints, not assessed ones included."""
        return float(np.mean(self.keypoint_errors_all_mm)) if self.keypoint_errors_all_mm else None

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form with the derived rates."""
        return {
            "case": self.case, "n_reference": self.n_reference, "n_full": self.n_full,
            "n_reported": self.n_reported, "found": self.found, "missed": self.missed, "outside": self.outside,
            "outside_graded": self.outside_graded, "level_correct": self.level_correct,
            "level_uncertain": self.level_uncertain, "level_wrong_certain": self.level_wrong_certain,
            "level_accuracy": self.level_accuracy, "keypoint_error_mm": self.keypoint_error_mm,
            "keypoint_errors_mm": self.keypoint_errors_mm,
            "keypoint_error_sagittal_mm": self.keypoint_error_sagittal_mm,
            "keypoint_errors_sagittal_mm": self.keypoint_errors_sagittal_mm, "height_error_mm": self.height_error_mm,
            "height_errors_mm": self.height_errors_mm, "keypoint_error_all_mm": self.keypoint_error_all_mm,
            "keypoint_errors_all_mm": self.keypoint_errors_all_mm,
            "keypoint_errors_sagittal_all_mm": self.keypoint_errors_sagittal_all_mm,
            "height_errors_all_mm": self.height_errors_all_mm,
            "mask_g_errors": self.mask_g_errors,
            "false_grade": self.false_grade, "false_review": self.false_review,
            "looks_normal_matched": self.looks_normal_matched,
            "missed_fracture": self.missed_fracture, "not_assessed": self.not_assessed,
            "matches": [m.__dict__ for m in self.matches], "centreline_inside": self.centreline_inside,
            "centreline_planes": self.centreline_planes, "centreline_fraction": self.centreline_fraction,
            "seconds": self.seconds, "error": self.error,
        }


def reason_key(reason: str) -> str:
    """A not-assessed reason without its numbers in brackets, so that equal reasons are counted together."""
    return re.sub(r"\s*\([^)]*\d[^)]*\)", "", reason).strip()


def _grade_of(vertebra: Any) -> Optional[int]:
    measure_ = getattr(vertebra, "measure", None)
    if measure_ is not None:
        return int(measure_.grade)
    try:
        return int(measure(vertebra.keypoints).grade)
    except (GenantError, AttributeError, ValueError):
        return None


def _sagittal_error(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean distance of six points to the reference ones within the reference body's mid-sagittal plane."""
    from ...quality.checks import BodyFrame

    lateral = BodyFrame.from_keypoints(reference).l
    difference = points - reference
    in_plane = difference - np.outer(difference @ lateral, lateral)
    return float(np.linalg.norm(in_plane, axis=1).mean())


def _match(reported: np.ndarray, reference: np.ndarray, max_mm: float) -> Dict[int, int]:
    """Reported index -> reference index, minimal total distance, pairs at most ``max_mm`` apart."""
    if len(reported) == 0 or len(reference) == 0:
        return {}
    from scipy.optimize import linear_sum_assignment

    distance = np.linalg.norm(reported[:, None, :] - reference[None, :, :], axis=-1)
    cost = np.where(distance <= max_mm, distance, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return {int(r): int(c) for r, c in zip(rows, cols) if distance[r, c] <= max_mm}


#: Planes this far (mm) inside each endplate are left out of :func:`centreline_in_bodies` (the endplate's
#: own thickness and the keypoints' uncertainty).
PLANE_MARGIN_MM = 1.0
#: Cross-section of the body around its keypoints, as fractions of the antero-posterior depth between the
#: anterior and posterior keypoints: the walls lie this far outside those points (the keypoints sit about
#: 8 % of the depth inside them), and the body reaches this far to either side of the mid-sagittal plane
#: (a vertebral body is 1.2-1.6 times as wide as it is deep, Panjabi et al. 1991, 1992).
WALL_FRACTION = 0.1
HALF_WIDTH_FRACTION = 0.5


def centreline_in_bodies(points: np.ndarray, reference: Reference) -> tuple[int, int]:
    """``(inside, planes)``: how many 1 mm planes across the reference bodies the centre-line crosses inside them.

    For every fully visible reference vertebra with keypoints, the body's frame is built from its six
    points (superior axis: mean superior minus mean inferior point; antero-posterior axis: mean
    posterior minus mean anterior point, made orthogonal). The planes perpendicular to the superior
    axis every 1 mm from ``PLANE_MARGIN_MM`` above the inferior to as far below the superior endplate
    are the "slices that cross a body" (issue 17). In each plane the centre-line's crossing (linear
    between its consecutive points; the one nearest the body's centre when it crosses several times)
    is inside when it lies between the walls (``WALL_FRACTION`` of the depth outside the anterior and
    posterior keypoints) and within ``HALF_WIDTH_FRACTION`` of the depth of the mid-sagittal plane. A
    plane the centre-line does not reach counts as outside.

    Args:
        points: (N, 3) centre-line points in LPS mm, in order along the spine.
        reference: the case's :class:`Reference`.

    """
    line = np.asarray(points, dtype=float).reshape(-1, 3)
    inside = planes = 0
    for vertebra in reference.vertebrae:
        if vertebra.keypoints is None or vertebra.in_view != "full":
            continue
        kp = np.asarray(vertebra.keypoints, dtype=float).reshape(6, 3)
        centre = kp.mean(axis=0)
        superior = kp[0::2].mean(0) - kp[1::2].mean(0)
        superior /= np.linalg.norm(superior)
        posterior = kp[4:6].mean(0) - kp[0:2].mean(0)
        posterior -= posterior.dot(superior) * superior
        depth = float(np.linalg.norm(posterior))
        posterior /= depth
        lateral = np.cross(posterior, superior)
        t_points = (kp - centre) @ superior
        u_points = (kp - centre) @ posterior
        front, back = u_points[0:2].mean() - WALL_FRACTION * depth, u_points[4:6].mean() + WALL_FRACTION * depth
        low, high = t_points[1::2].mean() + PLANE_MARGIN_MM, t_points[0::2].mean() - PLANE_MARGIN_MM
        rel = line - centre
        t_line = rel @ superior
        for t in np.arange(low, high + 1e-9, 1.0):
            planes += 1
            side = t_line - t
            crossings = np.flatnonzero(side[:-1] * side[1:] <= 0) if len(line) > 1 else np.array([], int)
            if len(crossings) == 0:
                continue
            hits = []
            for k in crossings:
                a, b = side[k], side[k + 1]
                f = 0.0 if a == b else a / (a - b)
                hits.append(rel[k] + f * (rel[k + 1] - rel[k]))
            hit = min(hits, key=lambda h: float(np.linalg.norm(h - t * superior)))
            u, w = float(hit @ posterior), float(hit @ lateral)
            inside += int(front <= u <= back and abs(w) <= HALF_WIDTH_FRACTION * depth)
    return inside, planes


def _point_errors(points: Any, reference: Optional[np.ndarray]) -> Optional[tuple]:
    """(mean keypoint distance, mean height error or None) in mm, or None without usable points on both sides."""
    if reference is None:
        return None
    points = np.asarray(points, dtype=float)
    if points.shape != (6, 3) or not np.all(np.isfinite(points)):
        return None
    try:
        height_error = float(np.abs(heights(points) - heights(reference)).mean())
    except GenantError:
        height_error = None
    return float(np.linalg.norm(points - reference, axis=1).mean()), height_error


def score_case(result: Any, reference: Reference, *, max_mm: float = MATCH_MM,
               centreline: Optional[np.ndarray] = None) -> CaseScore:
    """Score an analysis result (:class:`~VertebralFractureLib.schema.SpineResult`) against a reference.

    A reported vertebra inside a no-spine region is outside the spine and is not matched; the
    others are assigned to reference centroids by the Hungarian method (minimal summed distance,
    pairs at most ``max_mm`` apart); unmatched ones are outside too. A vertebra whose ``status``
    (when the result has that field) is not ``"assessed"`` keeps its match and its level, but
    its grade, keypoints and heights do not count.

    Args:
        result: a SpineResult in LPS mm.
        reference: the case's :class:`Reference`.
        max_mm: largest centroid distance of a match (default :data:`MATCH_MM`).
        centreline: (N, 3) LPS centre-line points of the analysis, scored by :func:`centreline_in_bodies`.

    Returns:
        The :class:`CaseScore`.

    """
    score = CaseScore(case=reference.case, n_reference=len(reference.vertebrae),
                      n_full=sum(v.in_view == "full" for v in reference.vertebrae))
    if getattr(result, "frame", "LPS") != "LPS":
        raise ValueError(f"{reference.case}: only LPS results can be scored, got frame {result.frame!r}")
    reported = list(result.vertebrae)
    score.n_reported = len(reported)
    anchored = bool((getattr(result, "patient", None) or {}).get("levels", {}).get("certain", True))
    matches = []
    for v in reported:
        status = str(getattr(v, "status", "assessed") or "assessed")
        reason = getattr(v, "status_reason", None)
        centroid = np.asarray(v.centroid, dtype=float)
        region = next((r.name for r in reference.no_spine_regions if r.contains(centroid)), None)
        matches.append(VertebraMatch(
            reported=v.label, centroid=[round(float(c), 2) for c in centroid], reference=None, distance_mm=None,
            status=status, status_reason=reason, grade=_grade_of(v) if status == "assessed" else None,
            outside=region is not None, region=region))
        if status != "assessed":
            key = reason_key(reason) if reason else status
            score.not_assessed[key] = score.not_assessed.get(key, 0) + 1
    candidates = [i for i, m in enumerate(matches) if not m.outside]
    ref_points = np.array([v.centroid for v in reference.vertebrae]).reshape(-1, 3)
    rep_points = np.array([np.asarray(reported[i].centroid, float) for i in candidates]).reshape(-1, 3)
    pairs = {candidates[r]: c for r, c in _match(rep_points, ref_points, max_mm).items()}
    matched_refs = set(pairs.values())
    for i, m in enumerate(matches):
        if i not in pairs:
            m.outside = True
            continue
        ref = reference.vertebrae[pairs[i]]
        v = reported[i]
        m.reference = ref.label
        m.reference_centroid = [round(float(c), 2) for c in ref.centroid]
        m.distance_mm = round(float(np.linalg.norm(np.asarray(v.centroid, float) - ref.centroid)), 2)
        score.found += 1
        right = normalise_level(v.label) == ref.label
        score.level_correct += int(right)
        if not (anchored and (getattr(v, "extra", None) or {}).get(LEVEL_CERTAIN_KEY, True) is not False):
            score.level_uncertain += 1
        elif not right:
            score.level_wrong_certain += 1
        if ref.keypoints is not None and ref.keypoint_source == "mask":
            try:
                score.mask_g_errors[ref.label] = abs(genant_index(heights(np.asarray(v.keypoints, dtype=float)))
                                                     - genant_index(heights(ref.keypoints)))
            except (GenantError, ValueError):
                pass
        if not ref.looks_fractured:
            score.looks_normal_matched += 1
            if hasattr(v, "measure") and vertebra_verdict(v)[0] == REVIEW:
                score.false_review.append(ref.label)
        errors = _point_errors(v.keypoints, ref.keypoints)  # every matched body, withheld or not
        if errors is not None:
            score.keypoint_errors_all_mm.append(errors[0])
            score.keypoint_errors_sagittal_all_mm.append(_sagittal_error(np.asarray(v.keypoints, dtype=float),
                                                                         ref.keypoints))
            if errors[1] is not None:
                score.height_errors_all_mm.append(errors[1])
        if m.status != "assessed":
            continue
        if m.grade is not None and m.grade >= 2 and not ref.looks_fractured:
            score.false_grade.append(ref.label)
        if ref.looks_fractured and (m.grade is None or m.grade < 2):
            score.missed_fracture.append(ref.label)
        if errors is not None:
            m.keypoint_error_mm, m.height_error_mm = errors
            score.keypoint_errors_mm.append(m.keypoint_error_mm)
            m.keypoint_error_sagittal_mm = _sagittal_error(np.asarray(v.keypoints, dtype=float), ref.keypoints)
            score.keypoint_errors_sagittal_mm.append(m.keypoint_error_sagittal_mm)
            if m.height_error_mm is not None:
                score.height_errors_mm.append(m.height_error_mm)
    score.outside = sum(m.outside for m in matches)
    score.outside_graded = sum(1 for m in matches if m.outside and m.grade is not None and m.grade >= 2)
    score.missed = [v.label for j, v in enumerate(reference.vertebrae) if v.in_view == "full" and j not in matched_refs]
    score.matches = matches
    if centreline is not None:
        score.centreline_inside, score.centreline_planes = centreline_in_bodies(centreline, reference)
    return score


def distinct_body_errors(scores: Sequence[CaseScore]) -> Dict[str, Any]:
    """Keypoint and height error of the assessed bodies, each physical body counted once.

    The cardiac crops are cut from the chest CT and keep its annotations in the same LPS frame, so one body can be
    matched in up to three cases; the pooled figures of :func:`summarise` count it each time. Here a body is its
    reference level and centroid (to 0.5 mm), its errors are averaged over the cases it was assessed in, and the
    figure is the mean over bodies.
    """
    bodies: Dict[Tuple[str, Tuple[int, ...]], List[Tuple[float, Optional[float]]]] = {}
    for s in scores:
        for m in s.matches:
            if m.keypoint_error_mm is None or m.reference_centroid is None:
                continue
            key = (str(m.reference), tuple(int(round(2.0 * c)) for c in m.reference_centroid))
            bodies.setdefault(key, []).append((m.keypoint_error_mm, m.height_error_mm))
    keypoint, height = [], []
    for errors in bodies.values():
        keypoint.append(float(np.mean([k for k, _ in errors])))
        measured = [h for _, h in errors if h is not None]
        if measured:
            height.append(float(np.mean(measured)))
    return {"bodies": len(bodies), "keypoint_error_mm": float(np.mean(keypoint)) if keypoint else None,
            "height_error_mm": float(np.mean(height)) if height else None}


def summarise(scores: Sequence[CaseScore]) -> Dict[str, Any]:
    """Totals over cases: counts summed, rates pooled over all matched vertebrae (and :func:`distinct_body_errors`)."""
    found = sum(s.found for s in scores)
    keypoints = [e for s in scores for e in s.keypoint_errors_mm]
    sagittal = [e for s in scores for e in s.keypoint_errors_sagittal_mm]
    height_errors = [e for s in scores for e in s.height_errors_mm]
    keypoints_all = [e for s in scores for e in s.keypoint_errors_all_mm]
    sagittal_all = [e for s in scores for e in s.keypoint_errors_sagittal_all_mm]
    heights_all = [e for s in scores for e in s.height_errors_all_mm]
    planes = sum(s.centreline_planes for s in scores)
    reasons: Counter = Counter()
    for s in scores:
        reasons.update(s.not_assessed)
    return {
        "cases": len(scores),
        "n_reference": sum(s.n_reference for s in scores),
        "n_full": sum(s.n_full for s in scores),
        "n_reported": sum(s.n_reported for s in scores),
        "found": found,
        "missed": sum(len(s.missed) for s in scores),
        "outside": sum(s.outside for s in scores),
        "outside_graded": sum(s.outside_graded for s in scores),
        "level_accuracy": (sum(s.level_correct for s in scores) / found) if found else None,
        "level_correct": sum(s.level_correct for s in scores),
        "level_uncertain": sum(s.level_uncertain for s in scores),
        "level_wrong_certain": sum(s.level_wrong_certain for s in scores),
        "keypoint_error_mm": float(np.mean(keypoints)) if keypoints else None,
        "keypoint_error_sagittal_mm": float(np.mean(sagittal)) if sagittal else None,
        "height_error_mm": float(np.mean(height_errors)) if height_errors else None,
        "keypoint_error_all_mm": float(np.mean(keypoints_all)) if keypoints_all else None,
        "keypoint_error_sagittal_all_mm": float(np.mean(sagittal_all)) if sagittal_all else None,
        "height_error_all_mm": float(np.mean(heights_all)) if heights_all else None,
        "keypoints_all_n": len(keypoints_all),
        "distinct_bodies": distinct_body_errors(scores),
        "mask_g_errors": {f"{s.case} {level}": round(e, 3) for s in scores for level, e in s.mask_g_errors.items()},
        "false_grade": sum(len(s.false_grade) for s in scores),
        "false_review": sum(len(s.false_review) for s in scores),
        "looks_normal_matched": sum(s.looks_normal_matched for s in scores),
        "missed_fracture": sum(len(s.missed_fracture) for s in scores),
        "not_assessed": dict(reasons),
        "centreline_inside": sum(s.centreline_inside for s in scores),
        "centreline_planes": sum(s.centreline_planes for s in scores),
        "centreline_fraction": (sum(s.centreline_inside for s in scores) / planes) if planes else None,
        "seconds": sum(s.seconds or 0.0 for s in scores),
        "errors": [f"{s.case}: {s.error}" for s in scores if s.error],
    }
