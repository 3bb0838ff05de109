"""``vertebral-fracture batch DIR --out DIR [--workers N | --scheduler ADDRESS]``: screen a folder of CTs."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``batch`` sub-command."""
    parser = subparsers.add_parser(
        "batch",
        help="analyse every CT under a folder (resumable) and write summary.csv",
        description="Analyse every volume file and DICOM series folder under DIR into OUT/<case>/, resuming "
        "cases finished by an earlier run on the same input; failures are recorded, never fatal. OUT/summary.csv "
        "is the worklist. With --workers N (N > 1) the cases run on a local Dask cluster of N processes; with "
        "--scheduler they run on an existing Dask cluster, whose workers must see DIR and OUT under the same "
        "paths. Exit code 0 when every case was analysed, 1 when a case failed, 2 when the batch was refused "
        "(two inputs for one case folder, OUT in use or not writable), 130 on Ctrl-C.",
    )
    parser.add_argument("folder", help="folder of CTs (NIfTI/NRRD/MHA files, DICOM series folders)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1,
                        help="worker processes (default 1: in this process; more: a local Dask cluster)")
    parser.add_argument("--threads-per-worker", type=int, default=1,
                        help="cases each worker process analyses at once (default 1)")
    parser.add_argument("--scheduler", metavar="ADDRESS",
                        help="a running Dask scheduler (tcp://host:8786) to run the cases on instead")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--no-retry", action="store_true", help="do not retry cases that failed before")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the batch; exit code 1 when some cases failed (they are in summary.csv), 130 on Ctrl-C."""
    from pathlib import Path

    from ..batch_runner import LiveProgress, find_cases, run_batch
    from ..export.outputs import check_output_folder
    from . import CommandError

    folder, out = Path(args.folder), Path(args.out)
    if not folder.is_dir():
        raise CommandError(f"{folder}: not a folder (batch analyses every CT under a folder)")
    if args.workers < 1:
        raise CommandError(f"--workers {args.workers}: at least 1 worker is needed")
    if args.threads_per_worker < 1:
        raise CommandError(f"--threads-per-worker {args.threads_per_worker}: at least 1 thread is needed")
    if args.scheduler is not None and not args.scheduler.strip():
        raise CommandError("--scheduler: give the scheduler's address, e.g. tcp://host:8786")
    cases = find_cases(folder, exclude=out)  # refuses colliding case ids before anything runs
    if not cases:
        raise CommandError(f"{folder}: no NIfTI/NRRD/MHA file or DICOM series folder found")
    check_output_folder(out, (), overwrite=True)
    try:
        rows = run_batch(folder, out, workers=args.workers, device=args.device, retry_failed=not args.no_retry,
                         report=LiveProgress(), threads_per_worker=args.threads_per_worker,
                         scheduler=args.scheduler, announce=lambda line: print(line, file=sys.stderr, flush=True))
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the progress bar's line
        raise KeyboardInterrupt(f"the summary of the cases done is in {out / 'summary.csv'}") from None
    failed = [r for r in rows if r.get("status") == "error"]
    flagged = [r for r in rows if isinstance(r.get("max_grade"), int) and r["max_grade"] >= 2]
    print(f"{len(rows)} cases: {len(rows) - len(failed)} analysed, {len(failed)} failed, "
          f"{len(flagged)} with a grade 2-3 fracture; worklist: {out / 'summary.csv'}")
    for row in failed:
        print(f"vertebral-fracture batch: error: {row['case']}: {row.get('error', '')}", file=sys.stderr)
    for row in rows:
        if row.get("note"):
            print(f"note: {row['case']}: {row['note']}", file=sys.stderr)
    return 1 if failed else 0
