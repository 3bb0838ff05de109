"""Batch screening of a folder of CTs: the opportunistic-screening worklist.

Every case under a folder (volume files and DICOM series folders) is analysed into its own
output folder, named after the input's path relative to the folder, extension included
(``sub/scan.nii.gz`` -> ``sub__scan.nii.gz``); two inputs that would share a folder are refused
before anything runs. A case's outputs and the fingerprint of its input (``input.json``: path,
size, modification time, SHA-256 of the first MB) are written to a hidden staging folder and
swapped into place when complete, so a killed run leaves either the previous complete case or
the new one. The next run resumes a finished case only when its stored fingerprint matches the
input (a changed input, or an unreadable stored result, is analysed again and noted). One
failing case never stops the others: its error goes to ``<case>/error.txt`` and ``summary.csv``,
the worklist with the patient-level findings. A lock on the output folder keeps a second batch
out; Ctrl-C stops the workers and writes the summary of what was done.

One worker runs the cases in this process; more run them on a Dask cluster
(:mod:`.batch_cluster`): a local one, or an existing scheduler. There a worker writes each case
to its own staging folder and this process, which holds the lock, swaps it into place.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

from .io.atomic import FolderLock, atomic_write
from .io.images import PICTURE_SUFFIXES, VOLUME_SUFFIXES

SUMMARY_COLUMNS = ("case", "status", "n_vertebrae", "n_assessed", "not_assessed", "levels", "max_grade", "min_G",
                   "worst_level", "fractured_levels", "max_fracture_probability", "error", "note", "input")
#: The input fingerprint stored in every case folder.
FINGERPRINT_NAME = "input.json"
#: How much of an input is hashed for its fingerprint.
FINGERPRINT_BYTES = 1 << 20
#: Status of a case Ctrl-C stopped before it finished.
INTERRUPTED = "not run (interrupted)"


#: Files never parsed as a DICOM data set without its preamble (volumes, pictures, documents, archives).
NOT_DICOM_SUFFIXES = (*VOLUME_SUFFIXES, *PICTURE_SUFFIXES, ".gz", ".zip", ".txt", ".md", ".csv", ".json", ".xml",
                      ".html", ".pdf", ".log", ".py")


class CaseCollisionError(ValueError):
    """Two inputs would be written to the same case folder."""


@dataclass
class Case:
    """One input found under the batch folder: ``name`` is its case id (the output sub-folder)."""

    name: str
    path: Path
    relative: str = ""


def _is_dicom(path: Path) -> bool:
    """Whether ``path`` is a DICOM file.

    The ``DICM`` mark after the 128-byte preamble, or (older exports write the bare data set, which GDCM reads as
    well) a data set that parses with a Series Instance UID made of digits and dots.
    """
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            if handle.read(4) == b"DICM":
                return True
    except OSError:
        return False
    if path.name.lower().endswith(NOT_DICOM_SUFFIXES):
        return False
    import pydicom

    try:
        uid = str(pydicom.dcmread(path, force=True, stop_before_pixels=True, defer_size=1024,
                                  specific_tags=["SeriesInstanceUID"]).get("SeriesInstanceUID", ""))
    except Exception:  # noqa: BLE001 - anything that does not parse is not DICOM
        return False
    return bool(uid) and len(uid) <= 64 and all(part.isdigit() for part in uid.split("."))


def _multiframe_volumes(files: List[Path]) -> List[Path]:
    """The DICOM ``files``, sorted, when each holds a whole volume (an enhanced, multi-frame CT); else [].

    A folder of single-frame slices is one series, read as one case. A PACS export of recent scanners can put one
    multi-frame file per exam side by side in one folder; read as one folder they are several patients' series and
    the folder is refused.
    """
    from .io.images import read_header
    from .io.multiframe import frame_count

    volumes = []
    for file in sorted(files):
        if not _is_dicom(file):
            continue
        if frame_count(read_header(file)) < 2:
            return []  # a slice: the folder is a series (stops at the first one, whatever the folder's size)
        volumes.append(file)
    return volumes


def case_id(relative: str) -> str:
    """The case id (output sub-folder) of an input's path relative to the batch folder, extension kept."""
    return relative.strip("/").replace("/", "__") or "case"


