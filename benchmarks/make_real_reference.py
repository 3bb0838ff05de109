"""Make the small real-CT reference images kept under ``Testing/Data/real/`` from the shared real data.

Usage::

    python benchmarks/make_real_reference.py [--source /work/shared/data/real]
                                             [--out Testing/Data/real] [--overwrite]
    python benchmarks/make_real_reference.py --references-only   # rewrite reference/*.json only

Writes:

* ``cptac_chest/cptac_chest.nii.gz``: the real contrast-enhanced chest CT of TCIA CPTAC patient
  C3N-00247 (DICOM, 512 x 512 x 99 at 0.56 x 0.56 x 3 mm) cropped in-plane to the box that holds
  the whole thoracic spine, the ribs near the spine, the heart and the aorta, and resampled
  in-plane to 1.1 mm (slices kept at 3 mm; about 5 MB); int16 HU.
* ``cptac_chest/cptac_cardiac_a.nii.gz`` and ``cptac_cardiac_b.nii.gz``: two "cardiac CT" crops
  of the same scan, field of view centred on the heart (200 mm wide, 48 slices from the diaphragm to
  the pulmonary trunk) with the spine at the posterior edge: ``a`` ends behind the laminae (the
  vertebral bodies fully inside, the spinous processes cut off), ``b`` ends just behind the
  posterior walls of the vertebral bodies (the posterior elements cut off). 1.2 mm in-plane after a
  light Gaussian anti-aliasing (sigma 0.5 mm), slices kept at 3 mm (about 2 MB each).
* ``verse004_L2_crop/``: a byte copy of the VerSe sub-verse004 L2 crop made by Bonelab/spineFE-benchmark.
* a ``LICENSE`` text with the attribution in each new folder.
* ``reference/<case>.json``: the reference annotations (schema in
  :mod:`VertebralFractureLib.training.real.reference`) from the hand-read values below
  (:data:`CHEST_CENTRES`, :data:`CHEST_LINE`, :data:`SAMPLE_BODIES`...) and, for the two cases
  with a vertebra mask, keypoints measured from the mask by
  :func:`VertebralFractureLib.shape.measure.measure_from_mask`.

All crops keep the scan's physical frame: the grid is axis-aligned with identity direction and
its origin is the LPS position (mm) of the first kept voxel, so that every coordinate of the
reference annotations is a real patient-frame LPS coordinate, shared by the chest CT and its
crops. Only the voxel values and the geometry are copied: no DICOM header element reaches the
NIfTI files.
"""

from __future__ import annotations

import argparse
import functools
import shutil
import sys
from pathlib import Path
from typing import Dict, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: LPS boxes (mm, [x0, x1], [y0, y1], [z0, z1]) and in-plane spacing of each crop.
#: The chest box holds the thoracic spine with its spinous processes (y up to -10 mm), the ribs
#: within about 90 mm of the spine and the heart / ascending aorta (y from -238 mm).
CROPS: Dict[str, Tuple[Tuple[Tuple[float, float], ...], float, float]] = {
    # name: (box, in-plane spacing mm, anti-aliasing sigma mm)
    "cptac_chest": (((-92.0, 102.0), (-238.0, -10.0), (-289.0, 7.0)), 1.1, 0.0),
    # heart centred (x ~ +3.5 mm), 200 mm wide, posterior edge behind the laminae (row 410)
    "cptac_cardiac_a": (((-96.5, 103.5), (-262.0, -55.8), (-246.5, -104.5)), 1.2, 0.5),
    # same, posterior edge just behind the vertebral bodies' posterior walls (row 385)
    "cptac_cardiac_b": (((-96.5, 103.5), (-262.0, -70.0), (-246.5, -104.5)), 1.2, 0.5),
}

CPTAC_LICENSE = """\
Real contrast-enhanced chest CT (crops), TCIA CPTAC collection, patient C3N-00247.

Source: The Cancer Imaging Archive (TCIA), Clinical Proteomic Tumor Analysis Consortium (CPTAC)
  collection (National Cancer Institute Clinical Proteomic Tumor Analysis Consortium (CPTAC).
  Radiology Data from the CPTAC collections [Data set]. The Cancer Imaging Archive), patient
  C3N-00247. Copy found in github deep-learning-with-pytorch/dlwpt-code,
  data/p1ch4/volumetric-dicom.
Licence: Creative Commons Attribution 3.0 Unported (CC BY 3.0),
  https://creativecommons.org/licenses/by/3.0/
Please cite TCIA: Clark K, Vendt B, Smith K, Freymann J, Kirby J, Koppel P, Moore S, Phillips S,
  Maffitt D, Pringle M, Tarbox L, Prior F. The Cancer Imaging Archive (TCIA): maintaining and
  operating a public information repository. J Digit Imaging 2013;26(6):1045-1057.

Changes made for this project (benchmarks/make_real_reference.py): the DICOM series (512 x 512 x
99, 0.56 x 0.56 x 3 mm) converted to NIfTI (int16 HU), cropped in-plane (and, for the cardiac
crops, in z) and resampled in-plane (cptac_chest 1.1 mm; cptac_cardiac_a/b 1.2 mm after a Gaussian
anti-aliasing of sigma 0.5 mm); original LPS frame kept; all DICOM header elements dropped.
"""

