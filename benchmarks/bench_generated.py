"""The generated column beside the real one: the whole analysis on held-out generated spines, scored like bench_real.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_generated.py [--n 12] [--seed 900000] [--json out.json]
                                                          [--realism hospital] [--size-scale 1.25]
                                                          [--slice-mm 5] [--pixel-mm 0.6] [--sagittal-mm 3]
                                                          [--metal]

Case ``i`` is ``generate_case(seed + i, preset)`` with the presets chest, abdomen, spine and scoliosis in turn
(the held-out seeds of the model figures in README.md start at 900000; training used other seeds). The truth
becomes a reference (every vertebra entirely in view, with its six keypoints, "looks fractured" when its true grade
is 1 or more; and, since 2026-12-04, the vertebrae cut by the field of view as "partial", as in the real references)
and the result is scored by the same
:func:`VertebralFractureLib.training.real.reference.score_case` as the real cases, so the two columns of
README.md mean the same thing. Also printed: sensitivity for true grade 2-3 vertebrae (verdict "fracture"), the
share of them flagged at all (verdict "fracture" or "review": the validated learned scores can ask for a look at a
body whose heights look normal), the share of vertebrae not assessed, the wrong levels in cases whose levels
were called certain (``confident_wrong_levels``), and the vertebra AUC of grades 2-3 against grade 0 (grade 1 left
out) of the patch classifier's probability and of the keypoints' 1 - G over every matched vertebra.
``--metal`` adds pedicle screws and rods at two or three adjacent levels of every case (``SynthParams.metal``) and
prints how many of the instrumented vertebrae were graded and how many of their neighbours were assessed.
``--slice-mm S`` resamples each generated CT to S mm slices (linear, in-plane spacing kept, as
``bench_real_variants.py --variants thick5`` does with the real ones) before the analysis; ``--dfov MM`` keeps a
reconstruction circle MM wide centred on the spine (``bench_real_variants.py --variants dfov150``); ``--cement N``
draws a vertebroplasty's cement into N neighbouring bodies (``--variants cement2``); ``--noise HU`` adds white
Gaussian noise of that SD (``--variants noise80``: a low-dose or lung-kernel scan); the truth is in patient mm and
applies unchanged. ``--pixel-mm P`` resamples each CT in-plane to P mm pixels the same way (a series
finer than the generator's 1 mm, as hospitals reconstruct them). ``--sagittal-mm S`` resamples each CT to S mm along
the patient's left-right axis (a series of sagittal slices S mm apart, as many spine CTs of the VerSe collection are
stored).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PRESETS = ("chest", "abdomen", "spine", "scoliosis")


def reference_from_truth(case: str, truth, vert_mask=None):
    """A :class:`Reference` from a generated case's truth.

    The truth's vertebrae (entirely in view, keypoints from the generator) are ``"full"``; the vertebrae the field of
    view cuts (the generator's ``partial_levels``) are ``"partial"``, centred on their voxels in view in
    ``vert_mask`` (SimpleITK, VerSe labels), as the real references list the bodies cut by the field of view: a
    partial body the analysis reports ("not assessed: cut by the field of view") is a body, not a detection outside
    the spine, and it cannot be missed.
    """
    import SimpleITK as sitk

    from VertebralFractureLib.levels import label_from_level
    from VertebralFractureLib.training.real.reference import Reference, ReferenceVertebra

    vertebrae = [ReferenceVertebra(label=v.label, centroid=np.asarray(v.centroid, float), in_view="full",
                                   keypoints=np.asarray(v.keypoints, float), keypoint_source="generator",
                                   looks_fractured=bool(v.measure is not None and v.measure.grade >= 1))
                 for v in truth.vertebrae]
    if vert_mask is not None:
        labels = sitk.GetArrayViewFromImage(vert_mask)
        for level in truth.input.get("synthetic", {}).get("partial_levels", []):
            voxels = np.argwhere(labels == label_from_level(level))  # (z, y, x)
            if len(voxels):
                centre = vert_mask.TransformContinuousIndexToPhysicalPoint(voxels.mean(axis=0)[::-1].tolist())
                vertebrae.append(ReferenceVertebra(label=level, centroid=np.asarray(centre, float), in_view="partial",
                                                   keypoints=None, keypoint_source=None, looks_fractured=False))
    return Reference(case=case, image="", vertebrae=vertebrae, no_spine_regions=[])


def main(argv=None) -> int:
    import SimpleITK as sitk

    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.synth import generate_case
    from VertebralFractureLib.training.real.reference import score_case, summarise

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=12)
    parser.add_argument("--seed", type=int, default=900000)
    parser.add_argument("--json", help="write the per-case scores here")
    parser.add_argument("--size-scale", type=float,
                        help="body-size factor of every case (default: the generator's draw, about N(1, 0.05); the "
                             "real reference bodies are 1.0-1.3 times the generator's mean)")
    parser.add_argument("--realism", default="v1", choices=("v1", "hospital"), help="generator profile (default v1)")
    parser.add_argument("--slice-mm", type=float, help="resample each CT to slices this thick (mm) before analysis")
    parser.add_argument("--pixel-mm", type=float, help="resample each CT to in-plane pixels this wide (mm) first")
    parser.add_argument("--sagittal-mm", type=float,
                        help="resample each CT to left-right slices this far apart (mm): a sagittal series")
    parser.add_argument("--metal", action="store_true", help="pedicle screws at two or three levels of every case")
    parser.add_argument("--cement", type=int, metavar="N",
                        help="a vertebroplasty: cement in the N neighbouring bodies around the middle of the spine "
                             "(bench_real_variants.vertebroplasty, 2400 HU)")
    parser.add_argument("--noise", type=float, metavar="HU",
                        help="add white Gaussian noise of this SD to each CT (bench_real_variants.py noise80)")
    parser.add_argument("--dfov", type=float, metavar="MM",
                        help="keep only a reconstruction circle this wide (mm) centred on the spine, -3024 HU outside "
                             "it, as a spine series reconstructed on a small field of view shows it")
    args = parser.parse_args(argv)
    scores, moderate, detected, flagged, total, not_assessed, confident_wrong = [], 0, 0, 0, 0, 0, 0
    instrumented = {"vertebrae": 0, "assessed": 0, "false_grade": 0}
    scored = []  # (moderate or severe, classifier probability, 1 - G) of every matched grade 0 / 2 / 3 vertebra
    with tempfile.TemporaryDirectory() as folder:
        for i in range(args.n):
            preset = PRESETS[i % len(PRESETS)]
            overrides = {} if args.realism == "v1" else {"realism": args.realism}
            if args.size_scale is not None:
                overrides["size_scale"] = args.size_scale
            if args.metal:
                overrides["metal"] = True
            case = generate_case(args.seed + i, preset, **overrides)
            path = Path(folder) / f"case_{i:04d}.nii.gz"
            ct = case.ct
            if args.slice_mm is not None or args.pixel_mm is not None or args.sagittal_mm is not None:
                from VertebralFractureLib.io.images import resample_spacing

                spacing = ct.GetSpacing()
                ct = resample_spacing(ct, (args.sagittal_mm or args.pixel_mm or spacing[0],
                                           args.pixel_mm or spacing[1], args.slice_mm or spacing[2]))
            reference = reference_from_truth(f"synth_{args.seed + i}_{preset}", case.truth, case.vert_mask)
            if args.cement:
                from bench_real_variants import vertebroplasty

                ct = vertebroplasty(ct, reference, args.cement, 2400.0)
            if args.noise:
                from bench_real_variants import with_noise

                ct = with_noise(ct, args.noise, args.seed + i)
            if args.dfov is not None:
                from bench_real_variants import reconstruction_circle

                centre = np.median([v.centroid[:2] for v in reference.vertebrae], axis=0)
                ct = reconstruction_circle(ct, (float(centre[0]), float(centre[1])), 0.5 * args.dfov)
            sitk.WriteImage(ct, str(path))
            started = time.perf_counter()
            try:
                analysis = analyze(path)
                result = analysis.result
            except Exception as error:  # a refused case is a finding of this benchmark, not a crash
                print(f"case {i} ({preset}): {type(error).__name__}: {error}")
                continue
            line = None if analysis.centreline is None else analysis.centreline.points
            score = score_case(result, reference, centreline=line)
            score.seconds = time.perf_counter() - started
            scores.append(score)
            certain = bool(result.patient.get("levels", {}).get("certain", False))
            confident_wrong += score.level_wrong_certain  # the case's count certain, and this level not marked
            total += len(result.vertebrae)
            not_assessed += sum(1 for v in result.vertebrae if not v.assessed)
            truth_grades = {v.label: v.measure.grade for v in case.truth.vertebrae if v.measure is not None}
            with_metal = set((case.truth.input.get("synthetic") or {}).get("instrumented_levels") or [])
            for match in score.matches:
                if match.reference in with_metal:
                    instrumented["vertebrae"] += 1
                    instrumented["assessed"] += int(match.status == "assessed")
                    instrumented["false_grade"] += int(match.reference in score.false_grade)
            for match in score.matches:
                true_grade = truth_grades.get(match.reference, 0) if match.reference is not None else None
                reported = result.vertebra(match.reported)
                if true_grade in (0, 2, 3):  # grade 1 is left out of the AUC (Husseini et al. 2020, section 1)
                    g = reported.measure.G if reported.measure is not None else None
                    scored.append((true_grade >= 2, reported.fracture_probability, None if g is None else 1.0 - g))
                if true_grade is not None and true_grade >= 2:
                    moderate += 1
                    verdict = reported.verdict()[0]
                    detected += int(verdict == "fracture")
                    flagged += int(verdict in ("fracture", "review"))
            print(f"case {i} ({preset}): found {score.found}/{score.n_reference} ({score.n_full} whole, missed "
                  f"{len(score.missed)}), outside {score.outside}, "
                  f"levels {score.level_correct}/{score.found} ({'certain' if certain else 'uncertain'}), "
                  f"false grade>=2 {len(score.false_grade)}, "
                  f"{score.seconds:.1f} s", flush=True)
    summary = summarise(scores)
    summary["moderate_fractures"] = moderate
    summary["moderate_sensitivity"] = detected / moderate if moderate else None
    # called "fracture" or sent for "review" (a learned score that disagrees with normal heights)
    summary["moderate_flagged"] = flagged / moderate if moderate else None
    summary["not_assessed_share"] = not_assessed / total if total else None
    # vertebra AUC, grades 2-3 against 0, every matched vertebra (withheld ones keep their scores): the patch
    # classifier's probability and the keypoints' height loss 1 - G
    from VertebralFractureLib.voxelmap.aggregate import roc_auc

    for key, column in (("moderate_auc_classifier", 1), ("moderate_auc_keypoints", 2)):
        pairs = [(row[0], row[column]) for row in scored if row[column] is not None]
        summary[key] = roc_auc([p for _, p in pairs], [t for t, _ in pairs]) if pairs else None
    # wrong levels in cases whose levels the analysis called certain (the failure a reader cannot see)
    summary["confident_wrong_levels"] = confident_wrong
    if args.metal:
        summary.update({f"instrumented_{key}": value for key, value in instrumented.items()})
    print(json.dumps({k: v for k, v in summary.items() if not isinstance(v, (list, dict))}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "cases": [s.to_dict() for s in scores]},
                                              indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
