"""Label numbering schemes of vertebra segmentations, in one table, and the choice between them.

Sources (each table below is copied from its source, not inferred):

* ``verse``: VerSe (Löffler et al. 2020; Sekuboyina et al. 2021): 1-7 = C1-C7, 8-19 = T1-T12,
  20-24 = L1-L5, 25 = L6, 26 = S1 (sacrum), 28 = T13 (VerSe 2020); the table of
  :mod:`VertebralFractureLib.levels`.
* ``totalsegmentator``: TotalSegmentator v2, task ``total`` (Wasserthal et al. 2023), file
  ``totalsegmentator/map_to_binary.py`` of wasserth/TotalSegmentator (``class_map["total"]``, read at
  commit 0275d3046117a9615a9876e6e4eefd5156843f1c): 25 = sacrum, 26 = vertebrae_S1, 27-31 =
  vertebrae_L5 ... vertebrae_L1, 32-43 = vertebrae_T12 ... vertebrae_T1, 44-50 = vertebrae_C7 ...
  vertebrae_C1; labels 1-117 in all (organs, vessels, muscles, ribs ... are ignored here).
* ``totalsegmentator-v1``: TotalSegmentator v1 (``class_map["total_v1"]`` of the same file):
  18-22 = vertebrae_L5 ... vertebrae_L1, 23-34 = vertebrae_T12 ... vertebrae_T1, 35-41 =
  vertebrae_C7 ... vertebrae_C1, 92 = sacrum; labels 1-104 in all.

Both TotalSegmentator numberings run caudo-cranially (L5 below L1 below T12), VerSe
cranio-caudally; :func:`fitting_schemes` uses that, with the positions of the labels in the image,
to tell them apart. TotalSegmentator's folder output names every file after its structure
(``vertebrae_L1.nii.gz``); :func:`level_of_name` reads the level from such a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import numpy as np

from ..levels import LEVELS, label_from_level

#: Where the TotalSegmentator tables come from.
TOTALSEGMENTATOR_SOURCE = ("wasserth/TotalSegmentator, totalsegmentator/map_to_binary.py, class_map['total'] (v2) "
                           "and class_map['total_v1'] (v1), commit 0275d3046117a9615a9876e6e4eefd5156843f1c")


class SegmentationError(ValueError):
    """A segmentation that cannot be measured safely; the message is one line for the user."""


class LabelSchemeError(SegmentationError):
    """A label set that no scheme explains, or that more than one explains; the message says which."""


@dataclass(frozen=True)
class LabelScheme:
    """One numbering of vertebra labels.

    Attributes:
        name: the ``--label-scheme`` value.
        vertebrae: label number -> level name (``"L1"``).
        n_labels: highest label number the scheme defines (every label 1..n_labels is a structure;
            for VerSe only the vertebra labels are defined).
        caudal_first: True when the numbers rise from caudal to cranial (TotalSegmentator).
        source: where the table comes from.

    """

    name: str
    vertebrae: Dict[int, str]
    n_labels: int
    caudal_first: bool
    source: str

    def defines(self, label: int) -> bool:
        """Whether ``label`` is a structure of this scheme (vertebra or other)."""
        if self.name == "verse":
            return label in self.vertebrae
        return 1 <= label <= self.n_labels


def _totalsegmentator(first_s1: Optional[int], first_l5: int, n_labels: int, name: str) -> LabelScheme:
    """Table of a TotalSegmentator numbering: S1 (v2 only), then L5 ... L1, T12 ... T1, C7 ... C1."""
    order = ([f"L{i}" for i in range(5, 0, -1)] + [f"T{i}" for i in range(12, 0, -1)]
             + [f"C{i}" for i in range(7, 0, -1)])
    table = {first_l5 + k: level for k, level in enumerate(order)}
    if first_s1 is not None:
        table[first_s1] = "S1"
    return LabelScheme(name, dict(sorted(table.items())), n_labels, True, TOTALSEGMENTATOR_SOURCE)


#: Every scheme by its ``--label-scheme`` name.
SCHEMES: Dict[str, LabelScheme] = {
    "verse": LabelScheme("verse", {label: name for name, label in LEVELS}, 28, False,
                         "VerSe (Löffler et al. 2020; Sekuboyina et al. 2021), VertebralFractureLib.levels"),
    "totalsegmentator": _totalsegmentator(26, 27, 117, "totalsegmentator"),
    "totalsegmentator-v1": _totalsegmentator(None, 18, 104, "totalsegmentator-v1"),
}
SCHEME_NAMES: Tuple[str, ...] = tuple(SCHEMES)

_NAME_PATTERN = re.compile(r"(?:^|[^a-z0-9])(?:vertebrae?[_\- ]?)?(c[1-7]|t1[0-3]|t[1-9]|l[1-6]|s1)(?=$|[^a-z0-9])",
                           re.IGNORECASE)


def level_of_name(name: str) -> Optional[str]:
    """Level named by a file or segment name (``vertebrae_L1.nii.gz``, ``L1``, ``T12 vertebra``), or None.

    File extensions (``.nii.gz``, ``.nrrd``, ``.seg.nrrd``) are ignored; a name that mentions two
    different levels gives None.
    """
    stem = re.sub(r"(\.seg)?\.(nii\.gz|nii|nrrd|nhdr|mha|mhd)$", "", name.strip(), flags=re.IGNORECASE)
    found = {match.upper() for match in _NAME_PATTERN.findall(stem)}
    return found.pop() if len(found) == 1 else None


def _order_fits(labels: List[int], scheme: LabelScheme, centroids: Dict[int, np.ndarray]) -> bool:
    """Whether the scheme's cranio-caudal order of ``labels`` agrees with the patient's superior axis."""
    from ..levels import level_index

    vertebrae = sorted((v for v in labels if v in scheme.vertebrae), key=lambda v: level_index(scheme.vertebrae[v]))
    if len(vertebrae) < 2:
        return True
    # cranial end above the caudal end (LPS z = superior), and every step points the same way
    chord = centroids[vertebrae[0]] - centroids[vertebrae[-1]]
    if chord[2] <= 0:
        return False
    steps = [centroids[a] - centroids[b] for a, b in zip(vertebrae, vertebrae[1:])]
    return all(float(step @ chord) > 0 for step in steps)


def _order_problem(labels: List[int], scheme: LabelScheme, centroids: Dict[int, np.ndarray]) -> str:
    """Why the levels of ``labels`` are out of cranio-caudal order in the image (one clause)."""
    from ..levels import level_index

    vertebrae = sorted((v for v in labels if v in scheme.vertebrae), key=lambda v: level_index(scheme.vertebrae[v]))
    chord = centroids[vertebrae[0]] - centroids[vertebrae[-1]]
    if chord[2] <= 0:
        return (f"{scheme.vertebrae[vertebrae[0]]} (label {vertebrae[0]}) lies below "
                f"{scheme.vertebrae[vertebrae[-1]]} (label {vertebrae[-1]}) in the image")
    for a, b in zip(vertebrae, vertebrae[1:]):
        if float((centroids[a] - centroids[b]) @ chord) <= 0:
            return (f"the levels are out of order along the column: {scheme.vertebrae[a]} (label {a}) "
                    f"is not above {scheme.vertebrae[b]} (label {b})")
    return "the levels are out of order"


def fitting_schemes(labels: Iterable[int], centroids: Optional[Dict[int, np.ndarray]] = None) -> List[str]:
    """Schemes that explain every label: all defined, at least one vertebra, order along the column.

    Args:
        labels: the non-zero label values of a mask.
        centroids: label -> LPS centroid (mm); when given, the levels' cranio-caudal order must agree
            with the image's superior axis (this tells VerSe from TotalSegmentator numbering).

    """
    labels = sorted(int(v) for v in labels if int(v) != 0)
    out = []
    for name, scheme in SCHEMES.items():
        if not labels or not all(scheme.defines(v) for v in labels):
            continue
        if not any(v in scheme.vertebrae for v in labels):
            continue
        if centroids is not None and not _order_fits(labels, scheme, centroids):
            continue
        out.append(name)
    return out


def _ranges(labels: List[int]) -> str:
    """``1-5, 7, 31-33``: a compact list of label numbers."""
    parts, start = [], None
    for position, value in enumerate(labels):
        if start is None:
            start = value
        if position + 1 == len(labels) or labels[position + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}-{value}")
            start = None
    return ", ".join(parts)


def choose_scheme(labels: Iterable[int], requested: Optional[str] = None,
                  centroids: Optional[Dict[int, np.ndarray]] = None, source: str = "mask") -> LabelScheme:
    """The scheme of a mask: the requested one when it fits; without a request VerSe, unless ambiguous.

    Without ``requested``, a label set that more than one scheme explains (e.g. one vertebra
    labelled 20: VerSe L1 or TotalSegmentator v1 L3) is refused rather than guessed.

    Args:
        labels: non-zero label values present.
        requested: ``--label-scheme`` value, None for the default (VerSe).
        centroids: label -> LPS centroid, for the order check (:func:`fitting_schemes`).
        source: the mask's name, for messages.

    Raises:
        LabelSchemeError: one line naming the labels found and the schemes that would fit.

    """
    labels = sorted(int(v) for v in labels if int(v) != 0)
    fits = fitting_schemes(labels, centroids)
    found = f"labels {_ranges(labels)}" if labels else "no label"
    if requested is not None and requested not in SCHEMES:
        raise LabelSchemeError(f"unknown label scheme {requested!r}; expected one of {', '.join(SCHEME_NAMES)}")
    if requested is None and len(fits) > 1:
        hint = " or ".join(f"--label-scheme {f}" for f in fits)
        raise LabelSchemeError(f"{source}: {found} are ambiguous: {', '.join(fits)} all fit (pass {hint})")
    name = requested or "verse"
    if name in fits:
        return SCHEMES[name]
    wanted = SCHEMES[name]
    if all(wanted.defines(v) for v in labels) and any(v in wanted.vertebrae for v in labels) and centroids:
        order = _order_problem(labels, wanted, centroids)
        others = f"; {', '.join(fits)} would fit" if fits else ""
        raise LabelSchemeError(f"{source}: read as {name}, {order}{others}")
    if fits:
        hint = " or ".join(f"--label-scheme {f}" for f in fits)
        which = "fit" if len(fits) > 1 else "fits"
        raise LabelSchemeError(f"{source}: {found} do not fit the {name} numbering; {', '.join(fits)} {which} "
                               f"(pass {hint})")
    raise LabelSchemeError(f"{source}: {found} fit no known vertebra numbering "
                           f"({', '.join(SCHEME_NAMES)}); pass a vertebra label mask")


def to_verse(array: np.ndarray, scheme: LabelScheme) -> np.ndarray:
    """The array relabelled to VerSe numbers (uint8); structures that are not vertebrae become 0."""
    lookup = np.zeros(max(int(array.max()), scheme.n_labels) + 1, np.uint8)
    for value, level in scheme.vertebrae.items():
        lookup[value] = label_from_level(level)
    return lookup[array if array.dtype.kind == "u" else array.astype(np.int64)]


__all__ = ["SCHEMES", "SCHEME_NAMES", "LabelScheme", "LabelSchemeError", "SegmentationError", "choose_scheme",
           "fitting_schemes", "level_of_name", "to_verse"]
