"""Sample predictions of the Gartland et al. 2025 centroid net (after Gartland et al. 2025, appendix C, Fig. 1)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

import numpy as np


def sample_figure(model, views: Sequence, path: Union[str, Path], title: str = "", columns: int = 4) -> Path:
    """Views with true centroids (green: labelled, yellow: in view but unlabelled) and predictions (red).

    Predictions are the layers whose peak passes the model's presence threshold, named by level.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ...io.atomic import atomic_path
    from ...radiograph.locate import locate_levels

    rows = -(-len(views) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 4.2 * rows), dpi=90, squeeze=False)
    for axis in axes.ravel():
        axis.set_axis_off()
    for axis, view in zip(axes.ravel(), views):
        axis.imshow(view.image, cmap="gray", vmin=0, vmax=float(np.percentile(view.image, 99.5)))
        labelled = view.labels(model.levels)
        for level, point in view.visible(model.levels).items():
            colour = "lime" if level in labelled else "yellow"
            axis.plot(point[0], point[1], "o", mfc="none", mec=colour, ms=9, mew=1.2)
        for level, (x, y, _) in locate_levels(view.image, model, view.pixel_mm).items():
            axis.plot(x, y, "+", color="red", ms=8, mew=1.5)
            axis.text(x - 12, y, level, color="red", fontsize=7, ha="right", va="center")
        axis.set_title(f"seed {view.seed}: {sum(view.labelled)} labelled", fontsize=8)
    figure.suptitle(title + "\ncircles: truth (green labelled, yellow unlabelled); red +: predicted", fontsize=10)
    figure.tight_layout()
    with atomic_path(path, overwrite=True) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(path)