VERSE_LICENSE = """\
Real CT crop of one vertebra (VerSe 2019 sub-verse004, L2, Genant grade 0), density-calibrated
and masked to the bone, with a sub-region mask (labels 1-6) and its calibration text.

Source data: VerSe 2019 (Large Scale Vertebrae Segmentation Challenge), licence Creative Commons
  Attribution-ShareAlike 4.0 International (CC BY-SA 4.0),
  https://creativecommons.org/licenses/by-sa/4.0/
  Please cite:
  Loeffler MT, Sekuboyina A, Jacob A, et al. A vertebral segmentation dataset with fracture
    grading. Radiology: Artificial Intelligence 2020;2(4):e190138.
  Sekuboyina A, Husseini ME, Bayat A, et al. VerSe: A vertebrae labelling and segmentation
    benchmark for multi-detector CT images. Medical Image Analysis 2021;73:102166.
Crop made by Bonelab/spineFE-benchmark (github, data/nii_files; the code there is GPL-3.0, the
  data keep the VerSe CC BY-SA 4.0 licence). Files copied unchanged (ShareAlike: this folder is
  distributed under CC BY-SA 4.0).
"""


def read_canonical(folder: Path):
    """Read the DICOM series in ``folder`` as an identity-direction SimpleITK image."""
    from VertebralFractureLib.io.images import read_image, to_canonical

    return to_canonical(read_image(folder))


def crop_resample(image, box: Sequence[Tuple[float, float]], spacing_xy: float, sigma_mm: float):
    """Crop ``image`` to an LPS box and resample it in-plane, keeping the physical frame.

    Args:
        image: identity-direction SimpleITK image (HU).
        box: ``((x0, x1), (y0, y1), (z0, z1))`` in LPS mm; the grid starts at ``(x0, y0)`` and
            at the first original slice at or above ``z0``.
        spacing_xy: new in-plane spacing (mm); the slice spacing is kept.
        sigma_mm: in-plane Gaussian smoothing before resampling (0 for none).

    Returns:
        An int16 image with identity direction, origin on the box corner, HU values.

    """
    import SimpleITK as sitk

    origin = np.asarray(image.GetOrigin())
    spacing = np.asarray(image.GetSpacing())
    (x0, x1), (y0, y1), (z0, z1) = box
    k0 = int(np.ceil((z0 - origin[2]) / spacing[2] - 1e-6))
    k1 = int(np.floor((z1 - origin[2]) / spacing[2] + 1e-6))
    k0, k1 = max(k0, 0), min(k1, image.GetSize()[2] - 1)
    source = sitk.Cast(image, sitk.sitkFloat32)
    if sigma_mm > 0:
        smooth = sitk.SmoothingRecursiveGaussianImageFilter()
        smooth.SetSigma([sigma_mm, sigma_mm, 1e-3])
        source = smooth.Execute(source)
    new_origin = [x0, y0, origin[2] + k0 * spacing[2]]
    size = [int(round((x1 - x0) / spacing_xy)) + 1, int(round((y1 - y0) / spacing_xy)) + 1, k1 - k0 + 1]
    out = sitk.Resample(
        source, size, sitk.Transform(), sitk.sitkLinear, new_origin,
        [spacing_xy, spacing_xy, float(spacing[2])], np.eye(3).flatten().tolist(), -1024.0, sitk.sitkFloat32,
    )
    array = np.clip(np.rint(sitk.GetArrayFromImage(out)), -1024, 3071).astype(np.int16)
    clean = sitk.GetImageFromArray(array)
    clean.CopyInformation(out)
    return clean



DATE = "2026-12-03"
ANNOTATOR = "project engineer (issue 16), read on PNG renderings; see Testing/Data/real/README.md"
CPTAC_SOURCE = "TCIA CPTAC collection, patient C3N-00247 (contrast chest CT, B70f kernel)"
CPTAC_LICENCE = "CC BY 3.0; cite the CPTAC collection and Clark et al. 2013 (TCIA)"

