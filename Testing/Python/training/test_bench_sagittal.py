"""The real-slice benchmark's keypoint scoring (``benchmarks/bench_sagittal.py``): mm from pixels, frames followed."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from testdata import benchmark


@pytest.fixture(scope="module")
def bench():
    return benchmark("bench_sagittal")


BOX = [[10.0, 20.0], [10.0, 50.0], [25.0, 20.0], [25.0, 50.0], [40.0, 20.0], [40.0, 50.0]]  # 30 px high everywhere


def test_errors_are_in_mm_and_only_assessed_vertebrae_carry_keypoint_errors(bench):
    annotated = [{"centroid": [25.0, 35.0], "keypoints": BOX}, {"centroid": [25.0, 90.0], "keypoints": None}]
    crushed = np.array(BOX)
    crushed[2, 1] += 6.0  # the middle superior point 6 px lower: h_m 24 of 30 px, G 0.8
    found = [SimpleNamespace(keypoints=crushed, status="assessed"),
             SimpleNamespace(keypoints=np.array(BOX), status="not_assessed"),
             SimpleNamespace(keypoints=np.array(BOX), status="assessed")]
    scores = bench.keypoint_scores(found, {0: 0, 1: 0, 2: 1}, annotated, (0.5, 0.5))
    assert scores["kp"] == pytest.approx([6.0 * 0.5 / 6])  # one point 3 mm off, averaged over six
    assert scores["height"] == pytest.approx([3.0 / 3])  # h_m 3 mm short, averaged over three heights
    assert scores["g"] == pytest.approx([0.2]) and scores["g_all"] == pytest.approx([0.2, 0.0])
    assert scores["signed"] == [pytest.approx([0.0, -3.0, 0.0])]
    assert scores["depth_ratio"] == pytest.approx([1.0, 1.0])  # every matched one: the box is as deep as the body
    wide = np.array(BOX)
    wide[[0, 1], 0] -= 6.0  # the anterior wall 6 px further out: 36 of 30 px deep
    assert bench.keypoint_scores([SimpleNamespace(keypoints=wide, status="not_assessed")], {0: 0}, annotated,
                                 (0.5, 0.5))["depth_ratio"] == pytest.approx([1.2])


def test_mirrored_and_framed_references_move_their_keypoints_with_the_picture(bench):
    entry = {"vertebrae": [{"centroid": [25.0, 35.0], "keypoints": BOX}]}
    mirrored = bench.mirrored_entry(entry, 100)["vertebrae"][0]
    assert mirrored["centroid"] == [74.0, 35.0] and mirrored["keypoints"][0] == [89.0, 20.0]
    framed = bench.shifted_entry(entry, 60, 60)["vertebrae"][0]
    assert framed["keypoints"][5] == [100.0, 110.0]


def test_out_draws_each_analysed_real_slice(bench, tmp_path):
    import json
    from pathlib import Path

    from PIL import Image

    reference = Path(__file__).resolve().parents[2] / "Data" / "real" / "reference" / "covid_sagittal.json"
    entry = next(e for e in json.loads(reference.read_text())["images"] if "A046441_19001111" in e["image"])
    score = bench.score_image(entry, reference.parents[1], out=tmp_path)
    picture = tmp_path / "A046441_19001111-059.png"
    assert picture.is_file() and score["matched"] >= 8
    with Image.open(picture) as drawn:  # the 512 x 512 slice drawn square, with its title above
        assert drawn.width >= 600 and drawn.height >= drawn.width * 0.9
        colours = np.asarray(drawn.convert("RGB")).reshape(-1, 3)
        assert len(np.unique(colours, axis=0)) > 50  # the slice itself, not an empty canvas
