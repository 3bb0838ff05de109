r"""Train the lateral-view fracture classifier (:mod:`VertebralFractureLib.radiograph.fracture`).

Data: generated long-column DRRs (:mod:`.columns`, fracture prevalence 0.4, grades 2-3 weighted up), each drawn
:data:`LOOKS` times: once as the generator draws it and the others with a random clinical look (:mod:`.appearance`:
scatter, heel, processing, collimation, text, grid, noise, 8-bit JPEG). Every vertebra entirely in view gives a
patch cut from the :func:`~VertebralFractureLib.radiograph.gate2d.body_window` image at its true keypoints moved as
the detector moves them (:func:`jittered`); the label is 1 for a true G <= 0.75 (moderate or severe, the issue's
"moderate" and Husseini et al. 2020's grade 2-3) and 0 for G > 0.8 (grade 0); mild bodies are left out, as
Husseini et al. 2020, §1 leave grade 1 out. The 2D path also reads sagittal CT slices sent as pictures (the real
slices of ``covid_sagittal`` are such), so the same spines' CTs are read as sagittal slices too, one through each
body (:func:`slice_patches`; ``--no-slices`` leaves them out). Real negatives: the normal-looking bodies of the real
reference CTs (:data:`REAL_NEGATIVE_CASES`), each read on its own mid-sagittal plane (:func:`real_negative_patches`;
``--no-real-negatives``); the real sagittal slices of other patients then measure the false-positive rate.

Training: binary cross-entropy on the two-node head of :class:`~VertebralFractureLib.grading.network.GradingNet`,
classes balanced in every batch, Adam, flips superior <-> inferior and small intensity changes; ``--members`` networks
from different seeds are averaged (:class:`~VertebralFractureLib.grading.network.GradingEnsemble`). The held-out
columns (:func:`evaluate`) are never trained on; the real sagittal slices (``covid_sagittal``) are not used at all
here (they decide whether the score may enter the verdict: ``benchmarks/bench_sagittal.py``).

Command (the shipped weights; README.md gives its figures; ``vertebral-fracture train radiograph-fracture`` is the
same)::

    python -m VertebralFractureLib.training.radiograph.train_fracture --columns COLS --first-seed 100 --count 400 \
        --members 3 --out VertebralFractureLib/weights/radiograph_fracture.pt --manifest
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

#: Each column drawn this many times: once as generated, the others with a random clinical look.
LOOKS = 3
#: True G at or below which a body is a positive (moderate or severe), above which it is a negative.
POSITIVE_G = 0.75
NEGATIVE_G = 0.8
#: Detector-like movement of the true keypoints (fractions of the body depth; degrees; scale factor).
JITTER_SHIFT = 0.05
JITTER_DEGREES = 4.0
JITTER_SCALE = 0.08
#: Range of the stretch along the body's axis (:func:`~VertebralFractureLib.radiograph.fracture.cut_patch`), drawn
#: log-uniformly: real thoracic bodies are 0.68-0.72 of their depth high where the generator's are 0.75-0.98
#: (T4-T10, reference keypoints against 60 generated columns), and the first network, trained without it, gave 22 of
#: 116 real normal bodies of the sagittal slices a score >= 0.5, most of them thoracic.
STRETCH = (0.8, 1.25)
#: Fracture prevalence and grade weights (1, 2, 3) of the training columns.
FRACTURE_PREVALENCE = 0.4
GRADE_WEIGHTS = (0.2, 0.45, 0.35)


def jittered(keypoints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The six keypoints moved, turned and scaled about their centre as a detector's would be (module doc)."""
    from ...radiograph.fracture import body_axes

    points = np.asarray(keypoints, dtype=np.float64)
    centre, _, _, depth = body_axes(points)
    angle = np.radians(rng.normal(0.0, JITTER_DEGREES))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    scale = 1.0 + rng.uniform(-JITTER_SCALE, JITTER_SCALE)
    shift = rng.normal(0.0, JITTER_SHIFT * depth, size=2)
    return centre + shift + scale * (points - centre) @ rotation.T