#: Chest CT: vertebral-body mid-heights (z, mm): the minima of the HU profile along the body centre
#: line (osteoporotic cancellous bone is darker than the endplate + thin disc bands at 3 mm), each
#: checked on full-resolution axial slices (z -150..-144: cortical ring and pedicles closing the canal
#: = body; z -138..-135 and -156: no ring, facet joints = disc). Discs lie half-way between.
CHEST_CENTRES = (1.0, -13.0, -31.0, -49.5, -67.5, -84.0, -103.5, -124.5, -145.5, -166.5, -190.5, -216.0,
                 -241.5, -265.5)
CHEST_LEVELS = ("C7", "T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12", "L1")
#: Vertebral-body centre line (z, x, y in LPS mm), read on axial slices.
CHEST_LINE = ((-288, 7, -128), (-276, 5, -122), (-246, 0, -112), (-216, -5, -98), (-186, -12, -92),
              (-156, -12, -90), (-126, -15, -85), (-96, -10, -88), (-66, -5, -110), (-36, -3, -120),
              (-6, 0, -142), (6, 0, -146))
CHEST_LEVELS_METHOD = (
    "Bodies: minima of the HU profile along the hand-read body centre line, checked on full-resolution axial "
    "slices (cortical ring + pedicles = body, facet joints without ring = disc). Levels: the first rib (short, "
    "high arc on coronal MIPs) lies beside the body at z -13 = T1; counting 12 bodies down gives T12 at z -241.5, "
    "which has a rib beside its transverse process on axial z -246; the body below (z -265.5, kidneys beside it) "
    "= L1; the body above T1 (z +1, cut by the top of the field of view) = C7. Agrees with the data README "
    "(C7/T1 to T12/L1). Uncertainty: ribs 11-12 are short and the upper thoracic bands faint at 3 mm; a "
    "one-level shift cannot be fully excluded.")
CHEST_REGIONS = (
    ("heart (left ventricle)", (15.0, -190.0, -170.0), 30.0),
    ("descending aorta", (5.0, -135.0, -186.0), 8.0),
    ("descending aorta (upper)", (12.0, -125.0, -156.0), 8.0),
    ("right lung", (-62.0, -150.0, -100.0), 20.0),
    ("left lung", (70.0, -120.0, -60.0), 15.0),
)

