"""How realistic the generator is: HU by tissue, noise, edge sharpness and anatomy, real CTs beside generated ones.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_realism.py [--seeds 3] [--per-case] [--figure docs/realism.png]

REAL: the CT reference cases of ``Testing/Data/real/reference`` (sample_ct, tptbox_L3, verse004_L2_crop,
cptac_chest, cptac_cardiac_a, cptac_cardiac_b), measured at the annotated centroids and keypoints. The
verse004 crop is masked to the bone (zero outside), so it gives bone HU only; the tptbox and verse004 crops
around one vertebra give no field-of-view measures.

GENERATED: ``generate_case(seed, preset, spacing=..., radiograph=False)`` with the held-out seeds of
``bench_generated.py`` (case i = seed 900000 + i, presets in the order chest, abdomen, spine, scoliosis; the
scoliosis seeds are skipped): chest at the cptac spacing (1.1, 1.1, 3.0), abdomen at the sample_ct spacing
(3, 3, 3), spine at the tptbox spacing (1.5, 1.5, 1.5). Measured at the true centroids and keypoints.

Measures: :mod:`VertebralFractureLib.training.realism`. HU rows: median [10th-90th percentile] of the voxels
pooled over the cases (each case weighted equally); cortical: median [p10-p90] over the bodies of the 99th
percentile around each; noise and anatomy: median [min-max] over the cases; edges: median [p10-p90] over
the bodies' edges.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import List, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from VertebralFractureLib.training.realism import Body, CaseMeasures, measure_case, volume_from_image  # noqa: E402

FIRST_SEED = 900000
#: preset -> (index in bench_generated's preset cycle, spacing of the matching real case)
GENERATED = {"chest": (0, (1.1, 1.1, 3.0)), "abdomen": (1, (3.0, 3.0, 3.0)), "spine": (2, (1.5, 1.5, 1.5))}
#: real cases: (soft tissue, edges, field-of-view measures)
REAL = {
    "sample_ct": (True, True, True),
    "tptbox_L3": (True, True, False),
    "verse004_L2_crop": (False, False, False),
    "cptac_chest": (True, True, True),
    "cptac_cardiac_a": (True, True, True),
    "cptac_cardiac_b": (True, True, True),
}
PER_CASE_VOXELS = 4000
WINDOW = (-250.0, 750.0)


def real_cases() -> List[Tuple[CaseMeasures, object, List[Body]]]:
    import SimpleITK as sitk

    from VertebralFractureLib.training.real.reference import list_cases, load_case

    out = []
    for case in list_cases():
        if case not in REAL:
            continue
        reference = load_case(case)
        volume = volume_from_image(sitk.ReadImage(str(reference.image_path)))
        bodies = [
            Body(
                v.label,
                np.asarray(v.centroid, float),
                None if v.keypoints is None else np.asarray(v.keypoints, float),
                v.in_view == "full",
            )
            for v in reference.vertebrae
        ]
        soft, edges, anatomy = REAL[case]
        out.append((measure_case(case, volume, bodies, soft_tissue=soft, edges=edges, anatomy=anatomy), volume, bodies))
    return out


def generated_cases(seeds: int, realism: str = "v1") -> List[Tuple[CaseMeasures, object, List[Body]]]:
    from VertebralFractureLib.synth import generate_case

    out = []
    for preset, (offset, spacing) in GENERATED.items():
        for n in range(seeds):
            seed = FIRST_SEED + offset + 4 * n
            extra = {} if realism == "v1" else {"realism": realism}
            case = generate_case(seed, preset, spacing=spacing, radiograph=False, direction="LPS", **extra)
            volume = volume_from_image(case.ct)
            bodies = [
                Body(v.label, np.asarray(v.centroid, float), np.asarray(v.keypoints, float))
                for v in case.truth.vertebrae
            ]
            name = f"{preset}_{seed} (noise {case.params.noise_hu:.0f} HU, blur {case.params.blur_mm:.2f} mm)"
            out.append((measure_case(name, volume, bodies), volume, bodies))
    return out


def pooled(cases: Sequence[CaseMeasures], tissue: str) -> np.ndarray:
    """Voxels of one tissue, at most PER_CASE_VOXELS per case (fixed subsample) so every case weighs the same."""
    rng = np.random.default_rng(0)
    parts = []
    for c in cases:
        values = c.hu.get(tissue, np.zeros(0))
        if values.size > PER_CASE_VOXELS:
            values = rng.choice(values, PER_CASE_VOXELS, replace=False)
        parts.append(values)
    return np.concatenate(parts) if parts else np.zeros(0)


def spread(values: Sequence[float], kind: str = "p10-p90", scale: float = 1.0, digits: int = 0) -> str:
    """``median [low, high] n=...``; n counts the finite values, ``n=a/b`` when some were not measurable."""
    total = len(values)
    values = np.asarray([v for v in values if np.isfinite(v)], float) * scale
    if values.size == 0:
        return "n/a"
    low, high = (values.min(), values.max()) if kind == "min-max" else np.percentile(values, [10, 90])
    n = f"{values.size}" if values.size == total else f"{values.size}/{total}"
    return f"{np.median(values):.{digits}f} [{low:.{digits}f}, {high:.{digits}f}] n={n}"


def rows(real: Sequence[CaseMeasures], generated: Sequence[CaseMeasures]) -> List[Tuple[str, str, str]]:
    table = []
    for tissue in ("cancellous", "disc", "muscle", "fat"):
        r, g = pooled(real, tissue), pooled(generated, tissue)
        table.append(
            (
                f"HU {tissue} (voxels)",
                spread(r).rsplit(" n=", 1)[0] + f" ({_n(real, tissue)} cases)",
                spread(g).rsplit(" n=", 1)[0] + f" ({_n(generated, tissue)} cases)",
            )
        )
    table.append(("HU cortical: p99 in 40 mm cube (bodies)", spread(_cortical(real)), spread(_cortical(generated))))
    for key, label, digits in (
        ("muscle", "noise SD muscle, HU (cases)", 1),
        ("fat", "noise SD fat, HU (cases)", 1),
        ("nps_centroid", "NPS centroid along x, /Nyquist (cases)", 2),
    ):
        table.append(
            (
                label,
                spread([c.noise[key] for c in real if c.noise], "min-max", digits=digits),
                spread([c.noise[key] for c in generated if c.noise], "min-max", digits=digits),
            )
        )
    for key, label in (("anterior", "edge 10-90% anterior cortex, mm"), ("endplate", "edge 10-90% endplates, mm")):
        table.append((label, spread(_edges(real, key), digits=2), spread(_edges(generated, key), digits=2)))
    for key, label, scale, digits in (
        ("contrast", "contrast vessel/heart, % of FOV", 100.0, 2),
        ("air", "air/lung < -500 HU, % of FOV", 100.0, 1),
        ("offset_ap", "spine AP offset, /FOV (+ posterior)", 1.0, 2),
        ("offset_lr", "spine LR offset, /FOV (+ left)", 1.0, 2),
    ):
        table.append(
            (
                label,
                spread([c.anatomy[key] for c in real if c.anatomy], "min-max", scale, digits),
                spread([c.anatomy[key] for c in generated if c.anatomy], "min-max", scale, digits),
            )
        )
    return table


def _n(cases: Sequence[CaseMeasures], tissue: str) -> int:
    return sum(1 for c in cases if c.hu.get(tissue, np.zeros(0)).size)


def _step_hist(ax, values, edges, colour: str, label: str, style: str = "-") -> None:
    """One outlined, normalised histogram of the figure."""
    ax.hist(values, edges, density=True, histtype="step", lw=2, ls=style, color=colour, label=label)


def _cortical(cases: Sequence[CaseMeasures]) -> List[float]:
    return [v for c in cases for v in c.cortical_p99]


def _edges(cases: Sequence[CaseMeasures], key: str) -> List[float]:
    return [v for c in cases for v in c.edges.get(key, [])]


def print_table(table: Sequence[Tuple[str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    widths = [max(w, len(h)) for w, h in zip(widths, ("measure", "REAL", "GENERATED"))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    print(line.format("measure", "REAL", "GENERATED"))
    print(line.format(*("-" * w for w in widths)))
    for r in table:
        print(line.format(*r))


def print_per_case(cases: Sequence[CaseMeasures]) -> None:
    for c in cases:
        hu = "  ".join(f"{k} {np.median(v):.0f}" for k, v in c.hu.items() if v.size)
        cortical = f"cortical {np.median(c.cortical_p99):.0f}" if c.cortical_p99 else ""
        noise = "  ".join(f"{k} {v:.2f}" for k, v in c.noise.items())
        edges = "  ".join(f"{k} {np.nanmedian(v):.2f} mm" for k, v in c.edges.items() if np.any(np.isfinite(v)))
        anatomy = "  ".join(f"{k} {v:.3f}" for k, v in c.anatomy.items())
        print(
            f"  {c.name} {tuple(round(s, 2) for s in c.spacing)}: {hu}  {cortical} | noise {noise} | "
            f"edges {edges} | {anatomy}"
        )


def sagittal(volume, bodies: Sequence[Body], half_ap: Tuple[float, float] = (-110.0, 70.0), height: float = 240.0):
    """Mid-sagittal slice (nearest x column to the median centroid x), cropped around the spine; extent in mm."""
    centroids = np.array([b.centroid for b in bodies])
    x, y, z = np.median(centroids[:, 0]), np.mean(centroids[:, 1]), np.mean(centroids[:, 2])
    i = int(np.clip(round((x - volume.origin[0]) / volume.spacing[0]), 0, volume.array.shape[2] - 1))
    plane = volume.array[:, :, i]  # (z, y)
    ys = volume.origin[1] + np.arange(plane.shape[1]) * volume.spacing[1]
    zs = volume.origin[2] + np.arange(plane.shape[0]) * volume.spacing[2]
    keep_y = (ys >= y + half_ap[0]) & (ys <= y + half_ap[1])
    keep_z = np.abs(zs - z) <= height / 2
    crop = plane[np.ix_(keep_z, keep_y)]
    sy, sz = volume.spacing[1], volume.spacing[2]
    extent = (
        ys[keep_y][0] - y - sy / 2,
        ys[keep_y][-1] - y + sy / 2,
        zs[keep_z][0] - z - sz / 2,
        zs[keep_z][-1] - z + sz / 2,
    )
    return crop, extent


def axial(volume, body: Body, half_lr: float = 110.0, ap: Tuple[float, float] = (-150.0, 70.0)):
    """Axial slice through a body's centroid, cropped around it; extent in mm relative to the centroid."""
    x, y, z = body.centroid
    k = int(np.clip(round((z - volume.origin[2]) / volume.spacing[2]), 0, volume.array.shape[0] - 1))
    plane = volume.array[k]  # (y, x)
    xs = volume.origin[0] + np.arange(plane.shape[1]) * volume.spacing[0]
    ys = volume.origin[1] + np.arange(plane.shape[0]) * volume.spacing[1]
    keep_x, keep_y = np.abs(xs - x) <= half_lr, (ys - y >= ap[0]) & (ys - y <= ap[1])
    crop = plane[np.ix_(keep_y, keep_x)]
    sx, sy = volume.spacing[0], volume.spacing[1]
    extent = (
        xs[keep_x][0] - x - sx / 2,
        xs[keep_x][-1] - x + sx / 2,
        ys[keep_y][-1] - y + sy / 2,
        ys[keep_y][0] - y - sy / 2,
    )
    return crop, extent


