"""Results back to PACS: a DICOM Segmentation of the vertebral bodies and a TID 1500 measurement report.

Both objects are made with highdicom (optional extra ``dicom``: ``pip install "vertebral-fracture[dicom]"``) and
reference the source CT series they were measured on:

* ``segmentation.dcm`` -- DICOM SEG (binary), one segment per vertebra with a mask, segment label the level name,
  category "Anatomical Structure" and type the SNOMED CT code of that vertebra (:data:`VERTEBRA_CODES`), algorithm
  identification with this package's version and the model ids of the analysis.
* ``measurements_sr.dcm`` -- Comprehensive 3D SR, TID 1500 Measurement Report, one measurement group per vertebra
  (TID 1411 referencing its SEG segment where it has one, TID 1501 otherwise) with the three heights (mm), G, the
  Genant grade, type, status and verdict (:mod:`VertebralFractureLib.verdict`) and the verdict's reason as text.

What is copied from the source series: highdicom copies the patient and study attributes of the source images
into both objects, as DICOM requires for a PACS to file them with their exam -- Patient's Name, Patient ID, Birth
Date, Sex, Age, Patient Identity Removed and clinical-trial attributes when present, Study Instance UID, Study
Date and Time, Accession Number, Referring Physician, Study ID and Study Description (the list measured on the
real ``cptac_chest`` series). Both objects reference the source series and its SOP Instance UIDs; the SEG also
copies the Frame of Reference UID and the slice geometry. No identity enters ``results.json`` (only the study
and series UIDs, see :func:`VertebralFractureLib.pipeline.input_description`).

Codes without a standard equivalent (the three heights, G, the Genant grade, type, status and verdict) use the
local coding scheme :data:`LOCAL_SCHEME` ("99" prefix: a private scheme, PS3.3 §8.2), declared in each SR's
Coding Scheme Identification Sequence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import __version__
from ..io.atomic import AtomicSet, IncompleteWriteError
from ..levels import label_from_level
from ..schema import SpineResult
from ..validation import InputError

PathLike = Union[str, Path]

#: File names written by :func:`write_dicom_outputs`.
SEG_NAME = "segmentation.dcm"
SR_NAME = "measurements_sr.dcm"
DICOM_OUTPUT_FILES = (SEG_NAME, SR_NAME)
#: Series numbers of the derived series (the source series keeps its own).
SEG_SERIES_NUMBER = 9901
SR_SERIES_NUMBER = 9902
MANUFACTURER = "VertebralFracture developers"
MODEL_NAME = "VertebralFracture"

#: SNOMED CT code (value, meaning) of each vertebra: DICOM PS3.16 CID 7603 "Vertebra"
#: (OID 1.2.840.10008.6.1.1434, C1-L5; also listed under CID 7151/7192 segmentation property types), as shipped in
#: pydicom's ``pydicom.sr.codedict.codes.SCT`` (``codes.SCT.L1Vertebra`` ...) and in the FHIR rendering of the DICOM
#: value sets (github.com/bvdh/dicom-terminology-in-fhir, ``ValueSet-dicom-cid-7603-Vertebra.fsh``).
#: S1 (VerSe label 26, the sacrum) is SCT 54735007 "Sacrum" (CID 7151); the transitional T13 and L6 have no code
#: of their own and get SCT 51282000 "Vertebra" (CID 7151), the segment label naming the level.
VERTEBRA_CODES: Dict[str, Tuple[str, str]] = {
    "C1": ("14806007", "C1 vertebra"), "C2": ("39976000", "C2 vertebra"), "C3": ("113205007", "C3 vertebra"),
    "C4": ("5329002", "C4 vertebra"), "C5": ("36978003", "C5 vertebra"), "C6": ("36054005", "C6 vertebra"),
    "C7": ("87391001", "C7 vertebra"),
    "T1": ("64864005", "T1 vertebra"), "T2": ("53733008", "T2 vertebra"), "T3": ("1626008", "T3 vertebra"),
    "T4": ("73071006", "T4 vertebra"), "T5": ("56401006", "T5 vertebra"), "T6": ("45296009", "T6 vertebra"),
    "T7": ("62487009", "T7 vertebra"), "T8": ("11068009", "T8 vertebra"), "T9": ("82687006", "T9 vertebra"),
    "T10": ("7610001", "T10 vertebra"), "T11": ("12989004", "T11 vertebra"), "T12": ("23215003", "T12 vertebra"),
    "L1": ("66794005", "L1 vertebra"), "L2": ("14293000", "L2 vertebra"), "L3": ("36470004", "L3 vertebra"),
    "L4": ("11994002", "L4 vertebra"), "L5": ("49668003", "L5 vertebra"),
    "S1": ("54735007", "Sacrum"),
}
#: Code of a vertebra without a level code of its own (T13, L6): SCT "Vertebra" (CID 7151).
GENERIC_VERTEBRA = ("51282000", "Vertebra")
#: Segmentation property category (CID 7150): SCT 91723000 "Anatomical Structure".
ANATOMICAL_STRUCTURE = ("91723000", "Anatomical Structure")

#: The private coding scheme of the concepts DICOM has no code for.
LOCAL_SCHEME = "99VRTFX"
LOCAL_SCHEME_NAME = "VertebralFracture local codes"
#: Local concept names: key -> (code value, code meaning).
LOCAL_CONCEPTS: Dict[str, Tuple[str, str]] = {
    "anterior": ("VF-HA", "Anterior vertebral body height"),
    "middle": ("VF-HM", "Middle vertebral body height"),
    "posterior": ("VF-HP", "Posterior vertebral body height"),
    "G": ("VF-G", "Genant index G (min/max height)"),
    "grade": ("VF-GRADE", "Genant grade"),
    "type": ("VF-TYPE", "Genant deformity type"),
    "status": ("VF-STATUS", "Assessment status"),
    "verdict": ("VF-VERDICT", "Verdict"),
    "reason": ("VF-REASON", "Verdict reason"),
}
#: Local codes of the coded values: status, verdict and deformity type.
LOCAL_VALUES: Dict[str, Tuple[str, str]] = {
    "assessed": ("VF-ASSESSED", "assessed"),
    "not_assessed": ("VF-NOT-ASSESSED", "not assessed"),
    "fracture": ("VF-FRACTURE", "fracture"),
    "review": ("VF-REVIEW", "review"),
    "normal": ("VF-NORMAL", "normal"),
    "not assessed": ("VF-NOT-ASSESSED", "not assessed"),
    "none": ("VF-TYPE-NONE", "no deformity"),
    "wedge": ("VF-WEDGE", "wedge"),
    "biconcave": ("VF-BICONCAVE", "biconcave"),
    "crush": ("VF-CRUSH", "crush"),
}


class DicomOutputError(InputError):
    """A DICOM output that cannot be made (no DICOM source, a source that does not match the result...)."""


def not_dicom_message(source: PathLike) -> str:
    """The one line refusing a DICOM output for an input that is not a DICOM series folder."""
    return (f"{source}: --dicom-out needs the CT as a DICOM series folder; this input is a file "
            "(NIfTI/NRRD/MHA), so there is no DICOM series for a SEG or SR to reference")


def is_dicom_source(source: PathLike) -> bool:
    """Whether a SEG and an SR can reference ``source``: a DICOM series folder, or an enhanced CT file.

    An enhanced (multi-frame) CT holds the whole series in one file (:mod:`VertebralFractureLib.io.multiframe`).
    """
    from ..io.images import read_header
    from ..io.multiframe import frame_count

    path = Path(source)
    return path.is_dir() or (path.is_file() and frame_count(read_header(path)) > 1)


def _frame_count(ds) -> int:
    try:
        return int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _slice_count(datasets: Sequence[Any]) -> int:
    """Slices of the source: one per single-frame dataset, or the frames of one enhanced (multi-frame) CT."""
    return _frame_count(datasets[0]) if len(datasets) == 1 else len(datasets)


def _slice_positions(datasets: Sequence[Any]) -> List[Tuple[str, List[float]]]:
    """(what to name it, Image Position (Patient)) of each slice of the source, in its order.

    Each single-frame dataset's own, or each frame's from the functional groups of one enhanced CT (its Plane Position
    macro).
    """
    from ..io.multiframe import frame_geometry_of

    ds = datasets[0]
    if len(datasets) > 1 or _frame_count(ds) == 1:
        return [(str(d.SOPInstanceUID), [float(v) for v in d.ImagePositionPatient]) for d in datasets]
    geometry = frame_geometry_of(ds)
    if geometry is None:
        raise DicomOutputError(f"the multi-frame source {ds.SOPInstanceUID} gives no position for each frame in its "
                               "functional groups; no SEG can reference its frames")
    return [(f"{ds.SOPInstanceUID} frame {number}", [float(v) for v in position])
            for number, position in enumerate(geometry.positions, start=1)]


def _hd():
    try:
        import highdicom
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise DicomOutputError(
            'DICOM outputs need highdicom: pip install "vertebral-fracture[dicom]"'
        ) from None
    return highdicom


def vertebra_code(level: str):
    """The SNOMED CT code of a vertebra level (:data:`VERTEBRA_CODES`, generic "Vertebra" for T13/L6)."""
    from pydicom.sr.coding import Code

    value, meaning = VERTEBRA_CODES.get(level, GENERIC_VERTEBRA)
    return Code(value, "SCT", meaning)


def _local(key: str, table: Dict[str, Tuple[str, str]] = LOCAL_CONCEPTS):
    from pydicom.sr.coding import Code

    value, meaning = table[key]
    return Code(value, LOCAL_SCHEME, meaning)


# ---------------------------------------------------------------------------------------------- source series
def load_source_series(source: Union[PathLike, Sequence[Any]], series_uid: Optional[str] = None) -> List[Any]:
    """The pydicom datasets (headers, no pixel data) of the source CT series, in slice order.

    Args:
        source: a DICOM series folder (searched as :func:`~VertebralFractureLib.io.images.read_image` does), or
            datasets already read.
        series_uid: the series to take when the folder holds several (the result's ``input.series_uid``).

    Raises:
        DicomOutputError: for a file (NIfTI...), a folder without that series, or datasets of several series.
    """
    import pydicom

    if isinstance(source, (str, Path)):
        from ..io.images import dicom_series_in

        folder = Path(source)
        if folder.is_file() and is_dicom_source(folder):  # an enhanced (multi-frame) CT file
            return load_source_series([pydicom.dcmread(str(folder), stop_before_pixels=True)], series_uid)
        if not folder.is_dir():
            raise DicomOutputError(not_dicom_message(folder))
        series = dicom_series_in(folder)
        if series_uid is not None and series_uid not in series:
            raise DicomOutputError(f"{folder}: holds no DICOM series {series_uid} (the series the result was "
                                   f"measured on); it holds {', '.join(sorted(series)) or 'no DICOM series'}")
        if series_uid is None and len(series) != 1:
            raise DicomOutputError(f"{folder}: holds {len(series)} DICOM series; the result names none of them")
        files = series[series_uid] if series_uid is not None else next(iter(series.values()))
        datasets = [pydicom.dcmread(name, stop_before_pixels=True) for name in files]
    else:
        datasets = list(source)
    uids = {str(ds.SeriesInstanceUID) for ds in datasets}
    if len(uids) != 1:
        raise DicomOutputError(f"the source datasets belong to {len(uids)} series; one CT series is expected")
    if len(datasets) == 1 and _frame_count(datasets[0]) > 1:
        return datasets  # an enhanced CT: its frames keep the file's order, which the SEG's frames follow
    normal = _slice_normal(datasets[0])
    return sorted(datasets, key=lambda ds: float(np.dot(np.asarray(ds.ImagePositionPatient, float), normal)))


def _slice_normal(ds) -> np.ndarray:
    cosines = np.asarray(ds.ImageOrientationPatient, float)
    return np.cross(cosines[:3], cosines[3:])


def _check_same_series(result: SpineResult, datasets: Sequence[Any]) -> None:
    """Refuse to write one series' result against another series (one patient's result never under another's)."""
    uid = str(datasets[0].SeriesInstanceUID)
    measured_on = result.input.get("series_uid")
    if measured_on is not None and measured_on != uid:
        raise DicomOutputError(f"the result was measured on series {measured_on}, not on the source series {uid}")
    size = result.input.get("size")
    slices = _slice_count(datasets)
    if size is not None and list(size) != [int(datasets[0].Columns), int(datasets[0].Rows), slices]:
        raise DicomOutputError(f"the result's image size {list(size)} does not match the source series "
                               f"({datasets[0].Columns} x {datasets[0].Rows} x {slices} slices)")


def _frames(labels_image, datasets: Sequence[Any]) -> np.ndarray:
    """The label array with one frame per source slice, checked against the slices' positions.

    The frames follow the source's order: the datasets', or an enhanced CT's frames.
    """
    import SimpleITK as sitk

    array = sitk.GetArrayFromImage(labels_image)
    size = labels_image.GetSize()
    slices = _slice_count(datasets)
    if tuple(size) != (int(datasets[0].Columns), int(datasets[0].Rows), slices):
        raise DicomOutputError(f"the label image (size {tuple(size)}) is not on the source series' grid "
                               f"({datasets[0].Columns} x {datasets[0].Rows} x {slices} slices)")
    frames = np.zeros_like(array)
    used = set()
    for position, (name, point) in enumerate(_slice_positions(datasets)):
        index = labels_image.TransformPhysicalPointToContinuousIndex(point)
        k = int(round(index[2]))
        if max(abs(index[0]), abs(index[1]), abs(index[2] - k)) > 0.05 or not 0 <= k < size[2] or k in used:
            raise DicomOutputError(f"source slice {name} at {point} mm is not "
                                   "a slice of the label image; the label image was made on another series")
        used.add(k)
        frames[position] = array[k]
    return frames


# ------------------------------------------------------------------------------------------------------- SEG
def _result_of(analysis_or_result: Any) -> SpineResult:
    return analysis_or_result.result if hasattr(analysis_or_result, "result") else analysis_or_result


def _algorithm_parameters(result: SpineResult) -> Dict[str, str]:
    return {str(k): str(v)[:64] for k, v in sorted(result.models.items())}


def build_dicom_seg(analysis_or_result: Any, source_series: Union[PathLike, Sequence[Any]], labels_image=None):
    """The DICOM Segmentation dataset of the vertebral bodies (see :func:`write_dicom_seg`)."""
    hd = _hd()
    from pydicom.sr.codedict import codes
    from pydicom.sr.coding import Code

    result = _result_of(analysis_or_result)
    if labels_image is None:
        labels_image = getattr(analysis_or_result, "labels", None)
    if labels_image is None:
        raise DicomOutputError("no vertebral-body label image to write as a DICOM SEG (the mask stage did not run)")
    datasets = load_source_series(source_series, result.input.get("series_uid"))
    _check_same_series(result, datasets)
    frames = _frames(labels_image, datasets)
    present = set(np.unique(frames).tolist()) - {0}
    numbered = [v.label for v in result.vertebrae if label_from_level(v.label) in present]
    if not numbered:
        raise DicomOutputError("the label image holds no voxel of any vertebra of the result; no SEG to write")
    pixel_array = np.zeros(frames.shape, np.uint8 if len(numbered) < 256 else np.uint16)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=MODEL_NAME, family=codes.cid7162.ArtificialIntelligence, version=__version__,
        parameters=_algorithm_parameters(result) or None)
    descriptions = []
    for number, level in enumerate(numbered, start=1):
        pixel_array[frames == label_from_level(level)] = number
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=level,
            segmented_property_category=Code(ANATOMICAL_STRUCTURE[0], "SCT", ANATOMICAL_STRUCTURE[1]),
            segmented_property_type=vertebra_code(level),
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
            tracking_id=f"vertebra {level}", tracking_uid=hd.UID()))
    return hd.seg.Segmentation(
        source_images=datasets, pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY, segment_descriptions=descriptions,
        series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=MODEL_NAME,
        software_versions=__version__, device_serial_number="none (software)",
        series_description="Vertebral bodies (VertebralFracture)", content_label="VERTEBRAE",
        content_description="Vertebral bodies, one segment per level")


