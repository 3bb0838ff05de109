"""Medical images through SimpleITK: NIfTI, NRRD, MHA, DICOM series folders, and 2D pictures.

Orientation is always kept: images are read with their full geometry, brought to the canonical
orientation (identity direction, see :mod:`VertebralFractureLib.geometry`) for processing, and
anything made on the canonical grid goes back with :func:`resample_like`.
"""

from __future__ import annotations

import stat
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..geometry import ImageGeometry
from .atomic import atomic_path
from .multiframe import frame_count

PathLike = Union[str, Path]
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(ValueError):
    """An image file or folder that cannot be read; the message names the file and the cause."""


def _sitk():
    import SimpleITK as sitk

    return sitk


#: Image metadata key holding what a 3D image resolves along each index axis, in mm, where that is coarser than its
#: spacing (``ImageGeometry.resolution``): written by :func:`read_image` from a DICOM series whose Slice Thickness
#: exceeds its slice spacing, carried through :func:`to_canonical` and :func:`resample_spacing`, read by
#: :func:`geometry_of`.
RESOLUTION_KEY = "vf|resolution_mm"
#: DICOM Slice Thickness (0018,0050).
SLICE_THICKNESS_TAG = "0018|0050"
#: Thickest slice (mm) taken from a header: clinical CT reconstructs slices of 0.5-10 mm; a larger value is a
#: header error and is ignored (the spacing stands), as is one that is not a positive number.
MAX_SLICE_THICKNESS_MM = 10.0


def plausible_thickness(value) -> Optional[float]:
    """A slice thickness (mm) read from text or a number, or None when not in (0, :data:`MAX_SLICE_THICKNESS_MM`]."""
    try:
        thickness = float(str(value).strip("\0 "))
    except (TypeError, ValueError):
        return None
    return thickness if np.isfinite(thickness) and 0 < thickness <= MAX_SLICE_THICKNESS_MM else None


def geometry_of(image) -> ImageGeometry:
    """The :class:`ImageGeometry` of a SimpleITK image (its :data:`RESOLUTION_KEY` metadata, when present)."""
    dim = image.GetDimension()
    resolution = None
    if dim == 3 and image.HasMetaDataKey(RESOLUTION_KEY):
        try:
            resolution = tuple(float(v) for v in image.GetMetaData(RESOLUTION_KEY).split("\\"))
        except ValueError:
            resolution = None
        if resolution is not None and len(resolution) != 3:
            resolution = None
    return ImageGeometry(
        image.GetSize(), image.GetSpacing(), image.GetOrigin(), np.asarray(image.GetDirection()).reshape(dim, dim),
        resolution,
    )


def set_resolution(image, resolution) -> None:
    """Record on a 3D image what it resolves along each index axis (mm; :data:`RESOLUTION_KEY`).

    Values at or below the spacing leave nothing to record: where none is coarser the key is removed.
    """
    spacing = image.GetSpacing()
    values = [max(float(r), float(s)) for r, s in zip(resolution, spacing)]
    if all(v <= float(s) * (1 + 1e-6) for v, s in zip(values, spacing)):
        if image.HasMetaDataKey(RESOLUTION_KEY):
            image.EraseMetaData(RESOLUTION_KEY)
        return
    image.SetMetaData(RESOLUTION_KEY, "\\".join(f"{v:.6g}" for v in values))


def record_slice_thickness(image, thickness: Optional[float]) -> None:
    """Record slices thicker than their spacing (an overlapping reconstruction) along a 3D image's third axis."""
    if thickness is not None and image.GetDimension() == 3:
        spacing = image.GetSpacing()
        set_resolution(image, (spacing[0], spacing[1], thickness))


def _carry_resolution(source_geometry: ImageGeometry, image) -> None:
    """Give ``image`` (a resampled or reoriented copy) what its source resolves, along its own index axes.

    Resampling never adds resolution: a 3 mm series resampled to 1 mm (or an oblique one put on the canonical grid at
    its finest spacing) still resolves 3 mm along its slice normal, which the refinement and the quality gate must
    know (:meth:`~VertebralFractureLib.geometry.ImageGeometry.voxel_extent_along`).
    """
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    set_resolution(image, [source_geometry.voxel_extent_along(direction[:, axis]) for axis in range(3)])


def image_from_array(array: np.ndarray, geometry: ImageGeometry):
    """A SimpleITK image from an ``array[k, j, i]`` (or ``[j, i]``) and its geometry."""
    sitk = _sitk()
    array = np.asarray(array)
    expected = tuple(reversed(geometry.size))
    if array.shape != expected:
        raise ValueError(
            f"array shape {array.shape} does not match geometry size {geometry.size} (expected {expected})"
        )
    if array.dtype == bool:
        array = array.astype(np.uint8)
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(geometry.spacing)
    image.SetOrigin(geometry.origin)
    image.SetDirection(geometry.direction.flatten().tolist())
    return image


