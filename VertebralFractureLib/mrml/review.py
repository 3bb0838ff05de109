"""Review state of a shown result: the queue of vertebrae ordered by need, stepping, accept / reject.

Qt-free. The queue puts first what most needs a reader's look (:data:`NEEDS`, most urgent first):

1. ``not assessed``: the quality gate kept the vertebra from being graded (its reason is shown);
2. ``level uncertain``: the level labelling is unsure (``extra["label_confidence"]``, else the detection
   ``confidence`` of a model vertebra, below :data:`LEVEL_CONFIDENCE_MIN`), or the levels are not anchored (the
   analysis found no 12th rib, iliac crests or sacrum: ``patient["levels"]["certain"]`` false, or the vertebra's own
   ``extra["level_certain"]`` false); one relabel with the column following anchors them
   (:func:`.editing.anchored_by_hand`);
3. ``review``: the verdict asks for a look (:mod:`VertebralFractureLib.verdict`: Genant grade 1,
   heights normal while a validated score says fracture, or a height loss the gate withheld that a validated score
   agrees with);
4. ``fracture``: Genant grade 2 or 3, to be confirmed;
5. ``normal``: the rest.

Within one need the vertebrae keep the column order (cranial first, as the result lists them).
A decision is stored per vertebra in ``Vertebra.extra["review"]`` as
``{"decision": "accepted" | "rejected", "by": "<reader>", "at": "<UTC ISO time>"}``; the schema keeps
``extra`` through the results JSON and the annotation JSON, so the mark travels with the exports and
the ``.mrb`` (the result node holds the annotation JSON); ``genant.csv`` and the Genant table node show
it in their ``review``, ``reviewed_by`` and ``reviewed_at`` columns. Every decision also leaves a ``review``
entry in the vertebra's edit history.
"""

from __future__ import annotations

import datetime
import getpass
from dataclasses import dataclass
from typing import List, Optional, Sequence

from ..io.csv_tables import REVIEW_KEY  # ``Vertebra.extra`` key of the review mark (also a genant.csv column)
from ..schema import LEVEL_CERTAIN_KEY, SpineResult, Vertebra

ACCEPTED = "accepted"
REJECTED = "rejected"
DECISIONS = (ACCEPTED, REJECTED)
NOT_ASSESSED = "not assessed"
LEVEL_UNCERTAIN = "level uncertain"
REVIEW = "review"
FRACTURE = "fracture"
NORMAL = "normal"
#: Needs, most urgent first: the queue's order.
NEEDS = (NOT_ASSESSED, LEVEL_UNCERTAIN, REVIEW, FRACTURE, NORMAL)
#: Below this level-labelling confidence (0-1) a vertebra's level counts as uncertain.
LEVEL_CONFIDENCE_MIN = 0.5


@dataclass(frozen=True)
class QueueItem:
    """One vertebra of the review queue.

    Attributes:
        label: the level (``"L1"``).
        need: one of :data:`NEEDS`.
        reason: why it is in that place, one line (the status reason, the verdict's reason...).
        decision: ``"accepted"``, ``"rejected"`` or ``""`` (not reviewed yet).
        reviewer: who decided ("" when nobody did).
        reviewed_at: when (UTC ISO time, "" when not reviewed).

    """

    label: str
    need: str
    reason: str
    decision: str = ""
    reviewer: str = ""
    reviewed_at: str = ""

    @property
    def reviewed(self) -> bool:
        """Whether a reader accepted or rejected this vertebra."""
        return bool(self.decision)


def level_confidence(vertebra: Vertebra) -> Optional[float]:
    """The labelling confidence of a vertebra's level (None for a hand-placed one without scores)."""
    value = vertebra.extra.get("label_confidence")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if vertebra.source == "model" and vertebra.confidence is not None:
        return float(vertebra.confidence)
    return None


#: Reason shown for a vertebra whose level the analysis could not anchor.
NOT_ANCHORED_REASON = "levels not anchored (no 12th rib, iliac crests or sacrum found): set one level by hand"


def need_of(vertebra: Vertebra, levels_certain: bool = True) -> tuple:
    """``(need, reason)`` of one vertebra (see the module docstring for the order).

    Args:
        vertebra: the vertebra.
        levels_certain: whether the result's levels are anchored (``patient["levels"]["certain"]``).
    """
    verdict, reason = vertebra.verdict()
    if verdict == NOT_ASSESSED:
        return NOT_ASSESSED, reason
    if not levels_certain or vertebra.extra.get(LEVEL_CERTAIN_KEY, True) is False:
        return LEVEL_UNCERTAIN, NOT_ANCHORED_REASON
    confidence = level_confidence(vertebra)
    if confidence is not None and confidence < LEVEL_CONFIDENCE_MIN:
        return LEVEL_UNCERTAIN, f"level labelling confidence {confidence:.2f} < {LEVEL_CONFIDENCE_MIN:g}"
    if verdict == REVIEW:
        return REVIEW, reason
    if verdict == FRACTURE:
        return FRACTURE, reason
    return NORMAL, reason