def _study_uid(folder: Path) -> Optional[str]:
    """The Study Instance UID of the first DICOM file directly in ``folder`` (None when it has none or no UID)."""
    import pydicom

    for file in sorted(f for f in folder.iterdir() if f.is_file()):
        if _is_dicom(file):
            try:
                return str(pydicom.dcmread(file, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
                           .get("StudyInstanceUID", "")) or None
            except Exception:  # noqa: BLE001 - an unreadable header is the case's own error later
                return None
    return None


def _studies_as_cases(root: Path, cases: List[Case]) -> List[Case]:
    """One case per study exported as ``STUDY/SERIES`` folders: the study folder, not each series.

    A PACS export keeps each series of an exam in its own folder (localizer, thin and thick reconstructions, reformats,
    a dose report). Series folders side by side under one folder (not the batch folder itself) that all hold the same
    study, and no other DICOM, become one case, that folder: the analysis reads the folder and chooses its series
    (:mod:`.io.series_choice`), so the worklist has one row per exam instead of a row per series, with the localizer's
    and the screenshots' errors. Sibling folders of several studies stay one case each, as does any other folder.
    """
    root = Path(root)
    dicom = [case for case in cases if case.path.is_dir()]
    by_parent: Dict[Path, List[Case]] = {}
    for case in dicom:
        if case.path != root and case.path.parent != root:
            by_parent.setdefault(case.path.parent, []).append(case)
    merged: Dict[Path, Case] = {}
    for parent, series in by_parent.items():
        if len(series) < 2 or parent in {case.path for case in dicom}:
            continue
        studies = {_study_uid(case.path) for case in series}
        if len(studies) == 1 and None not in studies:
            relative = parent.relative_to(root).as_posix()
            merged[parent] = Case(case_id(relative), parent, relative)
    kept = [case for case in cases if not (case.path.is_dir() and case.path.parent in merged)]
    return sorted(kept + list(merged.values()), key=lambda case: Path(case.relative).parts)


def find_cases(root: Path, exclude: Optional[Path] = None) -> List[Case]:
    """Volume files, DICOM series folders and study folders (:func:`_studies_as_cases`) under ``root``, with case ids.

    Args:
        root: the batch folder.
        exclude: a folder not to search (the output folder when it lies inside ``root``).

    Raises:
        FileNotFoundError: if ``root`` is not a folder.
        CaseCollisionError: if two inputs map to one case id (ids are compared ignoring case, as on
            macOS and Windows file systems).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    skip = Path(os.path.abspath(exclude)) if exclude is not None else None
    cases: List[Case] = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if skip is not None and (Path(os.path.abspath(path)) == skip or skip in Path(os.path.abspath(path)).parents):
            continue
        if path.is_file() and path.name.lower().endswith(VOLUME_SUFFIXES):
            if path.name.lower().endswith((".seg.nrrd",)) or "_msk" in path.name or "mask" in path.name.lower():
                continue
            cases.append(Case(case_id(relative.as_posix()), path, relative.as_posix()))
        elif path.is_dir() and not path.is_symlink():
            files = [f for f in path.iterdir() if f.is_file()]
            if any(_is_dicom(f) for f in files[:20]):
                volumes = _multiframe_volumes(files)
                if len(volumes) > 1:  # several enhanced CTs side by side: each file is an exam of its own
                    cases.extend(Case(case_id(f.relative_to(root).as_posix()), f, f.relative_to(root).as_posix())
                                 for f in volumes)
                else:
                    cases.append(Case(case_id(relative.as_posix()), path, relative.as_posix()))
    cases = _studies_as_cases(root, cases)
    if not cases:
        files = [f for f in root.iterdir() if f.is_file()]
        if any(_is_dicom(f) for f in files[:20]):
            volumes = _multiframe_volumes(files)
            cases.extend([Case(case_id(f.name), f, f.name) for f in volumes] if len(volumes) > 1
                         else [Case("case", root, ".")])
    seen: Dict[str, Case] = {}
    for case in cases:
        other = seen.setdefault(case.name.lower(), case)
        if other is not case:
            raise CaseCollisionError(
                f"{root}: {other.relative} and {case.relative} would both be written to the case folder "
                f"{case.name}; rename one of them"
            )
    return cases


def fingerprint(path: Path, relative: str = "") -> Dict[str, object]:
    """What identifies an input: relative path, size, modification time, SHA-256 of its first MB.

    A DICOM folder: the sum of its files' sizes, the latest time, and a hash over the file list and
    the first MB of its first file.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        stats = [p.stat() for p in files]
        size, mtime = sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)
        for file, info in zip(files, stats):
            digest.update(f"{file.relative_to(path).as_posix()}:{info.st_size}\n".encode())
        first = files[0] if files else None
    else:
        info = path.stat()
        size, mtime, first = info.st_size, info.st_mtime_ns, path
    if first is not None:
        with open(first, "rb") as handle:
            digest.update(handle.read(FINGERPRINT_BYTES))
    return {"path": relative or path.name, "size": size, "mtime_ns": mtime, "sha256_first_mb": digest.hexdigest()}


