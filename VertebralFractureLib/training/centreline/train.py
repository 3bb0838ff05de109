"""``vertebral-fracture train centreline``: train the centre-line network (Pisov et al. 2020, sections 3.1, 5.1).

Training follows Pisov et al. 2020, §5.1 where the CPU allows: Adam (beta 0.9, 0.999), learning rate 1e-3, mean
absolute error of the per-slice soft-argmax points against the curve interpolated from the
ground-truth centres, CT at 3 mm. CPU adaptations: random crops of 32 slices x 64 x 64 voxels
(96 x 192 x 192 mm) instead of whole images, batches of 2, a few thousand steps (or a wall-time
limit), the learning rate decayed (cosine) to 1e-4 over the second half, and a presence term
(binary cross-entropy) so that slices without spine are recognised.

Data: ``--data DIR`` (cached ``.npz`` cases of :mod:`.centreline_data`, or synthetic case folders
written by :func:`VertebralFractureLib.synth.write_case`) and / or ``--synth N`` (generate N cases
into ``--cache``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .data import CachedCase

CROP = (32, 64, 64)
#: Sub-command name under ``vertebral-fracture train``.
MODEL_NAME = "centreline"
TRAIN_HELP = "spine centre-line network (Pisov et al. 2020 §3.1)"


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``train centreline``."""
    parser.add_argument("--data", action="append", default=[], help="folder of cached .npz cases or synthetic case "
                        "folders (repeatable)")
    parser.add_argument("--synth", type=int, default=0, metavar="N", help="generate N synthetic cases into --cache")
    parser.add_argument("--synth-start", type=int, default=0, help="first seed of --synth (default 0)")
    parser.add_argument("--cache", default="runs/centreline/cache_train", help="cache folder for --synth")
    parser.add_argument("--realism", default="v1", choices=("v1", "hospital"),
                        help="generator profile of --synth (hospital: contrast, organs, gas, table, kernels, crops)")
    parser.add_argument("--out", required=True, help="weights file to write (.pt)")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (Pisov et al. 2020, §5.1: 1e-3)")
    parser.add_argument("--crop", type=int, nargs=3, default=list(CROP), metavar=("K", "J", "I"))
    parser.add_argument("--channels", type=int, nargs="+", default=[8, 16, 32, 32])
    parser.add_argument("--convs", type=int, nargs="+", default=[1, 2, 2, 2])
    parser.add_argument("--minutes", type=float, default=40.0, help="stop after this wall time")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (1 is faster on a busy machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--init", help="start from these weights")
    parser.add_argument("--ship", action="store_true", help="register --out in the manifest.json beside it")
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--device", default=None)


# ---------------------------------------------------------------------- sampling
def _case_from_folder(folder: Path) -> CachedCase:
    from ...io.images import read_image
    from ...synth import read_truth

    truth, centreline = read_truth(folder)
    from .data import prepare_volume

    hu, geometry = prepare_volume(read_image(folder / "ct.nii.gz"))
    return CachedCase(
        hu=hu,
        geometry=geometry,
        centreline=centreline,
        centroids=np.array([v.centroid for v in truth.vertebrae], float).reshape(-1, 3),
        grades=np.array([v.measure.grade if v.measure else 0 for v in truth.vertebrae], int),
        labels=truth.labels,
        name=folder.name,
    )


def collect_cases(folders: Sequence[str], log=print) -> List[CachedCase]:
    """Cached ``.npz`` cases and synthetic case folders found in ``folders``."""
    cases: List[CachedCase] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
        for path in sorted(p for p in folder.glob("*.npz") if not p.name.startswith(".")):
            cases.append(CachedCase.load(path))
        written = (p for p in folder.iterdir() if (p / "ct.nii.gz").exists() and (p / "centreline.json").exists())
        for sub in sorted(written):
            cases.append(_case_from_folder(sub))
    if log:
        log(f"{len(cases)} training cases")
    return cases


def sample_crop(
    case: CachedCase, rng: np.random.Generator, crop: Tuple[int, int, int] = CROP, augment: bool = True
) -> Dict[str, np.ndarray]:
    """One random training crop: ``image`` (float32 HU), ``target`` (K, 2), ``present``, ``valid``.

    The crop always contains the spine's targets in-plane when possible; slices beyond the image
    (z padding, air) are valid and absent. Augmentations: left-right flip, tight crops around the
    spine filled with air (like cropped real data), intensity scale / offset, noise.
    """
    ck, cj, ci = crop
    hu = case.hu
    targets, present = case.targets()
    k_size, j_size, i_size = hu.shape
    # z window: may reach up to 6 slices beyond the image (air)
    extra = 6 if augment else 0
    low, high = -extra, max(-extra, k_size - ck + extra)
    k0 = int(rng.integers(low, high + 1))
    image = np.full(crop, -1024.0, np.float32)
    target = np.zeros((ck, 2), np.float32)
    pres = np.zeros(ck, np.float32)
    valid = np.ones(ck, np.float32)
    ks = np.arange(k0, k0 + ck)
    inside = (ks >= 0) & (ks < k_size)
    kk = ks[inside]
    t = targets[kk]
    p = present[kk]
    # in-plane window containing the present targets
    if np.any(p > 0):
        lo = t[p > 0].min(axis=0)
        hi = t[p > 0].max(axis=0)
    else:
        lo = hi = np.array([j_size / 2, i_size / 2])
    starts = []
    for axis, (size, c) in enumerate(((j_size, cj), (i_size, ci))):
        if size <= c:  # the whole image fits: place it anywhere inside the crop
            start = int(rng.integers(size - c, 1)) if augment else (size - c) // 2
        else:
            margin = 8
            first = max(int(np.ceil(hi[axis] + margin - c + 1)), 0)
            last = min(int(np.floor(lo[axis] - margin)), size - c)
            if first <= last:
                start = int(rng.integers(first, last + 1)) if augment else (first + last) // 2
            else:
                start = int(np.clip(round((lo[axis] + hi[axis]) / 2 - c / 2), 0, size - c))
        starts.append(start)
    j0, i0 = starts
    src = hu[kk]
    sj = slice(max(j0, 0), min(j0 + cj, j_size))
    si = slice(max(i0, 0), min(i0 + ci, i_size))
    block = src[:, sj, si].astype(np.float32)
    dj, di = sj.start - j0, si.start - i0
    image[np.flatnonzero(inside)[:, None, None], np.arange(dj, dj + block.shape[1])[None, :, None],
          np.arange(di, di + block.shape[2])[None, None, :]] = block  # fmt: skip
    target[inside] = t - np.array([j0, i0], np.float32)
    pres[inside] = p
    # targets that fall outside the crop cannot be reached by the soft-argmax: ignore those slices
    out = (target[:, 0] < 1) | (target[:, 0] > cj - 2) | (target[:, 1] < 1) | (target[:, 1] > ci - 2)
    valid[out & (pres > 0)] = 0.0
    if augment:
        if rng.random() < 0.15 and np.any(pres > 0):  # tight crop around the spine, air outside
            centre = target[pres > 0].mean(axis=0)
            half = rng.uniform(14, 24, size=2)
            jj = np.abs(np.arange(cj) - centre[0]) > half[0]
            ii = np.abs(np.arange(ci) - centre[1]) > half[1]
            image[:, jj, :] = -1024.0
            image[:, :, ii] = -1024.0
        if rng.random() < 0.5:
            image = image[:, :, ::-1].copy()
            target[:, 1] = ci - 1 - target[:, 1]
        scale, offset = rng.uniform(0.9, 1.1), rng.uniform(-40, 40)
        body = image > -900
        image = np.where(body, image * scale + offset, image).astype(np.float32)
        image += rng.normal(0, rng.uniform(0, 30), size=image.shape).astype(np.float32)
    return {"image": image, "target": target, "present": pres, "valid": valid}


def make_batch(cases: List[CachedCase], rng: np.random.Generator, batch: int, crop, augment: bool = True):
    """A batch of crops as torch tensors."""
    import torch

    from ...spine.network import normalise_hu

    samples = [sample_crop(cases[int(rng.integers(len(cases)))], rng, crop, augment) for _ in range(batch)]
    return (
        torch.from_numpy(normalise_hu(np.stack([s["image"] for s in samples])))[:, None],
        torch.from_numpy(np.stack([s["target"] for s in samples])),
        torch.from_numpy(np.stack([s["present"] for s in samples])),
        torch.from_numpy(np.stack([s["valid"] for s in samples])),
    )


# ---------------------------------------------------------------------- training
def train(
    cases: List[CachedCase],
    out: Path,
    *,
    steps: int = 3000,
    batch: int = 2,
    lr: float = 1e-3,
    crop=CROP,
    channels=(8, 16, 32, 32),
    convs=(1, 2, 2, 2),
    minutes: float = 40.0,
    seed: int = 0,
    init=None,
    device=None,
    log=print,
    save_every: int = 100,
) -> Dict[str, float]:
    """Train and save the network; returns the final running losses."""
    import math

    import torch

    from ...nn.weights import load_weights, save_weights
    from ...spine.network import CentrelineNet, centreline_loss

    if not cases:
        raise ValueError("no training cases (use --data DIR or --synth N)")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = CentrelineNet(channels, convs)
    if init:
        checkpoint = load_weights(init, model="centreline")
        model = CentrelineNet(**checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
    device = device or "cpu"
    model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
    started = time.time()
    running: Dict[str, float] = {}
    step = 0

    def save(final: bool = False) -> None:
        meta = {
            "steps": step,
            "batch": batch,
            "crop": list(crop),
            "lr": lr,
            "cases": len(cases),
            "minutes": round((time.time() - started) / 60, 2),
            **{k: round(v, 4) for k, v in running.items()},
        }
        save_weights(model, out, name="centreline", config=model.config, meta=meta, overwrite=True)

    for step in range(1, steps + 1):
        progress = min(1.0, max(step / steps, (time.time() - started) / (minutes * 60)))  # also under a time limit
        rate = lr if progress < 0.5 else 1e-4 + 0.5 * (lr - 1e-4) * (1 + math.cos(math.pi * (progress - 0.5) / 0.5))
        for group in optimiser.param_groups:
            group["lr"] = rate
        x, target, present, valid = make_batch(cases, rng, batch, crop)
        output = model(x.to(device))
        loss, parts = centreline_loss(output, target.to(device), present.to(device), valid.to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        for key, value in {"loss": float(loss.detach()), **parts}.items():
            running[key] = value if key not in running else 0.95 * running[key] + 0.05 * value
        elapsed = time.time() - started
        if step % 10 == 0 or step == 1:
            log(json.dumps({"step": step, "lr": round(rate, 6), "s": round(elapsed, 1),
                            **{k: round(v, 4) for k, v in running.items()}}))  # fmt: skip
        if step % save_every == 0:
            save()
        if elapsed > minutes * 60:
            log(f"time limit reached after {step} steps")
            break
    save(final=True)
    return running


def train_main(args: argparse.Namespace) -> int:
    """Entry point of ``vertebral-fracture train centreline``."""
    from ...nn.device import limit_threads, pick_device
    from ...nn.weights import register

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    limit_threads(args.threads)
    folders = list(args.data)
    if args.synth:
        from .data import build_synthetic_cache

        build_synthetic_cache(range(args.synth_start, args.synth_start + args.synth), args.cache,
                              realism=getattr(args, "realism", "v1"))
        folders.append(args.cache)
    cases = collect_cases(folders)
    running = train(
        cases,
        out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        crop=tuple(args.crop),
        channels=tuple(args.channels),
        convs=tuple(args.convs),
        minutes=args.minutes,
        seed=args.seed,
        init=args.init,
        device=pick_device(args.device),
    )
    if args.ship:
        register(out, model="centreline", description="spine centre-line network (Pisov et al. 2020, §3.1), 3 mm CT")
    print(json.dumps({"weights": str(out), **{k: round(v, 4) for k, v in running.items()}}))
    return 0
