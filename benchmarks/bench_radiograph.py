"""Radiograph path: Gartland et al. 2025, Table 1 on held-out generated radiographs, and the speed of one analysis.

Usage::

    python benchmarks/bench_radiograph.py [--columns DIR] [--count 30] [--weights-dir DIR]
                                          [--shared runs/data/synth_test] [--figure docs/radiograph_centroids.png]
                                          [--repeat 3]

1. Prints Gartland et al. 2025, Table 1 (vertebra identification accuracy and RMSE of correctly identified
   centroids, in 264 x 264 input pixels, mm and relative to the neighbour spacing) for every
   ``radiograph_centroids_<loss>.pt`` found (``vertebral-fracture evaluate radiograph-centroids``).
2. Scores the whole analysis (``--end-to-end N`` held-out spines, both views each): detection
   recall / precision and keypoint error of the radiograph detector and, for comparison, of the
   CT detector (``keypoints.pt``) run on the same radiographs; level accuracy; Genant G error.
3. Times ``analyze_radiograph`` (wall and CPU seconds per stage, median of ``--repeat``) on a
   held-out generated radiograph with the shipped weights, and prints the vertebrae it found
   against the truth (level and centre error in mm).
Wall time depends on the load of the machine; CPU time less so.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--columns", default="runs/radiograph/test_columns")
    parser.add_argument("--count", type=int, default=0, help="generate missing held-out columns")
    parser.add_argument("--weights-dir", default=None)
    parser.add_argument("--shared", default=None)
    parser.add_argument("--figure", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--end-to-end", type=int, default=10, help="held-out spines for the whole-analysis scores")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.training.radiograph import evaluate
    from VertebralFractureLib.training.radiograph.columns import load_columns

    torch.set_num_threads(args.threads)
    eval_args = ["--columns", args.columns, "--count", str(args.count), "--threads", str(args.threads)]
    for flag, value in (("--weights-dir", args.weights_dir), ("--shared", args.shared), ("--figure", args.figure)):
        if value:
            eval_args += [flag, value]
    evaluate.main(eval_args)

    from VertebralFractureLib.radiograph.analyze import load_keypoint_model
    from VertebralFractureLib.training.radiograph.endtoend import score_analysis, score_detector
    from VertebralFractureLib.training.radiograph.views import evaluation_views

    views = evaluation_views(load_columns(args.columns)[: args.end_to_end])
    print(f"\nwhole analysis on {len(views)} held-out views ({args.end_to_end} spines):")
    print(f"  radiograph detector alone: {_fmt(score_detector(load_keypoint_model(), views))}")
    try:
        from VertebralFractureLib.keypoints.model import load_model

        print(f"  CT detector (keypoints.pt) on the same radiographs: {_fmt(score_detector(load_model(), views))}")
    except (FileNotFoundError, ValueError) as error:
        print(f"  CT detector not available: {error}")
    print(f"  analyze_radiograph: {_fmt(score_analysis(views))}")

    column = load_columns(args.columns)[0]
    timings, cpu = [], []
    for _ in range(max(1, args.repeat)):
        wall0, cpu0 = time.perf_counter(), time.process_time()
        analysis = analyze_radiograph(column.image, pixel_spacing=(column.pixel_mm, column.pixel_mm))
        timings.append(time.perf_counter() - wall0)
        cpu.append(time.process_time() - cpu0)
    result = analysis.result
    print(f"\nanalyze_radiograph on a {column.image.shape[1]} x {column.image.shape[0]} radiograph "
          f"({column.pixel_mm} mm pixels): wall {statistics.median(timings):.2f} s, "
          f"cpu {statistics.median(cpu):.2f} s; stages {result.timings_s}")
    truth = dict(zip(column.levels, column.centroids))
    for vertebra in result.vertebrae:
        nearest = min(truth, key=lambda lv: float(np.hypot(*(truth[lv] - vertebra.centroid))))
        error = float(np.hypot(*(truth[nearest] - vertebra.centroid))) * column.pixel_mm
        G = f"{vertebra.measure.G:.2f}" if vertebra.measure else "-"
        print(f"  {vertebra.label:>4s} (truth {nearest:>4s}, centre error {error:5.1f} mm) G {G} "
              f"confidence {vertebra.confidence:.2f}")
    labelled = sum(1 for v in result.vertebrae
                   if min(truth, key=lambda lv: float(np.hypot(*(truth[lv] - v.centroid)))) == v.label)
    print(f"  {len(result.vertebrae)} found of {len(truth)} in view; {labelled} with the true level")
    return 0


def _fmt(scores: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items())


if __name__ == "__main__":
    sys.exit(main())