#: DICOM modalities read as CT volumes (others, e.g. MR or PT, are refused).
CT_MODALITIES = ("CT",)


def dicom_series_in(folder: Path) -> Dict[str, List[str]]:
    """Every DICOM series under ``folder`` (searched recursively): series UID -> its files, sorted.

    A typical export keeps each series in ``STUDY/SERIES`` sub-folders; a series split over several
    folders is gathered into one list.
    """
    sitk = _sitk()
    reader = sitk.ImageSeriesReader()
    found: Dict[str, List[str]] = {}
    # GDCM prints "No Series were found" to the terminal for every folder without DICOM; the caller says it once
    warnings = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        for directory in sorted([folder, *(p for p in folder.rglob("*") if p.is_dir())]):
            if any(part.startswith(".") for part in directory.relative_to(folder).parts):
                continue
            if not any(child.is_file() for child in directory.iterdir()):
                continue
            for uid in reader.GetGDCMSeriesIDs(str(directory)):
                found.setdefault(uid, []).extend(reader.GetGDCMSeriesFileNames(str(directory), uid))
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(warnings)
    return found


def _dicom_series(folder: Path, series_uid: Optional[str] = None):
    sitk = _sitk()
    series = dicom_series_in(folder)
    if not series:
        raise ImageReadError(f"{folder}: no DICOM series found in this folder or its sub-folders")
    listing = "; ".join(f"{uid} ({len(files)} files)" for uid, files in sorted(series.items()))
    if series_uid is not None:
        if series_uid not in series:
            raise ImageReadError(f"{folder}: no DICOM series with UID {series_uid}; the folder holds: {listing}")
        files, choice = series[series_uid], None
    elif len(series) > 1:
        from .series_choice import choose_series

        series_uid, choice = choose_series(folder, series)
        files = series[series_uid]
    else:
        files, choice = next(iter(series.values())), None
    header = read_header(files[0])
    if header is None:
        raise ImageReadError(f"{folder}: cannot read the DICOM header of {Path(files[0]).name}")
    if frame_count(header) > 1:  # an enhanced (multi-frame) CT: the whole series in one file
        if len(files) > 1:
            raise ImageReadError(f"{folder}: the DICOM series is stored as {len(files)} multi-frame files; give one "
                                 f"of them as a file (e.g. {files[0]})")
        image = _multiframe_volume(folder, files[0], header)
        if choice is not None:
            image.SetMetaData(SERIES_CHOICE_KEY, choice)
        return image
    if len(files) < 2:
        raise ImageReadError(f"{folder}: the DICOM series has only {len(files)} slice")
    _check_modality(folder, header)
    geometry = _check_slice_positions(folder, files)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    try:
        image = reader.Execute()
    except RuntimeError as error:
        raise ImageReadError(f"{folder}: cannot read the DICOM series: {_first_error_line(error)}") from None
    if geometry is not None:
        image = _correct_gantry_tilt(image, *geometry)
    record_slice_thickness(image, _keep_series_tags(image, header))
    if choice is not None:
        image.SetMetaData(SERIES_CHOICE_KEY, choice)
    return image


#: Metadata key of an image read from a folder of several series: the line that says which series was chosen and why
#: (:func:`.series_choice.choose_series`).
SERIES_CHOICE_KEY = "VertebralFracture|series_choice"
#: DICOM tags copied from a series onto the image read from it: Study and Series Instance UID (no patient identity).
SERIES_UID_TAGS = {"study_uid": "0020|000d", "series_uid": "0020|000e"}


def _keep_series_tags(image, reader) -> Optional[float]:
    """Copy the study and series UIDs of a DICOM series onto its image (``image.GetMetaData("0020|000e")``).

    Args:
        image: the series' image.
        reader: the header of its first file (:func:`read_header`).

    Returns:
        the series' Slice Thickness (mm, :data:`SLICE_THICKNESS_TAG`), or None when absent or implausible
        (:data:`MAX_SLICE_THICKNESS_MM`).
    """
    for tag in SERIES_UID_TAGS.values():
        if reader.HasMetaDataKey(tag) and reader.GetMetaData(tag).strip("\0 "):
            image.SetMetaData(tag, reader.GetMetaData(tag).strip("\0 "))
    return _header_thickness(reader)


def _header_thickness(reader) -> Optional[float]:
    """The plausible Slice Thickness of a header read by a SimpleITK ``ImageFileReader``, or None."""
    if not reader.HasMetaDataKey(SLICE_THICKNESS_TAG):
        return None
    return plausible_thickness(reader.GetMetaData(SLICE_THICKNESS_TAG))


def read_header(path: PathLike):
    """A SimpleITK ``ImageFileReader`` holding the header (size, spacing, tags) of ``path``, or None if unreadable."""
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return None
    return reader


