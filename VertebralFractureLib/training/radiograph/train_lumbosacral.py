r"""Train the lumbosacral classifier (:mod:`VertebralFractureLib.radiograph.lumbosacral`): is this body L5?

Data: generated spines T11/T12-L5 with the curved sacrum and the pelvic contents (``SynthParams.sacrum = "curved"``:
sacral slope and kyphosis, rudimentary discs, bowel loops with fluid, gas or oral contrast, rectum, bladder; half of
them with the hospital profile), each read

* as sagittal CT slices (:data:`SLICES` per spine: through the middle of the column and up to
  :data:`PARAMEDIAN_MM` to either side, as real reformats are not always mid-sagittal), and
* as its lateral radiograph (the DRR: iliac wings over the sacrum), once as generated and once with a clinical look
  (:func:`.appearance.clinical_appearance`).

Every picture is windowed whole (:func:`~VertebralFractureLib.radiograph.gate2d.body_window`), as the analysis
windows what it is given. Candidates are the true bodies T11-L5 and S1 (the generator's S1 keypoints) moved as a
detector's box would be (:func:`.train_fracture.jittered`), and a box on the sacrum one level below S1; the label is
1 for L5 only. Real examples: the bodies of the real reference CTs (:data:`REAL_CASES`), each read on its own
mid-sagittal plane as the fracture classifier's real negatives are (the sample CT's L5 is the one real positive),
and the real sagittal CT slices of ``covid_sagittal`` whose levels are certain from a sacrum in view
(:func:`real_sagittal_patches`: the annotated bodies, S1, a box below it, boxes off the bodies and the detector's own
boxes). Trained on generated spines alone, the classifier named the true L5 of 2 of those 9 real slices; the real
slices also measure the anchor (``benchmarks/bench_sagittal.py``), so their figure is taken patient by patient
from networks trained without that patient (``--leave-out``, ``bench_sagittal.py --folds``), never from the
shipped network, which has seen them all.

Training: :func:`.train_fracture.train_network` (balanced batches, Adam, one-cycle), here without the superior <->
inferior flip (the sacrum is below L5, never above it).

Command (the shipped weights; figures in README.md)::

    python -m VertebralFractureLib.training.radiograph.train_lumbosacral --first-seed 300000 --count 300 \
        --out VertebralFractureLib/weights/radiograph_lumbosacral.pt --manifest

(``vertebral-fracture train radiograph-lumbosacral`` is the same.) The networks that measure the real slices,
one per patient, written where ``bench_sagittal.py --folds DIR`` reads them::

    for p in A027284 A046441 A058062 A062055 A067967; do
        python -m VertebralFractureLib.training.radiograph.train_lumbosacral --first-seed 300000 --count 300 \
            --leave-out $p --held-out 0 --out DIR/$p.pt; done
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

#: Sagittal CT slices per generated spine, and how far from the column's middle the off-centre ones lie (mm).
SLICES = 2
PARAMEDIAN_MM = 4.0
#: Real reference CTs whose bodies are real examples (the sample CT holds L5 with the sacrum below it).
REAL_CASES = ("sample_ct", "cptac_chest", "tptbox_L3")
#: Patches per real body, and how often the real patches are repeated in the training set.
REAL_DRAWS = 24
REAL_REPEATS = 4
#: Half side (mm) of the picture cut around a real body: the patch reaches 2.7 body depths below it.
REAL_PICTURE_HALF_MM = 150.0
#: The real sagittal slices (:func:`real_sagittal_patches`): patches per candidate box (L5 drawn
#: :data:`REAL_SAGITTAL_L5_DRAWS` times as often) and how often they are repeated in the training set.
REAL_SAGITTAL_DRAWS = 12
REAL_SAGITTAL_L5_DRAWS = 4
REAL_SAGITTAL_REPEATS = 3
#: A detector box within this distance (mm) of an annotated body is that body; one farther from every body and more
#: than half a body depth from L5 is a box off the bodies (label 0); the rest are left out.
REAL_SAGITTAL_MATCH_MM = 8.0
#: Range of the stretch along the body's axis (people, levels and the generator differ in height-to-depth).
STRETCH = (0.85, 1.2)


def _stretch(rng: np.random.Generator) -> float:
    return float(np.exp(rng.uniform(np.log(STRETCH[0]), np.log(STRETCH[1]))))


def spine_case(seed: int):
    """One generated training spine (module doc)."""
    from ...synth import generate_case

    rng = np.random.default_rng([seed, 11])
    realism = "hospital" if rng.random() < 0.5 else "v1"
    return generate_case(seed, "abdomen", sacrum="curved", bottom_level="L5", realism=realism,
                         fov_xy_mm=(320.0, 320.0), radiograph_sid_mm=None)


#: Boxes off every body, per picture: a detector also draws boxes in front of the sacrum, across a disc or on the
#: pelvis, and the real slices showed one scored as L5; each is the L5 box moved by at least
#: :data:`OFF_BODY_DEPTHS` body depths from L5's and S1's centres.
OFF_BODY_BOXES = 3
OFF_BODY_DEPTHS = 0.35


def sagittal_slice(case, offset_mm: float = 0.0):
    """A generated case's CT read as a sagittal slice, as a reformat sent as a picture would be.

    Args:
        case: a :class:`~VertebralFractureLib.synth.SyntheticCase` written in LPS (identity direction).
        offset_mm: left-right distance of the slice from the middle of the column in view.

    Returns:
        ``(plane, pixel_mm, to_pixels)``: the HU plane (rows superior -> inferior, columns anterior -> posterior),
        its ``(column, row)`` pixel size in mm, and a function taking LPS points (n, 3) to ``[column, row]`` on it.
    """
    import SimpleITK as sitk

    volume = sitk.GetArrayViewFromImage(case.ct)  # (z, y, x)
    spacing, origin = case.ct.GetSpacing(), case.ct.GetOrigin()
    middle = float(np.mean([v.centroid[0] for v in case.truth.vertebrae]))
    index = int(round((middle + offset_mm - origin[0]) / spacing[0]))
    rows = volume.shape[0]

    def to_pixels(points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return np.stack([(points[:, 1] - origin[1]) / spacing[1], rows - 1 - (points[:, 2] - origin[2]) / spacing[2]],
                        axis=1)

    return np.ascontiguousarray(volume[::-1, :, index]), (spacing[1], spacing[2]), to_pixels


def candidates(levels: Sequence[str], keypoints: Sequence[np.ndarray], s1: Optional[np.ndarray],
               rng: Optional[np.random.Generator] = None) -> List[Tuple[np.ndarray, int]]:
    """``(keypoints, label)`` of the candidate bodies of one picture (label 1 for L5 only).

    The true bodies, S1 and a box one level below it, and with ``rng`` :data:`OFF_BODY_BOXES` boxes off every body
    around the lumbosacral junction.
    """
    from ...radiograph.fracture import body_axes

    out = [(np.asarray(k, dtype=np.float64), int(level == "L5")) for level, k in zip(levels, keypoints)]
    if s1 is None:
        return out
    s1 = np.asarray(s1, dtype=np.float64)
    out.append((s1, 0))
    down = s1[1::2].mean(axis=0) - s1[0::2].mean(axis=0)
    out.append((s1 + 1.3 * down, 0))
    l5 = next((np.asarray(k, dtype=np.float64) for level, k in zip(levels, keypoints) if level == "L5"), None)
    if rng is None or l5 is None:
        return out
    centre, axis, back, depth = body_axes(l5)
    bodies = [centre, s1.mean(axis=0)]
    added = 0
    for _ in range(50):
        if added == OFF_BODY_BOXES:
            break
        shift = (rng.uniform(-0.6, 2.2) * axis + rng.uniform(-1.0, 1.0) * back) * depth
        if min(np.linalg.norm(centre + shift - b) for b in bodies) < OFF_BODY_DEPTHS * depth:
            continue
        out.append((l5 + shift, 0))
        added += 1
    return out


def _patches(windowed: np.ndarray, items: Sequence[Tuple[np.ndarray, int]], rng: np.random.Generator, size: int,
             draws: int = 1, l5_draws: int = 1) -> Tuple[list, list]:
    """``draws`` jittered, stretched patches per candidate (``draws * l5_draws`` for L5), as lists."""
    from ...radiograph.lumbosacral import cut_patch
    from .train_fracture import jittered

    patches, labels = [], []
    for points, label in items:
        for _ in range(draws * (l5_draws if label else 1)):
            try:
                patches.append(cut_patch(windowed, jittered(points, rng), size, _stretch(rng)))
                labels.append(label)
            except ValueError:
                continue
    return patches, labels


def seed_patches(task: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(patches, labels, picture)`` of one generated spine: its sagittal slices and its radiograph (module doc).

    ``picture`` numbers the picture each patch was cut from (slices first, then the radiograph's looks).
    """
    from ...radiograph.gate2d import body_window
    from ...radiograph.lumbosacral import PATCH_SIZE
    from .appearance import clinical_appearance

    seed, training_seed = task
    rng = np.random.default_rng([training_seed, seed])
    case = spine_case(seed)
    patches, labels, picture = [], [], []
    truth = case.truth.vertebrae
    levels = [v.label for v in truth]
    s1_lps = case.truth.input["synthetic"].get("s1_keypoints_lps")
    for k in range(SLICES):
        plane, _, to_slice = sagittal_slice(case, 0.0 if k == 0 else rng.uniform(-PARAMEDIAN_MM, PARAMEDIAN_MM))
        windowed, _ = body_window(plane.astype(np.float32))
        items = candidates(levels, [to_slice(v.keypoints) for v in truth], None if s1_lps is None else to_slice(s1_lps),
                           rng)
        more = _patches(windowed, items, rng, PATCH_SIZE)
        patches += more[0]
        labels += more[1]
        picture += [k] * len(more[1])
    if case.radiograph is not None:
        film = case.radiograph_truth
        items = candidates([v.label for v in film.vertebrae], [v.keypoints for v in film.vertebrae],
                           film.input.get("s1_keypoints_px"), rng)
        pixel_mm = float(film.pixel_spacing[0])
        for look in range(2):
            image = case.radiograph if look == 0 else clinical_appearance(case.radiograph, pixel_mm, rng)
            windowed, _ = body_window(image)
            more = _patches(windowed, items, rng, PATCH_SIZE)
            patches += more[0]
            labels += more[1]
            picture += [SLICES + look] * len(more[1])
    return (np.asarray(patches, np.float32).reshape(-1, PATCH_SIZE, PATCH_SIZE), np.asarray(labels, np.int64),
            np.asarray(picture, np.int64))


