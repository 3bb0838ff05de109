"""Training of the contextual shape model (Botros et al. 2022, section 2) on synthetic unfractured bodies.

Two phases, as in the paper: the coarse encoder-decoder with binary cross-entropy, then the
refinement network (coarse weights frozen) with binary cross-entropy plus a Wasserstein GAN loss
with gradient penalty against a critic that sees (context, shape) pairs. Crops come from
:func:`VertebralFractureLib.training.abnormality.data.build_set` (cached as ``.npz``).

Command line (one process, CPU, a time budget per phase; missing crop caches are built first)::

    vertebral-fracture train abnormality --data runs/data/cache_shape/train.npz \
        --val runs/data/cache_shape/val.npz --out VertebralFractureLib/weights/abnormality_shape.pt \
        --coarse-minutes 8 --refine-minutes 14 --threads 1

(or ``python -m VertebralFractureLib.training.abnormality.train`` with the same arguments).
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ...shape.crops import CROP_SHAPE, PITCH_VOXELS
from ...shape.score import DEFAULT_SCALE, MODEL_NAME, SIGMA_PITCH, WEIGHTS_NAME, surplus_fraction

#: Weight of the adversarial term in the refinement loss.
ADVERSARIAL_WEIGHT = 0.01
#: Gradient-penalty weight (Gulrajani et al. 2017).
GP_WEIGHT = 10.0


def load_set(path: str, limit: Optional[int] = None) -> tuple:
    """(context uint8 (N, 4, ...), body uint8 (N, ...), facts list) from a cached ``.npz``."""
    data = np.load(path)
    facts = [ast.literal_eval(str(text)) for text in data["facts"]]
    context, body = data["context"], data["body"]
    if limit is not None:
        context, body, facts = context[:limit], body[:limit], facts[:limit]
    return context, body, facts


def _batch(context: np.ndarray, body: np.ndarray, index: np.ndarray, rng: np.random.Generator):
    import torch

    x = torch.from_numpy(context[index].astype(np.float32) / 255.0)
    y = torch.from_numpy(body[index].astype(np.float32)[:, None] / 255.0)
    if rng.random() < 0.5:  # left-right mirror
        x, y = torch.flip(x, dims=[4]), torch.flip(y, dims=[4])
    return x, y


def evaluate_fractions(network, context: np.ndarray, body: np.ndarray, batch: int = 16) -> np.ndarray:
    """Weighted surplus fraction of every crop (Botros et al. 2022, §2)."""
    import torch

    fractions = []
    network.eval()
    with torch.no_grad():
        for start in range(0, len(context), batch):
            x = torch.from_numpy(context[start : start + batch].astype(np.float32) / 255.0)
            predicted = network.predict(x).numpy()
            actual = body[start : start + batch].astype(np.float32) / 255.0
            fractions += [surplus_fraction(p, a) for p, a in zip(predicted, actual)]
    network.train()
    return np.asarray(fractions)


def train_shape(train_path: str, val_path: str, out: str, *, coarse_minutes: float = 9.0,
                refine_minutes: float = 12.0, batch: int = 8, seed: int = 0, scale: float = DEFAULT_SCALE,
                threads: int = 1, init: Optional[str] = None, learning_rate: float = 2e-3, log=print) -> Path:
    """Train both phases within the time budgets and write the weights (+ manifest entry when shipped).

    Args:
        train_path: cached training crops (``.npz``).
        val_path: cached validation crops (``.npz``).
        out: weights file to write.
        coarse_minutes: time budget of the coarse phase.
        refine_minutes: time budget of the refinement phase.
        batch: crops per step.
        seed: random seed.
        scale: surplus fraction mapped to score 100 (stored in the config).
        threads: torch CPU threads.
        init: a checkpoint to continue from (its steps are added to the history).
        learning_rate: coarse learning rate (the refinement uses half).
        log: progress printer.

    Returns:
        The weights path.

    """
    import torch

    from ...nn.unet import count_parameters
    from ...nn.weights import WEIGHTS_DIR, save_weights
    from ...shape.network import Critic, ShapeModel, gradient_penalty

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    context, body, _ = load_set(train_path)
    val_context, val_body, _ = load_set(val_path, limit=160)
    log(f"train {len(body)} crops, val {len(val_body)} crops, crop {CROP_SHAPE}")
    model = ShapeModel()
    critic = Critic()
    previous = {}
    if init:
        from ...nn.weights import load_weights

        checkpoint = load_weights(init, model=MODEL_NAME, verify=False)
        model.load_state_dict(checkpoint["state_dict"])
        previous = checkpoint.get("meta", {})
        log(f"continuing from {init} ({previous.get('coarse_steps', 0)} + {previous.get('refine_steps', 0)} steps)")
    log(f"generator parameters {count_parameters(model)}, critic {count_parameters(critic)}")
    bce = torch.nn.BCEWithLogitsLoss()
    history = {}

    # phase 1: coarse, BCE only
    optimiser = torch.optim.Adam(model.coarse.parameters(), lr=learning_rate)
    started, step = time.perf_counter(), 0
    while time.perf_counter() - started < coarse_minutes * 60:
        x, y = _batch(context, body, rng.integers(0, len(body), batch), rng)
        coarse, _ = model(x, refine=False)
        loss = bce(coarse, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 50 == 0:
            log(f"coarse step {step} bce {loss.item():.4f} ({time.perf_counter() - started:.0f} s)")
    history["coarse_steps"] = step + int(previous.get("coarse_steps", 0))
    history["coarse_bce"] = round(float(loss.item()), 4)

    # phase 2: refinement, BCE + WGAN-GP, coarse frozen
    for parameter in model.coarse.parameters():
        parameter.requires_grad_(False)
    optimiser = torch.optim.Adam(model.refine.parameters(), lr=learning_rate / 2, betas=(0.5, 0.9))
    critic_optimiser = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.9))
    started, step = time.perf_counter(), 0
    while time.perf_counter() - started < refine_minutes * 60:
        x, y = _batch(context, body, rng.integers(0, len(body), batch), rng)
        _, refined = model(x)
        fake = torch.sigmoid(refined)
        # critic step
        critic_loss = critic(x, fake.detach()).mean() - critic(x, y).mean()
        penalty = gradient_penalty(critic, x, y, fake.detach())
        critic_optimiser.zero_grad()
        (critic_loss + GP_WEIGHT * penalty).backward()
        critic_optimiser.step()
        # generator step
        adversarial = -critic(x, fake).mean()
        reconstruction = bce(refined, y)
        loss = reconstruction + ADVERSARIAL_WEIGHT * adversarial
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 25 == 0:
            log(f"refine step {step} bce {reconstruction.item():.4f} adv {adversarial.item():.3f} "
                f"critic {critic_loss.item():.3f} gp {penalty.item():.3f} ({time.perf_counter() - started:.0f} s)")
    history["refine_steps"] = step + int(previous.get("refine_steps", 0))
    history["refine_bce"] = round(float(reconstruction.item()), 4)

    fractions = evaluate_fractions(model, val_context, val_body)
    history["val_surplus_fraction_mean"] = round(float(fractions.mean()), 4)
    history["val_surplus_fraction_p95"] = round(float(np.percentile(fractions, 95)), 4)
    log(f"validation (unfractured) surplus fraction mean {fractions.mean():.4f} p95 {np.percentile(fractions, 95):.4f}")
    config = {"channels": list(model.channels), "crop_shape": list(CROP_SHAPE), "pitch_voxels": PITCH_VOXELS,
              "sigma_pitch": list(SIGMA_PITCH), "scale": scale}
    meta = {"train": str(train_path), "train_crops": int(len(body)), **history,
            "paper": "Botros et al., MIDL 2022 (Botros et al. 2022), section 2"}
    path = Path(out)
    shipped = path.resolve().parent == WEIGHTS_DIR
    save_weights(model, path, name=MODEL_NAME, config=config, meta=meta, manifest=False)
    if shipped:
        register_weights(path, meta)
    log(json.dumps({"weights": str(path), **history}))
    return path


def register_weights(path: Path, meta: dict) -> None:
    """Add this file's entry to the shipped manifest, re-reading it right before an atomic write."""
    from ...nn.weights import register

    register(path, model=MODEL_NAME, description="contextual shape model (Botros et al. 2022), coarse + WGAN-GP, "

             f"{meta.get('train_crops')} synthetic unfractured crops")


