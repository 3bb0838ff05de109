"""The one result schema shared by the CLI, the MRML bridge, the annotations and every export.

A :class:`SpineResult` holds the vertebrae of one image with their six keypoints and derived
Genant measures. The same object is written as an analysis result (``results.json``, schema
``vertebral-fracture/1``), as the generator's ground truth (``truth.json``,
``radiograph.json``) and, with its edit history, as the project's annotation file
(:mod:`VertebralFractureLib.io.annotations`). Coordinates always say their frame: ``"LPS"``
(3D points in mm) or ``"pixel"`` (2D points ``[column, row]`` of a radiograph).

JSON layout::

    {"schema": "vertebral-fracture/2", "frame": "LPS", "input": {...geometry...},
     "vertebrae": [{"label": "L1", "centroid": [x, y, z], "keypoints": [[x, y, z] x 6],
                    "status": "assessed" | "not_assessed", "status_reason": null | "...",
                    "quality": 0-1, "checks": {...}, "verdict", "verdict_reason",
                    "heights_mm": {"anterior", "middle", "posterior"},  # null on a picture with no
                    "heights_px", "height_unit": "pixel",                 # pixel size: heights in pixels
                    "genant": {"G", "grade", "type"}, "neighbour_reduction", "confidence",
                    "fracture_probability", "voxel_fracture_score", "abnormality",
                    "source", "history": [...]}],
     "patient": {"verdict", "verdict_reason", "max_grade", "n_vertebrae", "n_assessed", "not_assessed",
                 "n_fractured", "fractured_levels", "review_levels", ...},
     "timings_s": {...}, "models": {...}, "warnings": [...]}

Never grade what the image does not support: a vertebra with ``status == "not_assessed"`` keeps its
keypoints (so it can be shown and corrected) but gets no heights, G or grade, is left out of its
neighbours' reference heights and of every patient-level count; ``status_reason`` says why in one
sentence. Schema ``vertebral-fracture/1`` documents (no status) are still read: every vertebra in them
counts as assessed, as it did when they were written.

A reader's keypoints (:meth:`Vertebra.measured_on_reader_points`, called wherever moved points are folded back: the
Slicer module, ``.mrk.json`` keypoints read against an earlier result): once a reader has moved a vertebra's
keypoints, its measure is the reader's (``extra["keypoints_by"] == "reader"``). A vertebra the analysis withheld is
then measured and graded on those points (the analysis's reason kept in ``extra["withheld_by_analysis"]`` and in an
``assess`` history entry): what the analysis doubted (a body it did not see, keypoints off the endplates, a body it
placed above the column) a reader who placed six points has decided. Not when the body is cut by the edge of the
image (:func:`cut_by_the_view`): no placement shows what the picture does not hold. Undo restores the withheld state
with the points.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from . import __version__
from .genant import (
    KEYPOINT_NAMES,
    GenantError,
    GenantMeasure,
    genant_index,
    heights,
    measure_column,
)
from .levels import level_index, normalise_level
from .verdict import FRACTURE, REVIEW, UNCONFIRMED_GRADE_KEY, UNCONFIRMED_RESOLVED_KEY, patient_verdict

SCHEMA = "vertebral-fracture/2"
#: Earlier schemas this version still reads.
OLD_SCHEMAS = ("vertebral-fracture/1",)
#: Status of a vertebra that was measured and graded.
ASSESSED = "assessed"
#: Status of a vertebra that is shown but not graded (``status_reason`` says why).
NOT_ASSESSED = "not_assessed"
STATUSES = (ASSESSED, NOT_ASSESSED)
FRAMES = ("LPS", "pixel")
#: ``Vertebra.extra`` key naming who placed the keypoints the measure is taken on: :data:`READER` once a reader moved
#: them (module doc).
KEYPOINTS_BY_KEY = "keypoints_by"
READER = "reader"
#: ``Vertebra.extra`` key: the reason the analysis had given for withholding a vertebra a reader's keypoints measure.
WITHHELD_KEY = "withheld_by_analysis"
#: ``Vertebra.extra`` key: False where this vertebra's level is not counted with certainty although the result's levels
#: are anchored (a radiograph's count past a spacing that fits no whole number of levels; a CT's count past a gap that
#: fits no single number of missed bodies); an annotator's relabel sets it True.
LEVEL_CERTAIN_KEY = "level_certain"
#: The words every "cut by the edge of the field of view / image / mask" reason of the analysis holds
#: (:func:`cut_by_the_view`), and the gate check that says so.
CUT_WORDS = ("cut by the", "edge")
FIELD_OF_VIEW_CHECK = "field_of_view"
#: Keys of a vertebra entry written for pictures with no pixel size (heights in pixels), recomputed on reading.
PIXEL_HEIGHT_KEYS = ("height_unit", "heights_px")
#: Keypoint sources with exact geometry, graded against their normal neighbours
#: (:func:`VertebralFractureLib.genant.measure_column`); other sources (``model``) only by the crush comparison.
EXACT_SOURCES = ("mask", "annotator", "synthetic")
#: Optional per-vertebra scores filled in by later analysis stages.
SCORE_FIELDS = ("fracture_probability", "voxel_fracture_score", "abnormality")


class SchemaError(ValueError):
    """A result or annotation document that does not follow the schema; the message says where."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _check_json_values(value: Any, where: str) -> None:
    """Raise :class:`SchemaError` for NaN or infinite numbers anywhere in a JSON value."""
    if isinstance(value, float) and not math.isfinite(value):
        raise SchemaError(f"{where} holds a non-finite number ({value})")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json_values(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_values(item, f"{where}[{index}]")


def _finite_or_none(value: Any) -> Optional[float]:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class Edit:
    """One entry of a vertebra's edit history (who changed what, when)."""

    action: str
    detail: str = ""
    time: str = field(default_factory=_now)
    user: str = ""

    def to_dict(self) -> Dict[str, str]:
        """JSON-ready form."""
        return {"action": self.action, "detail": self.detail, "time": self.time, "user": self.user}


@dataclass
class Vertebra:
    """One vertebra: level, centroid, six keypoints and the measures derived from them.

    Attributes:
        label: level name (``"T12"``); see :mod:`VertebralFractureLib.levels`.
        centroid: vertebral-body centre, D coordinates in the result's frame.
        keypoints: (6, D) in :data:`VertebralFractureLib.genant.KEYPOINT_NAMES` order.
        confidence: detection / labelling confidence 0-1, None for manual points.
        source: where the points came from (``model``, ``annotator``, ``synthetic``, ``mask``...).
        measure: Genant measures, filled by :meth:`SpineResult.recompute`.
        fracture_probability, voxel_fracture_score, abnormality: scores of later stages.
        history: the edits made to this vertebra.
        extra: further per-vertebra values kept through the JSON round trip.
        status: ``"assessed"`` or ``"not_assessed"`` (then no grade is given; see the module docstring).
        status_reason: why a vertebra is not assessed, one sentence; None when assessed.
        quality: the quality gate's confidence 0-1 that the image supports this vertebra, None before the gate.
        checks: the quality gate's score 0-1 per check (bone, canal, size, endplates, field of view...).

    """

    label: str
    centroid: np.ndarray
    keypoints: np.ndarray
    confidence: Optional[float] = None
    source: str = "model"
    measure: Optional[GenantMeasure] = None
    fracture_probability: Optional[float] = None
    voxel_fracture_score: Optional[float] = None
    abnormality: Optional[float] = None
    history: List[Edit] = field(default_factory=list)
    extra: Dict[str, Any] = field(default_factory=dict)
    status: str = ASSESSED
    status_reason: Optional[str] = None
    quality: Optional[float] = None
    checks: Dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.label = normalise_level(self.label)
        if self.status not in STATUSES:
            raise SchemaError(f"{self.label}: unknown status {self.status!r}; expected one of {STATUSES}")
        self.keypoints = np.asarray(self.keypoints, dtype=float)
        self.centroid = np.asarray(self.centroid, dtype=float)
        if self.keypoints.shape not in ((6, 3), (6, 2)):
            raise SchemaError(
                f"{self.label}: expected 6 keypoints of 2 or 3 coordinates, got shape {self.keypoints.shape}"
            )
        if self.centroid.shape != (self.keypoints.shape[1],):
            raise SchemaError(
                f"{self.label}: centroid has {self.centroid.size} coordinates, keypoints {self.keypoints.shape[1]}"
            )
        if not (np.all(np.isfinite(self.keypoints)) and np.all(np.isfinite(self.centroid))):
            raise SchemaError(f"{self.label}: keypoints or centroid contain non-finite values")

    def verdict(self) -> tuple:
        """``(verdict, reason)`` by the rule of :mod:`VertebralFractureLib.verdict`."""
        from .verdict import vertebra_verdict

        return vertebra_verdict(self)

    @property
    def assessed(self) -> bool:
        """Whether this vertebra is measured and graded."""
        return self.status == ASSESSED

    def not_assessed(self, reason: str) -> None:
        """Mark as not assessed, keeping the first reason given."""
        if self.status != NOT_ASSESSED:
            self.status, self.status_reason = NOT_ASSESSED, reason
        self.measure = None

    @property
    def points_shown_source(self) -> str:
        """Where the keypoints came from, as the Genant tables show it: :attr:`source`, and who moved them since."""
        if self.extra.get(KEYPOINTS_BY_KEY) == READER:
            return f"{self.source}, moved by the reader"
        return self.source

    def measured_on_reader_points(self) -> bool:
        """A reader moved this vertebra's keypoints: take its measure on them (module doc, "A reader's keypoints").

        Returns:
            True when this made a withheld vertebra assessed.
        """
        self.extra[KEYPOINTS_BY_KEY] = READER
        if self.assessed or cut_by_the_view(self):
            return False
        reason = self.status_reason
        self.status, self.status_reason = ASSESSED, None
        self.extra[WITHHELD_KEY] = reason
        self.extra.pop(UNCONFIRMED_GRADE_KEY, None)  # the model's withheld grade: the reader's points give their own
        self.extra.pop(UNCONFIRMED_RESOLVED_KEY, None)
        self.record("assess", f"measured on the reader's keypoints; the analysis had withheld it: {reason}")
        return True

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (see the module docstring)."""
        out: Dict[str, Any] = {
            "label": self.label,
            "centroid": self.centroid.tolist(),
            "keypoints": self.keypoints.tolist(),
            "status": self.status,
            "status_reason": self.status_reason,
        }
        if self.quality is not None:
            out["quality"] = round(float(self.quality), 4)
        if self.checks:
            out["checks"] = {k: round(float(v), 4) for k, v in self.checks.items()}
        out["verdict"], out["verdict_reason"] = self.verdict()
        if self.measure is not None:
            m = self.measure
            out["heights_mm"] = dict(zip(("anterior", "middle", "posterior"), m.heights))
            out["genant"] = {"G": m.G, "grade": m.grade, "type": m.type}
            out["neighbour_reduction"] = m.neighbour_reduction
        out["confidence"] = self.confidence
        for name in SCORE_FIELDS:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["source"] = self.source
        out["history"] = [edit.to_dict() for edit in self.history]
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Vertebra:
        """Read one vertebra entry; measures are recomputed by the owning result.

        Raises:
            SchemaError: naming the entry and the problem.

        """
        if not isinstance(data, dict):
            raise SchemaError(f"a vertebra entry must be an object, got {type(data).__name__}")
        known = {
            "label",
            "centroid",
            "keypoints",
            "heights_mm",
            *PIXEL_HEIGHT_KEYS,
            "genant",
            "neighbour_reduction",
            "confidence",
            "source",
            "history",
            "status",
            "status_reason",
            "quality",
            "checks",
            "verdict",
            "verdict_reason",
            *SCORE_FIELDS,
        }
        try:
            label = data["label"]
            keypoints = np.asarray(data["keypoints"], dtype=float)
            if keypoints.shape == (3, 2, keypoints.shape[-1]) and keypoints.ndim == 3:
                keypoints = keypoints.reshape(6, -1)
            centroid = data.get("centroid")
            if centroid is None and keypoints.ndim == 2:
                centroid = keypoints.mean(axis=0)
            extra = {k: v for k, v in data.items() if k not in known}
            _check_json_values(extra, f"vertebra {data.get('label', '?')!r}")
            history = [
                Edit(**{k: str(v) for k, v in e.items() if k in ("action", "detail", "time", "user")})
                for e in data.get("history", [])
            ]
            return cls(
                label=label,
                centroid=np.asarray(centroid, dtype=float),
                keypoints=keypoints,
                confidence=_finite_or_none(data.get("confidence")),
                source=str(data.get("source", "model")),
                history=history,
                extra=extra,
                status=str(data.get("status", ASSESSED)),
                status_reason=None if data.get("status_reason") is None else str(data["status_reason"]),
                quality=_finite_or_none(data.get("quality")),
                checks={str(k): float(v) for k, v in dict(data.get("checks") or {}).items()},
                **{name: _finite_or_none(data.get(name)) for name in SCORE_FIELDS},
            )
        except KeyError as error:
            raise SchemaError(f"vertebra entry {data.get('label', '?')!r} lacks the field {error}") from None
        except (TypeError, ValueError, AttributeError) as error:
            if isinstance(error, SchemaError):
                raise
            raise SchemaError(f"vertebra entry {data.get('label', '?')!r} is malformed: {error}") from None

    def copy(self, **changes: Any) -> "Vertebra":
        """A copy with some fields changed; history, extras and points are copied, not shared.

        The Genant measure is left empty: the owning :class:`SpineResult` recomputes it.
        """
        fields: Dict[str, Any] = {
            "centroid": self.centroid.copy(),
            "keypoints": self.keypoints.copy(),
            "history": list(self.history),
            "extra": dict(self.extra),
            "checks": dict(self.checks),
            "measure": None,
        }
        fields.update(changes)
        return dataclasses.replace(self, **fields)

    def record(self, action: str, detail: str = "", user: str = "") -> None:
        """Append an entry to the edit history."""
        self.history.append(Edit(action, detail, user=user))


def cut_by_the_view(vertebra: Vertebra) -> bool:
    """Whether the analysis withheld ``vertebra`` because the image holds only part of it.

    The gates' ``field_of_view`` check failed (CT :mod:`VertebralFractureLib.quality.checks`, lateral views
    :mod:`VertebralFractureLib.radiograph.gate2d`), or the reason is one of the "cut by the ... edge" reasons (the
    keypoint stage, the mask measurement, the gates).
    """
    if vertebra.assessed:
        return False
    if vertebra.checks.get(FIELD_OF_VIEW_CHECK, 1.0) < 0.5:
        return True
    reason = (vertebra.status_reason or "").lower()
    return all(word in reason for word in CUT_WORDS)


@dataclass
class SpineResult:
    """All vertebrae of one image plus patient-level findings.

    Attributes:
        vertebrae: kept sorted cranio-caudally.
        frame: ``"LPS"`` (3D mm) or ``"pixel"`` (2D radiograph points ``[column, row]``).
        input: geometry and provenance of the image (``ImageGeometry.to_dict()`` plus ``path``...).
        patient: patient-level values beyond those computed here (e.g. probabilities).
        timings_s: seconds per stage.
        models: name -> version / SHA-256 of the models used.
        warnings: messages for the user (e.g. a stage skipped).
        pixel_spacing: for ``"pixel"`` frames, mm per pixel (column, row) used for heights.

    """

    vertebrae: List[Vertebra] = field(default_factory=list)
    frame: str = "LPS"
    input: Dict[str, Any] = field(default_factory=dict)
    patient: Dict[str, Any] = field(default_factory=dict)
    timings_s: Dict[str, float] = field(default_factory=dict)
    models: Dict[str, Any] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    pixel_spacing: tuple = (1.0, 1.0)

    def __post_init__(self) -> None:
        if self.frame not in FRAMES:
            raise SchemaError(f"unknown frame {self.frame!r}; expected one of {FRAMES}")
        self.recompute()

    # ------------------------------------------------------------------ measures
    def _measurable_points(self, vertebra: Vertebra) -> np.ndarray:
        if self.frame == "pixel":
            return vertebra.keypoints * np.asarray(self.pixel_spacing, dtype=float)[None, :]
        return vertebra.keypoints

    def recompute(self) -> None:
        """Sort the vertebrae, check the levels and recompute every Genant measure.

        A vertebra whose keypoints are degenerate keeps ``measure = None`` and a warning is
        added, so one bad point never blocks the rest of the column.

        Raises:
            SchemaError: if two vertebrae carry the same level.

        """
        self.vertebrae.sort(key=lambda v: level_index(v.label))
        labels = [v.label for v in self.vertebrae]
        dupes = sorted({x for x in labels if labels.count(x) > 1}, key=level_index)
        if dupes:
            raise SchemaError(f"duplicate vertebra levels: {', '.join(dupes)}")
        valid, invalid = [], []
        for v in self.vertebrae:
            if not v.assessed:
                v.measure = None
                continue
            try:
                genant_index(heights(self._measurable_points(v)))
                valid.append(v)
            except GenantError as error:
                v.measure = None
                invalid.append(f"{v.label}: {error}")
        measures = measure_column([v.label for v in valid], [self._measurable_points(v) for v in valid],
                                  exact=[v.source in EXACT_SOURCES for v in valid])
        for v, m in zip(valid, measures):
            v.measure = m
        self.warnings = [w for w in self.warnings if not w.startswith("keypoints ")]
        self.warnings += [f"keypoints {text}" for text in invalid]

    def vertebra(self, label: str) -> Vertebra:
        """The vertebra with this level.

        Raises:
            KeyError: if the level is not in the result.

        """
        name = normalise_level(label)
        for v in self.vertebrae:
            if v.label == name:
                return v
        raise KeyError(
            f"no vertebra {name} in this result (levels: {', '.join(v.label for v in self.vertebrae) or 'none'})"
        )

    @property
    def labels(self) -> List[str]:
        """Level names, cranio-caudal."""
        return [v.label for v in self.vertebrae]

    def patient_summary(self) -> Dict[str, Any]:
        """Patient-level findings over the assessed vertebrae: the most severe one (Pisov et al. 2020, §5.1), counts.

        Vertebrae not assessed are listed with their reasons and counted apart; no grade or score of theirs
        enters the patient's findings. ``verdict`` / ``verdict_reason``, ``fractured_levels`` (verdict
        "fracture": grade 2-3) and ``review_levels`` follow :mod:`VertebralFractureLib.verdict`.
        """
        measured = [v for v in self.vertebrae if v.measure is not None and v.assessed]
        grades = [v.measure.grade for v in measured]
        worst = min(measured, key=lambda v: (-v.measure.grade, v.measure.G), default=None)
        verdicts = {v.label: v.verdict() for v in self.vertebrae}
        verdict, verdict_reason = patient_verdict(self.vertebrae)
        summary: Dict[str, Any] = {
            "verdict": verdict,
            "verdict_reason": verdict_reason,
            "max_grade": max(grades, default=0),
            "min_G": min((v.measure.G for v in measured), default=None),
            "worst_level": worst.label if worst is not None and worst.measure.grade > 0 else None,
            "n_vertebrae": len(self.vertebrae),
            "n_assessed": sum(1 for v in self.vertebrae if v.assessed),
            "not_assessed": {v.label: v.status_reason for v in self.vertebrae if not v.assessed},
            "n_fractured": sum(1 for level in verdicts if verdicts[level][0] == FRACTURE),
            "fractured_levels": [level for level in verdicts if verdicts[level][0] == FRACTURE],
            "review_levels": {level: reason for level, (kind, reason) in verdicts.items() if kind == REVIEW},
        }
        for name in SCORE_FIELDS:
            values = [getattr(v, name) for v in self.vertebrae if getattr(v, name) is not None and v.assessed]
            if values:
                summary[f"max_{name}"] = max(values)
        summary.update(self.patient)
        return summary

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready document (schema :data:`SCHEMA`)."""
        document: Dict[str, Any] = {
            "schema": SCHEMA,
            "frame": self.frame,
            "software": {"name": "VertebralFracture", "version": __version__},
            "keypoint_order": list(KEYPOINT_NAMES),
            "input": self.input,
            "vertebrae": [self._with_height_unit(v.to_dict()) for v in self.vertebrae],
            "patient": self.patient_summary(),
            "timings_s": self.timings_s,
            "models": self.models,
            "warnings": self.warnings,
        }
        if self.frame == "pixel":
            document["pixel_spacing"] = list(self.pixel_spacing)
        return document

    @property
    def height_unit(self) -> str:
        """``"mm"``, or ``"pixel"`` for a picture with no known pixel size (``input["height_unit"]``)."""
        return "pixel" if self.frame == "pixel" and self.input.get("height_unit") == "pixel" else "mm"

    def _with_height_unit(self, entry: Dict[str, Any]) -> Dict[str, Any]:
        """A vertebra entry whose height keys say their unit: pixel heights never under ``heights_mm``."""
        for key in PIXEL_HEIGHT_KEYS:
            entry.pop(key, None)
        if self.height_unit == "pixel":
            heights = entry.pop("heights_mm", None)
            entry["height_unit"] = "pixel"
            entry["heights_mm"] = None
            if heights is not None:
                entry["heights_px"] = heights
        return entry

    def to_json(self) -> str:
        """Serialised :meth:`to_dict`, indented."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False)

    @classmethod
    def from_dict(cls, data: Dict[str, Any], *, accept_schemas: tuple = (SCHEMA, *OLD_SCHEMAS)) -> SpineResult:
        """Read a document written by :meth:`to_dict`.

        Raises:
            SchemaError: for an unknown schema, a wrong frame, malformed vertebrae or
                duplicate levels.

        """
        if not isinstance(data, dict):
            raise SchemaError(f"expected a JSON object at the top level, got {type(data).__name__}")
        schema = data.get("schema")
        if schema not in accept_schemas:
            raise SchemaError(f"unknown schema {schema!r}; this version reads {', '.join(accept_schemas)}")
        for block, kind in (("input", dict), ("patient", dict), ("timings_s", dict), ("models", dict),
                            ("warnings", list), ("pixel_spacing", list)):
            if block in data:
                if not isinstance(data[block], kind):
                    raise SchemaError(f"'{block}' must be a JSON {'object' if kind is dict else 'list'}")
                _check_json_values(data[block], block)
        entries = data.get("vertebrae", [])
        if not isinstance(entries, list):
            raise SchemaError("'vertebrae' must be a list")
        vertebrae = [Vertebra.from_dict(entry) for entry in entries]
        frame = data.get("frame", "LPS")
        if frame not in FRAMES:
            raise SchemaError(f"unknown frame {frame!r}; expected one of {FRAMES}")
        dim = 2 if frame == "pixel" else 3
        for v in vertebrae:
            if v.keypoints.shape[1] != dim:
                raise SchemaError(f"{v.label}: frame {frame} needs {dim}D points, got {v.keypoints.shape[1]}D")
        patient = {
            k: v
            for k, v in data.get("patient", {}).items()
            if k not in ("verdict", "verdict_reason", "max_grade", "min_G", "worst_level", "n_vertebrae",
                         "n_assessed", "not_assessed", "n_fractured", "fractured_levels", "review_levels")
            and not k.startswith("max_")
        }
        return cls(
            vertebrae=vertebrae,
            frame=frame,
            input=dict(data.get("input", {})),
            patient=patient,
            timings_s=dict(data.get("timings_s", {})),
            models=dict(data.get("models", {})),
            warnings=[w for w in data.get("warnings", []) if not str(w).startswith("keypoints ")],
            pixel_spacing=tuple(data.get("pixel_spacing", (1.0, 1.0))),
        )

    @classmethod
    def from_json(cls, text: str, **kwargs: Any) -> SpineResult:
        """Parse JSON text.

        Raises:
            SchemaError: for invalid JSON or a document that does not follow the schema.

        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise SchemaError(f"not valid JSON: {error}") from None
        return cls.from_dict(data, **kwargs)
