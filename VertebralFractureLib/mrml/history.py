"""Undo and redo of committed edits of a shown result (point moves, relabels, additions, deletions, reviews).

Qt-free. Each committed edit pushes a :class:`Snapshot` of the state before it: the result as a JSON-ready
dict (history and review marks included) and the segments of the segmentation (ID -> name and label
value). Undo restores the snapshot and pushes the current state on the redo stack; a new edit clears
the redo stack. Segments removed by a deletion are kept (the ``vtkSegment`` objects themselves) so
undoing the deletion puts the very same segment back. The per-vertebra edit history is part of the
snapshot: an undone edit also disappears from the history, a redone one comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from ..schema import SpineResult

#: At most this many steps are kept (the oldest go first).
MAX_STEPS = 100


@dataclass
class Snapshot:
    """A committed state of one result.

    Attributes:
        result: ``SpineResult.to_dict()`` of the state.
        segments: segment ID -> (name, label value) of the segmentation then (empty without one).
        what: the edit that left this state, for the undo / redo button tooltips.

    """

    result: Dict[str, Any]
    segments: Dict[str, Tuple[str, int]] = field(default_factory=dict)
    what: str = ""


def segment_state(segmentation_node) -> Dict[str, Tuple[str, int]]:
    """Segment ID -> (name, label value) of a segmentation node (empty for None)."""
    if segmentation_node is None:
        return {}
    segmentation = segmentation_node.GetSegmentation()
    state = {}
    for index in range(segmentation.GetNumberOfSegments()):
        segment_id = segmentation.GetNthSegmentID(index)
        segment = segmentation.GetSegment(segment_id)
        state[segment_id] = (segment.GetName(), int(segment.GetLabelValue()))
    return state


@dataclass
class EditHistory:
    """The undo and redo stacks of one :class:`~VertebralFractureLib.mrml.results.ResultNodes`."""

    undo_stack: List[Tuple[Snapshot, str]] = field(default_factory=list)
    redo_stack: List[Tuple[Snapshot, str]] = field(default_factory=list)
    removed_segments: Dict[str, Any] = field(default_factory=dict)

    @property
    def can_undo(self) -> bool:
        """Whether there is an edit to undo."""
        return bool(self.undo_stack)

    @property
    def can_redo(self) -> bool:
        """Whether there is an undone edit to redo."""
        return bool(self.redo_stack)

    def undo_text(self) -> str:
        """What undo would undo ("" when nothing)."""
        return self.undo_stack[-1][1] if self.undo_stack else ""

    def redo_text(self) -> str:
        """What redo would redo ("" when nothing)."""
        return self.redo_stack[-1][1] if self.redo_stack else ""

    def push(self, before: Snapshot, what: str) -> None:
        """Record an edit: ``before`` is the state it changed; the redo stack is dropped."""
        self.undo_stack.append((before, what))
        del self.undo_stack[:-MAX_STEPS]
        self.redo_stack.clear()

    def keep_segment(self, segmentation_node, segment_id: str) -> None:
        """Keep a segment about to be removed, so that undo can put it back."""
        if segmentation_node is not None:
            segment = segmentation_node.GetSegmentation().GetSegment(segment_id)
            if segment is not None:
                kept = type(segment)()
                kept.DeepCopy(segment)  # a shared labelmap layer loses the voxels on removal: keep a copy
                self.removed_segments[segment_id] = kept


def snapshot(result: SpineResult, segmentation_node=None, what: str = "") -> Snapshot:
    """The state of a result and its segmentation now."""
    return Snapshot(result.to_dict(), segment_state(segmentation_node), what)


def restore_segments(segmentation_node, state: Dict[str, Tuple[str, int]], history: EditHistory) -> None:
    """Bring the segmentation's segments to ``state``: removed ones back, extra ones out, names and labels set."""
    if segmentation_node is None:
        return
    segmentation = segmentation_node.GetSegmentation()
    present = set(segment_state(segmentation_node))
    for segment_id in present - set(state):
        history.keep_segment(segmentation_node, segment_id)
        segmentation.RemoveSegment(segment_id)
    for segment_id, (name, label) in state.items():
        segment = segmentation.GetSegment(segment_id)
        if segment is None:
            kept = history.removed_segments.get(segment_id)
            if kept is None:
                continue
            segmentation.AddSegment(kept, segment_id)
            segment = segmentation.GetSegment(segment_id)
        segment.SetName(name)
        segment.SetLabelValue(label)


def result_of(snap: Snapshot) -> SpineResult:
    """The result a snapshot holds (a fresh object)."""
    return SpineResult.from_dict(snap.result)


def undo_step(history: EditHistory, current: Snapshot) -> Optional[Tuple[Snapshot, str]]:
    """Pop the last edit; ``current`` goes on the redo stack. None when there is nothing to undo."""
    if not history.undo_stack:
        return None
    before, what = history.undo_stack.pop()
    history.redo_stack.append((current, what))
    return before, what


def redo_step(history: EditHistory, current: Snapshot) -> Optional[Tuple[Snapshot, str]]:
    """Pop the last undone edit; ``current`` goes back on the undo stack. None when nothing to redo."""
    if not history.redo_stack:
        return None
    after, what = history.redo_stack.pop()
    history.undo_stack.append((current, what))
    return after, what


__all__ = ["EditHistory", "MAX_STEPS", "Snapshot", "redo_step", "restore_segments", "snapshot", "undo_step"]
