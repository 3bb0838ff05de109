"""Which series of a DICOM study folder to analyse: the axial CT volume, never a localizer or a report.

A study exported from PACS keeps every series of the exam in one folder (or in ``SERIES`` sub-folders): the
localizer (topogram, scout), the axial reconstructions (often a thin and a thick one, soft-tissue and bone or lung
kernels), sagittal and coronal reformats, a dose report, secondary captures. A site that screens every CT that shows
the spine cannot name a series UID for each exam, so when no ``--series`` is given the series is chosen here, from the
header of each series' first file only:

1. **One patient, one study.** Series of more than one Patient ID or Study Instance UID in one folder are refused
   (:class:`~.images.ImageReadError` naming the folder): which exam is meant is the user's decision, and one
   patient's result must never be measured on, or filed under, another's images.
2. **Set aside** (each with its reason in the message): a modality other than CT; an Image Type with ``LOCALIZER``
   or a Secondary Capture / non-image SOP class (screenshots, dose reports, presentation states); fewer than
   :data:`MIN_SLICES` files (a localizer without its tag, a single key image); an unreadable header.
3. **Ranked**: acquired across the body's long axis first (slice normal within :data:`AXIAL_DEGREES` of the
   patient's head-foot axis; a sagittal or coronal reformat is resampled from it and is no sharper), then the thinnest
   Slice Thickness (heights of 15-30 mm bodies are read along the slice direction; Genant et al. 1993 graded on
   lateral films, where the body's borders are sharp), then the most slices (the longest stretch of spine), then
   ``ORIGINAL`` before ``DERIVED`` images, then the lowest Series Number (a stable order).

The choice is said in one line (:func:`choose_series` returns it) that the analysis keeps in its warnings and its
``input`` block, with the chosen series' UID, so the exported SEG and SR reference the series that was measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..validation import MIN_VOXELS_PER_AXIS
from .images import SERIES_UID_TAGS, SLICE_THICKNESS_TAG

#: Fewer files than this is not a CT volume (a localizer without its tag, a few key images): the least number of
#: slices the analysis accepts in any series (:data:`~VertebralFractureLib.validation.MIN_VOXELS_PER_AXIS`).
MIN_SLICES = MIN_VOXELS_PER_AXIS
#: Largest angle (degrees) between a series' slice normal and the patient's head-foot axis for an axial series.
AXIAL_DEGREES = 30.0
#: SOP classes that hold pictures or documents, not a CT volume: Secondary Capture (and its multi-frame forms),
#: Grayscale Softcopy Presentation State, the structured reports (dose reports among them), Encapsulated PDF.
NOT_A_VOLUME_SOP_PREFIXES = ("1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.11", "1.2.840.10008.5.1.4.1.1.88",
                             "1.2.840.10008.5.1.4.1.1.104")

_TAGS = {"patient": "0010|0020", "study": SERIES_UID_TAGS["study_uid"], "modality": "0008|0060",
         "image_type": "0008|0008", "sop_class": "0008|0016", "thickness": SLICE_THICKNESS_TAG,
         "orientation": "0020|0037", "description": "0008|103e", "number": "0020|0011"}


@dataclass
class SeriesHeader:
    """What the first file of one series says about it."""

    uid: str
    files: List[str]
    readable: bool = True
    patient: str = ""
    study: str = ""
    modality: str = ""
    image_type: Tuple[str, ...] = ()
    sop_class: str = ""
    thickness: Optional[float] = None
    normal: Optional[np.ndarray] = None
    description: str = ""
    number: Optional[int] = None
    #: Number of Frames of the first file (an enhanced CT holds the whole series in one file: :mod:`.multiframe`).
    frames: int = 1

    @property
    def slices(self) -> int:
        """Slices in the series: one per file, or the frames of a series stored as one multi-frame file."""
        return self.frames if len(self.files) == 1 else len(self.files)

    @property
    def name(self) -> str:
        """How the series is named to the user: its number and description, or its UID."""
        label = " ".join(part for part in (f"#{self.number}" if self.number is not None else "",
                                           f"'{self.description}'" if self.description else "") if part)
        return f"series {label}" if label else f"series {self.uid}"

    @property
    def axial(self) -> bool:
        """Slices across the head-foot axis (within :data:`AXIAL_DEGREES`)."""
        return self.normal is not None and abs(float(self.normal[2])) >= np.cos(np.radians(AXIAL_DEGREES))

    def set_aside(self) -> Optional[str]:
        """Why this series is not a CT volume to analyse, or None."""
        if not self.readable:
            return "its first file's header cannot be read"
        if self.modality and self.modality != "CT":
            return f"modality {self.modality}, not CT"
        if any(value.strip().upper() in ("LOCALIZER", "SCOUT") for value in self.image_type):
            return "a localizer"
        if self.sop_class.startswith(NOT_A_VOLUME_SOP_PREFIXES):
            return "a picture or a report, not CT slices"
        if self.slices < MIN_SLICES:
            return f"{len(self.files)} file{'s' if len(self.files) != 1 else ''}, fewer than {MIN_SLICES} slices"
        return None

    def describe(self) -> str:
        """The series as the chosen one is described: slices (frames of one file), orientation, thickness."""
        parts = [f"{self.slices} {'axial ' if self.axial else ''}slices"
                 + (" in one multi-frame file" if self.slices > len(self.files) else "")]
        if self.thickness is not None:
            parts.append(f"{self.thickness:g} mm thick")
        return f"{self.name} ({', '.join(parts)})"


def read_series_header(uid: str, files: Sequence[str]) -> SeriesHeader:
    """The :class:`SeriesHeader` of one series from its first file (no pixel data is read)."""
    from .images import plausible_thickness, read_header
    from .multiframe import frame_count, frame_geometry

    header = SeriesHeader(uid, list(files))
    reader = read_header(files[0]) if files else None
    if reader is None:
        header.readable = False
        return header

    def tag(name: str) -> str:
        key = _TAGS[name]
        return reader.GetMetaData(key).strip("\0 ") if reader.HasMetaDataKey(key) else ""

    header.patient, header.study = tag("patient"), tag("study")
    header.modality = tag("modality").upper()
    header.image_type = tuple(value.strip().upper() for value in tag("image_type").split("\\") if value.strip())
    header.sop_class, header.description = tag("sop_class"), tag("description")
    header.thickness = plausible_thickness(tag("thickness")) if tag("thickness") else None
    try:
        cosines = [float(v) for v in tag("orientation").split("\\")]
        normal = np.cross(cosines[:3], cosines[3:6])
        header.normal = normal / np.linalg.norm(normal) if np.linalg.norm(normal) > 0.5 else None
    except (ValueError, IndexError):
        header.normal = None
    try:
        header.number = int(float(tag("number")))
    except ValueError:
        header.number = None
    header.frames = frame_count(reader)
    if header.frames > 1 and len(files) == 1:  # an enhanced CT: orientation and thickness in its functional groups
        geometry = frame_geometry(files[0])
        if geometry is not None:
            header.normal = geometry.normal
            header.thickness = geometry.thickness if header.thickness is None else header.thickness
    return header


def _lateral_films_hint(headers: Sequence[SeriesHeader]) -> str:
    """Where a study folder of radiographs holds a picture whose header says it is lateral: which file to give.

    The radiograph analysis takes one picture (a file); a spine study of radiographs often holds a frontal and a lateral
    film, and only the lateral one can be measured (:mod:`VertebralFractureLib.radiograph.view_plane`).
    """
    from ..radiograph.view_plane import LATERAL, read_header_view

    films = [h.files[0] for h in headers if h.readable and len(h.files) == 1]
    lateral = [Path(f) for f in films if getattr(read_header_view(f), "plane", None) == LATERAL]
    if not lateral:
        return ""
    said = "the lateral radiographs among them are" if len(lateral) > 1 else "the lateral radiograph among them is"
    return f"; {said} analysed when given as a file: {', '.join(str(f) for f in lateral)}"


def _rank(header: SeriesHeader) -> tuple:
    return (not header.axial, header.thickness if header.thickness is not None else np.inf, -header.slices,
            "DERIVED" in header.image_type, header.number if header.number is not None else np.inf, header.uid)


def choose_series(folder: Path, series: Dict[str, List[str]]) -> Tuple[str, str]:
    """The series of a study folder to analyse, and the line that says which and why (module docstring).

    Args:
        folder: the folder (named in the messages).
        series: series UID -> its files (:func:`~.images.dicom_series_in`), more than one.

    Returns:
        ``(uid, line)``, e.g. ``"analysed series #2 'LUNG 3.0 B70f' (99 axial slices, 3 mm thick) of the folder's 3
        series; set aside: series #1 'Topogram' (a localizer); series #9 'Dose Report' (a picture or a report, ...)"``.

    Raises:
        ImageReadError: when the series belong to more than one patient or study, or none is a CT volume.
    """
    from .images import ImageReadError

    headers = sorted((read_series_header(uid, files) for uid, files in series.items()),
                     key=lambda h: (h.number if h.number is not None else np.inf, h.uid))  # as a viewer lists them
    listing = "; ".join(f"{h.uid} ({len(h.files)} files{', ' + repr(h.description) if h.description else ''})"
                        for h in headers)
    for what, key in (("patients", "patient"), ("studies", "study")):
        values = {getattr(h, key) for h in headers if getattr(h, key)}
        if len(values) > 1:
            raise ImageReadError(
                f"{folder}: the folder holds DICOM series of {len(values)} {what}; give each exam its own folder or "
                f"choose one series with --series UID: {listing}"
            )
    reasons = {h.uid: h.set_aside() for h in headers}
    candidates = sorted((h for h in headers if reasons[h.uid] is None), key=_rank)
    aside = "; ".join(f"{h.name} ({reasons[h.uid]})" for h in headers if reasons[h.uid] is not None)
    if not candidates:
        raise ImageReadError(f"{folder}: none of its {len(headers)} DICOM series is a CT volume: {aside}"
                             f"{_lateral_films_hint(headers)}")
    chosen = candidates[0]
    line = f"analysed {chosen.describe()} of the folder's {len(headers)} series"
    if len(candidates) > 1:
        line += " (axial first, then the thinnest slices, then the most)"
    others = [h.name for h in candidates[1:]]
    if others:
        line += f"; also CT volumes, not analysed: {', '.join(others)} (choose one with --series UID)"
    if aside:
        line += f"; set aside: {aside}"
    return chosen.uid, line


__all__ = ["AXIAL_DEGREES", "MIN_SLICES", "SeriesHeader", "choose_series", "read_series_header"]