def _coding_schemes():
    hd = _hd()
    return [hd.coding_schemes.CodingSchemeIdentificationItem(
        designator=LOCAL_SCHEME, name=LOCAL_SCHEME_NAME, responsible_organization=MANUFACTURER)]


def write_dicom_seg(analysis_or_result: Any, source_series: Union[PathLike, Sequence[Any]], labels_image,
                    out_path: PathLike, *, overwrite: bool = False) -> Path:
    """Write a DICOM Segmentation of the vertebral bodies referencing the source CT series.

    One binary segment per vertebra that has voxels in ``labels_image``, in cranio-caudal order (segment 1 is
    the most cranial); segment label = level name, property type = its SNOMED CT code (:data:`VERTEBRA_CODES`),
    algorithm identification = this package's name, version and the analysis' model ids.

    Args:
        analysis_or_result: an :class:`~VertebralFractureLib.stage.Analysis` or its :class:`SpineResult`.
        source_series: the DICOM series folder the result was measured on, or its pydicom datasets.
        labels_image: the VerSe label image on the source grid (None: ``analysis.labels``).
        out_path: the ``.dcm`` file to write (atomically).
        overwrite: replace an existing file.

    Raises:
        DicomOutputError: no DICOM source, a source or label image that does not match the result, no mask.
    """
    seg = build_dicom_seg(analysis_or_result, source_series, labels_image)
    return _save(seg, Path(out_path), overwrite)