#: Chest CT keypoints (LPS mm; genant.KEYPOINT_NAMES order: anterior sup / inf, middle sup / inf,
#: posterior sup / inf) placed by hand on each body's own mid-sagittal plane: the plane through the
#: body centre (x, y read on the mid-body axial slice) containing the local spine axis (from the
#: neighbouring body centres) and the anterior-posterior direction; sampled at 0.25 mm with
#: map_coordinates (order 1), averaged over a 3 mm slab across the plane, read at about 11 px/mm with a 1 mm
#: grid (windows 0-1200 and -50-500 HU). Columns 1.5-2 mm inside the anterior / posterior cortex and
#: at mid-depth. With 3 mm slices the endplate + disc bands are blurred: each point is put at the border
#: between the body's bright endplate slice and the darker disc slice (the disc centre -/+ 1.5 mm), so
#: every point is good to about +-1.5 mm along the axis; no endplate concavity is resolved.
CHEST_KEYPOINTS = {
    "T7": ((-16.1, -98.9, -114.9), (-17.8, -99.1, -133.3), (-16.1, -85.9, -115.0), (-17.9, -86.1, -133.4),
           (-16.1, -71.9, -115.2), (-17.9, -72.1, -133.6)),
    "T8": ((-17.0, -100.1, -135.1), (-17.0, -102.1, -156.0), (-17.0, -85.6, -136.5), (-17.0, -87.6, -157.4),
           (-17.0, -71.2, -137.9), (-17.0, -73.2, -158.8)),
    "T9": ((-17.5, -102.2, -157.9), (-16.3, -105.9, -178.5), (-17.3, -87.9, -160.4), (-16.2, -91.6, -181.1),
           (-17.2, -73.7, -163.0), (-16.0, -77.3, -183.6)),
    "T10": ((-16.4, -107.6, -179.4), (-13.0, -112.7, -199.0), (-15.8, -93.1, -183.1), (-12.4, -98.2, -202.7),
            (-15.1, -78.6, -186.8), (-11.8, -83.7, -206.4)),
    "T11": ((-13.2, -112.3, -202.2), (-5.9, -119.0, -223.5), (-12.0, -97.3, -205.9), (-4.4, -104.2, -227.9),
            (-10.6, -84.4, -209.8), (-3.2, -91.3, -231.6)),
    "T12": ((-3.0, -120.0, -224.6), (5.0, -127.7, -247.2), (-1.3, -106.9, -229.3), (6.5, -114.5, -251.5),
            (0.4, -93.8, -234.1), (8.0, -101.2, -255.6)),
    # the second reader's (CHEST_SECOND_READING_METHOD)
    "T3": ((-1.00, -129.73, -49.78), (-2.35, -119.44, -66.64), (-0.98, -121.36, -44.31), (-2.13, -112.43, -58.37),
           (-0.96, -113.05, -38.75), (-2.16, -103.41, -53.31)),
    "T4": ((-2.19, -117.47, -66.63), (-3.90, -109.16, -80.79), (-2.10, -109.24, -60.55), (-3.87, -100.43, -75.10),
           (-2.11, -100.49, -55.30), (-3.88, -91.50, -69.74)),
    "T5": ((-6.14, -108.25, -80.71), (-8.74, -101.85, -97.93), (-6.21, -98.61, -76.77), (-8.65, -92.02, -92.70),
           (-6.03, -89.66, -71.24), (-8.98, -80.98, -90.07)),
    "T6": ((-11.12, -101.22, -95.76), (-14.07, -98.75, -114.16), (-11.15, -90.12, -94.41), (-14.07, -87.28, -112.56),
           (-11.20, -79.00, -93.15), (-14.27, -75.63, -112.23)),
    "L1": ((11.52, -130.83, -247.38), (18.06, -140.16, -274.32), (11.66, -118.07, -252.60), (17.62, -126.93, -277.03),
           (11.69, -105.16, -257.36), (18.02, -114.93, -283.16)),
}
#: Per-vertebra notes of the keypoints (heights anterior / middle / posterior from the points, Genant G).
CHEST_KEYPOINT_NOTES = {
    "T7": "disc bands clear; h 18.5/18.5/18.5 mm, G 1.00",
    "T8": "upper disc not resolved (placed from T7's lower disc); h 21.0/21.0/21.0 mm, G 1.00",
    "T9": "disc bands clear; h 21.0/21.1/20.9 mm, G 0.99",
    "T10": "upper disc faint (+-2 mm); h 20.5/20.5/20.5 mm, G 1.00",
    "T11": "oblique plane (scoliosis), streaky; posterior points set level with the middle ones (posterior disc "
           "not resolved); h 23.5/24.3/24.0 mm, G 0.97",
    "T12": "oblique plane (scoliosis), streaky; posterior inferior point level with the middle one; "
           "h 25.2/24.7/24.0 mm, G 0.95",
    "T3": "plane 30-32 degrees from the slices (stair-step streaks: points mostly from the profiles); anterior lip "
          "over the T3/T4 disc, anterior inferior point between the middle endplate line and the lip's border "
          "(+-2.5 mm); h 19.8/16.7/17.5 mm, G 0.84 (+-0.08)",
    "T4": "T4/T5 endplates merge into one band; a bright anterior blob (osteophyte or bridging calcification) over "
          "the T4/T5 disc, anterior inferior point on the endplate line (+-2 mm); h 16.5/17.1/17.1 mm, G 0.97",
    "T5": "plane about 26 degrees from the slices (stair-step streaks: points mostly from the profiles), axis turned 6 "
          "degrees so the posterior wall stands upright; a bright blob over the front of the T4/T5 disc, anterior "
          "superior point from the middle endplate line (+-2 mm); h 18.6/17.4/21.0 mm, G 0.83 (+-0.08; the inferior "
          "endplate falls towards the back)",
    "T6": "a continuous bright line along the anterior wall (ossified ligament, DISH-like) taken as the wall; "
          "anterior points from the middle endplate line (+-1.5-2 mm); h 18.8/18.6/19.6 mm, G 0.95",
    "L1": "rotated vertebra: the body's middle (cortical ring on axial slices) at x 14.4, its canal to the right; "
          "discs clear, inferior endplate concave; at the bottom of the field of view; h 29.2/26.7/28.3 mm, G 0.91",
}
CHEST_KEYPOINT_METHOD = ("manual on the body's mid-sagittal plane (3 mm slab), checked at 4x; points at the "
                         "endplate / disc border, +-1.5 mm along the axis (3 mm slices)")
