"""Long generated spine columns: one lateral DRR per spine, from which overlapping views are cut.

Gartland et al. 2025 (§2, appendix A) trains on lateral radiographs of varying field of view, usually two per
participant that overlap, each vertebra labelled on only one of them. Here a generated spine
(:func:`VertebralFractureLib.synth.generate_case`, preset ``radiograph``) covers about T1 ... L5 in
one DRR (a :class:`Column`); :mod:`.views` cuts the overlapping views and decides which view
carries which label. Columns are cached as ``.npz`` (:meth:`Column.save`), never in the repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Union

import numpy as np

PathLike = Union[str, Path]
#: Choices of the first and last vertebra entirely in view of a generated column.
TOP_CHOICES = ("T1", "T2", "T3")
BOTTOM_CHOICES = ("L4", "L5")
#: Voxel size (left-right, antero-posterior, cranio-caudal) of the generated CT: coarse left-right
#: (the DRR sums along it) and 1.25 mm in the radiograph plane, which keeps one column at a few seconds.
GENERATION_SPACING_MM = (4.0, 1.25, 1.25)


@dataclass
class Column:
    """A lateral DRR of a whole generated spine with its ground truth.

    Attributes:
        image: (rows, columns) float32 in [0, 1], bone bright; row 0 superior, column 0 anterior.
        pixel_mm: square pixel size in mm.
        levels: level names of the vertebrae entirely in view, cranio-caudal.
        centroids: (n, 2) ``[column, row]`` vertebral-body centres (projected 3D centres).
        keypoints: (n, 6, 2) ``[column, row]``, :data:`VertebralFractureLib.genant.KEYPOINT_NAMES` order.
        grades: (n,) commanded Genant grade of each vertebra.
        seed: generator seed.

    """

    image: np.ndarray
    pixel_mm: float
    levels: List[str]
    centroids: np.ndarray
    keypoints: np.ndarray
    grades: np.ndarray
    seed: int = -1

    def save(self, path: PathLike) -> Path:
        """Write a compressed ``.npz`` cache (image as float16)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            temporary,
            image=self.image.astype(np.float16),
            pixel_mm=np.float64(self.pixel_mm),
            levels=np.array(self.levels, dtype="U4"),
            centroids=self.centroids,
            keypoints=self.keypoints,
            grades=self.grades,
            seed=np.int64(self.seed),
        )
        temporary.replace(path)
        return path

    @classmethod
    def load(cls, path: PathLike) -> Column:
        """Read a cache written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(
                data["image"].astype(np.float32),
                float(data["pixel_mm"]),
                [str(x) for x in data["levels"]],
                np.asarray(data["centroids"], dtype=np.float64),
                np.asarray(data["keypoints"], dtype=np.float64),
                np.asarray(data["grades"], dtype=np.int64),
                int(data["seed"]),
            )

    @classmethod
    def from_truth(cls, image: np.ndarray, truth, seed: int = -1) -> Column:
        """A column from a radiograph and its ``"pixel"``-frame :class:`~VertebralFractureLib.schema.SpineResult`."""
        vertebrae = list(truth.vertebrae)
        return cls(
            np.asarray(image, dtype=np.float32),
            float(truth.pixel_spacing[0]),
            [v.label for v in vertebrae],
            np.array([v.centroid for v in vertebrae], dtype=np.float64).reshape(-1, 2),
            np.array([v.keypoints for v in vertebrae], dtype=np.float64).reshape(-1, 6, 2),
            np.array([int(v.extra.get("commanded_grade", 0)) for v in vertebrae], dtype=np.int64),
            seed,
        )


def generate_column(seed: int, **overrides) -> Column:
    """Generate one long spine and its lateral DRR (preset ``radiograph``, :data:`GENERATION_SPACING_MM` voxels).

    The first and last levels, a scoliosis in a quarter of the spines and a fracture prevalence
    of 0.25 are drawn from ``seed``; ``overrides`` go to :func:`~VertebralFractureLib.synth.generate_case`.
    """
    case = column_case(seed, **overrides)
    return Column.from_truth(case.radiograph, case.radiograph_truth, int(seed))


def column_case(seed: int, **overrides):
    """The generated case (CT, DRR and both truths) behind :func:`generate_column`'s column of ``seed``."""
    from ...synth import generate_case

    rng = np.random.default_rng(10_000_019 + int(seed))
    params = {
        "top_level": str(rng.choice(TOP_CHOICES)),
        "bottom_level": str(rng.choice(BOTTOM_CHOICES)),
        "fracture_prevalence": 0.25,
        "scoliosis_deg": float(rng.uniform(8.0, 25.0)) if rng.random() < 0.25 else 0.0,
        "fov_xy_mm": (300.0, float(rng.uniform(230.0, 300.0))),
        "spacing": GENERATION_SPACING_MM,
    }
    params.update(overrides)
    return generate_case(int(seed), "radiograph", **params)


def column_path(folder: PathLike, seed: int) -> Path:
    """Cache file of a seed."""
    return Path(folder) / f"column_{int(seed):07d}.npz"


def cached_columns(seeds: Sequence[int], folder: PathLike, *, generate: bool = True, log=None,
                   **overrides) -> Iterator[Column]:
    """Columns of ``seeds`` from the cache folder, generating (and caching) missing ones.

    ``overrides`` go to :func:`generate_column` (e.g. ``fracture_prevalence``); the cache file name
    does not record them, so columns generated with other settings belong in their own folder.
    """
    for count, seed in enumerate(seeds):
        path = column_path(folder, seed)
        if path.exists():
            yield Column.load(path)
            continue
        if not generate:
            continue
        try:
            column = generate_column(seed, **overrides)
        except (ValueError, FloatingPointError) as error:
            # a rare spine the generator cannot draw (seen with fracture_prevalence 0.5: NaN rib
            # placement); leaving the seed out keeps a long generation run going
            if log is not None:
                log(f"column {seed} skipped: {error}")
            continue
        column.save(path)
        if log is not None:
            log(f"generated column {seed} ({count + 1}/{len(seeds)})")
        yield column


def load_columns(folder: PathLike, seeds: Optional[Sequence[int]] = None) -> List[Column]:
    """Every cached column of a folder (or only those of ``seeds``), sorted by seed."""
    if seeds is not None:
        return list(cached_columns(seeds, folder, generate=False))
    paths = sorted(p for p in Path(folder).glob("column_*.npz") if ".tmp" not in p.name)
    return [Column.load(p) for p in paths]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m VertebralFractureLib.training.radiograph.columns FOLDER FIRST COUNT [options]``: fill a cache."""
    import argparse

    parser = argparse.ArgumentParser(description="generate long-column DRRs for the radiograph models")
    parser.add_argument("folder")
    parser.add_argument("first", type=int)
    parser.add_argument("count", type=int)
    parser.add_argument("--fracture-prevalence", type=float, help="instead of the default 0.25")
    parser.add_argument("--grade-weights", type=float, nargs=3, metavar=("G1", "G2", "G3"),
                        help="relative frequency of Genant grades 1-3 (synth default 0.4 0.35 0.25)")
    args = parser.parse_args(argv)
    overrides = {}
    if args.fracture_prevalence is not None:
        overrides["fracture_prevalence"] = args.fracture_prevalence
    if args.grade_weights:
        overrides["grade_weights"] = tuple(args.grade_weights)
    seeds = range(args.first, args.first + args.count)
    for _ in cached_columns(list(seeds), args.folder, log=lambda text: print(text, flush=True), **overrides):
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