def review_mark(vertebra: Vertebra) -> dict:
    """The stored review mark of a vertebra (``{}`` when not reviewed)."""
    mark = vertebra.extra.get(REVIEW_KEY)
    return dict(mark) if isinstance(mark, dict) else {}


def review_queue(result: SpineResult) -> List[QueueItem]:
    """The vertebrae of a result ordered by need (stable: column order within one need)."""
    items = []
    certain = bool((result.patient.get("levels") or {}).get("certain", True))
    for vertebra in result.vertebrae:
        need, reason = need_of(vertebra, certain)
        mark = review_mark(vertebra)
        items.append(
            QueueItem(
                vertebra.label,
                need,
                reason,
                str(mark.get("decision", "")),
                str(mark.get("by", "")),
                str(mark.get("at", "")),
            )
        )
    order = {need: rank for rank, need in enumerate(NEEDS)}
    return sorted(items, key=lambda item: order[item.need])


def step(queue: Sequence[QueueItem], current: Optional[str], offset: int, *, unreviewed_only: bool = False):
    """The label ``offset`` places after ``current`` in the queue (negative: before), or None.

    With no current label (or one no longer in the queue) the first item is returned for a
    forward step and the last for a backward one. Stepping past either end stays at that end
    (the key does nothing there). With ``unreviewed_only`` reviewed vertebrae are skipped; None
    when none is left in that direction.
    """
    labels = [item.label for item in queue]
    if not labels or offset == 0:
        return current if current in labels else (labels[0] if labels else None)
    pool = [item.label for item in queue if not (unreviewed_only and item.reviewed)]
    if current not in labels:
        if not pool:
            return None
        return pool[0] if offset > 0 else pool[-1]
    position = labels.index(current)
    direction = 1 if offset > 0 else -1
    remaining = abs(offset)
    index, landed = position, current
    while remaining:
        index += direction
        if not 0 <= index < len(labels):
            return None if unreviewed_only else landed
        if labels[index] in pool:
            landed, remaining = labels[index], remaining - 1
    return landed


def now_utc() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def default_reviewer() -> str:
    """The login name of the user (``"unknown"`` when the system does not say)."""
    try:
        return getpass.getuser() or "unknown"
    except (KeyError, OSError):  # no user database entry, no environment variable
        return "unknown"


def with_review(
    result: SpineResult, level: str, decision: Optional[str], reviewer: str, when: Optional[str] = None
) -> SpineResult:
    """A copy of ``result`` where ``level`` carries a review decision (None clears it); history recorded.

    Raises:
        KeyError: if the level is not in the result.
        ValueError: for an unknown decision or an empty reviewer name.

    """
    from .editing import _with_vertebrae

    if decision is not None and decision not in DECISIONS:
        raise ValueError(f"a review decision is one of {', '.join(DECISIONS)}, got {decision!r}")
    if decision is not None and not reviewer.strip():
        raise ValueError("say who reviewed: the reviewer name is empty")
    label = result.vertebra(level).label
    vertebrae = []
    for vertebra in result.vertebrae:
        copy = vertebra.copy()
        if copy.label == label:
            if decision is None:
                copy.extra.pop(REVIEW_KEY, None)
                copy.record("review", "review mark cleared")
            else:
                mark = {"decision": decision, "by": reviewer.strip(), "at": when or now_utc()}
                copy.extra[REVIEW_KEY] = mark
                copy.record("review", f"{decision} by {mark['by']}", user=mark["by"])
        vertebrae.append(copy)
    return _with_vertebrae(result, vertebrae)


#: The review keys: (key sequence as Qt writes it, action, what it does). The widget binds them to the
#: module panel (``qt.QShortcut``, context: the panel and its children) and calls :meth:`ReviewMixin.key`.
SHORTCUTS = (
    ("N", "next", "next vertebra in the queue (centred in the three views)"),
    ("P", "previous", "previous vertebra in the queue"),
    ("Shift+N", "next_unreviewed", "next vertebra nobody has accepted or rejected yet"),
    ("A", "accept", "accept the current vertebra (reviewed by you, now)"),
    ("X", "reject", "reject the current vertebra"),
    ("Ctrl+Z", "undo", "undo the last edit (point move, relabel, addition, deletion, review mark)"),
    ("Ctrl+Y", "redo", "redo the last undone edit"),
    ("Ctrl+Shift+Z", "redo", "redo the last undone edit"),
)
ACTIONS = tuple(dict.fromkeys(action for _, action, _ in SHORTCUTS))