#: The second reader (2026-12-06) placed T3, T4, T5, T6 and L1 here and L5 of the sample CT, blind to the analysis
#: and to the first reading: the body's middle from the cortical ring on axial slices (lateral HU profiles, the median
#: mid-point of the left and right cortical peaks), the axis from the neighbouring centres turned until walls and
#: discs stand square on the plane, walls and endplates at the half-maximum borders of HU profiles (the audit's
#: rule), anterior / posterior points max(1.5 mm, 8 % of the depth) inside the walls, each body drawn on its plane
#: (0.25 mm, 3 mm slab) and looked at. Agreement with the first reading on a body read again blind (T9): 1.05 mm per
#: point (0.94 in the plane; the anterior corners, inside osteophytes, 1.3-1.8 mm), heights -2.4 / -1.0 / +1.1 mm,
#: G 0.84 against 0.99; on the sample CT's L3, 1.15 mm (0.52 in the plane), heights within 0.3 mm. A second batch
#: (T5; T7 and T12 read again blind): T7 1.48 mm per point (1.37 in the plane), heights +1.1 / +0.4 / +2.1 mm, G 0.92
#: against 1.00; T12 2.63 mm (1.90 in the plane), heights -0.3 / -1.3 / +3.1 mm, G 0.87 against 0.95 (the inferior
#: endplates and the posterior inset are where the readers differ).
CHEST_SECOND_READING = ("T3", "T4", "T5", "T6", "L1")
CHEST_SECOND_READING_METHOD = ("manual, second reader blind to the analysis (2026-12-06): body middle from the "
                               "cortical ring on axial slices, walls and endplates at half-maximum borders of HU "
                               "profiles, checked on the body's plane (0.25 mm, 3 mm slab)")
#: Further blind readings, one file (``Testing/Data/real/blind_readings.json``: each with its reader, keypoints,
#: heights and notes): the second reader's re-readings of T9 and the sample CT's L3 and the third's of T7 and T12 (the
#: agreement checks above), and (2026-12-06, sixteenth session) two more readers, the same protocol and blindness,
#: on every manual body that had one reading: chest T3, T4, T5, T6 and T8 (reader 4), T10, T11, L1 and the sample CT's
#: L2, L4 and L5 (reader 5). Two careful readings of one body lay 1.62 mm apart per point on average over the 15
#: bodies (0.59 mm at the sample CT's L4, 3.4 mm at the chest CT's T8, whose upper disc neither reader resolved), so
#: one reading alone carries about 1.6 / sqrt(2) = 1.15 mm of its own per point. A third reading of every manual body
#: (readers 6, 7 and 8, seventeenth session; the rule written down before the readings were made: all 15 bodies, none
#: dropped) brings each to three; a body's reference keypoints are the point-wise mean of all its readings
#: (:func:`_mean_of_readings`). The 45 pairs of readings lie 1.48 mm apart per point on average, so the mean of three
#: carries about 1.48 / sqrt(2) / sqrt(3) = 0.6 mm of reading noise per point.
READINGS = REPO / "Testing" / "Data" / "real" / "blind_readings.json"
#: Body centres the centre line misses by more than its +-5 mm (the second reader's body middle, LPS mm): L1 is a
#: rotated vertebra whose canal, which the line followed, lies 11 mm right of the body's middle.
CHEST_CENTRE_CORRECTIONS = {"L1": (14.4, -118.4, -265.3)}

