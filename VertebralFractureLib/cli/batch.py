"""``vertebral-fracture batch DIR --out DIR [--workers N]``: screen a folder of CTs."""

from __future__ import annotations

import argparse


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``batch`` sub-command."""
    parser = subparsers.add_parser(
        "batch",
        help="analyse every CT under a folder (resumable) and write summary.csv",
        description="Analyse every volume file and DICOM series folder under DIR into OUT/<case>/, resuming "
        "cases finished by an earlier run; failures are recorded, never fatal. OUT/summary.csv is the worklist.",
    )
    parser.add_argument("folder", help="folder of CTs (NIfTI/NRRD/MHA files, DICOM series folders)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--workers", type=int, default=1, help="parallel processes (default 1)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--no-retry", action="store_true", help="do not retry cases that failed before")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run the batch; exit code 0 even when some cases failed (they are in summary.csv)."""
    from pathlib import Path

    from ..batch_runner import progress_bar, run_batch

    rows = run_batch(Path(args.folder), Path(args.out), workers=max(1, args.workers), device=args.device,
                     retry_failed=not args.no_retry, report=progress_bar)
    failed = [r for r in rows if r.get("status") == "error"]
    flagged = [r for r in rows if isinstance(r.get("max_grade"), int) and r["max_grade"] >= 2]
    print(f"{len(rows)} cases: {len(rows) - len(failed)} analysed, {len(failed)} failed, "
          f"{len(flagged)} with a grade 2-3 fracture; worklist: {Path(args.out) / 'summary.csv'}")
    return 0
