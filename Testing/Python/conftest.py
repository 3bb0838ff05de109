"""Shared pytest fixtures and settings for the whole test suite.

* ``Testing/Python`` is put on ``sys.path`` so helpers next to the tests import by name
  (``from testdata import real``).
* ``mrml_scene``: a fresh real ``vtkMRMLScene`` (slicer-core) with the application logic and the
  module logics of :func:`VertebralFractureLib.mrml.scene.create_scene`. Tests that use it skip,
  with the reason, when slicer-core is not installed.
* Offscreen rendering is selected before VTK is imported (``VTK_DEFAULT_OPENGL_WINDOW``).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parents[1]
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))


@functools.cache
def slicer_missing_reason():
    """Why MRML tests cannot run here (slicer-core not importable), or None; imported on first use."""
    try:
        from VertebralFractureLib.mrml.scene import import_slicer

        import_slicer()
    except ImportError as error:
        return f"real MRML tests need slicer-core: {error}"
    return None


@pytest.fixture(autouse=True)
def _single_thread():
    """Torch single-threaded in every test: CI machines are small and shared (faster, fair, and the
    setting the determinism tests assume). Only when a test module already imported torch."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def slicer_core():
    """The ``slicer`` package (slicer-core); skips the test when it cannot be imported."""
    reason = slicer_missing_reason()
    if reason:
        pytest.skip(reason)
    import slicer

    return slicer


@pytest.fixture
def mrml_scene(slicer_core):
    """A new real MRML scene with module logics registered (cleared after the test)."""
    from VertebralFractureLib.mrml.scene import create_scene

    scene = create_scene()
    yield scene
    scene.Clear(1)


@pytest.fixture
def repo_root() -> Path:
    """The repository root (where pyproject.toml is)."""
    return REPO_ROOT


@pytest.fixture
def spine_result():
    """A small LPS SpineResult: T12 and L2 normal, L1 a grade-2 wedge (ha 16 of 25 mm)."""
    from testdata import box_keypoints

    from VertebralFractureLib.schema import SpineResult, Vertebra

    vertebrae = [
        Vertebra("T12", [1.0, 2.0, 130.0], box_keypoints([1.0, 2.0, 130.0]), confidence=0.95),
        Vertebra(
            "L1", [1.5, 3.0, 100.0], box_keypoints([1.5, 3.0, 100.0], (16.0, 24.0, 25.0)), fracture_probability=0.9
        ),
        Vertebra("L2", [2.0, 4.0, 70.0], box_keypoints([2.0, 4.0, 70.0], (26.0, 26.0, 26.5)), abnormality=12.5),
    ]
    return SpineResult(vertebrae=vertebrae, frame="LPS", input={"path": "synthetic.nii.gz"})


def _hypothesis_profiles() -> None:
    """Derandomised property tests in CI (``CI`` set), so a run is reproducible; random locally."""
    try:
        from hypothesis import settings
    except ImportError:  # pragma: no cover - hypothesis is a test dependency
        return
    settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
    settings.register_profile("dev", deadline=None)
    settings.load_profile("ci" if os.environ.get("CI") else "dev")


_hypothesis_profiles()