def _stretch(rng: np.random.Generator) -> float:
    return float(np.exp(rng.uniform(np.log(STRETCH[0]), np.log(STRETCH[1]))))


def true_g(keypoints: np.ndarray, pixel_mm: float) -> Optional[float]:
    """Genant index of true 2D keypoints, or None when they give no valid heights."""
    from ...genant import GenantError, genant_index, heights

    try:
        return float(genant_index(heights(np.asarray(keypoints, dtype=np.float64) * pixel_mm)))
    except GenantError:
        return None


def label_of(g: Optional[float]) -> Optional[int]:
    """1 for a moderate or severe body, 0 for a normal one, None (left out) for a mild one or no G."""
    if g is None:
        return None
    return 1 if g <= POSITIVE_G else 0 if g > NEGATIVE_G else None


def column_patches(column, rng: np.random.Generator, looks: int = LOOKS, size: Optional[int] = None,
                   jitter: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(patches (n, S, S), labels (n,), true G (n,))`` of one generated column, ``looks`` drawings of it.

    Each drawing cuts the column into its two overlapping views (:func:`.views.cut_view_pair`, as the held-out
    evaluation does) and windows each view on its own (:func:`~VertebralFractureLib.radiograph.gate2d.body_window`),
    as the analysis windows the picture it is given: a thoracic view's lungs set a different window than a lumbar
    view's abdomen.
    """
    from ...radiograph.fracture import PATCH_SIZE
    from ...radiograph.gate2d import body_window
    from .appearance import clinical_appearance
    from .views import cut_view_pair

    size = size or PATCH_SIZE
    items = []
    for look in range(looks):
        for view in cut_view_pair(column, rng):
            image = view.image if look == 0 else clinical_appearance(view.image, view.pixel_mm, rng)
            windowed, _ = body_window(image)
            items += [_labelled_patch(windowed, points, view.pixel_mm, rng, size, jitter) for points in view.keypoints]
    return _stacked(items, size)


def _labelled_patch(windowed: np.ndarray, points: np.ndarray, pixel_mm: float, rng: np.random.Generator, size: int,
                    jitter: bool):
    """``(patch, label, true G)`` of one body, or None (a mild body, no valid heights, degenerate keypoints)."""
    from ...radiograph.fracture import cut_patch

    label = label_of(g := true_g(points, pixel_mm))
    if label is None:
        return None
    try:
        patch = cut_patch(windowed, jittered(points, rng) if jitter else points, size,
                          stretch=_stretch(rng) if jitter else 1.0)
    except ValueError:
        return None
    return patch, label, g


def _stacked(items: list, size: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(patches, labels, true G)`` arrays of the :func:`_labelled_patch` results that are not None."""
    items = [item for item in items if item is not None]
    if not items:
        return np.zeros((0, size, size), np.float32), np.zeros(0, np.int64), np.zeros(0)
    return (np.stack([i[0] for i in items]), np.asarray([i[1] for i in items], np.int64),
            np.asarray([i[2] for i in items]))


def _drr_to_patient(case, column) -> Tuple[np.ndarray, np.ndarray]:
    """``(A, b)`` with ``[column, row] = [y, z] @ A + b``: the DRR's pixel grid in the CT's LPS y (AP) and z (SI).

    Fitted on the keypoints, which the generator gives both in 3D and projected onto the DRR (residual < 1 pixel).
    """
    by_level = {v.label: np.asarray(v.keypoints, dtype=np.float64) for v in case.truth.vertebrae
                if v.keypoints is not None}
    lps, pixels = [], []
    for level, points in zip(column.levels, column.keypoints):
        if level in by_level:
            lps.append(by_level[level][:, 1:3])
            pixels.append(points)
    lps, pixels = np.concatenate(lps), np.concatenate(pixels)
    coefficients = np.linalg.lstsq(np.c_[lps, np.ones(len(lps))], pixels, rcond=None)[0]
    return coefficients[:2], coefficients[2]


def slice_patches(case, column, rng: np.random.Generator, size: Optional[int] = None,
                  jitter: bool = True) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches of the same spine's CT read as sagittal slices, one through each body's centre (module doc).

    The 2D path also reads sagittal CT slices (a reformat sent as a picture); on the DRRs alone the classifier gave
    real normal bodies of such slices high scores. The slice is sampled on the DRR's own pixel grid at the body's
    left-right position, so the column's 2D keypoints hold on it; it is windowed whole, as the analysis windows a
    picture.
    """
    from ...radiograph.fracture import PATCH_SIZE
    from ...radiograph.gate2d import body_window
    from ...spine.straighten import sample_image

    size = size or PATCH_SIZE
    transform, offset = _drr_to_patient(case, column)
    inverse = np.linalg.inv(transform)
    rows, cols = np.mgrid[0:column.image.shape[0], 0:column.image.shape[1]]
    yz = (np.stack([cols, rows], axis=-1).reshape(-1, 2) - offset) @ inverse
    centres = {v.label: np.asarray(v.centroid, dtype=np.float64) for v in case.truth.vertebrae}
    items = []
    for level, points in zip(column.levels, column.keypoints):
        if level not in centres or label_of(true_g(points, column.pixel_mm)) is None:
            continue
        lps = np.c_[np.full(len(yz), centres[level][0]), yz]
        windowed, _ = body_window(sample_image(case.ct, lps).reshape(column.image.shape))
        items.append(_labelled_patch(windowed, points, column.pixel_mm, rng, size, jitter))
    return _stacked(items, size)


#: Real CTs of the reference set (``Testing/Data/real/reference``) whose normal-looking bodies are real negatives, read
#: as sagittal slices through each body (:func:`real_negative_patches`). Not the real sagittal slices of
#: ``covid_sagittal``: those other patients decide whether the score may enter the verdict. The cardiac crops are
#: the chest CT's own bodies and are left out.
REAL_NEGATIVE_CASES = ("cptac_chest", "sample_ct", "tptbox_L3")
#: Patches drawn per real body (each moved, turned, scaled and stretched as a detector's box; plane 2 mm to either
#: side or on it).
REAL_NEGATIVE_DRAWS = 24
#: Times the real negative patches are repeated in the training set (about a tenth of the negatives: 19 bodies
#: against some 15 000 generated ones would otherwise hardly be seen).
REAL_NEGATIVE_REPEATS = 4
#: Half side (mm) of the sagittal picture cut around each real body (the analysis windows a whole picture).
REAL_PICTURE_HALF_MM = 100.0


def real_body_pictures(cases: Sequence[str], half_mm: float, found_filter=None, reference_filter=None):
    """Each real reference body read on its own mid-sagittal plane: ``(found, reference, windowed picture, points)``.

    The CT analysis (keypoints only) finds the bodies; those matched within 15 mm to a reference body wholly in view
    (and kept by the filters) are used. Each body's plane (its keypoints' frame,
    :class:`~VertebralFractureLib.quality.checks.BodyFrame`) is sampled from the CT's own voxels at 1 mm, ``half_mm``
    around the body, superior at the top and anterior on the left, 2 mm to either side of it and on it, and windowed
    whole; ``points`` are the body's keypoints ``[column, row]`` on that picture.
    """
    from ...pipeline import AnalysisOptions, analyze
    from ...quality.checks import BodyFrame
    from ...radiograph.gate2d import body_window
    from ...spine.straighten import body_plane
    from ..real.reference import _match, load_case

    axis = np.arange(-half_mm, half_mm, 1.0)
    for name in cases:
        reference = load_case(name)
        analysis = analyze(reference.image_path, AnalysisOptions(extra_stages=()))
        image = analysis.image  # the CT as read, in the LPS frame of the keypoints
        found = [v for v in analysis.result.vertebrae
                 if v.keypoints is not None and (found_filter is None or found_filter(v))]
        kept = [r for r in reference.vertebrae
                if r.in_view == "full" and (reference_filter is None or reference_filter(r))]
        if not found or not kept:
            continue
        pairs = _match(np.array([v.centroid for v in found]), np.array([r.centroid for r in kept]), 15.0)
        for i, j in pairs.items():
            frame = BodyFrame.from_keypoints(np.asarray(found[i].keypoints, dtype=float))
            columns = (frame.keypoints - frame.centre) @ frame.p - axis[0]
            rows = axis[-1] - (frame.keypoints - frame.centre) @ frame.s
            points = np.stack([columns, rows], axis=1)
            for lateral in (-2.0, 0.0, 2.0):
                picture = body_plane(image, frame.centre, frame.p, frame.s, axis, axis[::-1], lateral=(lateral,))
                windowed, _ = body_window(picture)
                yield found[i], kept[j], windowed, points


def real_negative_patches(seed: int, draws: int = REAL_NEGATIVE_DRAWS, size: Optional[int] = None
                          ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patches of the real reference CTs' normal-looking bodies, each read on its own mid-sagittal plane (label 0).

    The bodies at a thoracic or lumbar level that do not look fractured (:func:`real_body_pictures`, pictures
    :data:`REAL_PICTURE_HALF_MM` around each body). Returns ``(patches, labels, true G)`` with the measured G of the
    body (all labels 0).
    """
    from ...grading.regions import region_index
    from ...radiograph.fracture import PATCH_SIZE, cut_patch

    size = size or PATCH_SIZE
    rng = np.random.default_rng([seed, 2])
    patches, gs = [], []
    for found, _, windowed, points in real_body_pictures(REAL_NEGATIVE_CASES, REAL_PICTURE_HALF_MM,
                                                         lambda v: region_index(v.label) is not None,
                                                         lambda r: not r.looks_fractured):
        g = float(found.measure.G) if found.measure is not None else 1.0
        for _ in range(draws // 3):
            try:
                patches.append(cut_patch(windowed, jittered(points, rng), size, stretch=_stretch(rng)))
                gs.append(g)
            except ValueError:
                continue
    if not patches:
        return np.zeros((0, size, size), np.float32), np.zeros(0, np.int64), np.zeros(0)
    return np.stack(patches), np.zeros(len(patches), np.int64), np.asarray(gs)


def build_set(columns: Sequence, seed: int, looks: int = LOOKS, jitter: bool = True):
    """Patches, labels and true G of many columns (one generator per column, seeded from ``seed``)."""
    parts = [column_patches(c, np.random.default_rng([seed, int(c.seed)]), looks, jitter=jitter) for c in columns]
    return _joined(parts)


def _joined(parts):
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


def _seed_slices(task: Tuple[int, int]):
    """:func:`slice_patches` of one training seed (regenerates its case; for a process pool)."""
    from .columns import Column, column_case

    column_seed, seed = task
    case = column_case(column_seed, fracture_prevalence=FRACTURE_PREVALENCE, grade_weights=GRADE_WEIGHTS)
    column = Column.from_truth(case.radiograph, case.radiograph_truth, column_seed)
    return slice_patches(case, column, np.random.default_rng([seed, column_seed, 1]))


def build_slice_set(column_seeds: Sequence[int], seed: int, processes: int = 2):
    """:func:`slice_patches` of every training seed, in ``processes`` worker processes."""
    from multiprocessing import get_context

    tasks = [(int(s), seed) for s in column_seeds]
    if processes <= 1:
        return _joined([_seed_slices(t) for t in tasks])
    with get_context("spawn").Pool(processes) as pool:
        return _joined(pool.map(_seed_slices, tasks, chunksize=8))


def _augment(batch: np.ndarray, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    """Flip superior <-> inferior (with ``flip``), and a random contrast and offset of the image channel."""
    out = batch.copy()
    if flip:
        flipped = rng.random(len(out)) < 0.5
        out[flipped] = out[flipped][:, :, ::-1, :]
    out[:, 0] = out[:, 0] * rng.uniform(0.8, 1.25, (len(out), 1, 1)) + rng.normal(0, 0.1, (len(out), 1, 1))
    return np.ascontiguousarray(out)


def train_network(patches: np.ndarray, labels: np.ndarray, steps: int, seed: int, *, width: float = 0.5,
                  batch: int = 64, lr: float = 1e-3, log=print, model_input=None, flip: bool = True, augment=None):
    """One :class:`GradingNet` trained by balanced binary cross-entropy (module doc).

    ``model_input`` turns a patch into the network's input (default: the fracture classifier's); ``flip`` lets the
    augmentation turn patches upside down (not for a question whose answer depends on what lies below); ``augment``
    ``(batch, rng) -> batch`` is applied after it.
    """
    import torch

    from ...grading.network import GradingNet
    from ...radiograph import fracture

    model_input = model_input or fracture.model_input
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = np.stack([model_input(p) for p in patches])
    model = GradingNet(width=width, patch_size=patches.shape[-1])
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    positive, negative = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    running = []
    for step in range(steps):
        chosen = np.concatenate([rng.choice(positive, batch // 2), rng.choice(negative, batch - batch // 2)])
        x = _augment(inputs[chosen], rng, flip)
        x = torch.from_numpy(np.ascontiguousarray(augment(x, rng) if augment is not None else x))
        y = torch.from_numpy(labels[chosen])
        loss = loss_fn(model(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        running.append(loss.item())
        if log and (step + 1) % 200 == 0:
            log(f"  step {step + 1}/{steps}: loss {np.mean(running[-200:]):.4f}")
    model.eval()
    return model


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a positive scores above a negative (ties count half)."""
    positive, negative = scores[labels == 1], scores[labels == 0]
    if not len(positive) or not len(negative):
        return float("nan")
    above = (positive[:, None] > negative[None]).sum() + 0.5 * (positive[:, None] == negative[None]).sum()
    return float(above / (len(positive) * len(negative)))


def evaluate(model, columns: Sequence, seed: int = 7) -> Dict[str, float]:
    """Patch-level scores on held-out columns (their true keypoints jittered, every look): AUC, rates at 0.5."""
    import torch

    from ...radiograph.fracture import model_input

    patches, labels, _ = build_set(columns, seed)
    with torch.no_grad():
        scores = model.fracture_probability(torch.from_numpy(np.stack([model_input(p) for p in patches]))).numpy()
    called = scores >= 0.5
    return {"patches": int(len(labels)), "positives": int(labels.sum()), "AUC": auc(scores, labels),
            "sensitivity@0.5": float(called[labels == 1].mean()),
            "specificity@0.5": float((~called[labels == 0]).mean())}


#: ``vertebral-fracture train radiograph-fracture`` (:mod:`VertebralFractureLib.cli.train`).
MODEL_NAME = "radiograph-fracture"
TRAIN_HELP = "train the lateral-view fracture classifier (patches after Husseini et al. 2020)"


def add_network_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of a lateral-view patch network's training (members, steps, width, rate, threads, seed)."""
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--width", type=float, default=0.5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of the command (module doc)."""
    parser.add_argument("--columns", required=True, help="cache folder of the training columns (filled if missing)")
    parser.add_argument("--first-seed", type=int, default=100)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--held-out", help="folder of held-out columns to evaluate on (e.g. bench_radiograph's)")
    add_network_arguments(parser)
    parser.add_argument("--no-slices", dest="slices", action="store_false",
                        help="DRRs only (no sagittal CT slices of the same spines)")
    parser.add_argument("--no-real-negatives", dest="real_negatives", action="store_false",
                        help="leave out the real reference CTs' normal bodies (REAL_NEGATIVE_CASES)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--manifest", action="store_true", help="register the weights in the folder's manifest")
    return parser


def train_main(args: argparse.Namespace) -> int:
    """Build the patches, train ``--members`` networks, score the held-out columns, write the weights."""
    import torch

    from ...grading.network import GradingEnsemble
    from ...radiograph.fracture import save_model
    from .columns import cached_columns, load_columns

    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.count)
    held_out = load_columns(args.held_out) if args.held_out else []
    if args.held_out and not held_out:  # said before the training, not after it
        raise ValueError(f"{args.held_out}: no held-out columns (column_*.npz) in this folder")
    columns = list(cached_columns(list(seeds), args.columns, fracture_prevalence=FRACTURE_PREVALENCE,
                                  grade_weights=GRADE_WEIGHTS))
    if not columns:
        raise ValueError(f"{args.columns}: no training column could be read or generated (seeds {args.first_seed}-"
                         f"{args.first_seed + args.count - 1})")
    patches, labels, _ = build_set(columns, args.seed)
    if not labels.any() or labels.all():
        raise ValueError(f"{args.columns}: the training columns need both normal and moderately fractured bodies "
                         f"({int(labels.sum())} of {len(labels)} fractured)")
    print(f"{len(columns)} columns, {len(labels)} DRR patches, {int(labels.sum())} moderate or severe "
          f"({time.perf_counter() - started:.0f} s)", flush=True)
    if args.slices:
        slices, slice_labels, _ = build_slice_set([c.seed for c in columns], args.seed, args.threads)
        patches, labels = np.concatenate([patches, slices]), np.concatenate([labels, slice_labels])
        print(f"  + {len(slice_labels)} CT-slice patches, {int(slice_labels.sum())} moderate or severe "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
    if args.real_negatives:
        real, real_labels, _ = real_negative_patches(args.seed)
        repeats = REAL_NEGATIVE_REPEATS
        patches = np.concatenate([patches] + [real] * repeats)
        labels = np.concatenate([labels] + [real_labels] * repeats)
        print(f"  + {len(real_labels)} real negative patches x {repeats} ({time.perf_counter() - started:.0f} s)",
              flush=True)
    members = []
    for k in range(args.members):
        print(f"member {k + 1}/{args.members}", flush=True)
        members.append(train_network(patches, labels, args.steps, args.seed + k, width=args.width, lr=args.lr,
                                     log=lambda text: print(text, flush=True)))
    model = members[0] if len(members) == 1 else GradingEnsemble(len(members), width=args.width,
                                                                 patch_size=patches.shape[-1])
    if len(members) > 1:
        for target, trained in zip(model.members, members):
            target.load_state_dict(trained.state_dict())
        model.eval()
    scores = evaluate(model, held_out) if held_out else {}
    if scores:
        print("held-out: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in scores.items()))
    meta = {"columns": f"{args.first_seed}-{args.first_seed + args.count - 1}", "patches": int(len(labels)),
            "positives": int(labels.sum()), "steps": args.steps, "members": args.members, "lr": args.lr,
            "seed": args.seed, "slices": args.slices, "real_negatives": args.real_negatives,
            "fracture_prevalence": FRACTURE_PREVALENCE,
            "grade_weights": list(GRADE_WEIGHTS),
            "held_out": scores, "seconds": round(time.perf_counter() - started, 1)}
    save_model(model, args.out, meta=meta, manifest=args.manifest,
               description="lateral-view fracture patch classifier (GradingNet, Husseini et al. 2020 patches)")
    print(f"wrote {args.out} ({time.perf_counter() - started:.0f} s)")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.radiograph.train_fracture`` (the same as the ``train`` command)."""
    parser = add_train_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    return train_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
