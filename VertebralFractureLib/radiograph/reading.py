r"""Reading lateral radiographs: PNG / JPEG / TIFF pictures and DICOM files, with the pixel size when known.

Where the pixel size comes from (:class:`PixelSize`, recorded as ``pixel_size_source`` in the result):

1. DICOM Pixel Spacing (0028,0030): the spacing in the patient (PS3.3 C.7.6.2 Image Plane Module,
   and for projection images PS3.3 10.7.1.3 Pixel Spacing Calibration); used as it is.
2. DICOM Imager Pixel Spacing (0018,1164) divided by Estimated Radiographic Magnification Factor
   (0018,1114). Imager Pixel Spacing is measured at the front plane of the detector (PS3.3
   C.8.11.4 DX Detector Module, C.8.1.2 CR Image Module); the magnification factor is the ratio
   of the source-detector to the source-object distance, SID / SOD (PS3.3 C.8.11.5 DX
   Positioning Module, C.8.7.6 XRF Positioner Module), so a length in the patient is the length
   at the detector divided by it. A factor below 1 (SOD > SID) cannot be geometry and is ignored.
3. Imager Pixel Spacing alone: heights are at the detector plane, larger than the anatomy by the
   (unknown) geometric magnification; the source says so and the analysis warns.
4. A PNG's ``sCAL`` chunk (physical scale, written by SimpleITK / ITK), or the spacing in the
   header of a NIfTI / NRRD / MetaImage single slice; except exactly 1 x 1, the value ITK writes for an
   image made from an array without a spacing (``sitk.GetImageFromArray`` then ``WriteImage``): that is no
   measurement (a radiograph's pixels are 0.1-0.2 mm), so it counts as no pixel size
   (:data:`DEFAULT_SPACING`).
5. Otherwise none: heights in pixels. A PNG's ``pHYs`` chunk is ignored: most software writes a
   screen resolution there (72 or 96 dpi), not the size of the anatomy.

DICOM spacings are "row spacing \\ column spacing"; this module returns ``(column_mm, row_mm)``
like :attr:`VertebralFractureLib.schema.SpineResult.pixel_spacing`.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
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


#: ``pixel_size_source`` values (see the module docstring).
FROM_PIXEL_SPACING = "PixelSpacing"
FROM_IMAGER_AND_MAGNIFICATION = "ImagerPixelSpacing/EstimatedRadiographicMagnificationFactor"
FROM_IMAGER_AT_DETECTOR = "ImagerPixelSpacing (detector plane)"
FROM_PNG_SCAL = "PNG sCAL chunk"
FROM_VOLUME_HEADER = "image header spacing"
FROM_CALLER = "given"
NO_PIXEL_SIZE = "none: heights in pixels"
#: The spacing ITK writes into a PNG ``sCAL`` chunk or an image header when none was set: not a pixel size.
DEFAULT_SPACING = (1.0, 1.0)
#: DICOM tags as SimpleITK / GDCM name them in the metadata dictionary.
PIXEL_SPACING_TAG = "0028|0030"
IMAGER_PIXEL_SPACING_TAG = "0018|1164"
MAGNIFICATION_TAG = "0018|1114"


@dataclass(frozen=True)
class PixelSize:
    """The pixel size of a radiograph and where it came from.

    Attributes:
        spacing: ``(column_mm, row_mm)``, None when unknown (heights are then in pixels).
        source: one of the ``FROM_*`` / :data:`NO_PIXEL_SIZE` values of this module.
        magnification: the Estimated Radiographic Magnification Factor (0018,1114) that divided
            the Imager Pixel Spacing, None when not used.

    """

    spacing: Optional[Tuple[float, float]]
    source: str
    magnification: Optional[float] = None

    @property
    def unit(self) -> str:
        """``"mm"`` when the spacing is known, else ``"pixel"``."""
        return "mm" if self.spacing is not None else "pixel"

    @property
    def at_detector(self) -> bool:
        """Whether lengths are at the detector plane (Imager Pixel Spacing without a magnification factor)."""
        return self.source == FROM_IMAGER_AT_DETECTOR

    def note(self) -> Optional[str]:
        """One sentence for the user when the heights are not plain mm in the patient; None otherwise."""
        if self.spacing is None:
            return ("no pixel size: heights in pixels (no DICOM Pixel Spacing / Imager Pixel Spacing, no physical "
                    "size in the header); the Genant ratio G and the grades need no calibration")
        if self.at_detector:
            return ("heights in mm at the detector plane: the DICOM file gives Imager Pixel Spacing (0018,1164) "
                    "without Estimated Radiographic Magnification Factor (0018,1114), so lengths are larger than "
                    "in the patient by the unknown geometric magnification (source-detector over source-object "
                    "distance); the Genant ratio G and the grades do not depend on it")
        return None


def _pair(text: str) -> Optional[Tuple[float, float]]:
    r"""``(column_mm, row_mm)`` from a DICOM "row \ column" decimal string; None when not two positive numbers."""
    try:
        row_mm, col_mm = (float(v) for v in text.strip().split("\\")[:2])
    except ValueError:
        return None
    if not (np.isfinite(row_mm) and np.isfinite(col_mm) and row_mm > 0 and col_mm > 0):
        return None
    return (col_mm, row_mm)


def _magnification(text: str) -> Optional[float]:
    """The Estimated Radiographic Magnification Factor (0018,1114); None when missing or not >= 1 (SID >= SOD)."""
    try:
        value = float(text.strip().split("\\")[0])
    except ValueError:
        return None
    return value if np.isfinite(value) and value >= 1.0 else None


def dicom_pixel_size(header) -> Optional[PixelSize]:
    """The pixel size a DICOM header states, by the order of the module docstring; None when it states none.

    Args:
        header: anything with SimpleITK's ``HasMetaDataKey`` / ``GetMetaData`` (an image or a reader).

    """
    def tag(key: str) -> Optional[str]:
        return header.GetMetaData(key) if header.HasMetaDataKey(key) else None

    spacing = _pair(tag(PIXEL_SPACING_TAG) or "")
    if spacing is not None:
        return PixelSize(spacing, FROM_PIXEL_SPACING)
    imager = _pair(tag(IMAGER_PIXEL_SPACING_TAG) or "")
    if imager is None:
        return None
    magnification = _magnification(tag(MAGNIFICATION_TAG) or "")
    if magnification is None:
        return PixelSize(imager, FROM_IMAGER_AT_DETECTOR)
    return PixelSize((imager[0] / magnification, imager[1] / magnification), FROM_IMAGER_AND_MAGNIFICATION,
                     magnification)


def _dicom_spacing(image) -> Optional[Tuple[float, float]]:
    """``(column_mm, row_mm)`` of :func:`dicom_pixel_size`, None when the header states none."""
    size = dicom_pixel_size(image)
    return None if size is None else size.spacing


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
    inverted so that bone is bright, as in the training images. :func:`read_radiograph_pixel_size`
    also says where the spacing came from.

    Returns:
        (image, (column_mm, row_mm) or None when the file does not say).

    Raises:
        VertebralFractureLib.io.images.ImageReadError: for a missing, empty or unreadable file.
        VertebralFractureLib.validation.InputError: for a volume with more than one slice.

    """
    grey, size = read_radiograph_pixel_size(path)
    return grey, size.spacing