#: Sample CT (TotalSegmentator example): body endplate heights (superior, inferior z, mm) from the
#: HU profile minima at x = 4 mm, centre y read on the mid-sagittal PNG.
SAMPLE_BODIES = {
    "T12": ((433.0, 406.0), (4.0, -122.0, 419.0), "partial"),
    "L1": ((403.0, 368.5), (4.0, -126.0, 386.5), "full"),
    "L2": ((368.5, 332.5), (4.0, -139.7, 353.5), "full"),
    "L3": ((332.5, 296.5), (4.0, -142.0, 314.7), "full"),
    "L4": ((296.5, 262.0), (4.0, -149.5, 277.0), "full"),
    "L5": ((262.0, 229.0), (4.0, -139.0, 243.0), "full"),
}
#: Keypoints (LPS mm) of anterior sup / inf, middle sup / inf, posterior sup / inf, placed by hand on the zoomed
#: mid-sagittal PNG (x = 4 mm). Revised 2026-12-03 (second reading): the hand-placed z of L2-L4 sat on average 1.5
#: mm, inferior points up to 3.9 mm, into the disc (``benchmarks/audit_real_keypoints.py``: half-maximum border
#: between the endplate's cortical peak and the disc minimum on the HU profile along the body axis; e.g. L3 middle
#: inferior: cortex peak z 304, disc 296-301, point 299); their z was moved to that border after the L3 and L4
#: profiles and the body-frame PNGs were looked at. Third reading (2026-12-04): the columns of L2-L4 moved onto the
#: walls the audit measures, then the z again onto the endplate border (``Testing/Data/real/README.md``). L1 keeps
#: its first reading: a bright focus inside the body (bone island) takes the profile's peak, the rule does not apply.
#: L5 (2026-12-06): the second reader's, blind to the analysis, as for the chest CT's T3-L1
#: (:data:`CHEST_SECOND_READING_METHOD`; body middle x 3.0 mm; a lumbosacral wedge, taller in front, on the
#: sacrum). Until 2026-12-06 this table held the second reading's L2-L4 while the committed reference held the
#: third; ``Testing/Python/training/test_real_reference.py`` now checks that they agree.
SAMPLE_KEYPOINTS = {
    "L1": ((4.0, -140, 404), (4.0, -140, 374.5), (4.0, -126, 401.5), (4.0, -126, 372), (4.0, -112, 401),
           (4.0, -112, 370)),
    "L2": ((4.0, -150.3, 369.14), (4.0, -156.36, 341.55), (4.0, -132.76, 366.24), (4.0, -138.47, 338.74),
           (4.0, -114.26, 362.96), (4.0, -120.35, 334.55)),
    "L3": ((4.0, -159.59, 332.73), (4.0, -162.71, 302.48), (4.0, -141.74, 329.79), (4.0, -144.89, 302.78),
           (4.0, -123.76, 329.74), (4.0, -127.06, 299.73)),
    "L4": ((4.0, -163.2, 291.08), (4.0, -159.95, 260.77), (4.0, -145.62, 290.88), (4.0, -143.61, 266.6),
           (4.0, -128.11, 294.0), (4.0, -126.83, 266.79)),
    "L5": ((3.00, -156.42, 246.38), (3.00, -141.51, 218.74), (3.00, -141.86, 254.28), (3.00, -128.31, 228.76),
           (3.00, -126.79, 261.22), (3.00, -114.08, 236.83)),
}
SAMPLE_KEYPOINT_NOTES = {
    "L5": f"{CHEST_SECOND_READING_METHOD}; all six borders on profiles with clear disc minima (the L4/L5 disc above, "
          "the wedge-shaped L5/S1 disc below), +-1.5 mm (3 mm voxels); h 31.4/28.9/27.5 mm, G 0.88",
}
SAMPLE_LEVELS_METHOD = (
    "Counted from the sacrum and the ribs: the lowest free body (z 229..262) sits on the sacrum (sloped "
    "S1, fused S2 below) = L5; the iliac crests reach z ~ 265-270, the L4/L5 disc; the body cut by the top "
    "of the field of view (z > 406) has the lowest ribs beside it on axial slices z 409-421 = T12; the body "
    "below (z 368-403) has no rib, kidneys beside it = L1. Confirms the earlier reading L1-L5 + cut T12.")
SAMPLE_REGIONS = (
    ("liver", (-85.0, -150.0, 415.0), 20.0),
    ("left kidney", (62.0, -112.0, 380.0), 10.0),
)


@functools.cache
def _all_readings() -> tuple:
    """The readings of :data:`READINGS`, read once."""
    import json

    return tuple(json.loads(READINGS.read_text())["readings"])


def _further_readings(case: str) -> Dict[str, list]:
    """The readings of :data:`READINGS` for ``case``, by level."""
    found: Dict[str, list] = {}
    for reading in _all_readings():
        if reading["case"] == case:
            found.setdefault(reading["level"], []).append(reading)
    return found


def _mean_of_readings(case: str, level: str, keypoints, note: str):
    """``(keypoints, note)`` of a body: the point-wise mean of its tables' reading and its further ones.

    The note keeps the first reading's and adds each further reader's heights and G and how far apart the readings
    lie per point; a body with no further reading is returned as it is.
    """
    from VertebralFractureLib.genant import genant_index, heights

    others = _further_readings(case).get(level, [])
    if not others:
        return [list(p) for p in keypoints], note
    readings = [np.asarray(keypoints, float)] + [np.asarray(r["keypoints"], float) for r in others]
    mean = np.mean(readings, axis=0)
    parts = []
    for reading, other in zip(readings[1:], others):
        h = heights(reading)
        apart = float(np.linalg.norm(reading - readings[0], axis=1).mean())
        parts.append(f"{other['reader']} ({other['when'][:10]}) h {h[0]:.1f}/{h[1]:.1f}/{h[2]:.1f} mm, "
                     f"G {genant_index(h):.2f}, {apart:.2f} mm per point from the first")
    h = heights(mean)
    note = (f"{note}; reference = point-wise mean of {len(readings)} blind readings (this and "
            f"{'; '.join(parts)}): h {h[0]:.1f}/{h[1]:.1f}/{h[2]:.1f} mm, G {genant_index(h):.2f}")
    return np.round(mean, 2).tolist(), note


