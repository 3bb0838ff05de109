"""Interactive correction of a shown result: live keypoint drags, relabelling, adding and deleting vertebrae.

:class:`EditingMixin` is part of :class:`VertebralFractureLib.mrml.logic.VertebralFractureLogic`.
Every edit changes ``nodes.result`` (the committed result), refreshes the scene nodes through
``self.refresh`` and leaves an entry in the edit history: per vertebra (``Vertebra.record``) for
moved points, relabels and added vertebrae, and in the result's ``patient["edits"]`` log for
deleted vertebrae (their own history goes with them). No Qt: the live update observes the
keypoints node's ``PointModifiedEvent`` with plain VTK observers.
"""

from __future__ import annotations

import datetime
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..levels import LEVEL_NAMES, TYPICAL_LEVELS, UnknownLevelError, normalise_level
from ..schema import LEVEL_CERTAIN_KEY, SchemaError, SpineResult, Vertebra
from .history import Snapshot, redo_step, restore_segments, result_of, snapshot, undo_step
from .results import ResultNodes

#: Result-level log of edits that no vertebra can hold (deleted vertebrae).
EDIT_LOG = "edits"


def _copy_vertebra(vertebra: Vertebra, label: Optional[str] = None) -> Vertebra:
    return vertebra.copy(label=label or vertebra.label)


def _with_vertebrae(result: SpineResult, vertebrae: List[Vertebra]) -> SpineResult:
    """A result like ``result`` holding other vertebrae (measures recomputed)."""
    return SpineResult(
        vertebrae=vertebrae,
        frame=result.frame,
        input=dict(result.input),
        patient={k: (list(v) if isinstance(v, list) else v) for k, v in result.patient.items()},
        timings_s=dict(result.timings_s),
        models=dict(result.models),
        warnings=list(result.warnings),
        pixel_spacing=result.pixel_spacing,
    )


def relabel_mapping(result: SpineResult, level: str, new_level: str, *, follow: bool = True) -> Dict[str, str]:
    """Old level -> new level of every vertebra when ``level`` becomes ``new_level``.

    With ``follow`` every level shifts by the same number of positions along the typical column
    (C1 ... S1), or along the one with T13 and L6 when the result or the new level uses them;
    gaps between vertebrae are kept. Without it only ``level`` changes.

    Raises:
        KeyError: if ``level`` is not in the result.
        ValueError: if a level would leave C1 ... S1.

    """
    old, new = result.vertebra(level).label, normalise_level(new_level)
    if not follow:
        return {v.label: (new if v.label == old else v.label) for v in result.vertebrae}
    transitional = any(name in ("T13", "L6") for name in [*result.labels, new])
    sequence = LEVEL_NAMES if transitional else TYPICAL_LEVELS
    offset = sequence.index(new) - sequence.index(old)
    mapping = {}
    for vertebra in result.vertebrae:
        position = sequence.index(vertebra.label) + offset
        if not 0 <= position < len(sequence):
            raise ValueError(f"relabelling {old} as {new} would move {vertebra.label} outside C1 ... S1")
        mapping[vertebra.label] = sequence[position]
    return mapping


def relabelled(result: SpineResult, level: str, new_level: str, *, follow: bool = True) -> SpineResult:
    """The result with ``level`` renamed ``new_level`` (see :func:`relabel_mapping`); history recorded.

    Raises:
        KeyError: if ``level`` is not in the result.
        ValueError: if a level would leave C1 ... S1 or two vertebrae would share a level.

    """
    old, new = result.vertebra(level).label, normalise_level(new_level)
    mapping = relabel_mapping(result, old, new, follow=follow)
    how = "the column follows" if follow else "this vertebra only"
    vertebrae = []
    for vertebra in result.vertebrae:
        copy = _copy_vertebra(vertebra, mapping[vertebra.label])
        if copy.label != vertebra.label:
            copy.record("relabel", f"{vertebra.label} -> {copy.label} ({old} set to {new}, {how})")
        vertebrae.append(copy)
    try:
        out = _with_vertebrae(result, vertebrae)
    except SchemaError as error:
        raise ValueError(f"cannot relabel {old} as {new}: {error}") from None
    if follow:
        anchored_by_hand(out, f"{old} set to {new} by hand, the column counted from it")
    elif LEVEL_CERTAIN_KEY in out.vertebra(new).extra:
        out.vertebra(new).extra[LEVEL_CERTAIN_KEY] = True
    return out


