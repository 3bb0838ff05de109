"""The module panel's review queue and background-run polling, as a mixin of the Slicer widget.

No Qt import: the methods only call the widget's own controls (``self.ui``: the queue list, the table
view, the log box, the progress bar) and the Qt-free logic (:mod:`.review`, :mod:`.background`). Kept
here so that ``VertebralFracture.py`` stays a thin file; used only inside Slicer.
"""

from __future__ import annotations


def _slicer():
    import slicer

    return slicer


class ReviewPanelMixin:
    """Review keys and queue list, and the QTimer slot polling the background analysis."""

    def onPoll(self):
        """Show the background run's progress and log; at its end update the scene, once, here."""
        report = self.job.poll()
        self.ui.progressBar.value = int(round(100 * report.fraction))
        self.ui.statusLabel.text = report.message
        for line in report.log:
            self.ui.logTextEdit.appendPlainText(line)
        if report.state == "running":
            return
        self.pollTimer.stop()
        job, self.job, self.ui.cancelButton.enabled = self.job, None, False
        if report.state == "cancelled":
            self.ui.statusLabel.text = "Cancelled; the scene was not changed."
        elif report.state == "failed":
            self.ui.statusLabel.text = f"The analysis failed: {report.error}"
        else:
            with _slicer().util.tryWithErrorDisplay("Cannot show the analysis.", waitCursor=True):
                color_by = "abnormality" if self._parameterNode.abnormality else "grade"
                self.showNodes(self.logic.core.finish_background(job, self.jobVolume, color_by=color_by))
        self._checkCanApply()

    def onRow(self, current, previous=None):
        """Arrow keys in the table: centre the views on the new row's vertebra."""
        self.onTableClicked(current)

    def onKey(self, action):
        """A review key or button (review.SHORTCUTS): step, accept, reject, undo, redo."""
        self.logic.core.reviewer = self.ui.reviewerLineEdit.text.strip()
        with _slicer().util.tryWithErrorDisplay(f"Cannot {action}."):
            self.ui.statusLabel.text = self.logic.core.key(self.nodes, action)
        self._showQueue()

    def onQueueRow(self, row):
        """A click in the queue: centre the views on that vertebra."""
        queue = self.logic.core.review_queue(self.nodes) if self.nodes is not None else []
        if 0 <= row < len(queue) and queue[row].label != self.nodes.current:
            self.logic.core.focus(self.nodes, queue[row].label)
            self._showQueue()

    def _showQueue(self):
        queue = self.logic.core.review_queue(self.nodes) if self.nodes is not None else []
        blocked = self.ui.reviewQueueList.blockSignals(True)
        self.ui.reviewQueueList.clear()
        for item in queue:
            mark = f"  [{item.decision} by {item.reviewer}]" if item.reviewed else ""
            self.ui.reviewQueueList.addItem(f"{item.label}  {item.need}: {item.reason}{mark}")
        labels = [item.label for item in queue]
        if self.nodes is not None and self.nodes.current in labels:
            self.ui.reviewQueueList.setCurrentRow(labels.index(self.nodes.current))
            self.ui.resultsTableView.selectRow(self.nodes.result.labels.index(self.nodes.current))
        self.ui.reviewQueueList.blockSignals(blocked)
        self._checkCanApply()