def read_radiograph_pixel_size(path: PathLike) -> Tuple[np.ndarray, PixelSize]:
    """Read a lateral radiograph as :func:`read_radiograph` does, with a :class:`PixelSize` (where the size came from).

    Raises:
        VertebralFractureLib.io.images.ImageReadError: for a missing, empty or unreadable file.
        VertebralFractureLib.validation.InputError: for a volume with more than one slice.

    """
    from ..io.images import ImageReadError, read_image
    from ..validation import InputError

    path = Path(path)
    try:
        image = read_image(path)
    except ImageReadError:
        image = _picture_with_pillow(path)
        if image is None:
            raise
    array = np.asarray(__import__("SimpleITK").GetArrayFromImage(image))
    if image.GetNumberOfComponentsPerPixel() == 1 and array.ndim == 3 and array.shape[0] > 1:
        raise InputError(f"{path.name}: a volume of {array.shape[0]} slices; a single lateral radiograph is expected")
    grey = to_grey(array)
    suffix = _suffix(path)
    size = PixelSize(None, NO_PIXEL_SIZE)
    header = tuple(float(s) for s in image.GetSpacing()[:2])
    if suffix in (".png",) and _png_has_physical_size(path) and header != DEFAULT_SPACING:
        size = PixelSize(header, FROM_PNG_SCAL)
    elif suffix not in PICTURE_SUFFIXES:
        # GDCM also copies Imager Pixel Spacing into the image spacing: the tags are read, never GetSpacing()
        size = dicom_pixel_size(image) or size
        if size.spacing is None and suffix in VOLUME_SUFFIXES and header != DEFAULT_SPACING:
            size = PixelSize(header, FROM_VOLUME_HEADER)
        grey = bone_bright(grey, image)
    return grey, size


