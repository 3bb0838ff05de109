"""Benchmark: CPU time of the Nicolaes et al. 2019 voxel fracture map on a 512 x 512 x 300 CT.

A generated case (1 mm) is resampled onto a 512 x 512 x 300 grid (0.7 x 0.7 mm in-plane, slices
spanning the case) so the input has clinical size; the map is computed on the band around the
true centre-line with the shipped weights (or ``--weights``). Prints the median wall time of
``--repeats`` runs (model loaded once, excluded) and the peak resident memory.

    python benchmarks/bench_voxelmap.py [--threads 2] [--repeats 3] [--weights PATH]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np


def clinical_ct(seed: int = 900_001):
    import SimpleITK as sitk

    from VertebralFractureLib.synth import generate_case

    case = generate_case(seed, "spine", radiograph=False)
    ct = case.ct
    size = np.asarray(ct.GetSize()) * np.asarray(ct.GetSpacing())
    spacing = (0.7, 0.7, float(size[2]) / 300.0)
    centre = np.asarray(ct.GetOrigin()) + 0.5 * (size - np.asarray(ct.GetSpacing()))
    origin = centre - 0.5 * (np.array([512, 512, 300]) - 1) * np.asarray(spacing)
    big = sitk.Resample(ct, [512, 512, 300], sitk.Transform(), sitk.sitkLinear, origin.tolist(), spacing,
                        ct.GetDirection(), -1024.0, sitk.sitkInt16)
    return big, case.centreline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()

    import torch

    from VertebralFractureLib.voxelmap.inference import fracture_map, load_model

    torch.set_num_threads(args.threads)
    ct, centreline = clinical_ct()
    model, meta = load_model(args.weights, "cpu")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        prob = fracture_map(ct, centreline, model)
        times.append(time.perf_counter() - started)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"CT {ct.GetSize()} spacing {tuple(round(s, 2) for s in ct.GetSpacing())}; band grid {prob.GetSize()} at "
          f"{prob.GetSpacing()[0]:g} mm, band {meta.get('band_mm', 25)} mm; threads {args.threads}")
    print(f"fracture_map median {statistics.median(times):.2f} s over {args.repeats} runs "
          f"(all: {', '.join(f'{t:.2f}' for t in times)}); peak RSS {peak:.0f} MiB "
          f"(CT + model loaded: {rss_before:.0f} MiB)")


if __name__ == "__main__":
    main()
