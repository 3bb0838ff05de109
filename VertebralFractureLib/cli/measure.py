"""``vertebral-fracture measure MASK --out DIR``: Genant measures and abnormality from a vertebra mask alone.

No CT is needed. The mask holds VerSe labels (whole vertebrae, e.g. VerSe or TotalSegmentator
remapped, or vertebral bodies). Writes the same ``results.json``, ``genant.csv`` and markups
(``keypoints.mrk.json``, ``centroids.mrk.json``) as ``analyze``, plus ``segmentation.seg.nrrd``
(coloured by Genant grade), ``abnormality.seg.nrrd`` (coloured green 0 -> red 100 by the
abnormality score of Botros et al. 2022) and ``keypoints.png`` (the mid-sagittal slice with the six
keypoints and an abnormality legend).
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``measure`` sub-command."""
    parser = subparsers.add_parser(
        "measure",
        help="measure vertebrae (six keypoints, Genant G, grade) and their abnormality from a label mask, no CT",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("mask", help="vertebra label mask (NIfTI/NRRD, VerSe labels 1-26, 28)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--body-mask", help="optional vertebral-body mask on the same grid (VerSe labels, "
                        "TPTBox sub-regions 49/50, or binary)")
    parser.add_argument("--no-abnormality", action="store_true", help="skip the abnormality score (no torch needed)")
    parser.add_argument("--weights", default=None, help="abnormality model weights (default: shipped)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Measure, score and write the outputs."""
    from pathlib import Path

    from ..export.mask_figure import abnormality_segments, render_keypoints_figure
    from ..export.outputs import segments_for
    from ..export.segmentation import write_seg_nrrd
    from ..io.atomic import atomic_write
    from ..io.csv_tables import write_genant_csv
    from ..io.images import read_image
    from ..io.mrk_json import write_result_markups
    from ..shape.measure import measure_from_mask
    from . import CommandError

    mask = read_image(args.mask)
    body = read_image(args.body_mask) if args.body_mask else None
    out = Path(args.out)
    names = ["results.json", "genant.csv", "keypoints.mrk.json", "centroids.mrk.json", "segmentation.seg.nrrd",
             "keypoints.png"] + ([] if args.no_abnormality else ["abnormality.seg.nrrd"])
    existing = [name for name in names if (out / name).exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    result = measure_from_mask(mask, body)
    result.input["path"] = Path(args.mask).name
    if not args.no_abnormality:
        from ..nn.weights import WeightsError
        from ..shape.score import AbnormalityModel, abnormality_scores

        try:
            model = AbnormalityModel.load(args.weights or "abnormality_shape.pt", device=args.device)
            abnormality_scores(mask, result, model, body_mask=body)
        except WeightsError as error:
            result.warnings.append(f"abnormality: {error}; skipped")
    out.mkdir(parents=True, exist_ok=True)
    written = {"results": atomic_write(out / "results.json", result.to_json(), overwrite=True),
               "genant": write_genant_csv(result, out / "genant.csv", overwrite=True)}
    written["keypoints"], written["centroids"] = write_result_markups(
        result, out / "keypoints.mrk.json", out / "centroids.mrk.json", overwrite=True)
    written["segmentation"] = write_seg_nrrd(mask, segments_for(result), out / "segmentation.seg.nrrd", overwrite=True)
    if not args.no_abnormality:
        written["abnormality"] = write_seg_nrrd(mask, abnormality_segments(result), out / "abnormality.seg.nrrd",
                                                overwrite=True)
    written["figure"] = render_keypoints_figure(mask, result, out / "keypoints.png",
                                                title=f"{Path(args.mask).name}: mask-derived keypoints")
    for v in result.vertebrae:
        m = v.measure
        score = f"  abnormality {v.abnormality:5.1f}" if v.abnormality is not None else ""
        if m is not None:
            print(f"{v.label:4s} h = {m.heights[0]:5.1f} {m.heights[1]:5.1f} {m.heights[2]:5.1f} mm  "
                  f"G = {m.G:.3f}  grade {m.grade} {m.type:9s}{score}")
    for kind, path in written.items():
        print(f"  {kind:13s} {path}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
