"""Speed of the fracture classifier (Husseini et al. 2020) per case: patch straightening, patch cutting, network.

Uses a generated case (``--case`` folder, else ``generate_case(seed)``), straightens it along its
centre-line on the patch grid, cuts the 112 x 112 patches of its vertebrae and runs the network at
the shipped width and at the paper's full width. Prints the median of ``--repeats`` runs.

    python benchmarks/bench_grading.py [--case DIR] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def timed(fn, repeats):
    times, value = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", help="a case folder (ct.nii.gz, truth.json, centreline.json)")
    parser.add_argument("--seed", type=int, default=900001)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from VertebralFractureLib.grading.classifier import WEIGHTS_NAME, fracture_probabilities, load_model
    from VertebralFractureLib.grading.network import GradingNet
    from VertebralFractureLib.grading.patches import extract_patch, straighten_for_patches
    from VertebralFractureLib.training.grading.data import read_case_folder

    torch.set_num_threads(args.threads)
    if args.case:
        ct, truth, curve = read_case_folder(args.case)
    else:
        from VertebralFractureLib.synth import generate_case

        case = generate_case(args.seed, radiograph=False)
        ct, truth, curve = case.ct, case.truth, case.centreline
    n = len(truth.vertebrae)
    t_straight, st = timed(lambda: straighten_for_patches(ct, curve), args.repeats)
    t_cut, _ = timed(lambda: [extract_patch(st, v.centroid) for v in truth.vertebrae], args.repeats)
    print(f"case: {n} vertebrae, CT {ct.GetSize()} at {tuple(round(s, 2) for s in ct.GetSpacing())} mm")
    print(f"straighten on the patch grid: {t_straight * 1000:7.1f} ms")
    print(f"cut {n} patches:               {t_cut * 1000:7.1f} ms")
    try:
        shipped = load_model(WEIGHTS_NAME, device="cpu")
        models = {f"shipped {WEIGHTS_NAME} (width {shipped.config['width']})": shipped}
    except Exception as error:  # weights missing: still time the architectures
        print(f"(shipped weights not loaded: {error})")
        models = {}
    models["Husseini et al. 2020, §2.3 full width 1.0"] = GradingNet(width=1.0).eval()
    for name, model in models.items():
        t_net, probs = timed(lambda m=model: fracture_probabilities((st, truth), m), args.repeats)
        params = sum(p.numel() for p in model.parameters())
        print(f"network {name}: {params / 1e6:.2f} M parameters, {t_net * 1000:7.1f} ms for {len(probs)} "
              f"vertebrae (patches + forward), {t_net / max(1, len(probs)) * 1000:.1f} ms per vertebra")
    print(f"threads: {args.threads}; median of {args.repeats}")
    return 0 if np.isfinite(t_straight) else 1


if __name__ == "__main__":
    raise SystemExit(main())
