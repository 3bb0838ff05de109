"""Models: SHA-256 checked, ``torch.load(weights_only=True)``, no network, clear messages for missing weights."""

from __future__ import annotations

import json
import pickle
import re
import shutil
import socket
from pathlib import Path

import pytest
import SimpleITK as sitk
from hardhelpers import ct_like, image

import VertebralFractureLib
from VertebralFractureLib.cli import main
from VertebralFractureLib.nn import weights as w

PACKAGE = Path(VertebralFractureLib.__file__).resolve().parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_torch_load_in_the_package_is_weights_only():
    calls = []
    for path in SOURCES:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"torch\.load\(([^()]|\([^()]*\))*\)", text):
            calls.append((path.relative_to(PACKAGE).as_posix(), match.group(0)))
    assert calls, "no torch.load call found: the scan is broken"
    unsafe = [(where, call) for where, call in calls if "weights_only=True" not in call]
    assert unsafe == []


def test_no_network_module_is_used_by_the_package():
    pattern = re.compile(r"^\s*(import|from)\s+(urllib\.request|urllib3|requests|httpx|http\.client|socket|ftplib|"
                         r"huggingface_hub|torch\.hub|gdown|wget)\b|torch\.hub\.|load_state_dict_from_url|"
                         r"urlretrieve|urlopen", re.MULTILINE)
    hits = [path.relative_to(PACKAGE).as_posix() for path in SOURCES if pattern.search(path.read_text("utf-8"))]
    assert hits == []


class _Evil:
    """Unpickling this runs code: a file path is written (what an attacker's payload would do)."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pickled_payload_listed_in_the_manifest_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "centreline.pt"
    import torch

    # a torch zip file whose pickle holds the payload (the SHA-256 in the manifest matches: a supply-chain attack)
    torch.save({"format": w.FORMAT, "model": "centreline", "config": {}, "state_dict": {}, "evil": _Evil(str(marker))},
               path)
    w.register(path, model="centreline")
    with pytest.raises(w.WeightsError, match="centreline.pt: cannot read the weights"):
        w.load_weights(path, model="centreline")
    assert not marker.exists()
    # a bare pickle is refused the same way
    path.write_bytes(pickle.dumps(_Evil(str(marker))))
    w.register(path, model="centreline")
    with pytest.raises(w.WeightsError, match="cannot read the weights"):
        w.load_weights(path)
    assert not marker.exists()


@pytest.fixture
def ct_file(tmp_path) -> Path:
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(image(ct_like((24, 48, 48)), (2.0, 2.0, 2.0)), str(path))
    return path


@pytest.fixture
def weights_dir(tmp_path, monkeypatch) -> Path:
    """An empty weights folder standing in for the shipped one (centre-line and keypoints)."""
    from VertebralFractureLib.keypoints import detector, model

    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setattr(w, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(model, "default_weights_path", lambda: folder / "keypoints.pt")
    monkeypatch.setattr(detector, "_CACHE", {})
    return folder


def test_missing_centreline_weights_is_one_clear_line(ct_file, weights_dir, tmp_path, capsys):
    code = main(["analyze", str(ct_file), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err
    assert err == (f"vertebral-fracture analyze: error: {weights_dir / 'centreline.pt'}: weights file not found "
                   "(the shipped weights are missing: reinstall the package or train them with "
                   "'vertebral-fracture train')")


def test_corrupted_centreline_weights_is_one_clear_line(ct_file, weights_dir, tmp_path, capsys):
    shutil.copy(PACKAGE / "weights" / "centreline.pt", weights_dir / "centreline.pt")
    shutil.copy(PACKAGE / "weights" / "manifest.json", weights_dir / "manifest.json")
    data = bytearray((weights_dir / "centreline.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (weights_dir / "centreline.pt").write_bytes(bytes(data))
    code = main(["analyze", str(ct_file), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "centreline.pt: SHA-256 mismatch" in err
    assert "the weights file is corrupted or was replaced; reinstall it or retrain" in err


def test_missing_keypoint_weights_is_one_clear_line_and_nothing_touches_the_network(
        ct_file, weights_dir, tmp_path, capsys, monkeypatch):
    shutil.copy(PACKAGE / "weights" / "centreline.pt", weights_dir / "centreline.pt")
    manifest = json.loads((PACKAGE / "weights" / "manifest.json").read_text())
    (weights_dir / "manifest.json").write_text(json.dumps({"centreline.pt": manifest["centreline.pt"]}))
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted during an analysis")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    code = main(["analyze", str(ct_file), "--out", str(tmp_path / "out"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert attempts == []
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("vertebral-fracture analyze: error: ")
    assert ("keypoints.pt: keypoint model weights not found" in err  # the centre-line ran, offline
            or "no spine found in the image" in err)
