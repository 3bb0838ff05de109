"""``batch`` on a Dask cluster: a worker killed mid-case, and the worklist is the single-process one.

A local scheduler and two worker processes (``LocalCluster(n_workers=2, processes=True)``, workers
forked from this process so they inherit the analysis replaced below) run a folder holding the
shipped real CT (the real models), generated CT-like volumes (:func:`test_nothing_lost.fake_analysis`),
a DICOM-less broken gzip and a text file named ``.mha``. One worker is SIGKILLed while it analyses a
case; the scheduler re-runs that case elsewhere. Every case must then be in ``summary.csv`` exactly
once, every case folder complete, no staging folder left, and rows, worklist and ``results.json``
identical to those of the single-process run of the same folder.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import dask
import pytest
import SimpleITK as sitk
from hardhelpers import ct_like, image, keypoint_weights_missing
from test_nothing_lost import REAL_ANALYZE, fake_analysis

import VertebralFractureLib.pipeline as pipeline
from VertebralFractureLib.batch_cluster import ClusterSpec, connect
from VertebralFractureLib.batch_runner import run_batch
from VertebralFractureLib.data import sample_ct_path

distributed = pytest.importorskip("distributed")

#: The real models on the real CT, less the voxel map (30 s of CPU on its own).
REAL_OPTIONS = pipeline.AnalysisOptions(device="cpu", extra_stages=("classifier",), threads=1)
#: The case a worker is killed on (its analysis sleeps long enough to be caught mid-case).
SLOW = "gen_slow.nii.gz"


def _inbox(folder: Path) -> Path:
    folder.mkdir(parents=True)
    shutil.copy(sample_ct_path(), folder / "real.nii.gz")
    for seed in range(4):
        sitk.WriteImage(image(ct_like(seed=seed)), str(folder / f"gen_{seed}.nii.gz"))
    sitk.WriteImage(image(ct_like(seed=9)), str(folder / SLOW))
    (folder / "sub").mkdir()
    sitk.WriteImage(image(ct_like(seed=7)), str(folder / "sub" / "gen_7.nrrd"))
    (folder / "broken.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (folder / "notes.mha").write_text("not an image")
    return folder


@pytest.fixture
def analysis_replaced(monkeypatch, tmp_path):
    """The real analysis for ``real.nii.gz``, the fake one for the rest; the slow case leaves a marker per try."""
    markers = tmp_path / "markers"
    markers.mkdir()

    def analyze(source, options=None, progress=None):
        if Path(source).name == "real.nii.gz":
            return REAL_ANALYZE(source, REAL_OPTIONS)
        if Path(source).name == SLOW:
            (markers / f"{os.getpid()}-{time.monotonic_ns()}").write_text("")
            time.sleep(1.5)
        return fake_analysis(source)

    monkeypatch.setattr(pipeline, "analyze", analyze)
    return markers


def _killer(markers: Path, killed: list) -> threading.Thread:
    """SIGKILL the worker process that starts the slow case first."""

    def watch() -> None:
        deadline = time.monotonic() + 50
        while time.monotonic() < deadline:
            found = sorted(markers.iterdir())
            if found:
                pid = int(found[0].name.split("-")[0])
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _summary(out: Path) -> list:
    with open(out / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _result(folder: Path) -> dict:
    document = json.loads((folder / "results.json").read_text())
    document.pop("timings_s")
    return document


@pytest.mark.skipif(keypoint_weights_missing(), reason="the shipped keypoint weights are missing")
def test_a_worker_killed_mid_case_and_the_worklist_is_the_single_process_one(analysis_replaced, tmp_path):
    inbox = _inbox(tmp_path / "in")
    out = tmp_path / "out_cluster"
    killed: list = []
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):  # the restarted worker too
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                                           dashboard_address="127.0.0.1:0", silence_logs=50)
        try:
            watcher = _killer(analysis_replaced, killed)
            announced: list = []
            rows = run_batch(inbox, out, scheduler=cluster.scheduler_address, announce=announced.append)
            watcher.join(timeout=1)
        finally:
            cluster.close()
    tries = [pid for _, pid in sorted((int(p.name.split("-")[1]), int(p.name.split("-")[0]))
                                      for p in analysis_replaced.iterdir())]  # worker pid of each try, in order
    assert killed and len(tries) >= 2 and tries[0] == killed[0] and tries[-1] != killed[0]  # re-run elsewhere
    assert announced[0].startswith(f"dask: scheduler {cluster.scheduler_address}, 2 workers, 2 threads")
    assert announced[0].endswith("; dashboard: http://127.0.0.1:{}/status".format(cluster.dashboard_link.split(":")[-1]
                                                                                   .split("/")[0]))

    single = run_batch(inbox, tmp_path / "out_single")  # in this process, after the cluster (no fork after torch)

    cases = ["broken.nii.gz", "gen_0.nii.gz", "gen_1.nii.gz", "gen_2.nii.gz", "gen_3.nii.gz", SLOW, "notes.mha",
             "real.nii.gz", "sub__gen_7.nrrd"]
    assert sorted(r["case"] for r in _summary(out)) == cases  # each case exactly once
    assert sorted(rows, key=lambda r: r["case"]) == sorted(single, key=lambda r: r["case"])
    assert (out / "summary.csv").read_text() == (tmp_path / "out_single" / "summary.csv").read_text()
    by_case = {r["case"]: r for r in _summary(out)}
    assert by_case["real.nii.gz"]["status"] == "ok" and int(by_case["real.nii.gz"]["n_vertebrae"]) >= 4
    assert by_case[SLOW]["status"] == "ok" and by_case[SLOW]["levels"] == "L1 L2"
    assert by_case["broken.nii.gz"]["status"] == "error" and by_case["notes.mha"]["status"] == "error"
    assert sorted(p.name for p in out.iterdir()) == sorted([*cases, "summary.csv"])  # no staging folder, no lock
    for case in cases:
        names = sorted(p.name for p in (out / case).iterdir())
        assert names == sorted(p.name for p in (tmp_path / "out_single" / case).iterdir()), case
        if (out / case / "results.json").exists():
            assert _result(out / case) == _result(tmp_path / "out_single" / case), case

    resumed = run_batch(inbox, out, workers=1)
    assert {r["case"]: r["status"] for r in resumed if r["status"] != "error"} == {
        c: "ok (resumed)" for c in cases if c not in ("broken.nii.gz", "notes.mha")}


def test_a_local_cluster_listens_on_loopback_and_is_closed(tmp_path):
    with connect(ClusterSpec(workers=1, threads_per_worker=2)) as (client, cluster):
        info = client.scheduler_info()
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert [w["nthreads"] for w in info["workers"].values()] == [2]
    assert cluster.status.name == "closed"
