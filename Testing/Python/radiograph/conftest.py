"""Fixtures of the radiograph tests: a drawn lateral radiograph (bright boxes for bodies), DX DICOM files."""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib.training.radiograph.columns import Column

LEVELS = ("T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")


def drawn_column(seed: int = 0, pixel_mm: float = 1.0, heights=None) -> Column:
    """16 vertebrae T2 ... L5 on a 420 x 200 image; body heights grow from 16 to 26 pixels."""
    rng = np.random.default_rng(seed)
    rows, cols = 420, 200
    image = np.full((rows, cols), 0.15, dtype=np.float32)
    image[:, 30:] += 0.2  # soft tissue
    heights = heights or np.linspace(16, 26, len(LEVELS))
    keypoints, centroids = [], []
    top = 12.0
    for h in heights:
        depth = 1.2 * h
        left = 110 + 10 * np.sin(top / 120.0)
        a = np.array([[left, top], [left, top + h], [left + depth / 2, top + 0.5], [left + depth / 2, top + h - 0.5],
                      [left + depth, top], [left + depth, top + h]])
        keypoints.append(a)
        centroids.append(a.mean(axis=0))
        image[int(top) : int(top + h), int(left) : int(left + depth)] = 0.8
        top += h + 5
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return Column(np.clip(image, 0, 1), pixel_mm, list(LEVELS), np.array(centroids), np.array(keypoints),
                  np.zeros(len(LEVELS), dtype=np.int64), seed)


@pytest.fixture
def drawn():
    """The :func:`drawn_column` factory."""
    return drawn_column


def write_dx(path, pixel_spacing=None, imager_pixel_spacing=None, magnification=None, rows=40, cols=50,
            pixels=None, patient_orientation=None, view_position=None):
    """A Digital X-Ray (DX) DICOM file written with pydicom, with only the spacing attributes asked for."""
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


@pytest.fixture
def dx_file():
    """The :func:`write_dx` factory (pydicom DX files with chosen spacing attributes)."""
    return write_dx
