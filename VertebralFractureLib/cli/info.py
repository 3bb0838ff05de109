"""``vertebral-fracture info IMAGE``: geometry, orientation and intensity range of an image."""

from __future__ import annotations

import argparse
import json


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``info`` sub-command."""
    parser = subparsers.add_parser("info", help="print an image's geometry and intensity range")
    parser.add_argument("image", help="NIfTI / NRRD / MHA file, DICOM series folder or picture")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the image description as JSON (any dimension; NaN/Inf voxels counted from the raw data)."""
    import dataclasses

    import numpy as np
    import SimpleITK as sitk

    from ..io.images import (
        GANTRY_TILT_KEY,
        SERIES_CHOICE_KEY,
        SERIES_UID_TAGS,
        check_input_path,
        geometry_of,
        read_image,
        scan_nifti,
        set_resolution,
    )
    from ..io.interpolated import unrecorded_interpolation
    from ..radiograph.view_plane import header_view

    path = check_input_path(args.image)
    image = read_image(path, allow_non_finite=True)
    # a CT resampled finer than it was acquired: what it resolves, as the analysis reads it from the voxels
    interpolation = unrecorded_interpolation(image)
    if interpolation is not None:
        set_resolution(image, interpolation.resolution)
    array = sitk.GetArrayViewFromImage(image)
    dimension = image.GetDimension()
    if dimension in (2, 3):
        geometry = geometry_of(image)
        description = {"path": str(args.image), **geometry.to_dict(), "orientation": geometry.orientation_code}
    else:  # e.g. a 4D NIfTI (a time series): geometry without an orientation code
        description = {"path": str(args.image), "dimension": dimension, "size": list(image.GetSize()),
                       "spacing": list(image.GetSpacing()), "origin": list(image.GetOrigin()),
                       "direction": np.asarray(image.GetDirection()).reshape(dimension, dimension).tolist(),
                       "orientation": None}
    # a DICOM folder: which series was read (and why, where it held several), and a gantry tilt corrected
    for key, tag in {**SERIES_UID_TAGS, "series_choice": SERIES_CHOICE_KEY, "gantry_tilt_deg": GANTRY_TILT_KEY}.items():
        if image.HasMetaDataKey(tag):
            description[key] = image.GetMetaData(tag)
    if interpolation is not None:
        description["resampled"] = interpolation.describe()
    # the plane a DICOM header names (a radiograph that is not lateral is refused by the analysis)
    view = header_view(image)
    if view is not None:
        description["view_plane"] = dataclasses.asdict(view)
    values = np.asarray(array)
    finite = values[np.isfinite(values)] if values.dtype.kind in "fc" else values
    non_finite = int(values.size - finite.size)
    if path.is_file() and path.name.lower().endswith((".nii", ".nii.gz")):
        non_finite = max(non_finite, scan_nifti(path).non_finite)
    description.update({
        "pixel_type": image.GetPixelIDTypeAsString(),
        "components": image.GetNumberOfComponentsPerPixel(),
        "min": float(np.min(finite)) if finite.size else None,
        "max": float(np.max(finite)) if finite.size else None,
        "non_finite_voxels": non_finite,
    })
    print(json.dumps(description, indent=2))
    return 0
