"""The generated column's reference (``benchmarks/bench_generated.py``): bodies cut by the field of view are bodies."""

from __future__ import annotations

import numpy as np
import pytest
from testdata import benchmark

from VertebralFractureLib.schema import SpineResult, Vertebra
from VertebralFractureLib.training.real.reference import score_case


@pytest.fixture(scope="module")
def case():
    from VertebralFractureLib.synth import generate_case

    return generate_case(900012, "chest")  # a held-out case whose L1 is cut by the lower edge of the view


def test_a_vertebra_cut_by_the_field_of_view_is_a_partial_body_of_the_reference(case):
    bench = benchmark("bench_generated")
    partial = case.truth.input["synthetic"]["partial_levels"]
    assert "L1" in partial and "L1" not in case.truth.labels
    reference = bench.reference_from_truth("c", case.truth, case.vert_mask)
    by_label = {v.label: v for v in reference.vertebrae}
    assert {by_label[level].in_view for level in partial} == {"partial"}
    assert all(v.in_view == "full" for v in reference.vertebrae if v.label in case.truth.labels)
    # L1's centre lies below T12's by less than a level, inside the field of view
    lowest_z = case.ct.TransformIndexToPhysicalPoint((0, 0, 0))[2]
    assert lowest_z < by_label["L1"].centroid[2] < by_label["T12"].centroid[2] - 12.0

    # the analysis's "L1, not assessed: cut by the field of view" is then a body, not a detection off the spine
    result = SpineResult(frame="LPS", pixel_spacing=None)
    cut = Vertebra(label="L1", centroid=by_label["L1"].centroid + np.array([0.0, 0.0, 2.0]), keypoints=np.zeros((6, 3)))
    cut.not_assessed("cut by the inferior edge of the field of view")
    result.vertebrae.append(cut)
    assert score_case(result, reference).outside == 0
    assert score_case(result, bench.reference_from_truth("c", case.truth)).outside == 1  # without the partial bodies
