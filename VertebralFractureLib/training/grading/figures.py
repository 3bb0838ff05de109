"""Embedding plots like Husseini et al. 2020, Fig. 3: t-SNE of the learnt representations, coloured by grade.

Uses scikit-learn's ``TSNE`` when scikit-learn is installed (optional, evaluation only); otherwise
falls back to a PCA projection and says so in the title.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Tuple, Union

import numpy as np

GRADE_COLOURS = {0: "#4c9a2a", 1: "#bbbbbb", 2: "#e69f00", 3: "#d62728"}


def project_2d(embedding: np.ndarray, seed: int = 0) -> Tuple[np.ndarray, str]:
    """2D projection of ``(N, D)`` embeddings and the method's name (``"t-SNE"`` or ``"PCA"``)."""
    x = np.asarray(embedding, dtype=float)
    try:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, max(2.0, (len(x) - 1) / 3.0)))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x), "t-SNE"
    except ImportError:
        centred = x - x.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        return centred @ vt[:2].T, "PCA (scikit-learn not installed)"


def plot_embeddings(panels: Dict[str, Tuple[np.ndarray, np.ndarray]], path: Union[str, Path], seed: int = 0) -> Path:
    """Write a PNG with one scatter panel per loss.

    Args:
        panels: title -> (embeddings ``(N, D)``, grades ``(N,)``).
        path: output PNG.
        seed: t-SNE seed.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, (embedding, grades)) in zip(axes[0], panels.items()):
        xy, method = project_2d(embedding, seed)
        for grade in (0, 1, 2, 3):
            keep = np.asarray(grades) == grade
            if keep.any():
                label = "healthy" if grade == 0 else f"grade {grade}"
                ax.scatter(xy[keep, 0], xy[keep, 1], s=7 if grade == 0 else 14, c=GRADE_COLOURS[grade], label=label,
                           alpha=0.7, linewidths=0)
        ax.set_title(f"{title} ({method})", fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="best", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