def dicom_file_slice_thickness(path: PathLike) -> Optional[float]:
    """Slice Thickness (0018,0050) of one DICOM file in mm, or None when unreadable, absent or implausible.

    In an enhanced (multi-frame) CT the thickness is in the Pixel Measures macro of its functional groups
    (:func:`.multiframe.frame_geometry`).
    """
    reader = read_header(path)
    if reader is None:
        return None
    thickness = _header_thickness(reader)
    if thickness is None and frame_count(reader) > 1:
        from .multiframe import frame_geometry

        geometry = frame_geometry(path)
        thickness = geometry.thickness if geometry is not None else None
    return thickness


def _check_modality(folder: Path, reader) -> None:
    """Refuse a DICOM series whose Modality tag (0008,0060) says it is not a CT (e.g. MR with HU-like values).

    ``reader`` is the header of the series' first file (:func:`read_header`).
    """
    if reader.HasMetaDataKey("0008|0060"):
        modality = reader.GetMetaData("0008|0060").strip().upper()
        if modality and modality not in CT_MODALITIES:
            raise ImageReadError(
                f"{folder}: the DICOM series is modality {modality}, not CT; this tool analyses CT only"
            )


#: Largest ratio between two slice gaps of a series read as evenly spaced.
SLICE_GAP_TOLERANCE = 1.25


