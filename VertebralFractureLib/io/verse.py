"""VerSe vertebra masks and centroid files (Sekuboyina et al. 2021; Löffler et al. 2020).

Masks are label images (NIfTI) whose values are VerSe vertebra labels (see
:mod:`VertebralFractureLib.levels`); 0 is background.

Centroid files (``*_ctd.json``) are a JSON list: the first entry gives the voxel axis codes,
``{"direction": ["P", "I", "R"]}``, every further entry one vertebra,
``{"label": 20, "X": 63.2, "Y": 141.9, "Z": 31.8}``.

Coordinate convention (checked on the real ``sub-verse004`` files in ``Testing/Data/real/verse``:
every centroid falls inside its own label of the mask when read this way, and outside the spine
when read as millimetres): X, Y and Z are *continuous voxel indices* along the first, second and
third axis of the image reoriented so that its axes point towards the three letters (nibabel /
ITK ``DICOMOrient`` convention: ``"P"`` = index grows towards posterior). They are not
millimetres. The optional ``"zoom"`` of the first entry (TPTBox files) gives the voxel size of
the grid the indices refer to, when it differs from the image's spacing; the grid keeps the
image's origin corner.
"""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..geometry import ImageGeometry
from ..levels import UnknownLevelError, label_from_level, level_from_label, level_index, normalise_level
from .atomic import atomic_write
from .images import ImageReadError, geometry_of, image_from_array, read_image, write_image
from .text import read_text_file

PathLike = Union[str, Path]

#: Axis letter -> (patient axis 0/1/2 = x/y/z of LPS, sign of the direction towards the letter).
AXIS_LETTERS = {"L": (0, 1), "R": (0, -1), "P": (1, 1), "A": (1, -1), "S": (2, 1), "I": (2, -1)}
DEFAULT_AXES = ("P", "I", "R")


class VerseFormatError(ValueError):
    """A VerSe mask or centroid file that cannot be used; the message names the file and the entry."""


# ---------------------------------------------------------------------------- geometry helpers
def reference_geometry(reference: Any) -> ImageGeometry:
    """The geometry of a reference: an :class:`ImageGeometry`, a SimpleITK image or an image path.

    For a path only the header is read.

    Raises:
        ImageReadError: if a path cannot be read.
        TypeError: for any other kind of object.

    """
    if isinstance(reference, ImageGeometry):
        return reference
    if isinstance(reference, (str, Path)):
        import SimpleITK as sitk

        path = Path(reference)
        if path.is_dir() or not path.is_file():
            return geometry_of(read_image(path))
        reader = sitk.ImageFileReader()
        reader.SetFileName(str(path))
        try:
            reader.ReadImageInformation()
        except RuntimeError:
            return geometry_of(read_image(path))
        dim = reader.GetDimension()
        return ImageGeometry(
            reader.GetSize(), reader.GetSpacing(), reader.GetOrigin(), np.reshape(reader.GetDirection(), (dim, dim))
        )
    if hasattr(reference, "GetDirection") and hasattr(reference, "GetSize"):
        return geometry_of(reference)
    raise TypeError(f"expected an ImageGeometry, a SimpleITK image or an image path, got {type(reference).__name__}")


def check_axes(axes: Sequence[str], where: str = "axis codes") -> tuple:
    """Validate three axis letters (one of L/R, one of P/A, one of S/I) and return them upper-case.

    Raises:
        VerseFormatError: naming ``where`` and the problem.

    """
    if isinstance(axes, str):
        axes = tuple(axes)
    try:
        letters = tuple(str(a).strip().upper() for a in axes)
    except TypeError:
        raise VerseFormatError(f"{where}: expected three axis letters such as ['P', 'I', 'R'], got {axes!r}") from None
    if len(letters) != 3 or any(a not in AXIS_LETTERS for a in letters):
        raise VerseFormatError(
            f"{where}: expected three axis letters from L/R, A/P, S/I such as ['P', 'I', 'R'], got {list(axes)!r}"
        )
    if len({AXIS_LETTERS[a][0] for a in letters}) != 3:
        raise VerseFormatError(f"{where}: axis codes {list(letters)} name the same patient axis twice")
    return letters


