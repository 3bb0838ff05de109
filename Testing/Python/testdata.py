"""Paths of the test data shipped in ``Testing/Data`` (see ``Testing/Data/README.md``).

Tests import it as ``from testdata import real``; ``Testing/Python`` must be on ``sys.path``
(the test ``conftest.py`` adds it; by hand: ``PYTHONPATH=Testing/Python pytest``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

TESTING_DATA = Path(__file__).resolve().parents[1] / "Data"
REAL_DATA = TESTING_DATA / "real"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark(name: str):
    """The script ``benchmarks/<name>.py`` imported as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real(*parts: str) -> Path:
    """Path of a real-data file, e.g. ``real("verse", "sub-verse004_seg-vert_msk.nii.gz")``.

    Raises:
        FileNotFoundError: if the file is not in ``Testing/Data/real``.

    """
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data {path} is missing (see Testing/Data/README.md)")
    return path


def box_keypoints(centre, heights=(25.0, 25.0, 25.0), depth=30.0) -> np.ndarray:
    """Six LPS keypoints of a vertebral body centred at ``centre`` with heights (ha, hm, hp).

    Anterior is -y in LPS; superior is +z. Points follow ``genant.KEYPOINT_NAMES``.
    """
    x, y, z = (float(c) for c in centre)
    rows = []
    for offset, height in zip((-depth / 2, 0.0, depth / 2), heights):
        rows += [[x, y + offset, z + height / 2], [x, y + offset, z - height / 2]]
    return np.array(rows, dtype=float)


def drawn_mask_ct(folder: Path, parts: tuple, seed: int, slice_mm: float):
    """A real vertebra mask (``real(*parts)``) drawn as a CT by ``synth.generate_from_mask`` at 1 mm pixels and
    ``slice_mm`` slices (as ``benchmarks/bench_real_shapes.py`` draws it), written to ``folder``.

    Returns:
        ``(case, path)``: the :class:`~VertebralFractureLib.synth.generator.SyntheticCase` and the CT file.
    """
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.synth import generate_from_mask

    case = generate_from_mask(read_image(real(*parts)), seed, spacing=(1.0, 1.0, slice_mm), fov_xy_mm=(300.0, 260.0))
    path = Path(folder) / f"drawn_{seed}_{slice_mm:g}mm.nii.gz"
    sitk.WriteImage(case.ct, str(path))
    return case, path
