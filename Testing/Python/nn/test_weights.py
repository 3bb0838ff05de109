import json

import pytest
import torch

from VertebralFractureLib.nn import weights as w
from VertebralFractureLib.nn.unet import UNet


def _model():
    torch.manual_seed(0)
    return UNet(1, 2, (4, 8), dims=2, convs=1)


def test_save_register_load_round_trip(tmp_path):
    model = _model()
    path = w.save_weights(model, tmp_path / "tiny.pt", name="tiny", config={"channels": [4, 8]}, meta={"steps": 3},
                          manifest=True, description="test")  # fmt: skip
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["tiny.pt"]["sha256"] == w.sha256_of(path)
    assert manifest["tiny.pt"]["bytes"] == path.stat().st_size
    checkpoint = w.load_weights(path, model="tiny")
    assert checkpoint["config"] == {"channels": [4, 8]}
    assert checkpoint["meta"]["steps"] == 3
    fresh = UNet(1, 2, (4, 8), dims=2, convs=1)
    fresh.load_state_dict(checkpoint["state_dict"])
    x = torch.randn(1, 1, 8, 8)
    assert torch.equal(fresh(x), model(x))


def test_corrupted_file_is_detected(tmp_path):
    path = w.save_weights(_model(), tmp_path / "tiny.pt", name="tiny", config={}, manifest=True)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(w.WeightsError, match="SHA-256 mismatch"):
        w.load_weights(path)


def test_truncated_unlisted_file_gives_clear_error(tmp_path):
    path = w.save_weights(_model(), tmp_path / "tiny.pt", name="tiny", config={})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(w.WeightsError, match="cannot read the weights"):
        w.load_weights(path)


def test_missing_and_foreign_weights(tmp_path):
    with pytest.raises(w.WeightsError, match="not found"):
        w.load_weights(tmp_path / "absent.pt")
    path = w.save_weights(_model(), tmp_path / "tiny.pt", name="tiny", config={})
    with pytest.raises(w.WeightsError, match="expected 'other'"):
        w.load_weights(path, model="other")
    torch.save({"a": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(w.WeightsError, match="not a VertebralFracture weights file"):
        w.load_weights(tmp_path / "plain.pt")


def test_listed_file_must_be_in_manifest_when_verifying(tmp_path):
    path = w.save_weights(_model(), tmp_path / "tiny.pt", name="tiny", config={})
    with pytest.raises(w.WeightsError, match="no entry"):
        w.load_weights(path, verify=True)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(w.WeightsError, match="not valid JSON"):
        w.read_manifest(tmp_path)


def test_shipped_manifest_matches_shipped_files():
    manifest = w.read_manifest()
    for name, entry in manifest.items():
        path = w.WEIGHTS_DIR / name
        assert path.exists(), name
        assert w.sha256_of(path) == entry["sha256"], name
