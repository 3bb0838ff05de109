"""The module panel driven like a reader, for the Slicer self-test (runs only in the Slicer application).

No Qt import: :func:`widget_workflow` only uses the module widget's own controls (``widget.ui``: Apply,
the review buttons, the level combo box, Relabel, Undo, Export) and the application's event loop
(``slicer.app.processEvents``). The checks are those of :func:`.scenarios.sample_ct_analysis`, which
runs the same reader's pass through the logic in plain pytest; here it goes through the panel:
Apply starts the real background analysis of the bundled sample CT with the shipped weights, the
panel's poll timer shows it, and the assertions read the scene the panel made.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

from .scenarios import (
    SAMPLE_LEVELS,
    SELFTEST_READER,
    _equal,
    _l3_height,
    _move,
    _segment_names,
    _table_marks,
    check_sample_analysis,
    sample_volume,
)

#: The longest the background analysis of the sample CT may take (s) before the test cancels it.
ANALYSIS_TIMEOUT_S = 900.0


def _wait(condition: Callable[[], bool], timeout: float, what: str) -> None:
    import slicer

    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not done after {timeout:.0f} s")
        slicer.app.processEvents()
        time.sleep(0.05)


def widget_workflow(widget, scene, folder: Path, delay: Optional[Callable[[str], None]] = None) -> None:
    """Apply on the sample CT, a drag, a relabel (undone), N and accept, and an export, all through the panel.

    Args:
        widget: the module's ``VertebralFractureWidget`` (set up, entered).
        scene: ``slicer.mrmlScene``.
        folder: where the export goes.
        delay: shows a message to the person watching (``ScriptedLoadableModuleTest.delayDisplay``).

    Raises:
        AssertionError: naming the step that went wrong.

    """
    say = delay or (lambda message: None)
    ui = widget.ui
    volume = sample_volume(scene)
    widget._parameterNode.inputVolume = volume
    widget._parameterNode.device = "cpu"
    _equal(ui.applyButton.enabled, True, "Apply enabled with the sample CT selected")
    say("Apply: the real analysis of the sample CT, in the background")
    ui.applyButton.click()
    _equal(widget.job is not None and ui.cancelButton.enabled, True, "a background run started, Cancel enabled")
    try:
        _wait(lambda: widget.job is None, ANALYSIS_TIMEOUT_S, "the background analysis")
    finally:
        if widget.job is not None:
            ui.cancelButton.click()
    nodes = widget.nodes
    _equal(nodes is not None and nodes.volume is volume, True, f"results shown ({ui.statusLabel.text})")
    check_sample_analysis(widget.logic.core, nodes)
    _equal(ui.reviewQueueList.count, len(SAMPLE_LEVELS), "rows of the review queue")

    say("Drag: L3 anterior superior 4 mm down")
    before = _l3_height(nodes)
    _move(nodes.keypoints, "L3:0", -4.0)  # what a drag in a view does to the markups node
    ui.updateMeasuresButton.click()
    after = _l3_height(nodes)
    _equal(3.0 < before - after <= 4.0 + 1e-6, True, f"L3 anterior height {before:.2f} -> {after:.2f} mm")

    say("N, then relabel T12 as T11 (whole column), then Undo")
    ui.nextButton.click()
    _equal(nodes.current, "T12", "N goes to the first vertebra of the queue")
    _equal(ui.resultsTableView.currentIndex().row(), 0, "its table row selected")
    ui.levelComboBox.currentText = "T11"
    ui.followColumnCheckBox.checked = True
    ui.relabelButton.click()
    _equal(nodes.result.labels, ["T11", "T12", "L1", "L2", "L3", "L4"], "levels after Relabel")
    _equal(ui.undoButton.enabled, True, "Undo enabled after the relabel")
    ui.undoButton.click()
    _equal((nodes.result.labels, _segment_names(nodes)), (SAMPLE_LEVELS, sorted(SAMPLE_LEVELS)), "after Undo")

    say("Accept T12")
    ui.reviewerLineEdit.text = SELFTEST_READER
    if nodes.current != "T12":
        ui.nextButton.click()
    ui.acceptButton.click()
    mark = nodes.result.vertebra("T12").extra.get("review", {})
    _equal((mark.get("decision"), mark.get("by")), ("accepted", SELFTEST_READER), "T12 review mark")
    _equal(_table_marks(nodes.table), {"T12": ("accepted", SELFTEST_READER, mark["at"])}, "Review columns")

    say("Export the Genant table")
    from ..io.csv_tables import read_genant_csv

    path = Path(folder) / "selftest_widget_genant.csv"
    path.unlink(missing_ok=True)
    widget._parameterNode.exportFormat = "genant_csv"
    widget.askExportPath = lambda file_format: str(path)  # the file dialog, answered
    ui.exportButton.click()
    rows = read_genant_csv(path)
    _equal([r["level"] for r in rows], SAMPLE_LEVELS, "levels in the exported genant.csv")
    _equal((rows[0]["review"], rows[0]["reviewed_by"]), ("accepted", SELFTEST_READER), "T12 review exported")
    _equal(rows[3]["ha_mm"], round(after, 1), "the dragged L3 height exported")


__all__ = ["ANALYSIS_TIMEOUT_S", "widget_workflow"]