def _chest_vertebrae(box=None):
    """Reference vertebrae of the chest CT, restricted to ``box`` (LPS ((x0,x1),(y0,y1),(z0,z1)))."""
    line = np.asarray(CHEST_LINE, float)
    centres = np.asarray(CHEST_CENTRES)
    discs = np.r_[centres[0] + 9.0, 0.5 * (centres[:-1] + centres[1:]), centres[-1] - 12.0]
    out = []
    for n, (level, zc) in enumerate(zip(CHEST_LEVELS, centres)):
        sup, inf = discs[n], discs[n + 1]
        centre = [float(np.interp(zc, line[:, 0], line[:, 1])), float(np.interp(zc, line[:, 0], line[:, 2])),
                  float(zc)]
        centre = list(CHEST_CENTRE_CORRECTIONS.get(level, centre))
        in_view = "partial" if level == "C7" else "full"
        note = "cut by the top of the field of view (z < 7.5)" if level == "C7" else ""
        if box is not None:
            (x0, x1), (y0, y1), (z0, z1) = box
            if not (x0 <= centre[0] <= x1 and y0 <= centre[1] <= y1 and z0 <= zc <= z1):
                continue
            # the body's posterior wall lies up to ~22 mm behind the centre line (body depth 30-40 mm)
            if not (z0 <= inf and sup <= z1 and centre[1] + 22.0 <= y1 and centre[1] - 18.0 >= y0):
                in_view = "partial"
                note = "cut by the field of view"
        kp = CHEST_KEYPOINTS.get(level) if in_view == "full" else None
        if kp is not None:
            method = CHEST_SECOND_READING_METHOD if level in CHEST_SECOND_READING else CHEST_KEYPOINT_METHOD
            kp, note = _mean_of_readings("cptac_chest", level, kp, f"{method}; {CHEST_KEYPOINT_NOTES[level]}")
            note = f"{note}; looks normal"
        out.append({"label": level, "centroid": centre, "in_view": in_view,
                    "keypoints": kp,
                    "keypoint_source": None if kp is None else "manual", "looks_fractured": False, "note": note})
    return out


def _regions(regions, box=None):
    out = []
    for name, centre, radius in regions:
        if box is not None and not all(lo <= c <= hi for c, (lo, hi) in zip(centre, box)):
            continue
        out.append({"name": name, "centre": list(centre), "radius_mm": radius})
    return out


def _document(case, image, source, licence, levels_method, vertebrae, regions):
    return {"schema": "vertebral-fracture-reference/1", "case": case, "image": image, "frame": "LPS",
            "source": source, "licence": licence, "annotated_by": ANNOTATOR, "date": DATE,
            "levels_method": levels_method, "vertebrae": vertebrae, "no_spine_regions": regions}


def _mask_keypoints(mask, body):
    from VertebralFractureLib.shape.measure import measure_from_mask

    return {v.label: v for v in measure_from_mask(mask, body).vertebrae}


