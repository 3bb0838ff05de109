"""Real vertebral shapes, fractured ones included, drawn as CTs: does the analysis grade them as the radiologists did?

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_real_shapes.py [--seeds 6] [--out DIR] [--json out.json]

The real reference CTs of ``Testing/Data/real`` hold no fractured vertebra, so they cannot say whether a real
fracture is found. The real vertebra masks can: VerSe sub-verse004 (T9-L5) carries its radiologists' Genant
grades (``verse/verse19_genant_grades.csv``: T9 2, T10 2, L1 3, the others 0; Löffler et al. 2020), and
sample001 (T1-L5, no grades) was read on its mask slices (``bench_masks.SAMPLE001_NORMAL_LOOKING``; T3 an
anterior wedge, L1 a depressed superior endplate, L2 a quarter lower than L3; T12 and the cut L5 not decided).
Each mask is drawn as a CT by :func:`VertebralFractureLib.synth.generate_from_mask` (the real shapes, the
generator's tissue, scanner blur and noise) at several seeds (bone density, noise and soft tissue drawn from the
seed) and slice thicknesses, the whole analysis runs on it (every stage), and the result is scored with the real
references' scorer (:func:`VertebralFractureLib.training.real.reference.score_case`: centroids matched within 15
mm, levels, keypoints against the keypoints measured on the drawn mask). Per vertebra it prints the reference
grade, the reported status, grade and verdict (:mod:`VertebralFractureLib.verdict`) and the learned scores; then,
for the fractured bodies (reference grade 2-3), how many were called "fracture", sent to "review", withheld ("not
assessed") or called "normal" (a miss), and the same for the normal ones (a "fracture" there is a false grade).

This is a half-real column: the shapes, the fractures and the grades are real, the intensities are generated. It
is no substitute for real fractured CTs, which this project does not have.

``--sagittal``: the 2D path instead (``analyze_radiograph``, as for a sagittal CT slice a site sends as a picture):
each drawn CT is reformatted on its mid-sagittal plane (1 mm pixels, the plane through the median left-right position
of the body centres) and analysed as a lateral view; per level the verdict and the lateral-view classifier's score,
then the same counts. The lateral-view classifier never saw these shapes (it is trained on generated spines only).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_masks import MASKS, SAMPLE001_NORMAL_LOOKING, _radiologists  # noqa: E402

#: Slice thicknesses (mm) cycled over the seeds; the in-plane pixel is 1 mm.
SLICE_MM = (1.0, 2.0, 3.0)
#: sample001 levels read as deformed on its mask (no radiologist's grade: the figure counts them as fractured).
SAMPLE001_DEFORMED = ("T3", "L1", "L2")


def reference_grades(name: str) -> dict:
    """Reference grade per level: the radiologists' for sub-verse004 (unlisted levels 0); sample001 as read."""
    if name == "sub-verse004":
        grades = _radiologists("sub-verse004")
        return {level: grades.get(level, 0) for level in
                ("T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5")}
    grades = {level: 0 for level in SAMPLE001_NORMAL_LOOKING}
    grades.update({level: 2 for level in SAMPLE001_DEFORMED})  # "deformed", severity not graded
    return grades


def reference_of(case_name: str, case, grades: dict):
    """A :class:`Reference` from the drawn case: body-mask centroids, mask keypoints, the reference grades."""
    from VertebralFractureLib.training.real.reference import Reference, ReferenceVertebra

    truth = {v.label: v for v in case.truth.vertebrae}
    vertebrae = []
    for level, centre in case.body_centres().items():
        known = truth.get(level)
        keypoints = None if known is None or known.keypoints is None else np.asarray(known.keypoints, float)
        vertebrae.append(ReferenceVertebra(
            label=level, centroid=np.asarray(centre, float), in_view="full", keypoints=keypoints,
            keypoint_source=None if keypoints is None else "mask",
            looks_fractured=grades.get(level, 0) >= 2, note="" if level in grades else "grade not decided"))
    vertebrae.sort(key=lambda v: -v.centroid[2])
    return Reference(case=case_name, image="", vertebrae=vertebrae, no_spine_regions=[])