# -------------------------------------------------------------------------------------------------------- SR
def _measurement_group(hd, vertebra, algorithm, segment_number: Optional[int], seg):
    from pydicom.sr.codedict import codes

    measurements = []
    if vertebra.measure is not None:
        m = vertebra.measure
        for key, height in zip(("anterior", "middle", "posterior"), m.heights):
            measurements.append(hd.sr.Measurement(name=_local(key), value=float(height), unit=codes.UCUM.Millimeter,
                                                  algorithm_id=algorithm))
        measurements.append(hd.sr.Measurement(name=_local("G"), value=float(m.G), unit=codes.UCUM.NoUnits,
                                              algorithm_id=algorithm))
        measurements.append(hd.sr.Measurement(name=_local("grade"), value=int(m.grade), unit=codes.UCUM.NoUnits,
                                              algorithm_id=algorithm))
    verdict, reason = vertebra.verdict()
    evaluations = [hd.sr.QualitativeEvaluation(_local("status"), _local(vertebra.status, LOCAL_VALUES)),
                   hd.sr.QualitativeEvaluation(_local("verdict"), _local(verdict, LOCAL_VALUES))]
    if vertebra.measure is not None:
        evaluations.insert(0, hd.sr.QualitativeEvaluation(_local("type"), _local(vertebra.measure.type, LOCAL_VALUES)))
    common = dict(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier=f"vertebra {vertebra.label}"),
        finding_type=vertebra_code(vertebra.label),
        finding_sites=[hd.sr.FindingSite(vertebra_code(vertebra.label))],
        algorithm_id=algorithm, measurements=measurements or None, qualitative_evaluations=evaluations)
    if segment_number is not None:
        group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
            referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, segment_number), **common)
    else:
        group = hd.sr.MeasurementsAndQualitativeEvaluations(**common)
    group[0].ContentSequence.append(hd.sr.TextContentItem(
        name=_local("reason"), value=reason[:1024] or verdict, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS))
    return group


