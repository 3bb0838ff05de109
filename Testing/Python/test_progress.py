import threading

import pytest

from VertebralFractureLib.progress import Cancelled, Progress


def test_sub_ranges_map_into_the_parent_range():
    seen = []
    progress = Progress(lambda f, m: seen.append((round(f, 6), m)))
    stage = progress.sub(0.5, 1.0).sub(0.2, 0.4)
    stage(0.0, "a")
    stage(1.0, "b")
    stage(7.0, "clipped")
    assert seen == [(0.6, "a"), (0.7, "b"), (0.7, "clipped")]


def test_cancel_raises_at_the_next_report_or_check():
    event = threading.Event()
    progress = Progress(cancel=event)
    child = progress.sub(0.1, 0.2)
    child(0.5, "fine")
    event.set()
    with pytest.raises(Cancelled, match="analysis cancelled"):
        child(0.6, "stop")
    with pytest.raises(Cancelled, match="analysis cancelled"):
        progress.check()