def mid_sagittal_picture(case, path: Path) -> tuple:
    """Write the drawn CT's mid-sagittal plane as a 2D image (rows superior -> inferior, columns anterior ->
    posterior, 1 mm); return ``(path, level -> [column, row] of its body centre)``."""
    import SimpleITK as sitk

    from VertebralFractureLib.spine.straighten import sample_image

    centres = case.body_centres()
    points = np.array(list(centres.values()))
    x = float(np.median(points[:, 0]))
    y0, y1 = points[:, 1].min() - 60.0, points[:, 1].max() + 80.0
    z0, z1 = points[:, 2].max() + 40.0, points[:, 2].min() - 40.0
    ys, zs = np.arange(y0, y1, 1.0), np.arange(z0, z1, -1.0)
    zz, yy = np.meshgrid(zs, ys, indexing="ij")
    picture = sample_image(case.ct, np.stack([np.full_like(yy, x), yy, zz], axis=-1))
    image = sitk.GetImageFromArray(picture.astype(np.float32))
    image.SetSpacing((1.0, 1.0))
    sitk.WriteImage(image, str(path))
    return path, {level: np.array([c[1] - y0, z0 - c[2]]) for level, c in centres.items()}


def sagittal_rows(name: str, case, path: Path, grades: dict) -> list:
    """Per matched body of the mid-sagittal picture: reference grade, verdict, reason, classifier score."""
    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.validation import InputError

    picture, centres = mid_sagittal_picture(case, path)
    try:
        result = analyze_radiograph(str(picture)).result
    except InputError as error:
        print(f"\n{path.name}: {error}")
        return []
    rows = []
    print(f"\n{path.name}: {len(result.vertebrae)} reported")
    for level, centre in centres.items():
        distances = [np.linalg.norm(np.asarray(v.centroid, float) - centre) for v in result.vertebrae]
        if not distances or min(distances) > 15.0:
            continue
        reported = result.vertebrae[int(np.argmin(distances))]
        verdict, why = reported.verdict()
        rows.append({"case": path.name, "mask": name, "level": level, "reference_grade": grades.get(level),
                     "verdict": verdict, "reason": why, "classifier": reported.fracture_probability})
        score = "-" if reported.fracture_probability is None else f"{reported.fracture_probability:.2f}"
        print(f"  {level:4s} reference {grades.get(level, '-')}  {verdict:12s} classifier {score:5s} {why[:90]}")
    return rows


def _print_counts(rows: list) -> None:
    """The verdicts of the fractured and of the normal bodies."""
    for title, wanted in (("fractured (reference grade 2-3)", lambda g: g is not None and g >= 2),
                          ("normal (reference grade 0)", lambda g: g == 0)):
        picked = [row for row in rows if wanted(row["reference_grade"])]
        counts = Counter(row["verdict"] for row in picked)
        print(f"{title}: {len(picked)} matched: " + ", ".join(f"{key} {counts.get(key, 0)}" for key in
                                                              ("fracture", "review", "not assessed", "normal")))