def build_dicom_sr(result: Any, source_series: Union[PathLike, Sequence[Any]], segmentation=None):
    """The TID 1500 Comprehensive 3D SR dataset (see :func:`write_dicom_sr`)."""
    hd = _hd()
    from pydicom.sr.codedict import codes

    result = _result_of(result)
    datasets = load_source_series(source_series, result.input.get("series_uid"))
    _check_same_series(result, datasets)
    if isinstance(segmentation, (str, Path)):
        import pydicom

        segmentation = pydicom.dcmread(segmentation)
    segment_numbers: Dict[str, int] = {}
    evidence = list(datasets)
    if segmentation is not None:
        referenced = {str(item.SeriesInstanceUID) for item in segmentation.ReferencedSeriesSequence}
        if str(datasets[0].SeriesInstanceUID) not in referenced:
            raise DicomOutputError("the DICOM SEG given references another series than the source series")
        segment_numbers = {str(item.SegmentLabel): int(item.SegmentNumber) for item in segmentation.SegmentSequence}
        evidence.append(segmentation)
    algorithm = hd.sr.AlgorithmIdentification(
        name=MODEL_NAME, version=__version__,
        parameters=[f"{k}: {v}"[:64] for k, v in _algorithm_parameters(result).items()] or None)
    groups = [_measurement_group(hd, v, algorithm, segment_numbers.get(v.label), segmentation)
              for v in result.vertebrae]
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name=MODEL_NAME, manufacturer_name=MANUFACTURER, model_name=MODEL_NAME))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=device),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=groups or None)
    return hd.sr.Comprehensive3DSR(
        evidence=evidence, content=report[0], series_instance_uid=hd.UID(), series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
        series_description="Vertebral fracture measurements (VertebralFracture)",
        coding_schemes=_coding_schemes())


