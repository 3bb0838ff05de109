"""Bone cement in a vertebral body (vertebroplasty, kyphoplasty) and how the CT analysis sees past it.

Percutaneous vertebroplasty and balloon kyphoplasty treat painful osteoporotic compression fractures by filling the
body with polymethyl methacrylate cement made radio-opaque (barium sulphate or zirconium dioxide); on CT the bolus is
a solid mass far denser than bone (1500-3000 HU, :data:`VertebralFractureLib.quality.checks.METAL_HU`'s note), often
in two or three neighbouring bodies, and the patients are the ones this tool screens. Bone is dense only as a thin
shell: the cortex and the endplates are 1-2 mm thick, so in a CT's voxels they read 1000-2000 HU at most where the
kernel is sharp (the real chest CT's 1 mm straightened mid-sagittal plane: up to 1633 HU, 65 pixels over
:data:`CEMENT_HU`). Cement is what stays after a morphological opening of :data:`CORE_MM` radius: a solid core; on
the real CTs of the reference set the only cores are metal (a hip implant, a lead) and pieces of dense cortex far
smaller than a bolus (:data:`CEMENT_MIN_MM3`).

Two uses:

- :func:`without_cement_ct`: the networks were trained on spines without implants, and the detector of Pisov et
  al. 2020 normalises its image by mean and standard deviation (their section 5.1). On the real abdominal CT with
  cement drawn into L2 and L3 (2400 HU; ``benchmarks/bench_real_variants.py`` ``cement2``) the analysis found two
  bodies and named them wrongly with certainty; with an 1800 HU bolus in L3 alone the body went missing from the
  result in one placement. The centre-line, the straightening, the detector and the keypoint refinement read the
  CT with the cement's core replaced by dense trabecular bone (:data:`FILL_HU`; the pipeline's
  ``Analysis.model_ct``), so a treated body keeps its place in the column and its own outline (walls, endplates,
  discs); metal (:data:`METAL_HU`) is left as it was. The reader's images show the CT itself.
- :func:`solid_core`: the quality gate's measure of cement in a body (:func:`VertebralFractureLib.quality.checks.
  check_metal`): a treated body is reported, named and drawn, never graded: its endplates and heights after
  augmentation are not the ones Genant's grades were defined on.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import numpy as np

#: Samples at or above this (HU) may be cement: below opacified PMMA cement's 1500-3000 HU, above trabecular bone and
#: intravenous contrast in the vessels beside the spine (a few hundred HU).
CEMENT_HU = 1200.0
#: Radius (mm) of the opening that leaves cement's solid core and removes cortex and endplates (1-2 mm shells).
CORE_MM = 2.0
#: A solid core counts as cement from this volume (mm^3) on: vertebroplasty fills a body with several mL; the dense
#: pieces of cortex the opening leaves on sharp, fine CTs are far smaller (the real TPTBox crop at 1.5 mm: 23-88
#: mm^3 at 1300-1650 HU by its facets and endplates).
CEMENT_MIN_MM3 = 500.0
#: ... and at least this thick somewhere (mm: twice its largest inscribed radius): pedicle screws are 5-7.5 mm across,
#: the generator's 6 mm; a bolus fills much of a body's 25-50 mm.
CEMENT_MIN_THICKNESS_MM = 9.0
#: A core whose 90th percentile reaches this (HU) is metal, which the models keep reading as before (a hip prosthesis,
#: screws: titanium and steel saturate a 12-bit CT at 3071 HU; the real abdominal CT's left hip implant: median
#: 2967 HU, 15 mL; the generator's screws 3000 HU). The quality gate flags metal in a body on its own
#: (``quality.checks.METAL_HU``).
METAL_HU = 2800.0
#: Value (HU) given to the cement's core in the detector's image: dense trabecular bone.
FILL_HU = 250.0
#: The core is grown by this much (mm) where the image stays above :data:`RIM_HU`, so the bolus's own blurred rim
#: is filled too and does not read as an endplate.
RIM_MM = 2.0
RIM_HU = 400.0


def _disc(radius: Sequence[int]) -> np.ndarray:
    """Boolean ellipse / ellipsoid of the given radius (voxels per axis)."""
    axes = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    return sum((axis / max(r, 1)) ** 2 for axis, r in zip(axes, radius)) <= 1.0


def solid_core(image: np.ndarray, spacing_mm: Sequence[float], threshold_hu: float = CEMENT_HU) -> np.ndarray:
    """Where ``image`` (2D or 3D, HU) is at least ``threshold_hu`` and stays so after an opening of :data:`CORE_MM`.

    Args:
        image: the samples.
        spacing_mm: their spacing per axis.
        threshold_hu: the density of cement.

    Returns:
        A boolean array like ``image``.
    """
    from scipy import ndimage as ndi

    dense = np.asarray(image) >= threshold_hu
    if not dense.any():
        return dense
    radius = [max(1, int(round(CORE_MM / float(s)))) for s in spacing_mm]
    structure = _disc(radius)
    eroded = ndi.binary_erosion(dense, structure=structure)
    core = np.zeros_like(dense)
    if eroded.any():  # the dilation of the opening, only around what the erosion left (a CT holds little of it)
        found = np.argwhere(eroded)
        box = tuple(slice(max(int(a) - r, 0), int(b) + r + 1)
                    for a, b, r in zip(found.min(axis=0), found.max(axis=0), radius))
        core[box] = ndi.binary_dilation(eroded[box], structure=structure) & dense[box]
    return core


def cement_core(image: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """The parts of :func:`solid_core` that are a bolus of cement, not metal nor dense bone.

    A connected part counts when it holds at least :data:`CEMENT_MIN_MM3`, is at least
    :data:`CEMENT_MIN_THICKNESS_MM` thick somewhere (twice its largest inscribed radius) and its 90th percentile stays
    below :data:`METAL_HU`.
    """
    from scipy import ndimage as ndi

    core = solid_core(image, spacing_mm)
    if not core.any():
        return core
    labels, _ = ndi.label(core)
    voxel_mm3 = float(np.prod(spacing_mm))
    kept = []
    for number, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        part = labels[box] == number
        values = np.asarray(image)[box][part]
        if values.size * voxel_mm3 < CEMENT_MIN_MM3 or float(np.percentile(values, 90)) >= METAL_HU:
            continue
        thickness = 2.0 * float(ndi.distance_transform_edt(np.pad(part, 1), sampling=spacing_mm).max())
        if thickness >= CEMENT_MIN_THICKNESS_MM:
            kept.append(number)
    return np.isin(labels, kept)


def without_cement(image: np.ndarray, spacing_mm: Sequence[float]) -> Tuple[np.ndarray, int]:
    """``image`` with cement's solid core set to dense trabecular bone.

    The core (:func:`solid_core`), grown by :data:`RIM_MM` where the image stays over :data:`RIM_HU`, takes
    :data:`FILL_HU`.

    Args:
        image: CT samples in HU.
        spacing_mm: their spacing per axis.

    Returns:
        ``(image, samples changed)``; ``image`` itself (not a copy) when nothing is cement.
    """
    from scipy import ndimage as ndi

    core = cement_core(image, spacing_mm)
    if not core.any():
        return image, 0
    radius = [max(1, int(round(RIM_MM / float(s)))) for s in spacing_mm]
    found = np.argwhere(core)
    box = tuple(slice(max(int(a) - r, 0), int(b) + r + 1)
                for a, b, r in zip(found.min(axis=0), found.max(axis=0), radius))
    filled = np.zeros(core.shape, dtype=bool)
    filled[box] = ndi.binary_dilation(core[box], structure=_disc(radius)) & (np.asarray(image)[box] >= RIM_HU)
    out = np.array(image, dtype=np.float32, copy=True)
    out[filled] = FILL_HU
    return out, int(filled.sum())


def without_cement_ct(ct):
    """A canonical CT (SimpleITK image) as the models read it: :func:`without_cement` on its voxels.

    Returns:
        ``(image, volume of cement in mm^3)``: ``ct`` itself where it holds none.
    """
    import SimpleITK as sitk

    spacing = tuple(float(s) for s in reversed(ct.GetSpacing()))  # array order k, j, i
    array, changed = without_cement(sitk.GetArrayViewFromImage(ct), spacing)
    if not changed:
        return ct, 0.0
    out = sitk.GetImageFromArray(array.astype(np.float32))
    out.CopyInformation(ct)
    out = sitk.Cast(out, ct.GetPixelID())
    return out, float(changed) * float(np.prod(spacing))
