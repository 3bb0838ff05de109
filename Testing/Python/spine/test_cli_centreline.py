import json

import numpy as np
import pytest

import VertebralFractureLib.cli as cli
from VertebralFractureLib.nn.weights import load_weights, read_manifest
from VertebralFractureLib.training.centreline.data import CachedCase


def _main(argv):
    names = cli.SUBCOMMANDS
    try:
        cli.SUBCOMMANDS = tuple(dict.fromkeys(names + ("train", "evaluate")))
        return cli.main(argv)
    finally:
        cli.SUBCOMMANDS = names


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    from VertebralFractureLib.synth import generate_case

    folder = tmp_path_factory.mktemp("cases")
    for seed, preset in ((3, "abdomen"), (4, "scoliosis")):
        case = generate_case(seed, preset=preset, spacing=(3.0, 3.0, 3.0), radiograph=False)
        CachedCase.from_synthetic(case, f"synth-{preset}-{seed:05d}").save(folder / f"{seed}.npz")
    return folder


def test_train_then_evaluate_centreline(cached, tmp_path, capsys):
    out = tmp_path / "w" / "centreline.pt"
    tiny = ["--crop", "8", "32", "32", "--channels", "4", "8", "--convs", "1", "1", "--threads", "1"]
    code = _main(["train", "centreline", "--data", str(cached), "--out", str(out), "--steps", "2", "--batch", "1",
                  *tiny, "--ship"])  # fmt: skip
    assert code == 0
    checkpoint = load_weights(out, model="centreline")  # SHA-256 checked against the new manifest
    assert checkpoint["meta"]["steps"] == 2 and checkpoint["config"]["channels"] == [4, 8]
    assert read_manifest(out.parent)["centreline.pt"]["model"] == "centreline"
    capsys.readouterr()
    report = tmp_path / "eval.json"
    code = _main(["evaluate", "centreline", "--data", str(cached), "--weights", str(out), "--threads", "1",
                  "--json", str(report)])  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    assert "all vertebrae" in table and "presence accuracy" in table and "preset scoliosis" in table
    results = json.loads(report.read_text())
    assert len(results) == 2
    n = sum(len(r["labels"]) for r in results)
    assert f"{'all vertebrae':<30} {n:>5}" in table
    assert all(np.isfinite(r["curve_error_mm"]).all() or r["outside_curve"] for r in results)


def test_existing_output_needs_overwrite(cached, tmp_path, capsys):
    out = tmp_path / "centreline.pt"
    out.write_bytes(b"x")
    assert _main(["train", "centreline", "--data", str(cached), "--out", str(out), "--steps", "1"]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_evaluate_needs_data(capsys):
    assert _main(["evaluate", "centreline"]) == 2
    assert "--data" in capsys.readouterr().err
