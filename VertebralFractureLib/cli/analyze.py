"""``vertebral-fracture analyze (INPUT | --sample) --out DIR``: the whole analysis of one CT, every output."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Dict, Optional

from . import CommandError

#: The optional stages ``--stages`` chooses from (``pipeline.DEFAULT_STAGES``; kept here so ``--help`` is instant).
OPTIONAL_STAGES = ("classifier", "voxel_map", "abnormality")
#: Seconds each stage took on the bundled sample CT (2 shared CPU cores, ``OMP_NUM_THREADS=1``, ``timings_s`` of
#: its ``results.json``); the progress line moves by these weights, not evenly per stage.
MEASURED_SECONDS: Dict[str, float] = {
    "load": 0.2,
    "centreline": 2.25,
    "straighten": 1.42,
    "keypoints": 1.50,
    "quality_gate": 0.13,
    "masks": 0.04,
    "mask_measures": 0.5,
    "classifier": 0.43,
    "voxel_map": 27.7,
    "abnormality": 1.09,
}
#: Share of the progress line given to writing the outputs (measured: about 2 s of the sample's 36 s).
WRITE_SHARE = 0.05


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``analyze`` sub-command."""
    parser = subparsers.add_parser(
        "analyze",
        help="analyse one CT (file or DICOM folder) or lateral radiograph: keypoints, Genant table, outputs",
        description="Analyse one CT and write results.json, genant.csv, keypoints.mrk.json, centroids.mrk.json, "
        "segmentation.seg.nrrd, overview.png and report.html. Give a CT (or a lateral radiograph: PNG/JPEG/DICOM, "
        "analysed in 2D) or --sample for the bundled sample CT.",
    )
    parser.add_argument("input", nargs="?", help="NIfTI/NRRD/MHA file, DICOM series folder or radiograph")
    parser.add_argument("--sample", action="store_true", help="analyse the bundled sample CT (no INPUT)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where models run")
    parser.add_argument("--stages", type=parse_stages, default=OPTIONAL_STAGES, metavar="LIST",
                        help="optional stages to run after keypoints and Genant, comma-separated, or 'none' "
                        f"(default: {','.join(OPTIONAL_STAGES)}; the voxel map takes most of the time)")
    parser.add_argument("--segmentation", help="vertebra segmentation to measure on: a label file, TotalSegmentator's "
                        "output folder or one file per level (see `vertebral-fracture measure --help`)")
    parser.add_argument("--label-scheme", choices=("verse", "totalsegmentator", "totalsegmentator-v1"),
                        help="label numbering of --segmentation (default: VerSe, or refused when ambiguous)")
    parser.add_argument("--series", metavar="UID", help="the DICOM series to analyse when INPUT is a folder holding "
                        "several (default: the axial CT with the thinnest slices of one patient's one study, "
                        "localizers and reports set aside; the warnings say which, and list the others)")
    parser.add_argument("--dicom-out", metavar="DIR", help="also write a DICOM SEG of the vertebral bodies and a DICOM "
                        "SR (TID 1500) of the measures into DIR, referencing the source series (INPUT must be a "
                        "DICOM series folder)")
    parser.add_argument("--facing", choices=("auto", "left", "right"), default="auto",
                        help="radiographs: where the patient's front is in the picture (default auto: from DICOM "
                             "Patient Orientation, else both ways analysed and the one showing the spine kept)")
    parser.add_argument("--slice-thickness", type=float, metavar="MM",
                        help="the CT's slices are MM thick along its third voxel axis, where the file does not say so "
                             "(a volume from an overlapping reconstruction, e.g. 3 mm slices every 1.5 mm, written "
                             "without its DICOM header): the keypoints and the grades then work at what the image "
                             "resolves; DICOM folders and NIfTIs with a dcm2niix sidecar say it themselves")
    parser.add_argument("--quiet", action="store_true", help="no progress messages")
    parser.set_defaults(func=run)
    return parser


