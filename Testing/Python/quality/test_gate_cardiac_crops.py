"""The quality gate on the cardiac crops of a real chest CT: bodies and posterior elements cut by the field of view.

``cptac_cardiac_b`` is a "cardiac CT" crop of the CPTAC chest CT whose posterior edge (y = -70 mm
LPS) lies just behind the vertebral bodies (``Testing/Data/real/README.md``): the spinal canal of
T10 is still in the image, its lamina and spinous process are not. ``cptac_cardiac_a`` is the same
scan with the posterior edge behind the laminae. Keypoints: the detector's on each crop
(``KeypointStage`` after the centreline stages), rounded to 0.1 mm; their mean lies within 6 mm of
the reference T10 centroid (``reference/cptac_cardiac_b.json``, hand-read on 3 mm slices) and more
than 20 mm from T9 and T11.

The gate must grade such a body: one of canal OR posterior elements is enough evidence of a
vertebra (``combined = max(canal, posterior)`` in ``quality/gate.py``); requiring both would
refuse every body of a scan cropped in front of the laminae.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from testdata import real

from VertebralFractureLib.io.images import geometry_of, read_image, to_canonical
from VertebralFractureLib.quality import ASSESSED, NOT_ASSESSED, assess_vertebra

# Detector keypoints of T10 (LPS mm, genant.KEYPOINT_NAMES order) on each crop.
T10_CARDIAC_B = [[-13.8, -104.1, -178.8], [-10.8, -107.3, -200.5], [-12.7, -89.9, -185.0],
                 [-10.1, -92.7, -204.3], [-11.9, -76.2, -188.4], [-9.7, -78.3, -206.1]]
T10_CARDIAC_A = [[-14.6, -105.3, -179.2], [-13.3, -110.2, -198.7], [-13.5, -94.1, -190.2],
                 [-12.7, -97.4, -203.1], [-13.3, -80.1, -188.9], [-11.9, -85.7, -209.6]]
# Reference centroids (LPS mm) of T9, T10, T11.
REFERENCE = {"T9": [-12.0, -90.7, -166.5], "T10": [-10.9, -92.9, -190.5], "T11": [-5.0, -98.0, -216.0]}
# Detector keypoints of the body below T11 on cptac_cardiac_a, whose inferior edge (z = -246 mm) cuts it:
# the reference marks T12 "partial" (cut by the field of view); its inferior posterior keypoint is 1 mm inside.
T12_CARDIAC_A = [[-10.0, -118.2, -221.4], [-6.4, -124.1, -235.4], [-9.1, -105.9, -226.5],
                 [-6.5, -110.5, -236.2], [-8.2, -94.0, -231.3], [-4.6, -99.8, -245.1]]


def _finding(name, keypoints, label="T10"):
    image = to_canonical(read_image(real("cptac_chest", name)))
    return assess_vertebra(sitk.GetArrayFromImage(image), geometry_of(image), np.array(keypoints), label)


@pytest.fixture(scope="module")
def cut():
    return _finding("cptac_cardiac_b.nii.gz", T10_CARDIAC_B)


@pytest.fixture(scope="module")
def whole():
    return _finding("cptac_cardiac_a.nii.gz", T10_CARDIAC_A)


def test_keypoints_are_the_reference_t10():
    for keypoints in (T10_CARDIAC_B, T10_CARDIAC_A):
        distance = {label: np.linalg.norm(np.mean(keypoints, axis=0) - centre) for label, centre in REFERENCE.items()}
        assert distance["T10"] < 6.0 and distance["T9"] > 20.0 and distance["T11"] > 20.0, distance


def test_a_body_with_its_canal_but_no_posterior_elements_is_assessed(cut):
    assert cut.details["posterior"]["in_image_fraction"] < 0.1  # the region behind the canal is off the image
    assert cut.checks["posterior"] < 0.5 <= cut.checks["canal"]  # canal (2 of 3 walls) yes, lamina no
    assert cut.checks["canal_or_posterior"] == cut.checks["canal"] == pytest.approx(2 / 3, abs=1e-3)
    assert cut.status == ASSESSED and cut.reason is None
    assert cut.checks["field_of_view"] == 1.0 and cut.checks["bone"] >= 0.5  # the body itself is whole


def test_the_same_body_with_its_laminae_in_view_passes_both_and_is_more_confident(cut, whole):
    assert whole.status == ASSESSED
    assert whole.checks["canal"] == 1.0 and whole.checks["posterior"] == 1.0
    assert whole.details["posterior"]["bone_area_mm2"] > 10 * cut.details["posterior"]["bone_area_mm2"]
    # the missing posterior elements lower the confidence (a soft check) without refusing the body
    assert cut.confidence < whole.confidence
    assert cut.confidence == pytest.approx(
        cut.checks["canal_or_posterior"] * np.mean([cut.checks[n] for n in ("canal", "posterior", "endplates")]),
        abs=2e-3)


def test_a_body_cut_by_the_inferior_edge_is_not_assessed():
    """The low-index edge of the canonical grid (the sample CT's cut T12 tests the superior, high-index one)."""
    finding = _finding("cptac_cardiac_a.nii.gz", T12_CARDIAC_A, "T12")
    assert finding.status == NOT_ASSESSED
    assert finding.reason == "cut by the inferior edge of the field of view"
    assert finding.checks["field_of_view"] == 0.49  # a cut core never reaches the pass mark
    assert finding.details["field_of_view"]["cut_sides"] == "inferior"
    assert finding.checks["bone"] >= 0.5 and finding.checks["canal"] >= 0.5  # a real body: only the cut refuses it
    assert finding.confidence <= 0.49
