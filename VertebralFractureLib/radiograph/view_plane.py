"""Which view a DICOM picture shows, from its header: lateral, frontal, oblique or axial.

Genant's semi-quantitative reading measures the anterior, middle and posterior heights of each vertebral body on a
**lateral** view (Genant et al. 1993); the 2D analysis (Gartland et al. 2025 centroids, Pisov et al. 2020 keypoints)
was built and validated for lateral views only. A frontal (AP / PA) film shows the body's left, middle and right
heights instead, and an oblique one foreshortens them; both are routine parts of a spine study, so a site that sends
every picture of a study would otherwise get their "heights" graded. Measured on frontal pictures of the real
reference CTs (the sample CT and the chest CT projected front-to-back as the lateral films of
:mod:`VertebralFractureLib.training.real.films` are, and coronal slices through their bodies): on 6 of 8 the detector
boxed three to six "vertebrae", and a chest projection with a clinical look and the sample CT's coronal slice each
had a body assessed and sent for review, the coronal slice another called normal (docs/findings.md, "A picture's plane
and its padding from the DICOM file").

Where the DICOM header says which plane the picture lies in, a picture that is not lateral is refused with one line
naming the tag (:func:`header_view`, in this order):

1. **Image Orientation (Patient)** (0020,0037), the direction cosines of the rows and columns in the patient's LPS
   frame (PS3.3 C.7.6.2.1.1), as a CT or MR slice (a sagittal reformat exported as one file) and some projection
   images carry it: the picture's normal is their cross product. A lateral picture's normal runs left-right, a
   frontal one's front-back, an axial one's head-foot; within :data:`PLANE_TOLERANCE_DEG` of one of them the plane
   is that one, otherwise oblique. The rows' front-back component also says which way the patient faces.
2. **Patient Orientation** (0020,0020), the patient directions of the rows and columns (PS3.3 C.7.6.1.1.1; Type 1
   on a DX image for presentation): the principal (first) letter of each. A or P on either axis is a lateral
   picture, L or R with no A or P a frontal one.
3. **View Position** (0018,5101), the radiographic view (PS3.3 C.8.11.5, C.8.1.1): AP or PA frontal, LL or RL
   lateral, RLO or LLO oblique; other values (decubitus, empty) say nothing about the plane.

A picture without such a header (PNG, JPEG, a NIfTI slice) is analysed as lateral, as before: three image cues
(symmetry across the detected column, the whole picture's mirror symmetry, which facing finds a column) were measured
on those frontal pictures and the real lateral slices and none told them apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

#: A picture's normal within this many degrees of the left-right, front-back or head-foot axis lies in that plane.
#: Sagittal reformats are exact; a lateral film of a rotated patient is within a few degrees; beyond 30 degrees the
#: bodies' front and back walls leave the plane (the anterior and posterior heights are no longer those walls).
PLANE_TOLERANCE_DEG = 30.0

IMAGE_ORIENTATION_TAG = "0020|0037"
PATIENT_ORIENTATION_TAG = "0020|0020"
VIEW_POSITION_TAG = "0018|5101"

#: View Position (0018,5101) values and the plane they name.
VIEW_POSITIONS = {"AP": "frontal", "PA": "frontal", "LL": "lateral", "RL": "lateral", "RLO": "oblique",
                  "LLO": "oblique"}

LATERAL = "lateral"


@dataclass(frozen=True)
class HeaderView:
    """The plane a DICOM picture lies in, as its header says.

    Attributes:
        plane: "lateral", "frontal", "oblique" or "axial".
        tag: the attribute that said so, e.g. "Image Orientation (Patient) (0020,0037)".
        value: its value as written.
        facing: on a lateral picture whose header says it, where the patient's front is ("left": column 0
            anterior, the models' convention; "right"); otherwise None.
    """

    plane: str
    tag: str
    value: str
    facing: Optional[str] = None

    @property
    def said(self) -> str:
        """What said so, e.g. "View Position (0018,5101) is 'PA'"."""
        return f"{self.tag} is '{self.value}'"

    def describe(self) -> str:
        """The plane and what said so (``input["view_plane"]`` of a result)."""
        return f"{self.plane} ({self.said})"


def _text(header, key: str) -> str:
    return header.GetMetaData(key).strip() if header.HasMetaDataKey(key) else ""


def _from_image_orientation(text: str) -> Optional[HeaderView]:
    try:
        cosines = np.array([float(v) for v in text.split("\\")], dtype=np.float64)
    except ValueError:
        return None
    if cosines.shape != (6,) or not np.all(np.isfinite(cosines)):
        return None
    row, column = cosines[:3], cosines[3:]
    normal = np.cross(row, column)
    if np.linalg.norm(normal) < 1e-6:
        return None
    normal /= np.linalg.norm(normal)
    tag = "Image Orientation (Patient) (0020,0037)"
    axis = int(np.argmax(np.abs(normal)))
    if abs(normal[axis]) < np.cos(np.radians(PLANE_TOLERANCE_DEG)):
        return HeaderView("oblique", tag, text)
    plane = (LATERAL, "frontal", "axial")[axis]
    facing = None
    if plane == LATERAL and abs(row[1]) >= 0.5:  # LPS: +y is posterior; rows running backwards put the front left
        facing = "left" if row[1] > 0 else "right"
    return HeaderView(plane, tag, text, facing)


def _from_patient_orientation(text: str) -> Optional[HeaderView]:
    values = [v.strip().upper() for v in text.split("\\")]
    principal = {v[:1] for v in values if v}
    if len(values) != 2 or not principal:
        return None
    tag = "Patient Orientation (0020,0020)"
    if principal & {"A", "P"}:
        facing = {"A": "right", "P": "left"}.get(values[0][:1])
        return HeaderView(LATERAL, tag, text, facing)
    if principal & {"L", "R"}:
        return HeaderView("frontal", tag, text)
    return None


def header_view(header) -> Optional[HeaderView]:
    """The plane a DICOM picture's header says it lies in (module doc), or None when it does not say.

    Args:
        header: a SimpleITK image or image file reader with the DICOM tags as metadata (``"gggg|eeee"`` keys).
    """
    if header is None or not hasattr(header, "HasMetaDataKey"):
        return None
    orientation = _text(header, IMAGE_ORIENTATION_TAG)
    if orientation:
        found = _from_image_orientation(orientation)
        if found is not None:
            return found
    patient = _text(header, PATIENT_ORIENTATION_TAG)
    if patient:
        found = _from_patient_orientation(patient)
        if found is not None:
            return found
    position = _text(header, VIEW_POSITION_TAG).upper()
    if position in VIEW_POSITIONS:
        return HeaderView(VIEW_POSITIONS[position], "View Position (0018,5101)", position)
    return None


def read_header_view(path: Union[str, Path]) -> Optional[HeaderView]:
    """:func:`header_view` of a file, reading its header only; None for a picture or volume file, or no header."""
    from ..io.images import read_header
    from .reading import PICTURE_SUFFIXES, VOLUME_SUFFIXES, _suffix

    if _suffix(Path(path)) in PICTURE_SUFFIXES + VOLUME_SUFFIXES:
        return None
    return header_view(read_header(path))


def not_lateral(name: str, view: HeaderView) -> str:
    """The one line refusing a picture that is not a lateral view."""
    what = {"frontal": "a frontal (AP / PA) view", "oblique": "an oblique view", "axial": "an axial slice"}
    return (f"{name}: {what.get(view.plane, view.plane)} ({view.said}); vertebral heights are "
            "measured on a lateral view of the spine: give the lateral view")