def parse_stages(text: str) -> tuple:
    """``"classifier,voxel_map"`` -> ``("classifier", "voxel_map")``; ``"none"`` -> ``()``.

    Raises:
        argparse.ArgumentTypeError: for a name that is not an optional stage.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["none"]:
        return ()
    unknown = [name for name in names if name not in OPTIONAL_STAGES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown stage {', '.join(unknown)}; choose from "
                                         f"{', '.join(OPTIONAL_STAGES)} or 'none'")
    return tuple(name for name in OPTIONAL_STAGES if name in names)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{max(1, round(seconds))} s"
    return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"


def progress_printer(quiet: bool, clock: Callable[[], float] = time.monotonic,
                     stream=None) -> Callable[[float, str], None]:
    """A progress callback printing one plain line per new message on stderr, with the time left.

    The time left is the elapsed time scaled by the fraction still to do; it is shown once 5 % is done.
    """
    last = {"message": None}
    started = clock()

    def report(fraction: float, message: str) -> None:
        if quiet or message == last["message"]:
            return
        last["message"] = message
        elapsed = clock() - started
        line = f"[{100 * fraction:3.0f} %] {message}"
        if 0.05 <= fraction < 1.0 and elapsed > 0:
            line += f" (about {_duration(elapsed * (1 - fraction) / fraction)} left)"
        print(line, file=stream or sys.stderr, flush=True)

    return report


def time_weighted(options, measured: Optional[Dict[str, float]] = None) -> Callable[[float], float]:
    """Map the pipeline's fraction (stages weighted by their nominal ``share``) onto measured time.

    The pipeline gives reading 5 % and each enabled stage its ``share``; this maps each stage's span onto its
    measured seconds (:data:`MEASURED_SECONDS`), so the line moves evenly in time.
    """
    import numpy as np

    from ..pipeline import default_stages

    measured = MEASURED_SECONDS if measured is None else measured
    stages = [stage for stage in default_stages() if stage.enabled(options)]
    total = sum(stage.share for stage in stages) or 1.0
    nominal, seconds = [0.0, 0.05], [0.0, measured.get("load", 0.2)]
    for stage in stages:
        nominal.append(nominal[-1] + 0.95 * stage.share / total)
        seconds.append(seconds[-1] + measured.get(stage.name, 1.0))
    timed = np.asarray(seconds) / (seconds[-1] or 1.0)
    return lambda fraction: float(np.interp(fraction, nominal, timed))


def _input(args: argparse.Namespace) -> str:
    """The input path: INPUT, or the sample CT with ``--sample``; refused when both or neither are given."""
    from ..data import sample_ct_path

    if args.sample and args.input:
        raise CommandError(f"{args.input}: give INPUT or --sample, not both")
    if args.sample:
        args.input = str(sample_ct_path())
    if not args.input:
        raise CommandError("no input: name a CT file or DICOM folder, or pass --sample for the bundled sample CT")
    return args.input


def run(args: argparse.Namespace) -> int:
    """Check the input and the output folder, run the analysis, write the outputs as one unit."""
    from pathlib import Path

    from ..export.outputs import OUTPUT_FILES, RADIOGRAPH_OUTPUT_FILES, check_output_folder, write_outputs
    from ..io.images import check_input_path, read_image
    from ..nn.weights import WeightsError
    from ..pipeline import AnalysisOptions, analyze
    from ..progress import Progress
    from ..radiograph.reading import is_radiograph

    source = _input(args)
    path = check_input_path(source)
    if args.segmentation:
        check_input_path(args.segmentation)
    if args.series and not path.is_dir():
        raise CommandError(f"{source}: --series applies to a DICOM folder, not to a file")
    radiograph = not path.is_dir() and is_radiograph(source)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size
    check_output_folder(args.out, RADIOGRAPH_OUTPUT_FILES if radiograph else OUTPUT_FILES,
                        overwrite=args.overwrite, expected_bytes=2 * size)
    if args.dicom_out:  # checked before the analysis, like --out
        from ..export.dicom_outputs import DICOM_OUTPUT_FILES, is_dicom_source, not_dicom_message

        if not is_dicom_source(path):
            raise CommandError(not_dicom_message(source))
        check_output_folder(args.dicom_out, DICOM_OUTPUT_FILES, overwrite=args.overwrite, expected_bytes=size)
    report = progress_printer(args.quiet)
    try:
        if radiograph:  # lateral radiograph: centroids + 2D detector
            if args.segmentation:
                raise CommandError("--segmentation applies to CT volumes, not to radiographs")
            if args.slice_thickness is not None:
                raise CommandError("--slice-thickness applies to CT volumes, not to radiographs")
            from ..radiograph.analyze import analyze_radiograph

            # of the optional stages only the classifier has a lateral-view form (radiograph/fracture.py)
            analysis = analyze_radiograph(source, Progress(report).sub(0.0, 1 - WRITE_SHARE), facing=args.facing,
                                          fracture_model=None if "classifier" in args.stages else False)
        else:
            if args.facing != "auto":
                raise CommandError("--facing applies to radiographs, not to CT volumes (their orientation is in the "
                                   "header)")
            options = AnalysisOptions(device=args.device, extra_stages=tuple(args.stages),
                                      slice_thickness_mm=args.slice_thickness)
            if args.segmentation:
                from .measure import read_segmentation

                ct = read_image(path, args.series) if args.series else read_image(source)
                options.segmentation, _ = read_segmentation(args.segmentation, args.label_scheme, reference_ct=ct)
            in_time = time_weighted(options)
            progress = Progress(lambda fraction, message: report((1 - WRITE_SHARE) * in_time(fraction), message))
            if args.series:
                analysis = analyze(read_image(path, args.series), options, progress)
                analysis.result.input["path"] = Path(source).name
                analysis.result.input["series_uid"] = args.series
            else:
                analysis = analyze(source, options, progress)
    except WeightsError:  # shown by main() as one line naming the weights file (not prefixed with the input)
        raise
    report(1 - WRITE_SHARE, "writing the outputs")
    written = write_outputs(analysis, args.out, overwrite=args.overwrite)
    if args.dicom_out:
        from ..export.dicom_outputs import write_dicom_outputs

        report(1 - WRITE_SHARE / 2, "writing the DICOM SEG and SR")
        dicom = write_dicom_outputs(analysis, path, args.dicom_out, overwrite=args.overwrite)
        written.update({f"dicom_{kind}": dicom_path for kind, dicom_path in dicom.items()})
    report(1.0, "done")
    from ..export.overview import level_text, levels_certain

    summary = analysis.result.patient_summary()
    certain = levels_certain(analysis.result)
    # the level names as the overview prints them ("T9?" where not anchored), and the uncertainty said on the first
    # line, not only in a warning at the end
    names = {v.label: level_text(v, certain) for v in analysis.result.vertebrae}
    listed = ", ".join(names.values()) or "none"
    if not certain:
        listed += "; levels uncertain: set one level by hand"
    print(f"{len(analysis.result.vertebrae)} vertebrae ({listed}), "
          f"{summary['n_assessed']} assessed; verdict: {summary['verdict_reason']}; "
          f"max Genant grade {summary['max_grade']}")
    if radiograph and analysis.result.input.get("height_unit") == "pixel":
        print("  note          no pixel size: heights in pixels (Genant G and the grades need no calibration)")
    if radiograph and analysis.result.input.get("height_plane") == "detector":
        print("  note          heights in mm at the detector plane (DICOM Imager Pixel Spacing without a magnification "
              "factor): larger than in the patient; Genant G and the grades do not depend on it")
    for level, reason in summary["review_levels"].items():
        print(f"  review        {names.get(level, level)}: {reason}")
    for level, reason in summary["not_assessed"].items():
        print(f"  not assessed  {names.get(level, level)}: {reason}")
    for kind, written_path in written.items():
        print(f"  {kind:13s} {written_path}")
    for warning in analysis.result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
