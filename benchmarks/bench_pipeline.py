"""Benchmark of the end-to-end analysis: median wall time and peak memory per stage.

Cases: the bundled sample CT (122 x 101 x 112 at 3 mm) and a generated 512 x 512 x 300 CT at
0.8 mm (issue 6 targets on 2 CPU cores: keypoints + Genant <= 8 s, every stage <= 20 s, peak
memory <= 3 GB); ``thin``: the same CT resampled to 800 slices (512 x 512 x 800, the voxel count of a
thin-slice hospital CT: 0.625 mm over 500 mm). Each repetition runs in a fresh process so peak memory is
that run's own. ``outputs`` is the time to write every output file of ``vertebral-fracture analyze``
(``export.outputs.write_outputs``: results, tables, markups, both ``.seg.nrrd``, the fracture map, overview,
report; each file read back before it is kept), after the analysis.

Usage::

    python benchmarks/bench_pipeline.py [--repeat 3] [--threads 2] [--cases sample,large,thin]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LARGE_SHAPE = (512, 512, 300)


def make_large_ct(path: Path) -> None:
    """A generated thoraco-lumbar CT padded/cropped to exactly 512 x 512 x 300 at 0.8 mm."""
    import SimpleITK as sitk

    from VertebralFractureLib.synth import generate_case

    case = generate_case(7, "spine", spacing=(0.8, 0.8, 0.8), fov_xy_mm=(409.6, 409.6), top_level="T11",
                         bottom_level="L4", max_voxels=90_000_000, radiograph=False)
    ct = case.ct
    size = ct.GetSize()
    lower = [max(0, (t - s) // 2) for s, t in zip(size, LARGE_SHAPE)]
    upper = [max(0, t - s - lo) for s, t, lo in zip(size, LARGE_SHAPE, lower)]
    ct = sitk.ConstantPad(ct, lower, upper, -1000)
    size = ct.GetSize()
    crop_low = [(s - t) // 2 for s, t in zip(size, LARGE_SHAPE)]
    crop_high = [s - t - lo for s, t, lo in zip(size, LARGE_SHAPE, crop_low)]
    ct = sitk.Crop(ct, crop_low, crop_high)
    assert ct.GetSize() == LARGE_SHAPE, ct.GetSize()
    sitk.WriteImage(ct, str(path), True)


def make_thin_ct(large: Path, path: Path, slices: int = 800) -> None:
    """The large CT resampled (linear) to ``slices`` slices over the same extent."""
    import SimpleITK as sitk

    ct = sitk.ReadImage(str(large))
    size, spacing = ct.GetSize(), ct.GetSpacing()
    thickness = spacing[2] * size[2] / slices
    thin = sitk.Resample(ct, [size[0], size[1], slices], sitk.Transform(), sitk.sitkLinear, ct.GetOrigin(),
                         [spacing[0], spacing[1], thickness], ct.GetDirection(), -1000, ct.GetPixelID())
    sitk.WriteImage(thin, str(path), True)


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_once(path: str, threads: int) -> dict:
    """One analysis in this process: wall time per stage (result timings) and peak RSS per stage."""
    import torch

    torch.set_num_threads(threads)
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.progress import Progress

    peaks: dict = {}
    state = {"stage": "start", "running": True}

    def sample() -> None:
        while state["running"]:
            rss = _rss_mb()
            peaks[state["stage"]] = max(peaks.get(state["stage"], 0.0), rss)
            time.sleep(0.01)

    def progress(fraction: float, message: str) -> None:
        state["stage"] = message.split(":")[0]

    from VertebralFractureLib.export.outputs import write_outputs

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    analysis = analyze(path, progress=Progress(progress))
    total = time.perf_counter() - started
    state["stage"] = "writing the outputs"
    with tempfile.TemporaryDirectory() as folder:
        written = time.perf_counter()
        write_outputs(analysis, folder)
        outputs = time.perf_counter() - written
    state["running"] = False
    sampler.join()
    return {"timings": {**analysis.result.timings_s, "outputs": outputs}, "total": total, "peak_mb": peaks,
            "n_vertebrae": len(analysis.result.vertebrae)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cases", default="sample,large")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_once(args.child, args.threads)))
        return
    from VertebralFractureLib.data import sample_ct_path

    with tempfile.TemporaryDirectory() as folder:
        cases = {}
        if "sample" in args.cases:
            cases["sample CT (122x101x112, 3 mm)"] = str(sample_ct_path())
        if "large" in args.cases or "thin" in args.cases:
            large = Path(folder) / "large.nii.gz"
            make_large_ct(large)
            if "large" in args.cases:
                cases["generated 512x512x300, 0.8 mm"] = str(large)
            if "thin" in args.cases:
                thin = Path(folder) / "thin.nii.gz"
                make_thin_ct(large, thin)
                cases["generated 512x512x800 (the large CT in 0.3 mm slices)"] = str(thin)
        for name, path in cases.items():
            runs = []
            for _ in range(args.repeat):
                output = subprocess.run([sys.executable, __file__, "--child", path, "--threads", str(args.threads)],
                                        check=True, capture_output=True, text=True).stdout
                runs.append(json.loads(output.strip().splitlines()[-1]))
            print(f"\n{name}: {runs[0]['n_vertebrae']} vertebrae, {args.repeat} runs, {args.threads} threads")
            print(f"{'stage':<14}{'median s':>10}{'peak MB':>10}  (peak for the whole run only)")
            for stage in runs[0]["timings"]:
                median = statistics.median(r["timings"][stage] for r in runs)
                print(f"{stage:<14}{median:>10.2f}")
            keypoints = [sum(r["timings"].get(s, 0.0) for s in ("centreline", "straighten", "keypoints")) for r in runs]
            print(f"{'keypoints+Genant':<14}{statistics.median(keypoints):>8.2f}")
            print(f"{'total':<14}{statistics.median(r['total'] for r in runs):>10.2f}"
                  f"{max(max(r['peak_mb'].values()) for r in runs):>10.0f}")
            print("peak resident memory by step (MB, max over runs):")
            for step in runs[0]["peak_mb"]:
                print(f"  {step:<40}{max(r['peak_mb'].get(step, 0.0) for r in runs):>8.0f}")


if __name__ == "__main__":
    main()