def _check_slice_positions(folder: Path, files) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Refuse a DICOM series with missing slices or uneven slice gaps, and a huge series.

    SimpleITK stacks such a series with one average spacing (only a console warning), which
    would silently stretch the anatomy and every height measured in it; a missing slice usually
    means an incomplete transfer, so the user is told which gap is wrong instead.

    Returns:
        ``(positions, normal)``: the slices' Image Position (Patient) sorted along the slice normal, and that normal
        (for :func:`_correct_gantry_tilt`); None when the tags are missing (SimpleITK's geometry is kept).
    """
    sitk = _sitk()
    reader = sitk.ImageFileReader()
    positions = []
    normal = None
    for name in files:
        reader.SetFileName(str(name))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            raise ImageReadError(
                f"{folder}: cannot read the DICOM header of {Path(name).name} (truncated or corrupt)"
            ) from None
        if normal is None:
            width, height = reader.GetSize()[:2]
            _check_voxel_count(folder, (width, height, len(files)))
            try:
                cosines = [float(v) for v in reader.GetMetaData("0020|0037").split("\\")]
                normal = np.cross(cosines[:3], cosines[3:6])
            except (RuntimeError, ValueError, IndexError):
                return None  # no orientation tag: leave the geometry to SimpleITK
        try:
            positions.append([float(v) for v in reader.GetMetaData("0020|0032").split("\\")][:3])
        except (RuntimeError, ValueError):
            return None  # no position tag: leave the geometry to SimpleITK
    positions = np.asarray(positions, dtype=float)
    order = _evenly_spaced_order(folder, positions, normal)
    return positions[order], normal / np.linalg.norm(normal)


def _evenly_spaced_order(where: Path, positions: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """The slices' order along ``normal``; refuses duplicate positions and uneven gaps (:func:`_check_slice_positions`).

    ``where`` (a series folder, or a multi-frame file whose frames are the slices) is named in the messages.
    """
    order = np.argsort(positions @ normal)
    along = (positions @ normal)[order]
    gaps = np.diff(along)
    if np.min(gaps) <= 1e-3:
        raise ImageReadError(
            f"{where}: two DICOM slices share the same position ({along[int(np.argmin(gaps))]:.2f} mm); "
            "the folder mixes acquisitions or holds duplicate files"
        )
    typical = float(np.median(gaps))
    worst = int(np.argmax(np.abs(gaps - typical)))
    if np.max(gaps) > SLICE_GAP_TOLERANCE * typical or np.min(gaps) < typical / SLICE_GAP_TOLERANCE:
        missing = max(0, int(round(gaps[worst] / typical)) - 1)
        raise ImageReadError(
            f"{where}: uneven slice gaps in the DICOM series: {gaps[worst]:.2f} mm between slices {worst + 1} "
            f"and {worst + 2} where {typical:.2f} mm is usual"
            + (f" ({missing} slice{'s' if missing != 1 else ''} missing?)" if missing else "")
            + "; heights would be measured wrongly. Export the complete series again"
        )
    return order


def _multiframe_volume(where: Path, path: PathLike, header):
    """An enhanced (multi-frame) CT file read as a volume with the checks a folder of slices gets.

    The modality (a multi-frame MR is not read as CT), the voxel count, the frames' positions from the functional
    groups (:mod:`.multiframe`: duplicates, missing frames and uneven gaps refused as for a series; a gantry tilt
    corrected by :func:`_correct_gantry_tilt`), the Slice Thickness of the Pixel Measures macro recorded as what the
    image resolves, and the study and series UIDs kept. ``where`` is named in the messages (the folder the user
    gave, or the file itself).
    """
    from .multiframe import frame_geometry, stacked_along_normal

    sitk = _sitk()
    _check_modality(where, header)
    _check_voxel_count(where, header.GetSize())
    geometry = frame_geometry(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as error:
        raise ImageReadError(f"{where}: cannot read the multi-frame DICOM file: {_first_error_line(error)}") from None
    if image.GetDimension() == 3 and geometry is not None and len(geometry.positions) == image.GetSize()[2] > 1:
        order = _evenly_spaced_order(where, geometry.positions, geometry.normal)
        image = stacked_along_normal(image, geometry, order)
        image = _correct_gantry_tilt(image, geometry.positions[order], geometry.normal)
    thickness = _keep_series_tags(image, header)
    record_slice_thickness(image, geometry.thickness if geometry is not None else thickness)
    return image


#: Metadata key of an image whose slices were acquired with a gantry tilt: the tilt in degrees (the image returned is
#: resampled onto an orthogonal grid, :func:`_correct_gantry_tilt`).
GANTRY_TILT_KEY = "VertebralFracture|gantry_tilt_deg"
#: Smallest tilt (degrees) corrected; below it the slices' offset over the whole series is far under a voxel.
MIN_GANTRY_TILT_DEG = 0.05


def _correct_gantry_tilt(image, positions: np.ndarray, normal: np.ndarray):
    """The series on an orthogonal grid when its slices were acquired with a gantry tilt; else ``image`` itself.

    A tilted gantry gives slices whose Image Position (Patient) moves along the column direction as well as along the
    slice normal: the volume is sheared. SimpleITK stacks such slices along the normal with the full distance between
    neighbours as the spacing (a 20 degree tilt: 6 % too tall, and every slice displaced by its index times the
    per-slice offset), which distorts every body's outline and height. Here the stack is given its true geometry (the
    spacing along the normal, each slice at its own position) and resampled, linearly, onto a grid with the slices'
    in-plane directions and the normal, the in-plane spacing kept and the field of view grown to hold every slice
    (outside it: the series' lowest value), as 3D Slicer's DICOM reader regularises such a series.

    Args:
        image: the series as SimpleITK read it.
        positions: the slices' positions sorted along the normal (:func:`_check_slice_positions`).
        normal: the unit slice normal.
    """
    sitk = _sitk()
    count = len(positions)
    step = (positions[-1] - positions[0]) / (count - 1)
    spacing_along = float(step @ normal)
    shift = step - spacing_along * normal  # per slice, in the slice plane
    tilt = float(np.degrees(np.arctan2(np.linalg.norm(shift), spacing_along)))
    if tilt < MIN_GANTRY_TILT_DEG:
        return image
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.asarray(image.GetSpacing(), dtype=float)
    origin = positions[0]
    # voxel (i, j, k) placed at origin + in-plane + k * spacing_along * normal (GDCM orders the files along the normal)
    stacked = sitk.Image(image)
    stacked.SetSpacing((spacing[0], spacing[1], spacing_along))
    stacked.SetOrigin(tuple(origin))
    stacked.SetDirection(tuple(np.column_stack([direction[:, 0], direction[:, 1], normal]).ravel()))
    # where the slice at a true point x was acquired: k = (x - origin) . normal / spacing_along; it lies shifted by
    # k * shift from where the stack puts it, so the stack is read at x - k * shift
    shear = np.outer(shift, normal) / spacing_along
    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple((np.eye(3) - shear).ravel()))
    transform.SetTranslation(tuple(shear @ origin))
    size = np.asarray(image.GetSize(), dtype=float)
    corners = np.array([[i, j, k] for i in (0, size[0] - 1) for j in (0, size[1] - 1) for k in (0, size[2] - 1)])
    frame = np.column_stack([direction[:, 0], direction[:, 1], normal])
    true_points = origin + (corners[:, :2] * spacing[:2]) @ frame[:, :2].T + corners[:, 2:3] * step
    local = (true_points - origin) @ frame
    low, high = local.min(axis=0), local.max(axis=0)
    out_spacing = np.array([spacing[0], spacing[1], spacing_along])
    out_size = [int(np.ceil((high[a] - low[a]) / out_spacing[a] - 1e-6)) + 1 for a in range(3)]
    reference = sitk.Image(out_size, image.GetPixelID())
    reference.SetSpacing(tuple(out_spacing))
    reference.SetOrigin(tuple(origin + frame @ low))
    reference.SetDirection(tuple(frame.ravel()))
    array = sitk.GetArrayViewFromImage(image)
    regular = sitk.Resample(stacked, reference, transform, sitk.sitkLinear, float(array.min()), image.GetPixelID())
    for key in image.GetMetaDataKeys():
        regular.SetMetaData(key, image.GetMetaData(key))
    regular.SetMetaData(GANTRY_TILT_KEY, f"{tilt:.2f}")
    return regular


def _check_voxel_count(path: Path, size) -> None:
    """Refuse, from the header alone, an image too large to analyse (before its voxels are read)."""
    from ..validation import MAX_VOXELS

    count = int(np.prod([int(s) for s in size], dtype=np.int64))
    if count > MAX_VOXELS:
        raise ImageReadError(
            f"{path}: {count / 1e6:.0f} million voxels (size {tuple(int(s) for s in size)}) is more than the "
            f"{MAX_VOXELS / 1e6:.0f} million this tool analyses at once; crop the volume to the spine or resample it"
        )


@dataclass
class NiftiScan:
    """What the raw bytes of a NIfTI file say (SimpleITK hides both: it zero-fills missing voxels and NaN/Inf).

    Attributes:
        known: the header is a NIfTI-1/2 header this module parses.
        complete: every voxel byte the header announces is present (and a gzip stream is intact).
        non_finite: number of NaN or infinite voxels (float data only; 0 otherwise).
    """

    known: bool
    complete: bool
    non_finite: int = 0


#: NIfTI datatype codes of floating-point voxels -> numpy type.
_NIFTI_FLOATS = {16: "f4", 64: "f8"}
_CHUNK = 16 << 20


def scan_nifti(path: Path) -> NiftiScan:
    """Check a NIfTI-1/2 file from its raw bytes: complete data, and the count of NaN/Inf voxels.

    The voxel data are streamed (16 MB at a time) only for float data or to reach the end of the file.
    """
    import gzip
    import struct

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(540)
            if len(header) < 348:
                return NiftiScan(True, False)
            for endian in "<>":
                size = struct.unpack(endian + "i", header[:4])[0]
                if size == 348:
                    dims = struct.unpack(endian + "8h", header[40:56])
                    datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
                    offset = int(struct.unpack(endian + "f", header[108:112])[0])
                    break
                if size == 540:
                    dims = struct.unpack(endian + "8q", header[16:80])
                    datatype, bitpix = struct.unpack(endian + "2h", header[12:16])
                    offset = struct.unpack(endian + "q", header[168:176])[0]
                    break
            else:
                return NiftiScan(False, True)  # not a NIfTI header we know; let SimpleITK decide
            count = int(np.prod([max(1, d) for d in dims[1 : 1 + max(1, min(int(dims[0]), 7))]], dtype=np.int64))
            start = max(offset, 348)
            nbytes = count * max(1, bitpix) // 8
            if datatype not in _NIFTI_FLOATS:
                handle.seek(start + nbytes - 1)
                complete = len(handle.read(1)) == 1
                if complete and opener is gzip.open:
                    while handle.read(_CHUNK):  # reach the end: the gzip checksum is verified there
                        pass
                return NiftiScan(True, complete)
            dtype = np.dtype(endian + _NIFTI_FLOATS[datatype])
            handle.seek(start)
            left, non_finite = nbytes, 0
            while left > 0:
                chunk = handle.read(min(_CHUNK - _CHUNK % dtype.itemsize, left))
                if not chunk:
                    return NiftiScan(True, False)
                usable = len(chunk) - len(chunk) % dtype.itemsize
                values = np.frombuffer(chunk[:usable], dtype)
                non_finite += int(values.size - np.count_nonzero(np.isfinite(values)))
                left -= len(chunk)
            return NiftiScan(True, True, non_finite)
    except (OSError, EOFError, struct.error, zlib.error, ValueError, OverflowError):
        return NiftiScan(True, False)


_NRRD_TYPES = {
    1: ("signed char", "int8", "uchar", "unsigned char", "uint8", "int8_t", "uint8_t"),
    2: ("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort", "unsigned short",
        "unsigned short int", "uint16", "uint16_t"),
    4: ("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t", "float"),
    8: ("longlong", "long long", "long long int", "signed long long", "signed long long int", "int64", "int64_t",
        "ulonglong", "unsigned long long", "unsigned long long int", "uint64", "uint64_t", "double"),
}


def nrrd_problem(path: Path) -> Optional[str]:
    """What is wrong with an attached-data NRRD file (header, data size, gzip stream), or None."""
    try:
        with open(path, "rb") as handle:
            if not handle.read(4) == b"NRRD":
                return "not a NRRD file"
            handle.seek(0)
            fields: Dict[str, str] = {}
            while True:
                line = handle.readline(1 << 20)
                if not line:
                    return "the header has no end (no blank line)"
                line = line.decode("latin-1").rstrip("\r\n")
                if not line:
                    break
                if ":" in line and not line.startswith("#"):
                    key, _, value = line.partition(":")
                    fields[key.strip().lower()] = value.lstrip("=").strip()
            if "data file" in fields or "datafile" in fields:
                return None  # detached data: the header alone is checked
            sizes = [int(v) for v in fields.get("sizes", "").split()]
            itemsize = next((n for n, names in _NRRD_TYPES.items() if fields.get("type", "").lower() in names), None)
            if not sizes or itemsize is None:
                return "the header lacks sizes or a known type"
            expected = int(np.prod(sizes, dtype=np.int64)) * itemsize
            encoding = fields.get("encoding", "raw").lower()
            if encoding == "raw":
                got = len(handle.read(expected + 1))
            elif encoding in ("gzip", "gz"):
                inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
                got = 0
                while not inflate.eof:
                    block = handle.read(_CHUNK)
                    if not block:
                        break
                    got += len(inflate.decompress(block))
                if not inflate.eof:
                    return "the gzip data stream is cut short"
            else:
                return None
            if got < expected:
                return f"{got} of {expected} data bytes"
            return None
    except (OSError, ValueError, zlib.error) as error:
        return f"unreadable ({error})"


def image_file_problem(path: Path, name: Optional[str] = None) -> Optional[str]:
    """What is wrong with a NIfTI or NRRD file just written (``name`` chooses the format), or None."""
    name = (name or path.name).lower()
    if name.endswith((".nii", ".nii.gz")):
        scan = scan_nifti(path) if name.endswith(".gz") == path.name.lower().endswith(".gz") else None
        if scan is not None and not scan.complete:
            return "the NIfTI data are truncated or corrupt"
        return None
    if name.endswith((".nrrd", ".nhdr")):
        return nrrd_problem(path)
    return None


def check_input_path(path: PathLike, *, folders: bool = True) -> Path:
    """Refuse, before anything opens it, an input that is missing, not a regular file or folder, or unreadable.

    A FIFO, socket or device would hang or stream forever; a dangling symbolic link reads as missing.

    Raises:
        ImageReadError: naming the path and the problem.
    """
    import os

    path = Path(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise ImageReadError(f"{path}: a symbolic link to a missing file ({os.readlink(path)})") from None
        raise ImageReadError(f"{path}: no such file or folder") from None
    except OSError as error:
        raise ImageReadError(f"{path}: cannot be opened ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        if not folders:
            raise ImageReadError(f"{path}: is a folder; an image file is expected here")
    elif not stat.S_ISREG(info.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(info.st_mode) else "a socket" if stat.S_ISSOCK(info.st_mode)
                else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "not a regular file")
        raise ImageReadError(f"{path}: is {kind}, not a regular file; refusing to read it")
    if not os.access(path, os.R_OK | (os.X_OK if stat.S_ISDIR(info.st_mode) else 0)):
        raise ImageReadError(f"{path}: permission denied (cannot be read)")
    return path


def _first_error_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    detail = [line.split("]", 1)[1].strip() for line in lines if line.startswith("[") and "]" in line]
    if detail:
        return detail[-1]  # the NRRD reader's innermost reason ("type (short) and encoding ... endian info")
    import re

    for line in lines:  # "ITK ERROR: PNGImageIO(0x55...): Error while reading file: /x.png" -> "PNGImageIO: ..."
        match = re.search(r"ITK ERROR: (\w+)\(0x[0-9a-fA-F]+\): (.*)", line)
        if match:
            message = re.sub(r":\s*\S*/\S*$", "", match.group(2).strip())  # the path is said once, in front
            return f"{match.group(1)}: {message}"
    for line in lines:  # SimpleITK's own reason after the line naming its source file and line number:
        match = re.search(r"sitk::ERROR: (.*)", line)  # 'Unable to determine ImageIO reader for "/x.png"'
        if match:
            return re.sub(r'\s*(for|of)?\s*"[^"]*"\s*$', "", match.group(1).strip()) or match.group(1).strip()
    reason = next((line for line in lines if "ERROR" in line or "Exception" in line or "error" in line),
                  lines[-1] if lines else "")
    return reason.strip()


def read_image(path: PathLike, series_uid: Optional[str] = None, *, allow_non_finite: bool = False):
    """Read a volume file, a DICOM series folder or a 2D picture as a SimpleITK image.

    Slices thicker than their spacing (an overlapping reconstruction) are recorded as what the image resolves
    (:data:`RESOLUTION_KEY`, ``ImageGeometry.resolution``): from a DICOM series' Slice Thickness (0018,0050), or from
    the ``SliceThickness`` of a NIfTI's JSON sidecar (:func:`sidecar_slice_thickness`).

    Args:
        path: the file or folder (a DICOM folder is searched recursively).
        series_uid: the DICOM series to read when the folder holds several (default: chosen by
            :func:`.series_choice.choose_series`; the image's :data:`SERIES_CHOICE_KEY` metadata says which and why).
        allow_non_finite: read a NIfTI with NaN/Inf voxels (SimpleITK shows them as 0) instead of refusing it.

    Raises:
        ImageReadError: if the path does not exist, is not a regular file or folder, is empty,
            truncated or corrupt, holds NaN/Inf voxels, or holds several DICOM series, no UID was given and they
            belong to more than one patient or study or none is a CT volume (:mod:`.series_choice` chooses otherwise).

    """
    path = check_input_path(path)
    if path.is_dir():
        return _dicom_series(path, series_uid)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    if path.name.lower().endswith(".nii.gz"):
        with tempfile.TemporaryDirectory(prefix="vf-nifti-") as folder:
            plain = Path(folder) / (path.name[: -len(".gz")])
            try:
                intact = gunzip_to(path, plain)
            except OSError:  # no room for the decompressed copy: check and read the compressed file itself
                return _read_checked_nifti(path, path, allow_non_finite)
            if not intact:
                _raise_truncated(path)
            return _read_checked_nifti(plain, path, allow_non_finite)
    if path.name.lower().endswith(".nii"):
        return _read_checked_nifti(path, path, allow_non_finite)
    return _read_with_sitk(path, path)


def gunzip_to(source: Path, target: Path) -> bool:
    """Decompress a gzip file (one or several members) into ``target`` in one streaming pass.

    SimpleITK zero-fills a truncated gzip stream without a word, so a ``.nii.gz`` is decompressed
    once here, where the stream's end and CRC are checked, and the plain copy is what SimpleITK reads
    (one decompression instead of two: about 1 s less on a 512 x 512 x 300 CT).

    Returns:
        True if every member ended with a valid checksum; False if the stream is truncated or damaged.

    Raises:
        OSError: if ``target`` cannot be written (for example no space left).

    """
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    ended = False
    with open(source, "rb") as handle, open(target, "wb") as out:
        try:
            while True:
                chunk = handle.read(_CHUNK // 4)
                if not chunk:
                    break
                while chunk:
                    out.write(decompressor.decompress(chunk))
                    if not decompressor.eof:
                        break
                    ended, chunk = True, decompressor.unused_data.lstrip(b"\0")
                    if chunk:  # another gzip member follows (bgzip, concatenated files)
                        decompressor, ended = zlib.decompressobj(16 + zlib.MAX_WBITS), False
        except zlib.error:
            return False
    return ended


def _raise_truncated(path: Path) -> None:
    raise ImageReadError(
        f"{path}: the NIfTI file is truncated or corrupt (fewer voxel bytes than its header says, "
        "or a damaged gzip stream)"
    )


def _read_checked_nifti(readable: Path, path: Path, allow_non_finite: bool):
    """Read ``readable`` (``path`` itself or its decompressed copy) after checking its voxel bytes."""
    scan = scan_nifti(readable)
    if not scan.complete:
        _raise_truncated(path)
    if scan.non_finite and not allow_non_finite:
        raise ImageReadError(
            f"{path}: {scan.non_finite} voxels are NaN or infinite (the NIfTI reader would show them as 0); "
            "a CT holds finite Hounsfield units"
        )
    image = _read_with_sitk(readable, path)
    record_slice_thickness(image, sidecar_slice_thickness(path))
    return image


def sidecar_slice_thickness(path: Path) -> Optional[float]:
    """The ``SliceThickness`` (mm) of a NIfTI's JSON sidecar (``ct.nii.gz`` -> ``ct.json``), or None.

    dcm2niix, the usual DICOM -> NIfTI converter, writes the DICOM header's Slice Thickness (0018,0050) there (BIDS),
    while the NIfTI header keeps only the slice spacing; the slices are along the third voxel axis. An unreadable
    sidecar or an implausible value (:data:`MAX_SLICE_THICKNESS_MM`) is ignored (the spacing stands).
    """
    import json

    name = path.name
    stem = name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else name[: -len(".nii")]
    sidecar = path.with_name(stem + ".json")
    if not sidecar.is_file():
        return None
    try:
        value = json.loads(sidecar.read_text(encoding="utf-8")).get("SliceThickness")
    except (OSError, ValueError, AttributeError):
        return None
    return plausible_thickness(value)


def _read_with_sitk(readable: Path, path: Path):
    """SimpleITK's reading of ``readable``; errors name ``path``, the file the user gave."""
    sitk = _sitk()
    try:
        header = sitk.ImageFileReader()
        header.SetFileName(str(readable))
        header.ReadImageInformation()
        if frame_count(header) > 1 and header.GetDimension() == 3:  # an enhanced (multi-frame) CT file
            return _multiframe_volume(path, readable, header)
        _check_voxel_count(path, header.GetSize())
        return sitk.ReadImage(str(readable))
    except RuntimeError as error:
        pictureless = _dicom_without_pixels(readable)
        if pictureless is not None:
            raise ImageReadError(f"{path}: {pictureless}") from None
        raise ImageReadError(
            f"{path}: cannot read this image (truncated, corrupt or not an image): {_first_error_line(error)}"
        ) from None


def _dicom_without_pixels(path: Path) -> Optional[str]:
    """What a DICOM file without pixel data is (a report, a presentation state...): why it is no image.

    None for anything else (not DICOM, or with pixels: SimpleITK's own reason stands).
    """
    import pydicom

    try:
        ds = pydicom.dcmread(str(path), stop_before_pixels=False, specific_tags=["SOPClassUID", "Modality",
                                                                                   "PixelData", "FloatPixelData"])
    except Exception:  # noqa: BLE001 - not DICOM (or unreadable as such): the reader's reason stands
        return None
    if "PixelData" in ds or "FloatPixelData" in ds or "SOPClassUID" not in ds:
        return None
    kind = pydicom.uid.UID(str(ds.SOPClassUID)).name
    modality = f", modality {ds.Modality}" if ds.get("Modality") else ""
    return (f"a DICOM {kind} ({ds.SOPClassUID}{modality}) holds no pixels: it is not an image; give the CT series "
            "folder or the radiograph")


def write_image(image, path: PathLike, *, overwrite: bool = False, compress: bool = True) -> Path:
    """Write a SimpleITK image atomically (format from the extension)."""
    sitk = _sitk()
    with atomic_path(path, overwrite=overwrite) as temporary:
        sitk.WriteImage(image, str(temporary), compress)
    return Path(path)


def to_canonical(image, *, nearest: bool = False):
    """Reorient to the identity direction (``array[k, j, i]`` = superior, posterior, left).

    Axis-aligned images are permuted and flipped exactly (no interpolation); oblique ones are
    resampled onto an identity-direction grid covering the same box at the finest spacing,
    linearly, or by nearest neighbour for label images (``nearest=True``).
    """
    sitk = _sitk()
    geometry = geometry_of(image)
    if geometry.is_axis_aligned:
        oriented = sitk.DICOMOrient(image, "LPS")
        if oriented.GetDimension() == 3:
            _carry_resolution(geometry, oriented)
        return oriented
    dim = image.GetDimension()
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in geometry.size], indexing="ij")).reshape(dim, -1).T
    points = geometry.index_to_lps(corners)
    low, high = points.min(axis=0), points.max(axis=0)
    spacing, size = _canonical_grid(geometry, high - low)
    reference = sitk.Image([int(s) for s in size], image.GetPixelID())
    reference.SetSpacing(spacing.tolist())
    reference.SetOrigin(low.tolist())
    reference.SetDirection(np.eye(dim).flatten().tolist())
    fill = float(sitk.GetArrayViewFromImage(image).min())
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    resampled = sitk.Resample(image, reference, sitk.Transform(), interpolator, fill)
    if dim == 3:
        _carry_resolution(geometry, resampled)
    return resampled


