"""Weighted segment sampling and augmentation for training the voxel classifier (Nicolaes et al. 2019, §3.2).

"Image segments are sampled in a weighted regime using the ground truth label images to ensure
that the network sees enough vertebra voxels": each segment is centred on a voxel of a class drawn
with :data:`CLASS_WEIGHTS` (background, normal, fracture), then a random voxel of that class in a
random case that has one. Augmentation (Nicolaes et al. 2019, §3.2): Gaussian noise on the input intensities and
random flips across the three axes.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import numpy as np

from ...voxelmap.network_constants import BACKGROUND, FRACTURE, IGNORE, MARGIN, NORMAL

#: Probability of centring a segment on a background, normal, fracture voxel.
CLASS_WEIGHTS = (0.4, 0.3, 0.3)
#: Normalised input value outside the image (HU -1000).
OUTSIDE = (-1000.0 - 100.0) / 400.0


class SegmentSampler:
    """Draws training segments ``(input (1, n+48, ...), labels (n, n, n))`` from samples.

    Args:
        samples: :class:`~.data.Sample` objects.
        size: output segment side ``n`` (multiple of 3).
        class_weights: probability of each centre class.
        seed: random seed.
        noise: maximum standard deviation of the added Gaussian noise (normalised units; 0.1 = 40 HU).
        flip: random flips across the three axes.

    """

    def __init__(self, samples: Sequence, size: int = 15, class_weights: Tuple[float, float, float] = CLASS_WEIGHTS,
                 seed: int = 0, noise: float = 0.1, flip: bool = True) -> None:
        self.samples = list(samples)
        self.size = int(size)
        self.rng = np.random.default_rng(seed)
        self.noise = float(noise)
        self.flip = bool(flip)
        half = self.size // 2 + 1
        self._pad = half
        self.contexts = [np.pad(s.context.astype(np.float32), half, constant_values=OUTSIDE) for s in self.samples]
        self.labels = [np.pad(s.labels, half, constant_values=IGNORE) for s in self.samples]
        self.centres: List[List[np.ndarray]] = []
        for s in self.samples:
            per_class = []
            for c in (BACKGROUND, NORMAL, FRACTURE):
                per_class.append(np.argwhere((s.labels == c) & s.mask).astype(np.int32))
            self.centres.append(per_class)
        available = [any(len(pc[c]) for pc in self.centres) for c in range(3)]
        weights = np.asarray(class_weights, float) * np.asarray(available, float)
        if weights.sum() == 0:
            raise ValueError("no labelled voxels in the training samples")
        self.class_weights = weights / weights.sum()

    def segment(self, case: int, centre: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The input and label arrays of the segment whose output is centred on ``centre`` (k, j, i)."""
        n, p = self.size, self._pad
        lo = np.asarray(centre) - n // 2 + p
        m = n + 2 * MARGIN
        x = self.contexts[case][lo[0]:lo[0] + m, lo[1]:lo[1] + m, lo[2]:lo[2] + m]
        y = self.labels[case][lo[0]:lo[0] + n, lo[1]:lo[1] + n, lo[2]:lo[2] + n]
        return x, y

    def draw(self) -> Tuple[np.ndarray, np.ndarray]:
        """One augmented segment: ``(x (n+48,)*3 float32, y (n,)*3 int64)``."""
        c = int(self.rng.choice(3, p=self.class_weights))
        cases = [i for i, pc in enumerate(self.centres) if len(pc[c])]
        case = int(self.rng.choice(cases))
        options = self.centres[case][c]
        centre = options[self.rng.integers(len(options))]
        x, y = self.segment(case, centre)
        x, y = x.astype(np.float32), y.astype(np.int64)
        if self.flip:
            for axis in range(3):
                if self.rng.random() < 0.5:
                    x, y = np.flip(x, axis), np.flip(y, axis)
        if self.noise > 0:
            x = x + self.rng.normal(0.0, self.rng.uniform(0, self.noise), x.shape).astype(np.float32)
        return np.ascontiguousarray(x), np.ascontiguousarray(y)

    def batch(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """``n`` segments stacked: ``(x (n, 1, ...), y (n, ...))``."""
        pairs = [self.draw() for _ in range(n)]
        return np.stack([p[0] for p in pairs])[:, None], np.stack([p[1] for p in pairs])