#: Pillow modes of a picture SimpleITK cannot read that are converted to grey (8 bits) for the analysis: grey with an
#: alpha channel (a PNG saved with transparency by a browser or an editor), palette, and their colour relatives.
PILLOW_TO_GREY = ("LA", "La", "PA", "P", "1", "RGBa", "CMYK", "YCbCr", "LAB", "HSV")


def _picture_with_pillow(path: Path):
    """A PNG / JPEG / TIFF / BMP that SimpleITK does not read (e.g. grey with alpha) as a 2D SimpleITK image, or None.

    Read with Pillow and converted to grey (:data:`PILLOW_TO_GREY`; the alpha channel is left out); no pixel size is
    taken from it. None when the file is not such a picture or Pillow cannot read it either (the caller's error
    stands: a truncated or corrupt file).
    """
    import SimpleITK as sitk
    from PIL import Image

    if _suffix(path) not in PICTURE_SUFFIXES:
        return None
    try:
        with Image.open(path) as picture:
            picture.load()
            grey = picture.convert("L") if picture.mode in PILLOW_TO_GREY else picture
            array = np.asarray(grey)
    except (OSError, ValueError, SyntaxError):
        return None
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[-1] in (3, 4)):
        return None
    return sitk.GetImageFromArray(array, isVector=array.ndim == 3)


#: The CT number of air (HU). A CT slice in HU holds lower values only outside the reconstructed field of view: the
#: scanner's padding (-2048 or -3024; DICOM Pixel Padding Value (0028,0120) where the file names it), 11 % of the real
#: sagittal reformat A067967_19001231.
AIR_HU = -1024.0
#: Least share of the picture at CT air (:data:`AIR_HU` ... -900 HU) for a picture with values below :data:`AIR_HU` to
#: be read as a CT slice in HU: a radiograph or an export stores no such values.
AIR_SHARE = 0.01


def padding_as_air(grey: np.ndarray) -> np.ndarray:
    """A CT slice in HU with its padding outside the reconstructed field of view (below -1024 HU) set to air.

    The padding is no tissue, but it would count as the picture's darkest class and move the windows the detector, the
    2D gate and the sacral anchor read (:func:`.gate2d.body_window`): four of the real sagittal slices of
    ``covid_sagittal`` pad with -2048 in their DICOM files; read so, one of them gave "no vertebral body was found" and
    two named or graded other bodies than with the padding read as air (docs/findings.md, "A picture's plane and its
    padding from the DICOM file").
    """
    grey = np.asarray(grey, dtype=np.float32)
    if grey.size == 0 or float(grey.min()) >= AIR_HU:
        return grey
    if float(np.mean((grey >= AIR_HU) & (grey <= -900.0))) < AIR_SHARE:
        return grey
    return np.maximum(grey, np.float32(AIR_HU))


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
    from ..io.images import read_header

    reader = read_header(path)
    if reader is None:
        return False
    size = reader.GetSize()
    return reader.GetDimension() == 2 or min(size) == 1 or reader.GetNumberOfComponents() > 1
