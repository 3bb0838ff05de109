r"""Reading lateral radiographs: PNG / JPEG / TIFF pictures and DICOM files, with the pixel spacing when known.

Spacing sources, in order: DICOM ``PixelSpacing`` (0028,0030), else ``ImagerPixelSpacing``
(0018,1164; at the detector, what a lateral spine film usually carries); a PNG's ``sCAL`` chunk
(physical scale, written by SimpleITK / ITK); otherwise unknown (``None``), and the analysis
estimates it from the vertebrae (:mod:`.spacing`). A PNG's ``pHYs`` chunk is ignored: most
software writes a screen resolution there (72 or 96 dpi), not the size of the anatomy.
DICOM spacings are "row spacing \\ column spacing"; this module returns ``(column_mm, row_mm)``
like :attr:`VertebralFractureLib.schema.SpineResult.pixel_spacing`.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Optional, Tuple, Union

import numpy as np

PathLike = Union[str, Path]
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _png_has_physical_size(path: Path) -> bool:
    """Whether a PNG carries an ``sCAL`` chunk (physical pixel scale) before its image data."""
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != b"\x89PNG\r\n\x1a\n":
                return False
            while True:
                header = handle.read(8)
                if len(header) < 8:
                    return False
                length, kind = struct.unpack(">I4s", header)
                if kind == b"sCAL":
                    return length > 3
                if kind in (b"IDAT", b"IEND"):
                    return False
                handle.seek(length + 4, 1)
    except OSError:
        return False


def _dicom_spacing(image) -> Optional[Tuple[float, float]]:
    for tag in ("0028|0030", "0018|1164"):
        if image.HasMetaDataKey(tag):
            try:
                row_mm, col_mm = (float(v) for v in image.GetMetaData(tag).strip().split("\\")[:2])
            except ValueError:
                continue
            if row_mm > 0 and col_mm > 0:
                return (col_mm, row_mm)
    return None


def to_grey(array: np.ndarray) -> np.ndarray:
    """A 2D float32 array from a grey, grey+alpha, RGB(A) or single-slice array."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] in (2, 3, 4):
        channels = array[..., :3] if array.shape[-1] >= 3 else array[..., :1]
        array = channels.astype(np.float32).mean(axis=-1)
    if array.ndim != 2:
        raise ValueError(f"expected a 2D image, got an array of shape {array.shape}")
    return array.astype(np.float32)


def read_radiograph(path: PathLike) -> Tuple[np.ndarray, Optional[Tuple[float, float]]]:
    """Read a lateral radiograph as a 2D float32 array ``[row, column]`` and its pixel spacing.

    Colour pictures are averaged to grey; DICOM ``MONOCHROME1`` (white = low attenuation) is
    inverted so that bone is bright, as in the training images.

    Returns:
        (image, (column_mm, row_mm) or None when the file does not say).

    Raises:
        VertebralFractureLib.io.images.ImageReadError: for a missing, empty or unreadable file.
        VertebralFractureLib.validation.InputError: for a volume with more than one slice.

    """
    from ..io.images import read_image
    from ..validation import InputError

    path = Path(path)
    image = read_image(path)
    array = np.asarray(__import__("SimpleITK").GetArrayFromImage(image))
    if image.GetNumberOfComponentsPerPixel() == 1 and array.ndim == 3 and array.shape[0] > 1:
        raise InputError(f"{path.name}: a volume of {array.shape[0]} slices; a single lateral radiograph is expected")
    grey = to_grey(array)
    suffix = _suffix(path)
    spacing: Optional[Tuple[float, float]] = None
    if suffix in (".png",) and _png_has_physical_size(path):
        spacing = tuple(float(s) for s in image.GetSpacing()[:2])
    elif suffix not in PICTURE_SUFFIXES:
        spacing = _dicom_spacing(image)
        if spacing is None and suffix in VOLUME_SUFFIXES:
            spacing = tuple(float(s) for s in image.GetSpacing()[:2])
        grey = bone_bright(grey, image)
    return grey, spacing


def bone_bright(grey: np.ndarray, header) -> np.ndarray:
    """Invert a DICOM ``MONOCHROME1`` image (0028,0004: white = low values) so that bone is bright."""
    photometric = header.GetMetaData("0028|0004").strip() if header.HasMetaDataKey("0028|0004") else ""
    if photometric == "MONOCHROME1":
        return float(grey.max()) + float(grey.min()) - grey
    return grey


def is_radiograph(source: Union[PathLike, Any]) -> bool:
    """Whether an input is a 2D image (the radiograph path) rather than a CT volume.

    True for a 2D array or SimpleITK image, a single-slice volume, a colour picture, and any
    PNG / JPEG / TIFF / BMP file or single DICOM file holding one frame. A folder (DICOM series)
    is a CT. Only the header is read for volume files.
    """
    if isinstance(source, np.ndarray):
        return source.ndim == 2 or (source.ndim == 3 and (min(source.shape) == 1 or source.shape[-1] in (3, 4)))
    if hasattr(source, "GetDimension"):
        size = source.GetSize()
        return source.GetDimension() == 2 or min(size) == 1 or source.GetNumberOfComponentsPerPixel() > 1
    path = Path(source)
    if path.is_dir() or not path.exists():
        return False
    if _suffix(path) in PICTURE_SUFFIXES:
        return True
    import SimpleITK as sitk

    try:
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        reader.ReadImageInformation()
    except RuntimeError:
        return False
    size = reader.GetSize()
    return reader.GetDimension() == 2 or min(size) == 1 or reader.GetNumberOfComponents() > 1
