"""Input geometry of the Gartland et al. 2025 centroid net: resize to 264 x 264, or a native-resolution option.

Gartland et al. 2025, §2: "Each input image was resized to 264x264 pixels (px) and normalized", heatmap targets of
the same size. ``mode="resize"`` does exactly that (the aspect ratio is not kept, as in the
paper); ``mode="native"`` resamples isotropically to ``native_mm`` per pixel instead, keeping the
anatomy's true proportions (inputs then differ in size; training pads them onto a fixed canvas).
Points map between the two frames with pixel centres kept: ``x' = (x + 0.5) * s - 0.5``.
Intensities are normalised per image to zero mean and unit variance (004 normalises with the
training set's statistics; per-image normalisation also absorbs the exposure of unseen sites).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

#: Gartland et al. 2025, §2 input size.
INPUT_SIZE = 264
#: Multiple of which native-mode inputs are padded (the U-Net's pooling depth).
NATIVE_DIVISOR = 32


@dataclass(frozen=True)
class Frame:
    """How an image was brought to the network's input.

    Attributes:
        scale: (column, row) factors from image pixels to input pixels.
        shape: (rows, columns) of the resampled image (before any padding).

    """

    scale: Tuple[float, float]
    shape: Tuple[int, int]

    def to_input(self, points: np.ndarray) -> np.ndarray:
        """Image ``[column, row]`` points to input pixels."""
        return (np.asarray(points, dtype=np.float64) + 0.5) * np.asarray(self.scale) - 0.5

    def to_image(self, points: np.ndarray) -> np.ndarray:
        """Input-pixel points back to image ``[column, row]``."""
        return (np.asarray(points, dtype=np.float64) + 0.5) / np.asarray(self.scale) - 0.5

    def coarser(self, stride: int) -> Frame:
        """The frame of an output ``stride`` times coarser than the input (heatmaps at stride 4)."""
        if stride == 1:
            return self
        shape = (-(-self.shape[0] // stride), -(-self.shape[1] // stride))
        return Frame((self.scale[0] / stride, self.scale[1] / stride), shape)


def normalise(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance."""
    image = np.asarray(image, dtype=np.float32)
    std = float(image.std())
    return (image - float(image.mean())) / (std if std > 1e-6 else 1.0)


def resample(image: np.ndarray, shape: Tuple[int, int]) -> np.ndarray:
    """Bilinear resampling to ``shape``, anti-aliased when shrinking, pixel centres aligned (torch)."""
    import torch
    import torch.nn.functional as F

    image = np.asarray(image, dtype=np.float32)
    if tuple(image.shape) == tuple(shape):
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image))[None, None]
    out = F.interpolate(tensor, size=tuple(int(s) for s in shape), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].numpy()


def frame_for(image_shape: Tuple[int, int], mode: str = "resize", size: int = INPUT_SIZE,
              pixel_mm: float = 1.0, native_mm: float = 1.5) -> Frame:
    """The :class:`Frame` of an image of ``image_shape`` (rows, columns).

    Raises:
        ValueError: for an unknown mode.

    """
    rows, cols = int(image_shape[0]), int(image_shape[1])
    if mode == "resize":
        return Frame((size / cols, size / rows), (size, size))
    if mode == "native":
        factor = float(pixel_mm) / float(native_mm)
        shape = (max(1, int(round(rows * factor))), max(1, int(round(cols * factor))))
        return Frame((shape[1] / cols, shape[0] / rows), shape)
    raise ValueError(f"unknown input mode {mode!r}; expected 'resize' or 'native'")


def prepare(image: np.ndarray, mode: str = "resize", size: int = INPUT_SIZE, pixel_mm: float = 1.0,
            native_mm: float = 1.5) -> Tuple[np.ndarray, Frame]:
    """The normalised network input of a radiograph and its :class:`Frame`.

    In native mode the result is padded (bottom / right, with its minimum) to a multiple of
    :data:`NATIVE_DIVISOR`.
    """
    frame = frame_for(np.shape(image), mode, size, pixel_mm, native_mm)
    out = normalise(resample(image, frame.shape))
    if mode == "native":
        rows = -(-out.shape[0] // NATIVE_DIVISOR) * NATIVE_DIVISOR
        cols = -(-out.shape[1] // NATIVE_DIVISOR) * NATIVE_DIVISOR
        padded = np.full((rows, cols), float(out.min()), dtype=np.float32)
        padded[: out.shape[0], : out.shape[1]] = out
        out = padded
    return out, frame


def gaussian_targets(points: np.ndarray, channels_of_points: np.ndarray, n_channels: int, shape: Tuple[int, int],
                     sigma: float) -> np.ndarray:
    """Heatmaps (C, rows, cols) with a Gaussian of peak 1 at each point in its channel (Gartland et al. 2025, §2)."""
    out = np.zeros((n_channels, *shape), dtype=np.float32)
    y = np.arange(shape[0], dtype=np.float32)[:, None]
    x = np.arange(shape[1], dtype=np.float32)[None, :]
    for (px, py), channel in zip(np.asarray(points, dtype=np.float64).reshape(-1, 2), channels_of_points):
        g = np.exp(-((y - py) ** 2) / (2.0 * sigma**2)) * np.exp(-((x - px) ** 2) / (2.0 * sigma**2))
        out[int(channel)] = np.maximum(out[int(channel)], g)
    return out
