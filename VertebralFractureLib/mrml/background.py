"""The analysis in a background process: ``vertebral-fracture analyze`` run with :mod:`subprocess`.

Qt-free and MRML-free while it runs: :class:`BackgroundAnalysis` starts the command line on a file
(``python -m VertebralFractureLib analyze INPUT --out DIR --overwrite``), two reader threads collect
its progress lines (``[ 42.0 %] detecting vertebrae``, on stderr) and its log lines, and
:meth:`BackgroundAnalysis.poll` hands them to whoever asks (the widget polls with a ``QTimer`` on the
main thread). :meth:`BackgroundAnalysis.cancel` stops the process. The scene is not touched until the
caller, on the main thread, reads the finished outputs (``results.json``, ``segmentation.seg.nrrd``):
see :meth:`VertebralFractureLib.mrml.logic.VertebralFractureLogic.start_background` and
``finish_background``. A cancelled or failed run therefore leaves the scene as it was.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Sequence, Union

PathLike = Union[str, Path]
PROGRESS_LINE = re.compile(r"^\[\s*([0-9.]+) %\] (.*)$")
RUNNING, DONE, FAILED, CANCELLED = "running", "done", "failed", "cancelled"
#: The package folder's parent: put on the child's PYTHONPATH so it imports this very library.
_LIBRARY_ROOT = Path(__file__).resolve().parents[2]


def parse_progress(line: str):
    """``(fraction 0-1, message)`` of a progress line of the command line, or None for another line."""
    match = PROGRESS_LINE.match(line.strip())
    if match is None:
        return None
    return min(1.0, float(match.group(1)) / 100.0), match.group(2)


@dataclass
class Report:
    """What :meth:`BackgroundAnalysis.poll` returns.

    Attributes:
        state: ``running``, ``done``, ``failed`` or ``cancelled``.
        fraction: progress 0-1.
        message: the last progress message.
        log: the log lines that arrived since the previous poll (progress lines included).
        error: for a failed run, its last error line.

    """

    state: str
    fraction: float
    message: str
    log: List[str] = field(default_factory=list)
    error: str = ""


class BackgroundAnalysis:
    """One run of ``vertebral-fracture analyze`` in a child process.

    Args:
        input_path: the CT file (or DICOM folder).
        out_dir: the output folder (created; outputs replaced).
        device: ``auto``, ``cpu`` or ``cuda``.
        segmentation: optional vertebra label file passed as ``--segmentation``.
        python: the Python to run (default: this one; in Slicer ``PythonSlicer``).
        extra_env: variables added to the child's environment.

    """

    def __init__(
        self,
        input_path: PathLike,
        out_dir: PathLike,
        *,
        device: str = "auto",
        segmentation: Optional[PathLike] = None,
        python: Optional[str] = None,
        extra_env: Optional[dict] = None,
    ):
        self.input_path, self.out_dir = Path(input_path), Path(out_dir)
        self.device, self.segmentation = device, segmentation
        self.python = python or sys.executable
        self.extra_env = dict(extra_env or {})
        self.process: Optional[subprocess.Popen] = None
        self.fraction, self.message, self.error = 0.0, "starting", ""
        self.cancelled = False
        self._log: List[str] = []
        self._lock = threading.Lock()
        self._readers: List[threading.Thread] = []

    def command(self) -> List[str]:
        """The command line run."""
        command = [self.python, "-m", "VertebralFractureLib", "analyze", str(self.input_path)]
        command += ["--out", str(self.out_dir), "--overwrite", "--device", self.device]
        if self.segmentation:
            command += ["--segmentation", str(self.segmentation)]
        return command

    def start(self) -> "BackgroundAnalysis":
        """Start the process (returns at once)."""
        env = dict(os.environ, **self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_LIBRARY_ROOT), env.get("PYTHONPATH", "")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = subprocess.Popen(
            self.command(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            env=env,
        )
        for stream in (self.process.stdout, self.process.stderr):
            reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
            reader.start()
            self._readers.append(reader)
        return self

    def _read(self, stream) -> None:
        for line in stream:
            line = line.rstrip("\n")
            progress = parse_progress(line)
            with self._lock:
                if progress is not None:
                    self.fraction, self.message = progress
                elif line.startswith("error") or line.startswith("vertebral-fracture: error"):
                    self.error = line
                self._log.append(line)

    @property
    def state(self) -> str:
        """``running``, ``done``, ``failed`` or ``cancelled``."""
        if self.cancelled:
            return CANCELLED
        if self.process is None or self.process.poll() is None:
            return RUNNING
        if any(reader.is_alive() for reader in self._readers):
            return RUNNING  # output still being read
        return DONE if self.process.returncode == 0 else FAILED

    def poll(self) -> Report:
        """The state, progress and the log lines that arrived since the last poll (never blocks)."""
        state = self.state
        with self._lock:
            log, self._log = self._log, []
            error = self.error
        if state == FAILED and not error:
            error = f"the analysis stopped with exit code {self.process.returncode}"
        return Report(state, self.fraction, self.message, log, error)

    def wait(self, timeout: Optional[float] = None) -> str:
        """Wait for the end of the run; returns its state."""
        if self.process is not None:
            self.process.wait(timeout)
        for reader in self._readers:
            reader.join(timeout)
        return self.state

    def cancel(self) -> None:
        """Stop the run (the process is terminated, then killed if it does not end within 10 s)."""
        self.cancelled = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def outputs(self) -> Sequence[Path]:
        """``(results.json, segmentation.seg.nrrd)`` of a finished run."""
        return self.out_dir / "results.json", self.out_dir / "segmentation.seg.nrrd"


__all__ = ["BackgroundAnalysis", "CANCELLED", "DONE", "FAILED", "RUNNING", "Report", "parse_progress"]
