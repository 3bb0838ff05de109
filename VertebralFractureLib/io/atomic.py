"""Atomic file writing: a temporary file in the target folder, then a rename.

An export interrupted by an error, a kill or a full disk leaves the previous file (or no file)
in place, never a truncated one; an existing file is only replaced when the caller says so.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


class ExistingFileError(FileExistsError):
    """The target exists and the caller did not allow overwriting it."""


def _umask() -> int:
    """The process umask (read without changing it for longer than a call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(target: PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    The temporary name keeps the target's suffixes (``.nii.gz``, ``.seg.nrrd``), so writers that
    choose a format by extension (SimpleITK, VTK storage nodes) work on it.

    Raises:
        ExistingFileError: if ``target`` exists and ``overwrite`` is False.

    """
    target = Path(target)
    if target.exists() and not overwrite:
        raise ExistingFileError(f"{target} exists; refusing to overwrite it (pass overwrite=True / --overwrite)")
    target.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(target.suffixes) or ".tmp"
    handle, name = tempfile.mkstemp(prefix=f".{target.name.split('.')[0]}-", suffix=suffix, dir=target.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        if not temporary.exists() or temporary.stat().st_size == 0:
            raise OSError(f"writing {target} produced no data")
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()


def atomic_write(target: PathLike, data: Union[str, bytes, Callable[[Path], None]], *, overwrite: bool = False) -> Path:
    """Write text, bytes, or whatever ``data(path)`` writes, atomically to ``target``.

    Raises:
        ExistingFileError: if ``target`` exists and ``overwrite`` is False.

    """
    with atomic_path(target, overwrite=overwrite) as temporary:
        if callable(data):
            data(temporary)
        elif isinstance(data, bytes):
            temporary.write_bytes(data)
        else:
            temporary.write_text(data, encoding="utf-8")
    return Path(target)