def reoriented_geometry(geometry: ImageGeometry, axes: Sequence[str]) -> ImageGeometry:
    """The geometry of the same voxel grid with its axes permuted and flipped towards ``axes``.

    This is what ``SimpleITK.DICOMOrient(image, "".join(axes))`` does to the geometry: every
    voxel keeps its physical position. Oblique images use the closest axis permutation.

    Raises:
        VerseFormatError: for invalid axis codes.

    """
    letters = check_axes(axes)
    if geometry.dimension != 3:
        raise VerseFormatError(f"VerSe axis codes need a 3D image, got a {geometry.dimension}D geometry")
    direction = geometry.direction
    targets = [AXIS_LETTERS[a] for a in letters]
    # source axis for every target axis: the permutation that best matches the patient axes
    best = max(
        itertools.permutations(range(3)),
        key=lambda perm: sum(abs(direction[targets[n][0], perm[n]]) for n in range(3)),
    )
    size, spacing, columns, corner = [], [], [], np.zeros(3)
    for n, source in enumerate(best):
        patient_axis, sign = targets[n]
        column = direction[:, source]
        flip = np.sign(column[patient_axis]) != sign
        size.append(geometry.size[source])
        spacing.append(geometry.spacing[source])
        columns.append(-column if flip else column)
        if flip:
            corner[source] = geometry.size[source] - 1
    origin = geometry.index_to_lps(corner)
    return ImageGeometry(tuple(size), tuple(spacing), tuple(origin), np.stack(columns, axis=1))


