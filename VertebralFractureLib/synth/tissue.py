"""Tissue intensities (HU) of a synthetic case and the scanner model (blur and noise).

Mean HU values follow common CT reference ranges (fat -120 to -80, muscle 40-60, intervertebral
disc 70-100, cerebrospinal fluid 0-20, lung -900 to -800, cortical bone 700-1300); trabecular
bone of the vertebral body falls from about 220 HU (young) to below 80 HU with osteoporosis
(threshold of about 110 HU for osteoporosis at L1 in opportunistic CT screening: Pickhardt et
al., Ann Intern Med 158(8):588-595, 2013). They were checked against the real sample CT
(``data/real/totalsegmentator/example_ct.nii.gz``) and the TPTBox L3 crop; see the tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, Tuple

import numpy as np


@dataclass(frozen=True)
class Tissue:
    """HU values of one case."""

    air: float
    lung: float
    fat: float
    muscle: float
    organ: float
    blood: float
    csf: float
    disc: float
    cortical: float
    trabecular: float
    marrow: float
    gas: float
    metal: float = 3000.0
    cortex_mm: float = 1.0
    texture_hu: float = 0.0

    def to_dict(self) -> Dict[str, float]:
        """JSON-ready form."""
        return {k: round(float(v), 2) for k, v in asdict(self).items()}


def draw_tissue(rng: np.random.Generator, osteoporosis: float) -> Tissue:
    """HU values for a case with the given osteoporosis level (0 young ... 1 severe)."""
    trabecular = 225.0 - 160.0 * osteoporosis + rng.normal(0, 12)
    return Tissue(
        air=-1000.0,
        lung=float(rng.uniform(-880, -820)),
        fat=float(rng.uniform(-115, -85)),
        muscle=float(rng.uniform(40, 60)),
        organ=float(rng.uniform(35, 60)),
        blood=float(rng.uniform(35, 50)),
        csf=float(rng.uniform(5, 20)),
        disc=float(rng.uniform(70, 100)),
        cortical=float(1150.0 - 350.0 * osteoporosis + rng.normal(0, 40)),
        trabecular=float(trabecular),
        marrow=float(trabecular + 120.0),
        gas=float(rng.uniform(-980, -900)),
        cortex_mm=float(1.1 - 0.4 * osteoporosis + rng.uniform(-0.1, 0.1)),
        texture_hu=float(25.0 + 20.0 * osteoporosis),
    )


def scanner(
    volume: np.ndarray, spacing: Tuple[float, float, float], blur_mm: float, noise_hu: float, rng: np.random.Generator
) -> np.ndarray:
    """Blur (Gaussian point spread) and correlated noise, in place where possible.

    White noise is added before the blur, scaled so that its standard deviation after the blur
    is ``noise_hu`` (variance factor of a Gaussian of sigma s voxels: 1 / (2 sqrt(pi) s) per axis).
    """
    from scipy.ndimage import gaussian_filter

    sigma = [blur_mm / s for s in reversed(spacing)]  # array order z, y, x
    if noise_hu > 0:
        factor = 1.0
        for s in sigma:
            factor *= 1.0 / (2.0 * np.sqrt(np.pi) * max(s, 0.2822)) if s > 0 else 1.0
        amplitude = noise_hu / np.sqrt(min(factor, 1.0))
        volume += rng.standard_normal(volume.shape, dtype=np.float32) * np.float32(amplitude)
    if blur_mm > 0:
        volume = gaussian_filter(volume, sigma=sigma, truncate=2.5, output=np.float32)
    return volume
