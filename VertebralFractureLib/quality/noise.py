"""How far the image's own noise moves a measured height loss: each graded body re-measured on noisy copies.

A Genant grade is a threshold on a measured height ratio (Genant et al. 1993: a loss of 20 % is grade 1, of 25 %
grade 2), and the keypoints behind it are edges found in the CT (:func:`VertebralFractureLib.keypoints.refine.
refine_on_ct`). On a noisy scan (low dose, a sharp kernel, a large patient) those edges move by a millimetre or more,
and a normal body near the threshold is read over it: the real sample CT (3 mm slices) with 40 HU of added noise
graded its normal L4 (G 0.82 for both readers, 0.80 measured on the clean scan) 2 on 2 of 8 noise seeds, G 0.74 and
0.68 (docs/findings.md, "A grade the image's noise can make").

What is done here, a parametric bootstrap (Efron and Tibshirani 1993, ch. 6): the image's noise SD is estimated
around the body (:func:`noise_sd`), the body's box is copied :data:`NOISE_DRAWS` times with that much white noise
added, and on each copy the refinement is run again from the detector's points, exactly as the analysis ran it
(:func:`VertebralFractureLib.keypoints.refine.reading_ct`, then ``refine_on_ct``). The spread of the re-measured
height loss is the measurement's uncertainty on this image; a loss is confirmed only when it exceeds the grade-1
threshold by :func:`confirm_factor` such spreads. The copies carry the image's noise twice over (its own and the
added), so the spread errs on the large side: a grade withheld here is one the image does not clearly show, which
this project reports as "not assessed" (a withheld loss still asks for a look when a validated learned score agrees,
:mod:`VertebralFractureLib.verdict`).

The noise SD: the median absolute response to Immerkaer's Laplacian-difference mask on each axial slice of the box
(Immerkaer 1996, "Fast noise variance estimation", Computer Vision and Image Understanding 64(2):300-302; the mask
cancels a linear ramp, and the median instead of the mean keeps the edges of bone and organs out of it). For white
noise of SD s it gives s; noise that the reconstruction kernel correlates over neighbouring pixels gives less, and
so does a slice averaged from thinner ones.
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..geometry import ImageGeometry, box_around

#: Noisy copies of a body re-measured (each costs one refinement, about 0.1 s on one core).
NOISE_DRAWS = 16
#: A height loss is confirmed when it exceeds the grade-1 threshold by Student's t at this one-sided level (with the
#: copies' degrees of freedom: 2.60 for 16 copies) times the SD of the re-measured losses. 99 %, not 95 %: a
#: spine has a dozen bodies and a screening site thousands of spines, and a normal body read 2 SDs short is what
#: the noisy sample CT's L4 was on one seed of eight (loss 32 %, re-measured SD 3-10 % over six seeds of the copies).
NOISE_CONFIDENCE = 0.99


def confirm_factor(copies: int) -> float:
    """SDs of ``copies`` re-measured losses a loss must clear the grade-1 threshold by (:data:`NOISE_CONFIDENCE`)."""
    from scipy import stats

    return float(stats.t.ppf(NOISE_CONFIDENCE, max(copies - 1, 1)))
#: Margin (mm) of the box copied around a body's points: the refinement reads the body's side walls (half a body
#: width, up to 28 mm, from its middle) and searches its endplates 8 mm beyond the detector's points.
NOISE_BOX_MARGIN_MM = 40.0
#: Fixed seed of the added noise: the same scan gives the same verdict on every run.
NOISE_SEED = 20261207
#: Immerkaer's mask (the difference of two Laplacians; the sum of its squared weights is 36).
_MASK = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
#: Median of |N(0, 1)|.
_MEDIAN_ABS_NORMAL = 0.6745


def noise_sd(array: np.ndarray) -> float:
    """The noise SD (HU) of a ``[k, j, i]`` array, from each axial slice's Immerkaer response (module docstring).

    Returns:
        The median over slices of ``median(|slice * mask|) / 0.6745 / 6``; NaN for slices smaller than 3 x 3.
    """
    from scipy import ndimage

    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 3 or min(array.shape[1:]) < 3:
        return float("nan")
    per_slice = [np.median(np.abs(ndimage.convolve(plane, _MASK, mode="nearest")[1:-1, 1:-1])) for plane in array]
    return float(np.median(per_slice) / _MEDIAN_ABS_NORMAL / 6.0)


def remeasured_heights(array: np.ndarray, geometry: ImageGeometry, start: np.ndarray,
                       draws: int = NOISE_DRAWS, seed: int = NOISE_SEED,
                       sigma: Optional[float] = None) -> tuple[np.ndarray, float]:
    """The body's three heights measured again on ``draws`` copies of its box with the image's noise added.

    Args:
        array: the canonical CT ``[k, j, i]`` (HU).
        geometry: its geometry.
        start: (6, 3) LPS points the refinement started from (the detector's).
        draws: copies.
        seed: seed of the added noise.
        sigma: noise SD to add (HU); None: :func:`noise_sd` of the box.

    Returns:
        ``(heights, sigma)``: (n, 3) heights (mm) of the copies whose points gave valid heights, and the SD added.
        Where the box is too small to measure its noise (:func:`noise_sd` NaN: a body at the edge of the image), no
        copy is made: ``(empty, NaN)``.
    """
    from ..genant import GenantError, heights
    from ..keypoints.refine import reading_ct, refine_on_ct

    start = np.asarray(start, dtype=float).reshape(6, 3)
    box, boxed = box_around(array, geometry, start, NOISE_BOX_MARGIN_MM)
    if sigma is None:
        sigma = noise_sd(box)
    if not np.isfinite(sigma):
        return np.zeros((0, 3)), float("nan")
    rng = np.random.default_rng(seed)
    measured = []
    for _ in range(draws):
        noisy = box + rng.normal(0.0, sigma, box.shape).astype(np.float32)
        try:
            measured.append(heights(refine_on_ct(reading_ct((noisy, boxed), start), start)))
        except GenantError:
            continue
    return np.asarray(measured, dtype=float).reshape(-1, 3), float(sigma)
