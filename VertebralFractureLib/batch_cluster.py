"""Batch screening on a Dask cluster: each case one task, the same worklist and guarantees.

:func:`~VertebralFractureLib.batch_runner.run_batch` hands its cases here when it is given more
than one worker or a scheduler address. This process (the driver) holds the lock on the output
folder, submits one task per case and records each row as it comes back; a worker analyses a case
into a staging folder of its own next to the case's final folder
(``OUT/.<case>.vf-<token>.partial``) and returns the row; the driver then swaps the complete
staging folder into place (:func:`~VertebralFractureLib.batch_runner.commit_staged`). A worker
therefore never renames anything the driver may be reading, two attempts at one case never share
a folder, and a worker that dies mid-case leaves only a hidden staging folder (removed here, or
by the next run's recovery) while the scheduler re-runs the case on another worker; a case that
kills workers again and again (``distributed.scheduler.allowed-failures``) is recorded as failed.

Workers keep their models: the pipeline caches each network per process and device, and
:func:`worker_models` loads them once per worker before its first case, under a lock so the
threads of one worker share one copy. Workers must see the input and output folders under the
same paths as the driver (shared storage), and have this package installed.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import re
import shutil
import signal
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Tuple

from .batch_runner import Case, commit_staged, record_error, run_case

#: Re-runs of a task whose function raised (a case's own errors are rows, not exceptions).
RETRIES = 2
#: The name the worker plugin is registered under.
PLUGIN_NAME = "vertebral-fracture-case-worker"
#: How long to wait for an external scheduler.
CONNECT_TIMEOUT_S = 30

_MODELS_LOCK = threading.Lock()
_MODELS_LOADED: Dict[str, bool] = {}


@dataclass
class ClusterSpec:
    """Where the cases run: a local cluster of ``workers`` processes, or the scheduler at ``scheduler``."""

    workers: int = 2
    threads_per_worker: int = 1
    scheduler: Optional[str] = None


def worker_models(device: str) -> None:
    """Load the networks for ``device`` into this process's caches, once (the first case's thread waits).

    A missing or damaged weights file is left for the analysis to report on each case.
    """
    with _MODELS_LOCK:
        if _MODELS_LOADED.get(device):
            return
        try:
            from .keypoints import detector
            from .voxelmap.inference import load_model

            detector._model(None)  # the per-process caches the pipeline reads
            detector._level_classifier()
            load_model(device=device)
        except Exception:  # noqa: BLE001 - reported by each case's analysis instead
            pass
        _MODELS_LOADED[device] = True


def staging_folder(out_root: Path, name: str) -> Path:
    """A staging folder of one attempt at case ``name``: ``OUT/.<name>.vf-<8 hex>.partial``."""
    return Path(out_root) / f".{name}.vf-{uuid.uuid4().hex[:8]}.partial"


def analyse_case(case: Case, out_root: Path, device: str) -> Dict[str, object]:
    """The task: analyse one case into a fresh staging folder; the row names it for the driver to swap."""
    worker_models(device)
    return run_case(case, out_root, device, staging=staging_folder(out_root, case.name), swap=False)


def remove_attempts(out_root: Path, name: Optional[str] = None) -> None:
    """Remove the staging folders that attempts at case ``name`` (default: at any case) left unswapped.

    Such a folder is left by a worker that died mid-case, or by a re-run the scheduler started when
    a worker holding a result it had already handed over died.
    """
    pattern = re.compile(rf"\.{re.escape(name) if name else '.+'}\.vf-[0-9a-f]{{8}}\.partial")
    for path in Path(out_root).iterdir():
        if pattern.fullmatch(path.name) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def lost_case_row(case: Case, out_root: Path, error: BaseException) -> Dict[str, object]:
    """The row (and ``error.txt``) of a case whose task failed as a whole, e.g. it killed its workers."""
    message = f"{type(error).__name__}: {error}".splitlines()[0]
    if type(error).__name__ == "KilledWorker":
        message = (f"KilledWorker: the workers analysing this case died "
                   f"{1 + _allowed_failures()} times (out of memory or a crash?)")
    row: Dict[str, object] = {"case": case.name, "input": str(case.path), "status": "error", "error": message}
    staging = Path(out_root) / f".{case.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    record_error(case, staging, Path(out_root) / case.name, message + "\n", row)
    return row


def _allowed_failures() -> int:
    import dask

    return int(dask.config.get("distributed.scheduler.allowed-failures", 3))


def _worker_plugin():
    """The plugin each worker runs at start: Ctrl-C is the driver's to handle (it stops the workers)."""
    from distributed import WorkerPlugin

    class CaseWorker(WorkerPlugin):
        """Ignore SIGINT in the worker process (the driver's Ctrl-C stops the cluster)."""

        def setup(self, worker) -> None:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    return CaseWorker()


