"""``vertebral-fracture evaluate keypoints``: Tables 1-2 of Pisov et al. 2020 and level accuracy on held-out cases.

For every case the CT is straightened (true centre-line by default, or the predicted one with
``--centreline predicted``), the detector runs on the mid-sagittal image, the keypoints go back to
LPS through the straightening and the Genant measures come from the schema. Reported:

* Table 1 layout: detection recall (all vertebrae and G <= 0.75) and precision (a detection
  matches a true vertebra when its centre lies inside the true keypoint box or IoU > 0.5);
  keypoint error and height error in mm, absolute error of G;
* Table 2 layout: ROC AUC (score 1 - predicted G), sensitivity and specificity for at least mild
  (G <= 0.8) and at least moderate (G <= 0.75) deformity, vertebra level (a missed vertebra counts
  as G = 1) and patient level (min G, Pisov et al. 2020, §5.1);
* level identification accuracy as in Gartland et al. 2025, §2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .sample import Sample

NAME = MODEL_NAME = "keypoints"
HELP = EVALUATE_HELP = ("vertebra detection, keypoints, Genant and level labels "
                        "(Pisov et al. 2020, Tables 1-2; Gartland et al. 2025)")
MILD, MODERATE = 0.8, 0.75
#: A detection this close (mm) to a visible but unannotated partial vertebra is not a false positive.
IGNORE_RADIUS_MM = 20.0


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Options of ``evaluate keypoints``."""
    parser.add_argument("--synth", type=int, default=0, help="number of held-out generated cases to generate")
    parser.add_argument("--seed-offset", type=int, default=100000, help="first held-out seed (disjoint from training)")
    parser.add_argument("--cache", default="runs/keypoints_eval_cache", help="folder of cached .npz samples")
    parser.add_argument("--case-dir", action="append", default=[],
                        help="folder of generated cases written by synth.write_case (repeatable)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N cases of each --case-dir")
    parser.add_argument("--pair", nargs=2, action="append", default=[], metavar=("CT", "ANNOTATION"))
    parser.add_argument("--weights", help="model weights (default: the shipped ones)")
    parser.add_argument("--centreline", choices=("true", "predicted"), default="true",
                        help="straighten on the true or the predicted centre-line (generated cases)")
    parser.add_argument("--json", help="write all figures to this JSON file")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--levels", choices=("3d", "2d"), default="3d",
                        help="level labels from the 3D cues of the straightened CT (levelnet) "
                             "or the 2D heatmaps (Gartland et al. 2025)")
    parser.add_argument("--no-refine", action="store_true", help="keep the network's keypoints (no end-plate snapping)")
    return parser


