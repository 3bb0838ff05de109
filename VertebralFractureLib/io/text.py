"""Reading text files with one clear error per problem (missing, unreadable, not text)."""

from __future__ import annotations

from pathlib import Path
from typing import Type, Union


def read_text_file(path: Union[str, Path], error: Type[Exception], *, encoding: str = "utf-8") -> str:
    """The text of ``path``; every failure becomes ``error`` with a message naming the file.

    Args:
        path: the file.
        error: the exception class of the calling format (e.g. ``AnnotationError``).
        encoding: text encoding (``"utf-8-sig"`` accepts a byte-order mark).

    Raises:
        error: if the file does not exist, cannot be read or is not text in ``encoding``.
    """
    path = Path(path)
    try:
        return path.read_text(encoding=encoding)
    except FileNotFoundError:
        raise error(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as cause:
        raise error(f"{path}: cannot read the file: {cause}") from None
