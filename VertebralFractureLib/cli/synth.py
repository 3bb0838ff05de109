"""``vertebral-fracture synth``: write synthetic spine cases with complete ground truth."""

from __future__ import annotations

import argparse
import sys
import time


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``synth`` sub-command."""
    parser = subparsers.add_parser(
        "synth",
        help="generate synthetic spine CTs, masks, keypoints and radiographs",
        description="Write N synthetic cases (case_0000, case_0001, ...) into DIR; case i uses seed S+i. "
        "Each folder holds ct.nii.gz, vert_msk.nii.gz, body_msk.nii.gz, truth.json, centreline.json, "
        "radiograph.png and radiograph.json.",
    )
    parser.add_argument("--n", type=int, default=1, help="number of cases (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first case (default 0)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--preset", default="spine", help="spine, chest, abdomen, scoliosis or radiograph")
    parser.add_argument(
        "--spacing",
        type=float,
        nargs="+",
        metavar="MM",
        help="voxel size in mm: one value (isotropic) or three (x y z)",
    )
    parser.add_argument("--fracture-prevalence", type=float, help="fraction of fractured vertebrae (default 0.2)")
    parser.add_argument("--direction", help="orientation code of the CT (LPS, RAS, PIR...), 'oblique' or 'random'")
    parser.add_argument("--metal", action="store_true", help="add pedicle screws")
    parser.add_argument(
        "--realism",
        choices=("v1", "hospital"),
        help="generator profile: v1 (default) or hospital (contrast-enhanced blood, thin bright discs, "
        "sharper noise up to 70 HU, denser cortex)",
    )
    parser.add_argument("--no-radiograph", action="store_true", help="skip the lateral DRR")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Generate and write the cases, showing progress on stderr."""
    from pathlib import Path

    from ..synth import generate_case, write_case
    from . import CommandError

    if args.n < 1:
        raise CommandError(f"--n must be at least 1, got {args.n}")
    overrides = {}
    if args.spacing is not None:
        if len(args.spacing) not in (1, 3):
            raise CommandError(f"--spacing takes one or three values, got {len(args.spacing)}")
        overrides["spacing"] = tuple(args.spacing * 3 if len(args.spacing) == 1 else args.spacing)
    if args.fracture_prevalence is not None:
        overrides["fracture_prevalence"] = args.fracture_prevalence
    if args.direction:
        overrides["direction"] = args.direction
    if args.metal:
        overrides["metal"] = True
    if args.realism:
        overrides["realism"] = args.realism
    if args.no_radiograph:
        overrides["radiograph"] = False
    out = Path(args.out)
    started = time.perf_counter()
    for i in range(args.n):
        seed = args.seed + i
        case = generate_case(seed, args.preset, **overrides)
        folder = write_case(case, out / f"case_{i:04d}", overwrite=args.overwrite)
        fractured = [f"{v.label}:{v.measure.grade}{v.measure.type[0]}" for v in case.truth.vertebrae if v.measure.grade]
        elapsed = time.perf_counter() - started
        print(
            f"[{i + 1}/{args.n}] {folder} seed {seed} {case.truth.labels[0]}-{case.truth.labels[-1]} "
            f"fractures: {' '.join(fractured) or 'none'} ({elapsed:.1f} s)",
            file=sys.stderr,
            flush=True,
        )
    return 0