def _swap_into_place(staging: Path, target: Path) -> None:
    """Replace ``target`` by the complete ``staging`` folder (a kill in between is undone by :func:`recover_cases`)."""
    old = target.parent / f".{target.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def recover_cases(out_root: Path) -> None:
    """Undo what a killed run left: put back a case whose swap was cut, remove staging folders."""
    for path in sorted(Path(out_root).glob(".*")):
        if path.name.endswith(".old") and path.is_dir():
            target = path.parent / path.name[1 : -len(".old")]
            if target.exists():
                shutil.rmtree(path)
            else:
                path.rename(target)
        elif path.name.endswith(".partial") and path.is_dir():
            shutil.rmtree(path)


def run_case(case: Case, out_root: Path, device: str = "auto", staging: Optional[Path] = None,
             swap: bool = True) -> Dict[str, object]:
    """Analyse one case into ``out_root/<name>``; return its summary row (never raises, but on Ctrl-C).

    Args:
        case: the input.
        out_root: the output folder.
        device: model device.
        staging: the hidden folder the case is written to first (default ``out_root/.<name>.partial``).
        swap: rename the complete staging folder onto ``out_root/<name>``; when False (a cluster worker)
            the staging folder is left for the driver to swap (:func:`commit_staged`) and the row names it
            under ``STAGED_KEY``.
    """
    from .export.outputs import write_outputs
    from .pipeline import AnalysisOptions, analyze

    target = out_root / case.name
    staging = Path(staging) if staging is not None else out_root / f".{case.name}.partial"
    row: Dict[str, object] = {"case": case.name, "input": str(case.path)}
    if staging.exists():
        shutil.rmtree(staging)
    try:
        stamp = fingerprint(case.path, case.relative)
        analysis = analyze(case.path, AnalysisOptions(device=device))
        write_outputs(analysis, staging)
        atomic_write(staging / FINGERPRINT_NAME, json.dumps(stamp, indent=1) + "\n")
        _finish_staging(staging, target, swap, row)
        row.update(summary_row(analysis.result))
        row["status"] = "ok"
        if analysis.result.input.get("series_choice"):  # a study folder: which of its series the worklist row is
            row["note"] = analysis.result.input["series_choice"]
    except Exception as error:  # noqa: BLE001 - one failing case must never stop the batch
        shutil.rmtree(staging, ignore_errors=True)
        row.pop(STAGED_KEY, None)
        message = f"{type(error).__name__}: {error}"
        row.update(status="error", error=message)
        record_error(case, staging, target, message + "\n\n" + traceback.format_exc(), row, swap)
    return row


#: The key of a row whose case folder is complete in a staging folder, not yet swapped into place.
STAGED_KEY = "_staged"


def _finish_staging(staging: Path, target: Path, swap: bool, row: Dict[str, object]) -> None:
    if swap:
        _swap_into_place(staging, target)
    else:
        row[STAGED_KEY] = str(staging)