def write_dicom_sr(result: Any, source_series: Union[PathLike, Sequence[Any]], out_path: PathLike, *,
                   segmentation=None, overwrite: bool = False) -> Path:
    """Write a TID 1500 measurement report (Comprehensive 3D SR) of every vertebra, referencing the source series.

    One measurement group per vertebra (tracking identifier ``vertebra L1``, finding site its SNOMED CT code):
    the anterior, middle and posterior heights (mm), G (no units) and the Genant grade (0-3) when measured; the
    Genant type; the status (assessed / not assessed) and the verdict, and the verdict's reason as text. With
    ``segmentation`` (the SEG of :func:`write_dicom_seg`) each group of a vertebra with a segment is a TID 1411
    volumetric group referencing that segment, and the SEG is part of the evidence.

    Args:
        result: the :class:`SpineResult` (or an Analysis).
        source_series: the DICOM series folder the result was measured on, or its pydicom datasets.
        out_path: the ``.dcm`` file to write (atomically).
        segmentation: the SEG dataset or file to reference, or None.
        overwrite: replace an existing file.

    Raises:
        DicomOutputError: no DICOM source, or a source or SEG that does not match the result.
    """
    sr = build_dicom_sr(result, source_series, segmentation)
    return _save(sr, Path(out_path), overwrite)


