"""Pictures of mask-derived measures: keypoints on the mid-sagittal slice, abnormality colours.

Bodies are coloured by abnormality (green 0 -> red 100,
:func:`VertebralFractureLib.colors.abnormality_color`) with a legend; the same colours go into a
Slicer segmentation (:func:`abnormality_segments`).

The slice is the least-squares plane through the body centroids whose normal is the mean lateral
axis of the bodies; keypoints (which lie in each body's own mid-sagittal plane) are projected on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

import numpy as np

from ..colors import abnormality_color, grade_color
from ..levels import label_from_level
from ..schema import SpineResult

PathLike = Union[str, Path]


def abnormality_segments(result: SpineResult, scores: Optional[Dict[str, float]] = None) -> list:
    """One segment per vertebra, named by level and coloured by its abnormality score."""
    from .outputs import segments_for

    return segments_for(result, "abnormality", scores)


def _plane(result: SpineResult):
    """Centre, superior and posterior in-plane axes of the spine's mid-sagittal plane."""
    from ..masks import body_frame

    frames = [body_frame(v.keypoints) for v in result.vertebrae]
    centres = np.array([f[0] for f in frames])
    lateral = np.mean([f[3] for f in frames], axis=0)
    lateral /= np.linalg.norm(lateral)
    superior = np.array([0.0, 0.0, 1.0]) - lateral[2] * lateral
    superior /= np.linalg.norm(superior)
    posterior = np.cross(lateral, superior)
    return centres.mean(axis=0), superior, posterior, lateral


def render_keypoints_figure(mask_image, result: SpineResult, path: PathLike, *, title: str = "",
                            grades: Optional[Dict[str, int]] = None, step: float = 0.5) -> Path:
    """PNG of the mid-sagittal slice of a label mask, bodies coloured by abnormality, six keypoints per vertebra.

    Args:
        mask_image: SimpleITK VerSe label image.
        result: mask-derived result (keypoints, measures, optional abnormality).
        path: target PNG.
        title: figure title.
        grades: optional reference grades (e.g. radiologists') printed beside the measured ones.
        step: pixel size of the slice in mm.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk
    from matplotlib.colors import LinearSegmentedColormap
    from scipy import ndimage

    from ..io.atomic import atomic_path
    from ..io.images import geometry_of

    geometry = geometry_of(mask_image)
    array = sitk.GetArrayViewFromImage(mask_image)
    centre, superior, posterior, _ = _plane(result)
    points = np.concatenate([v.keypoints for v in result.vertebrae])
    rel = points - centre
    s_range = (rel @ superior).min() - 40, (rel @ superior).max() + 40
    p_range = (rel @ posterior).min() - 25, (rel @ posterior).max() + 150
    text_x = (rel @ posterior).max() + 30
    s = np.arange(s_range[1], s_range[0], -step)
    p = np.arange(p_range[0], p_range[1], step)
    ss, pp = np.meshgrid(s, p, indexing="ij")
    world = centre + ss[..., None] * superior + pp[..., None] * posterior
    index = geometry.lps_to_index(world.reshape(-1, 3))[:, ::-1]
    labels = ndimage.map_coordinates(np.asarray(array), index.T, order=0, mode="constant", cval=0).reshape(ss.shape)
    rgb = np.full((*labels.shape, 3), 0.08)
    for v in result.vertebrae:
        colour = abnormality_color(v.abnormality) if v.abnormality is not None else (0.55, 0.55, 0.6)
        rgb[labels == label_from_level(v.label)] = colour
    others = (labels > 0) & ~np.isin(labels, [label_from_level(v.label) for v in result.vertebrae])
    rgb[others] = 0.35
    figure, axis = plt.subplots(figsize=(8.5, 9.5))
    extent = (p[0], p[-1], s[-1], s[0])
    axis.imshow(rgb, extent=extent, interpolation="nearest")
    for v in result.vertebrae:
        local = (v.keypoints - centre) @ np.stack([posterior, superior]).T
        for a, b in ((0, 1), (2, 3), (4, 5)):
            axis.plot(local[[a, b], 0], local[[a, b], 1], "-", color="white", lw=1.0)
        axis.plot(local[:, 0], local[:, 1], "o", ms=3.5, mfc="cyan", mec="black", mew=0.5)
        m = v.measure
        text = f"{v.label}  G={m.G:.2f} gr {m.grade}" if m else v.label
        if grades and v.label in grades:
            text += f" (rad {grades[v.label]})"
        if v.abnormality is not None:
            text += f"  A={v.abnormality:.0f}"
        colour = grade_color(m.grade) if m else (0.7, 0.7, 0.7)
        axis.text(text_x, local[:, 1].mean(), text, color=colour, fontsize=8, va="center",
                  bbox={"facecolor": "black", "alpha": 0.6, "pad": 1, "lw": 0})
    axis.set_xlabel("posterior (mm)")
    axis.set_ylabel("superior (mm)")
    axis.set_title(title or "mask-derived keypoints on the mid-sagittal slice", fontsize=10)
    ramp = LinearSegmentedColormap.from_list("abnormality", [abnormality_color(x) for x in (0, 50, 100)])
    mappable = plt.cm.ScalarMappable(cmap=ramp, norm=plt.Normalize(0, 100))
    bar = figure.colorbar(mappable, ax=axis, fraction=0.04, pad=0.02)
    bar.set_label("abnormality (Botros et al. 2022), 0 normal - 100 abnormal")
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path, overwrite=True) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return path
