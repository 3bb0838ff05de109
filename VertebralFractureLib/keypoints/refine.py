"""End-plate refinement of detected keypoints: snap each point to the disc / end-plate edge.

The region-proposal network (Pisov et al. 2020, §3.2, eq. 2) regresses the six keypoints as offsets from anchor
shapes; on fractured bodies it stays close to a normal shape (a biconcave end plate's middle
point sits on the straight line between the corners), so G comes out too high and the moderate
sensitivity was 0.31 on the held-out cases. 001 measures the heights on the end plates, which in
the mid-sagittal CT image are sharp edges: going from the disc into the body the intensity rises
(superior end plate), going out of the body it falls (inferior end plate). Each keypoint is moved
along its column (the straightened image's rows follow the spine) to the strongest such edge
within ``SEARCH_MM``, then ``OFFSET_MM`` into the body (the annotated point lies on the end plate,
just inside the edge's steepest slope). The profile is averaged over three columns, ``INSET_MM``
towards the body's middle for the anterior and posterior points, and smoothed by a Gaussian of
``SIGMA_MM``. The constants were chosen on 40 training cases (runs/keypoints_cache), never on the
held-out set.
"""

from __future__ import annotations

import numpy as np

#: Half length of the search along the column (mm).
SEARCH_MM = 5.0
#: Final shift from the edge into the body (mm).
OFFSET_MM = 1.0
#: Sampling column moved towards the middle of the body for the anterior / posterior points (mm).
INSET_MM = 0.5
#: Gaussian smoothing of the profile (mm).
SIGMA_MM = 1.0
_STEP_MM = 0.25


def refine_endplates(
    image: np.ndarray,
    keypoints: np.ndarray,
    search_mm: float = SEARCH_MM,
    offset_mm: float = OFFSET_MM,
    inset_mm: float = INSET_MM,
    sigma_mm: float = SIGMA_MM,
) -> np.ndarray:
    """Snap keypoints to end-plate edges.

    Args:
        image: (H, W) image at 1 mm pixels, rows superior -> inferior (normalised or HU).
        keypoints: (n, 6, 2) or (6, 2) ``[column, row]`` pixels, genant.KEYPOINT_NAMES order
            (superior / inferior of anterior, middle, posterior).
        search_mm: half length of the search (``SEARCH_MM``).
        offset_mm: shift from the edge into the body (``OFFSET_MM``).
        inset_mm: column inset of the anterior / posterior profiles (``INSET_MM``).
        sigma_mm: profile smoothing (``SIGMA_MM``).

    Returns:
        Refined keypoints, same shape; columns unchanged.

    """
    from scipy.ndimage import gaussian_filter1d, map_coordinates

    image = np.asarray(image, dtype=np.float32)
    points = np.array(keypoints, dtype=np.float64)
    flat = points.reshape(-1, 6, 2)
    steps = np.arange(-search_mm, search_mm + 1e-6, _STEP_MM)
    for vertebra in flat:
        for index in range(6):
            column, row = vertebra[index]
            superior = index % 2 == 0
            inset = inset_mm if index < 2 else (-inset_mm if index >= 4 else 0.0)
            rows = row + steps
            profile = np.mean(
                [map_coordinates(image, [rows, np.full_like(rows, column + inset + d)], order=1, mode="nearest")
                 for d in (-1.0, 0.0, 1.0)],
                axis=0,
            )
            gradient = np.gradient(gaussian_filter1d(profile, sigma_mm / _STEP_MM))
            best = int(np.argmax(gradient if superior else -gradient))
            vertebra[index, 1] = rows[best] + (offset_mm if superior else -offset_mm)
    return flat.reshape(points.shape)
