"""Run the analysis on every real reference CT and score it against the annotations.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_real.py [--out out/bench_real] [--cases sample_ct cptac_chest]
                                                      [--source cptac_chest=../shared/data/real/cptac_chest]

For each case of ``Testing/Data/real/reference`` (see
:mod:`VertebralFractureLib.training.real.reference`) this runs
:func:`VertebralFractureLib.pipeline.analyze`, scores the result with
:func:`~VertebralFractureLib.training.real.reference.score_case`, prints one table row per case
and a total (found / missed / outside the spine, level accuracy, keypoint and height error in mm,
``kp2D`` the keypoint error within the body's sagittal plane, ``cl%`` the share of 1 mm planes across
the annotated bodies that the centre-line crosses inside the body (over the cases analysed: a case the input
check refuses, such as the masked VerSe crop, has no centre-line and its bodies count as missed),
grades >= 2 on vertebrae that look normal, vertebrae not assessed and why, seconds; the keypoint and height
errors of the table count the assessed vertebrae only), the same over the distinct assessed bodies (a body in two
crops of one scan counted once), the keypoint and height error over every matched body
with reference keypoints (withheld ones included: issue 18's figure, which a stricter gate cannot flatter), the G
error against the mask-derived reference keypoints of every matched body (withheld ones included), and writes
``<case>.png`` (curved mid-sagittal and coronal views of the CT with the reference points in green
and the reported ones in red, labels beside both), ``<case>.json`` (the score) and ``summary.json``.

``--bodies`` also writes ``<case>_bodies/<level>.png`` for every matched body with reference keypoints: the body's own
mid-sagittal plane (the reference keypoints' frame, :class:`~VertebralFractureLib.quality.checks.BodyFrame`; a 4 mm
slab sampled from the original voxels, :func:`~VertebralFractureLib.spine.straighten.body_plane`, window -100..500 HU)
with the reference points in green and the reported ones in red, each labelled, and the per-point offsets along the
body's posterior / superior / lateral axes in the title: where a keypoint error comes from, body by body.

``--source CASE=PATH`` analyses PATH in place of the case's stored image and scores it against the same reference:
another rendering of the same scan in the same patient coordinates, such as the DICOM series the stored crop of the
chest CT was cut from (``../shared/data/real/cptac_chest``: 512 x 512 x 99, 0.56 mm pixels, the whole field of view;
not in the repository, so not a default).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _fmt(value: Optional[float], pattern: str = "{:.1f}") -> str:
    return "-" if value is None else pattern.format(value)


def overview(path: Path, reference, result, score, out: Path) -> None:
    """Mid-sagittal (along the reference centre line) and coronal views with both point sets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import read_image, to_canonical

    image = to_canonical(read_image(path))
    array = sitk.GetArrayFromImage(image).astype(np.float32)
    origin, spacing = np.asarray(image.GetOrigin()), np.asarray(image.GetSpacing())
    size_k, size_j, size_i = array.shape
    ref_points = np.array([v.centroid for v in reference.vertebrae]).reshape(-1, 3)
    x_mid = float(np.median(ref_points[:, 0])) if len(ref_points) else origin[0] + spacing[0] * size_i / 2
    y_mid = float(np.median(ref_points[:, 1])) if len(ref_points) else origin[1] + spacing[1] * size_j / 2
    z = origin[2] + spacing[2] * np.arange(size_k)
    if len(ref_points) > 1:
        order = np.argsort(ref_points[:, 2])
        xs = np.interp(z, ref_points[order, 2], ref_points[order, 0])
        ys = np.interp(z, ref_points[order, 2], ref_points[order, 1])
    else:
        xs, ys = np.full(size_k, x_mid), np.full(size_k, y_mid)
    sagittal = np.empty((size_k, size_j), np.float32)
    coronal = np.empty((size_k, size_i), np.float32)
    for k in range(size_k):
        i = int(np.clip(round((xs[k] - origin[0]) / spacing[0]), 1, size_i - 2))
        j = int(np.clip(round((ys[k] - origin[1]) / spacing[1]), 1, size_j - 2))
        sagittal[k] = array[k, :, i - 1:i + 2].mean(axis=1)
        coronal[k] = array[k, j - 1:j + 2, :].mean(axis=0)
    ext_sag = (origin[1] - spacing[1] / 2, origin[1] + spacing[1] * (size_j - 0.5), z[0] - spacing[2] / 2,
               z[-1] + spacing[2] / 2)
    ext_cor = (origin[0] - spacing[0] / 2, origin[0] + spacing[0] * (size_i - 0.5), ext_sag[2], ext_sag[3])
    fig, axes = plt.subplots(1, 2, figsize=(14, 9))
    axes[0].imshow(sagittal, cmap="gray", vmin=-200, vmax=1000, origin="lower", extent=ext_sag)
    axes[1].imshow(coronal, cmap="gray", vmin=-200, vmax=1000, origin="lower", extent=ext_cor)
    for v in reference.vertebrae:
        style = "o" if v.in_view == "full" else "s"
        axes[0].plot(v.centroid[1], v.centroid[2], style, color="lime", mfc="none", ms=9)
        axes[0].text(v.centroid[1] - 6, v.centroid[2], v.label, color="lime", ha="right", va="center", fontsize=8)
        axes[1].plot(v.centroid[0], v.centroid[2], style, color="lime", mfc="none", ms=9)
        axes[1].text(v.centroid[0] - 8, v.centroid[2], v.label, color="lime", ha="right", va="center", fontsize=8)
        if v.keypoints is not None:
            axes[0].plot(v.keypoints[:, 1], v.keypoints[:, 2], "+", color="lime", ms=6)
    for v, m in zip(result.vertebrae if result is not None else [], score.matches if score is not None else []):
        colour = "red" if m.status == "assessed" else "orange"
        grade = "" if m.grade is None else f" g{m.grade}"
        tag = f"{v.label}{grade}" + (" OUT" if m.outside else "")
        axes[0].plot(v.centroid[1], v.centroid[2], "x", color=colour, ms=8)
        axes[0].text(v.centroid[1] + 6, v.centroid[2], tag, color=colour, va="center", fontsize=8)
        axes[0].plot(v.keypoints[:, 1], v.keypoints[:, 2], ".", color=colour, ms=3)
        axes[1].plot(v.centroid[0], v.centroid[2], "x", color=colour, ms=8)
        axes[1].text(v.centroid[0] + 8, v.centroid[2], tag, color=colour, va="center", fontsize=8)
    for region in reference.no_spine_regions:
        for axis, (a, b) in ((axes[0], (1, 2)), (axes[1], (0, 2))):
            axis.add_patch(plt.Circle((region.centre[a], region.centre[b]), region.radius_mm, color="cyan",
                                      fill=False, ls="--", lw=0.8))
    axes[0].set_title("curved mid-sagittal (y: anterior left, posterior right)")
    axes[1].set_title("curved coronal (x: patient right left, patient left right)")
    summary = "no result" if score is None else (
        f"found {score.found}/{score.n_reference}, missed {len(score.missed)}, outside {score.outside}, "
        f"levels {_fmt(score.level_accuracy and 100 * score.level_accuracy, '{:.0f}%')}, "
        f"false grade>=2 {len(score.false_grade)}")
    fig.suptitle(f"{reference.case}: reference green (circle full, square partial), reported red "
                 f"(orange = not assessed)\n{summary}", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


#: Half side (mm) of a body's picture, its lateral slab (mm) and the window (HU).
BODY_HALF_MM = 30.0
BODY_SLAB_MM = (-2.0, -1.0, 0.0, 1.0, 2.0)
BODY_WINDOW_HU = (-100.0, 500.0)
KEYPOINT_SHORT_NAMES = ("AS", "AI", "MS", "MI", "PS", "PI")


def body_figures(path: Path, reference, result, score, folder: Path) -> list:
    """One PNG per matched body with reference keypoints (module doc, ``--bodies``); returns the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from VertebralFractureLib.io.images import read_image
    from VertebralFractureLib.quality.checks import BodyFrame
    from VertebralFractureLib.spine.straighten import body_plane

    by_label = {v.label: v for v in reference.vertebrae if v.keypoints is not None}
    pairs = [(v, m, by_label[m.reference]) for v, m in zip(result.vertebrae, score.matches)
             if m.reference in by_label and v.keypoints is not None]
    if not pairs:
        return []
    image = read_image(path)
    folder.mkdir(parents=True, exist_ok=True)
    step = 0.25
    axis = np.arange(-BODY_HALF_MM, BODY_HALF_MM + step / 2, step)
    written = []
    for vertebra, match, ref in pairs:
        frame = BodyFrame.from_keypoints(ref.keypoints)
        plane = body_plane(image, frame.centre, frame.p, frame.s, axis, axis, lateral=BODY_SLAB_MM)
        reported = np.asarray(vertebra.keypoints, dtype=float).reshape(6, 3)
        offsets = reported - ref.keypoints
        fig, ax = plt.subplots(figsize=(7, 7.6))
        ax.imshow(plane, cmap="gray", vmin=BODY_WINDOW_HU[0], vmax=BODY_WINDOW_HU[1], origin="lower",
                  extent=(axis[0] - step / 2, axis[-1] + step / 2, axis[0] - step / 2, axis[-1] + step / 2))
        for points, colour in ((ref.keypoints, "lime"), (reported, "red")):
            relative = points - frame.centre
            u, t = relative @ frame.p, relative @ frame.s
            ax.plot(u, t, "o", mfc="none", mec=colour, ms=8)
            for name, x, y in zip(KEYPOINT_SHORT_NAMES, u, t):
                ax.text(x + 0.7, y + 0.7, name, color=colour, fontsize=7)
        lines = "  ".join(f"{n} {d @ frame.p:+.1f}/{d @ frame.s:+.1f}/{d @ frame.l:+.1f}"
                          for n, d in zip(KEYPOINT_SHORT_NAMES, offsets))
        error = _fmt(match.keypoint_error_mm)
        ax.set_title(f"{reference.case} {ref.label}: reported {vertebra.label}, {match.status}, keypoint error {error} "
                     f"mm\nreported - reference, posterior/superior/lateral mm:\n{lines}", fontsize=7)
        ax.set_xlabel("mm along the body's posterior axis (anterior left)")
        ax.set_ylabel("mm along its superior axis")
        out = folder / f"{ref.label}.png"
        fig.tight_layout()
        fig.savefig(out, dpi=80)
        plt.close(fig)
        written.append(out)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "out" / "bench_real")
    parser.add_argument("--cases", nargs="*", help="case names (default: every reference case)")
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--bodies", action="store_true",
                        help="also one picture per matched body with reference keypoints (<case>_bodies/<level>.png)")
    parser.add_argument("--source", action="append", default=[], metavar="CASE=PATH",
                        help="analyse PATH (a file or DICOM folder in the case's patient coordinates) for CASE")
    args = parser.parse_args(argv)
    sources = {}
    for item in args.source:
        case, _, path = item.partition("=")
        if not path:
            parser.error(f"--source {item}: expected CASE=PATH")
        sources[case] = Path(path)

    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.training.real.reference import CaseScore, list_cases, load_case, score_case, summarise

    args.out.mkdir(parents=True, exist_ok=True)
    scores = []
    header = (f"{'case':18s} {'ref':>3s} {'rep':>3s} {'found':>5s} {'miss':>4s} {'out':>3s} {'outG':>4s} "
              f"{'level%':>6s} {'kp mm':>6s} {'kp2D':>5s} {'h mm':>5s} {'falseG':>6s} {'cl%':>4s} {'sec':>5s}  "
              "not assessed")
    print(header)
    for case in args.cases or list_cases():
        reference = load_case(case)
        image_path = sources.get(case, reference.image_path)
        start = time.perf_counter()
        result = None
        try:
            analysis = analyze(image_path)
            result = analysis.result
            line = None if analysis.centreline is None else analysis.centreline.points
            score = score_case(result, reference, centreline=line)
        except Exception as error:  # noqa: BLE001 - a failing case is a benchmark result, not a crash
            score = CaseScore(case=case, n_reference=len(reference.vertebrae),
                              n_full=sum(v.in_view == "full" for v in reference.vertebrae),
                              missed=[v.label for v in reference.vertebrae if v.in_view == "full"],
                              error=f"{type(error).__name__}: {error}")
        score.seconds = time.perf_counter() - start
        scores.append(score)
        levels = score.level_accuracy
        print(f"{case:18s} {score.n_reference:3d} {score.n_reported:3d} {score.found:5d} {len(score.missed):4d} "
              f"{score.outside:3d} {score.outside_graded:4d} {_fmt(levels and 100 * levels, '{:.0f}'):>6s} "
              f"{_fmt(score.keypoint_error_mm):>6s} {_fmt(score.keypoint_error_sagittal_mm):>5s} "
              f"{_fmt(score.height_error_mm):>5s} {len(score.false_grade):6d} "
              f"{_fmt(score.centreline_fraction and 100 * score.centreline_fraction, '{:.0f}'):>4s} "
              f"{score.seconds:5.1f}  {score.not_assessed or ''}{'  ERROR ' + score.error if score.error else ''}")
        (args.out / f"{case}.json").write_text(json.dumps(score.to_dict(), indent=1))
        if not args.no_figures:
            overview(image_path, reference, result, score if result is not None else None, args.out / f"{case}.png")
        if args.bodies and result is not None:
            body_figures(image_path, reference, result, score, args.out / f"{case}_bodies")
    total = summarise(scores)
    levels = total["level_accuracy"]
    print(f"{'TOTAL':18s} {total['n_reference']:3d} {total['n_reported']:3d} {total['found']:5d} "
          f"{total['missed']:4d} {total['outside']:3d} {total['outside_graded']:4d} "
          f"{_fmt(levels and 100 * levels, '{:.0f}'):>6s} {_fmt(total['keypoint_error_mm']):>6s} "
          f"{_fmt(total['keypoint_error_sagittal_mm']):>5s} "
          f"{_fmt(total['height_error_mm']):>5s} {total['false_grade']:6d} "
          f"{_fmt(total['centreline_fraction'] and 100 * total['centreline_fraction'], '{:.0f}'):>4s} "
          f"{total['seconds']:5.1f}  "
          f"{total['not_assessed'] or ''}")
    certain = total["found"] - total["level_uncertain"]
    print(f"levels of the {total['found']} matched vertebrae: named with certainty {certain}, right "
          f"{certain - total['level_wrong_certain']}, wrong {total['level_wrong_certain']}; marked uncertain (nothing "
          f"to count from in view) {total['level_uncertain']}")
    print(f"verdict 'review' on matched vertebrae that look normal: {total['false_review']} of "
          f"{total['looks_normal_matched']}")
    print(f"keypoint / height error over every matched body with reference keypoints, not assessed included "
          f"({total['keypoints_all_n']} bodies; the columns above count the assessed ones only): "
          f"{_fmt(total['keypoint_error_all_mm'])} / {_fmt(total['height_error_all_mm'])} mm (keypoints in the "
          f"reference body's mid-sagittal plane, the plane Pisov et al. 2020 annotate: "
          f"{_fmt(total['keypoint_error_sagittal_all_mm'])} mm)")
    distinct = total["distinct_bodies"]
    print(f"keypoint / height error of the assessed bodies, each body once ({distinct['bodies']} bodies; the cardiac "
          f"crops repeat bodies of the chest CT, and the TOTAL row counts every case's): "
          f"{_fmt(distinct['keypoint_error_mm'])} / {_fmt(distinct['height_error_mm'])} mm")
    for refused in total["errors"]:  # its bodies count as missed; the centre-line column covers the analysed cases
        print(f"refused or failed: {refused}")
    if total["mask_g_errors"]:
        print("|G error| against the mask-derived reference keypoints (every matched body, withheld included): "
              + ", ".join(f"{key} {error:.3f}" for key, error in total["mask_g_errors"].items()))
    (args.out / "summary.json").write_text(json.dumps({"total": total, "cases": [s.to_dict() for s in scores]},
                                                      indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
