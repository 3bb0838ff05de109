"""Atomic file writing: single files and sets of files written as one unit.

Every file goes to a temporary name in the target folder (``.vf-tmp-...``), is flushed, fsynced
and read back (its size, and a parse of the header of a NIfTI, NRRD, PNG or JSON file) before it
is renamed onto its final name. :class:`AtomicSet` does this for several files at once: all are
written and checked first, then a small journal (``.vf-commit.json``) lists the renames, then all
are renamed. An export interrupted by an error, Ctrl-C, a kill or a full disk therefore leaves the
previous complete set of files (or none), never a truncated file or a mix of two runs: a journal
left by a kill is completed, and stale temporaries are removed, by the next write to the folder
(:func:`recover`). An existing file is only replaced when the caller says so.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]
Data = Union[str, bytes, Callable[[Path], None]]

#: Prefix of every temporary file this module creates (hidden; removed by :func:`recover`).
TEMP_PREFIX = ".vf-tmp-"
#: The journal of a set being renamed into place.
JOURNAL_NAME = ".vf-commit.json"
#: The lock file of a folder held by :class:`FolderLock`.
LOCK_NAME = ".vf-lock"


class ExistingFileError(FileExistsError):
    """The target exists and the caller did not allow overwriting it."""


class IncompleteWriteError(OSError):
    """A file read back after writing is empty, truncated or does not parse."""


class FolderInUseError(OSError):
    """Another process holds the folder's lock (a second batch or export into the same folder)."""