# ----------------------------------------------------------------------------------------------- writing
def _save_to(dataset, path: Path) -> None:
    """Save ``dataset`` and read it back (a file that does not parse is never renamed into place)."""
    import pydicom

    dataset.save_as(path, enforce_file_format=True)
    try:
        back = pydicom.dcmread(path)
        if back.SOPInstanceUID != dataset.SOPInstanceUID:
            raise ValueError("SOP Instance UID differs")
    except Exception as error:  # noqa: BLE001 - any parse failure means a bad file
        raise IncompleteWriteError(f"writing {path.name} failed: the DICOM file does not read back ({error})") from None


def _save(dataset, path: Path, overwrite: bool) -> Path:
    from ..io.atomic import atomic_path

    with atomic_path(path, overwrite=overwrite) as temporary:
        _save_to(dataset, temporary)
    return path


def write_dicom_outputs(analysis: Any, source_path: PathLike, out_dir: PathLike, *,
                        overwrite: bool = False) -> Dict[str, Path]:
    """Write ``segmentation.dcm`` (SEG) and ``measurements_sr.dcm`` (SR) of an analysis of a DICOM series.

    What ``vertebral-fracture analyze SERIES_FOLDER --dicom-out DIR`` calls after the analysis. Both files are
    written as one unit (:class:`~VertebralFractureLib.io.atomic.AtomicSet`): both or neither. Without a label
    image (masks not drawn) only the SR is written.

    Args:
        analysis: the :class:`~VertebralFractureLib.stage.Analysis` of ``source_path``.
        source_path: the DICOM series folder that was analysed.
        out_dir: the folder to write into (created if needed).
        overwrite: replace existing DICOM outputs.

    Returns:
        ``{"seg": path, "sr": path}`` (``"seg"`` absent without a label image).

    Raises:
        DicomOutputError: for an input that is not a DICOM series folder (:func:`not_dicom_message`), or a
            source that does not match the analysis.
        ExistingFileError: if an output exists and ``overwrite`` is False (nothing is written).
    """
    from ..io.atomic import ExistingFileError

    source = Path(source_path)
    if not is_dicom_source(source):
        raise DicomOutputError(not_dicom_message(source))
    result = _result_of(analysis)
    datasets = load_source_series(source, result.input.get("series_uid"))
    out = Path(out_dir)
    existing = [name for name in DICOM_OUTPUT_FILES if (out / name).exists()]
    if existing and not overwrite:
        raise ExistingFileError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    seg = None
    if getattr(analysis, "labels", None) is not None:
        seg = build_dicom_seg(analysis, datasets, analysis.labels)
    sr = build_dicom_sr(result, datasets, seg)
    out.mkdir(parents=True, exist_ok=True)
    with AtomicSet(out, overwrite=overwrite, replaces=DICOM_OUTPUT_FILES if overwrite else ()) as files:
        if seg is not None:
            _save_to(seg, files.path(SEG_NAME))
        _save_to(sr, files.path(SR_NAME))
    kinds = {SEG_NAME: "seg", SR_NAME: "sr"}
    return {kinds[name]: path for name, path in files.written.items()}
