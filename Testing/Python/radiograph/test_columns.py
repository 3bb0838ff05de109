"""Column caches: npz round trip, from a pixel-frame SpineResult, folder listing that skips partial writes."""

import numpy as np

from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.training.radiograph.columns import Column, column_path, load_columns


def test_round_trip_and_listing(tmp_path, drawn):
    column = drawn(3)
    column.save(column_path(tmp_path, 3))
    (tmp_path / "column_0000004.npz.tmp.npz").write_bytes(b"partial")  # a write in progress
    loaded = load_columns(tmp_path)
    assert len(loaded) == 1
    back = loaded[0]
    assert back.levels == column.levels and back.seed == 3 and back.pixel_mm == 1.0
    assert np.allclose(back.keypoints, column.keypoints) and np.allclose(back.image, column.image, atol=1e-3)
    assert load_columns(tmp_path, seeds=[3, 5])[0].seed == 3


def test_from_a_pixel_frame_truth(drawn):
    column = drawn()
    truth = SpineResult(
        vertebrae=[Vertebra(label=lv, centroid=c, keypoints=k, extra={"commanded_grade": 2 if lv == "L1" else 0})
                   for lv, c, k in zip(column.levels, column.centroids, column.keypoints)],
        frame="pixel", pixel_spacing=(0.8, 0.8))
    again = Column.from_truth(column.image, truth, seed=9)
    assert again.pixel_mm == 0.8 and again.levels == column.levels
    assert again.grades[column.levels.index("L1")] == 2 and again.grades.sum() == 2
    assert np.allclose(again.centroids, column.centroids)