def build_references(out: Path) -> Dict[str, dict]:
    """All reference documents, keyed by case name (see the module docstring)."""
    import SimpleITK as sitk

    docs = {}
    docs["cptac_chest"] = _document("cptac_chest", "cptac_chest/cptac_chest.nii.gz", CPTAC_SOURCE, CPTAC_LICENCE,
                                    CHEST_LEVELS_METHOD, _chest_vertebrae(), _regions(CHEST_REGIONS))
    for name in ("cptac_cardiac_a", "cptac_cardiac_b"):
        (x0, x1), (y0, y1), (z0, z1) = CROPS[name][0]
        box = ((x0, x1), (y0, y1), (-246.0 - 1.5, -105.0 + 1.5))
        docs[name] = _document(name, f"cptac_chest/{name}.nii.gz", CPTAC_SOURCE + ", cardiac crop",
                               CPTAC_LICENCE,
                               "as cptac_chest (same scan, same LPS frame), restricted to the field of view",
                               _chest_vertebrae(box), _regions(CHEST_REGIONS, box))
    sample = []
    for level, (_endplates, centre, in_view) in SAMPLE_BODIES.items():
        kp = SAMPLE_KEYPOINTS.get(level)
        note = "cut by the top of the field of view" if in_view == "partial" else SAMPLE_KEYPOINT_NOTES.get(level, "")
        if kp is not None:
            kp, note = _mean_of_readings("sample_ct", level, kp, note or "the first reader's (see SAMPLE_KEYPOINTS)")
        sample.append({"label": level, "centroid": list(centre), "in_view": in_view, "keypoints": kp,
                       "keypoint_source": None if kp is None else "manual", "looks_fractured": False,
                       "note": note})
    docs["sample_ct"] = _document(
        "sample_ct", "totalsegmentator/example_ct.nii.gz",
        "TotalSegmentator test CT (wasserth/TotalSegmentator), abdominal, 3 mm", "Apache-2.0",
        SAMPLE_LEVELS_METHOD, sample, _regions(SAMPLE_REGIONS))
    tpt = out / "tptbox"
    measured = _mask_keypoints(tpt / "sub-ct_seg-vert_label-22_msk.nii.gz",
                               tpt / "sub-ct_seg-subreg_label-22_msk.nii.gz")
    l3 = measured["L3"]
    docs["tptbox_L3"] = _document(
        "tptbox_L3", "tptbox/sub-ct_label-22_ct.nii.gz",
        "TPTBox test sample (Hendrik-code/TPTBox), CT crop around L3",
        "Apache-2.0", "given by the TPTBox vertebra mask (VerSe labels 21-23 = L2-L4)",
        [{"label": "L2", "centroid": [23.35, 167.61, -36.0], "in_view": "partial", "keypoints": None,
          "keypoint_source": None, "looks_fractured": False, "note": "only its lowest 10 mm are in the crop"},
         {"label": "L3", "centroid": [round(float(c), 2) for c in l3.centroid], "in_view": "full",
          "keypoints": np.round(l3.keypoints, 2).tolist(), "keypoint_source": "mask", "looks_fractured": False,
          "note": f"mask G = {l3.measure.G:.2f} (concave endplates, middle height lower); looks normal"},
         {"label": "L4", "centroid": [24.59, 163.58, -95.88], "in_view": "partial", "keypoints": None,
          "keypoint_source": None, "looks_fractured": False, "note": "only its upper 18 mm are in the crop"}],
        [])
    crop = out / "verse004_L2_crop"
    seg = sitk.ReadImage(str(crop / "sub-verse004_0000_vertebra_21_seg.nii.gz"))
    labels = sitk.GetArrayFromImage(seg)
    whole = sitk.GetImageFromArray((np.isin(labels, [1, 2, 3, 4]) * 21).astype(np.uint8))
    body = sitk.GetImageFromArray((np.isin(labels, [1, 2]) * 21).astype(np.uint8))
    whole.CopyInformation(seg)
    body.CopyInformation(seg)
    l2 = _mask_keypoints(whole, body)["L2"]
    docs["verse004_L2_crop"] = _document(
        "verse004_L2_crop", "verse004_L2_crop/sub-verse004_0000_vertebra_21_im.nii.gz",
        "VerSe 2019 sub-verse004 L2, crop by Bonelab/spineFE-benchmark",
        "CC BY-SA 4.0 (Loeffler 2020, Sekuboyina 2021)",
        "single vertebra, VerSe label 21 = L2 (file name); radiologists' grade 0",
        [{"label": "L2", "centroid": [round(float(c), 2) for c in l2.centroid], "in_view": "full",
          "keypoints": np.round(l2.keypoints, 2).tolist(), "keypoint_source": "mask", "looks_fractured": False,
          "note": "body = sub-region labels 1-2 (labels 5-6 are caps beyond the endplates); the header's y axis "
                  "points anteriorly (the arch lies at lower y than the body)"}],
        [])
    return docs


def write_references(out: Path) -> None:
    """Write ``out/reference/<case>.json``."""
    import json

    folder = out / "reference"
    folder.mkdir(parents=True, exist_ok=True)
    for case, doc in build_references(out).items():
        (folder / f"{case}.json").write_text(json.dumps(doc, indent=1) + "\n")
        print(f"{folder / case}.json: {len(doc['vertebrae'])} vertebrae")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=Path("/work/shared/data/real"))
    parser.add_argument("--out", type=Path, default=REPO / "Testing" / "Data" / "real")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--references-only", action="store_true", help="only rewrite reference/*.json")
    args = parser.parse_args(argv)
    if args.references_only:
        write_references(args.out)
        return 0
    import SimpleITK as sitk

    chest_dir = args.out / "cptac_chest"
    chest_dir.mkdir(parents=True, exist_ok=True)
    ct = read_canonical(args.source / "cptac_chest")
    for name, (box, spacing_xy, sigma) in CROPS.items():
        target = chest_dir / f"{name}.nii.gz"
        if target.exists() and not args.overwrite:
            print(f"{target} exists (use --overwrite)")
            continue
        crop = crop_resample(ct, box, spacing_xy, sigma)
        sitk.WriteImage(crop, str(target), True)
        print(f"{target}: size {crop.GetSize()}, spacing {np.round(crop.GetSpacing(), 3).tolist()}, "
              f"origin {np.round(crop.GetOrigin(), 2).tolist()}, {target.stat().st_size / 1e6:.2f} MB")
    (chest_dir / "LICENSE").write_text(CPTAC_LICENSE)

    verse_dir = args.out / "verse004_L2_crop"
    verse_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted((args.source / "verse004_L2_crop").iterdir()):
        shutil.copyfile(path, verse_dir / path.name)
        print(f"copied {path.name}")
    (verse_dir / "LICENSE").write_text(VERSE_LICENSE)
    write_references(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
