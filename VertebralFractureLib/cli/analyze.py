"""``vertebral-fracture analyze [INPUT] --out DIR``: the whole analysis of one CT, every output."""

from __future__ import annotations

import argparse
import sys

from . import CommandError


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``analyze`` sub-command."""
    parser = subparsers.add_parser(
        "analyze",
        help="analyse one CT (file or DICOM folder) or lateral radiograph: keypoints, Genant table, outputs",
        description="Analyse one CT and write results.json, genant.csv, keypoints.mrk.json, centroids.mrk.json, "
        "segmentation.seg.nrrd, overview.png and report.html. Without INPUT, the bundled sample CT is analysed. "
        "A 2D input (PNG/JPEG/DICOM lateral radiograph) takes the radiograph path (frame 'pixel').",
    )
    parser.add_argument("input", nargs="?", help="NIfTI/NRRD/MHA file, DICOM series folder or radiograph (default: "
                        "the sample CT)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where models run")
    parser.add_argument("--segmentation", help="vertebra label mask (VerSe labels) for the segmentation output")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    parser.set_defaults(func=run)
    return parser


def progress_printer(quiet: bool):
    """A progress callback printing one line per message on stderr."""
    last = {"message": None}

    def report(fraction: float, message: str) -> None:
        if quiet or message == last["message"]:
            return
        last["message"] = message
        print(f"[{100 * fraction:5.1f} %] {message}", file=sys.stderr, flush=True)

    return report


def run(args: argparse.Namespace) -> int:
    """Run the analysis and write the outputs."""
    from ..data import sample_ct_path
    from ..export.outputs import write_outputs
    from ..io.images import read_image
    from ..nn.weights import WeightsError
    from ..pipeline import AnalysisOptions, analyze
    from ..progress import Progress
    from ..radiograph.reading import is_radiograph

    source = args.input or str(sample_ct_path())
    progress = Progress(progress_printer(args.quiet))
    try:
        if is_radiograph(source):  # lateral radiograph: centroids + 2D detector
            if args.segmentation:
                raise CommandError("--segmentation applies to CT volumes, not to radiographs")
            from ..radiograph.analyze import analyze_radiograph

            analysis = analyze_radiograph(source, progress)
        else:
            options = AnalysisOptions(device=args.device)
            if args.segmentation:
                options.segmentation = read_image(args.segmentation)
            analysis = analyze(source, options, progress)
    except WeightsError as error:  # a RuntimeError: shown as one line, not a traceback
        raise CommandError(str(error)) from None
    written = write_outputs(analysis, args.out, overwrite=args.overwrite)
    summary = analysis.result.patient_summary()
    print(f"{len(analysis.result.vertebrae)} vertebrae ({', '.join(analysis.result.labels) or 'none'}), "
          f"{summary['n_assessed']} assessed; max Genant grade {summary['max_grade']}; "
          f"fractured: {', '.join(summary['fractured_levels']) or 'none'}")
    for level, reason in summary["not_assessed"].items():
        print(f"  not assessed  {level}: {reason}")
    for kind, path in written.items():
        print(f"  {kind:13s} {path}")
    for warning in analysis.result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