class ReviewMixin:
    """The review queue of a shown result (mixed into the module logic; needs ``_replace``, ``jump_to_row``)."""

    #: Who reviews (the widget sets the name typed in the panel); default: the login name.
    reviewer: str = ""

    def review_queue(self, nodes) -> List[QueueItem]:
        """The vertebrae of the result ordered by need (:func:`review_queue`)."""
        return review_queue(nodes.result)

    def focus(self, nodes, level: str) -> int:
        """Make ``level`` the current vertebra and centre the three slice views on it.

        The centroid lies on the vertebra's mid-sagittal plane, so the sagittal view shows that plane.

        Returns:
            Its row in the Genant table.

        Raises:
            KeyError: if the level is not in the result.

        """
        label = nodes.result.vertebra(level).label
        row = nodes.result.labels.index(label)
        nodes.current = label
        self.jump_to_row(nodes, row)
        return row

    def step_review(self, nodes, offset: int = 1, *, unreviewed_only: bool = False) -> Optional[str]:
        """Go ``offset`` places along the queue from the current vertebra and focus it (see :func:`step`).

        Returns:
            The new current level, or None when there is none in that direction (nothing changes).

        """
        label = step(self.review_queue(nodes), nodes.current or None, offset, unreviewed_only=unreviewed_only)
        if label is not None:
            self.focus(nodes, label)
        return label

    def set_review(self, nodes, level: Optional[str], decision: Optional[str], reviewer: Optional[str] = None):
        """Accept, reject (or clear, with ``decision`` None) a vertebra: saved with the result, undoable.

        Args:
            nodes: the result's nodes.
            level: the vertebra (default: the current one).
            decision: ``"accepted"``, ``"rejected"`` or None.
            reviewer: who (default: :attr:`reviewer`, else the login name).

        Raises:
            ValueError: with no vertebra given or current, an unknown decision or an empty reviewer.
            KeyError: for a level not in the result.

        """
        level = level or nodes.current
        if not level:
            raise ValueError("no vertebra selected: step to one in the queue first")
        who = reviewer if reviewer is not None else (self.reviewer or default_reviewer())
        label = nodes.result.vertebra(level).label
        result = with_review(nodes.result, label, decision, who)
        self._replace(nodes, result, f"{decision or 'clear review of'} {label}")
        return result.vertebra(label)

    def accept(self, nodes, level: Optional[str] = None, reviewer: Optional[str] = None):
        """Accept a vertebra (default: the current one); see :meth:`set_review`."""
        return self.set_review(nodes, level, ACCEPTED, reviewer)

    def reject(self, nodes, level: Optional[str] = None, reviewer: Optional[str] = None):
        """Reject a vertebra (default: the current one); see :meth:`set_review`."""
        return self.set_review(nodes, level, REJECTED, reviewer)

    def key(self, nodes, action: str) -> str:
        """Do what a review key does (:data:`SHORTCUTS`); returns the line for the status bar.

        Raises:
            ValueError: for an unknown action.

        """
        if action not in ACTIONS:
            raise ValueError(f"unknown review action {action!r}; expected one of {', '.join(ACTIONS)}")
        if nodes is None:
            return "No result: run the analysis or load results first."
        if action in ("next", "previous", "next_unreviewed"):
            offset = -1 if action == "previous" else 1
            label = self.step_review(nodes, offset, unreviewed_only=action == "next_unreviewed")
            if label is None:
                return "Every vertebra has been reviewed." if action == "next_unreviewed" else "End of the queue."
            item = next(i for i in self.review_queue(nodes) if i.label == label)
            done = f"; {item.decision} by {item.reviewer}" if item.reviewed else ""
            return f"{label}: {item.need} ({item.reason}){done}"
        if action in ("accept", "reject"):
            if not nodes.current:
                return "Step to a vertebra first (N)."
            vertebra = self.accept(nodes) if action == "accept" else self.reject(nodes)
            mark = review_mark(vertebra)
            return f"{vertebra.label} {mark['decision']} by {mark['by']} at {mark['at']}."
        done = self.undo(nodes) if action == "undo" else self.redo(nodes)
        return f"{'Undone' if action == 'undo' else 'Redone'}: {done}." if done else f"Nothing to {action}."


__all__ = [
    "ACTIONS",
    "ReviewMixin",
    "SHORTCUTS",

    "ACCEPTED",
    "DECISIONS",
    "LEVEL_CONFIDENCE_MIN",
    "NEEDS",
    "QueueItem",
    "REJECTED",
    "REVIEW_KEY",
    "default_reviewer",
    "need_of",
    "review_mark",
    "review_queue",
    "step",
    "with_review",
]
