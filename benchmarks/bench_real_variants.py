"""The real reference CTs as other scanners and sites would send them: reoriented, resampled, noisier.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_real_variants.py [--cases sample_ct cptac_chest] \
        [--variants original ras sagittal thick5 iso1 iso1_known noise40 dfov180 roll15] [--json out.json]

Hospital scans of the same anatomy arrive in any orientation (axial LPS or RAS, sagittal
acquisitions), with 0.6-5 mm slices and different noise. Each variant below is the same physical
image (same LPS coordinates, so the reference of ``Testing/Data/real/reference`` applies unchanged),
and is analysed with the shipped models (no optional stages) and scored with
:func:`VertebralFractureLib.training.real.reference.score_case`. A robust analysis gives the same
levels and statuses on the orientation variants and never a grade >= 2 on a normal-looking vertebra
on any variant; thicker slices may lose vertebrae or withhold grades, but must say so.

Variants:

* ``original``: as stored.
* ``ras``, ``pil``, ``sagittal`` (ASL): the voxel grid permuted / flipped by ``SimpleITK.DICOMOrient``.
* ``thick5``: 5 mm slices (linear resampling of z; in-plane spacing kept).
* ``iso1``: 1 mm isotropic (linear), as another tool would write it: nothing says the slices were 3 mm.
* ``iso1_known``: the same, with the 3 mm it resolves along z recorded (``ImageGeometry.resolution``), as a DICOM
  series whose Slice Thickness (0018,0050) exceeds its slice spacing is read.
* ``noise40``, ``noise80``: additive Gaussian noise of 40 or 80 HU (seed 7), as a low-dose or sharp-kernel scan (a
  lung-screening CT reconstructed with a lung kernel is noisier still).

Each row counts the levels named wrongly while the result says they are certain (``level_wrong_certain``) and those
the result marks uncertain (``level_uncertain``: the whole count, or one vertebra's past a gap; ``?`` in the labels,
``*`` for not assessed).
* ``cut_low``, ``cut_high``, ``cut_mid``, ``cut_lowhalf``, ``cut_highhalf``: the fields of view other
  examinations show the same spine in: the lowest or highest two thirds of the slices, the middle half, the lowest
  or highest half (on the sample CT the lowest two thirds are L3 to the sacrum, as a pelvic CT; a cut of the chest CT
  with neither T1 nor the 12th rib in view must say "levels uncertain"). ``inside`` counts the reference
  bodies whose centroid lies at least 10 mm inside the cut; bodies outside it are not expected.
* ``side_left15``, ``side_left27``, ``side_right15``, ``side_right27``: the field of view cut 15 or 27 mm to the
  patient's left or right of the spine (the median x of the reference centroids), as an off-centre reconstruction
  shows it: the ribs of one side out of view.
* ``dfov180``, ``dfov150``: the reconstruction a dedicated bone-kernel spine series gives, a display field of view
  of 180 or 150 mm centred on the spine (the median of the reference centroids): the square around that circle, padded
  with -3024 HU outside it (:func:`reconstruction_circle`), the ribs cut by the circle.
* ``colon_left``, ``colon_right``: the descending or ascending colon filled with positive oral contrast (450 HU) beside
  the lower bodies (:func:`oral_contrast_colon`), as an abdominal CT read with opacified bowel shows it: a bright
  homogeneous blob beside the spine, which must not become the spine (the reference applies unchanged).
* ``cement``, ``cement2``: a vertebroplasty: a bolus of bone cement (an ellipsoid 24 x 18 x 16 mm, left-right x
  front-back x up-down, of 1800 HU with 100 HU noise; :func:`vertebroplasty`) in the middle reference body, and of
  2400 HU in it and the body above (two neighbouring bodies, as often treated). Osteoporotic patients after a
  fracture are treated so, and their follow-up CTs are the ones this tool screens; the treated bodies must be
  reported, named and not graded (the reference applies unchanged).
* ``roll15``, ``roll-25``: the anatomy turned on the same voxel grid (linear interpolation; air in the corners where
  the turned grid has no source, in the cropped chest CT 87 mm or more from the median of the reference centroids)
  about the table's long axis (LPS z) through that median, as a patient lying rolled on the table shows it (the table
  turns too). Unlike the variants above, these are not the same physical image: the reference points are turned with
  the anatomy (:func:`turned`). Each reference plane turns with its body, while the analysis measures on the scanner's
  sagittal plane through each body's middle, as Pisov et al. 2020 annotate ("the mid-sagittal slice" of each vertebra)
  and as the real CTs' readers read: under a roll the anterior points then lie beside the turned reference's by about
  half the body's depth times the sine of the roll, so ``kp mm`` grows with the roll and ``sag`` (the error within the
  reference body's plane) is the figure to compare. A turn about the left-right axis is not offered: on the same grid
  it leaves wedges of air inside the body at the first and last slices, which no scanner makes (the chest CT's right
  12th rib ran into one and the count lost its anchor; docs/findings.md, 2026-12-07, twenty-fifth session). What a
  turned scan must not give is a false grade or a level named wrongly with certainty.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def variants(spine_x: float = 0.0, spine_y: float = 0.0) -> Dict[str, Callable]:
    """Variant name -> function of a SimpleITK image (``spine_x``, ``spine_y``: LPS x and y of the spine, mm, for the
    side cuts and the reconstruction circles).

    The turned variants (``roll*``) and the colon variants (``colon_*``) are functions of the image and the reference
    that return both (turned with the anatomy: :func:`turned`; unchanged: :func:`oral_contrast_colon`); they carry
    ``takes_reference = True``.
    """
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import RESOLUTION_KEY, resample_spacing

    def without_resolution(image):
        # resampled elsewhere: the file says 1 mm and nothing of the 3 mm it came from
        if image.HasMetaDataKey(RESOLUTION_KEY):
            image.EraseMetaData(RESOLUTION_KEY)
        return image

    def noise(sigma_hu: float):
        def make(image):
            return with_noise(image, sigma_hu)

        return make

    spine_xy = (spine_x, spine_y)

    def turning(axis: str, degrees: float):
        def make(image, reference):
            return turned(image, reference, axis, degrees)

        make.takes_reference = True
        return make

    def cemented(count: int, hu: float):
        def make(image, reference):
            return vertebroplasty(image, reference, count, hu), reference

        make.takes_reference = True
        return make

    def colon(side: str):
        def make(image, reference):
            return oral_contrast_colon(image, reference, side), reference

        make.takes_reference = True
        return make

    return {
        "original": lambda image: image,
        "ras": lambda image: sitk.DICOMOrient(image, "RAS"),
        "pil": lambda image: sitk.DICOMOrient(image, "PIL"),
        "sagittal": lambda image: sitk.DICOMOrient(image, "ASL"),
        "thick5": lambda image: resample_spacing(image, (image.GetSpacing()[0], image.GetSpacing()[1], 5.0)),
        "iso1": lambda image: without_resolution(resample_spacing(image, 1.0)),
        "iso1_known": lambda image: resample_spacing(image, 1.0),
        "noise40": noise(40.0),
        "noise80": noise(80.0),
        "cut_low": lambda image: cut(image, 0.0, 2.0 / 3.0),
        "cut_high": lambda image: cut(image, 1.0 / 3.0, 1.0),
        "cut_mid": lambda image: cut(image, 0.25, 0.75),
        "cut_lowhalf": lambda image: cut(image, 0.0, 0.5),
        "cut_highhalf": lambda image: cut(image, 0.5, 1.0),
        "side_left15": lambda image: side_cut(image, spine_x + 15.0, keep="right"),
        "side_left27": lambda image: side_cut(image, spine_x + 27.0, keep="right"),
        "side_right15": lambda image: side_cut(image, spine_x - 15.0, keep="left"),
        "side_right27": lambda image: side_cut(image, spine_x - 27.0, keep="left"),
        "dfov180": lambda image: reconstruction_circle(image, spine_xy, 90.0),
        "dfov150": lambda image: reconstruction_circle(image, spine_xy, 75.0),
        "roll15": turning("z", 15.0),
        "roll-25": turning("z", -25.0),
        "colon_left": colon("left"),
        "colon_right": colon("right"),
        "cement": cemented(1, CEMENT_BOLUS_HU),
        "cement2": cemented(2, 2400.0),
    }


#: The value scanners write outside the reconstruction circle (HU; some write -2048).
PADDING_HU = -3024.0


def with_noise(image, sigma_hu: float, seed: int = 7):
    """``image`` with white Gaussian noise of SD ``sigma_hu`` added (``seed``), in its own pixel type."""
    import SimpleITK as sitk

    noisy = sitk.AdditiveGaussianNoise(sitk.Cast(image, sitk.sitkFloat32), sigma_hu, 0.0, seed)
    return sitk.Cast(noisy, image.GetPixelID())


def reconstruction_circle(image, centre_xy, radius_mm: float):
    """``image`` reoriented to LPS as a reconstruction of ``radius_mm`` centred on ``centre_xy`` (LPS x, y) gives it:
    the square of axial pixels around that circle, :data:`PADDING_HU` outside it (the same physical image inside)."""
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of, to_canonical

    canonical = to_canonical(image)
    geometry = geometry_of(canonical)
    array = sitk.GetArrayFromImage(canonical).astype(np.float32)
    i, j = np.meshgrid(np.arange(array.shape[2]), np.arange(array.shape[1]), indexing="xy")
    points = geometry.index_to_lps(np.column_stack([i.ravel(), j.ravel(), np.zeros(i.size)]))
    distance = np.hypot(points[:, 0] - centre_xy[0], points[:, 1] - centre_xy[1]).reshape(i.shape)
    rows, columns = np.where(distance <= radius_mm)
    box = (slice(None), slice(rows.min(), rows.max() + 1), slice(columns.min(), columns.max() + 1))
    array = array[box]
    array[:, distance[box[1:]] > radius_mm] = PADDING_HU
    out = sitk.GetImageFromArray(array.astype(np.int16))
    out.SetSpacing(canonical.GetSpacing())
    out.SetDirection(canonical.GetDirection())
    out.SetOrigin([float(v) for v in geometry.index_to_lps(np.array([[columns.min(), rows.min(), 0.0]]))[0]])
    return out


def turned(image, reference, axis: str, degrees: float):
    """``(image, reference)`` with the anatomy turned by ``degrees`` about the LPS ``axis`` (``"x"``, ``"y"`` or
    ``"z"``) through the median of the reference centroids, on the image's own grid reoriented to LPS (linear
    interpolation, -1024 HU where the turned image has no source), and the reference's centroids, keypoints and
    no-spine regions turned with it."""
    import copy

    import SimpleITK as sitk

    from VertebralFractureLib.io.images import to_canonical

    canonical = to_canonical(image)
    centre = np.median(np.array([v.centroid for v in reference.vertebrae]), axis=0)
    transform = sitk.Euler3DTransform()
    transform.SetCenter([float(c) for c in centre])
    angles = [0.0, 0.0, 0.0]
    angles["xyz".index(axis)] = float(np.deg2rad(degrees))
    transform.SetRotation(*angles)
    # Resample maps each output point through the transform to the input: the anatomy turns by its inverse
    out = sitk.Resample(canonical, canonical, transform, sitk.sitkLinear, -1024.0, canonical.GetPixelID())
    inverse = transform.GetInverse()

    def moved(point):
        return np.asarray(inverse.TransformPoint([float(c) for c in point]))

    moved_reference = copy.deepcopy(reference)
    for vertebra in moved_reference.vertebrae:
        vertebra.centroid = moved(vertebra.centroid)
        if vertebra.keypoints is not None:
            vertebra.keypoints = np.array([moved(p) for p in np.asarray(vertebra.keypoints)])
    for region in moved_reference.no_spine_regions:
        region.centre = moved(region.centre)
    return out, moved_reference


#: Oral contrast in the colon (:func:`oral_contrast_colon`): HU of the contrast (positive oral contrast, diluted barium
#: or iodine: 200-1000 HU in the bowel), its noise SD, the colon's radius (descending colon 20-30 mm across when
#: collapsed, up to 50 mm distended), and its centre beside the column (mm to the side, mm in front of the median of
#: the reference centroids: the paracolic gutter, in front of the kidney's lateral edge).
COLON_HU, COLON_NOISE_HU, COLON_RADIUS_MM, COLON_BESIDE_MM, COLON_FRONT_MM = 450.0, 40.0, 18.0, 80.0, 20.0


def oral_contrast_colon(image, reference, side: str, *, radius_mm: float = COLON_RADIUS_MM,
                        beside_mm: float = COLON_BESIDE_MM, front_mm: float = COLON_FRONT_MM,
                        levels: Optional[tuple] = None):
    """``image`` reoriented to LPS with a stretch of colon filled with positive oral contrast beside the column.

    A straight tube (:data:`COLON_RADIUS_MM`, contrast of :data:`COLON_HU` with :data:`COLON_NOISE_HU` noise, a 2 mm
    wall of soft tissue; bone above 200 HU kept as it is) on the patient's ``side`` (``"left"``: the descending colon,
    ``"right"``: the ascending), :data:`COLON_BESIDE_MM` beside and :data:`COLON_FRONT_MM` in front of the median of
    the reference centroids, from the centroid of the fourth-lowest reference body down to that of the second-lowest
    (the sample CT: L2 to L4; the chest CT: T10 to T12, where the splenic and hepatic flexures lie). Abdominal CT is
    often read with the bowel opacified; the contrast is as bright as the bone of an elderly spine and brighter than
    its trabecular core, so it is the blob beside the spine that the localisation must not take for it (issue "Find
    the spine"). ``radius_mm``, ``beside_mm``, ``front_mm`` and ``levels`` (the reference levels of its top and bottom
    centroids) place another colon.
    """
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of, to_canonical

    canonical = to_canonical(image)
    geometry = geometry_of(canonical)
    array = sitk.GetArrayFromImage(canonical).astype(np.float32)
    centroids = np.array(sorted((np.asarray(v.centroid, float) for v in reference.vertebrae), key=lambda c: c[2]))
    median = np.median(centroids, axis=0)
    top, bottom = centroids[min(3, len(centroids) - 1), 2], centroids[min(1, len(centroids) - 1), 2]
    if levels is not None:
        named = {v.label: float(v.centroid[2]) for v in reference.vertebrae}
        top, bottom = named[levels[0]], named[levels[1]]
    centre = (median[0] + (beside_mm if side == "left" else -beside_mm), median[1] - front_mm)
    k, j, i = np.meshgrid(*(np.arange(n) for n in array.shape), indexing="ij")
    points = geometry.index_to_lps(np.column_stack([i.ravel(), j.ravel(), k.ravel()])).reshape(array.shape + (3,))
    radius = np.hypot(points[..., 0] - centre[0], points[..., 1] - centre[1])
    along = (points[..., 2] >= bottom) & (points[..., 2] <= top)
    wall = (radius <= radius_mm + 2.0) & (points[..., 2] >= bottom - 2.0) & (points[..., 2] <= top + 2.0)
    lumen = (radius <= radius_mm) & along
    bone = array > 200.0  # the bowel lies beside the bone (the iliac wing at L5), not in it
    wall, lumen = wall & ~bone, lumen & ~bone
    array[wall] = 30.0
    array[lumen] = COLON_HU + np.random.default_rng(11).normal(0.0, COLON_NOISE_HU, int(lumen.sum()))
    out = sitk.GetImageFromArray(array.astype(np.int16))
    out.CopyInformation(canonical)
    return out


#: Cement bolus of :func:`vertebroplasty`: HU, noise (HU) and semi-axes (mm: left-right, front-back, up-down).
CEMENT_BOLUS_HU, CEMENT_NOISE_HU, CEMENT_SEMI_AXES_MM = 1800.0, 100.0, (12.0, 9.0, 8.0)


def vertebroplasty(image, reference, count: int = 1, hu: float = CEMENT_BOLUS_HU):
    """``image`` reoriented to LPS with a bolus of bone cement in ``count`` neighbouring reference bodies.

    The bodies: the middle one of the reference bodies wholly in view (sorted top to bottom) and the ones above it.
    Each bolus is an ellipsoid of :data:`CEMENT_SEMI_AXES_MM` around the body's centre (the mean of its reference
    keypoints, else its centroid), ``hu`` with :data:`CEMENT_NOISE_HU` noise, never darker than the voxel was.
    """
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import geometry_of, to_canonical

    canonical = to_canonical(image)
    geometry = geometry_of(canonical)
    array = sitk.GetArrayFromImage(canonical).astype(np.float32)
    bodies = sorted((v for v in reference.vertebrae if v.in_view == "full"), key=lambda v: -v.centroid[2])
    middle = len(bodies) // 2
    rng = np.random.default_rng(5)
    axes = np.asarray(CEMENT_SEMI_AXES_MM)
    for body in bodies[max(middle - count + 1, 0): middle + 1]:
        centre = np.mean(body.keypoints, axis=0) if body.keypoints is not None else np.asarray(body.centroid, float)
        corners = geometry.lps_to_index(centre + axes * np.array([[-1, -1, -1], [1, 1, 1]]))[:, ::-1]  # k, j, i
        low = np.clip(np.floor(corners.min(axis=0)).astype(int) - 1, 0, array.shape)
        high = np.clip(np.ceil(corners.max(axis=0)).astype(int) + 2, 0, array.shape)
        k, j, i = np.meshgrid(*(np.arange(a, b) for a, b in zip(low, high)), indexing="ij")
        points = geometry.index_to_lps(np.column_stack([i.ravel(), j.ravel(), k.ravel()])).reshape(k.shape + (3,))
        inside = np.sum(((points - centre) / axes) ** 2, axis=-1) <= 1.0
        box = array[tuple(slice(a, b) for a, b in zip(low, high))]
        box[inside] = np.maximum(box[inside], hu + rng.normal(0.0, CEMENT_NOISE_HU, int(inside.sum())))
    out = sitk.GetImageFromArray(array.astype(np.int16))
    out.CopyInformation(canonical)
    return out


def side_cut(image, x_mm: float, keep: str):
    """``image`` reoriented to LPS and cut at LPS x ``x_mm``, keeping the patient's ``keep`` side (``"right"``: x below
    it) and the spine."""
    from VertebralFractureLib.io.images import to_canonical

    canonical = to_canonical(image)
    column = int(round((x_mm - canonical.GetOrigin()[0]) / canonical.GetSpacing()[0]))
    column = min(max(column, 1), canonical.GetSize()[0] - 1)
    return canonical[:column, :, :] if keep == "right" else canonical[column:, :, :]


def cut(image, low: float, high: float):
    """The slices from ``low`` to ``high`` (fractions of the inferior-superior extent) of ``image``, reoriented to LPS
    (the same physical image: the reference applies unchanged)."""
    from VertebralFractureLib.io.images import to_canonical

    canonical = to_canonical(image)
    n = canonical.GetSize()[2]
    return canonical[:, :, int(round(low * n)): int(round(high * n))]


#: ``inside``: a reference body counts as in the cut when its centroid lies this far (mm) inside the cut's first and
#: last slices (about half a body's height).
INSIDE_MM = 10.0


def inside(image, reference) -> int:
    """How many reference bodies have their centroid at least :data:`INSIDE_MM` inside ``image``'s z extent."""
    from VertebralFractureLib.io.images import geometry_of

    geometry = geometry_of(image)
    size = np.asarray(image.GetSize(), dtype=float) - 1.0
    corners = np.array([[i, j, k] for i in (0.0, size[0]) for j in (0.0, size[1]) for k in (0.0, size[2])])
    z = geometry.index_to_lps(corners)[:, 2]
    low, high = z.min(), z.max()
    return int(sum(low + INSIDE_MM <= float(v.centroid[2]) <= high - INSIDE_MM for v in reference.vertebrae))


