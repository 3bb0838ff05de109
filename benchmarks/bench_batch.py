"""Throughput of ``batch``: cases per minute in this process, on 1 and on 2 Dask workers; overhead per case.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_batch.py [--cases 4] [--stages classifier]

Every case is a copy of the shipped sample CT analysed by the real models on the CPU, one thread
each (``--stages`` picks the optional later stages; the default leaves out the voxel map, which
alone takes about 30 s of CPU a case). Three batches run into fresh output folders: in this process
(the reference: a case's analysis time plus its writes), on a local cluster of 1 worker, and of 2
workers, each cluster started and its workers' models loaded before the clock starts (timed apart).
The scheduling overhead per case is what a case costs besides the pipeline's own stage timings
(``results.json`` ``timings_s``) on 1 worker, less the same in process: what Dask, the staging
folder and the driver's rename add to a case, apart from the machine's load slowing the models.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import VertebralFractureLib.pipeline as pipeline  # noqa: E402
from VertebralFractureLib.batch_runner import run_batch  # noqa: E402
from VertebralFractureLib.data import sample_ct_path  # noqa: E402


def _timed_batch(inbox: Path, out: Path, workers: int) -> Tuple[float, float, Dict[str, str]]:
    """Run one batch; return (wall seconds once the workers were up, seconds to start them, case -> status).

    ``workers`` 0 runs in this process; otherwise a local cluster is started and its workers load the
    models (timed apart: a cluster starts once per batch, not once per case).
    """
    from VertebralFractureLib.batch_cluster import ClusterSpec, connect, worker_models

    if workers == 0:
        started = time.perf_counter()
        rows = run_batch(inbox, out, device="cpu")
        return time.perf_counter() - started, 0.0, {r["case"]: str(r["status"]) for r in rows}
    started = time.perf_counter()
    with connect(ClusterSpec(workers=workers)) as (client, cluster):
        client.run(worker_models, "cpu")
        up = time.perf_counter() - started
        started = time.perf_counter()
        rows = run_batch(inbox, out, device="cpu", scheduler=cluster.scheduler_address)
        wall = time.perf_counter() - started
    return wall, up, {r["case"]: str(r["status"]) for r in rows}


def _analysis_seconds(out: Path) -> float:
    """The sum over the cases of the pipeline's own stage timings (``results.json`` ``timings_s``)."""
    import json

    return sum(sum(json.loads((case / "results.json").read_text())["timings_s"].values())
               for case in out.iterdir() if (case / "results.json").exists())


def main(argv=None) -> int:
    """Print the figures; exit code 1 when a case did not finish "ok"."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=4)
    parser.add_argument("--stages", default="classifier", help="comma-separated optional stages ('' for none)")
    args = parser.parse_args(argv)
    options = pipeline.AnalysisOptions(device="cpu", threads=1,
                                       extra_stages=tuple(s for s in args.stages.split(",") if s))
    real = pipeline.analyze
    pipeline.analyze = lambda source, opts=None, progress=None: real(source, options, progress)  # workers fork
    with tempfile.TemporaryDirectory(prefix="vf-bench-batch-") as folder:
        inbox = Path(folder) / "in"
        inbox.mkdir()
        for index in range(args.cases):
            shutil.copy(sample_ct_path(), inbox / f"case{index:03d}.nii.gz")
        real(inbox / "case000.nii.gz", options)  # load the models in this process (the workers load their own)
        walls, analysis = {}, {}
        for label, workers in (("in-process", 0), ("1 worker", 1), ("2 workers", 2)):
            wall, up, statuses = _timed_batch(inbox, Path(folder) / f"out-{workers}", workers)
            if set(statuses.values()) != {"ok"}:
                print(f"{label}: not every case finished: {statuses}", file=sys.stderr)
                return 1
            walls[label] = wall
            analysis[label] = _analysis_seconds(Path(folder) / f"out-{workers}") / args.cases
            print(f"{label:>10}: {args.cases} cases in {wall:6.1f} s = {args.cases / wall * 60:5.2f} cases/min; "
                  f"the pipeline's own time {analysis[label]:.2f} s a case"
                  + (f" (cluster started and models loaded in {up:.1f} s before)" if workers else ""))
        # what a case costs besides the pipeline's stages (reading, writing, and on a cluster: scheduling)
        around = {label: walls[label] / args.cases - analysis[label] for label in ("in-process", "1 worker")}
        overhead = around["1 worker"] - around["in-process"]
        share = overhead / analysis["1 worker"] * 100
        print(f"per case besides the pipeline: {around['in-process']:.2f} s in process, {around['1 worker']:.2f} s "
              f"on 1 worker; scheduling overhead {overhead:+.2f} s a case = {share:+.1f} % of the case's analysis "
              f"time ({analysis['1 worker']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