def _show(ax, crop, extent, title: str, xlabel: str, ylabel: str, origin: str = "lower") -> None:
    ax.imshow(crop, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], origin=origin, extent=extent, aspect="equal")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)


def figure(path: Path, real, generated) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 4, figsize=(18, 14))
    bins = {"cancellous": (-100, 500), "disc": (-100, 350), "muscle": (-40, 160), "fat": (-210, -20)}
    real_m, gen_m = [c for c, _, _ in real], [c for c, _, _ in generated]
    for ax, (tissue, (lo, hi)) in zip(axes[0], bins.items()):
        edges = np.linspace(lo, hi, 61)
        for cases, colour, name in ((real_m, "tab:blue", "real"), (gen_m, "tab:orange", "generated")):
            values = pooled(cases, tissue)
            if values.size:
                _step_hist(ax, values, edges, colour, f"{name}: median {np.median(values):.0f}")
        ax.set_title(f"HU {tissue} (voxels, each case weighted equally)", fontsize=10)
        ax.legend(fontsize=9)
    ax = axes[1, 0]
    edges = np.linspace(200, 1200, 26)
    ax.hist(_cortical(real_m), edges, density=True, histtype="step", lw=2, color="tab:blue", label="real")
    ax.hist(_cortical(gen_m), edges, density=True, histtype="step", lw=2, color="tab:orange", label="generated")
    ax.set_title("HU cortical: p99 in a 40 mm cube per body", fontsize=10)
    ax.legend(fontsize=9)
    ax = axes[1, 1]
    edges = np.linspace(0, 8, 33)
    for cases, colour, name in ((real_m, "tab:blue", "real"), (gen_m, "tab:orange", "generated")):
        for key, style in (("anterior", "-"), ("endplate", "--")):
            values = [v for v in _edges(cases, key) if np.isfinite(v)]
            _step_hist(ax, values, edges, colour, f"{name} {key}: median {np.median(values):.1f} mm", style)
    ax.set_title("edge 10-90 % distance (mm)", fontsize=10)
    ax.legend(fontsize=8)
    by_name = {c.name.split(" (")[0]: (c, v, b) for c, v, b in real + generated}
    chest_real, chest_gen = by_name["cptac_chest"], next(i for i in generated if i[0].name.startswith("chest"))
    abdomen_real, abdomen_gen = by_name["sample_ct"], next(i for i in generated if i[0].name.startswith("abdomen"))
    window = f"W {WINDOW[1] - WINDOW[0]:.0f} L {sum(WINDOW) / 2:.0f}"
    for ax, (m, volume, bodies), where in (
        (axes[1, 2], chest_real, "real"),
        (axes[1, 3], chest_gen, "generated"),
        (axes[2, 2], abdomen_real, "real"),
        (axes[2, 3], abdomen_gen, "generated"),
    ):
        crop, extent = sagittal(volume, bodies)
        spacing = "x".join(f"{s:g}" for s in m.spacing)
        _show(
            ax,
            crop,
            extent,
            f"{where}: {m.name.split(' (')[0]} ({spacing} mm)\nmid-sagittal, {window}",
            "y - spine (mm; anterior left)",
            "z - spine (mm)",
        )
    for ax, (m, volume, bodies), where in ((axes[2, 0], chest_real, "real"), (axes[2, 1], chest_gen, "generated")):
        body = next((b for b in bodies if b.label == "T8"), bodies[len(bodies) // 2])
        crop, extent = axial(volume, body)
        _show(
            ax,
            crop,
            extent,
            f"{where}: {m.name.split(' (')[0]}\naxial at {body.label}, {window}",
            "x - body (mm; patient's left to the right)",
            "y - body (mm; anterior up)",
            origin="upper",
        )
    fig.suptitle(
        "Generator realism: real reference CTs (blue) vs generated cases (orange), benchmarks/bench_realism.py",
        fontsize=13,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=72)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="generated cases per preset")
    parser.add_argument("--per-case", action="store_true", help="also print one line per case")
    parser.add_argument("--figure", default=str(REPO / "docs" / "realism.png"), help="'' for none")
    parser.add_argument("--realism", default="v1", choices=("v1", "hospital"), help="generator profile (default v1)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    real = real_cases()
    generated = generated_cases(args.seeds, args.realism)
    real_m, gen_m = [c for c, _, _ in real], [c for c, _, _ in generated]
    print(f"REAL: {', '.join(c.name for c in real_m)}")
    print(f"GENERATED: {', '.join(c.name.split(' (')[0] for c in gen_m)}")
    print()
    print_table(rows(real_m, gen_m))
    print(
        "HU rows: median [p10, p90] of the voxels (each case weighted equally); cortical and edges: median [p10, p90]\n"
        "over the bodies / edges; noise and anatomy: median [min, max] over the cases; n=a/b: a measurable of b."
    )
    if args.per_case:
        print("\nper case (medians):")
        print_per_case(real_m)
        print_per_case(gen_m)
    if args.figure:
        figure(Path(args.figure), real, generated)
        print(f"\nfigure: {args.figure}")
    print(f"{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