@contextlib.contextmanager
def connect(spec: ClusterSpec) -> Iterator[Tuple[object, Optional[object]]]:
    """A client of the scheduler at ``spec.scheduler``, or of a new local cluster (closed on exit).

    The local cluster listens on 127.0.0.1; its worker processes are forked where the platform allows
    (as the process pool of earlier versions was), so they start without re-importing the caller.
    """
    import dask
    from distributed import Client, LocalCluster

    if spec.scheduler:
        client = Client(spec.scheduler, timeout=CONNECT_TIMEOUT_S)
        try:
            yield client, None
        finally:
            client.close()
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):  # restarted workers too
        cluster = LocalCluster(n_workers=spec.workers, threads_per_worker=spec.threads_per_worker, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=logging.WARNING)
        client = Client(cluster)
        try:
            yield client, cluster
        finally:
            client.close()
            cluster.close()


def describe(client, cluster) -> str:
    """One line about the cluster: workers, threads, scheduler and the dashboard when one runs."""
    info = client.scheduler_info()
    workers = info.get("workers", {})
    threads = sum(w.get("nthreads", 0) for w in workers.values())
    where = "local cluster" if cluster is not None else f"scheduler {info.get('address', '')}"
    line = f"dask: {where}, {len(workers)} workers, {threads} threads"
    if "dashboard" in info.get("services", {}):
        line += f"; dashboard: {client.dashboard_link}"
    return line


def _stop_local_workers(cluster) -> None:
    """Kill the local worker processes at once (their cases are lost; Ctrl-C asked for that)."""
    for nanny in list(getattr(cluster, "workers", {}).values()):
        process = getattr(getattr(nanny, "process", None), "process", None)
        pid = getattr(process, "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def run_on_cluster(todo: List[Case], out_root: Path, device: str, finished: Callable[[Dict[str, object]], None],
                   spec: ClusterSpec, announce: Optional[Callable[[str], None]] = None) -> None:
    """Run ``todo`` as one task per case; call ``finished(row)`` for each, in the order they complete.

    Raises:
        KeyboardInterrupt: after Ctrl-C, once the queued tasks are cancelled and local workers stopped.
    """
    from distributed import as_completed

    out_root = Path(os.path.abspath(out_root))
    with connect(spec) as (client, cluster):
        client.register_plugin(_worker_plugin(), name=PLUGIN_NAME)
        if announce:
            announce(describe(client, cluster))
        run = uuid.uuid4().hex[:8]
        by_key: Dict[str, Case] = {}
        futures = []
        for index, case in enumerate(todo):
            task = Case(case.name, Path(os.path.abspath(case.path)), case.relative)
            future = client.submit(analyse_case, task, out_root, device, key=f"vf-case-{run}-{index}",
                                   retries=RETRIES, pure=False)
            by_key[future.key] = case
            futures.append(future)
        try:
            for future in as_completed(futures):
                case = by_key[future.key]
                try:
                    row = future.result()
                except KeyboardInterrupt:
                    raise
                except BaseException as error:  # noqa: BLE001 - a lost case is a row, never the end of the batch
                    row = lost_case_row(case, out_root, error)
                future.release()  # nothing to re-run should the worker holding the result die now
                row["input"] = str(case.path)
                commit_staged(row, out_root)
                remove_attempts(out_root, case.name)
                finished(row)
        except KeyboardInterrupt:
            logging.getLogger("distributed").setLevel(logging.CRITICAL + 1)
            if cluster is not None:
                _stop_local_workers(cluster)
            with contextlib.suppress(Exception):
                client.cancel(futures, force=True)
            raise
    if spec.scheduler is None:  # the local workers are gone: no attempt can still be writing
        remove_attempts(out_root)