def main(argv=None) -> int:
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.synth import generate_from_mask
    from VertebralFractureLib.training.real.reference import score_case, summarise
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=6, help="drawings per mask (slice thickness cycles 1, 2, 3 mm)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--masks", nargs="*", default=["sub-verse004", "sample001"], choices=["sub-verse004",
                                                                                              "sample001"])
    parser.add_argument("--out", type=Path, help="keep the drawn CTs here (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="write the per-vertebra rows and the totals here")
    parser.add_argument("--sagittal", action="store_true",
                        help="analyse each drawn CT's mid-sagittal plane by the 2D path instead (module doc)")
    args = parser.parse_args(argv)
    folder = args.out or Path(tempfile.mkdtemp(prefix="bench_real_shapes_"))
    folder.mkdir(parents=True, exist_ok=True)
    rows, scores, thicknesses = [], [], []
    for name in args.masks:
        mask = read_image(MASKS[name])
        grades = reference_grades(name)
        for i in range(args.seeds):
            seed = args.first_seed + i
            slice_mm = SLICE_MM[i % len(SLICE_MM)]
            case = generate_from_mask(mask, seed, spacing=(1.0, 1.0, slice_mm), fov_xy_mm=(300.0, 260.0))
            path = folder / f"{name}_seed{seed}_{slice_mm:g}mm.nii.gz"
            if args.sagittal:
                rows += sagittal_rows(name, case, path.with_name(path.name.replace(".nii.gz", "_sagittal.nii.gz")),
                                      grades)
                continue
            sitk.WriteImage(case.ct, str(path))
            started = time.perf_counter()
            analysis = analyze(path)
            result = analysis.result
            reference = reference_of(path.name, case, grades)
            score = score_case(result, reference)
            score.seconds = time.perf_counter() - started
            scores.append(score)
            thicknesses.append(slice_mm)
            print(f"\n{path.name} (bone density {1 - case.params.osteoporosis:.2f} of normal): found "
                  f"{score.found}/{score.n_reference}, missed {score.missed}, outside {score.outside}, levels "
                  f"{score.level_correct}/{score.found}, {score.seconds:.1f} s")
            for match in score.matches:
                if match.reference is None:
                    continue
                reported = result.vertebra(match.reported)
                verdict, why = reported.verdict()
                grade = grades.get(match.reference)
                measure = reported.measure
                row = {"case": path.name, "mask": name, "seed": seed, "slice_mm": slice_mm,
                       "level": match.reference, "reported": match.reported, "reference_grade": grade,
                       "status": reported.status, "grade": measure.grade if measure and reported.assessed else None,
                       "G": None if measure is None else round(float(measure.G), 3), "verdict": verdict,
                       "reason": why, "classifier": reported.fracture_probability,
                       "voxel_map": reported.voxel_fracture_score, "abnormality": reported.abnormality,
                       "keypoint_error_mm": match.keypoint_error_mm,
                       "unconfirmed_grade": reported.extra.get(UNCONFIRMED_GRADE_KEY)}
                rows.append(row)
                scores_text = " ".join(f"{key} {row[key]:.2f}" for key in ("classifier", "voxel_map")
                                       if row[key] is not None)
                print(f"  {match.reference:4s} (as {match.reported:4s}) reference "
                      f"{'-' if grade is None else grade}  {verdict:12s} G {row['G'] if row['G'] is not None else '-'}"
                      f"  {scores_text}  {why[:100]}")
    if args.sagittal:
        _print_counts(rows)
        if args.json:
            args.json.write_text(json.dumps({"rows": rows}, indent=1, default=str))
        return 0
    total = summarise(scores)
    level_right = sum(score.level_correct for score in scores)
    print(f"\nTOTAL: found {total['found']} of {total['n_reference']} bodies, outside {total['outside']}, levels "
          f"{level_right}/{total['found']} (no ribs or sacrum are drawn: the levels are not anchored), keypoint error "
          f"(assessed) {total['keypoint_error_mm'] or float('nan'):.2f} mm, every matched "
          f"{total['keypoint_error_all_mm'] or float('nan'):.2f} mm")
    for slice_mm in SLICE_MM:  # every matched body, withheld included, against the drawn mask's keypoints
        picked = [score for score, thickness in zip(scores, thicknesses) if thickness == slice_mm]
        points = [e for score in picked for e in score.keypoint_errors_all_mm]
        heights = [e for score in picked for e in score.height_errors_all_mm]
        if points:
            print(f"{slice_mm:g} mm slices: keypoint / height error over every matched body ({len(points)}) "
                  f"{np.mean(points):.2f} / {np.mean(heights):.2f} mm")
    _print_counts(rows)
    if args.json:
        args.json.write_text(json.dumps({"total": {k: v for k, v in total.items() if not isinstance(v, list)},
                                         "rows": rows}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