def evaluate_samples(
    model, samples: Sequence[Sample], log=None, profiles: Optional[Sequence] = None, refine: Optional[bool] = None
) -> Dict[str, Any]:
    """All figures for samples that carry their truth and curve (see :func:`.dataset.sample_from_ct`).

    ``profiles``: per sample a :class:`.levelfeatures.RowProfile` of its straightened CT (3D level
    cues, :mod:`.levelnet`) or None (2D level heatmaps); ``refine``: end-plate snapping
    (:mod:`.refine`; None: the model's default).
    """
    from ...genant import GenantError
    from ...keypoints.detector import detect_vertebrae
    from ...keypoints.result import result_from_detections
    from .data import spine_of, truth_of
    from .metrics import binary_metrics, level_identification, match_detections

    tp = fp = fn = tp_fractured = n_fractured = 0
    kp_err, kp_err_fractured, h_err, g_err = [], [], [], []
    vertebra_true, vertebra_pred, patient_true, patient_pred = [], [], [], []
    id_correct = id_total = 0
    seconds = []
    by_preset: Dict[str, List[int]] = {}
    for index, sample in enumerate(samples):
        started = time.time()
        profile = profiles[index] if profiles is not None else None
        detections = detect_vertebrae(sample.image, model=model, level_profile=profile, refine=refine)
        seconds.append(time.time() - started)
        spine = spine_of(sample)
        truth = truth_of(sample)
        predicted = result_from_detections(detections, spine)
        by_label = {v.label: v for v in predicted.vertebrae}
        true_g = []
        for level in sample.levels:
            measure = truth.vertebra(level).measure
            true_g.append(measure.G if measure is not None else 1.0)
        true_g = np.asarray(true_g)
        pairs = match_detections([d.keypoints for d in detections], [d.score for d in detections], sample.keypoints)
        matched = {t: p for p, t in pairs}
        tp += len(pairs)
        unmatched = [d for p, d in enumerate(detections) if p not in {q for q, _ in pairs}]
        if len(sample.ignore):  # detections of visible but unannotated (partial) vertebrae are no error
            unmatched = [
                d for d in unmatched if np.min(np.linalg.norm(sample.ignore - d.centre, axis=1)) > IGNORE_RADIUS_MM
            ]
        fp += len(unmatched)
        fn += len(sample.levels) - len(pairs)
        fractured = true_g <= MODERATE
        n_fractured += int(fractured.sum())
        tp_fractured += sum(1 for t in matched if fractured[t])
        for t, level in enumerate(sample.levels):
            g_pred = 1.0
            if t in matched:
                vertebra = by_label.get(detections[matched[t]].label)
                if vertebra is not None and vertebra.measure is not None:
                    true_v = truth.vertebra(level)
                    distance = float(np.linalg.norm(vertebra.keypoints - true_v.keypoints, axis=1).mean())
                    kp_err.append(distance)
                    if fractured[t]:
                        kp_err_fractured.append(distance)
                    if true_v.measure is not None:
                        h_err.extend(np.abs(np.subtract(vertebra.measure.heights, true_v.measure.heights)).tolist())
                        g_err.append(abs(vertebra.measure.G - true_v.measure.G))
                    g_pred = vertebra.measure.G
            vertebra_true.append(true_g[t])
            vertebra_pred.append(g_pred)
        if len(true_g):
            patient_true.append(float(true_g.min()))
            measured = [v.measure.G for v in predicted.vertebrae if v.measure is not None]
            patient_pred.append(float(min(measured, default=1.0)))
        correct, total = level_identification(
            sample.centroids, sample.levels, np.array([d.centre for d in detections]).reshape(-1, 2),
            [d.label for d in detections],
        )
        id_correct += correct
        id_total += total
        preset = str(truth.input.get("synthetic", {}).get("params", {}).get("preset", "other"))
        by_preset.setdefault(preset, [0, 0])
        by_preset[preset][0] += correct
        by_preset[preset][1] += total
        if log:
            log(f"{sample.name}: {len(detections)} detections, {len(pairs)}/{len(sample.levels)} matched, "
                f"levels {correct}/{total}")
    del GenantError
    figures: Dict[str, Any] = {
        "cases": len(samples),
        "true_vertebrae": tp + fn,
        "detections": tp + fp,
        "precision": tp / max(tp + fp, 1),
        "recall": tp / max(tp + fn, 1),
        "recall_moderate_plus": tp_fractured / n_fractured if n_fractured else None,
        "moderate_plus_vertebrae": n_fractured,
        "keypoint_error_mm": _stats(kp_err),
        "keypoint_error_moderate_plus_mm": _stats(kp_err_fractured),
        "height_error_mm": _stats(h_err),
        "genant_abs_error": _stats(g_err),
        "level_id_accuracy": id_correct / max(id_total, 1),
        "level_id_counts": [id_correct, id_total],
        "level_id_by_preset": {
            k: {"accuracy": c / max(t, 1), "counts": [c, t]} for k, (c, t) in sorted(by_preset.items())
        },
        "seconds_per_image": float(np.mean(seconds)) if seconds else None,
    }
    for name, threshold in (("mild", MILD), ("moderate", MODERATE)):
        figures[f"vertebra_{name}"] = binary_metrics(vertebra_true, vertebra_pred, threshold)
        figures[f"patient_{name}"] = binary_metrics(patient_true, patient_pred, threshold)
    return figures


def _stats(values: List[float]) -> Optional[Dict[str, float]]:
    if not values:
        return None
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std()), "median": float(np.median(values)),
            "n": int(len(values))}


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        return f"{value['mean']:.3f} ({value['std']:.3f})"
    return f"{value:.3f}"


def format_table(figures: Dict[str, Any]) -> str:
    """Pisov et al. 2020, Tables 1-2 layout (plus Gartland et al. 2025's level accuracy) as text."""
    lines = [
        f"Keypoint detector on {figures['cases']} cases, {figures['true_vertebrae']} true vertebrae, "
        f"{figures['detections']} detections",
        "",
        f"Table 1 layout       all vertebrae        G <= 0.75 (n={figures['moderate_plus_vertebrae']})",
        f"Recall               {_fmt(figures['recall']):<20} {_fmt(figures['recall_moderate_plus'])}",
        f"Precision            {_fmt(figures['precision']):<20} -",
        f"Keypoint error, mm   {_fmt(figures['keypoint_error_mm']):<20} "
        f"{_fmt(figures['keypoint_error_moderate_plus_mm'])}",
        f"Height error, mm     {_fmt(figures['height_error_mm'])}",
        f"|G error|            {_fmt(figures['genant_abs_error'])}",
        f"Level id. accuracy   {_fmt(figures['level_id_accuracy'])} "
        f"({figures['level_id_counts'][0]}/{figures['level_id_counts'][1]}, 004 definition)",
        "",
        "Table 2 layout       vertebra: AUC  spec   sens  (pos/neg)   patient: AUC  spec   sens  (pos/neg)",
    ]
    for name, label in (("mild", "Mild (G<=0.8)"), ("moderate", "Moderate (G<=0.75)")):
        v, p = figures[f"vertebra_{name}"], figures[f"patient_{name}"]
        lines.append(
            f"{label:<20} {_fmt(v['auc'])} {_fmt(v['specificity'])} {_fmt(v['sensitivity'])} "
            f"({v['positives']}/{v['negatives']})      {_fmt(p['auc'])} {_fmt(p['specificity'])} "
            f"{_fmt(p['sensitivity'])} ({p['positives']}/{p['negatives']})"
        )
    if figures.get("seconds_per_image") is not None:
        lines.append(f"\nDetector time per image: {figures['seconds_per_image']:.2f} s (CPU)")
    return "\n".join(lines)


def _samples(args: argparse.Namespace, profiles: Optional[List] = None) -> List[Sample]:
    from ...keypoints.levelfeatures import cached_profile
    from .data import AnnotatedCTDataset, case_folder_sample, generated_samples, sample_from_ct

    samples: List[Sample] = []
    for folder in args.case_dir:
        cases = sorted(p for p in Path(folder).glob("case_*") if (p / "truth.json").exists())
        for case in cases[: args.limit or None]:
            if args.centreline == "true":
                samples.append(case_folder_sample(case, perturb_mm=0.0, cache=args.cache))
                cache = Path(args.cache + "_levelprof")
            else:
                samples.append(_predicted_centreline_sample(case, Path(args.cache + "_predicted")))
                cache = Path(args.cache + "_predicted_levelprof")
            if profiles is not None:
                target = cache / f"{case.parent.name}_{case.name}.npz"
                profiles.append(cached_profile(case / "ct.nii.gz", samples[-1].meta["curve"], target))
    seeds = range(args.seed_offset, args.seed_offset + args.synth)
    if args.centreline == "true":
        samples.extend(generated_samples(seeds, perturb_mm=0.0, cache=args.cache, **_held_out_params()))
    else:
        from ...spine.centreline import find_centreline
        from ...synth import generate_case

        for seed in seeds:
            case = generate_case(seed, **_held_out_params())
            curve = find_centreline(case.ct)
            sample, _ = sample_from_ct(case.ct, case.truth, np.asarray(curve.points), name=f"synth-{seed}")
            samples.append(sample)
    if profiles is not None:
        profiles.extend([None] * (len(samples) - len(profiles)))  # generated on the fly: 2D heatmaps
    if args.pair:
        for (ct_path, _), sample in zip(args.pair, AnnotatedCTDataset(args.pair, perturb_mm=0.0)):
            samples.append(sample)
            if profiles is not None:
                profiles.append(cached_profile(ct_path, sample.meta["curve"], None))
    return samples


def _predicted_centreline_sample(folder: Path, cache: Path) -> Sample:
    """A written case straightened on the centre-line that the shipped centre-line net predicts."""
    from ...io.images import read_image
    from ...spine.centreline import find_centreline
    from ...synth import read_truth
    from .data import sample_from_ct

    path = cache / f"{folder.parent.name}_{folder.name}.npz"
    if path.exists():
        return Sample.load(path)
    ct = read_image(folder / "ct.nii.gz")
    truth, _ = read_truth(folder)
    curve = np.asarray(find_centreline(ct).points)
    sample, _ = sample_from_ct(ct, truth, curve, name=folder.name)
    sample.save(path)
    return sample


def _held_out_params() -> Dict[str, Any]:
    """Generator options of the held-out set (the generator's presets vary curvature and view)."""
    return {}


def evaluate_main(args: argparse.Namespace) -> int:
    """Run ``evaluate keypoints``: print the table, optionally write JSON."""
    import torch

    from ...keypoints.model import load_model

    torch.set_num_threads(max(1, min(args.threads, 2)))
    model = load_model(args.weights)
    profiles: Optional[List] = [] if args.levels == "3d" else None
    samples = _samples(args, profiles)
    if not samples:
        raise ValueError("no evaluation cases: give --synth N or --pair CT ANNOTATION")
    figures = evaluate_samples(model, samples, log=lambda text: print(text, flush=True), profiles=profiles,
                               refine=False if args.no_refine else None)
    figures["levels"] = args.levels
    figures["refine"] = not args.no_refine
    figures["weights_sha256"] = model.sha256
    figures["centreline"] = args.centreline
    print(format_table(figures))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.keypoints.evaluate``."""
    parser = add_evaluate_arguments(argparse.ArgumentParser(description=HELP))
    return evaluate_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