def _umask() -> int:
    """The process umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_path(path: Path, directory: bool = False) -> None:
    """Flush ``path`` (a file, or a folder's entries) to the disk; folders that refuse are skipped."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        handle = os.open(str(path), flags)
    except OSError:
        if directory:
            return
        raise
    try:
        os.fsync(handle)
    except OSError as error:
        if not directory or error.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(handle)


def verify_file(path: PathLike, name: Optional[str] = None) -> None:
    """Read a freshly written file back: non-empty, and its format's header (and data size) parse.

    Args:
        path: the file.
        name: the final name, whose suffix chooses the check (default: ``path``'s name).

    Raises:
        IncompleteWriteError: naming the final file and what is wrong.
    """
    path = Path(path)
    name = (name or path.name).lower()
    shown = name if name == path.name.lower() else f"{name} (temporary {path.name})"
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        raise IncompleteWriteError(f"writing {shown} produced no data")
    problem: Optional[str] = None
    if name.endswith(".json"):
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            problem = f"not valid JSON ({error})"
    elif name.endswith((".nii", ".nii.gz", ".nrrd", ".nhdr")):
        from .images import image_file_problem

        problem = image_file_problem(path, name)
    elif name.endswith(".png"):
        with open(path, "rb") as handle:
            head = handle.read(8)
            handle.seek(max(0, size - 12))
            tail = handle.read()
        if head != b"\x89PNG\r\n\x1a\n" or b"IEND" not in tail:
            problem = "not a complete PNG image"
    elif name.endswith(".html"):
        with open(path, "rb") as handle:
            handle.seek(max(0, size - 64))
            if b"</html>" not in handle.read().lower():
                problem = "the HTML document is cut short"
    if problem:
        raise IncompleteWriteError(f"writing {shown} failed: {problem}")


def _temporary(target: Path) -> Path:
    suffix = "".join(target.suffixes) or ".tmp"
    stem = target.name.split(".")[0] or "file"
    handle, name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{stem}-", suffix=suffix, dir=target.parent)
    os.close(handle)
    return Path(name)


def _finish(temporary: Path, target: Path) -> None:
    """Fsync and read back a temporary file and give it the usual permissions (not yet renamed)."""
    if not temporary.exists() or temporary.stat().st_size == 0:
        raise IncompleteWriteError(f"writing {target} produced no data")
    _fsync_path(temporary)
    verify_file(temporary, target.name)
    os.chmod(temporary, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_path(target: PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; fsync, check and rename it onto ``target`` on success.

    The temporary name keeps the target's suffixes (``.nii.gz``, ``.seg.nrrd``), so writers that
    choose a format by extension (SimpleITK, VTK storage nodes) work on it.

    Raises:
        ExistingFileError: if ``target`` exists and ``overwrite`` is False.
        IncompleteWriteError: if the written file is empty, truncated or does not parse.

    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise ExistingFileError(f"{target} exists; refusing to overwrite it (pass overwrite=True / --overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(target)
    try:
        yield temporary
        _finish(temporary, target)
        os.replace(temporary, target)
        _fsync_path(target.parent, directory=True)
    finally:
        if temporary.exists():
            temporary.unlink()


def _write_data(path: Path, data: Data) -> None:
    if callable(data):
        data(path)
    elif isinstance(data, bytes):
        with open(path, "wb") as handle:
            handle.write(data)
    else:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(data)


def atomic_write(target: PathLike, data: Data, *, overwrite: bool = False) -> Path:
    """Write text, bytes, or whatever ``data(path)`` writes, atomically to ``target``.

    Raises:
        ExistingFileError: if ``target`` exists and ``overwrite`` is False.
        IncompleteWriteError: if the written file is empty, truncated or does not parse.

    """
    with atomic_path(target, overwrite=overwrite) as temporary:
        _write_data(temporary, data)
    return Path(target)


@contextlib.contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) back during a short critical section; raise it afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: List[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def recover(folder: PathLike) -> List[str]:
    """Complete a set a kill interrupted while renaming, then remove stale temporary files.

    Returns:
        The names of the temporary files removed (for a report).
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    journal = folder / JOURNAL_NAME
    if journal.exists():
        try:
            plan = json.loads(journal.read_text(encoding="utf-8"))
            renames, removals = plan["rename"], plan["remove"]
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            renames, removals = [], []  # a journal cut short: its set was never renamed; drop the temporaries
        for temporary, final in renames:
            if (folder / temporary).exists():
                os.replace(folder / temporary, folder / final)
        for name in removals:
            with contextlib.suppress(FileNotFoundError):
                (folder / name).unlink()
        _fsync_path(folder, directory=True)
        journal.unlink()
    removed = []
    for path in folder.iterdir():
        if path.name.startswith(TEMP_PREFIX) and path.is_file():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path.name)
    return removed


class FolderLock:
    """An exclusive lock on a folder (``fcntl.flock`` on ``.vf-lock``), released when the process dies.

    Re-entrant within one process; a second process is refused at once with :class:`FolderInUseError`.
    """

    _held: Dict[str, List] = {}

    def __init__(self, folder: PathLike, purpose: str = "writing"):
        self.folder = Path(folder)
        self.purpose = purpose
        self._key = str(self.folder.resolve())

    def __enter__(self) -> "FolderLock":
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`FolderInUseError` naming the folder and the holder."""
        import fcntl

        if self._key in self._held:
            self._held[self._key][1] += 1
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / LOCK_NAME
        while True:
            handle = os.open(str(path), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = os.read(handle, 200).decode("utf-8", "replace").strip()
                os.close(handle)
                raise FolderInUseError(
                    f"{self.folder}: the folder is in use by another run ({holder or 'unknown process'}); "
                    "wait for it to finish or choose another output folder"
                ) from None
            try:
                same = os.fstat(handle).st_ino == os.stat(str(path)).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(handle)  # the holder removed the file between our open and our lock: try again
        os.ftruncate(handle, 0)
        os.write(handle, f"pid {os.getpid()}, {self.purpose}".encode())
        self._held[self._key] = [handle, 1]

    def release(self) -> None:
        """Release the lock (the last release of this process removes the lock file)."""
        entry = self._held.get(self._key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] > 0:
            return
        del self._held[self._key]
        with contextlib.suppress(FileNotFoundError):
            (self.folder / LOCK_NAME).unlink()
        os.close(entry[0])


class AtomicSet:
    """Several files in one folder written as one unit.

    Usage::

        with AtomicSet(folder, overwrite=True, replaces=OUTPUT_FILES) as files:
            files.write("results.json", text)
            sitk.WriteImage(image, str(files.path("map.nii.gz")))
        # committed here: every file checked, then all renamed; on an exception nothing is renamed

    Args:
        folder: the target folder (created if needed).
        overwrite: allow replacing existing files.
        replaces: names of a previous set in this folder; those not written again are removed at
            commit, so the folder never mixes two runs.
    """

    def __init__(self, folder: PathLike, *, overwrite: bool = False, replaces: Iterable[str] = ()):
        self.folder = Path(folder)
        self.overwrite = overwrite
        self.replaces = tuple(replaces)
        self._temporaries: Dict[str, Path] = {}
        self._lock = FolderLock(self.folder, "writing outputs")
        self._open = False
        #: Name -> final path, after a successful commit.
        self.written: Dict[str, Path] = {}

    def __enter__(self) -> "AtomicSet":
        self._lock.acquire()
        self._open = True
        try:
            recover(self.folder)
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                self.commit()
            else:
                if isinstance(value, OSError):
                    self._name_final_file(value)
                self.abort()
        finally:
            if self._open:
                self._open = False
                self._lock.release()

    def path(self, name: str) -> Path:
        """The temporary path to write ``name`` to (its final path after the commit)."""
        if name in self._temporaries:
            return self._temporaries[name]
        if (self.folder / name).exists() and not self.overwrite:
            raise ExistingFileError(f"{self.folder / name} exists; refusing to overwrite it (pass --overwrite)")
        self._temporaries[name] = _temporary(self.folder / name)
        return self._temporaries[name]

    def write(self, name: str, data: Data) -> Path:
        """Write text, bytes or ``data(path)`` to ``name``'s temporary path; returns that path."""
        path = self.path(name)
        _write_data(path, data)
        return path

    def _name_final_file(self, error: OSError) -> None:
        """Make an error about a temporary file name the final file the user knows."""
        for name, path in self._temporaries.items():
            if error.filename is not None and str(error.filename) == str(path):
                error.filename = str(self.folder / name)

    def abort(self) -> None:
        """Remove every temporary file; the folder keeps what it held before."""
        for path in self._temporaries.values():
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self._temporaries.clear()

    def commit(self) -> Dict[str, Path]:
        """Check every file, then rename them all into place (Ctrl-C held back meanwhile).

        Returns:
            Name -> final path.

        Raises:
            IncompleteWriteError: if a file is empty, truncated or unparsable (nothing is renamed).
        """
        try:
            for name, path in self._temporaries.items():
                _finish(path, self.folder / name)
            removals = [n for n in self.replaces if n not in self._temporaries and (self.folder / n).exists()]
            plan = {"rename": [[p.name, n] for n, p in self._temporaries.items()], "remove": removals}
            journal = self.folder / JOURNAL_NAME
            with deferred_interrupt():
                _write_data(journal, json.dumps(plan))
                _fsync_path(journal)
                _fsync_path(self.folder, directory=True)
                for name, path in self._temporaries.items():
                    os.replace(path, self.folder / name)
                for name in removals:
                    with contextlib.suppress(FileNotFoundError):
                        (self.folder / name).unlink()
                _fsync_path(self.folder, directory=True)
                journal.unlink()
        except BaseException:
            journal = self.folder / JOURNAL_NAME
            try:
                json.loads(journal.read_text(encoding="utf-8"))
            except FileNotFoundError:
                self.abort()
            except (OSError, ValueError):  # a journal cut short (disk full): the set was never renamed
                with contextlib.suppress(OSError):
                    journal.unlink()
                self.abort()
            raise
        self.written = {name: self.folder / name for name in self._temporaries}
        self._temporaries.clear()
        return self.written
