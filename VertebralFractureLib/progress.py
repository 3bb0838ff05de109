"""Progress reporting and cancellation shared by the pipeline, the CLI and the Slicer module.

A :class:`Progress` forwards ``(fraction, message)`` to a callback and raises
:class:`Cancelled` at the next check once cancellation was requested, so a long stage stops
between steps (the pipeline checks between stages and inside their loops).
"""

from __future__ import annotations

import threading
from typing import Callable, Optional

ProgressCallback = Callable[[float, str], None]


class Cancelled(Exception):
    """The user cancelled the analysis; nothing was written."""


class Progress:
    """Report progress in a sub-range of [0, 1] and check for cancellation.

    Args:
        callback: receives the overall fraction (0-1) and a message.
        cancel: an event; once set, the next :meth:`check` or report raises :class:`Cancelled`.
    """

    def __init__(self, callback: Optional[ProgressCallback] = None, cancel: Optional[threading.Event] = None):
        self.callback = callback
        self.cancel = cancel if cancel is not None else threading.Event()
        self._start, self._end = 0.0, 1.0

    def sub(self, start: float, end: float) -> "Progress":
        """A view reporting into ``[start, end]`` of this one's range."""
        child = Progress(self.callback, self.cancel)
        span = self._end - self._start
        child._start, child._end = self._start + start * span, self._start + end * span
        return child

    def check(self) -> None:
        """Raise :class:`Cancelled` if cancellation was requested."""
        if self.cancel.is_set():
            raise Cancelled("analysis cancelled")

    def __call__(self, fraction: float, message: str = "") -> None:
        """Report ``fraction`` (0-1) of this range done, then check for cancellation."""
        if self.callback is not None:
            value = self._start + min(1.0, max(0.0, fraction)) * (self._end - self._start)
            self.callback(value, message)
        self.check()
