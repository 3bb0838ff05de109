"""Speed of centre-line inference + straightening on a 512 x 512 x 300 CT at 0.8 mm (issue 4: <= 2 s).

Also timed on its own: the spinal-canal track (:func:`VertebralFractureLib.spine.anatomy.track_spinal_canal`,
the anatomy prior that checks the network; target 1.5 s on one free core).

The test CT is the real TotalSegmentator sample (3 mm) resampled to 0.8 mm, 512 x 512 x 300, int16.
Prints the median of ``--repeats`` runs per stage and the peak resident memory.

    python benchmarks/bench_centreline.py [--repeats 5] [--threads 1] [--weights FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
CT = ROOT / "Testing" / "Data" / "real" / "totalsegmentator" / "example_ct.nii.gz"


def big_ct():
    image = sitk.ReadImage(str(CT))
    spacing = (0.8, 0.8, 0.8)
    new_size = [512, 512, 300]
    centre = np.asarray(image.TransformContinuousIndexToPhysicalPoint((np.asarray(image.GetSize()) - 1) / 2.0))
    direction = np.asarray(image.GetDirection()).reshape(3, 3)
    origin = centre - direction @ ((np.asarray(new_size) - 1) / 2.0 * np.asarray(spacing))
    return sitk.Resample(image, new_size, sitk.Transform(), sitk.sitkLinear, origin.tolist(), spacing,
                         image.GetDirection(), -1024.0, sitk.sitkInt16)  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", default=None)
    args = parser.parse_args()
    import torch

    from VertebralFractureLib.spine.anatomy import track_spinal_canal
    from VertebralFractureLib.spine.centreline import find_centreline, load_model
    from VertebralFractureLib.spine.straighten import straighten

    torch.set_num_threads(args.threads)
    image = big_ct()
    print(f"CT {image.GetSize()} at {image.GetSpacing()} mm, {sitk.GetArrayViewFromImage(image).nbytes / 1e6:.0f} MB")
    model = load_model(args.weights)
    stages = {"resample_3mm": [], "network": [], "curve": [], "straighten": [], "total": [], "canal track": []}
    cpu = {"find_centreline": [], "straighten": [], "total": []}
    for run in range(args.repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        centreline = find_centreline(image, model)
        t1, c1 = time.perf_counter(), time.process_time()
        result = straighten(image, centreline, spacing=1.0, half_width_mm=60.0)
        t2, c2 = time.perf_counter(), time.process_time()
        t3 = time.perf_counter()
        track_spinal_canal(image)  # the anatomy prior alone (target 1.5 s on one free core)
        t4 = time.perf_counter()
        if run == 0:  # warm-up
            continue
        stages["canal track"].append(t4 - t3)
        stages["resample_3mm"].append(centreline.timings_s["resample"])
        stages["network"].append(centreline.timings_s["network"])
        stages["curve"].append(centreline.timings_s["curve"])
        stages["straighten"].append(t2 - t1)
        stages["total"].append(t2 - t0)
        cpu["find_centreline"].append(c1 - c0)
        cpu["straighten"].append(c2 - c1)
        cpu["total"].append(c2 - c0)
    print(f"straightened volume {result.volume.shape} (rows, cols, lats) at 1 mm; curve {result.curve.length:.0f} mm")
    print(f"load average (1 min) {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs: wall times include waiting")
    for name, values in stages.items():
        low, high = min(values), max(values)
        print(f"wall {name:<16} median {statistics.median(values):6.3f} s  (min {low:.3f}, max {high:.3f})")
    for name, values in cpu.items():
        print(f"cpu  {name:<16} median {statistics.median(values):6.3f} s  (process CPU time, all threads)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory {peak:.0f} MB; torch threads {torch.get_num_threads()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
