import json

import SimpleITK as sitk

from VertebralFractureLib.cli import SUBCOMMANDS, CommandError
from VertebralFractureLib.cli import main as cli_main


def main(argv):
    """The real CLI once ``measure`` is registered; until then the sub-command's own parser."""
    if "measure" in SUBCOMMANDS:
        return cli_main(argv)
    import argparse

    from VertebralFractureLib.cli import measure

    parser = argparse.ArgumentParser(prog="vertebral-fracture")
    measure.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except CommandError:
        return 2


def test_measure_command_writes_results_without_a_ct(column_mask, tmp_path):
    import torch

    from VertebralFractureLib.nn.weights import save_weights
    from VertebralFractureLib.shape.network import ShapeModel

    mask_path = tmp_path / "mask.nii.gz"
    sitk.WriteImage(column_mask, str(mask_path))
    torch.manual_seed(1)
    weights = tmp_path / "abnormality_tiny.pt"
    save_weights(ShapeModel((2, 4, 4)), weights, name="abnormality", config={"channels": [2, 4, 4]})
    out = tmp_path / "out"
    assert main(["measure", str(mask_path), "--out", str(out), "--weights", str(weights), "--device", "cpu"]) == 0
    document = json.loads((out / "results.json").read_text())
    assert document["schema"] == "vertebral-fracture/2" and document["frame"] == "LPS"
    assert [v["label"] for v in document["vertebrae"]] == ["T11", "T12", "L1", "L2", "L3"]
    assert all(v["source"] == "mask" and "abnormality" in v for v in document["vertebrae"])
    assert document["vertebrae"][2]["genant"]["grade"] == 3
    for name in ("genant.csv", "abnormality.seg.nrrd", "segmentation.seg.nrrd", "keypoints.png"):
        assert (out / name).stat().st_size > 0
    # refuses to overwrite without --overwrite
    assert main(["measure", str(mask_path), "--out", str(out), "--no-abnormality"]) == 2
    assert main(["measure", str(mask_path), "--out", str(out), "--no-abnormality", "--overwrite"]) == 0
