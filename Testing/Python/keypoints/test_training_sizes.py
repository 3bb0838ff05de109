"""Generated training cases of the keypoint detector drawn at other body sizes (``train keypoints --size-scale``)."""

import argparse

import numpy as np

from VertebralFractureLib.training.keypoints.train import add_train_arguments, collect_samples


def test_size_scale_draws_one_size_per_case_and_keeps_its_own_cache_entry(tmp_path):
    parser = add_train_arguments(argparse.ArgumentParser())
    plain = collect_samples(parser.parse_args(["--synth", "1", "--seed-offset", "630001", "--synth-preset", "abdomen",
                                               "--cache", str(tmp_path)]))
    large = collect_samples(parser.parse_args(["--synth", "1", "--seed-offset", "630001", "--synth-preset", "abdomen",
                                               "--size-scale", "1.25", "1.3", "--cache", str(tmp_path)]))
    assert len(plain) == len(large) == 1
    assert "size1.2" in large[0].name and "size" not in plain[0].name
    assert len(list(tmp_path.glob("*.npz"))) == 2  # two cache entries, neither read for the other
    # the same case, its bodies 25-30 % larger: the true keypoints spread further apart on the detector's image
    def spread(sample):
        points = np.asarray(sample.keypoints, dtype=float).reshape(-1, 6, 2)
        return float(np.median(np.ptp(points[:, :, 1], axis=1)))  # body heights along the rows (pixels)
    assert 1.15 < spread(large[0]) / spread(plain[0]) < 1.45