def record_error(case: Case, staging: Path, target: Path, text: str, row: Dict[str, object],
                 swap: bool = True) -> None:
    """Write a failed case's folder (``error.txt`` and the input fingerprint) to ``staging``, then swap it in."""
    try:
        staging.mkdir(parents=True)
        atomic_write(staging / "error.txt", text)
        if case.path.exists():
            atomic_write(staging / FINGERPRINT_NAME, json.dumps(fingerprint(case.path, case.relative)) + "\n")
        _finish_staging(staging, target, swap, row)
    except OSError as write_error:
        shutil.rmtree(staging, ignore_errors=True)
        row["note"] = f"error.txt could not be written: {write_error}"


def commit_staged(row: Dict[str, object], out_root: Path) -> Dict[str, object]:
    """Swap the staging folder a worker left for ``row`` into place; return the row without its staging key."""
    staged = row.pop(STAGED_KEY, None)
    if staged:
        _swap_into_place(Path(staged), Path(out_root) / str(row["case"]))
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


def _stored_fingerprint(folder: Path) -> Optional[Dict[str, object]]:
    try:
        stored = json.loads((folder / FINGERPRINT_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return stored if isinstance(stored, dict) else None


def _finished_row(case: Case, out_root: Path, stamp: Dict[str, object]) -> Dict[str, object]:
    """What an earlier run left for ``case``: its summary row (resumed), or why it is analysed again.

    Returns:
        A row with ``status`` "ok (resumed)"; or "error" (failed before, same input); or
        ``{"note": ...}`` only, when the case must run (nothing stored, input changed, result unreadable).
    """
    from .schema import SpineResult

    folder = out_root / case.name
    if not folder.exists():
        return {}
    stored = _stored_fingerprint(folder)
    if stored != stamp:
        return {"note": "input changed since the stored result; analysed again" if stored
                else "no input fingerprint stored with the earlier result; analysed again"}
    results = folder / "results.json"
    if results.exists():
        try:
            result = SpineResult.from_json(results.read_text(encoding="utf-8"))
        except Exception as error:  # noqa: BLE001 - any unreadable stored result is re-run, never fatal
            reason = str(error).splitlines()[0][:120] if str(error) else type(error).__name__
            return {"note": f"stored {results} was unreadable ({type(error).__name__}: {reason}); analysed again"}
        return {"case": case.name, "input": str(case.path), "status": "ok (resumed)", **summary_row(result)}
    if (folder / "error.txt").exists():
        try:
            lines = (folder / "error.txt").read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            lines = [f"error.txt unreadable: {error.strerror}"]
        first = next((line for line in lines if line.strip()), "failed in an earlier run (error.txt is empty)")
        return {"case": case.name, "input": str(case.path), "status": "error", "error": first,
                "note": "failed in an earlier run"}
    return {"note": "an incomplete earlier result; analysed again"}


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
              report: Optional[Callable[[int, int, Dict[str, object]], None]] = None, threads_per_worker: int = 1,
              scheduler: Optional[str] = None, announce: Optional[Callable[[str], None]] = None
              ) -> List[Dict[str, object]]:
    """Analyse every case under ``root`` into ``out_root``, resuming finished cases.

    Args:
        root: the folder of inputs.
        out_root: the output folder (one sub-folder per case, plus ``summary.csv``).
        workers: worker processes of a local Dask cluster (1 = in this process, no cluster).
        device: model device.
        retry_failed: analyse cases that failed in an earlier run (on the same input) again.
        report: called after each case with (done, total, row).
        threads_per_worker: cases analysed at once by each worker process (local cluster).
        scheduler: address of a running Dask scheduler to use instead of a local cluster.
        announce: called with one line about the cluster (its dashboard address) once it runs.

    Returns:
        The summary rows (also written to ``out_root/summary.csv``).

    Raises:
        CaseCollisionError: two inputs map to one case folder (nothing is run).
        FolderInUseError: another batch holds ``out_root``.
        KeyboardInterrupt: after Ctrl-C, once the workers are stopped and ``summary.csv`` lists what was done.
    """
    out_root = Path(out_root)
    if out_root.exists() and not out_root.is_dir():
        raise NotADirectoryError(f"{out_root}: exists and is not a folder; choose a folder for --out")
    cases = find_cases(root, exclude=out_root)
    with FolderLock(out_root, "batch"):
        recover_cases(out_root)
        runner: Callable[[List[Case], Callable[[Dict[str, object]], None]], None]
        if workers <= 1 and scheduler is None:
            def runner(todo, finished):
                for case in todo:
                    finished(run_case(case, out_root, device))
        else:
            from .batch_cluster import ClusterSpec, run_on_cluster

            spec = ClusterSpec(workers=workers, threads_per_worker=threads_per_worker, scheduler=scheduler)

            def runner(todo, finished):
                run_on_cluster(todo, out_root, device, finished, spec, announce)
        return _run_locked(cases, out_root, runner, retry_failed, report)


def _run_locked(cases: List[Case], out_root: Path,
                runner: Callable[[List[Case], Callable[[Dict[str, object]], None]], None], retry_failed: bool,
                report: Optional[Callable[[int, int, Dict[str, object]], None]]) -> List[Dict[str, object]]:
    rows: List[Dict[str, object]] = []
    todo: List[Case] = []
    notes: Dict[str, str] = {}
    for case in cases:
        stored = _finished_row(case, out_root, fingerprint(case.path, case.relative))
        if stored.get("status") == "ok (resumed)" or (stored.get("status") == "error" and not retry_failed):
            rows.append(stored)
            continue
        if stored.get("note") and stored.get("status") != "error":
            notes[case.name] = stored["note"]
        todo.append(case)
    done = len(rows)
    if report:
        for row in rows:
            report(done, len(cases), row)

    def finished(row: Dict[str, object]) -> None:
        nonlocal done
        if row["case"] in notes and not row.get("note"):
            row["note"] = notes[row["case"]]
        rows.append(row)
        done += 1
        write_summary(rows, out_root / "summary.csv")
        if report:
            report(done, len(cases), row)

    try:
        runner(todo, finished)
    except KeyboardInterrupt:
        ran = {row["case"] for row in rows}
        rows += [{"case": c.name, "input": str(c.path), "status": INTERRUPTED} for c in todo if c.name not in ran]
        write_summary(rows, out_root / "summary.csv")
        raise
    write_summary(rows, out_root / "summary.csv")
    return rows


class LiveProgress:
    """A live line on stderr: cases done / failed / remaining, throughput and time left.

    Cases resumed from an earlier run count as done but not in the throughput. Call it as the
    ``report`` of :func:`run_batch`.
    """

    def __init__(self, stream=None, clock: Callable[[], float] = time.monotonic):
        self.stream = stream
        self.clock = clock
        self.started = clock()
        self.failed = 0
        self.ran = 0

    def line(self, done: int, total: int, row: Dict[str, object]) -> str:
        """The progress line after ``row`` (counts updated)."""
        status = str(row.get("status", ""))
        self.failed += status == "error"
        earlier = status.endswith("(resumed)") or row.get("note") == "failed in an earlier run"
        self.ran += not earlier
        elapsed = max(self.clock() - self.started, 1e-9)
        left = total - done
        if self.ran:
            rate = self.ran / elapsed * 60.0
            speed = f"{rate:.1f} cases/min, {_duration(left / rate * 60.0) if left else 'done'}"
        else:
            speed = "-- cases/min"
        width = 20
        filled = int(width * done / max(total, 1))
        return (f"[{'#' * filled}{'.' * (width - filled)}] {done - self.failed} done, {self.failed} failed, "
                f"{left} left | {speed} | {row['case']}: {status}")

    def __call__(self, done: int, total: int, row: Dict[str, object]) -> None:
        """Print the line over the previous one; end it after the last case or a failure."""
        stream = self.stream or sys.stderr
        status = row.get("status", "")
        print(f"\r{self.line(done, total, row)}".ljust(110), end="\n" if done == total or status == "error" else "",
              file=stream, flush=True)


def _duration(seconds: float) -> str:
    """``about 3 min left`` style."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 5400:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"
