"""The Slicer module file, loaded under slicer-core for the tests of this folder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

MODULE_FILE = Path(__file__).resolve().parents[3] / "VertebralFracture" / "VertebralFracture.py"


@pytest.fixture(scope="module")
def module(slicer_core):
    """``VertebralFracture/VertebralFracture.py`` executed as a module (a fresh copy per test module)."""
    spec = importlib.util.spec_from_file_location("VertebralFracture", MODULE_FILE)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded
