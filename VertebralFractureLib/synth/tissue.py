"""Tissue intensities (HU) of a synthetic case and the scanner model (blur and noise).

Mean HU values follow common CT reference ranges (fat -120 to -80, muscle 40-60, intervertebral
disc 70-100, cerebrospinal fluid 0-20, lung -900 to -800, cortical bone 700-1300); trabecular
bone of the vertebral body falls from about 220 HU (young) to below 80 HU with osteoporosis
(threshold of about 110 HU for osteoporosis at L1 in opportunistic CT screening: Pickhardt et
al., Ann Intern Med 158(8):588-595, 2013). They were checked against the real sample CT
(``data/real/totalsegmentator/example_ct.nii.gz``) and the TPTBox L3 crop; see the tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Dict, Optional, Tuple

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


def draw_tissue(
    rng: np.random.Generator, osteoporosis: float, hospital: Optional[np.random.Generator] = None
) -> Tissue:
    """HU values for a case with the given osteoporosis level (0 young ... 1 severe).

    ``hospital``: the extra generator of the ``"hospital"`` realism profile (None: ``"v1"``). The main
    draws are the same either way; the profile then changes blood (contrast phase, see
    :func:`contrast_phase`), disc (brighter in elderly spines) and a denser cortex
    (1150 - 150 x osteoporosis instead of - 350 x).
    """
    trabecular = 225.0 - 160.0 * osteoporosis + rng.normal(0, 12)
    tissue = Tissue(
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
    if hospital is None:
        return tissue
    _, blood = contrast_phase(hospital, tissue.blood)
    disc = tissue.disc
    if hospital.random() < 0.2 + 0.3 * osteoporosis:
        # degenerated / calcified discs of elderly spines (real thoracic discs median about 185 HU)
        disc = float(hospital.uniform(110.0, 250.0))
    return replace(tissue, blood=float(blood), disc=float(disc), cortical=float(tissue.cortical + 200.0 * osteoporosis))


#: Contrast phases of the hospital profile: (name, probability, blood HU range).
CONTRAST_PHASES = (("none", 0.3, (35.0, 50.0)), ("venous", 0.4, (120.0, 200.0)), ("arterial", 0.3, (200.0, 350.0)))


def contrast_phase(rng: np.random.Generator, plain_blood: float) -> Tuple[str, float]:
    """(phase, blood HU) of a hospital-profile case: none keeps ``plain_blood`` (35-50 HU)."""
    weights = np.array([p for _, p, _ in CONTRAST_PHASES])
    index = int(rng.choice(len(CONTRAST_PHASES), p=weights / weights.sum()))
    name, _, (low, high) = CONTRAST_PHASES[index]
    return name, plain_blood if name == "none" else float(rng.uniform(low, high))


def scanner(
    volume: np.ndarray,
    spacing: Tuple[float, float, float],
    blur_mm: float,
    noise_hu: float,
    rng: np.random.Generator,
    sharp_fraction: float = 0.0,
    sharp_rng: Optional[np.random.Generator] = None,
) -> np.ndarray:
    """Blur (Gaussian point spread) and correlated noise, in place where possible.

    White noise is added before the blur, scaled so that its standard deviation after the blur
    is ``noise_hu`` (variance factor of a Gaussian of sigma s voxels: 1 / (2 sqrt(pi) s) per axis).
    With ``sharp_fraction`` f > 0 (hospital profile) a share f of the noise variance is instead
    white noise added after the blur (from ``sharp_rng``), a sharper texture as in clinical CT;
    the total standard deviation stays ``noise_hu``.
    """
    from scipy.ndimage import gaussian_filter

    sigma = [blur_mm / s for s in reversed(spacing)]  # array order z, y, x
    smooth_hu = noise_hu if sharp_fraction <= 0 else noise_hu * float(np.sqrt(1.0 - sharp_fraction))
    if smooth_hu > 0:
        factor = 1.0
        for s in sigma:
            factor *= 1.0 / (2.0 * np.sqrt(np.pi) * max(s, 0.2822)) if s > 0 else 1.0
        amplitude = smooth_hu / np.sqrt(min(factor, 1.0))
        volume += rng.standard_normal(volume.shape, dtype=np.float32) * np.float32(amplitude)
    if blur_mm > 0:
        volume = gaussian_filter(volume, sigma=sigma, truncate=2.5, output=np.float32)
    if sharp_fraction > 0 and noise_hu > 0:
        if sharp_rng is None:
            raise ValueError("sharp_fraction needs sharp_rng")
        sharp = noise_hu * float(np.sqrt(sharp_fraction))
        volume += sharp_rng.standard_normal(volume.shape, dtype=np.float32) * np.float32(sharp)
    return volume
