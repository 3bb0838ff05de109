"""Batch screening of a folder of CTs: the opportunistic-screening worklist.

Every case under a folder (volume files and DICOM series folders) is analysed into its own
output folder. A case's outputs are written to a temporary folder and renamed into place when
complete, so a killed run leaves either a finished case or nothing; the next run skips finished
cases (resume). One failing case never stops the others: its error is written to
``<case>/error.txt`` and to ``summary.csv``, the worklist with the patient-level findings.
"""

from __future__ import annotations

import csv
import io
import shutil
import sys
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .io.atomic import atomic_write
from .io.images import VOLUME_SUFFIXES

SUMMARY_COLUMNS = ("case", "status", "n_vertebrae", "n_assessed", "not_assessed", "levels", "max_grade", "min_G",
                   "worst_level", "fractured_levels", "max_fracture_probability", "error", "input")


@dataclass
class Case:
    """One input found under the batch folder."""

    name: str
    path: Path


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def find_cases(root: Path) -> List[Case]:
    """Volume files and DICOM series folders under ``root``, with unique case names."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    cases: List[Case] = []
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES):
            if path.name.lower().endswith((".seg.nrrd",)) or "_msk" in path.name or "mask" in path.name.lower():
                continue
            cases.append(Case(_case_name(root, path), path))
        elif path.is_dir():
            files = [f for f in path.iterdir() if f.is_file()]
            if any(_is_dicom(f) for f in files[:20]):
                cases.append(Case(_case_name(root, path), path))
    return cases


def _case_name(root: Path, path: Path) -> str:
    relative = path.relative_to(root).as_posix()
    for suffix in sorted(VOLUME_SUFFIXES, key=len, reverse=True):
        if relative.lower().endswith(suffix):
            relative = relative[: -len(suffix)]
            break
    return relative.replace("/", "__") or "case"


def run_case(case: Case, out_root: Path, device: str = "auto") -> Dict[str, object]:
    """Analyse one case into ``out_root/<name>``; return its summary row (never raises)."""
    from .export.outputs import write_outputs
    from .pipeline import AnalysisOptions, analyze

    target = out_root / case.name
    staging = out_root / f".{case.name}.partial"
    row: Dict[str, object] = {"case": case.name, "input": str(case.path)}
    try:
        if staging.exists():
            shutil.rmtree(staging)
        analysis = analyze(case.path, AnalysisOptions(device=device))
        write_outputs(analysis, staging)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
        row.update(summary_row(analysis.result))
        row["status"] = "ok"
    except Exception as error:  # noqa: BLE001 - one failing case must never stop the batch
        shutil.rmtree(staging, ignore_errors=True)
        target.mkdir(parents=True, exist_ok=True)
        message = f"{type(error).__name__}: {error}"
        atomic_write(target / "error.txt", message + "\n\n" + traceback.format_exc(), overwrite=True)
        row.update(status="error", error=message)
    return row


def summary_row(result) -> Dict[str, object]:
    """Patient-level columns of the worklist from a result."""
    summary = result.patient_summary()
    return {
        "n_vertebrae": summary["n_vertebrae"],
        "n_assessed": summary["n_assessed"],
        "not_assessed": " ".join(summary["not_assessed"]),
        "levels": " ".join(result.labels),
        "max_grade": summary["max_grade"],
        "min_G": "" if summary["min_G"] is None else round(summary["min_G"], 4),
        "worst_level": summary["worst_level"] or "",
        "fractured_levels": " ".join(summary["fractured_levels"]),
        "max_fracture_probability": summary.get("max_fracture_probability", ""),
    }


def _finished_row(case: Case, out_root: Path) -> Optional[Dict[str, object]]:
    """The summary row of a case finished by an earlier run, or None."""
    from .schema import SchemaError, SpineResult

    results = out_root / case.name / "results.json"
    if not results.exists():
        return None
    try:
        result = SpineResult.from_json(results.read_text(encoding="utf-8"))
    except (SchemaError, OSError):
        return None
    return {"case": case.name, "input": str(case.path), "status": "ok", **summary_row(result)}


def write_summary(rows: List[Dict[str, object]], path: Path) -> None:
    """Write ``summary.csv`` atomically: most severe cases first, failed cases last."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUMMARY_COLUMNS, extrasaction="ignore")
    writer.writeheader()

    def severity(row: Dict[str, object]):
        grade = row.get("max_grade")
        return (row.get("status") == "error", -(grade if isinstance(grade, int) else -1), row["case"])

    for row in sorted(rows, key=severity):
        writer.writerow({column: row.get(column, "") for column in SUMMARY_COLUMNS})
    atomic_write(path, buffer.getvalue(), overwrite=True)


def run_batch(root: Path, out_root: Path, *, workers: int = 1, device: str = "auto", retry_failed: bool = True,
              report: Optional[Callable[[int, int, Dict[str, object]], None]] = None) -> List[Dict[str, object]]:
    """Analyse every case under ``root`` into ``out_root``, resuming finished cases.

    Args:
        root: the folder of inputs.
        out_root: the output folder (one sub-folder per case, plus ``summary.csv``).
        workers: parallel processes (1 = in this process).
        device: model device.
        retry_failed: analyse cases that failed in an earlier run again.
        report: called after each case with (done, total, row).

    Returns:
        The summary rows (also written to ``out_root/summary.csv``).
    """
    out_root = Path(out_root)
    out_root.mkdir(parents=True, exist_ok=True)
    cases = find_cases(root)
    rows: List[Dict[str, object]] = []
    todo: List[Case] = []
    for case in cases:
        finished = _finished_row(case, out_root)
        failed_before = (out_root / case.name / "error.txt").exists()
        if finished is not None:
            rows.append({**finished, "status": "ok (resumed)"})
        elif failed_before and not retry_failed:
            rows.append({"case": case.name, "input": str(case.path), "status": "error",
                         "error": (out_root / case.name / "error.txt").read_text().splitlines()[0]})
        else:
            todo.append(case)
    done = len(rows)
    if report:
        for row in rows:
            report(done, len(cases), row)
    if workers <= 1:
        for case in todo:
            row = run_case(case, out_root, device)
            rows.append(row)
            done += 1
            write_summary(rows, out_root / "summary.csv")
            if report:
                report(done, len(cases), row)
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(run_case, case, out_root, device) for case in todo]
            for future in as_completed(futures):
                row = future.result()
                rows.append(row)
                done += 1
                write_summary(rows, out_root / "summary.csv")
                if report:
                    report(done, len(cases), row)
    write_summary(rows, out_root / "summary.csv")
    return rows


def progress_bar(done: int, total: int, row: Dict[str, object]) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = int(width * done / max(total, 1))
    status = row.get("status", "")
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {row['case']}: {status}".ljust(100),
          end="\n" if done == total or status == "error" else "", file=sys.stderr, flush=True)
