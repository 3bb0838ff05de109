"""DICOM SEG and SR (TID 1500) of a real analysis of a real CT written as a DICOM series, read back with highdicom.

The series is the bundled sample CT (TotalSegmentator example, ``Testing/Data/real/totalsegmentator``) written
slice by slice with pydicom under synthetic UIDs and a synthetic patient; the analysis is the real one
(centre-line, keypoints, quality gate, body masks) read from that folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid
from testdata import real, write_ct_series, write_enhanced_ct

from VertebralFractureLib.export.dicom_outputs import (
    LOCAL_SCHEME,
    SEG_NAME,
    SR_NAME,
    DicomOutputError,
    write_dicom_outputs,
    write_dicom_seg,
    write_dicom_sr,
)
from VertebralFractureLib.io.atomic import ExistingFileError
from VertebralFractureLib.levels import label_from_level
from VertebralFractureLib.pipeline import AnalysisOptions, analyze

STUDY_UID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
SERIES_UID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")
PATIENT_NAME, PATIENT_ID = "Synthetic^Spine", "SYNTH-0042"


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """The DICOM series, its real analysis, ``results.json`` as written, and the DICOM outputs."""
    root = tmp_path_factory.mktemp("dicom_case")
    write_ct_series(real("totalsegmentator", "example_ct.nii.gz"), root / "series", study_uid=STUDY_UID,
                    series_uid=SERIES_UID, patient_name=PATIENT_NAME, patient_id=PATIENT_ID)
    analysis = analyze(root / "series", AnalysisOptions(extra_stages=(), device="cpu", threads=1))
    results = json.loads(analysis.result.to_json())
    written = write_dicom_outputs(analysis, root / "series", root / "dicom")
    return {"root": root, "analysis": analysis, "results": results, "written": written}


def test_results_json_keeps_the_study_and_series_uids_and_no_identity(case):
    results = case["results"]
    assert results["input"]["study_uid"] == STUDY_UID
    assert results["input"]["series_uid"] == SERIES_UID
    text = json.dumps(results)
    assert PATIENT_NAME not in text and "Synthetic" not in text and PATIENT_ID not in text


def test_the_real_analysis_gives_assessed_and_not_assessed_vertebrae(case):
    statuses = {v["label"]: v["status"] for v in case["results"]["vertebrae"]}
    assert {"assessed", "not_assessed"} <= set(statuses.values())  # both kinds reach the SEG and SR below
    assert case["written"] == {"seg": case["root"] / "dicom" / SEG_NAME, "sr": case["root"] / "dicom" / SR_NAME}


def test_seg_has_one_segment_per_vertebra_with_its_snomed_code_and_references_the_series(case):
    seg = hd.seg.segread(case["written"]["seg"])
    levels = [v["label"] for v in case["results"]["vertebrae"]]
    labels = sitk.GetArrayFromImage(case["analysis"].labels)
    with_mask = [level for level in levels if np.any(labels == label_from_level(level))]
    assert [(int(s.SegmentNumber), s.SegmentLabel) for s in seg.SegmentSequence] == list(enumerate(with_mask, 1))
    assert with_mask[:2] == ["T12", "L1"]
    for segment in seg.SegmentSequence:
        kind = segment.SegmentedPropertyTypeCodeSequence[0]
        expected = getattr(codes.SCT, f"{segment.SegmentLabel}Vertebra")  # pydicom's copy of DICOM CID 7603
        assert (kind.CodeValue, kind.CodingSchemeDesignator, kind.CodeMeaning) == (
            expected.value, "SCT", f"{segment.SegmentLabel} vertebra")
        category = segment.SegmentedPropertyCategoryCodeSequence[0]
        assert (category.CodeValue, category.CodeMeaning) == ("91723000", "Anatomical Structure")
        algorithm = segment.SegmentationAlgorithmIdentificationSequence[0]
        assert segment.SegmentAlgorithmType == "AUTOMATIC"
        assert (algorithm.AlgorithmName, algorithm.AlgorithmVersion) == ("VertebralFracture", "0.1.0")
        assert "keypoints.pt" in algorithm.AlgorithmParameters
    assert seg.StudyInstanceUID == STUDY_UID
    assert [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence] == [SERIES_UID]
    # the masks, voxel for voxel, on the source slices
    files = sorted((case["root"] / "series").glob("*.dcm"))
    uids = [pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID for f in files]
    back = seg.get_pixels_by_source_instance(uids, combine_segments=True, skip_overlap_checks=True)
    expected = np.zeros(labels.shape, np.uint8)
    for number, level in enumerate(with_mask, 1):
        expected[labels == label_from_level(level)] = number
    assert np.array_equal(back, expected)  # the files are written in slice order k = 0, 1, ...


def _groups(sr):
    content = sr.content
    groups = content.get_volumetric_roi_measurement_groups() + content.get_image_measurement_groups()
    return {group.tracking_identifier: group for group in groups}


def test_sr_holds_heights_g_grade_type_status_and_verdict_of_every_vertebra_as_in_results_json(case):
    sr = hd.sr.srread(case["written"]["sr"])
    seg = pydicom.dcmread(case["written"]["seg"])
    segment_of = {s.SegmentLabel: int(s.SegmentNumber) for s in seg.SegmentSequence}
    groups = _groups(sr)
    vertebrae = case["results"]["vertebrae"]
    assert sorted(groups) == sorted(f"vertebra {v['label']}" for v in vertebrae)
    for v in vertebrae:
        group = groups[f"vertebra {v['label']}"]
        site = group.finding_sites[0].value
        assert (site.scheme_designator, site.meaning) == ("SCT", f"{v['label']} vertebra")
        values = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
        evaluations = {q.name.meaning: q.value.meaning for q in group.get_qualitative_evaluations()}
        assert evaluations["Assessment status"] == v["status"].replace("_", " ")
        assert evaluations["Verdict"] == v["verdict"]
        reason = [item.TextValue for item in group[0].ContentSequence
                  if item.ValueType == "TEXT" and item.ConceptNameCodeSequence[0].CodeValue == "VF-REASON"]
        assert reason == [v["verdict_reason"]]
        if "genant" in v:
            heights = v["heights_mm"]
            assert values["Anterior vertebral body height"] == (pytest.approx(heights["anterior"], abs=1e-9), "mm")
            assert values["Middle vertebral body height"] == (pytest.approx(heights["middle"], abs=1e-9), "mm")
            assert values["Posterior vertebral body height"] == (pytest.approx(heights["posterior"], abs=1e-9), "mm")
            assert values["Genant index G (min/max height)"] == (pytest.approx(v["genant"]["G"], abs=1e-12), "1")
            assert values["Genant grade"] == (v["genant"]["grade"], "1")
            expected_type = "no deformity" if v["genant"]["type"] == "none" else v["genant"]["type"]
            assert evaluations["Genant deformity type"] == expected_type
        else:
            assert values == {} and "Genant deformity type" not in evaluations
        if v["label"] in segment_of:
            referenced = group.referenced_segment
            assert referenced.referenced_sop_instance_uid == seg.SOPInstanceUID
            assert referenced.referenced_segment_numbers == [segment_of[v["label"]]]
    assert [(v["label"], v["verdict"]) for v in vertebrae if v["verdict"] != "normal"]  # not all trivially normal


def test_sr_references_the_source_series_and_the_seg_and_declares_its_local_codes(case):
    sr = hd.sr.srread(case["written"]["sr"])
    assert sr.StudyInstanceUID == STUDY_UID
    assert sr.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    evidence = {series.SeriesInstanceUID: len(series.ReferencedSOPSequence)
                for study in sr.CurrentRequestedProcedureEvidenceSequence for series in study.ReferencedSeriesSequence}
    seg = pydicom.dcmread(case["written"]["seg"])
    assert evidence == {SERIES_UID: 112, seg.SeriesInstanceUID: 1}
    assert [item.CodingSchemeDesignator for item in sr.CodingSchemeIdentificationSequence] == [LOCAL_SCHEME]


def test_seg_and_sr_written_one_by_one_without_a_seg_use_tid_1501_groups(case, tmp_path):
    analysis, series = case["analysis"], case["root"] / "series"
    write_dicom_seg(analysis, series, analysis.labels, tmp_path / "seg.dcm")
    write_dicom_sr(analysis.result, series, tmp_path / "sr.dcm")
    sr = hd.sr.srread(tmp_path / "sr.dcm")
    assert len(sr.content.get_image_measurement_groups()) == len(case["results"]["vertebrae"])
    assert sr.content.get_volumetric_roi_measurement_groups() == []
    with pytest.raises(ExistingFileError, match=r"sr\.dcm exists; refusing to overwrite it"):
        write_dicom_sr(analysis.result, series, tmp_path / "sr.dcm")


@pytest.mark.parametrize("given", ["file", "folder"])
def test_an_enhanced_ct_source_gets_a_seg_whose_frames_follow_its_frames(case, tmp_path, given):
    """The same series stored as one enhanced (multi-frame) CT file, frames head first (the reverse of the slices'
    order): the SEG references each of its frames and holds that frame's masks."""
    enhanced = write_enhanced_ct(case["root"] / "series", tmp_path / "export" / "ct.dcm", head_first=True)
    written = write_dicom_outputs(case["analysis"], enhanced if given == "file" else enhanced.parent, tmp_path / "out")
    seg = hd.seg.segread(written["seg"])
    source = pydicom.dcmread(enhanced, stop_before_pixels=True)
    assert [s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence] == [SERIES_UID]
    frames = int(source.NumberOfFrames)
    back = seg.get_pixels_by_source_frame(source.SOPInstanceUID, list(range(1, frames + 1)), combine_segments=True,
                                          skip_overlap_checks=True, assert_missing_frames_are_empty=True)
    labels = sitk.GetArrayFromImage(case["analysis"].labels)
    expected = np.zeros(labels.shape, np.uint8)
    for segment in seg.SegmentSequence:
        expected[labels == label_from_level(segment.SegmentLabel)] = int(segment.SegmentNumber)
    assert expected.any() and np.array_equal(back, expected[::-1])  # frame 1 is the most cranial slice
    groups = _groups(hd.sr.srread(written["sr"]))
    assert sorted(groups) == sorted(f"vertebra {v['label']}" for v in case["results"]["vertebrae"])