def build_set(seeds: Sequence[int], training_seed: int, processes: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`seed_patches` of every seed, in ``processes`` worker processes."""
    from multiprocessing import get_context

    tasks = [(int(s), training_seed) for s in seeds]
    if processes <= 1:
        parts = [seed_patches(t) for t in tasks]
    else:
        with get_context("spawn").Pool(processes) as pool:
            parts = pool.map(seed_patches, tasks, chunksize=4)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def real_patches(seed: int, draws: int = REAL_DRAWS) -> Tuple[np.ndarray, np.ndarray]:
    """Patches of the real reference CTs' bodies on their own mid-sagittal planes (label 1 for L5).

    Every body wholly in view (:func:`.train_fracture.real_body_pictures`, pictures :data:`REAL_PICTURE_HALF_MM`
    around it: the patch reaches 2.7 body depths below the body), with the reference's level.
    """
    from ...radiograph.lumbosacral import PATCH_SIZE, cut_patch
    from .train_fracture import jittered, real_body_pictures

    rng = np.random.default_rng([seed, 3])
    patches, labels = [], []
    for _, reference, windowed, points in real_body_pictures(REAL_CASES, REAL_PICTURE_HALF_MM):
        for _ in range(draws // 3):
            try:
                patches.append(cut_patch(windowed, jittered(points, rng), PATCH_SIZE, _stretch(rng)))
                labels.append(int(reference.label == "L5"))
            except ValueError:
                continue
    return np.asarray(patches, np.float32).reshape(-1, PATCH_SIZE, PATCH_SIZE), np.asarray(labels, np.int64)


def sagittal_reference() -> dict:
    """The hand-made levels of the real sagittal slices (``Testing/Data/real/reference/covid_sagittal.json``)."""
    import json

    from ..real.reference import reference_dir

    return json.loads((reference_dir() / "covid_sagittal.json").read_text())


def slice_patient(entry: dict) -> str:
    """The patient of a ``covid_sagittal`` reference entry (the file name up to the first ``_``)."""
    return Path(entry["image"]).name.split("_")[0]


def anchored_slices(leave_out: Sequence[str] = ()) -> List[dict]:
    """The real sagittal slices whose levels are certain from a sacrum in view, but those of ``leave_out``."""
    return [entry for entry in sagittal_reference()["images"]
            if entry["levels_certain"] and "sacrum" in entry["anchors_in_view"]
            and slice_patient(entry) not in leave_out]


def slice_boxes(entry: dict, seed: int) -> Tuple[np.ndarray, List[Tuple[np.ndarray, int]]]:
    """One real slice's windowed picture (facing left, as the analysis reads it) and its labelled candidate boxes.

    Candidates (:func:`candidates`): the annotated bodies with keypoints, S1 (L5's keypoints moved to S1's
    annotated centre), a box below it and boxes off the bodies; and every box the radiograph analysis reports,
    labelled by the annotated body within :data:`REAL_SAGITTAL_MATCH_MM` (analysed with the sacral test alone, so
    the boxes do not depend on the classifier being trained).
    """
    from ...radiograph.fracture import body_axes
    from ...radiograph.gate2d import body_window
    from .real_slices import RealSlice

    # analysed with the sacral test alone: which boxes reach the result must not depend on the weights being trained
    picture = RealSlice.read(entry)
    result, facing_left = picture.result, picture.facing_left
    annotated = [v for v in entry["vertebrae"] if v.get("keypoints")]
    windowed, _ = body_window(picture.image)
    by_label = {v["label"]: v for v in entry["vertebrae"]}
    l5, s1 = by_label.get("L5"), by_label.get("S1")
    s1_box = None
    if l5 is not None and l5.get("keypoints") and s1 is not None:
        s1_box = facing_left(np.asarray(l5["keypoints"]) + np.subtract(s1["centroid"], l5["centroid"]))
    items = candidates([v["label"] for v in annotated], [facing_left(v["keypoints"]) for v in annotated], s1_box,
                       np.random.default_rng([seed, 17]))
    pixel_mm = float(entry["spacing_mm"][0])
    centres = facing_left([v["centroid"] for v in entry["vertebrae"]])
    l5_box = None if l5 is None or not l5.get("keypoints") else facing_left(l5["keypoints"])
    for vertebra in result.vertebrae:
        box = facing_left(vertebra.keypoints)
        distance = np.linalg.norm(centres - box.mean(axis=0), axis=1) * pixel_mm
        nearest = int(np.argmin(distance))
        if distance[nearest] < REAL_SAGITTAL_MATCH_MM:
            items.append((box, int(entry["vertebrae"][nearest]["label"] == "L5")))
        elif l5_box is None or (np.linalg.norm(l5_box.mean(axis=0) - box.mean(axis=0))
                                > 0.5 * body_axes(l5_box)[3]):
            items.append((box, 0))
    return windowed, items


def real_sagittal_patches(seed: int, leave_out: Sequence[str] = ()) -> Tuple[np.ndarray, np.ndarray]:
    """Patches of the real sagittal slices of :func:`anchored_slices` (label 1 for L5; module doc).

    Args:
        seed: the training seed (jitter and stretch of the boxes).
        leave_out: patients (``covid_sagittal`` file names up to the first ``_``) whose slices are left out.
    """
    from ...radiograph.lumbosacral import PATCH_SIZE

    rng = np.random.default_rng([seed, 5])
    patches, labels = [], []
    for entry in anchored_slices(leave_out):
        windowed, items = slice_boxes(entry, seed)
        more = _patches(windowed, items, rng, PATCH_SIZE, REAL_SAGITTAL_DRAWS, REAL_SAGITTAL_L5_DRAWS)
        patches += more[0]
        labels += more[1]
    return np.asarray(patches, np.float32).reshape(-1, PATCH_SIZE, PATCH_SIZE), np.asarray(labels, np.int64)


def augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What the generator does not vary enough: noise, blur and a bent grey scale of the image channel."""
    from scipy.ndimage import gaussian_filter

    out = batch.copy()
    for item in out:
        image = item[0]
        sigma = rng.uniform(0.0, 1.5)
        if sigma > 0.3:
            image = gaussian_filter(image, sigma)
        low, high = np.percentile(image, (1, 99))
        unit = np.clip((image - low) / max(high - low, 1e-3), 0.0, 1.0)
        image = low + (high - low) * unit ** np.exp(rng.normal(0.0, 0.3))
        item[0] = image + rng.normal(0.0, rng.uniform(0.0, 0.25), image.shape)
    return out


def cached_set(seeds: Sequence[int], training_seed: int, cache: Optional[Path], processes: int
               ) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`build_set`, read from / written to ``cache`` (an ``.npz``) when given.

    The patches are rounded to float16 either way, so a run from the cache trains on exactly what a fresh run does.
    """
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            return data["patches"].astype(np.float32), data["labels"]
    patches, labels = build_set(seeds, training_seed, processes)
    patches = patches.astype(np.float16)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(cache, patches=patches, labels=labels)
    return patches.astype(np.float32), labels


def probabilities(model, patches: np.ndarray) -> np.ndarray:
    """The network's L5 probability of each patch."""
    import torch

    from ...radiograph.lumbosacral import model_input

    with torch.no_grad():
        return model.fracture_probability(torch.from_numpy(np.stack([model_input(p) for p in patches]))).numpy()


def picture_accuracy(seeds: Sequence[int], model, training_seed: int = 7) -> dict:
    """Per held-out picture, is the highest-scoring candidate L5, and does it reach the anchor's threshold?"""
    from ...radiograph.lumbosacral import ANCHOR_PROBABILITY
    from .train_fracture import auc

    right = wrong = none = 0
    all_scores, all_labels = [], []
    for seed in seeds:
        patches, labels, pictures = seed_patches((int(seed), training_seed))
        scores = probabilities(model, patches)
        all_scores.append(scores)
        all_labels.append(labels)
        for number in np.unique(pictures):
            s, lab = scores[pictures == number], labels[pictures == number]
            best = int(np.argmax(s))
            if s[best] < ANCHOR_PROBABILITY:
                none += 1
            elif lab[best] == 1:
                right += 1
            else:
                wrong += 1
    scores, labels = np.concatenate(all_scores), np.concatenate(all_labels)
    return {"pictures": right + wrong + none, "L5 right": right, "wrong body": wrong, "no anchor": none,
            "AUC": auc(scores, labels)}


#: ``vertebral-fracture train radiograph-lumbosacral`` (:mod:`VertebralFractureLib.cli.train`).
MODEL_NAME = "radiograph-lumbosacral"
TRAIN_HELP = "train the lumbosacral classifier (is this body L5?) of the radiograph levels"


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the command (module doc)."""
    from .train_fracture import add_network_arguments

    parser.add_argument("--first-seed", type=int, default=300000)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--held-out-seed", type=int, default=390000)
    parser.add_argument("--held-out", type=int, default=30, help="held-out spines scored after training")
    parser.add_argument("--cache", type=Path, help="npz of the generated patches (written, or read when present)")
    add_network_arguments(parser)
    parser.add_argument("--no-real", dest="real", action="store_false",
                        help="leave out the real reference CTs and the real sagittal slices")
    parser.add_argument("--leave-out", action="append", default=[], metavar="PATIENT",
                        help="leave this patient's real sagittal slices out (repeatable; e.g. A062055)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", action="store_true", help="register the weights in the folder's manifest")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.radiograph.train_lumbosacral`` (the same as the ``train`` command)."""
    parser = add_train_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    return train_main(parser.parse_args(argv))


def train_main(args: argparse.Namespace) -> int:
    """Build the patches, train ``--members`` networks, score held-out spines, write the weights."""
    import torch

    from ...grading.network import GradingEnsemble
    from ...radiograph.lumbosacral import model_input, save_model
    from .train_fracture import train_network

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.count)
    patches, labels = cached_set(seeds, args.seed, args.cache, args.threads)
    print(f"{args.count} generated spines: {len(labels)} patches, {int(labels.sum())} L5 "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    if args.real:
        real, real_labels = real_patches(args.seed)
        patches = np.concatenate([patches] + [real] * REAL_REPEATS)
        labels = np.concatenate([labels] + [real_labels] * REAL_REPEATS)
        print(f"  + {len(real_labels)} real patches ({int(real_labels.sum())} L5) x {REAL_REPEATS} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        real, real_labels = real_sagittal_patches(args.seed, args.leave_out)
        patches = np.concatenate([patches] + [real] * REAL_SAGITTAL_REPEATS)
        labels = np.concatenate([labels] + [real_labels] * REAL_SAGITTAL_REPEATS)
        print(f"  + {len(real_labels)} real sagittal slice patches ({int(real_labels.sum())} L5; left out: "
              f"{', '.join(args.leave_out) or 'none'}) x {REAL_SAGITTAL_REPEATS} "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    members = [train_network(patches, labels, args.steps, args.seed + k, width=args.width, lr=args.lr,
                             model_input=model_input, flip=False, augment=augment,
                             log=lambda text: print(text, flush=True))
               for k in range(args.members)]
    model = members[0]
    if len(members) > 1:
        model = GradingEnsemble(len(members), width=args.width, patch_size=patches.shape[-1])
        for target, trained in zip(model.members, members):
            target.load_state_dict(trained.state_dict())
        model.eval()
    held = range(args.held_out_seed, args.held_out_seed + args.held_out)
    scores = picture_accuracy(held, model) if args.held_out else {}
    print("held-out: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in scores.items()))
    meta = {"spines": f"{args.first_seed}-{args.first_seed + args.count - 1}", "patches": int(len(labels)),
            "positives": int(labels.sum()), "steps": args.steps, "members": args.members, "lr": args.lr,
            "seed": args.seed, "real": args.real, "left_out": list(args.leave_out), "held_out": scores,
            "seconds": round(time.perf_counter() - started, 1)}
    save_model(model, args.out, meta=meta, manifest=args.manifest,
               description="lumbosacral classifier: is this body L5 (GradingNet on lateral-view patches)")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
