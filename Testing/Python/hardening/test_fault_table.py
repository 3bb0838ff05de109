"""The fault table: every bad input, refused request and fault the CLI meets, one row each.

Each row builds its inputs in a fresh folder, runs ``vertebral-fracture ...`` (``cli.main``, in
process) and asserts the exit code (README "Exit codes and the write guarantee": 0 done, 1 a
failed case in a batch or an internal error, 2 bad input or refused, 130 interrupted), the one
line on stderr (no traceback) and the files left in the output folder. The models are replaced by
:func:`test_nothing_lost.fake_analysis` (the real reader, checks, canonical orientation and
output writer; two measured vertebrae), so the table runs in seconds. Disk-full and read-only
rows need a tmpfs mount (root); Ctrl-C rows send a real SIGINT to a subprocess.
"""

from __future__ import annotations

import csv
import fcntl
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, List, Optional, Set

import numpy as np
import pytest
import SimpleITK as sitk
from hardhelpers import ct_like, image
from test_nothing_lost import fake_analysis

import VertebralFractureLib.pipeline as pipeline
from VertebralFractureLib.cli import main
from VertebralFractureLib.export import outputs

#: What the fake analysis writes (no segmentation, no fracture map).
WRITTEN = {"results.json", "genant.csv", "keypoints.mrk.json", "centroids.mrk.json", "overview.png", "report.html"}
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


# ---------------------------------------------------------------------------------------------- inputs


def ct(path: Path, array: Optional[np.ndarray] = None, spacing=(1.0, 1.0, 1.0), direction=None) -> Path:
    """Write a small CT-like volume (or ``array``) to ``path``."""
    picture = image(ct_like() if array is None else array, spacing)
    if direction is not None:
        picture.SetDirection(np.asarray(direction, float).ravel().tolist())
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(picture, str(path))
    return path


def rotation(angle: float) -> np.ndarray:
    """A rotation about the left-right axis by ``angle`` radians."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def dicom(folder: Path, modality: str = "CT", uid: str = "1.2.3.4.5", slices: int = 10, study: str = "") -> Path:
    """A DICOM series of a CT-like volume, one file per slice (``study``: its Study Instance UID, else SimpleITK's)."""
    folder.mkdir(parents=True)
    volume = image(ct_like((slices, 32, 32)), (1.0, 1.0, 2.0))
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for k in range(slices):
        plane = volume[:, :, k]
        for tag, value in (("0008|0060", modality), ("0020|000e", uid), ("0020|0037", "1\\0\\0\\0\\1\\0"),
                           ("0020|0032", f"0\\0\\{2.0 * k}"), ("0020|0013", str(k + 1)), ("0028|1053", "1"),
                           ("0028|1052", "0"), ("0008|0008", "ORIGINAL\\PRIMARY"),
                           *((("0020|000d", study),) if study else ())):
            plane.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"s{k:03d}.dcm"))
        writer.Execute(plane)
    return folder


def nifti_with(path: Path, values: np.ndarray) -> Path:
    return ct(path, values.astype(np.float32))


def with_nan(value: float) -> np.ndarray:
    array = ct_like().astype(np.float32)
    array[3, 5, 7] = value
    return array


def previous_set(out: Path, source: Path) -> dict:
    """Write a complete output set as a first run would; return its bytes."""
    assert main(["analyze", str(source), "--out", str(out), "--quiet"]) == 0
    return snapshot(out)


def put(path: Path, data) -> None:
    """Write text or bytes to ``path`` (returns None, to chain with ``or`` in the table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)


def snapshot(folder: Path) -> dict:
    if not folder.exists():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def summary(out: Path) -> dict:
    with (out / "summary.csv").open(newline="") as handle:
        return {row["case"]: row for row in csv.DictReader(handle)}


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MB tmpfs mount (root only); unmounted afterwards."""
    if not IS_ROOT:
        pytest.skip("a tmpfs mount (disk full, read-only folder) needs root")
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode:
        pytest.skip("mount -t tmpfs is not allowed here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)])


# ----------------------------------------------------------------------------------------------- table


@dataclass
class Row:
    """One fault: ``build(tmp)`` makes the inputs and returns the arguments; then what must be seen."""

    id: str
    build: Callable[[Path], List[str]]
    code: int
    message: str  # a regular expression searched in stderr (in stdout for exit code 0)
    left: Optional[Set[str]] = None  # files under tmp/out afterwards (None: the folder does not exist)
    check: Optional[Callable[[Path, str], None]] = None
    marks: list = field(default_factory=list)


def analyze(source, *extra) -> List[str]:
    return ["analyze", str(source), "--out", "OUT", "--quiet", *map(str, extra)]


def _corrupt_gzip(t):
    (t / "c.nii.gz").write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)
    return t / "c.nii.gz"


