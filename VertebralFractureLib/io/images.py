"""Medical images through SimpleITK: NIfTI, NRRD, MHA, DICOM series folders, and 2D pictures.

Orientation is always kept: images are read with their full geometry, brought to the canonical
orientation (identity direction, see :mod:`VertebralFractureLib.geometry`) for processing, and
anything made on the canonical grid goes back with :func:`resample_like`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple, Union

import numpy as np

from ..geometry import ImageGeometry
from .atomic import atomic_path

PathLike = Union[str, Path]
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


class ImageReadError(ValueError):
    """An image file or folder that cannot be read; the message names the file and the cause."""


def _sitk():
    import SimpleITK as sitk

    return sitk


def geometry_of(image) -> ImageGeometry:
    """The :class:`ImageGeometry` of a SimpleITK image."""
    dim = image.GetDimension()
    return ImageGeometry(
        image.GetSize(), image.GetSpacing(), image.GetOrigin(), np.asarray(image.GetDirection()).reshape(dim, dim)
    )


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


def _dicom_series(folder: Path):
    sitk = _sitk()
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise ImageReadError(f"{folder}: no DICOM series found in this folder")
    if len(series) > 1:
        sizes = {s: len(reader.GetGDCMSeriesFileNames(str(folder), s)) for s in series}
        chosen = max(sizes, key=sizes.get)
        raise ImageReadError(
            f"{folder}: the folder holds {len(series)} DICOM series "
            f"({', '.join(f'{s}: {n} files' for s, n in sizes.items())}); "
            f"put one series per folder or pass the series UID (largest: {chosen})"
        )
    files = reader.GetGDCMSeriesFileNames(str(folder), series[0])
    if len(files) < 2:
        raise ImageReadError(f"{folder}: the DICOM series has only {len(files)} slice")
    _check_slice_positions(folder, files)
    reader.SetFileNames(files)
    image = reader.Execute()
    return image


#: Largest ratio between two slice gaps of a series read as evenly spaced.
SLICE_GAP_TOLERANCE = 1.25


def _check_slice_positions(folder: Path, files) -> None:
    """Refuse a DICOM series with missing slices or uneven slice gaps, and a huge series.

    SimpleITK stacks such a series with one average spacing (only a console warning), which
    would silently stretch the anatomy and every height measured in it; a missing slice usually
    means an incomplete transfer, so the user is told which gap is wrong instead.
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
                return  # no orientation tag: leave the geometry to SimpleITK
        try:
            positions.append([float(v) for v in reader.GetMetaData("0020|0032").split("\\")][:3])
        except (RuntimeError, ValueError):
            return  # no position tag: leave the geometry to SimpleITK
    along = np.sort(np.asarray(positions) @ normal)
    gaps = np.diff(along)
    if np.min(gaps) <= 1e-3:
        raise ImageReadError(
            f"{folder}: two DICOM slices share the same position ({along[int(np.argmin(gaps))]:.2f} mm); "
            "the folder mixes acquisitions or holds duplicate files"
        )
    typical = float(np.median(gaps))
    worst = int(np.argmax(np.abs(gaps - typical)))
    if np.max(gaps) > SLICE_GAP_TOLERANCE * typical or np.min(gaps) < typical / SLICE_GAP_TOLERANCE:
        missing = max(0, int(round(gaps[worst] / typical)) - 1)
        raise ImageReadError(
            f"{folder}: uneven slice gaps in the DICOM series: {gaps[worst]:.2f} mm between slices {worst + 1} "
            f"and {worst + 2} where {typical:.2f} mm is usual"
            + (f" ({missing} slice{'s' if missing != 1 else ''} missing?)" if missing else "")
            + "; heights would be measured wrongly. Export the complete series again"
        )


def _check_voxel_count(path: Path, size) -> None:
    """Refuse, from the header alone, an image too large to analyse (before its voxels are read)."""
    from ..validation import MAX_VOXELS

    count = int(np.prod([int(s) for s in size], dtype=np.int64))
    if count > MAX_VOXELS:
        raise ImageReadError(
            f"{path}: {count / 1e6:.0f} million voxels (size {tuple(int(s) for s in size)}) is more than the "
            f"{MAX_VOXELS / 1e6:.0f} million this tool analyses at once; crop the volume to the spine or resample it"
        )


