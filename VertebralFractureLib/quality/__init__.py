"""Quality gate: image checks that decide whether a proposed vertebra may be Genant-graded."""

from .gate import ASSESSED, NOT_ASSESSED, GateFinding, assess_vertebra, assess_vertebrae

__all__ = ["ASSESSED", "NOT_ASSESSED", "GateFinding", "assess_vertebra", "assess_vertebrae"]
