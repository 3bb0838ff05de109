"""Benchmark of the keypoint detector (Pisov et al. 2020, §3.2 + Gartland et al. 2025 labels) on cached mid-sagittal
samples.

Usage (after building the evaluation cache, e.g. with ``vertebral-fracture evaluate keypoints
--case-dir runs/data/synth_test``):

    python3 benchmarks/bench_keypoints.py --cache runs/keypoints_eval_cache [--weights PATH] [--n 10]

Prints the CPU time per image of ``detect_vertebrae`` (2 threads at most; with the 3D level cues
of :mod:`VertebralFractureLib.keypoints.levelnet` and end-plate refinement when the profile cache
``<cache>_levelprof`` written by ``evaluate keypoints`` exists, else 2D heatmap labels), the time
of the bone-band profile of one straightened volume, and the evaluation table of
:mod:`VertebralFractureLib.training.keypoints.evaluate` on the same samples.
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

    from pathlib import Path

    from VertebralFractureLib.keypoints.detector import detect_vertebrae
    from VertebralFractureLib.keypoints.levelfeatures import RowProfile, row_profile
    from VertebralFractureLib.keypoints.model import load_model
    from VertebralFractureLib.training.keypoints.data import load_cached
    from VertebralFractureLib.training.keypoints.evaluate import evaluate_samples, format_table

    model = load_model(args.weights)
    samples = load_cached(args.cache)
    if args.n:
        samples = samples[: args.n]
    paths = sorted(Path(args.cache).glob("*.npz"))[: len(samples)]
    folder = Path(args.cache + "_levelprof")
    profiles = [RowProfile.load(folder / p.name) if (folder / p.name).exists() else None for p in paths]
    print(f"3D level profiles: {sum(p is not None for p in profiles)} of {len(samples)} samples")
    detect_vertebrae(samples[0].image, model=model, level_profile=profiles[0])  # warm-up
    times = []
    for sample, profile in zip(samples, profiles):
        started = time.perf_counter()
        detect_vertebrae(sample.image, model=model, level_profile=profile)
        times.append(time.perf_counter() - started)
    volume = np.random.default_rng(0).normal(0, 300, (400, 121, 121)).astype(np.float32)
    started = time.perf_counter()
    row_profile(volume, 1.0, 60.0, 60.0)
    print(f"row_profile of a 400 x 121 x 121 straightened volume: {time.perf_counter() - started:.3f} s")
    rows = np.mean([s.image.shape[0] for s in samples])
    print(f"detect_vertebrae: {np.mean(times):.3f} s mean, {np.median(times):.3f} s median per image "
          f"({len(samples)} images, mean {rows:.0f} x 97 px at 1 mm, {args.threads} threads)")
    print(format_table(evaluate_samples(model, samples, profiles=profiles)))


if __name__ == "__main__":
    main()
