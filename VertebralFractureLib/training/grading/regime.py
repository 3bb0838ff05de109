"""The three-stage training regime of Husseini et al. 2020: label pre-train -> representation learn -> fracture train.

* Label pre-training (Husseini et al. 2020, §2.2, §3.1): contrastive loss over the five spine regions
  (T1-T5, T6-T9, T10-T12, L1-L4, L5) on the 8-d embedding.
* Representation learning (Husseini et al. 2020, §2.1): grading loss on (healthy, grade 2, grade 3, positive anchor)
  quadruplets, or the contrastive / triplet baselines on the three grade classes.
* Fracture training (Husseini et al. 2020, §2.3): ``linear8`` replaced by ``linear2``, cross-entropy healthy vs
  fractured (grade 2-3).

Every stage is switchable (:class:`RegimeConfig`), so the ablation of Husseini et al. 2020, Table 2 can be run.
All stages use Adam at lr 1e-4 (Husseini et al. 2020, §2.3). Grade-1 vertebrae never enter training (Husseini et al.
2020, §1).
Batches draw classes uniformly for the metric losses (the quadruplet's static triplet already
is class-balanced), and a fixed share of fractured vertebrae (``fracture_fraction``) for the
fracture stage, because fractures are rare (about 1 in 8 vertebrae of grades 0/2/3).
Augmentation: random shifts of up to ``max_shift`` pixels (the Gaussian channel follows the
centroid), superior-inferior mirroring, and a small intensity scale / offset; optionally (``fov_cut``) the edge of
a field of view: everything beyond a straight cut 18-50 mm from the centroid, on one side, set to the value the
patches get outside the CT. Real patches show such edges (a cardiac or aortic CT ends just behind the spine: the
spine's antero-posterior position in the real fields of view reaches 0.38 of their depth, in the generated ones
0.22, ``benchmarks/bench_realism.py``; a scan's first and last slices cut the patch above or below), the generated
training cases rarely.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from ...grading.patches import model_input
from .data import PatchSet

REPRESENTATIONS = ("contrastive", "triplet", "grading")
STAGES = ("label", "representation", "fracture")


@dataclass
class RegimeConfig:
    """Switches and lengths of the three stages.

    Attributes:
        label_pretrain: run the label pre-training stage.
        representation: ``None`` or one of :data:`REPRESENTATIONS`.
        fracture: run the fracture (cross-entropy) stage.
        steps_label, steps_representation, steps_fracture: optimiser steps per stage.
        batch: patches per step (quadruplets: batch // 4; triplets: batch // 3; pairs: batch // 2).
        lr: Adam learning rate (Husseini et al. 2020, §2.3: 1e-4).
        cosine: anneal the learning rate within each stage to 0.1 x ``lr`` (cosine), so short CPU runs
            end on a settled model (000 gives no schedule).
        width: network channel multiplier (1.0 = Husseini et al. 2020, §2.3).
        fracture_fraction: share of fractured vertebrae in fracture-stage batches.
        max_shift: augmentation shift in pixels (0 disables augmentation).
        fov_cut: probability that a training patch gets a field-of-view edge (0: never; needs ``max_shift`` > 0).
        contrastive_margin: margin of the contrastive loss (Euclidean distance).
        triplet_margin: margin of the triplet loss (squared distance).
        seed: random seed of sampling and initialisation.

    """

    label_pretrain: bool = True
    representation: Optional[str] = "grading"
    fracture: bool = True
    steps_label: int = 300
    steps_representation: int = 300
    steps_fracture: int = 300
    batch: int = 32
    lr: float = 1e-4
    width: float = 1.0
    fracture_fraction: float = 0.25
    cosine: bool = True
    max_shift: int = 6
    fov_cut: float = 0.0
    contrastive_margin: float = 2.0
    triplet_margin: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.representation in ("", "none", "None"):
            self.representation = None
        if self.representation is not None and self.representation not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS} or None, got {self.representation!r}")

    def name(self) -> str:
        """Short description, e.g. ``label+grading+fracture``."""
        parts = (["label"] if self.label_pretrain else []) + ([self.representation] if self.representation else [])
        return "+".join(parts + (["fracture"] if self.fracture else [])) or "untrained"

    def to_dict(self) -> Dict:
        """Plain values for checkpoints and logs."""
        return asdict(self)


#: Distance (mm = pixels) of an augmentation's field-of-view edge from the centroid (:func:`cut_field_of_view`).
FOV_CUT_MM = (18.0, 50.0)


def cut_field_of_view(image: np.ndarray, side: int, distance: float) -> np.ndarray:
    """Set ``image`` beyond a straight edge ``distance`` pixels from its centre to the outside-the-CT value, in place.

    Args:
        image: ``(rows, columns)`` network input channel (rows superior -> inferior, columns anterior -> posterior).
        side: 0 posterior, 1 anterior, 2 superior, 3 inferior.
        distance: pixels from the centre to the edge.

    Returns:
        ``image``.

    """
    from ...grading.patches import FILL_HU, normalise_hu

    fill = float(normalise_hu(np.array([FILL_HU], dtype=np.float32))[0])
    axis = 1 if side in (0, 1) else 0  # columns for posterior / anterior, rows for superior / inferior
    centre = (image.shape[axis] - 1) / 2.0
    if side in (0, 3):  # beyond the edge towards the higher indices
        cut = slice(max(int(np.ceil(centre + distance)), 0), None)
    else:
        cut = slice(None, max(int(np.floor(centre - distance)) + 1, 0))
    image[(slice(None), cut) if axis == 1 else (cut, slice(None))] = fill
    return image


class _Batches:
    """Draws training rows and turns them into network inputs."""

    def __init__(self, data: PatchSet, config: RegimeConfig, rng: np.random.Generator) -> None:
        keep = np.flatnonzero(data.train_mask)
        self.data = data
        self.config = config
        self.rng = rng
        self.by_grade = {g: keep[data.grades[keep] == g] for g in (0, 2, 3)}
        self.by_region = {r: keep[data.regions[keep] == r] for r in range(5)}
        self.by_region = {r: ix for r, ix in self.by_region.items() if len(ix)}
        self.healthy = self.by_grade[0]
        self.fractured = keep[data.grades[keep] >= 2]

    def pick(self, pool: np.ndarray, n: int = 1) -> np.ndarray:
        return pool[self.rng.integers(0, len(pool), n)]

    def tensor(self, rows: np.ndarray):
        import torch

        shift = self.config.max_shift
        items = []
        for row in rows:
            if shift > 0:
                offset = self.rng.integers(-shift, shift + 1, 2)
                flip = bool(self.rng.random() < 0.5)
            else:
                offset, flip = (0, 0), False
            x = model_input(self.data.patches[row], tuple(offset), flip=flip)
            if shift > 0:
                x[0] = x[0] * self.rng.uniform(0.9, 1.1) + self.rng.uniform(-0.1, 0.1)
                if self.config.fov_cut > 0 and self.rng.random() < self.config.fov_cut:
                    cut_field_of_view(x[0], int(self.rng.integers(4)), float(self.rng.uniform(*FOV_CUT_MM)))
            items.append(x)
        return torch.from_numpy(np.stack(items))

    # --- stage samplers: return (rows, extra) ---
    def pairs(self, groups: Dict[int, np.ndarray], n: int):
        keys = sorted(groups)
        first, second, same = [], [], []
        for _ in range(n):
            a = keys[self.rng.integers(len(keys))]
            is_same = len(keys) == 1 or self.rng.random() < 0.5
            b = a if is_same else [k for k in keys if k != a][self.rng.integers(len(keys) - 1)]
            first.append(self.pick(groups[a])[0])
            second.append(self.pick(groups[b])[0])
            same.append(float(is_same))
        return np.array(first), np.array(second), np.array(same, dtype=np.float32)

    def triplets(self, n: int):
        keys = [g for g in (0, 2, 3) if len(self.by_grade[g])]
        anchors, positives, negatives = [], [], []
        for _ in range(n):
            a = keys[self.rng.integers(len(keys))]
            others = [k for k in keys if k != a]
            b = others[self.rng.integers(len(others))]
            anchors.append(self.pick(self.by_grade[a])[0])
            positives.append(self.pick(self.by_grade[a])[0])
            negatives.append(self.pick(self.by_grade[b])[0])
        return np.array(anchors), np.array(positives), np.array(negatives)

    def quadruplets(self, n: int):
        g0, g2, g3 = (self.pick(self.by_grade[g], n) for g in (0, 2, 3))
        anchor_class = self.rng.integers(0, 3, n)
        anchors = np.array([self.pick(self.by_grade[(0, 2, 3)[c]])[0] for c in anchor_class])
        return g0, g2, g3, anchors, anchor_class

    def fracture_batch(self, n: int):
        n_frac = int(round(n * self.config.fracture_fraction))
        rows = np.concatenate([self.pick(self.fractured, n_frac), self.pick(self.healthy, n - n_frac)])
        return rows, (self.data.grades[rows] >= 2).astype(np.int64)


def new_model(config: RegimeConfig):
    """A freshly initialised :class:`~VertebralFractureLib.grading.network.GradingNet` (seeded)."""
    import torch

    from ...grading.network import GradingNet

    torch.manual_seed(config.seed)
    return GradingNet(width=config.width)


def train_stage(model, stage: str, data: PatchSet, config: RegimeConfig, steps: int,
                representation: Optional[str] = None, log: Optional[Callable[[str], None]] = None,
                seed_offset: int = 0) -> List[float]:
    """Train one stage in place.

    Args:
        model: the network.
        stage: ``"label"``, ``"representation"`` or ``"fracture"``.
        data: training rows (grade-1 rows are ignored).
        config: batch size, learning rate, margins...
        steps: optimiser steps.
        representation: loss of the representation stage (see :data:`REPRESENTATIONS`).
        log: receives a progress line every 10 % of the steps.
        seed_offset: varies the sampling between stages.

    Returns:
        The loss of every step.

    Raises:
        ValueError: if the data lack a class the stage needs.

    """
    import torch

    from .losses import contrastive_loss, grading_loss, triplet_loss

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}")
    rng = np.random.default_rng(config.seed * 1000 + seed_offset)
    batches = _Batches(data, config, rng)
    need = {"label": len(batches.by_region) >= 2,
            "representation": all(len(batches.by_grade[g]) for g in (0, 2, 3)),
            "fracture": len(batches.fractured) > 0 and len(batches.healthy) > 0}
    if not need[stage]:
        raise ValueError(f"the training data cannot feed the {stage} stage ({data.summary()})")
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(1, steps), eta_min=0.1 * config.lr)
    model.train()
    losses: List[float] = []
    started = time.perf_counter()
    for step in range(steps):
        if stage == "label":
            a, b, same = batches.pairs(batches.by_region, config.batch // 2)
            emb = model.embedding(batches.tensor(np.concatenate([a, b])))
            loss = contrastive_loss(emb[: len(a)], emb[len(a):], torch.from_numpy(same), config.contrastive_margin)
        elif stage == "fracture":
            rows, target = batches.fracture_batch(config.batch)
            loss = torch.nn.functional.cross_entropy(model(batches.tensor(rows)), torch.from_numpy(target))
        elif representation == "grading":
            g0, g2, g3, anchors, anchor_class = batches.quadruplets(config.batch // 4)
            n = len(g0)
            emb = model.embedding(batches.tensor(np.concatenate([g0, g2, g3, anchors])))
            loss = grading_loss(emb[:n], emb[n:2 * n], emb[2 * n:3 * n], emb[3 * n:], torch.from_numpy(anchor_class))
        elif representation == "triplet":
            a, p, q = batches.triplets(config.batch // 3)
            n = len(a)
            emb = model.embedding(batches.tensor(np.concatenate([a, p, q])))
            loss = triplet_loss(emb[:n], emb[n:2 * n], emb[2 * n:], config.triplet_margin)
        elif representation == "contrastive":
            groups = {g: batches.by_grade[g] for g in (0, 2, 3)}
            a, b, same = batches.pairs(groups, config.batch // 2)
            emb = model.embedding(batches.tensor(np.concatenate([a, b])))
            loss = contrastive_loss(emb[: len(a)], emb[len(a):], torch.from_numpy(same), config.contrastive_margin)
        else:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}, got {representation!r}")
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if config.cosine:
            schedule.step()
        losses.append(float(loss.detach()))
        if log and steps >= 10 and (step + 1) % max(1, steps // 10) == 0:
            recent = np.mean(losses[-max(1, steps // 10):])
            log(f"  {stage}{'/' + representation if stage == 'representation' else ''} step {step + 1}/{steps}"
                f" loss {recent:.4f} ({time.perf_counter() - started:.0f} s)")
    model.eval()
    return losses


def run_regime(data: PatchSet, config: RegimeConfig, log: Optional[Callable[[str], None]] = None,
               model=None, snapshots: Optional[Dict[str, object]] = None):
    """Run the enabled stages in order: label -> representation -> fracture (Husseini et al. 2020, §3.1).

    Args:
        data: training rows.
        config: stage switches and lengths.
        log: progress lines.
        model: start from this network (default: a new one).
        snapshots: if given, filled with a copy of the model after each stage (``"label"``...).

    Returns:
        The trained network (eval mode).

    """
    model = model if model is not None else new_model(config)
    if config.label_pretrain:
        train_stage(model, "label", data, config, config.steps_label, log=log, seed_offset=1)
        if snapshots is not None:
            snapshots["label"] = copy.deepcopy(model)
    if config.representation:
        train_stage(model, "representation", data, config, config.steps_representation,
                    representation=config.representation, log=log, seed_offset=2)
        if snapshots is not None:
            snapshots["representation"] = copy.deepcopy(model)
    if config.fracture:
        train_stage(model, "fracture", data, config, config.steps_fracture, log=log, seed_offset=3)
    model.eval()
    return model


def run_ensemble(data: PatchSet, config: RegimeConfig, members: int, log: Optional[Callable[[str], None]] = None):
    """``members`` networks trained by :func:`run_regime` with seeds ``config.seed``, ``+1``, ...; their mean.

    Returns:
        A :class:`~VertebralFractureLib.grading.network.GradingEnsemble` (eval mode); one member: its network.

    """
    import dataclasses

    from ...grading.network import GradingEnsemble

    nets = []
    for index in range(members):
        if log is not None and members > 1:
            log(f"member {index + 1}/{members} (seed {config.seed + index})")
        nets.append(run_regime(data, dataclasses.replace(config, seed=config.seed + index), log=log))
    if members == 1:
        return nets[0]
    ensemble = GradingEnsemble(members, **nets[0].config)
    for member, net in zip(ensemble.members, nets):
        member.load_state_dict(net.state_dict())
    return ensemble.eval()


def predict(model, data: PatchSet, batch: int = 64) -> Dict[str, np.ndarray]:
    """Fracture probabilities and embeddings of every row (centred patches, no augmentation).

    Returns:
        ``{"probability": (N,), "embedding": (N, 8)}``.

    """
    import torch

    model.eval()
    probs, embeddings = [], []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            x = torch.from_numpy(np.stack([model_input(p) for p in data.patches[start:start + batch]]))
            probability, embedding = model.outputs(x.to(next(model.parameters()).device))
            probs.append(probability.cpu().numpy())
            embeddings.append(embedding.cpu().numpy())
    if not probs:
        return {"probability": np.zeros(0), "embedding": np.zeros((0, int(model.config["embedding_dim"])))}
    return {"probability": np.concatenate(probs), "embedding": np.concatenate(embeddings)}
