"""Slicer segmentation files (``.seg.nrrd``) written with slicerio, with standard terminology.

A ``.seg.nrrd`` is a NRRD label volume whose header carries one ``SegmentN_*`` block per segment
(name, colour, label value, layer, extent, tags) and a few ``Segmentation_*`` keys; Slicer's
``vtkMRMLSegmentationStorageNode`` reads such a 3D file as a segmentation with one layer. The file is
written by ``slicerio.write_segmentation`` (the 3D Slicer project's own reader/writer without Slicer).

Every segment named after a vertebra level carries a ``TerminologyEntry`` tag with its SNOMED CT code,
so Slicer shows "Anatomical Structure / L1 vertebra" with the code instead of a generic "Tissue". The
codes are the one table of the package, :data:`VertebralFractureLib.export.dicom_outputs.VERTEBRA_CODES`
(DICOM PS3.16 CID 7603 "Vertebra" for C1-L5, as in pydicom's ``codes.SCT.L1Vertebra`` and in
github.com/bvdh/dicom-terminology-in-fhir ``ValueSet-dicom-cid-7603-Vertebra.fsh``; S1 "Sacrum"; T13 and L6
the generic "Vertebra"), so the ``.seg.nrrd`` and the DICOM SEG name a vertebra with the same code. The
category is Slicer's own "Anatomical Structure" (SCT 123037004, as in Slicer's terminology files and
slicerio's examples), so Slicer's terminology selector finds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..io.atomic import atomic_path

#: Slicer terminology context of the category/type and of the anatomic region.
TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
#: Category of every vertebra segment.
ANATOMICAL_STRUCTURE = ("SCT", "123037004", "Anatomical Structure")


class SegmentationFileError(ValueError):
    """A ``.seg.nrrd`` file that cannot be read as a segmentation."""


@dataclass(frozen=True)
class Segment:
    """One segment: its label value in the volume, name, RGB colour (0-1) and terminology (None: from the name)."""

    value: int
    name: str
    color: Tuple[float, float, float]
    terminology: Optional[str] = None


def vertebra_terminology(level: str) -> Optional[Dict[str, object]]:
    """The slicerio terminology dict of a vertebra level (``"L1"``), or None for a name that is no level."""
    from ..levels import LEVEL_NAMES
    from .dicom_outputs import GENERIC_VERTEBRA, VERTEBRA_CODES

    if level not in LEVEL_NAMES:
        return None
    kind = ["SCT", *VERTEBRA_CODES.get(level, GENERIC_VERTEBRA)]
    return {
        "contextName": TERMINOLOGY_CONTEXT,
        "category": list(ANATOMICAL_STRUCTURE),
        "type": kind,
        "anatomicContextName": ANATOMIC_CONTEXT,
    }


def _terminology(segment: Segment) -> Optional[Dict[str, object]]:
    from slicerio.segmentation import terminology_entry_from_string

    if segment.terminology:
        return terminology_entry_from_string(segment.terminology)
    return vertebra_terminology(segment.name)


def write_seg_nrrd(
    label_image, segments: Sequence[Segment], path: Union[str, Path], *, overwrite: bool = False
) -> Path:
    """Write a label image and its segment descriptions as a Slicer ``.seg.nrrd`` (slicerio).

    Args:
        label_image: SimpleITK integer image (0 = background) on the CT's grid.
        segments: one entry per label value to describe (values absent from the image get an
            empty extent but are kept, so a vertebra found without a mask is still listed); a
            segment named after a level gets that vertebra's SNOMED CT terminology.
        path: target file; must end with ``.seg.nrrd``.
        overwrite: replace an existing file.

    Raises:
        ValueError: for a wrong suffix or duplicate label values.
    """
    import SimpleITK as sitk
    import slicerio

    path = Path(path)
    if not path.name.endswith(".seg.nrrd"):
        raise ValueError(f"{path}: a segmentation file must end with .seg.nrrd")
    values = [s.value for s in segments]
    if len(set(values)) != len(values) or min(values, default=1) < 1:
        raise ValueError(f"segment label values must be unique and positive, got {values}")
    dtype = np.uint8 if max(values, default=0) < 256 else np.uint16
    array = sitk.GetArrayFromImage(label_image).astype(dtype)  # [k, j, i]
    ijk_to_lps = np.eye(4)
    ijk_to_lps[:3, :3] = np.asarray(label_image.GetDirection()).reshape(3, 3) @ np.diag(label_image.GetSpacing())
    ijk_to_lps[:3, 3] = label_image.GetOrigin()
    from scipy.ndimage import find_objects

    # every label's bounding box in one pass (a thin-slice 512 x 512 x 800 CT: 0.4 s, against 5 s for one
    # comparison and argwhere over the whole volume per segment)
    boxes = find_objects(array, max_label=max(values, default=0))
    described = []
    for segment in segments:
        box = boxes[segment.value - 1] if segment.value <= len(boxes) else None
        if box is not None:
            extent = [int(c) for axis in (2, 1, 0) for c in (box[axis].start, box[axis].stop - 1)]
        else:
            extent = [0, -1, 0, -1, 0, -1]
        entry: Dict[str, object] = {
            "id": f"Segment_{segment.value}",
            "name": segment.name,
            "nameAutoGenerated": False,
            "color": [float(f"{c:.6g}") for c in segment.color],
            "colorAutoGenerated": False,
            "labelValue": int(segment.value),
            "layer": 0,
            "extent": extent,
        }
        terminology = _terminology(segment)
        if terminology is not None:
            entry["terminology"] = terminology
        described.append(entry)
    document = {
        # [i, j, k], as slicerio writes them (Fortran order): the transposed view of the C-ordered [k, j, i] array is
        # Fortran-contiguous already, so nothing is copied before the writer's own tobytes
        "voxels": array.transpose(2, 1, 0),
        "ijkToLPS": ijk_to_lps,
        "encoding": "gzip",
        "containedRepresentationNames": ["Binary labelmap"],
        "masterRepresentation": "Binary labelmap",
        "referenceImageExtentOffset": [0, 0, 0],
        "segments": described,
    }
    with atomic_path(path, overwrite=overwrite) as temporary:
        slicerio.write_segmentation(str(temporary), document)
    return path


def read_terminology(path: Union[str, Path]) -> Dict[str, Dict[str, object]]:
    """Segment name -> terminology dict (slicerio's form) of a ``.seg.nrrd``; segments without one are left out."""
    import slicerio

    document = slicerio.read_segmentation(str(path), skip_voxels=True)
    return {s["name"]: s["terminology"] for s in document["segments"] if "terminology" in s}


def read_seg_nrrd(path: Union[str, Path]):
    """Read a ``.seg.nrrd``: the label image and its segments (3D one-layer files), terminology included.

    Raises:
        SegmentationFileError: if the file has no segment descriptions or several layers.
    """
    import SimpleITK as sitk

    from ..io.images import read_image

    image = read_image(path)
    keys = set(image.GetMetaDataKeys())
    fields: Dict[int, Dict[str, str]] = {}
    for key in keys:
        if key.startswith("Segment") and "_" in key and key[7:key.index("_")].isdigit():
            fields.setdefault(int(key[7:key.index("_")]), {})[key[key.index("_") + 1:]] = image.GetMetaData(key)
    if not fields:
        raise SegmentationFileError(f"{path}: no segment descriptions in the header; not a Slicer segmentation")
    if image.GetNumberOfComponentsPerPixel() != 1 or any(f.get("Layer", "0") != "0" for f in fields.values()):
        raise SegmentationFileError(f"{path}: segmentations with overlapping layers are not supported here")
    segments: List[Segment] = []
    for index in sorted(fields):
        f = fields[index]
        try:
            color = tuple(float(c) for c in f.get("Color", "0.5 0.5 0.5").split())
            tags = dict(t.split(":", 1) for t in f.get("Tags", "").split("|") if ":" in t)
            segments.append(Segment(int(f["LabelValue"]), f.get("Name", f"Segment {index}"), color,
                                    tags.get("TerminologyEntry")))
        except (KeyError, ValueError) as error:
            raise SegmentationFileError(f"{path}: segment {index} is malformed ({error})") from None
    return sitk.Cast(image, sitk.sitkUInt16), segments