#: ``patient["levels"]["anchor"]`` once a user has set the levels (the column follows the level set by hand).
USER_ANCHOR = "user"


def anchored_by_hand(result: SpineResult, how: str) -> None:
    """Record that the user set the column's levels: they are anchored now (the issue's one-click re-anchoring).

    The analysis's "levels uncertain" (no 12th rib, iliac crests or sacrum found) no longer holds once a reader has
    named a level and the column followed: ``patient["levels"]`` becomes ``{"anchor": "user", "certain": True, ...}``
    (the analysis's own account kept under ``"analysis"``), every vertebra's ``level_certain`` flag is set, and
    the "levels uncertain" warnings are dropped, so the overview and the report exported after it stop saying so.
    """
    before = dict(result.patient.get("levels") or {})
    before.pop("analysis", None)
    result.patient["levels"] = {"anchor": USER_ANCHOR, "certain": True, "method": how, "analysis": before}
    for vertebra in result.vertebrae:
        if LEVEL_CERTAIN_KEY in vertebra.extra:
            vertebra.extra[LEVEL_CERTAIN_KEY] = True
    result.warnings = [w for w in result.warnings if "levels uncertain" not in w]


class EditingMixin:
    """Edits of a shown result (mixed into the module logic; needs ``refresh`` and ``scene``)."""

    #: Called with the ResultNodes after every folded-back edit (the widget refreshes its summary).
    on_result_changed: Optional[Callable[[ResultNodes], None]] = None
    #: Runs a callable after the current VTK event has returned (the widget: ``qt.QTimer.singleShot(0, f)``);
    #: None: it waits in :attr:`deferred` until :meth:`run_deferred`.
    defer: Optional[Callable[[Callable[[], None]], None]] = None

    @property
    def deferred(self) -> List[Callable[[], None]]:
        """Callables waiting for :meth:`run_deferred` (when no :attr:`defer` is set)."""
        if not hasattr(self, "_deferred"):
            self._deferred: List[Callable[[], None]] = []
        return self._deferred

    def later(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the current event is over (see :attr:`defer`)."""
        if self.defer is not None:
            self.defer(action)
        else:
            self.deferred.append(action)

    def run_deferred(self) -> None:
        """Run the callables :meth:`later` kept (plain Python has no event loop to run them)."""
        while self.deferred:
            self.deferred.pop(0)()

    # ------------------------------------------------------------------ live keypoint edits
    def watch(self, nodes: ResultNodes) -> None:
        """Recompute measures, table row, colours and summary whenever a keypoint moves.

        During a drag (between the point's start and end interaction events) the table follows the
        moving point; the edit is committed, with one history entry, when the drag ends. A point
        moved programmatically (``SetNthControlPointPosition``) is committed at once. Moved centroids
        are folded back too (they change no measure).
        """
        import vtk
        from vtkmodules.util.misc import calldata_type

        self.unwatch(nodes)
        node = nodes.keypoints
        if node is None:
            return
        previous = self.watched.get(node)
        if previous is not None and previous is not nodes:  # one follower per keypoints node
            self.unwatch(previous)
        self.watched[node] = nodes
        state = {"dragging": False}

        @calldata_type(vtk.VTK_INT)
        def moved(caller, event, index=None):
            if not nodes.busy:
                self.fold_edits(nodes, commit=not state["dragging"])

        def started(caller, event, *args):
            state["dragging"] = True

        def ended(caller, event, *args):
            state["dragging"] = False
            if not nodes.busy:
                self.fold_edits(nodes, commit=True)

        @calldata_type(vtk.VTK_INT)
        def centroid_moved(caller, event, index=None):
            if not nodes.busy and not state["dragging"]:
                self.fold_edits(nodes, commit=True)  # centroids carry no measure: keep the stored result current

        markups = type(node)
        nodes.observers = [
            (node, node.AddObserver(markups.PointModifiedEvent, moved)),
            (node, node.AddObserver(markups.PointStartInteractionEvent, started)),
            (node, node.AddObserver(markups.PointEndInteractionEvent, ended)),
        ]
        if nodes.centroids is not None:
            nodes.observers.append(
                (nodes.centroids, nodes.centroids.AddObserver(markups.PointModifiedEvent, centroid_moved))
            )

    def unwatch(self, nodes: ResultNodes) -> None:
        """Stop following the keypoints node."""
        for node, tag in nodes.observers:
            node.RemoveObserver(tag)
        nodes.observers = []
        if nodes.keypoints is not None and self.watched.get(nodes.keypoints) is nodes:
            del self.watched[nodes.keypoints]

    @property
    def watched(self) -> Dict[Any, ResultNodes]:
        """Keypoints node -> the ResultNodes following it."""
        if not hasattr(self, "_watched"):
            self._watched: Dict[Any, ResultNodes] = {}
        return self._watched

    def fold_edits(self, nodes: ResultNodes, *, commit: bool = True) -> Optional[SpineResult]:
        """Fold the keypoints node back into the result; problems go to ``nodes.last_error``, not up.

        Returns:
            The recomputed result, or None when the points no longer describe the vertebrae.

        """
        from .markups import result_from_markups_nodes

        try:
            result = result_from_markups_nodes(nodes.keypoints, nodes.centroids, template=nodes.result)
        except (ValueError, KeyError) as error:
            nodes.last_error = str(error)
            return None
        result.warnings = list(nodes.result.warnings)
        nodes.last_error = ""
        if commit:
            before = snapshot(nodes.result, nodes.segmentation, "move keypoints")
            if before.result["vertebrae"] != result.to_dict()["vertebrae"]:
                nodes.history.push(before, "move keypoints")
            nodes.result, nodes.live = result, None
        else:
            nodes.live = result
        self.refresh(nodes, points=False, store=commit)
        if self.on_result_changed is not None:
            self.on_result_changed(nodes)
        return result

    # ------------------------------------------------------------------ column edits
    def _replace(
        self, nodes: ResultNodes, result: SpineResult, what: str = "edit", before: Optional[Snapshot] = None
    ) -> SpineResult:
        nodes.history.push(before or snapshot(nodes.result, nodes.segmentation, what), what)
        nodes.result, nodes.live = result, None
        self.refresh(nodes, points=True, store=True)
        if self.on_result_changed is not None:
            self.on_result_changed(nodes)
        return result

    # ------------------------------------------------------------------ undo / redo
    def _restore(self, nodes: ResultNodes, state: Snapshot) -> SpineResult:
        restore_segments(nodes.segmentation, state.segments, nodes.history)
        result = result_of(state)
        result.warnings = list(nodes.result.warnings)
        nodes.result, nodes.live, nodes.last_error = result, None, ""
        self.refresh(nodes, points=True, store=True)
        if self.on_result_changed is not None:
            self.on_result_changed(nodes)
        return result

    def undo(self, nodes: ResultNodes) -> str:
        """Undo the last committed edit (point move, relabel, addition, deletion, review mark).

        Returns:
            What was undone (``"relabel T12 as L1"``), or "" when there was nothing to undo.

        """
        step = undo_step(nodes.history, snapshot(nodes.result, nodes.segmentation))
        if step is None:
            return ""
        self._restore(nodes, step[0])
        return step[1]

    def redo(self, nodes: ResultNodes) -> str:
        """Redo the last undone edit; returns what was redone, or "" when there was nothing to redo."""
        step = redo_step(nodes.history, snapshot(nodes.result, nodes.segmentation))
        if step is None:
            return ""
        self._restore(nodes, step[0])
        return step[1]

    def relabel(self, nodes: ResultNodes, level: str, new_level: str, *, follow: bool = True) -> SpineResult:
        """Say "this vertebra is ``new_level``": every other level follows (unless ``follow`` is False).

        Segments are renamed (and get the new VerSe label values); every renamed vertebra records a
        ``relabel`` edit.

        Raises:
            KeyError / ValueError: see :func:`relabelled`; nothing changes then.

        """
        renames = relabel_mapping(nodes.result, level, new_level, follow=follow)
        result = relabelled(nodes.result, level, new_level, follow=follow)
        what = f"relabel {nodes.result.vertebra(level).label} as {normalise_level(new_level)}"
        before = snapshot(nodes.result, nodes.segmentation, what)
        if nodes.segmentation is not None:
            from ..levels import label_from_level

            segmentation = nodes.segmentation.GetSegmentation()
            segments = [segmentation.GetNthSegment(i) for i in range(segmentation.GetNumberOfSegments())]
            for segment in segments:
                new_name = renames.get(segment.GetName())
                if new_name:
                    segment.SetName(new_name)
                    segment.SetLabelValue(label_from_level(new_name))
        return self._replace(nodes, result, what, before)

    def add_vertebra(
        self,
        nodes: ResultNodes,
        level: str,
        keypoints_lps: Sequence[Sequence[float]],
        centroid_lps: Optional[Sequence[float]] = None,
    ) -> Vertebra:
        """Add a vertebra from six placed keypoints (LPS, ``genant.KEYPOINT_NAMES`` order).

        For a radiograph result (frame pixel) the points may also be six ``[column, row]`` pixels;
        LPS points are mapped to pixels through the radiograph (the keypoints node's mapping).

        Raises:
            ValueError: for a level already in the result or not six 3D (or, for a radiograph, 2D) points.

        """
        level = normalise_level(level)
        if level in nodes.result.labels:
            raise ValueError(f"{level} is already in the result; delete it or relabel first")
        points = np.asarray(keypoints_lps, dtype=float)
        centroid = None if centroid_lps is None else np.asarray(centroid_lps, dtype=float)
        if nodes.result.frame == "pixel" and points.shape == (6, 3):
            points, centroid = self._to_pixels(nodes, points, centroid)
        shape = (6, 2) if nodes.result.frame == "pixel" else (6, 3)
        if points.shape != shape:
            raise ValueError(f"a vertebra needs six {shape[1]}D keypoints, got shape {points.shape}")
        centroid = points.mean(axis=0) if centroid is None else centroid
        vertebra = Vertebra(level, centroid, points, source="annotator")
        vertebra.record("add vertebra", "six keypoints placed")
        vertebrae = [_copy_vertebra(v) for v in nodes.result.vertebrae] + [vertebra]
        self._replace(nodes, _with_vertebrae(nodes.result, vertebrae), f"add {level}")
        return nodes.result.vertebra(level)

    @staticmethod
    def _to_pixels(nodes: ResultNodes, points_lps: np.ndarray, centroid_lps: Optional[np.ndarray]):
        """LPS points placed on a radiograph -> ``[column, row]`` pixels (and the centroid, if any)."""
        from ..geometry import lps_to_ras
        from . import radiographs

        matrix = radiographs.node_pixel_to_ras(nodes.keypoints)
        if matrix is None:
            matrix = radiographs.default_pixel_to_ras(nodes.result.pixel_spacing)
        pixels = radiographs.ras_to_pixels(lps_to_ras(points_lps), matrix)
        if centroid_lps is not None:
            centroid_lps = radiographs.ras_to_pixels(lps_to_ras(centroid_lps), matrix)[0]
        return pixels, centroid_lps

    def add_vertebra_from_markups(self, nodes: ResultNodes, level: str, placed) -> Vertebra:
        """Add a vertebra from a markups node holding the six placed points (in keypoint order).

        Raises:
            ValueError: if the node does not hold exactly six points.

        """
        from .markups import point_list_from_node

        points = point_list_from_node(placed).positions
        if len(points) != 6:
            order = "anterior, middle, posterior; superior then inferior"
            raise ValueError(f"place six keypoints ({order}), got {len(points)}")
        return self.add_vertebra(nodes, level, points)

    def begin_placing(
        self, nodes: ResultNodes, level: str, on_done: Optional[Callable[[Optional[Vertebra], str], None]] = None
    ):
        """Start placing the six keypoints of a new vertebra in the views (place mode, persistent).

        Each new point is labelled with the keypoint it should be (``"L3 anterior superior"`` first);
        after the sixth the vertebra is added (:meth:`add_vertebra_from_markups`), place mode left,
        ``on_done(vertebra, error)`` called (``vertebra`` None on error), and the temporary node removed
        once its own ``PointPositionDefinedEvent`` has returned (:meth:`later`: never inside the callback
        of the node being removed).

        Returns:
            The temporary markups node the points go to.

        Raises:
            ValueError: for a level already in the result.

        """
        from ..genant import KEYPOINT_NAMES
        from .markups import ROLE_ATTRIBUTE

        level = normalise_level(level)
        if level in nodes.result.labels:
            raise ValueError(f"{level} is already in the result; delete it or relabel first")
        scene = self.scene
        placed = scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", scene.GenerateUniqueName(f"{level} new"))
        placed.SetAttribute(ROLE_ATTRIBUTE, "placing")
        placed.SetMaximumNumberOfControlPoints(6)
        placed.CreateDefaultDisplayNodes()
        interaction = scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
        selection = scene.GetNodeByID("vtkMRMLSelectionNodeSingleton")
        if selection is not None:
            selection.SetReferenceActivePlaceNodeClassName("vtkMRMLMarkupsFiducialNode")
            selection.SetActivePlaceNodeID(placed.GetID())
        if interaction is not None:
            interaction.SetPlaceModePersistence(1)
            interaction.SetCurrentInteractionMode(interaction.Place)

        def defined(caller, event, *args):
            count = placed.GetNumberOfDefinedControlPoints()
            for index in range(min(count, 6)):
                placed.SetNthControlPointLabel(index, f"{level} {KEYPOINT_NAMES[index]}")
            if count < 6:
                return
            placed.RemoveObserver(tag)
            vertebra, error = None, ""
            try:
                vertebra = self.add_vertebra_from_markups(nodes, level, placed)
            except ValueError as problem:
                error = str(problem)
            self.end_placing(None)
            if on_done is not None:
                on_done(vertebra, error)
            self.later(lambda: self.end_placing(placed))

        tag = placed.AddObserver(placed.PointPositionDefinedEvent, defined)
        return placed

    def end_placing(self, placed) -> None:
        """Leave place mode and remove the temporary node of :meth:`begin_placing`."""
        interaction = self.scene.GetNodeByID("vtkMRMLInteractionNodeSingleton")
        if interaction is not None:
            interaction.SetPlaceModePersistence(0)
            interaction.SetCurrentInteractionMode(interaction.ViewTransform)
        if placed is not None and placed.GetScene() is not None:
            self.scene.RemoveNode(placed)

    def delete_vertebra(self, nodes: ResultNodes, level: str) -> SpineResult:
        """Remove a vertebra (its points, row and segment); the deletion is logged in ``patient["edits"]``.

        Raises:
            KeyError: if the level is not in the result.

        """
        gone = nodes.result.vertebra(level)
        vertebrae = [_copy_vertebra(v) for v in nodes.result.vertebrae if v.label != gone.label]
        result = _with_vertebrae(nodes.result, vertebrae)
        entry = {
            "action": "delete vertebra",
            "detail": f"{gone.label} (centroid {np.round(gone.centroid, 1).tolist()}, source {gone.source})",
            "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        result.patient[EDIT_LOG] = [*result.patient.get(EDIT_LOG, []), entry]
        what = f"delete {gone.label}"
        before = snapshot(nodes.result, nodes.segmentation, what)
        if nodes.segmentation is not None:
            segmentation = nodes.segmentation.GetSegmentation()
            segment_id = segmentation.GetSegmentIdBySegmentName(gone.label)
            if segment_id:
                nodes.history.keep_segment(nodes.segmentation, segment_id)
                segmentation.RemoveSegment(segment_id)
        return self._replace(nodes, result, what, before)


def level_choices() -> List[str]:
    """Levels a user can pick (C1 ... S1 with T13 and L6)."""
    return list(LEVEL_NAMES)


__all__ = ["EDIT_LOG", "EditingMixin", "UnknownLevelError", "level_choices", "relabel_mapping", "relabelled"]
