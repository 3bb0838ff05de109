"""Benchmark of the keypoint detector (001 §3.2 + 004 labels) on cached mid-sagittal samples.

Usage (after building the evaluation cache, e.g. with ``vertebral-fracture evaluate keypoints
--case-dir /work/data/synth_test``):

    python3 benchmarks/bench_keypoints.py --cache runs/keypoints_eval_cache [--weights PATH] [--n 10]

Prints the CPU time per image of ``detect_vertebrae`` (2 threads at most) and the evaluation table
of :mod:`VertebralFractureLib.keypoints.evaluate` on the same samples.
"""

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="runs/keypoints_eval_cache")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--n", type=int, default=0, help="samples to use (0: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from VertebralFractureLib.keypoints.dataset import load_cached
    from VertebralFractureLib.keypoints.detector import detect_vertebrae
    from VertebralFractureLib.keypoints.evaluate import evaluate_samples, format_table
    from VertebralFractureLib.keypoints.model import load_model

    model = load_model(args.weights)
    samples = load_cached(args.cache)
    if args.n:
        samples = samples[: args.n]
    detect_vertebrae(samples[0].image, model=model)  # warm-up
    times = []
    for sample in samples:
        started = time.perf_counter()
        detect_vertebrae(sample.image, model=model)
        times.append(time.perf_counter() - started)
    rows = np.mean([s.image.shape[0] for s in samples])
    print(f"detect_vertebrae: {np.mean(times):.3f} s mean, {np.median(times):.3f} s median per image "
          f"({len(samples)} images, mean {rows:.0f} x 97 px at 1 mm, {args.threads} threads)")
    print(format_table(evaluate_samples(model, samples)))


if __name__ == "__main__":
    main()
