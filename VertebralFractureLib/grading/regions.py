"""Spine regions for the label pre-training and the grade classes of the fracture classifier.

Paper Husseini et al. 2020, §2.2 groups the vertebrae by shape similarity into five regions, T1-T5, T6-T9, T10-T12,
L1-L4 and L5, and pre-trains on them as a five-class metric-learning problem. Transitional T13 joins
T10-T12, L6 joins L5. Cervical vertebrae and the sacrum are outside the classifier's scope
(Husseini et al. 2020, §3, "we exclude the cervical vertebrae").

Grades follow Genant (1993): 0 healthy, 1 mild, 2 moderate, 3 severe. Husseini et al. 2020, §1 excludes grade 1 from
training and evaluation; the product still scores grade-1 vertebrae (their probability falls between
the healthy and grade-2 clusters), see :mod:`VertebralFractureLib.grading.classifier`.
"""

from __future__ import annotations

from typing import Optional

from ..levels import normalise_level

REGION_NAMES = ("T1-T5", "T6-T9", "T10-T12", "L1-L4", "L5")
_REGION_OF = {
    **{f"T{i}": 0 for i in range(1, 6)},
    **{f"T{i}": 1 for i in range(6, 10)},
    **{f"T{i}": 2 for i in range(10, 14)},
    **{f"L{i}": 3 for i in range(1, 5)},
    "L5": 4,
    "L6": 4,
}
#: Grades used for training (Husseini et al. 2020, §1: grade 1 excluded).
TRAIN_GRADES = (0, 2, 3)


def region_index(level: str) -> Optional[int]:
    """Index into :data:`REGION_NAMES` of a level, or None outside T1-L6 (cervical, sacrum)."""
    return _REGION_OF.get(normalise_level(level))


def is_fractured(grade: int) -> bool:
    """The binary target of the fracture stage: Genant grade 2 or 3 (Husseini et al. 2020, §1)."""
    return int(grade) >= 2
