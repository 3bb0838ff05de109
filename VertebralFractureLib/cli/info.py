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
    """Print the image description as JSON."""
    import numpy as np
    import SimpleITK as sitk

    from ..io.images import geometry_of, read_image

    image = read_image(args.image)
    array = sitk.GetArrayViewFromImage(image)
    geometry = geometry_of(image)
    description = {
        "path": str(args.image),
        **geometry.to_dict(),
        "orientation": geometry.orientation_code,
        "pixel_type": image.GetPixelIDTypeAsString(),
        "components": image.GetNumberOfComponentsPerPixel(),
        "min": float(np.min(array)),
        "max": float(np.max(array)),
    }
    print(json.dumps(description, indent=2))
    return 0
