"""Run torch single-threaded in these tests: the CI machines are small and shared (faster, and fair)."""

import sys

import pytest


@pytest.fixture(autouse=True)
def _single_thread():
    torch = sys.modules.get("torch")  # only when a test module uses torch: importing it is slow
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
