"""Speed and memory of the synthetic spine generator, per preset.

Usage::

    python benchmarks/bench_synth.py [--n 3] [--presets spine chest ...] [--spacing 1.0] [--threads 1]

Prints, per preset, the median wall-clock and CPU seconds per case (generate_case only, no
file writing), the median volume size and the peak traced memory (numpy allocations included,
via tracemalloc) of one case. Wall time depends on the load of the machine; CPU time less so.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import tracemalloc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=3, help="cases per preset")
    parser.add_argument("--presets", nargs="+", default=["spine", "chest", "abdomen", "scoliosis", "radiograph"])
    parser.add_argument("--spacing", type=float, default=None, help="isotropic spacing override (mm)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))

    from VertebralFractureLib.synth import generate_case

    generate_case(0, "radiograph", spacing=(3.0, 3.0, 3.0))  # warm-up: imports
    print(f"{'preset':<11} {'wall s':>7} {'cpu s':>7} {'voxels M':>9} {'peak MB':>8}  spacing")
    for preset in args.presets:
        walls, cpus, sizes, peaks = [], [], [], []
        overrides = {"spacing": (args.spacing,) * 3} if args.spacing else {}
        for seed in range(args.n):
            tracemalloc.start()
            wall, cpu = time.perf_counter(), time.process_time()
            case = generate_case(1000 + seed, preset, **overrides)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
            size = case.ct.GetSize()
            sizes.append(size[0] * size[1] * size[2] / 1e6)
        spacing = "x".join(f"{s:g}" for s in case.params.spacing)
        print(
            f"{preset:<11} {statistics.median(walls):7.2f} {statistics.median(cpus):7.2f} "
            f"{statistics.median(sizes):9.1f} {max(peaks):8.0f}  {spacing}",
            flush=True,
        )


if __name__ == "__main__":
    main()
