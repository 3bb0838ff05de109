"""Paths of the test data shipped in ``Testing/Data`` (see ``Testing/Data/README.md``).

Tests import it as ``from testdata import real``; ``Testing/Python`` must be on ``sys.path``
(the test ``conftest.py`` adds it; by hand: ``PYTHONPATH=Testing/Python pytest``).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import numpy as np

TESTING_DATA = Path(__file__).resolve().parents[1] / "Data"
REAL_DATA = TESTING_DATA / "real"
BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark(name: str):
    """The script ``benchmarks/<name>.py`` imported as a module (the benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def real(*parts: str) -> Path:
    """Path of a real-data file, e.g. ``real("verse", "sub-verse004_seg-vert_msk.nii.gz")``.

    Raises:
        FileNotFoundError: if the file is not in ``Testing/Data/real``.

    """
    path = REAL_DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data {path} is missing (see Testing/Data/README.md)")
    return path


def box_keypoints(centre, heights=(25.0, 25.0, 25.0), depth=30.0) -> np.ndarray:
    """Six LPS keypoints of a vertebral body centred at ``centre`` with heights (ha, hm, hp).

    Anterior is -y in LPS; superior is +z. Points follow ``genant.KEYPOINT_NAMES``.
    """
    x, y, z = (float(c) for c in centre)
    rows = []
    for offset, height in zip((-depth / 2, 0.0, depth / 2), heights):
        rows += [[x, y + offset, z + height / 2], [x, y + offset, z - height / 2]]
    return np.array(rows, dtype=float)


def drawn_mask_ct(folder: Path, parts: tuple, seed: int, slice_mm: float):
    """A real vertebra mask (``real(*parts)``) drawn as a CT by ``synth.generate_from_mask`` at 1 mm pixels and
    ``slice_mm`` slices (as ``benchmarks/bench_real_shapes.py`` draws it), written to ``folder``.

    Returns:
        ``(case, path)``: the :class:`~VertebralFractureLib.synth.generator.SyntheticCase` and the CT file.
    """
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.synth import generate_from_mask

    case = generate_from_mask(read_image(real(*parts)), seed, spacing=(1.0, 1.0, slice_mm), fov_xy_mm=(300.0, 260.0))
    path = Path(folder) / f"drawn_{seed}_{slice_mm:g}mm.nii.gz"
    sitk.WriteImage(case.ct, str(path))
    return case, path


def write_ct_series(source, folder: Path, *, study_uid: str, series_uid: str, patient_id: str = "SYNTH-0042",
                    patient_name: str = "Synthetic^Spine", series_number: int = 1, description: str = "",
                    image_type=("ORIGINAL", "PRIMARY", "AXIAL"), sop_class: str = "", every: int = 1,
                    first: int = 0, slice_shift=(0.0, 0.0, 0.0)) -> List[str]:
    """Write a CT (a NIfTI path or SimpleITK image) as a DICOM CT series with pydicom, one file per slice.

    Geometry is kept (every ``every``-th slice from ``first``: a thicker series of the same scan); UIDs, patient and
    Image Type are the caller's; ``sop_class`` defaults to CT Image Storage; ``slice_shift`` (LPS mm) is added to
    the n-th file's Image Position (Patient) n times (a gantry tilt). Returns the SOP Instance UIDs in slice order.
    """
    import SimpleITK as sitk
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    image = sitk.ReadImage(str(source)) if isinstance(source, (str, Path)) else source
    array = sitk.GetArrayFromImage(image).astype(np.int16)
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    assert np.linalg.det(direction) > 0  # slices stacked along the normal of the row and column directions
    spacing = image.GetSpacing()
    frame_of_reference = generate_uid()
    folder.mkdir(parents=True, exist_ok=True)
    uids = []
    for n, k in enumerate(range(first, array.shape[0], every)):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = sop_class or CTImageStorage
        ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.FrameOfReferenceUID = frame_of_reference
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = patient_name, patient_id, "", "O"
        ds.StudyDate, ds.StudyTime, ds.StudyID = "20240101", "120000", "1"
        ds.AccessionNumber, ds.ReferringPhysicianName = "", ""
        ds.Modality, ds.Manufacturer, ds.SeriesNumber, ds.InstanceNumber = "CT", "test", series_number, n + 1
        ds.SeriesDescription = description
        ds.ImageType = list(image_type)
        ds.ImageOrientationPatient = [float(v) for v in (*direction[:, 0], *direction[:, 1])]
        ds.ImagePositionPatient = [float(v) for v in np.asarray(image.GetOrigin()) + k * spacing[2] * direction[:, 2]
                                   + n * np.asarray(slice_shift, dtype=float)]
        ds.PixelSpacing, ds.SliceThickness = [spacing[1], spacing[0]], spacing[2] * every
        ds.Rows, ds.Columns = array.shape[1], array.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "HU"
        ds.PixelData = array[k].tobytes()
        ds.save_as(folder / f"CT{series_number:03d}_{n:04d}.dcm", enforce_file_format=True)
        uids.append(ds.SOPInstanceUID)
    return uids


def write_enhanced_ct(series_folder: Path, target: Path, *, modality: str = "CT",
                      slice_thickness: Optional[float] = None, head_first: bool = False) -> Path:
    """The single-frame CT series in ``series_folder`` (:func:`write_ct_series`) as one Legacy Converted Enhanced CT
    file (highdicom; frames in the series' order, each frame's position in its functional groups), as a scanner that
    stores a series in one multi-frame file exports it. ``modality`` replaces the Modality; ``slice_thickness`` the
    Pixel Measures macro's Slice Thickness; ``head_first`` stores the frames in the reverse order. Returns ``target``.
    """
    import highdicom as hd
    import pydicom
    from highdicom.legacy import LegacyConvertedEnhancedCTImage

    slices = sorted((pydicom.dcmread(f) for f in Path(series_folder).glob("*.dcm")), key=lambda d: d.InstanceNumber,
                    reverse=head_first)
    enhanced = LegacyConvertedEnhancedCTImage(legacy_datasets=slices, series_instance_uid=slices[0].SeriesInstanceUID,
                                              series_number=int(slices[0].SeriesNumber), sop_instance_uid=hd.UID(),
                                              instance_number=1)
    enhanced.Modality = modality
    if slice_thickness is not None:
        enhanced.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness = slice_thickness
        for frame in enhanced.PerFrameFunctionalGroupsSequence:
            if "PixelMeasuresSequence" in frame:
                frame.PixelMeasuresSequence[0].SliceThickness = slice_thickness
    target.parent.mkdir(parents=True, exist_ok=True)
    enhanced.save_as(target)
    return target


def write_dx(path, pixel_spacing=None, imager_pixel_spacing=None, magnification=None, rows=40, cols=50,
            pixels=None, patient_orientation=None, view_position=None):
    """A Digital X-Ray (DX) DICOM file written with pydicom, with only the spacing attributes asked for."""
    import pytest

    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image Storage - For Presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "DX", "Lateral^Spine", "1"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if pixel_spacing is not None:
        ds.PixelSpacing = list(pixel_spacing)  # (0028,0030), row \ column
    if imager_pixel_spacing is not None:
        ds.ImagerPixelSpacing = list(imager_pixel_spacing)  # (0018,1164), row \ column, at the detector
    if magnification is not None:
        ds.EstimatedRadiographicMagnificationFactor = magnification  # (0018,1114), SID / SOD
    if patient_orientation is not None:
        ds.PatientOrientation = list(patient_orientation)  # (0020,0020), row direction \\ column direction
    if view_position is not None:
        ds.ViewPosition = view_position  # (0018,5101), AP / PA / LL / RL / RLO / LLO
    data = (np.arange(rows * cols).reshape(rows, cols) % 251) * 16 if pixels is None else pixels
    data = np.asarray(data, dtype=np.uint16)
    ds.PixelData = data.tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path
