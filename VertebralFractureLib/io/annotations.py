"""The project's own versioned annotation file: six keypoints per vertebra plus their edit history.

An annotation file is a :class:`VertebralFractureLib.schema.SpineResult` document (frame, input
geometry, vertebrae with level label, centroid, six keypoints, derived Genant measures, source
and edit history) carrying the schema string ``"vertebral-fracture-annotation/2"`` (``/1`` is still read). Analysis
results (``"vertebral-fracture/2"`` and ``/1``) are read as annotations too, so a model's output can be
corrected and saved as an annotation. Derived values (heights, G, grade, type, patient summary)
are always recomputed from the keypoints on reading.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Union

from ..schema import OLD_SCHEMAS, SCHEMA, SchemaError, SpineResult, Vertebra
from .atomic import atomic_write
from .text import read_text_file

PathLike = Union[str, Path]
ANNOTATION_SCHEMA = "vertebral-fracture-annotation/2"
#: Earlier annotation schemas (no vertebra status: every vertebra counts as assessed).
OLD_ANNOTATION_SCHEMAS = ("vertebral-fracture-annotation/1",)
#: Schemas :func:`read_annotations` accepts.
READABLE_SCHEMAS = (ANNOTATION_SCHEMA, *OLD_ANNOTATION_SCHEMAS, SCHEMA, *OLD_SCHEMAS)
_DICT_FIELDS = ("input", "patient", "timings_s", "models")
#: Errors of malformed content that reading turns into :class:`AnnotationError`.
_READ_ERRORS = (SchemaError, TypeError, ValueError, AttributeError, KeyError, IndexError, ArithmeticError)


class AnnotationError(SchemaError):
    """An annotation file that cannot be read; the message names the file and the vertebra."""


def annotation_document(result: SpineResult) -> dict:
    """The JSON-ready annotation document of a result (schema ``vertebral-fracture-annotation/1``)."""
    document = result.to_dict()
    document["schema"] = ANNOTATION_SCHEMA
    return document


def write_annotations(result: SpineResult, path: PathLike, overwrite: bool = False) -> Path:
    """Write a result as an annotation file, atomically.

    Raises:
        ExistingFileError: if the file exists and ``overwrite`` is False.
        AnnotationError: if the result holds values JSON cannot store (non-finite numbers).

    """
    try:
        text = json.dumps(annotation_document(result), indent=2, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise AnnotationError(f"{path}: cannot write this result as JSON: {error}") from None
    return atomic_write(path, text, overwrite=overwrite)


def _label_of(entry: Any) -> str:
    if isinstance(entry, dict) and "label" in entry:
        return repr(entry["label"])
    return "without a label"


def parse_annotations(document: Any, source: str = "annotation") -> SpineResult:
    """A :class:`SpineResult` from a parsed annotation or result document.

    Args:
        document: the parsed JSON.
        source: name used in error messages (the file path).

    Raises:
        AnnotationError: naming ``source``, the vertebra (entry number and label) and the problem.

    """
    if not isinstance(document, dict):
        raise AnnotationError(f"{source}: expected a JSON object at the top level, got {type(document).__name__}")
    schema = document.get("schema")
    if schema not in READABLE_SCHEMAS:
        raise AnnotationError(f"{source}: unknown schema {schema!r}; this version reads {', '.join(READABLE_SCHEMAS)}")
    for name in _DICT_FIELDS:
        if name in document and not isinstance(document[name], dict):
            raise AnnotationError(f"{source}: {name!r} must be an object, got {type(document[name]).__name__}")
    if "warnings" in document and not isinstance(document["warnings"], list):
        raise AnnotationError(f"{source}: 'warnings' must be a list")
    if "pixel_spacing" in document:
        spacing = document["pixel_spacing"]
        if (
            not isinstance(spacing, list)
            or len(spacing) != 2
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) and s > 0 for s in spacing)
        ):
            raise AnnotationError(f"{source}: 'pixel_spacing' must be two positive numbers, got {spacing!r}")
    entries = document.get("vertebrae", [])
    if not isinstance(entries, list):
        raise AnnotationError(f"{source}: 'vertebrae' must be a list")
    for number, entry in enumerate(entries, start=1):
        try:
            Vertebra.from_dict(entry)
        except _READ_ERRORS as error:
            raise AnnotationError(f"{source}: vertebra {number} ({_label_of(entry)}): {error}") from None
    try:
        return SpineResult.from_dict(document, accept_schemas=READABLE_SCHEMAS)
    except _READ_ERRORS as error:
        raise AnnotationError(f"{source}: {error}") from None


def read_annotations(path: PathLike) -> SpineResult:
    """Read an annotation file (or an analysis result file) as a :class:`SpineResult`.

    Raises:
        AnnotationError: for a missing, empty, truncated or non-JSON file, a wrong schema, unknown
            or duplicate levels, wrong point counts or non-finite values; the message names the
            file and the vertebra.

    """
    path = Path(path)
    text = read_text_file(path, AnnotationError)
    if not text.strip():
        raise AnnotationError(f"{path}: the file is empty")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{path}: not valid JSON (truncated?): {error}") from None
    except RecursionError:
        raise AnnotationError(f"{path}: JSON nested too deeply") from None
    return parse_annotations(document, str(path))


__all__ = [
    "ANNOTATION_SCHEMA",
    "READABLE_SCHEMAS",
    "AnnotationError",
    "annotation_document",
    "parse_annotations",
    "read_annotations",
    "write_annotations",
]
