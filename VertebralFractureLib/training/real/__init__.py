"""Real-CT reference annotations and the scorer that compares an analysis result with them."""

from .reference import (
    CaseScore,
    NoSpineRegion,
    Reference,
    ReferenceError,
    ReferenceVertebra,
    list_cases,
    load_case,
    load_reference,
    reference_dir,
    score_case,
    summarise,
)

__all__ = [
    "CaseScore",
    "NoSpineRegion",
    "Reference",
    "ReferenceError",
    "ReferenceVertebra",
    "list_cases",
    "load_case",
    "load_reference",
    "reference_dir",
    "score_case",
    "summarise",
]
