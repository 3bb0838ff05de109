"""Make ``docs/gallery.png``: synthetic cases of every preset beside the real sample CT.

Top row: curved mid-sagittal CT slices (the slice follows the centre-line left-right, so a
scoliotic column stays in plane) with the ground-truth keypoints and body centres, window
[-200, 1000] HU, the real-shape mode (VerSe sub-verse004 mask) and the same view of the real
TotalSegmentator sample CT. Bottom row: the point-source lateral DRRs of the same cases with
their projected keypoints, and a curved coronal slice of the scoliosis case. Usage::

    python docs/make_gallery.py [--out docs/gallery.png] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REAL_CT = (
    "Testing/Data/real/totalsegmentator/example_ct.nii.gz",
    "Testing/Data/real/totalsegmentator/example_ct.nii.gz",
)
REAL_MASK = (
    "Testing/Data/real/verse/sub-verse004_seg-vert_msk.nii.gz",
    "Testing/Data/real/verse/sub-verse004_seg-vert_msk.nii.gz",
)
PRESETS = ("spine", "chest", "abdomen", "scoliosis")
WINDOW = (-200, 1000)


def curved_sagittal(array: np.ndarray, origin, spacing, x_of_z) -> np.ndarray:
    """``array[k, j, i]`` sampled at i(k) following x_of_z (mm), one sagittal line per slice."""
    z = origin[2] + np.arange(array.shape[0]) * spacing[2]
    i = np.clip(np.rint((x_of_z(z) - origin[0]) / spacing[0]).astype(int), 0, array.shape[2] - 1)
    return array[np.arange(array.shape[0]), :, i]


def _show(ax, image, origin, spacing, title, window=WINDOW):
    extent = [origin[1], origin[1] + spacing[1] * image.shape[1], origin[2], origin[2] + spacing[2] * image.shape[0]]
    ax.imshow(image, cmap="gray", vmin=window[0], vmax=window[1], origin="lower", extent=extent, aspect="equal")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("y (mm, anterior -> posterior)", fontsize=7)
    ax.tick_params(labelsize=6)


def main() -> None:
    """Render the gallery."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import SimpleITK as sitk

    from VertebralFractureLib.io.images import to_canonical
    from VertebralFractureLib.synth import generate_case

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(HERE / "gallery.png"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    fig, axes = plt.subplots(2, len(PRESETS) + 2, figsize=(4.2 * (len(PRESETS) + 2), 13))
    cases = {}
    for column, preset in enumerate(PRESETS):
        case = generate_case(args.seed + column, preset, fracture_prevalence=0.25, radiograph_sid_mm=None)
        cases[preset] = case
        ct = to_canonical(case.ct)
        array = sitk.GetArrayFromImage(ct)
        line = case.centreline

        def x_of_z(z, line=line):
            order = np.argsort(line[:, 2])
            return np.interp(z, line[order, 2], line[order, 0])

        image = curved_sagittal(array, ct.GetOrigin(), ct.GetSpacing(), x_of_z)
        ax = axes[0, column]
        fractured = [
            f"{v.label} g{v.measure.grade}{v.measure.type[0]}" for v in case.truth.vertebrae if v.measure.grade
        ]
        if len(fractured) > 5:
            fractured = fractured[:5] + [f"+{len(fractured) - 5}"]
        _show(
            ax,
            image,
            ct.GetOrigin(),
            ct.GetSpacing(),
            f"synthetic '{preset}' (seed {args.seed + column})\n{', '.join(fractured) or 'no fracture'}",
        )
        for v in case.truth.vertebrae:
            colour = "red" if v.measure.grade else "lime"
            k = v.keypoints
            for a, b in ((0, 1), (2, 3), (4, 5)):
                ax.plot(k[[a, b], 1], k[[a, b], 2], "-", color=colour, lw=0.6)
            ax.plot(k[:, 1], k[:, 2], ".", color=colour, ms=2.5)
            ax.text(k[0, 1] - 8, v.centroid[2], v.label, color="yellow", fontsize=6, ha="right", va="center")
        ax.plot(line[:, 1], line[:, 2], "-", color="cyan", lw=0.4)
        drr_ax = axes[1, column]
        drr_ax.imshow(case.radiograph, cmap="gray", vmin=0, vmax=1)
        for v in case.radiograph_truth.vertebrae:
            drr_ax.plot(v.keypoints[:, 0], v.keypoints[:, 1], ".", color="red" if v.measure.grade else "lime", ms=2)
        drr_ax.set_title(
            f"lateral DRR '{preset}' (point source, SID {case.params.radiograph_sid_mm:.0f} mm)", fontsize=9
        )
        drr_ax.axis("off")

    mask_path = next((Path(p) for p in REAL_MASK if Path(p).exists()), None)
    if mask_path is not None:
        from VertebralFractureLib.synth import generate_from_mask

        case = generate_from_mask(sitk.ReadImage(str(mask_path)), args.seed, grades={"T9": 2, "T10": 2, "L1": 3})
        array = sitk.GetArrayFromImage(case.ct)
        line = case.centreline
        order = np.argsort(line[:, 2])
        image = curved_sagittal(
            array, case.ct.GetOrigin(), case.ct.GetSpacing(), lambda z: np.interp(z, line[order, 2], line[order, 0])
        )
        ax = axes[0, -2]
        _show(
            ax,
            image,
            case.ct.GetOrigin(),
            case.ct.GetSpacing(),
            "real-shape mode: VerSe sub-verse004 mask\ndrawn with the tissue model (keypoints from the mask)",
        )
        for v in case.truth.vertebrae:
            colour = "red" if v.measure and v.measure.grade else "lime"
            ax.plot(v.keypoints[:, 1], v.keypoints[:, 2], ".", color=colour, ms=2.5)
            ax.text(v.keypoints[0, 1] - 8, v.centroid[2], v.label, color="yellow", fontsize=6, ha="right")
        axes[1, -2].imshow(case.radiograph, cmap="gray", vmin=0, vmax=1)
        axes[1, -2].set_title("lateral DRR, real-shape mode", fontsize=9)
        axes[1, -2].axis("off")
    real_path = next((Path(p) for p in REAL_CT if Path(p).exists()), None)
    ax = axes[0, -1]
    if real_path is not None:
        real = to_canonical(sitk.ReadImage(str(real_path)))
        array = sitk.GetArrayFromImage(real).astype(np.float32)
        origin, spacing = real.GetOrigin(), real.GetSpacing()
        bone = np.argwhere(array > 250)
        i_spine = int(np.median(bone[:, 2]))
        _show(
            ax,
            array[:, :, i_spine],
            origin,
            spacing,
            f"real CT (TotalSegmentator sample, {spacing[0]:g} mm)\nmid-sagittal, same window",
        )
    else:
        ax.set_title("real CT not found")
    # coronal slice of the scoliosis case through the centre-line
    case = cases["scoliosis"]
    ct = to_canonical(case.ct)
    array = sitk.GetArrayFromImage(ct)
    origin, spacing = ct.GetOrigin(), ct.GetSpacing()
    z = origin[2] + np.arange(array.shape[0]) * spacing[2]
    order = np.argsort(case.centreline[:, 2])
    y_of_z = np.interp(z, case.centreline[order, 2], case.centreline[order, 1])
    j = np.clip(np.rint((y_of_z - origin[1]) / spacing[1]).astype(int), 0, array.shape[1] - 1)
    coronal = array[np.arange(array.shape[0]), j, :]  # curved coronal: follows the centre-line front to back
    ax = axes[1, -1]
    extent = [origin[0], origin[0] + spacing[0] * array.shape[2], origin[2], origin[2] + spacing[2] * array.shape[0]]
    ax.imshow(coronal, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], origin="lower", extent=extent)
    cobb = case.params.scoliosis_deg
    ax.set_title(f"curved coronal slice, 'scoliosis' (Cobb {cobb:.0f} deg)", fontsize=9)
    ax.set_xlabel("x (mm, right -> left)", fontsize=7)
    ax.tick_params(labelsize=6)
    fig.suptitle(
        "VertebralFractureLib.synth: synthetic spines (keypoints: green normal, red fractured) vs real CT", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(args.out, dpi=90)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