#: One-line help of ``vertebral-fracture train abnormality``.
TRAIN_HELP = "train the contextual shape model of the abnormality score (Botros et al. 2022)"


def ensure_set(path: str, seeds: range, *, unfractured_only: bool = True, fracture_prevalence: float = 0.2,
               log=print) -> str:
    """Build and cache the crops of ``seeds`` at ``path`` (``.npz``) unless the file exists."""
    from ...io.atomic import atomic_path
    from .data import build_set

    target = Path(path)
    if target.exists():
        return str(target)
    log(f"building {target} from synthetic columns {seeds.start}-{seeds.stop - 1}")
    context, body, facts = build_set(seeds, unfractured_only=unfractured_only, fracture_prevalence=fracture_prevalence)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, overwrite=True) as temporary:
        with open(temporary, "wb") as handle:
            np.savez(handle, context=context, body=body, facts=np.array([str(f) for f in facts]))
    return str(target)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vertebral-fracture train abnormality``."""
    parser.add_argument("--data", "--train", default="runs/data/cache_shape/train.npz",
                        help="cached training crops (.npz); built from --seeds synthetic columns when missing")
    parser.add_argument("--val", default="runs/data/cache_shape/val.npz", help="cached validation crops (.npz)")
    parser.add_argument("--seeds", type=int, default=200, help="synthetic columns for a missing training set")
    parser.add_argument("--out", default=None, help=f"weights file (default: the shipped {WEIGHTS_NAME})")
    parser.add_argument("--coarse-minutes", type=float, default=8.0, help="time budget of the coarse phase")
    parser.add_argument("--refine-minutes", type=float, default=14.0, help="time budget of the refinement phase")
    parser.add_argument("--batch", type=int, default=8, help="crops per step")
    parser.add_argument("--scale", type=float, default=DEFAULT_SCALE, help="surplus fraction mapped to score 100")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch")
    parser.add_argument("--init", default=None, help="continue from these weights")
    parser.add_argument("--lr", type=float, default=2e-3, help="coarse learning rate (refinement: half)")


def train_main(args: argparse.Namespace) -> int:
    """Train the shape model from parsed arguments (``vertebral-fracture train abnormality``)."""
    from ...nn.weights import WEIGHTS_DIR

    log = lambda text: print(text, flush=True)  # noqa: E731
    data = ensure_set(args.data, range(0, args.seeds), log=log)
    val = ensure_set(args.val, range(5000, 5016), log=log)
    out = args.out or str(WEIGHTS_DIR / WEIGHTS_NAME)
    train_shape(data, val, out, coarse_minutes=args.coarse_minutes, refine_minutes=args.refine_minutes,
                batch=args.batch, scale=args.scale, threads=args.threads, init=args.init, learning_rate=args.lr,
                log=log)
    return 0


def main(argv: Optional[list] = None) -> int:
    """``vertebral-fracture train abnormality`` (also ``python -m`` on this module)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    return train_main(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