def _truncated(t, suffix):
    data = ct(t / f"w{suffix}").read_bytes()
    (t / f"t{suffix}").write_bytes(data[: len(data) // 2])
    return t / f"t{suffix}"


def _fifo(t):
    os.mkfifo(t / "pipe.nii.gz")
    return t / "pipe.nii.gz"


def _symlink(t, target):
    (t / "link.nii.gz").symlink_to(target)
    return t / "link.nii.gz"


def _loop(t):
    (t / "a.nii.gz").symlink_to(t / "b.nii.gz")
    (t / "b.nii.gz").symlink_to(t / "a.nii.gz")
    return t / "a.nii.gz"


def _empty_volume(t):
    data = bytearray(gzip.decompress(ct(t / "one.nii.gz", np.zeros((1, 1, 1), np.int16)).read_bytes()))
    data[42:48] = np.array([0, 0, 0], "<i2").tobytes()  # dim[1..3] = 0
    (t / "empty_volume.nii").write_bytes(bytes(data))
    return t / "empty_volume.nii"


def _huge_header(t):
    (t / "huge.nrrd").write_bytes(b"NRRD0004\ntype: short\ndimension: 3\nsizes: 4000 4000 4000\n"
                                  b"spacings: 1 1 1\nendian: little\nencoding: gzip\n\n" + gzip.compress(b"\0" * 1000))
    return t / "huge.nrrd"


def _long_header(t):
    body = ct(t / "x.nrrd", spacing=(1.0, 1.0, 1.0)).read_bytes()
    header, _, data = body.partition(b"\n\n")
    comments = b"".join(b"# comment line %d of a very long header\n" % i for i in range(20000))
    (t / "long.nrrd").write_bytes(header + b"\n" + comments + b"\n" + data)
    return t / "long.nrrd"


def _tilted(t):
    """256 x 256 x 32 voxels at 0.1 x 0.1 x 10 mm, tilted 45 degrees: billions of voxels once reoriented."""
    return ct(t / "tilted.nii.gz", ct_like((32, 256, 256)), (0.1, 0.1, 10.0), rotation(np.pi / 4))


def _two_series(t, study: str = ""):
    dicom(t / "export" / "a", uid="1.2.3.1", study=study)
    dicom(t / "export" / "b", uid="1.2.3.2", slices=12, study=study)
    return t / "export"


def _held_lock(t):
    """Hold the output folder's lock as another process would (flock on a separate open file)."""
    out = t / "out"
    out.mkdir()
    handle = os.open(str(out / ".vf-lock"), os.O_RDWR | os.O_CREAT)
    os.write(handle, b"pid 1, batch")
    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    _held_lock.handles.append(handle)


_held_lock.handles = []


def _stale(t):
    src = ct(t / "ct.nii.gz")
    out = t / "out"
    previous_set(out, src)
    for name in (".vf-tmp-results-abc.json", ".overview-a1b2c3d4.png", ".vf-commit.json"):
        (out / name).write_text("{")
    return analyze(src, "--overwrite")


def _broken_writer(kind: str):
    def build(t):
        src = ct(t / "ct.nii.gz")
        before = previous_set(t / "out", src)
        (t / "before.json").write_text(json.dumps({k: v.hex() for k, v in before.items()}))

        def render_report(*args, **kwargs):
            if kind == "interrupt":
                raise KeyboardInterrupt
            raise OSError(28, "No space left on device", str(args[1]))

        def render_overview(mid, points, result, path, **kwargs):
            Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)  # cut short: no IEND

        name, replacement = (("render_overview", render_overview) if kind == "truncated"
                             else ("render_report", render_report))
        module = "overview" if kind == "truncated" else "report"
        _broken_writer.patches.append((f"VertebralFractureLib.export.{module}.{name}", replacement))
        return analyze(src, "--overwrite")
    return build


_broken_writer.patches = []


def unchanged(t: Path, err: str) -> None:
    before = {k: bytes.fromhex(v) for k, v in json.loads((t / "before.json").read_text()).items()}
    assert snapshot(t / "out") == before


def batch(*extra) -> List[str]:
    return ["batch", "IN", "--out", "OUT", *extra]


def _inbox(t, *names):
    for name in names:
        ct(t / "in" / name, ct_like(seed=len(name)))


def _resumed(t, change=None):
    _inbox(t, "a.nii.gz", "b.nii.gz")
    assert main(_resolve(batch(), t)) == 0
    if change:
        change(t)
    return batch()


def _rewrite(t):
    time.sleep(0.01)
    ct(t / "in" / "b.nii.gz", ct_like(seed=99))


def _binary_result(t):
    (t / "out" / "b.nii.gz" / "results.json").write_bytes(bytes(range(256)))


def _empty_error(t):
    put(t / "in" / "bad.nii.gz", b"not an image")
    args = [str(t / "in"), "--out", str(t / "out")]
    assert main(["batch", *args]) == 1
    (t / "out" / "bad.nii.gz" / "error.txt").write_text("")
    return batch("--no-retry")


def statuses(expected):
    def check(t, err):
        assert {case: row["status"] for case, row in summary(t / "out").items()} == expected
    return check


def notes(case, pattern):
    def check(t, err):
        import re

        assert re.search(pattern, summary(t / "out")[case]["note"]), summary(t / "out")[case]
    return check


CASE_FILES = {"input.json"} | WRITTEN

ROWS = [
    # ------------------------------------------------------------------ reading the input
    Row("missing-file", lambda t: analyze(t / "nope.nii.gz"), 2, r"nope\.nii\.gz: no such file or folder"),
    Row("empty-file", lambda t: (t / "e.nii.gz").write_bytes(b"") or analyze(t / "e.nii.gz"), 2,
        r"e\.nii\.gz: the file is empty"),
    Row("corrupt-gzip", lambda t: analyze(_corrupt_gzip(t)), 2, r"c\.nii\.gz: the NIfTI file is truncated or corrupt"),
    Row("corrupt-gzip-segmentation", lambda t: analyze(ct(t / "ct.nii.gz"), "--segmentation", _corrupt_gzip(t)), 2,
        r"c\.nii\.gz: the NIfTI file is truncated or corrupt"),
    Row("truncated-nifti", lambda t: analyze(_truncated(t, ".nii")), 2, r"t\.nii: the NIfTI file is truncated"),
    Row("truncated-nifti-gz", lambda t: analyze(_truncated(t, ".nii.gz")), 2, r"t\.nii\.gz: the NIfTI file is trunc"),
    Row("truncated-nrrd", lambda t: analyze(_truncated(t, ".nrrd")), 2, r"t\.nrrd: cannot read this image"),
    Row("garbage-mha", lambda t: put(t / "g.mha", "not an image") or analyze(t / "g.mha"), 2,
        r"g\.mha: cannot read this image"),
    Row("text-as-nifti", lambda t: put(t / "n.nii", "x" * 400) or analyze(t / "n.nii"), 2, r"n\.nii: "),
    Row("fifo", lambda t: analyze(_fifo(t)), 2, r"pipe\.nii\.gz: is a FIFO \(named pipe\), not a regular file"),
    Row("fifo-segmentation", lambda t: analyze(ct(t / "ct.nii.gz"), "--segmentation", _fifo(t)), 2,
        r"pipe\.nii\.gz: is a FIFO"),
    Row("char-device", lambda t: analyze("/dev/zero"), 2, r"/dev/zero: is a device, not a regular file"),
    Row("dangling-symlink", lambda t: analyze(_symlink(t, t / "gone.nii.gz")), 2,
        r"link\.nii\.gz: a symbolic link to a missing file"),
    Row("symlink-loop", lambda t: analyze(_loop(t)), 2, r"a\.nii\.gz: "),
    Row("symlink-to-ct", lambda t: analyze(_symlink(t, ct(t / "real.nii.gz"))), 0, r"2 vertebrae", WRITTEN),
    Row("non-ascii-path", lambda t: analyze(ct(t / "Müller_脊椎" / "ct é.nii.gz")), 0, r"2 vertebrae", WRITTEN),
    Row("non-ascii-corrupt", lambda t: analyze(_truncated(t / "Ørsted", ".nii.gz")), 2,
        r"Ørsted/t\.nii\.gz: the NIfTI file is truncated"),
    Row("folder-without-dicom", lambda t: (t / "d").mkdir() or analyze(t / "d"), 2,
        r"d: no DICOM series found in this folder or its sub-folders"),
    Row("unreadable-file", lambda t: analyze(_unreadable(t)), 2, r"secret\.nii\.gz: permission denied",
        marks=[pytest.mark.skipif(IS_ROOT, reason="root reads every file")]),
    # ------------------------------------------------------------------ what the voxels hold
    Row("nan-float-nifti", lambda t: analyze(nifti_with(t / "f.nii.gz", with_nan(np.nan))), 2,
        r"f\.nii\.gz: 1 voxels are NaN or infinite"),
    Row("minus-inf-float-nifti", lambda t: analyze(nifti_with(t / "f.nii", with_nan(-np.inf))), 2,
        r"f\.nii: 1 voxels are NaN or infinite"),
    Row("nan-nrrd", lambda t: analyze(nifti_with(t / "f.nrrd", with_nan(np.nan))), 2,
        r"f\.nrrd: the volume contains NaN or infinite values"),
    Row("nan-mha", lambda t: analyze(nifti_with(t / "f.mha", with_nan(np.inf))), 2,
        r"f\.mha: the volume contains NaN or infinite values"),
    Row("4d-nifti", lambda t: analyze(_four_d(t)), 2, r"4d\.nii\.gz: expected a 3D volume, got an array of 4"),
    Row("one-voxel", lambda t: analyze(ct(t / "one.nii.gz", np.full((1, 1, 1), 500, np.int16))), 2,
        r"one\.nii\.gz: .*(radiograph|2D)"),
    Row("empty-volume", lambda t: analyze(_empty_volume(t)), 2, r"empty_volume\.nii: "),
    Row("thin-volume", lambda t: analyze(ct(t / "thin.nii.gz", ct_like((4, 32, 32)))), 2,
        r"thin\.nii\.gz: axis k has fewer than 8 voxels"),
    Row("constant", lambda t: analyze(ct(t / "k.nii.gz", np.full((16, 16, 16), 40, np.int16))), 2,
        r"k\.nii\.gz: the volume is constant"),
    Row("mr-like", lambda t: analyze(ct(t / "mr.nii.gz", (ct_like() + 1100).astype(np.int16))), 2,
        r"mr\.nii\.gz: the lowest intensity is .* looks like MR"),
    Row("normalised", lambda t: analyze(ct(t / "n.nii.gz", (ct_like() / 3000.0).astype(np.float32))), 2,
        r"n\.nii\.gz: intensities span only"),
    Row("no-bone", lambda t: analyze(ct(t / "nb.nii.gz", np.clip(ct_like(), -1000, 100).astype(np.int16))), 2,
        r"nb\.nii\.gz: the highest intensity is 100 HU; no bone"),
    Row("label-mask-as-ct", lambda t: analyze(ct(t / "labels.nii.gz", np.arange(4096).reshape(16, 16, 16) % 6)), 2,
        r"labels\.nii\.gz: intensities span only 0 to 5"),
    Row("binary-mask-as-ct", lambda t: analyze(ct(t / "m.nii.gz", (ct_like() > 0).astype(np.uint8))), 2,
        r"m\.nii\.gz: intensities span only 0 to 1"),
    Row("absurd-spacing", lambda t: analyze(ct(t / "s.nii.gz", spacing=(50.0, 1.0, 1.0))), 2,
        r"s\.nii\.gz: voxel spacing \(50\.0, 1\.0, 1\.0\) mm is outside"),
    Row("huge-header", lambda t: analyze(_huge_header(t)), 2, r"huge\.nrrd: 64000 million voxels"),
    Row("long-header", lambda t: analyze(_long_header(t)), 0, r"2 vertebrae", WRITTEN),
    Row("tilted-45-thin-thick", lambda t: analyze(_tilted(t)), 2,
        r"tilted\.nii\.gz: reorienting this oblique volume .* million voxels"),
    # ------------------------------------------------------------------ odd orientations (analysed)
    Row("ras", lambda t: analyze(ct(t / "ras.nii.gz", direction=np.diag([-1, -1, 1]))), 0, r"2 vertebrae", WRITTEN),
    Row("pir", lambda t: analyze(ct(t / "pir.nrrd", direction=[[0, 0, -1], [-1, 0, 0], [0, -1, 0]])), 0,
        r"2 vertebrae", WRITTEN),
    Row("oblique-20-degrees", lambda t: analyze(ct(t / "obl.mha", direction=rotation(0.35))), 0, r"2 vertebrae",
        WRITTEN),
    Row("anisotropic-thick-slices", lambda t: analyze(ct(t / "thick.nii.gz", spacing=(0.7, 0.7, 5.0))), 0,
        r"2 vertebrae", WRITTEN),
    # ------------------------------------------------------------------ DICOM
    Row("dicom-mr-modality", lambda t: analyze(dicom(t / "mr", modality="MR")), 2,
        r"mr: the DICOM series is modality MR, not CT"),
    Row("dicom-study-series-subfolders", lambda t: analyze(dicom(t / "export" / "STUDY1" / "SERIES1").parents[1]), 0,
        r"2 vertebrae", WRITTEN),
    Row("dicom-two-studies", lambda t: analyze(_two_series(t)), 2,
        r"export: the folder holds DICOM series of 2 studies; give each exam its own folder or choose one series with "
        r"--series UID: 1\.2\.3\.1 \(10 files\); 1\.2\.3\.2 \(12 files\)"),
    Row("dicom-two-series-of-one-study", lambda t: analyze(_two_series(t, study="1.2.3")), 0,
        r"export: analysed series 1\.2\.3\.2 \(12 axial slices\) of the folder's 2 series \(axial first, then the "
        r"thinnest slices, then the most\); also CT volumes, not analysed: series 1\.2\.3\.1", WRITTEN),
    Row("dicom-series-chosen", lambda t: analyze(_two_series(t), "--series", "1.2.3.2"), 0, r"2 vertebrae", WRITTEN),
    Row("dicom-series-unknown", lambda t: analyze(_two_series(t), "--series", "9.9"), 2,
        r"export: no DICOM series with UID 9\.9; the folder holds: 1\.2\.3\.1"),
    Row("series-on-a-file", lambda t: analyze(ct(t / "ct.nii.gz"), "--series", "1.2"), 2,
        r"ct\.nii\.gz: --series applies to a DICOM folder"),
    # ------------------------------------------------------------------ the output folder
    Row("out-is-a-file", lambda t: put(t / "out", "mine") or analyze(ct(t / "ct.nii.gz")), 2,
        r"out: exists and is not a folder", None,
        check=lambda t, err: (t / "out").read_text() == "mine" or pytest.fail("--out file changed")),
    Row("outputs-exist", lambda t: previous_set(t / "out", ct(t / "ct.nii.gz")) and analyze(t / "ct.nii.gz"), 2,
        r"out already holds results\.json, genant\.csv.*pass --overwrite", WRITTEN),
    Row("overwrite", lambda t: previous_set(t / "out", ct(t / "ct.nii.gz")) and analyze(t / "ct.nii.gz",
                                                                                        "--overwrite"),
        0, r"2 vertebrae", WRITTEN),
    Row("stale-temporaries-cleaned", _stale, 0, r"2 vertebrae", WRITTEN),
    Row("write-fails-mid-set", _broken_writer("enospc"), 2, r"report\.html: No space left on device", WRITTEN,
        check=unchanged),
    Row("written-file-cut-short", _broken_writer("truncated"), 2,
        r"writing overview\.png .*failed: not a complete PNG image", WRITTEN, check=unchanged),
    Row("ctrl-c-during-writes", _broken_writer("interrupt"), 130, r"interrupted", WRITTEN, check=unchanged),
    Row("out-in-use", lambda t: _held_lock(t) or analyze(ct(t / "ct.nii.gz")), 2,
        r"out: the folder is in use by another run \(pid 1, batch\)", {".vf-lock"}),
    Row("internal-error", lambda t: _crash() or analyze(ct(t / "ct.nii.gz")), 1,
        r"ct\.nii\.gz: internal error ZeroDivisionError: boom \(run with --debug for the traceback\)"),
    # ------------------------------------------------------------------ info
    Row("info-4d", lambda t: ["info", str(_four_d(t))], 0, r'"dimension": 4'),
    Row("info-nan", lambda t: ["info", str(nifti_with(t / "f.nii.gz", with_nan(np.nan)))], 0,
        r'"non_finite_voxels": 1'),
    Row("info-corrupt-gzip", lambda t: ["info", str(_corrupt_gzip(t))], 2, r"c\.nii\.gz: the NIfTI file is trunc"),
    Row("info-fifo", lambda t: ["info", str(_fifo(t))], 2, r"pipe\.nii\.gz: is a FIFO"),
    # ------------------------------------------------------------------ batch
    Row("batch-same-stem-two-formats", lambda t: ct(t / "in" / "scan.nii.gz") and ct(t / "in" / "scan.nrrd",
                                                                                     ct_like(seed=5)) and batch(),
        0, r"2 cases: 2 analysed, 0 failed",
        {"summary.csv", *(f"scan.{s}/{f}" for s in ("nii.gz", "nrrd") for f in CASE_FILES)},
        check=statuses({"scan.nii.gz": "ok", "scan.nrrd": "ok"})),
    Row("batch-path-collision", lambda t: ct(t / "in" / "p" / "x.nii.gz") and ct(t / "in" / "p__x.nii.gz") and batch(),
        2, r"p/x\.nii\.gz and p__x\.nii\.gz would both be written to the case folder p__x\.nii\.gz"),
    Row("batch-case-collision", lambda t: ct(t / "in" / "A.nii.gz") and ct(t / "in" / "a.nii.gz") and batch(), 2,
        r"would both be written to the case folder", None,
        marks=[pytest.mark.skipif(sys.platform == "darwin", reason="case-insensitive file system")]),
    Row("batch-resume-same-input", lambda t: _resumed(t), 0, r"2 cases: 2 analysed",
        check=statuses({"a.nii.gz": "ok (resumed)", "b.nii.gz": "ok (resumed)"})),
    Row("batch-input-changed", lambda t: _resumed(t, _rewrite), 0, r"note: b\.nii\.gz: input changed",
        check=notes("b.nii.gz", "input changed since the stored result")),
    Row("batch-corrupt-stored-result", lambda t: _resumed(t, _binary_result), 0,
        r"note: b\.nii\.gz: stored .*results\.json was unreadable",
        check=notes("b.nii.gz", "unreadable .*; analysed again")),
    Row("batch-one-bad-case", lambda t: _inbox(t, "ok.nii.gz") or put(t / "in" / "bad.nrrd", "NRRD0004\n")
        or batch(), 1, r"(?s)2 cases: 1 analysed, 1 failed.*error: bad\.nrrd: ImageReadError: .*bad\.nrrd: cannot",
        {"summary.csv", "bad.nrrd/error.txt", "bad.nrrd/input.json", *(f"ok.nii.gz/{f}" for f in CASE_FILES)},
        check=statuses({"ok.nii.gz": "ok", "bad.nrrd": "error"})),
    Row("batch-empty-error-no-retry", _empty_error, 1, r"1 cases: 0 analysed, 1 failed",
        check=lambda t, err: summary(t / "out")["bad.nii.gz"]["error"].endswith("(error.txt is empty)")),
    Row("batch-out-in-use", lambda t: _inbox(t, "a.nii.gz") or _held_lock(t) or batch(), 2,
        r"out: the folder is in use by another run", {".vf-lock"}),
    Row("batch-out-is-a-file", lambda t: _inbox(t, "a.nii.gz") or put(t / "out", "x") or batch(), 2,
        r"out: exists and is not a folder"),
    Row("batch-out-inside-input", lambda t: _inbox(t, "a.nii.gz") or ["batch", "IN", "--out", str(t / "in" / "out")],
        0, r"1 cases: 1 analysed"),
    Row("batch-fifo-skipped", lambda t: _inbox(t, "a.nii.gz") or os.mkfifo(t / "in" / "p.nii.gz") or batch(), 0,
        r"1 cases: 1 analysed", {"summary.csv", *(f"a.nii.gz/{f}" for f in CASE_FILES)}),
    Row("batch-stale-staging-recovered", lambda t: _stale_staging(t) or batch(), 0, r"1 cases: 1 analysed",
        {"summary.csv", *(f"a.nii.gz/{f}" for f in CASE_FILES)}),
    Row("batch-no-inputs", lambda t: (t / "in").mkdir() or batch(), 2, r"in: no NIfTI/NRRD/MHA file or DICOM"),
]


def _unreadable(t):
    path = ct(t / "secret.nii.gz")
    path.chmod(0)
    return path


def _four_d(t):
    volume = sitk.JoinSeries([image(ct_like()), image(ct_like(seed=1))])
    sitk.WriteImage(volume, str(t / "4d.nii.gz"))
    return t / "4d.nii.gz"


def _crash():
    def broken(source, options=None, progress=None):
        raise ZeroDivisionError("boom")

    _crash.analyze = broken


_crash.analyze = None


def _stale_staging(t):
    _inbox(t, "a.nii.gz")
    (t / "out" / ".b.nii.gz.partial").mkdir(parents=True)
    (t / "out" / ".b.nii.gz.partial" / "results.json").write_text("{")
    (t / "out" / ".a.nii.gz.old").mkdir()
    (t / "out" / ".a.nii.gz.old" / "results.json").write_text("{")


def _resolve(argv: List[str], t: Path) -> List[str]:
    return [str(t / "out") if a == "OUT" else str(t / "in") if a == "IN" else a for a in argv]


@pytest.fixture(autouse=True)
def models_replaced(monkeypatch):
    """The pipeline's models replaced by the fake analysis (the reader, checks and writer are real)."""
    _crash.analyze = None
    _broken_writer.patches.clear()

    def analyze(source, options=None, progress=None):
        if _crash.analyze:
            return _crash.analyze(source)
        return fake_analysis(source)

    monkeypatch.setattr(pipeline, "analyze", analyze)
    yield
    for handle in _held_lock.handles:
        os.close(handle)
    _held_lock.handles.clear()


@pytest.mark.parametrize("row", [pytest.param(r, id=r.id, marks=r.marks) for r in ROWS])
def test_fault(row: Row, tmp_path, capsys, monkeypatch):
    """One row: exit code, one message line (no traceback) naming the file, the files left behind."""
    import re

    argv = _resolve(row.build(tmp_path), tmp_path)
    for target, replacement in _broken_writer.patches:
        monkeypatch.setattr(target, replacement)
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == row.code, err
    assert "Traceback" not in err
    assert re.search(row.message, out + err), out + err
    if row.code != 0:  # one line on stderr (besides a batch's progress bar and notes)
        lines = [line for line in err.splitlines() if line.strip() and not line.lstrip("\r").startswith(("[", "note:"))]
        assert len(lines) == 1, err
        assert lines[0].startswith(f"vertebral-fracture {argv[0]}: ")
    if row.left is not None or row.code != 0 or row.check is None:
        out_dir = tmp_path / "out"
        if row.left is None and argv[0] == "analyze":
            assert not out_dir.is_dir() or not any(out_dir.iterdir()), sorted(snapshot(out_dir))
        elif row.left is not None:
            assert set(snapshot(out_dir)) == row.left
    if row.check:
        row.check(tmp_path, err)


def test_the_table_has_at_least_60_rows():
    assert len(ROWS) >= 60 and len({r.id for r in ROWS}) == len(ROWS)


def test_debug_shows_the_traceback(tmp_path, capsys):
    _crash()
    assert main(["analyze", str(ct(tmp_path / "ct.nii.gz")), "--out", str(tmp_path / "out"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError" in err
    assert err.strip().splitlines()[-1].endswith("(run with --debug for the traceback)")


# ------------------------------------------------------------------ disk full and read-only (tmpfs, root)


def test_out_on_a_read_only_file_system_is_refused_before_the_work(tmpfs, tmp_path, capsys):
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    assert main(analyze_args(ct(tmp_path / "ct.nii.gz"), tmpfs / "out")) == 2
    assert capsys.readouterr().err.strip() == (f"vertebral-fracture analyze: error: {tmpfs / 'out'}: cannot write "
                                               "there (Read-only file system)")


def analyze_args(source, out, *extra):
    return ["analyze", str(source), "--out", str(out), "--quiet", *extra]


def test_too_little_free_space_is_refused_before_the_work(tmpfs, tmp_path, capsys):
    (tmpfs / "filler").write_bytes(b"\0" * (3 << 20))
    assert main(analyze_args(ct(tmp_path / "ct.nii.gz"), tmpfs / "out")) == 2
    err = capsys.readouterr().err.strip()
    assert re_match(rf"vertebral-fracture analyze: error: {tmpfs / 'out'}: only 1\.0 MB free, about 16 MB needed", err)
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler"]


def re_match(pattern, text):
    import re

    return re.match(pattern, text) or pytest.fail(f"{text!r} does not match {pattern!r}")


def test_disk_full_during_the_writes_keeps_the_previous_set(tmpfs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(outputs, "MIN_FREE_BYTES", 0)
    source = ct(tmp_path / "ct.nii.gz")
    out = tmpfs / "out"
    assert main(analyze_args(source, out)) == 0
    before = snapshot(out)
    size = sum(len(v) for v in before.values())
    free = os.statvfs(tmpfs).f_bavail * os.statvfs(tmpfs).f_frsize
    (tmpfs / "filler").write_bytes(b"\0" * max(0, free - size // 2))  # room for half a set
    capsys.readouterr()
    assert main(analyze_args(source, out, "--overwrite")) == 2
    err = capsys.readouterr().err.strip()
    assert "No space left on device" in err and len(err.splitlines()) == 1, err
    assert snapshot(out) == before  # the previous complete set, no temporary left


# ------------------------------------------------------------------ Ctrl-C on a running batch (real SIGINT)

SCRIPT = """
import signal, sys, time
# A terminal's Ctrl-C reaches a foreground process whose SIGINT has its default action. A child inherits an ignored
# SIGINT, and in full suite runs the batch process twice started with SIGINT ignored (signal.getsignal: SIG_IGN, at
# its first line; the pytest process's own disposition was never ignored between tests, so a library briefly
# ignoring it in another thread, as C's system() does, while this test forked). The batch keeps an inherited
# SIG_IGN (as nohup and background jobs expect), so the test starts from the terminal's state.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pathlib import Path
sys.path[:0] = [{here!r}, {tests!r}]
import test_nothing_lost as helpers
import VertebralFractureLib.pipeline as pipeline
from VertebralFractureLib.cli import main

def analyze(source, options=None, progress=None):
    if Path(source).name != "a.nii.gz":
        time.sleep(30)  # still running when Ctrl-C comes
    return helpers.fake_analysis(source)

pipeline.analyze = analyze
sys.exit(main(["batch", {inbox!r}, "--out", {out!r}, "--workers", "2"]))
"""


def test_ctrl_c_on_a_batch_with_two_workers_stops_and_writes_the_summary(tmp_path):
    for name in ("a", "b", "c", "d"):
        ct(tmp_path / "in" / f"{name}.nii.gz", ct_like(seed=ord(name)))
    out = tmp_path / "out"
    script = tmp_path / "batch.py"
    here = Path(__file__).resolve().parent
    script.write_text(SCRIPT.format(here=str(here), tests=str(here.parent), inbox=str(tmp_path / "in"), out=str(out)))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 40
    # Ctrl-C once the batch has recorded case a (summary.csv is rewritten, atomically, after every case): waiting
    # for a's results.json alone raced the parent's bookkeeping on a loaded machine
    while time.monotonic() < deadline and not (
            (out / "summary.csv").exists() and summary(out).get("a.nii.gz", {}).get("status") == "ok"):
        time.sleep(0.05)
    started = time.monotonic()
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    stdout, stderr = process.communicate(timeout=20)
    assert time.monotonic() - started < 10  # stopped, not waiting for the queued 30 s cases
    assert process.returncode == 130, stderr.decode()
    last = stderr.decode().strip().splitlines()[-1]
    assert "Traceback" not in stderr.decode()
    assert last == f"vertebral-fracture batch: interrupted: the summary of the cases done is in {out / 'summary.csv'}"
    assert {case: row["status"] for case, row in summary(out).items()} == {
        "a.nii.gz": "ok", "b.nii.gz": "not run (interrupted)", "c.nii.gz": "not run (interrupted)",
        "d.nii.gz": "not run (interrupted)"}
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".partial")) >= ["a.nii.gz", "summary.csv"]
    assert not (out / "b.nii.gz").exists()
