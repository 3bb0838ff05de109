"""The real-CT benchmark's pictures of each body (``benchmarks/bench_real.py --bodies``)."""

from __future__ import annotations

import numpy as np
import pytest
from testdata import benchmark

from VertebralFractureLib.levels import shift_level
from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.training.real.reference import load_case, score_case


@pytest.fixture(scope="module")
def bench():
    return benchmark("bench_real")


def test_one_picture_per_matched_body_with_reference_keypoints_named_by_its_reference_level(bench, tmp_path):
    import matplotlib.image

    reference = load_case("sample_ct")
    # a result one level off (every body reported as the one above it) with its keypoints 3 mm behind the reference's
    vertebrae = [Vertebra(shift_level(v.label, -1), v.centroid, (v.keypoints if v.keypoints is not None else
                          v.centroid + np.zeros((6, 3))) + [0.0, 3.0, 0.0]) for v in reference.vertebrae]
    result = SpineResult(vertebrae=vertebrae)
    score = score_case(result, reference)
    written = bench.body_figures(reference.image_path, reference, result, score, tmp_path / "bodies")
    keypointed = [v.label for v in reference.vertebrae if v.keypoints is not None]
    assert sorted(p.stem for p in written) == sorted(keypointed)  # the reference's levels, not the reported ones
    picture = matplotlib.image.imread(written[0])
    assert picture.shape[0] > 500 and picture.shape[1] > 500
    assert bench.body_figures(reference.image_path, reference, SpineResult(vertebrae=[]),
                              score_case(SpineResult(vertebrae=[]), reference), tmp_path / "none") == []
    assert not (tmp_path / "none").exists()