def _canonical_grid(geometry: ImageGeometry, extent: np.ndarray):
    """Spacing and size of the identity-direction grid of an oblique image, bounded in voxels.

    The finest spacing is used when the grid stays within ``validation.MAX_VOXELS``, otherwise a
    coarser isotropic spacing up to the median one; a grid still too large is refused before any
    memory is allocated (a thin-slice, thick-spacing volume tilted 45 degrees would need billions).

    Raises:
        ImageReadError: if no spacing up to the median keeps the grid within the limit.
    """
    from ..validation import MAX_VOXELS

    finest, median = float(min(geometry.spacing)), float(np.median(geometry.spacing))
    for step in np.unique([finest, *np.geomspace(finest, median, 8)]) if median > finest else [finest]:
        spacing = np.full(len(extent), float(step))
        size = np.ceil(extent / spacing).astype(np.int64) + 1
        if int(np.prod(size)) <= MAX_VOXELS:
            return spacing, size
    size = np.ceil(extent / finest).astype(np.int64) + 1
    raise ImageReadError(
        f"reorienting this oblique volume (spacing {tuple(round(s, 3) for s in geometry.spacing)} mm, size "
        f"{tuple(geometry.size)}) would need {np.prod(size.astype(float)) / 1e6:.0f} million voxels at "
        f"{finest:g} mm, more than the {MAX_VOXELS / 1e6:.0f} million this tool handles; resample it to "
        "axis-aligned or near-isotropic voxels first"
    )


def resample_like(image, reference, *, nearest: bool = False, default: float = 0.0):
    """Resample ``image`` onto ``reference``'s grid (back to the original geometry)."""
    sitk = _sitk()
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, default)


def resample_spacing(image, spacing: Tuple[float, ...], *, nearest: bool = False, default: float = -1024.0):
    """Resample to a new isotropic or per-axis spacing on the same box and direction.

    A 3D image keeps what it resolves (:data:`RESOLUTION_KEY`): the coarser of the new spacing and the source's
    resolution along each axis (a 3 mm series resampled to 1 mm still resolves 3 mm only where it says so).
    """
    sitk = _sitk()
    spacing = np.broadcast_to(np.asarray(spacing, float), (image.GetDimension(),))
    old = np.asarray(image.GetSpacing())
    size = np.maximum(1, np.round(np.asarray(image.GetSize()) * old / spacing)).astype(int)
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    resampled = sitk.Resample(
        image,
        [int(s) for s in size],
        sitk.Transform(),
        interpolator,
        image.GetOrigin(),
        spacing.tolist(),
        image.GetDirection(),
        default,
        image.GetPixelID(),
    )
    if image.GetDimension() == 3:
        _carry_resolution(geometry_of(image), resampled)
    return resampled
