"""A CT masked to one vertebra, measured from the outline of its bone.

Some real CT crops come masked: one vertebra cut out of its spine and every voxel outside its bone set to one
value (Bonelab's spineFE benchmark: VerSe vertebrae cropped, density-calibrated and masked to the bone, 0 around
them). The CT analysis finds the spine from the tissue around it and the endplates from the discs, so on such a crop
it has nothing to read (:func:`VertebralFractureLib.validation.check_ct` refuses a masked CT). But the crop
outlines the vertebra's bone itself: its voxels that are not the fill value are a whole-vertebra mask. This module
checks that they hold one vertebra and measures it as a vertebra mask is measured
(:func:`VertebralFractureLib.shape.measure.measure_from_mask`: body separated at the spinal canal, the antero-posterior
axis read from the anatomy, six keypoints where the outline crosses 0.5 on the body's mid-sagittal section; Pisov et
al. 2020, section 2, eq. 1; Genant et al. 1993). The endplates are the edge of the masked bone, not read from the
intensities.

The level: a vertebra cut out of its spine has no neighbour to count from. A level in the file name
(``L2.nii.gz``, ``vertebrae_L2.nii.gz``: :func:`VertebralFractureLib.io.label_schemes.level_of_name`, as a
single-structure mask file is read) names it; otherwise the level is unknown, said so, and shown as ``L1?`` (a
thoracolumbar name, so that no cervical, sacral or lowest-lumbar rule applies) until the user sets it. Naming it by
the nearest normal body size (Panjabi et al. 1991, 1992) was tried: on 45 generated vertebrae masked out of their
spines it named none right, median 4 levels off (body size varies more between people than between neighbouring
levels), and the two real crops L1 for L2 and L3.

Measured on the real VerSe sub-verse004 L2 crop (``benchmarks/bench_real.py``): G against the radiologists'
sub-region mask (body labels 1-2) in ``docs/findings.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np

#: Share of the structure's voxels its largest connected part must hold: a masked crop of one vertebra is one piece
#: of bone; a crop masked to several vertebrae falls apart at the discs.
MIN_LARGEST_SHARE = 0.9
#: Largest bone in front of the vertebral foramen over the body kept there (its largest connected part): 1.00 on every
#: one of 29 real vertebrae of three real masks (VerSe sub-verse004, sample001, TPTBox), 1.27-1.98 on the 14 pairs of
#: neighbouring vertebrae of those masks labelled as one whose foramen was found (the other pairs have none).
MAX_FRONT_SHARE = 1.15
#: Label of a structure whose level is unknown (L1: a thoracolumbar level no level-specific rule applies to).
PROVISIONAL_LABEL = 20


@dataclass
class MaskedStructure:
    """The one vertebra of a masked CT, as a label image on the CT's grid.

    Attributes:
        labels: uint8 SimpleITK image, the vertebra's bone labelled with its level's VerSe number.
        level: that level.
        levels: the result's ``patient["levels"]`` entry (``certain`` False when the level is unknown).
        fill: the value everything outside the bone holds.
        share: share of the volume holding ``fill``.
    """

    labels: Any
    level: str
    levels: Dict[str, object]
    fill: float
    share: float


def masked_structure(image, fill: float, share: float, name: str) -> MaskedStructure:
    """The vertebra a masked CT holds, named (module doc), or an :class:`~VertebralFractureLib.validation.InputError`.

    Args:
        image: the CT (SimpleITK) as read.
        fill: the value the masking set (:func:`VertebralFractureLib.validation.masked_fill`).
        share: the share of the volume holding it.
        name: the file name (the level, when it names one; messages).

    Raises:
        InputError: the structure is not one vertebra (several pieces, too small or too large, no vertebral
            foramen, two bodies), with the masked-CT message.
    """
    import SimpleITK as sitk
    from scipy import ndimage

    from ..io.images import geometry_of
    from ..io.label_schemes import level_of_name
    from ..levels import label_from_level, level_from_label, region_of
    from ..validation import InputError
    from .body_axes import find_bodies
    from .measure import MAX_VERTEBRA_MM3, MIN_VERTEBRA_MM3

    def refuse(why: str) -> InputError:
        return InputError(f"{name}: {share:.0%} of the voxels hold exactly {fill:g}: the CT looks masked "
                          f"(everything around one structure set to one value) and {why}; the spine is found from "
                          "the tissue around it and the endplates from the discs, so give the unmasked CT")

    bone = np.asarray(sitk.GetArrayViewFromImage(image)) != fill
    parts, count = ndimage.label(bone)
    if count == 0:
        raise refuse("nothing is left")
    sizes = np.bincount(parts.ravel())[1:]
    largest = int(np.argmax(sizes)) + 1
    if sizes[largest - 1] < MIN_LARGEST_SHARE * sizes.sum():
        raise refuse(f"what is left falls into {count} pieces, not one vertebra")
    geometry = geometry_of(image)
    volume = float(sizes[largest - 1]) * float(np.prod(geometry.spacing))
    if not MIN_VERTEBRA_MM3 <= volume <= MAX_VERTEBRA_MM3:
        raise refuse(f"what is left ({volume / 1000:.1f} cm^3) is not the size of one vertebra")
    vertebra = parts == largest
    body = next(iter(find_bodies(np.where(vertebra, PROVISIONAL_LABEL, 0).astype(np.uint8), geometry).values()))
    if not body.separated:
        raise refuse("what is left shows no vertebral foramen (not one whole vertebra)")
    if body.front_voxels > MAX_FRONT_SHARE * len(body.index):
        raise refuse("what is left holds more than one vertebral body")
    named = level_of_name(Path(name).name)
    if named is not None and region_of(named) in ("T", "L"):
        level = named
        levels: Dict[str, object] = {
            "anchor": "file name", "certain": True,
            "method": f"one vertebra masked out of its spine, named {named} by the file name"}
    else:
        level = level_from_label(PROVISIONAL_LABEL)
        levels = {"anchor": None, "certain": False, "uncertain_because": "one vertebra cut out of its spine",
                  "method": f"level unknown: one vertebra masked out of its spine has no neighbour to count from; "
                            f"shown as {level} until a level is set by hand"}
    return MaskedStructure(labels=_label_image(vertebra, label_from_level(level), image), level=level, levels=levels,
                           fill=float(fill), share=float(share))


def _label_image(mask: np.ndarray, value: int, like):
    import SimpleITK as sitk

    labels = sitk.GetImageFromArray(np.where(mask, value, 0).astype(np.uint8))
    labels.CopyInformation(like)
    return labels


#: Pixel size (mm) of the vertebra's mid-sagittal section drawn for the overview, and its margin around the body.
SECTION_MM = 0.5
SECTION_MARGIN_MM = 25.0


def mid_section(image, keypoints: np.ndarray) -> Tuple[np.ndarray, np.ndarray, Tuple[float, float]]:
    """The CT on the measured body's own mid-sagittal plane, for the overview (in place of the straightened spine).

    Args:
        image: the CT (SimpleITK).
        keypoints: the body's six keypoints (LPS mm).

    Returns:
        ``(section, points, spacing)``: float32 ``[row, column]`` (row 0 superior, column 0 anterior), the six
        keypoints ``[column, row]`` in its pixels, and its ``(row, column)`` pixel size in mm.
    """
    from ..quality.checks import BodyFrame
    from ..spine.straighten import body_plane

    points = np.asarray(keypoints, dtype=np.float64)
    frame = BodyFrame.from_keypoints(points)
    centre = points.mean(axis=0)
    offsets = points - centre
    reach = SECTION_MARGIN_MM + 0.5 * float(max(np.ptp(offsets @ frame.p), np.ptp(offsets @ frame.s)))
    u = np.arange(-reach, reach + 1e-6, SECTION_MM)
    t = np.arange(reach, -reach - 1e-6, -SECTION_MM)
    section = body_plane(image, centre, frame.p, frame.s, u, t)
    columns = (offsets @ frame.p - u[0]) / SECTION_MM
    rows = (t[0] - offsets @ frame.s) / SECTION_MM
    return section, np.stack([columns, rows], axis=1), (SECTION_MM, SECTION_MM)
