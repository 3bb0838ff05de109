"""``vertebral-fracture synth`` command."""

from __future__ import annotations

import json

import pytest

import VertebralFractureLib.cli as cli


@pytest.fixture
def main():
    assert "synth" in cli.SUBCOMMANDS
    return cli.main


def test_synth_writes_one_folder_per_case_with_consecutive_seeds(main, tmp_path, capsys):
    code = main(
        [
            "synth",
            "--n",
            "2",
            "--seed",
            "40",
            "--out",
            str(tmp_path),
            "--preset",
            "radiograph",
            "--spacing",
            "3",
            "2",
            "2",
            "--fracture-prevalence",
            "0.5",
        ]
    )
    assert code == 0
    folders = sorted(p.name for p in tmp_path.iterdir())
    assert folders == ["case_0000", "case_0001"]
    seeds = [json.loads((tmp_path / f / "truth.json").read_text())["input"]["synthetic"]["seed"] for f in folders]
    assert seeds == [40, 41]
    params = json.loads((tmp_path / "case_0000" / "truth.json").read_text())["input"]["synthetic"]["params"]
    assert params["spacing"] == [3.0, 2.0, 2.0] and params["fracture_prevalence"] == 0.5
    err = capsys.readouterr().err
    assert "[1/2]" in err and "[2/2]" in err


def test_synth_is_deterministic(main, tmp_path):
    for name in ("a", "b"):
        assert (
            main(
                [
                    "synth",
                    "--n",
                    "1",
                    "--seed",
                    "3",
                    "--out",
                    str(tmp_path / name),
                    "--preset",
                    "radiograph",
                    "--spacing",
                    "3",
                    "--no-radiograph",
                ]
            )
            == 0
        )
    a = (tmp_path / "a" / "case_0000" / "truth.json").read_text()
    b = (tmp_path / "b" / "case_0000" / "truth.json").read_text()
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "timings_s"}  # noqa: E731
    assert strip(a) == strip(b)
    assert not (tmp_path / "a" / "case_0000" / "radiograph.png").exists()


def test_synth_bad_arguments_give_clear_errors(main, tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path), "--preset", "knee"]) == 2
    assert "unknown preset 'knee'" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path), "--spacing", "1", "2"]) == 2
    assert "--spacing takes one or three values" in capsys.readouterr().err
    assert main(["synth", "--out", str(tmp_path), "--n", "0"]) == 2