def test_a_nifti_input_is_refused_with_one_clear_line(case, tmp_path):
    nifti = real("totalsegmentator", "example_ct.nii.gz")
    message = (f"{nifti}: --dicom-out needs the CT as a DICOM series folder; this input is a file "
               "(NIfTI/NRRD/MHA), so there is no DICOM series for a SEG or SR to reference")
    with pytest.raises(DicomOutputError, match="^" + message.replace("(", r"\(").replace(")", r"\)") + "$"):
        write_dicom_outputs(case["analysis"], nifti, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_result_of_another_series_is_never_written_against_this_one(case, tmp_path):
    result = case["analysis"].result
    other = type(result).from_dict({**case["results"], "input": {**case["results"]["input"], "series_uid": "1.2.3"}})
    with pytest.raises(DicomOutputError, match=r"holds no DICOM series 1\.2\.3 \(the series the result was measured"):
        write_dicom_sr(other, case["root"] / "series", tmp_path / "sr.dcm")
    datasets = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted((case["root"] / "series").glob("*"))]
    with pytest.raises(DicomOutputError, match=rf"measured on series 1\.2\.3, not on the source series {SERIES_UID}"):
        write_dicom_sr(other, datasets, tmp_path / "sr.dcm")
    assert not (tmp_path / "sr.dcm").exists()


def test_existing_dicom_outputs_are_kept_without_overwrite(case):
    expected = r"already holds segmentation\.dcm, measurements_sr\.dcm; pass --overwrite"
    before = case["written"]["sr"].read_bytes()
    with pytest.raises(ExistingFileError, match=expected):
        write_dicom_outputs(case["analysis"], case["root"] / "series", case["root"] / "dicom")
    assert case["written"]["sr"].read_bytes() == before


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (Debian package dicom3tools) not installed")
def test_dciodvfy_finds_no_error(case):
    for path in case["written"].values():
        report = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, check=False)
        lines = (report.stdout + report.stderr).splitlines()
        assert [line for line in lines if line.startswith("Error")] == []
        # the only warnings: the private coding scheme of the concepts DICOM has no code for
        assert {line for line in lines if line.startswith("Warning")} <= {
            f"Warning - Unrecognized defined term <{LOCAL_SCHEME}> for value 1 of attribute <Coding Scheme Designator>"}
