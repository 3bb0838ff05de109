"""Radiograph analysis on the 12 real sagittal CT images that include the lumbar spine (covid_sagittal).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_sagittal.py [--reference Testing/Data/real/reference/covid_sagittal.json]
                                                          [--only NAME ...] [--all] [--as-png [--jpeg Q]]
                                                          [--window LOW HIGH] [--folds DIR] [--dicom DIR]

Runs ``analyze_radiograph`` (the path ``vertebral-fracture analyze`` takes for a 2D image) on each
stored 2D NIfTI image (HU, pixel spacing from the file) and compares with the hand-made level
reference (``Testing/Data/real/reference/README_sagittal.md``). A found vertebra is matched to the
nearest annotated centroid within 12 mm. Prints per image: vertebrae found (matched / annotated),
the levels it reported next to the reference levels, level accuracy on the annotated vertebrae
with certain levels (per vertebra: ``level_certain``), the sacral anchor (given; right when its L5 lies
within 12 mm of the annotated L5) with the reason it was or was not found, and the number of false
grade >= 2 (graded >= 2 where the reference does not
mark the body as collapsed, or graded >= 2 with no annotated body within 12 mm), and how many
detections the 2D gate's column-line rules took out (``overlap``: left out of the column; ``in_line``:
behind the line of the bodies, not assessed; :mod:`VertebralFractureLib.radiograph.gate2d`), with how
many of those lay on an annotated body (a body lost by the rule).
``--mirror`` runs each image mirrored left-right (the patient facing right, annotations mirrored with it);
``--frame`` puts each image in a flat frame at its maximum (a collimator's unexposed shadow); ``--out DIR`` draws
each analysed image with the reference and the reported vertebrae into ``DIR/<image>.png`` (:func:`render`).
Where the reference has keypoints, a last line ``KEYPOINTS`` gives the keypoint, height and G errors (mm) of the
assessed vertebrae matched to them, and the G error of every matched one (:func:`keypoint_scores`).
``--as-png`` (with ``--jpeg Q``: as a JPEG of quality Q; ``--window LOW HIGH``: exported with that window in HU,
-300 1200 by default) runs each image as an 8-bit PNG export without a pixel size instead (the detector's
working scale found by the scale search, heights in pixels; matching still uses the stored
spacing, the export has the same pixels).
``--folds DIR``: the shipped lumbosacral classifier (the second reader of the sacral anchor) was trained with the
slices whose levels are certain from a sacrum in view; with ``--folds`` each slice of a patient that has
``DIR/<patient>.pt`` (``<patient>`` = the file name up to the first ``_``) is analysed with that network, trained
without the patient (the command is in :mod:`VertebralFractureLib.training.radiograph.train_lumbosacral`), so the
figure is a held-out one; the other slices use the shipped network, which has not seen them.
``--dicom DIR`` analyses the original DICOM files (``../shared/data/real/covid_sagittal/<image>.dcm``, the same pixel
grid) instead of the NIfTI copies, which were made with the padding outside the reconstructed field clipped to -1024
HU and without the header: the files as a user loads them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: ``--frame``: width (pixels) of the flat bright frame put around each slice.
FRAME_PX = 60


def _match(found: list, annotated: list, spacing: tuple) -> dict:
    """Map index of each found vertebra to the index of the nearest annotated one within 12 mm (the matching of the
    sagittal reference's blind readings, :data:`VertebralFractureLib.training.real.junction_reading.MATCH_MM`)."""
    from VertebralFractureLib.training.real.junction_reading import matched_body

    pairs = {i: matched_body(centre, annotated, spacing) for i, centre in enumerate(found)}
    return {i: j for i, j in pairs.items() if j is not None}


#: The export's window (HU) unless ``--window`` gives another: a bone window.
EXPORT_WINDOW = (-300.0, 1200.0)


def export_8bit(source: Path, target: Path, jpeg_quality: int | None = None,
                window: tuple[float, float] = EXPORT_WINDOW) -> Path:
    """The HU slice as an 8-bit PNG (or JPEG at ``jpeg_quality``) with no pixel size, windowed ``window`` (HU; a bone
    window -300 ... 1200 HU unless given), like a web export."""
    import numpy as np
    import SimpleITK as sitk
    from PIL import Image

    hu = sitk.GetArrayFromImage(sitk.ReadImage(str(source))).astype(np.float32).squeeze()
    low, high = window
    picture = Image.fromarray(np.clip((hu - low) / (high - low) * 255.0, 0, 255).astype(np.uint8))
    if jpeg_quality is None:
        picture.save(target)
    else:
        picture.save(target.with_suffix(".jpg"), quality=int(jpeg_quality))
        target = target.with_suffix(".jpg")
    return target


def mirror_image(source: Path, target: Path) -> Path:
    """The slice mirrored left-right (the patient facing right), same spacing; the annotations are mirrored too."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(source))
    mirrored = sitk.GetImageFromArray(np.ascontiguousarray(sitk.GetArrayFromImage(image)[..., ::-1]))
    mirrored.SetSpacing(image.GetSpacing())
    sitk.WriteImage(mirrored, str(target))
    return target


def framed_image(source: Path, target: Path, pad: int = FRAME_PX) -> Path:
    """The slice in a flat frame at its maximum, ``pad`` pixels wide (a collimator's unexposed shadow)."""
    import numpy as np
    import SimpleITK as sitk

    image = sitk.ReadImage(str(source))
    array = sitk.GetArrayFromImage(image)
    framed = sitk.GetImageFromArray(np.pad(array, [(0, 0)] * (array.ndim - 2) + [(pad, pad), (pad, pad)],
                                           constant_values=array.max()))
    framed.SetSpacing(image.GetSpacing())
    sitk.WriteImage(framed, str(target))
    return target


def _moved(vertebra: dict, move) -> dict:
    """``vertebra`` with its centroid and keypoints (when annotated) moved by ``move([column, row])``."""
    keypoints = vertebra.get("keypoints")
    return dict(vertebra, centroid=move(vertebra["centroid"]),
                keypoints=None if keypoints is None else [move(k) for k in keypoints])


def shifted_entry(entry: dict, dx: float, dy: float) -> dict:
    """``entry`` with every annotated centroid and keypoint moved by (dx, dy) pixels."""
    return dict(entry, vertebrae=[_moved(v, lambda p: [p[0] + dx, p[1] + dy]) for v in entry["vertebrae"]])


def mirrored_entry(entry: dict, width: int) -> dict:
    """``entry`` with every annotated centroid and keypoint mirrored onto a picture ``width`` pixels wide."""
    return dict(entry, vertebrae=[_moved(v, lambda p: [(width - 1) - p[0], p[1]]) for v in entry["vertebrae"]])


def keypoint_scores(vertebrae: list, pairs: dict, annotated: list, spacing: tuple) -> dict:
    """Keypoint, height and G errors of the found vertebrae matched to an annotated body with keypoints.

    Lengths in mm (pixels times the stored spacing; an 8-bit export has the same pixels). ``kp``, ``height`` and
    ``g`` hold, per assessed vertebra, the mean distance of the six points, the mean absolute error of the three
    heights and the absolute error of G (as ``VertebralFractureLib.training.real.reference.score_case`` counts them
    on CT: withheld vertebrae carry no measurement), ``signed`` the signed errors of h_a, h_m, h_p (found minus
    reference); ``g_all`` the G error of every matched one, withheld included; ``depth_ratio`` the reported body's
    depth over the annotated one (every matched one: the lateral-view classifiers scale their patches by it).
    """
    import numpy as np

    from VertebralFractureLib.genant import genant_index, heights
    from VertebralFractureLib.radiograph.fracture import body_axes

    scale = np.asarray(spacing, dtype=float)
    out = {"kp": [], "height": [], "g": [], "g_all": [], "signed": [], "depth_ratio": []}
    for i, j in pairs.items():
        truth = annotated[j].get("keypoints")
        if truth is None:
            continue
        found = np.asarray(vertebrae[i].keypoints, dtype=float).reshape(6, 2) * scale
        truth = np.asarray(truth, dtype=float).reshape(6, 2) * scale
        g_error = abs(genant_index(heights(found)) - genant_index(heights(truth)))
        out["g_all"].append(g_error)
        out["depth_ratio"].append(float(body_axes(found)[3] / body_axes(truth)[3]))
        if vertebrae[i].status == "assessed":
            out["kp"].append(float(np.linalg.norm(found - truth, axis=1).mean()))
            out["height"].append(float(np.abs(heights(found) - heights(truth)).mean()))
            out["signed"].append((heights(found) - heights(truth)).tolist())
            out["g"].append(g_error)
    return out


def render(source: Path, entry: dict, result, score: dict, target: Path) -> None:
    """``target``: the analysed picture with the reference (green circles and levels) and what was reported
    (red: assessed, with its grade; orange: not assessed; keypoints as dots), the detections left out (grey x),
    the sacral anchor's L5 (cyan square) and a title with the image's figures."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from VertebralFractureLib.radiograph.reading import read_radiograph

    picture = np.asarray(read_radiograph(source)[0], dtype=np.float32).squeeze()
    # a CT slice in HU in a body window (the bone and the soft tissue both readable); an export by its percentiles
    low, high = (-250.0, 1000.0) if float(picture.min()) < -500.0 else np.percentile(picture, [1.0, 99.5])
    height, width = picture.shape
    figure, axis = plt.subplots(figsize=(8.0, 8.0 * height / max(width, 1)))
    axis.imshow(picture, cmap="gray", vmin=low, vmax=high)
    for vertebra in entry["vertebrae"]:
        column, row = vertebra["centroid"]
        axis.plot(column, row, "o", mfc="none", mec="lime", ms=9)
        axis.text(column - 18, row, str(vertebra["label"] or "?"), color="lime", fontsize=7, ha="right", va="center")
    for vertebra in result.vertebrae:
        colour = "red" if vertebra.status == "assessed" else "orange"
        points = np.asarray(vertebra.keypoints, dtype=float).reshape(-1, 2)
        axis.plot(points[:, 0], points[:, 1], ".", color=colour, ms=3)
        grade = f" g{vertebra.measure.grade}" if vertebra.status == "assessed" and vertebra.measure is not None else ""
        axis.text(vertebra.centroid[0] + 18, vertebra.centroid[1], f"{vertebra.label}{grade}", color=colour,
                  fontsize=7, va="center")
    for rejected in result.input.get("rejected_detections", []):
        axis.plot(*rejected["centre"], "x", color="0.6", ms=6)
    levels = result.patient.get("levels", {})
    if levels.get("l5"):
        axis.plot(*levels["l5"], "s", mfc="none", mec="cyan", ms=14)
    accuracy = f"{score['correct']}/{score['scorable']}" if score["scorable"] else "n/a"
    axis.set_title(f"{target.stem}: reference green, reported red (orange = not assessed), left out grey x\n"
                   f"matched {score['matched']}/{score['annotated']}, levels {accuracy} "
                   f"({'certain' if score['certain'] else 'uncertain'}), anchor: "
                   f"{(score['anchor_reason'] or '-')[:90]}", fontsize=7)
    axis.axis("off")
    figure.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(figure)


def score_image(entry: dict, root: Path, as_png: Path | None = None, mirror: Path | None = None,
                frame: Path | None = None, jpeg_quality: int | None = None, out: Path | None = None,
                lumbosacral_model=None, dicom: Path | None = None,
                window: tuple[float, float] = EXPORT_WINDOW) -> dict:
    """Analyse one image (or its 8-bit export without pixel size, into folder ``as_png``; or mirrored, written
    into folder ``mirror``; or in a collimator-like bright frame, written into folder ``frame``) and score it;
    with ``out``, also draw it there (:func:`render`); ``lumbosacral_model``: the sacral anchor's classifier
    (default: the shipped one); ``dicom``: the folder of the original DICOM files, analysed instead of the stored
    NIfTI copies (same pixel grid; the header's orientation and the scanner's padding as the user's file has them)."""
    from VertebralFractureLib.radiograph.analyze import analyze_radiograph
    from VertebralFractureLib.radiograph.gate2d import REASONS
    from VertebralFractureLib.schema import SpineResult
    from VertebralFractureLib.validation import InputError

    source = root / entry["image"]
    if dicom is not None:
        source = dicom / (Path(entry["image"]).name[: -len(".nii.gz")] + ".dcm")
    if mirror is not None:
        import SimpleITK as sitk

        width = int(sitk.ReadImage(str(source)).GetSize()[0])
        source = mirror_image(source, mirror / Path(entry["image"]).name)
        entry = mirrored_entry(entry, width)
    if frame is not None:
        source = framed_image(source, frame / ("framed_" + Path(entry["image"]).name))
        entry = shifted_entry(entry, FRAME_PX, FRAME_PX)
    if as_png is not None:
        source = export_8bit(source, as_png / (Path(entry["image"]).name[: -len(".nii.gz")] + ".png"), jpeg_quality,
                             window)
    try:
        result = analyze_radiograph(str(source), lumbosacral_model=lumbosacral_model).result
        message = None
    except InputError as error:  # "no vertebra found" is an answer here
        result, message = SpineResult(frame="pixel"), str(error)
    levels = result.patient.get("levels", {"certain": True})
    certain = bool(levels.get("certain", True))
    found = [(float(v.centroid[0]), float(v.centroid[1])) for v in result.vertebrae]
    labels = [v.label for v in result.vertebrae]
    # a level counts as certain where the image's levels are and the vertebra's own count is (sacral anchor)
    sure = [certain and bool(v.extra.get("level_certain", certain)) for v in result.vertebrae]
    grades = [v.measure.grade if (v.measure is not None and v.status == "assessed") else None
              for v in result.vertebrae]
    annotated = entry["vertebrae"]
    pairs = _match(found, annotated, tuple(entry["spacing_mm"]))
    correct = sum(1 for i, j in pairs.items()
                  if sure[i] and entry["levels_certain"] and labels[i] == annotated[j]["label"])
    wrong = sum(1 for i, j in pairs.items()
                if sure[i] and entry["levels_certain"] and labels[i] != annotated[j]["label"])
    # the sacral anchor: given, and right when its L5 lies within 12 mm of the annotated L5
    anchor_given = levels.get("anchor") == "sacrum"
    l5 = [v for v in annotated if v["label"] == "L5"]
    anchor_right = bool(anchor_given and l5 and entry["levels_certain"] and _match(
        [tuple(levels["l5"])], l5, tuple(entry["spacing_mm"])))
    scorable = len(annotated) if entry["levels_certain"] else 0
    lumbar = [j for j, v in enumerate(annotated) if entry["levels_certain"] and str(v["label"])[0] in "LS"]
    lumbar_right = sum(1 for i, j in pairs.items() if j in lumbar and sure[i] and labels[i] == annotated[j]["label"])
    lumbar_found = sum(1 for j in pairs.values() if j in lumbar)
    # the measure: the lumbar vertebrae L1-L5 (S1 is the anchor, not a lumbar level)
    l1_l5 = [j for j in lumbar if str(annotated[j]["label"]).startswith("L")]
    l1_l5_right = sum(1 for i, j in pairs.items() if j in l1_l5 and sure[i] and labels[i] == annotated[j]["label"])
    false_grade = 0
    for i, grade in enumerate(grades):
        if grade is not None and grade >= 2:
            if i not in pairs or not annotated[pairs[i]]["looks_fractured"]:
                false_grade += 1
    # the column-line rules of the 2D gate: detections left out (overlap) or not assessed (in_line)
    rejected = result.input.get("rejected_detections", [])
    lined = [tuple(r["centre"]) for r in rejected if r["reason"] == REASONS["overlap"]]
    lined += [found[i] for i, v in enumerate(result.vertebrae) if v.status_reason == REASONS["in_line"]]
    lined_on_body = len(_match(lined, annotated, tuple(entry["spacing_mm"])))
    # the learned score on the annotated bodies that look normal (all of them here): its real false-positive rate
    normal = [i for i, j in pairs.items() if not annotated[j]["looks_fractured"]]
    classifier = [float(result.vertebrae[i].fracture_probability) for i in normal
                  if result.vertebrae[i].fracture_probability is not None]
    reviews = [result.vertebrae[i].label for i in normal if result.vertebrae[i].verdict()[0] == "review"]
    summary = {"correct": correct, "scorable": scorable, "matched": len(pairs), "annotated": len(annotated),
               "certain": certain, "anchor_reason": levels.get("reason")}
    if out is not None:
        render(source, entry, result, summary, out / (Path(entry["image"]).name[: -len(".nii.gz")] + ".png"))
    comparison = []
    for i, label in enumerate(labels):
        truth = annotated[pairs[i]]["label"] if i in pairs else "-"
        comparison.append(f"{label}={truth or '?'}" + (f"(g{grades[i]})" if grades[i] else ""))
    return {**keypoint_scores(list(result.vertebrae), pairs, annotated, tuple(entry["spacing_mm"])),
            "found": len(found), "matched": len(pairs), "annotated": len(annotated), "correct": correct,
            "scorable": scorable, "false_grade": false_grade, "comparison": comparison,
            "confident_wrong": wrong, "lumbar": len(lumbar), "lumbar_right": lumbar_right,
            "lumbar_found": lumbar_found, "l1_l5": len(l1_l5), "l1_l5_right": l1_l5_right,
            "anchors": int(anchor_given), "anchors_right": int(anchor_right),
            "anchor_reason": levels.get("reason"),
            "graded": sum(1 for g in grades if g is not None), "certain": certain, "message": message,
            "not_assessed": sum(1 for v in result.vertebrae if v.status != "assessed"),
            "line_rule": len(lined), "line_rule_on_body": lined_on_body, "classifier": classifier,
            "false_review": len(reviews), "normal_matched": len(normal)}


def main(argv: list[str] | None = None) -> int:
    """Print the per-image comparison and the totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", default="Testing/Data/real/reference/covid_sagittal.json")
    parser.add_argument("--only", nargs="*", default=None, help="image names (stems) to run")
    parser.add_argument("--all", action="store_true", help="also the 8 thoracic-only images")
    parser.add_argument("--as-png", action="store_true",
                        help="run each image as an 8-bit PNG export with no pixel size (heights in pixels)")
    parser.add_argument("--jpeg", type=int, default=None, metavar="QUALITY",
                        help="with --as-png: write the export as a JPEG of this quality (e.g. 70) instead")
    parser.add_argument("--window", type=float, nargs=2, default=EXPORT_WINDOW, metavar=("LOW", "HIGH"),
                        help="with --as-png: the export's window in HU (default -300 1200, a bone window; e.g. "
                             "-150 900 a trunk window, -160 240 a soft-tissue window)")
    parser.add_argument("--mirror", action="store_true",
                        help="run each image mirrored left-right (the patient facing right), annotations mirrored")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="draw each analysed image with the reference and the reported vertebrae into DIR")
    parser.add_argument("--frame", action="store_true",
                        help=f"put each image in a flat frame at its maximum, {FRAME_PX} px wide (collimator shadow)")
    parser.add_argument("--folds", default=None, metavar="DIR",
                        help="analyse each patient's slices with DIR/<patient>.pt, the lumbosacral classifier trained "
                             "without that patient (module doc)")
    parser.add_argument("--dicom", default=None, metavar="DIR",
                        help="analyse the original DICOM files in DIR (../shared/data/real/covid_sagittal) instead of "
                             "the stored NIfTI copies, as a user loads them: header orientation, scanner padding")
    args = parser.parse_args(argv)
    if args.dicom is not None and (args.as_png or args.mirror or args.frame):
        parser.error("--dicom analyses the DICOM files as they are: not with --as-png, --mirror or --frame")
    if tuple(args.window) != EXPORT_WINDOW and not args.as_png:
        parser.error("--window LOW HIGH windows the --as-png export: give --as-png too")
    if args.jpeg is not None and not args.as_png:
        parser.error("--jpeg QUALITY writes the --as-png export as a JPEG: give --as-png too")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="bench_sagittal_") as folder:  # the exported pictures go with it
        return _run(args, Path(folder) if (args.as_png or args.mirror or args.frame) else None)


def _run(args: argparse.Namespace, scratch: Path | None) -> int:
    """The benchmark proper; ``scratch`` holds the exported / mirrored / framed pictures (None: none needed)."""
    reference_path = Path(args.reference)
    reference = json.loads(reference_path.read_text())
    root = reference_path.resolve().parents[1]
    totals = {"found": 0, "matched": 0, "annotated": 0, "correct": 0, "scorable": 0, "false_grade": 0,
              "confident_wrong": 0, "lumbar": 0, "lumbar_right": 0, "lumbar_found": 0,
              "l1_l5": 0, "l1_l5_right": 0, "anchors": 0, "anchors_right": 0,
              "graded": 0, "line_rule": 0, "line_rule_on_body": 0, "false_review": 0, "normal_matched": 0}
    from VertebralFractureLib.training.radiograph.train_lumbosacral import slice_patient

    classifier: list = []
    errors: dict = {"kp": [], "height": [], "g": [], "g_all": [], "signed": [], "depth_ratio": []}
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    for entry in reference["images"]:
        name = Path(entry["image"]).name[: -len(".nii.gz")]
        if not (args.all or entry["lumbar_in_view"]) or (args.only and name not in args.only):
            continue
        fold = Path(args.folds) / (slice_patient(entry) + ".pt") if args.folds else None
        try:
            model = None
            if fold is not None and fold.is_file():
                from VertebralFractureLib.radiograph.lumbosacral import load_model

                model = load_model(fold)
            score = score_image(entry, root, scratch if args.as_png else None, scratch if args.mirror else None,
                                scratch if args.frame else None, args.jpeg, out, model,
                                Path(args.dicom) if args.dicom else None, tuple(args.window))
        except Exception as error:  # noqa: BLE001 - a failing image is a result here
            print(f"{name}: analysis failed: {type(error).__name__}: {error}")
            continue
        for key in totals:
            totals[key] += score[key]
        for key in errors:
            errors[key] += score[key]
        classifier += score["classifier"]
        accuracy = f"{score['correct']}/{score['scorable']}" if score["scorable"] else "n/a (levels uncertain)"
        print(f"{name}: found {score['found']} (matched {score['matched']} of {score['annotated']} annotated, "
              f"{score['not_assessed']} not assessed), level accuracy {accuracy}, "
              f"false grade>=2: {score['false_grade']}, graded {score['graded']}, "
              f"levels {'certain' if score['certain'] else 'uncertain'}, column-line rule {score['line_rule']} "
              f"({score['line_rule_on_body']} on an annotated body)")
        anchor = "sacrum (" + ("right" if score["anchors_right"] else "WRONG or unscored") + ")" if score["anchors"] \
            else "none"
        print(f"    anchor: {anchor}: {score['anchor_reason']}"
              + (f" [classifier trained without this patient: {fold.name}]" if fold is not None and fold.is_file()
                 else ""))
        if score["message"]:
            print(f"    no vertebra: {score['message']}")
        print(f"    reported=reference: {' '.join(score['comparison'])}")
    if totals["scorable"]:
        print(f"TOTAL: found {totals['found']}, matched {totals['matched']}/{totals['annotated']}, level accuracy "
              f"{totals['correct']}/{totals['scorable']} = {totals['correct'] / totals['scorable']:.2f}, "
              f"false grade>=2: {totals['false_grade']}, graded {totals['graded']}, confident wrong levels "
              f"{totals['confident_wrong']}, lumbar L1-S1 right {totals['lumbar_right']}/{totals['lumbar']} "
              f"({totals['lumbar_found']} of them found; L1-L5 right {totals['l1_l5_right']}/{totals['l1_l5']}), "
              f"sacral anchors {totals['anchors']} given, "
              f"{totals['anchors_right']} right, "
              f"column-line rule {totals['line_rule']} ({totals['line_rule_on_body']} on an annotated body)")
    if classifier:
        import numpy as np

        values = np.asarray(classifier)
        print(f"LEARNED SCORE on the matched bodies that look normal ({len(values)}): lateral-view patch classifier "
              f">= 0.5 on {int((values >= 0.5).sum())} ({(values >= 0.5).mean():.3f}), median {np.median(values):.2f}, "
              f"max {values.max():.2f}; verdict 'review' on {totals['false_review']} of {totals['normal_matched']}")
    if errors["g_all"]:
        import numpy as np

        def mean(values: list) -> str:
            return f"{np.mean(values):.2f}" if values else "-"

        print(f"KEYPOINTS (annotated bodies found): assessed {len(errors['kp'])}: keypoint error {mean(errors['kp'])} "
              f"mm, height error {mean(errors['height'])} mm, |G error| {mean(errors['g'])}; "
              f"every matched one ({len(errors['g_all'])}, not assessed included): |G error| {mean(errors['g_all'])}; "
              "mean signed height error h_a / h_m / h_p (mm): "
              + (" / ".join(f"{v:+.1f}" for v in np.mean(errors["signed"], axis=0)) if errors["signed"] else "-")
              + "; reported depth over annotated depth, 5th / 50th / 95th percentile: "
              + " / ".join(f"{v:.2f}" for v in np.percentile(errors["depth_ratio"], [5, 50, 95])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
