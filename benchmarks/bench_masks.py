"""Measurement from real vertebra masks: grades against the radiologists, abnormality on normal vertebrae, time.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_masks.py [--repeat 3] [--out DIR] [--figure docs/real_masks.png]

Runs ``vertebral-fracture measure`` (the command a user runs, abnormality included) on the real masks of
``Testing/Data/real`` and prints, per mask, the levels, statuses, Genant grades and the abnormality score
(Botros et al. 2022), then:

* VerSe sub-verse004 against the radiologists' Genant grades (``verse/verse19_genant_grades.csv``; the
  levels not listed there are grade 0): exact-grade agreement;
* the abnormality score's false-positive rate at the operating point of
  :data:`VertebralFractureLib.verdict.MASK_SCORE_RULES` on the real mask vertebrae that look normal
  (sub-verse004: the radiologists' grade 0; sample001, which has no grades: the levels listed in
  :data:`SAMPLE001_NORMAL_LOOKING`, read on the mask image, see docs/findings.md "Real masks");
* the median wall time of ``measure`` on the 512 x 1343 x 27 thick-slice mask (sample001), with and
  without the abnormality model (process start and torch import included).

``--figure`` writes the mid-sagittal keypoint images of the masks side by side (``docs/real_masks.png``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "Testing" / "Data" / "real"

#: The real masks measured, by short name.
MASKS = {
    "sub-verse004": REAL / "verse" / "sub-verse004_seg-vert_msk.nii.gz",
    "sample001": REAL / "verse_sample001" / "sub-sample001_seg-vert_msk.nii.gz",
    "tptbox": REAL / "tptbox" / "sub-ct_seg-vert_label-22_msk.nii.gz",
}
#: sample001 levels whose mask shows no deformity (read on the mid-sagittal mask slices: T3 is an anterior
#: wedge, L1 has a depressed superior endplate, L2 is a quarter lower than L3; L5 is cut by the edge).
SAMPLE001_NORMAL_LOOKING = ("T1", "T2", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "L3", "L4")


def _measure(mask: Path, out: Path, *extra: str) -> float:
    """Run ``vertebral-fracture measure`` on one mask; returns the wall time in seconds."""
    command = [sys.executable, "-m", "VertebralFractureLib", "measure", str(mask), "--out", str(out), "--overwrite"]
    start = time.perf_counter()
    subprocess.run([*command, *extra], check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - start


def _radiologists(subject: str) -> dict:
    grades = {}
    with open(REAL / "verse" / "verse19_genant_grades.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["subject"] == subject:
                grades[row["vertebra"]] = int(row["genant_grade"])
    return grades


def main(argv=None) -> int:
    from VertebralFractureLib.verdict import MASK_SCORE_RULES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs on the thick-slice mask")
    parser.add_argument("--out", help="keep the outputs here (default: a temporary folder)")
    parser.add_argument("--figure", help="write the keypoint images side by side to this PNG")
    args = parser.parse_args(argv)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_masks_"))
    results = {}
    for name, mask in MASKS.items():
        _measure(mask, root / name)
        results[name] = json.loads((root / name / "results.json").read_text())
        print(f"\n{name}:")
        for v in results[name]["vertebrae"]:
            genant = v.get("genant") or {}
            grade = genant.get("grade", "-") if v["status"] == "assessed" else "n/a"
            abnormality = v.get("abnormality")
            score = f"{abnormality:5.1f}" if abnormality is not None else "    -"
            print(f"  {v['label']:4s} {v['status']:13s} grade {grade!s:3s} G {genant.get('G', float('nan')):.2f}  "
                  f"abnormality {score}  {v.get('status_reason') or ''}")

    reference = _radiologists("sub-verse004")
    verse = {v["label"]: v for v in results["sub-verse004"]["vertebrae"]}
    agree = sum((verse[level].get("genant") or {}).get("grade") == reference.get(level, 0) for level in verse)
    print(f"\nsub-verse004 against the radiologists: {agree}/{len(verse)} exact grades "
          f"(radiologists: {', '.join(f'{k} {v}' for k, v in sorted(reference.items()))}, others 0)")

    normal = [verse[level] for level in verse if reference.get(level, 0) == 0]
    sample = {v["label"]: v for v in results["sample001"]["vertebrae"]}
    normal += [sample[level] for level in SAMPLE001_NORMAL_LOOKING if level in sample]
    for rule in MASK_SCORE_RULES:
        values = [v[rule.field] for v in normal if v.get(rule.field) is not None]
        high = sum(value >= rule.threshold for value in values)
        print(f"{rule.name} on {len(values)} real normal-looking mask vertebrae: {high}/{len(values)} >= "
              f"{rule.threshold:g} (median {statistics.median(values):.1f}, max {max(values):.1f})")
    graded = [f"{name} {v['label']} {v['genant']['grade']}" for name, r in results.items() for v in r["vertebrae"]
              if v["status"] == "assessed" and v["genant"]["grade"] >= 2]
    print("grade >= 2 on the real masks: " + ", ".join(graded))

    thick = MASKS["sample001"]
    plain = [_measure(thick, root / "timing", "--no-abnormality") for _ in range(args.repeat)]
    full = [_measure(thick, root / "timing") for _ in range(args.repeat)]
    print(f"measure on the 512 x 1343 x 27 mask: median {statistics.median(plain):.1f} s without the abnormality "
          f"model, {statistics.median(full):.1f} s with it ({args.repeat} runs each)")

    if args.figure:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.image as mpimg
        import matplotlib.pyplot as plt

        names = ["sub-verse004", "sample001"]
        fig, axes = plt.subplots(1, len(names), figsize=(8 * len(names), 9))
        for ax, name in zip(axes, names):
            ax.imshow(mpimg.imread(root / name / "keypoints.png"))
            ax.set_axis_off()
        fig.tight_layout()
        fig.savefig(args.figure, dpi=110)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