def _nifti_data_complete(path: Path) -> bool:
    """Whether a NIfTI-1/2 file holds all the voxel bytes its header announces.

    SimpleITK reads a truncated NIfTI without complaint (missing voxels become zeros), so the
    size is checked from the header first.
    """
    import gzip
    import struct

    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            header = handle.read(540)
            if len(header) < 348:
                return False
            for endian in "<>":
                size = struct.unpack(endian + "i", header[:4])[0]
                if size == 348:
                    dims = struct.unpack(endian + "8h", header[40:56])
                    bitpix = struct.unpack(endian + "h", header[72:74])[0]
                    offset = int(struct.unpack(endian + "f", header[108:112])[0])
                    break
                if size == 540:
                    dims = struct.unpack(endian + "8q", header[16:80])
                    bitpix = struct.unpack(endian + "h", header[14:16])[0]
                    offset = struct.unpack(endian + "q", header[168:176])[0]
                    break
            else:
                return True  # not a NIfTI header we know; let SimpleITK decide
            count = int(np.prod([max(1, d) for d in dims[1 : 1 + max(1, min(int(dims[0]), 7))]]))
            end = max(offset, 348) + count * max(1, bitpix) // 8
            handle.seek(end - 1)
            return len(handle.read(1)) == 1
    except (OSError, EOFError, struct.error):
        return False


def read_image(path: PathLike, series_uid: Optional[str] = None):
    """Read a volume file, a DICOM series folder or a 2D picture as a SimpleITK image.

    Raises:
        ImageReadError: if the path does not exist, is empty, truncated, corrupt or holds
            several DICOM series.

    """
    sitk = _sitk()
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file or folder")
    if path.is_dir():
        if series_uid is not None:
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(path), series_uid))
            return reader.Execute()
        return _dicom_series(path)
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    if path.name.lower().endswith((".nii", ".nii.gz")) and not _nifti_data_complete(path):
        raise ImageReadError(f"{path}: the NIfTI file is truncated or corrupt (fewer voxel bytes than its header says)")
    try:
        header = sitk.ImageFileReader()
        header.SetFileName(str(path))
        header.ReadImageInformation()
        _check_voxel_count(path, header.GetSize())
        return sitk.ReadImage(str(path))
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        reason = next(
            (line for line in first if "ERROR" in line or "Exception" in line or "error" in line),
            first[-1] if first else "",
        )
        raise ImageReadError(
            f"{path}: cannot read this image (truncated, corrupt or not an image): {reason.strip()}"
        ) from None


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
        return sitk.DICOMOrient(image, "LPS")
    dim = image.GetDimension()
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in geometry.size], indexing="ij")).reshape(dim, -1).T
    points = geometry.index_to_lps(corners)
    low, high = points.min(axis=0), points.max(axis=0)
    spacing = np.full(dim, min(geometry.spacing))
    size = np.ceil((high - low) / spacing).astype(int) + 1
    reference = sitk.Image([int(s) for s in size], image.GetPixelID())
    reference.SetSpacing(spacing.tolist())
    reference.SetOrigin(low.tolist())
    reference.SetDirection(np.eye(dim).flatten().tolist())
    fill = float(sitk.GetArrayViewFromImage(image).min())
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, fill)


def resample_like(image, reference, *, nearest: bool = False, default: float = 0.0):
    """Resample ``image`` onto ``reference``'s grid (back to the original geometry)."""
    sitk = _sitk()
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(image, reference, sitk.Transform(), interpolator, default)


def resample_spacing(image, spacing: Tuple[float, ...], *, nearest: bool = False, default: float = -1024.0):
    """Resample to a new isotropic or per-axis spacing on the same box and direction."""
    sitk = _sitk()
    spacing = np.broadcast_to(np.asarray(spacing, float), (image.GetDimension(),))
    old = np.asarray(image.GetSpacing())
    size = np.maximum(1, np.round(np.asarray(image.GetSize()) * old / spacing)).astype(int)
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(
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
