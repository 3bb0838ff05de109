"""Overview picture of a centre-line: coronal and sagittal MIPs with the curve, and the mid-sagittal image.

``python -m VertebralFractureLib.training.centreline.figures CT.nii.gz OUT.png [--weights FILE]`` finds the
centre-line (Pisov et al. 2020, section 3.1, Fig. 2), straightens the CT and writes the picture; used for
``docs/centreline_overview.png`` and for checking the network on real CT.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

WINDOW = (-250.0, 1250.0)


def overview_figure(image, centreline, straightened, path, title: str = "", truth_points=None) -> Path:
    """Write the overview PNG.

    Args:
        image: SimpleITK CT.
        centreline: :class:`~VertebralFractureLib.spine.centreline.Centreline` (or anything with
            ``points`` (N, 3) LPS and ``confidence``).
        straightened: :class:`~VertebralFractureLib.spine.straighten.StraightenedSpine`.
        path: output ``.png``.
        title: figure title.
        truth_points: optional (M, 3) LPS ground-truth centres, drawn in green.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    from ...io.atomic import atomic_path
    from ...io.images import geometry_of, to_canonical

    canonical = to_canonical(image)
    array = sitk.GetArrayFromImage(canonical).astype(np.float32)
    g = geometry_of(canonical)
    (x0, y0, z0), (sx, sy, sz) = g.origin, g.spacing
    nx, ny, nz = g.size
    x_ext = (x0 - sx / 2, x0 + (nx - 0.5) * sx)
    y_ext = (y0 - sy / 2, y0 + (ny - 0.5) * sy)
    z_ext = (z0 - sz / 2, z0 + (nz - 0.5) * sz)
    coronal = array.max(axis=1)  # [k, i]
    sagittal = array.max(axis=2)  # [k, j]
    points = np.asarray(centreline.points)
    confidence = np.asarray(getattr(centreline, "confidence", np.ones(len(points))))
    ms = straightened.mid_sagittal()
    height = max(z_ext[1] - z_ext[0], ms.shape[0] * straightened.spacing)
    widths = [x_ext[1] - x_ext[0], y_ext[1] - y_ext[0], ms.shape[1] * straightened.spacing]
    fig, axes = plt.subplots(1, 3, figsize=(4 + sum(widths) / height * 6, 7),
                             gridspec_kw={"width_ratios": widths})  # fmt: skip
    style = {"cmap": "gray", "vmin": WINDOW[0], "vmax": WINDOW[1], "origin": "lower", "interpolation": "bilinear"}
    axes[0].imshow(coronal, extent=(*x_ext, *z_ext), **style)
    axes[0].scatter(points[:, 0], points[:, 2], c=confidence, cmap="autumn", vmin=0, vmax=1, s=2)
    if truth_points is not None:
        truth = np.asarray(truth_points, dtype=float).reshape(-1, 3)
        axes[0].scatter(truth[:, 0], truth[:, 2], c="lime", marker="x", s=25, linewidths=1)
        axes[1].scatter(truth[:, 1], truth[:, 2], c="lime", marker="x", s=25, linewidths=1)
        rows_cols, _ = straightened.patient_to_mid_sagittal(truth)
        p_mm = rows_cols[:, 1] * straightened.spacing - straightened.half_width_ap
        axes[2].scatter(p_mm, rows_cols[:, 0] * straightened.spacing, c="lime", marker="x", s=25, linewidths=1)
    axes[0].set_title("coronal MIP (patient right on the left)")
    axes[0].set_xlabel("x (mm, L+)")
    axes[0].set_ylabel("z (mm, S+)")
    axes[1].imshow(sagittal, extent=(*y_ext, *z_ext), **style)
    axes[1].scatter(points[:, 1], points[:, 2], c=confidence, cmap="autumn", vmin=0, vmax=1, s=2)
    axes[1].set_title("sagittal MIP (anterior on the left)")
    axes[1].set_xlabel("y (mm, P+)")
    half = straightened.half_width_ap
    length = ms.shape[0] * straightened.spacing
    axes[2].imshow(ms, extent=(-half, half, length, 0), cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1],
                   interpolation="bilinear")  # fmt: skip
    axes[2].axvline(0.0, color="orange", lw=0.6, alpha=0.6)
    axes[2].set_title("straightened mid-sagittal")
    axes[2].set_xlabel("p (mm, posterior+)")
    axes[2].set_ylabel("arc length s (mm, superior at top)")
    for ax in axes:
        ax.set_aspect("equal")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as temporary:
        fig.savefig(temporary, dpi=110, format="png")
    plt.close(fig)
    return Path(path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("image")
    parser.add_argument("out")
    parser.add_argument("--weights", default=None)
    parser.add_argument("--spacing", type=float, default=1.0)
    parser.add_argument("--half-width", type=float, default=60.0)
    args = parser.parse_args(argv)
    from ...io.images import read_image
    from ...spine.centreline import find_centreline
    from ...spine.straighten import straighten

    image = read_image(args.image)
    centreline = find_centreline(image, args.weights)
    straightened = straighten(image, centreline, args.spacing, args.half_width, margin_mm=10.0)
    overview_figure(image, centreline, straightened, args.out, title=Path(args.image).name)
    present = centreline.present
    print(f"{args.out}: {len(centreline.points)} curve points, {int(present.sum())}/{len(present)} slices with spine, "
          f"mean confidence {float(np.mean(centreline.confidence)):.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
