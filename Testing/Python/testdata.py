"""Paths of the test data shipped in ``Testing/Data`` (see ``Testing/Data/README.md``).

Tests import it as ``from testdata import real``; ``Testing/Python`` must be on ``sys.path``
(the test ``conftest.py`` adds it; by hand: ``PYTHONPATH=Testing/Python pytest``).
"""

from __future__ import annotations

from pathlib import Path

TESTING_DATA = Path(__file__).resolve().parents[1] / "Data"
REAL_DATA = TESTING_DATA / "real"


def real(*parts: str) -> Path:
    """Path of a real-data file, e.g. ``real("verse", "sub-verse004_seg-vert_msk.nii.gz")``.

    Raises:
        FileNotFoundError: if the file is not in ``Testing/Data/real``.

    """
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data {path} is missing (see Testing/Data/README.md)")
    return path
