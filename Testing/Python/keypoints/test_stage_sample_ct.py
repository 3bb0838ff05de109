"""The keypoint stage on the real sample CT: what a reader sees for each vertebra.

The sample CT (``Testing/Data/real/reference/sample_ct.json``) shows T12 (cut by the top of the field
of view) to L5, none fractured. One analysis (centre-line, straightening, keypoints, quality gate) is shared
by the tests of this file; the detector is wrapped by a spy (the real function still runs) so that each
vertebra's confidence can be checked against the detection it came from.
"""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.levels import level_index
from VertebralFractureLib.training.real.reference import load_case


@pytest.fixture(scope="module")
def sample():
    """(analysis, detections returned by the detector, image geometry) of the sample CT."""
    import VertebralFractureLib.keypoints.detector as detector_module
    from VertebralFractureLib.data import sample_ct_path
    from VertebralFractureLib.io.images import geometry_of, read_image
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.stage import AnalysisOptions

    calls = []
    real_detect = detector_module.detect_vertebrae

    def spy(*args, **kwargs):
        detections = real_detect(*args, **kwargs)
        calls.append(list(detections))
        return detections

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detector_module, "detect_vertebrae", spy)
        analysis = analyze(sample_ct_path(), AnalysisOptions(masks=False, extra_stages=(), device="cpu", threads=1))
    assert len(calls) == 1, "the stage detects once"
    return analysis, calls[0], geometry_of(read_image(sample_ct_path()))


def test_levels_are_the_reference_levels_in_order(sample):
    analysis, _, _ = sample
    labels = analysis.result.labels
    reference = [v.label for v in load_case("sample_ct").vertebrae]
    assert {"L1", "L2", "L3", "L4"} <= set(labels)
    start = reference.index(labels[0])
    assert labels == reference[start : start + len(labels)]  # consecutive reference levels, cranio-caudal
    assert [level_index(label) for label in labels] == sorted(level_index(label) for label in labels)


def test_the_cut_t12_is_shown_but_never_graded(sample):
    """Without the field-of-view edge check the cut T12 is measured as a grade-3 fracture (G 0.51)."""
    analysis, _, _ = sample
    by_label = {v.label: v for v in analysis.result.vertebrae}
    t12 = by_label["T12"]
    assert t12.status == "not_assessed" and "field of view" in t12.status_reason
    assert t12.measure is None and "genant" not in t12.to_dict()
    summary = analysis.result.patient_summary()
    assert "T12" in summary["not_assessed"] and "T12" not in summary["fractured_levels"]
    assert summary["n_assessed"] == len(analysis.result.vertebrae) - len(summary["not_assessed"])


def test_no_normal_vertebra_of_the_sample_is_called_a_fracture(sample):
    """The reference reads no fracture in the sample CT: a grade 2-3 anywhere is a wrong grade."""
    analysis, _, _ = sample
    assert not any(v.looks_fractured for v in load_case("sample_ct").vertebrae)
    grades = {v.label: v.measure.grade for v in analysis.result.vertebrae if v.measure is not None}
    assert grades and max(grades.values()) <= 1, grades
    assert analysis.result.patient_summary()["max_grade"] <= 1


def test_every_vertebra_reaching_the_scan_edge_is_not_assessed(sample):
    analysis, _, geometry = sample
    size = np.asarray(geometry.size, dtype=float)
    at_edge = []
    for vertebra in analysis.result.vertebrae:
        index = geometry.lps_to_index(vertebra.keypoints)
        if np.any(index < 1.0) or np.any(index > size - 2.0):  # within one voxel of the border, or outside
            at_edge.append(vertebra.label)
            assert vertebra.status == "not_assessed", vertebra.label
            assert vertebra.measure is None, vertebra.label
    assert "T12" in at_edge


def test_confidence_is_the_lower_of_detection_and_label_confidence(sample):
    """A vertebra is only as certain as its least certain part: found (score) and named (label)."""
    analysis, detections, _ = sample
    by_label = {d.label: d for d in detections}
    assert len(by_label) == len(analysis.result.vertebrae)
    lowered = 0
    for vertebra in analysis.result.vertebrae:
        detection = by_label[vertebra.label]
        expected = min(detection.score, detection.label_confidence)
        assert vertebra.confidence == pytest.approx(expected, abs=1e-6), vertebra.label
        lowered += max(detection.score, detection.label_confidence) - expected > 1e-3
    assert lowered >= 1, "the sample must have a vertebra whose two confidences differ (else min = max)"