# ---------------------------------------------------------------------------- centroid files
def _number(entry: Mapping, key: str, where: str) -> float:
    if key not in entry:
        raise VerseFormatError(f"{where}: missing the coordinate {key!r}")
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VerseFormatError(f"{where}: coordinate {key!r} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise VerseFormatError(f"{where}: coordinate {key!r} is not finite ({value!r})")
    return float(value)


def parse_verse_centroids(document: Any, reference: Any, *, source: str = "centroid file") -> Dict[str, np.ndarray]:
    """Centroids from a parsed VerSe centroid document (see :func:`read_verse_centroids`).

    Args:
        document: the JSON list.
        reference: geometry of the image the centroids belong to (see :func:`reference_geometry`).
        source: name used in error messages (the file path).

    Raises:
        VerseFormatError: naming ``source`` and the entry.

    """
    if not isinstance(document, list) or not document:
        raise VerseFormatError(f"{source}: expected a non-empty JSON list (axis codes, then one entry per vertebra)")
    header = document[0]
    if not isinstance(header, dict) or "direction" not in header:
        example = '{"direction": ["P", "I", "R"]}'
        raise VerseFormatError(f"{source}: the first entry must give the axis codes, e.g. {example}")
    axes = check_axes(header["direction"], f"{source}: 'direction'")
    geometry = reoriented_geometry(reference_geometry(reference), axes)
    scale = np.ones(3)
    if header.get("zoom") is not None:
        try:
            zoom = np.asarray(header["zoom"], dtype=float).reshape(3)
        except (TypeError, ValueError):
            raise VerseFormatError(f"{source}: 'zoom' must be three voxel sizes, got {header['zoom']!r}") from None
        if not np.all(np.isfinite(zoom)) or np.any(zoom <= 0):
            raise VerseFormatError(f"{source}: 'zoom' must be three positive voxel sizes, got {header['zoom']!r}")
        scale = zoom / np.asarray(geometry.spacing)
    centroids: Dict[str, np.ndarray] = {}
    for number, entry in enumerate(document[1:], start=1):
        where = f"{source}: entry {number}"
        if not isinstance(entry, dict):
            raise VerseFormatError(f"{where}: expected an object with label, X, Y, Z, got {entry!r}")
        if "label" not in entry:
            raise VerseFormatError(f"{where}: missing 'label'")
        label = entry["label"]
        if (
            isinstance(label, bool)
            or not isinstance(label, (int, float))
            or not math.isfinite(label)
            or float(label) != int(label)
        ):
            raise VerseFormatError(f"{where}: 'label' must be an integer VerSe label, got {label!r}")
        try:
            level = level_from_label(int(label))
        except UnknownLevelError as error:
            raise VerseFormatError(f"{where}: {error}") from None
        where = f"{source}: entry {number} (label {int(label)}, {level})"
        if level in centroids:
            raise VerseFormatError(f"{where}: duplicate label {int(label)} ({level} appears twice)")
        index = np.array([_number(entry, key, where) for key in ("X", "Y", "Z")]) * scale
        centroids[level] = geometry.index_to_lps(index)
    return dict(sorted(centroids.items(), key=lambda item: level_index(item[0])))


def read_verse_centroids(path: PathLike, reference: Any) -> Dict[str, np.ndarray]:
    """Read a VerSe centroid JSON file.

    Args:
        path: the ``*_ctd.json`` file.
        reference: the image the centroids belong to (ImageGeometry, SimpleITK image or path);
            the indices refer to its voxel grid reoriented to the file's axis codes.

    Returns:
        Level name -> centroid in LPS mm, cranio-caudal.

    Raises:
        VerseFormatError: for invalid JSON, bad axis codes, unknown or duplicate labels,
            missing or non-finite coordinates; the message names the file and the entry.

    """
    path = Path(path)
    text = read_text_file(path, VerseFormatError)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise VerseFormatError(f"{path}: not valid JSON (empty or truncated?): {error}") from None
    return parse_verse_centroids(document, reference, source=str(path))


def verse_centroid_document(
    centroids_lps: Mapping[Union[str, int], Sequence[float]],
    reference: Any,
    axes: Sequence[str] = DEFAULT_AXES,
    decimals: Optional[int] = None,
) -> List[Dict[str, Any]]:
    """The VerSe centroid JSON list for LPS centroids (inverse of :func:`parse_verse_centroids`).

    Raises:
        VerseFormatError: for bad axis codes, unknown or duplicate levels, non-finite points.

    """
    letters = check_axes(axes)
    geometry = reoriented_geometry(reference_geometry(reference), letters)
    document: List[Dict[str, Any]] = [{"direction": list(letters)}]
    seen = set()
    rows = []
    for name, point in centroids_lps.items():
        try:
            level = normalise_level(name)
        except UnknownLevelError as error:
            raise VerseFormatError(f"centroid {name!r}: {error}") from None
        if level in seen:
            raise VerseFormatError(f"centroid {name!r}: duplicate level {level}")
        seen.add(level)
        point = np.asarray(point, dtype=float)
        if point.shape != (3,) or not np.all(np.isfinite(point)):
            raise VerseFormatError(f"centroid {level}: expected three finite LPS coordinates, got {point.tolist()}")
        index = geometry.lps_to_index(point)
        if decimals is not None:
            index = np.round(index, decimals)
        rows.append((level_index(level), {"label": label_from_level(level), **dict(zip("XYZ", map(float, index)))}))
    document += [row for _, row in sorted(rows, key=lambda item: item[0])]
    return document


def write_verse_centroids(
    path: PathLike,
    centroids_lps: Mapping[Union[str, int], Sequence[float]],
    reference: Any,
    axes: Sequence[str] = DEFAULT_AXES,
    *,
    decimals: Optional[int] = None,
    overwrite: bool = False,
) -> Path:
    """Write LPS centroids as a VerSe centroid JSON file (atomically).

    Args:
        path: target ``*_ctd.json``.
        centroids_lps: level name (or VerSe label) -> LPS mm point.
        reference: the image the centroids belong to.
        axes: voxel axis codes of the file (VerSe uses ``("P", "I", "R")``).
        decimals: round the indices (VerSe files use 1); None keeps full precision.
        overwrite: replace an existing file.

    Raises:
        VerseFormatError: for bad axis codes, unknown or duplicate levels, non-finite points.
        ExistingFileError: if the file exists and ``overwrite`` is False.

    """
    document = verse_centroid_document(centroids_lps, reference, axes, decimals)
    return atomic_write(path, json.dumps(document), overwrite=overwrite)


# ---------------------------------------------------------------------------- masks
def _check_mask_values(values: Iterable[float], source: str) -> List[int]:
    labels = []
    for value in values:
        if value == 0:
            continue
        if not math.isfinite(value) or float(value) != int(value):
            raise VerseFormatError(f"{source}: mask value {value} is not an integer label")
        try:
            level_from_label(int(value))
        except UnknownLevelError as error:
            raise VerseFormatError(f"{source}: {error}") from None
        labels.append(int(value))
    return labels


def read_verse_mask(path: PathLike):
    """Read a VerSe vertebra mask and check that every value is a VerSe label (or 0).

    Returns:
        The SimpleITK label image (pixel type unchanged).

    Raises:
        ImageReadError: if the file cannot be read.
        VerseFormatError: for values that are not VerSe vertebra labels (e.g. 27 or 41-50).

    """
    import SimpleITK as sitk

    image = read_image(path)
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise VerseFormatError(f"{path}: a VerSe mask must be a 3D single-component label image")
    _check_mask_values(np.unique(sitk.GetArrayViewFromImage(image)), str(path))
    return image


def mask_levels(mask_image) -> List[str]:
    """Level names present in a VerSe mask, cranio-caudal.

    Raises:
        VerseFormatError: for values that are not VerSe vertebra labels.

    """
    import SimpleITK as sitk

    labels = _check_mask_values(np.unique(sitk.GetArrayViewFromImage(mask_image)), "mask")
    return sorted((level_from_label(v) for v in labels), key=level_index)


def write_verse_mask(
    mask, path: PathLike, geometry: Optional[ImageGeometry] = None, *, overwrite: bool = False
) -> Path:
    """Write a VerSe vertebra mask as an 8-bit label image (atomically).

    Args:
        mask: SimpleITK label image, or an ``array[k, j, i]`` together with ``geometry``.
        path: target file (``.nii.gz`` as in VerSe).
        geometry: geometry of an array mask.
        overwrite: replace an existing file.

    Raises:
        VerseFormatError: for values that are not VerSe labels, or an array without geometry.
        ExistingFileError: if the file exists and ``overwrite`` is False.

    """
    import SimpleITK as sitk

    if isinstance(mask, np.ndarray):
        if geometry is None:
            raise VerseFormatError(f"{path}: an array mask needs its ImageGeometry")
        image = image_from_array(mask, geometry)
    else:
        image = mask
    _check_mask_values(np.unique(sitk.GetArrayViewFromImage(image)), str(path))
    image = sitk.Cast(image, sitk.sitkUInt8)
    return write_image(image, path, overwrite=overwrite)


def centroids_from_mask(mask_image, labels: Optional[Iterable[Union[str, int]]] = None) -> Dict[str, np.ndarray]:
    """Centre of mass of every vertebra label of a mask, in LPS mm.

    Args:
        mask_image: VerSe label image (SimpleITK image or path).
        labels: restrict to these levels (names or VerSe labels); all by default.

    Returns:
        Level name -> LPS point, cranio-caudal. Levels asked for but absent are left out.

    Raises:
        VerseFormatError: for values that are not VerSe vertebra labels.

    """
    import SimpleITK as sitk

    if isinstance(mask_image, (str, Path)):
        mask_image = read_verse_mask(mask_image)
    geometry = geometry_of(mask_image)
    array = sitk.GetArrayViewFromImage(mask_image)
    present = _check_mask_values(np.unique(array), "mask")
    if labels is not None:
        wanted = set()
        for name in labels:
            try:
                wanted.add(label_from_level(name))
            except UnknownLevelError as error:
                raise VerseFormatError(f"labels: {error}") from None
        present = [v for v in present if v in wanted]
    if not present:
        return {}
    flat = np.asarray(array).ravel()
    foreground = np.flatnonzero(flat)
    values = flat[foreground].astype(np.int64)
    counts = np.bincount(values, minlength=max(present) + 1)
    kji = np.unravel_index(foreground, array.shape)
    sums = [np.bincount(values, weights=axis.astype(float), minlength=counts.size) for axis in kji]
    out = {}
    for v in present:
        index = np.array([sums[2][v], sums[1][v], sums[0][v]]) / counts[v]
        out[level_from_label(v)] = geometry.index_to_lps(index)
    return dict(sorted(out.items(), key=lambda item: level_index(item[0])))


__all__ = [
    "AXIS_LETTERS",
    "DEFAULT_AXES",
    "ImageReadError",
    "VerseFormatError",
    "centroids_from_mask",
    "check_axes",
    "mask_levels",
    "parse_verse_centroids",
    "read_verse_centroids",
    "read_verse_mask",
    "reference_geometry",
    "reoriented_geometry",
    "verse_centroid_document",
    "write_verse_centroids",
    "write_verse_mask",
]
