"""Vertebra level names, VerSe label numbers and their order along the column.

VerSe labels (Sekuboyina et al. 2021; ``../shared/data/real/README.md``): 1-7 = C1-C7,
8-19 = T1-T12, 20-24 = L1-L5, 25 = L6, 26 = S1 (sacrum), 28 = T13 (transitional, VerSe 2020).
The cranio-caudal order puts T13 between T12 and L1 and L6 between L5 and S1.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

#: Level names in cranio-caudal order, each with its VerSe label number.
LEVELS: Tuple[Tuple[str, int], ...] = (
    *((f"C{i}", i) for i in range(1, 8)),
    *((f"T{i}", 7 + i) for i in range(1, 13)),
    ("T13", 28),
    *((f"L{i}", 19 + i) for i in range(1, 6)),
    ("L6", 25),
    ("S1", 26),
)

LEVEL_NAMES: Tuple[str, ...] = tuple(name for name, _ in LEVELS)
_NAME_TO_LABEL: Dict[str, int] = dict(LEVELS)
_LABEL_TO_NAME: Dict[int, str] = {label: name for name, label in LEVELS}
_ORDER: Dict[str, int] = {name: i for i, name in enumerate(LEVEL_NAMES)}

#: Level channels of the keypoint detector's labeller: C7 ... S1 in cranio-caudal order, T13 and L6 included.
LABEL_LEVELS: Tuple[str, ...] = LEVEL_NAMES[LEVEL_NAMES.index("C7") :]
#: Levels that only some spines have (transitional vertebrae).
TRANSITIONAL: Tuple[str, ...] = ("T13", "L6")

#: Levels of a typical spine (no transitional T13 / L6), cranio-caudal, C1 ... S1.
TYPICAL_LEVELS: Tuple[str, ...] = tuple(n for n in LEVEL_NAMES if n not in ("T13", "L6"))

_ALIASES = {"TH": "T", "TL": "T"}


class UnknownLevelError(ValueError):
    """A vertebra label that is neither a known level name nor a VerSe label number."""


def normalise_level(name: str | int) -> str:
    """Return the canonical level name for a name or VerSe label number.

    Accepts ``"L1"``, ``"l1"``, ``"Th7"`` (CTLungCa-500 spelling), ``" T12 "``, ``20`` or ``"20"``.

    Raises:
        UnknownLevelError: if the value names no known level.

    """
    if isinstance(name, (int,)) and not isinstance(name, bool):
        return level_from_label(name)
    text = str(name).strip().upper()
    if text.isdigit():
        return level_from_label(int(text))
    for alias, canonical in _ALIASES.items():
        if text.startswith(alias) and text[len(alias) :].isdigit():
            text = canonical + text[len(alias) :]
    if text not in _ORDER:
        raise UnknownLevelError(
            f"unknown vertebra level {name!r}; expected one of C1-C7, T1-T13, L1-L6, S1 "
            "or a VerSe label number (1-26, 28)"
        )
    return text


def level_from_label(label: int) -> str:
    """Level name of a VerSe label number.

    Raises:
        UnknownLevelError: for a number VerSe does not define as a vertebra.

    """
    try:
        return _LABEL_TO_NAME[int(label)]
    except (KeyError, ValueError, TypeError):
        raise UnknownLevelError(f"unknown VerSe vertebra label {label!r}; expected 1-26 or 28") from None


def label_from_level(name: str | int) -> int:
    """VerSe label number of a level name."""
    return _NAME_TO_LABEL[normalise_level(name)]


def level_index(name: str | int) -> int:
    """Position of a level in cranio-caudal order (C1 = 0); T13 and L6 have their own slots."""
    return _ORDER[normalise_level(name)]


def sort_levels(names: List[str]) -> List[str]:
    """Level names sorted cranio-caudally."""
    return sorted((normalise_level(n) for n in names), key=level_index)


def shift_level(name: str, steps: int, *, transitional: bool = False) -> str:
    """The level ``steps`` positions caudal (positive) or cranial (negative) of ``name``.

    Args:
        name: starting level.
        steps: how many vertebrae to move.
        transitional: count T13 and L6 as positions (only for spines that have them).

    Raises:
        UnknownLevelError: if the move leaves the C1 ... S1 range.

    """
    sequence = LEVEL_NAMES if transitional else TYPICAL_LEVELS
    start = normalise_level(name)
    if start not in sequence:
        sequence = LEVEL_NAMES
    position = sequence.index(start) + steps
    if not 0 <= position < len(sequence):
        raise UnknownLevelError(f"{steps:+d} levels from {start} is outside C1 ... S1")
    return sequence[position]


def region_of(name: str | int) -> str:
    """Region letter of a level: ``"C"``, ``"T"``, ``"L"`` or ``"S"``."""
    return normalise_level(name)[0]
