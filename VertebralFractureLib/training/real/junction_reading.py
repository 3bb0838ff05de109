"""Blind readings of the lumbosacral junction on the real sagittal slices, and the rule that applies them.

The levels of the real sagittal slices (``Testing/Data/real/reference/covid_sagittal.json``) are counted up from the
sacrum, and issues 17 and 24 count a slice's levels only where the reference calls them certain. Whether a slice's
junction is an ordinary one (L5 above a sacrum whose first segment is fused into it) or transitional (a lumbarised S1,
a sacralised L5; Castellvi et al. 1984; reported in 4-30 % of people, Konin and Walz 2010)
therefore decides which bodies the real figure counts. Three helpers read the nine slices with a sacrum in view blind
(``Testing/Data/real/blind_junction_readings.json``; protocol in ``Testing/Data/real/reference/README_sagittal.md``,
section "Blind reading of the lumbosacral junction", committed before any reading), and :func:`junction_outcome`
applies the rule fixed there:

1. at least 2 of 3 readers read the junction ``normal`` and match the reference L5: labels and certainty stay;
2. at least 2 of 3 read it ``transitional`` or ``unclear``: ``levels_certain`` becomes false, labels stay as counted;
3. all 3 read it ``normal`` and put L5 on the same other reference body: the labels are recounted from that body;
4. anything else: ``levels_certain`` becomes false.

A reader's L5 *matches* a reference body when its centre lies within :data:`MATCH_MM` of that body's centre and
nearer to it than to any other reference centre (the matching of ``benchmarks/bench_sagittal.py``).

``python -m VertebralFractureLib.training.real.junction_reading [--write]`` prints the outcome per slice and, with
``--write``, writes it into the reference (``levels_certain``, the labels of outcome 3, ``junction_reading``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

#: A reader's body matches a reference body within this distance (mm); ``benchmarks/bench_sagittal.py`` matches so too.
MATCH_MM = 12.0
#: Junction readings the rule accepts.
JUNCTIONS = ("normal", "transitional", "unclear")

REAL = Path(__file__).resolve().parents[3] / "Testing" / "Data" / "real"
REFERENCE = REAL / "reference" / "covid_sagittal.json"
READINGS = REAL / "blind_junction_readings.json"


@dataclass(frozen=True)
class Outcome:
    """What the rule decides for one slice.

    Attributes:
        rule: 1-4, the clause of the rule that applied (module doc).
        levels_certain: whether the slice's levels stay certain.
        l5_index: index (in the reference's ``vertebrae``) of the body named L5 after the reading, or None.
        matches: per reader, the index of the reference body its L5 matches, or None.
        junctions: per reader, its junction reading.
        text: one line saying what was decided and why.
    """

    rule: int
    levels_certain: bool
    l5_index: Optional[int]
    matches: List[Optional[int]]
    junctions: List[str]
    text: str


def matched_body(point: Sequence[float], vertebrae: Sequence[dict], spacing_mm: Sequence[float]) -> Optional[int]:
    """Index of the reference body whose centre is nearest to ``point`` and within :data:`MATCH_MM`, or None."""
    best, best_mm = None, MATCH_MM
    for index, vertebra in enumerate(vertebrae):
        column, row = vertebra["centroid"]
        distance = math.hypot((point[0] - column) * spacing_mm[0], (point[1] - row) * spacing_mm[1])
        if distance < best_mm:
            best, best_mm = index, distance
    return best


def junction_outcome(image: dict, readings: Sequence[dict]) -> Outcome:
    """The rule (module doc) applied to one reference image and the readers' answers for it.

    Args:
        image: one entry of the reference's ``images`` (``vertebrae`` with ``label`` and ``centroid``, ``spacing_mm``).
        readings: one answer per reader: ``{"junction": ..., "last_mobile_body": [column, row]}``.

    Raises:
        ValueError: a junction reading the rule does not know, or a reference without an L5.

    """
    vertebrae = image["vertebrae"]
    labels = [vertebra.get("label") for vertebra in vertebrae]
    if "L5" not in labels:
        raise ValueError(f"{image['image']}: the reference names no L5")
    reference_l5 = labels.index("L5")
    junctions = [str(reading["junction"]) for reading in readings]
    unknown = [j for j in junctions if j not in JUNCTIONS]
    if unknown:
        raise ValueError(f"{image['image']}: junction reading {unknown[0]!r} is not one of {JUNCTIONS}")
    matches = [matched_body(reading["last_mobile_body"], vertebrae, image["spacing_mm"])
               if reading.get("last_mobile_body") is not None else None for reading in readings]
    normal = [j == "normal" for j in junctions]
    agree = sum(1 for n, m in zip(normal, matches) if n and m == reference_l5)
    doubt = sum(1 for j in junctions if j in ("transitional", "unclear"))
    described = ", ".join(f"{j} (L5 on {labels[m] if m is not None else 'no reference body'})"
                          for j, m in zip(junctions, matches))
    if agree >= 2:
        return Outcome(1, True, reference_l5, matches, junctions,
                       f"{agree} of {len(readings)} readers read an ordinary junction with L5 where the reference has "
                       f"it: levels stay certain ({described})")
    if doubt >= 2:
        return Outcome(2, False, reference_l5, matches, junctions,
                       f"{doubt} of {len(readings)} readers read the junction as transitional or unclear: levels "
                       f"uncertain, labels as counted ({described})")
    others = {m for m in matches}
    if all(normal) and len(others) == 1 and None not in others and reference_l5 not in others:
        new_l5 = others.pop()
        return Outcome(3, True, new_l5, matches, junctions,
                       f"all readers read an ordinary junction with L5 on the body labelled {labels[new_l5]}: "
                       f"labels recounted from it ({described})")
    return Outcome(4, False, reference_l5, matches, junctions,
                   f"the readers neither agree with the reference nor doubt the junction together: levels "
                   f"uncertain ({described})")


def recounted(labels: Sequence[Optional[str]], l5_index: int) -> List[str]:
    """Labels counted up and down from the body at ``l5_index`` named L5 (outcome 3).

    Raises:
        UnknownLevelError: the count runs past C1 ... S1.

    """
    from ...levels import shift_level

    return [shift_level("L5", index - l5_index) for index in range(len(labels))]


def load_readings(path: Path = READINGS) -> Dict[str, List[dict]]:
    """``{image path as in the reference: [one answer per reader]}`` from the readings file."""
    data = json.loads(Path(path).read_text())
    by_image: Dict[str, List[dict]] = {}
    for reader in data["readers"]:
        for name, answer in reader["slices"].items():
            by_image.setdefault(data["key"][name], []).append(answer)
    return by_image


def apply(reference: dict, readings: Dict[str, List[dict]]) -> Dict[str, Outcome]:
    """The reference with every read slice's outcome written in (in place); ``{image: outcome}``."""
    outcomes = {}
    for image in reference["images"]:
        if image["image"] not in readings:
            continue
        outcome = junction_outcome(image, readings[image["image"]])
        outcomes[image["image"]] = outcome
        image["levels_certain"] = outcome.levels_certain
        if outcome.rule == 3:
            for vertebra, label in zip(image["vertebrae"],
                                       recounted([v["label"] for v in image["vertebrae"]], outcome.l5_index)):
                vertebra["label"] = label
        image["junction_reading"] = {"rule": outcome.rule, "readers": outcome.junctions, "decision": outcome.text}
    return outcomes


def main(argv: Optional[List[str]] = None) -> int:
    """Print the outcome per slice; ``--write`` writes it into the reference."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=Path, default=READINGS)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--write", action="store_true", help="write the outcome into the reference")
    args = parser.parse_args(argv)
    reference = json.loads(args.reference.read_text())
    outcomes = apply(reference, load_readings(args.readings))
    for name, outcome in outcomes.items():
        print(f"{Path(name).name}: rule {outcome.rule}, levels {'certain' if outcome.levels_certain else 'uncertain'}:"
              f" {outcome.text}")
    if args.write:
        args.reference.write_text(json.dumps(reference, indent=1))
        print(f"wrote {args.reference}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
