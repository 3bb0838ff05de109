"""Tiny patch sets for the grading tests: boxes whose height encodes the grade."""

import numpy as np
import pytest

from VertebralFractureLib.grading.patches import CACHE_SIZE
from VertebralFractureLib.training.grading.data import PatchSet

LEVELS = ("T4", "T7", "T11", "L2", "L5")


def box_patch(grade: int, rng: np.random.Generator) -> np.ndarray:
    """A normalised patch: a bright 30 mm deep body whose anterior height shrinks with the grade."""
    patch = rng.normal(-1.5, 0.05, (CACHE_SIZE, CACHE_SIZE)).astype(np.float32)
    reduction = {0: 0.0, 1: 0.22, 2: 0.33, 3: 0.5}[grade]
    bottom = 76
    for col in range(49, 79):
        anterior = (79 - col) / 30.0  # 1 at the anterior wall, 0 posterior
        height = 24 * (1 - reduction * anterior)
        patch[int(bottom - height):bottom, col] = 1.0
    return patch


def make_set(n_cases: int = 12, seed: int = 0) -> PatchSet:
    rng = np.random.default_rng(seed)
    patches, grades, regions, levels, cases = [], [], [], [], []
    for case in range(n_cases):
        for region, level in enumerate(LEVELS):
            grade = (0, 0, 2, 3, 1)[(case + region) % 5] if (case + region) % 2 else 0
            patches.append(box_patch(grade, rng))
            grades.append(grade)
            regions.append(region)
            levels.append(level)
            cases.append(f"case{case}")
    return PatchSet(np.stack(patches).astype(np.float16), np.array(grades), np.array(regions), np.array(levels),
                    np.array(cases))


@pytest.fixture(scope="module")
def tiny_set() -> PatchSet:
    return make_set()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one CPU thread is faster than two on a shared machine (and deterministic)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
