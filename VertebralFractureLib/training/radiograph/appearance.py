"""What a clinical lateral radiograph does to a generated DRR: scatter, heel, processing, collimation, text, JPEG.

Also grid lines and quantum noise.

The generated views (:mod:`VertebralFractureLib.synth.drr`) are clean line integrals with one fixed processing
(dynamic-range compression and unsharp masking). A film a site sends differs in ways that change intensities,
never positions, so every step here is an intensity transform of the ``[0, 1]`` display image (bone bright, the
patient facing left) and the labels of a view stay valid:

* **Scatter**: photons scattered in the patient add a smooth haze to the transmitted signal, lowering the
  contrast of large structures; 30-60 % scatter-to-primary without a grid in the lumbar spine, about 10-20 %
  with one (Bushberg et al., *The Essential Physics of Medical Imaging*, 3rd ed., ch. 7). Modelled as a blend
  with a wide Gaussian blur (sigma 20-60 mm), weight 0-0.35.
* **Heel effect**: the anode side of the beam is weaker, 10-20 % along the anode-cathode axis, which is the
  long axis of a spine film (Bushberg, ch. 6). On the log (display) scale a linear ramp along the rows, up to
  +-0.08 of the display range.
* **Detector processing**: vendors' multi-scale contrast enhancement (e.g. Agfa MUSICA, Philips UNIQUE) raises
  fine detail and compresses the dynamic range; modelled as a random dynamic-range compression (subtract a share
  0-0.6 of a 25-60 mm blur) and unsharp masking (weight 0-1.5, sigma 1.5-8 mm), then a window from random
  percentiles (0-4 / 96-100).
* **Collimation**: the unexposed border outside the collimator blades, displayed white (or black when the
  system masks it), in bands 0-15 % of the side on some of the four sides (half of the views).
* **Burnt-in text and markers**: an "L" / "R" side marker and a line of text in a corner (white, as printed by
  the modality), on 60 % of the views.
* **Anti-scatter grid lines**: a stationary grid leaves fine parallel lines (40-80 lines/cm, aliased to a few
  pixels' period), amplitude 1-3 % (30 % of the views).
* **Quantum noise**: Gaussian, 0-0.03 of the range.
* **8-bit JPEG export**: web and PACS exports (half of the views): 8-bit quantisation and JPEG at quality 40-95
  (Pillow).

Used by the training of the Gartland et al. 2025 centroid net with ``--appearance clinical`` and by its
evaluation (``evaluate radiograph-centroids --appearance clinical``) for Table 1 on radiograph-like views.
"""

from __future__ import annotations

import io
from typing import Optional

import numpy as np

#: Probabilities of the optional steps.
P_COLLIMATION, P_TEXT, P_GRID, P_JPEG = 0.5, 0.6, 0.3, 0.5


def _blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(image, max(float(sigma_px), 0.5), mode="nearest")


def _window(image: np.ndarray, low_pct: float, high_pct: float) -> np.ndarray:
    low, high = np.percentile(image, [low_pct, high_pct])
    return np.clip((image - low) / max(float(high - low), 1e-6), 0.0, 1.0)


def _text(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A side marker and a line of text in random corners, white (burnt in by the modality)."""
    from PIL import Image, ImageDraw

    rows, cols = image.shape
    picture = Image.fromarray((np.clip(image, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    size = max(8, int(min(rows, cols) * rng.uniform(0.04, 0.09)))
    try:
        from PIL import ImageFont

        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow < 10.1: the fixed bitmap font
        from PIL import ImageFont

        font = ImageFont.load_default()
    corners = [(0.03, 0.03), (0.03, 0.85), (0.75, 0.03), (0.75, 0.85)]
    order = rng.permutation(len(corners))
    marker = str(rng.choice(["L", "R", "LAT", "L  LAT"]))
    x, y = corners[order[0]]
    draw.text((x * cols, y * rows), marker, fill=255, font=font)
    x, y = corners[order[1]]
    words = ["SPINE", "LUMB", "LAT", "kV", "mAs", "1:1", "STANDING", "HOSP", str(int(rng.integers(60, 100)))]
    line = " ".join(str(w) for w in rng.choice(words, size=int(rng.integers(2, 5))))
    draw.text((x * cols * 0.6, y * rows), line, fill=255, font=font)
    return np.asarray(picture, dtype=np.float32) / 255.0


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.clip(image, 0, 1) * 255).round().astype(np.uint8)).save(buffer, format="JPEG",
                                                                                 quality=int(quality))
    buffer.seek(0)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


def clinical_appearance(image: np.ndarray, pixel_mm: float, rng: Optional[np.random.Generator] = None,
                        seed: Optional[int] = None) -> np.ndarray:
    """The DRR ``image`` (``[0, 1]``, bone bright) as a clinical lateral radiograph might show it (module doc).

    Args:
        image: (rows, columns) display image in ``[0, 1]``.
        pixel_mm: its pixel size (the blurs are in mm).
        rng: random generator (one of ``rng`` or ``seed``).
        seed: seed for a reproducible appearance (held-out evaluation).

    Returns:
        (rows, columns) float32 in ``[0, 1]``; positions unchanged.
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    out = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    mm = 1.0 / max(float(pixel_mm), 1e-6)
    # scatter: a smooth haze
    share = rng.uniform(0.0, 0.35)
    out = (1.0 - share) * out + share * _blur(out, rng.uniform(20.0, 60.0) * mm)
    # heel effect: a ramp along the long axis
    rows = np.linspace(-1.0, 1.0, out.shape[0])[:, None]
    out = out + rng.uniform(-0.08, 0.08) * rows
    # detector processing: dynamic-range compression, unsharp masking, window
    out = out - rng.uniform(0.0, 0.6) * (_blur(out, rng.uniform(25.0, 60.0) * mm) - out.mean())
    out = out + rng.uniform(0.0, 1.5) * (out - _blur(out, rng.uniform(1.5, 8.0) * mm))
    out = _window(out, rng.uniform(0.0, 4.0), rng.uniform(96.0, 100.0))
    # anti-scatter grid lines
    if rng.random() < P_GRID:
        columns = np.arange(out.shape[1])[None, :]
        out = out + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * columns / rng.uniform(2.2, 4.0))
    # quantum noise
    out = out + rng.normal(0.0, rng.uniform(0.0, 0.03), out.shape)
    out = np.clip(out, 0.0, 1.0)
    # collimation: unexposed bands on some sides
    if rng.random() < P_COLLIMATION:
        value = 1.0 if rng.random() < 0.7 else 0.0
        r, c = out.shape
        for side in range(4):
            if rng.random() < 0.5:
                continue
            width = int(rng.uniform(0.02, 0.15) * (c if side < 2 else r))
            if width <= 0:
                continue
            if side == 0:
                out[:, :width] = value
            elif side == 1:
                out[:, c - width:] = value
            elif side == 2:
                out[:width] = value
            else:
                out[r - width:] = value
    if rng.random() < P_TEXT:
        out = _text(out, rng)
    if rng.random() < P_JPEG:
        out = _jpeg(out, int(rng.integers(40, 96)))
    return np.clip(out, 0.0, 1.0).astype(np.float32)
