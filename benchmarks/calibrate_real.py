"""False-positive rate of each learned score on the real normal-looking vertebrae of the reference set.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/calibrate_real.py [--cases sample_ct cptac_chest ...] [--json out.json]

Runs the full analysis (every optional stage) on each real reference CT
(``Testing/Data/real/reference``), matches the reported vertebrae to the reference centroids
(:func:`VertebralFractureLib.training.real.reference.score_case`) and, for every matched vertebra that the
reference says looks normal, records the patch classifier's probability (Husseini et al. 2020), the voxel
map's vertebra score (Nicolaes et al. 2019) and the shape abnormality (Botros et al. 2022). It prints, per
score, how many were at or above the operating point of :data:`VertebralFractureLib.verdict.SCORE_RULES`
(the false-positive rate), the median and the maximum, and whether the score may enter the verdict
(rate <= :data:`VertebralFractureLib.verdict.MAX_REAL_FPR`), with what the shipped rule says where it differs (the
shape abnormality's rule also counts real normal shapes drawn as CTs). Every matched vertebra counts, assessed or not:
this measures the score, not the gate. The reference set is small and from few patients: the rate is an
upper bound on trust, not a clinical specificity. A last line gives the voxel map's patient-level finding
(connected components of likely fracture voxels) on every real CT whose reference holds no fracture
(:data:`VertebralFractureLib.voxelmap.stage.REAL_NORMAL_CTS`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.training.real.reference import list_cases, load_case, score_case
    from VertebralFractureLib.validation import InputError
    from VertebralFractureLib.verdict import MAX_REAL_FPR, SCORE_RULES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", help="reference case names (default: all 3D cases)")
    parser.add_argument("--json", help="write the per-vertebra values here")
    args = parser.parse_args(argv)
    values = {rule.field: [] for rule in SCORE_RULES}
    rows = []
    patients: list = []  # the voxel map's patient-level finding on CTs whose reference has no fracture
    for case in args.cases or list_cases():
        reference = load_case(case)
        image = reference.path.parent.parent / reference.image
        try:
            result = analyze(image).result
        except InputError as error:  # refused input (e.g. the masked VerSe crop): no vertebra to calibrate on
            print(f"{case}: refused: {error}", flush=True)
            continue
        score = score_case(result, reference)
        normal = {v.label for v in reference.vertebrae if not v.looks_fractured}
        if "voxel_fracture_components" in result.patient and not any(v.looks_fractured for v in reference.vertebrae):
            components = result.patient["voxel_fracture_components"]
            patients.append({"case": case, "positive": components > 0, "components": components,
                             "volume_mm3": result.patient["voxel_fracture_volume_mm3"]})
        for match in score.matches:
            if match.reference not in normal:
                continue
            vertebra = result.vertebra(match.reported)
            row = {"case": case, "reported": match.reported, "reference": match.reference, "status": vertebra.status}
            for rule in SCORE_RULES:
                value = getattr(vertebra, rule.field)
                row[rule.field] = value
                if value is not None:
                    values[rule.field].append(float(value))
            rows.append(row)
        print(f"{case}: {sum(1 for r in rows if r['case'] == case)} normal vertebrae matched", flush=True)
    print(f"\n{'score':44s} {'n':>4s} {'thr':>6s} {'FPR':>6s} {'median':>7s} {'max':>7s}  verdict")
    for rule in SCORE_RULES:
        array = np.asarray(values[rule.field], dtype=float)
        if array.size == 0:
            print(f"{rule.name:44s} {0:4d}  (not computed)")
            continue
        fpr = float(np.mean(array >= rule.threshold))
        use = "used" if fpr <= MAX_REAL_FPR and array.size >= 10 else "research"
        shipped = "used" if rule.validated else "research"
        note = "" if use == shipped else (f" (the shipped rule: {shipped}, from {rule.real_fpr:.2f} on "
                                          f"{rule.real_n} real vertebrae; verdict.SCORE_RULES says why)")
        print(f"{rule.name:44s} {array.size:4d} {rule.threshold:6g} {fpr:6.2f} {np.median(array):7.2f} "
              f"{array.max():7.2f}  {use}{note}")
    if patients:
        positive = sum(1 for p in patients if p["positive"])
        print(f"\nvoxel map, patient level (Nicolaes et al. 2019 components): positive on {positive} of "
              f"{len(patients)} real CTs with no fracture in their reference: "
              + ", ".join(f"{p['case']} {p['components']} component(s), {p['volume_mm3']:.0f} mm3" for p in patients))
    if args.json:
        Path(args.json).write_text(json.dumps({"vertebrae": rows, "patients": patients}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