def _fmt(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.1f}"


def main(argv: Optional[List[str]] = None) -> int:
    """Analyse and score every case x variant; print one row each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["sample_ct", "cptac_chest"])
    parser.add_argument("--variants", nargs="+", default=list(variants()))
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.pipeline import AnalysisOptions, analyze
    from VertebralFractureLib.schema import LEVEL_CERTAIN_KEY
    from VertebralFractureLib.training.real.reference import load_case, score_case

    rows = []
    print(f"{'case':14s} {'variant':9s} {'size':>15s} {'found':>7s} {'out':>3s} {'level%':>6s} {'certain':>7s} "
          f"{'assessed':>8s} {'falseG':>6s} {'kp mm':>5s} {'sag':>5s} {'h mm':>5s} {'sec':>5s} {'inside':>6s}  labels")
    for case in args.cases:
        reference = load_case(case)
        original = read_image(reference.image_path)
        makers = variants(*(float(v) for v in np.median([v.centroid[:2] for v in reference.vertebrae], axis=0)))
        for name in args.variants:
            if getattr(makers[name], "takes_reference", False):
                image, scored_against = makers[name](original, reference)
            else:
                image, scored_against = makers[name](original), reference
            start = time.perf_counter()
            result = analyze(image, AnalysisOptions(extra_stages=())).result
            seconds = time.perf_counter() - start
            score = score_case(result, scored_against)
            certain = bool((result.patient.get("levels") or {}).get("certain"))
            assessed = sum(v.status == "assessed" for v in result.vertebrae)
            level = score.level_accuracy
            # "*": not assessed; "?": the level is not counted with certainty although the result's levels are
            labels = " ".join(f"{v.label}{'' if v.extra.get(LEVEL_CERTAIN_KEY, True) else '?'}"
                              f"{'' if v.status == 'assessed' else '*'}" for v in result.vertebrae)
            row = {"case": case, "variant": name, "size": list(image.GetSize()),
                   "spacing": [round(s, 2) for s in image.GetSpacing()], "found": score.found, "full": score.n_full,
                   "outside": score.outside, "level_accuracy": level, "levels_certain": certain,
                   "level_wrong_certain": score.level_wrong_certain, "level_uncertain": score.level_uncertain,
                   "assessed": assessed, "reported": len(result.vertebrae), "false_grade": len(score.false_grade),
                   "keypoint_error_mm": score.keypoint_error_mm,
                   "keypoint_error_sagittal_mm": score.keypoint_error_sagittal_mm,
                   "height_error_mm": score.height_error_mm,
                   "seconds": round(seconds, 1), "inside": inside(image, scored_against), "labels": labels}
            rows.append(row)
            print(f"{case:14s} {name:9s} {'x'.join(map(str, image.GetSize())):>15s} "
                  f"{score.found:3d}/{score.n_full:<3d} {score.outside:3d} {_fmt(level and 100 * level):>6s} "
                  f"{str(certain):>7s} {assessed:3d}/{len(result.vertebrae):<4d} {len(score.false_grade):6d} "
                  f"{_fmt(score.keypoint_error_mm):>5s} {_fmt(score.keypoint_error_sagittal_mm):>5s} "
                  f"{_fmt(score.height_error_mm):>5s} {seconds:5.1f} "
                  f"{row['inside']:6d}  {labels}",
                  flush=True)
            del image
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
