"""Training and evaluation samples of the voxel map: one ``.npz`` per case on the band grid.

A sample holds the normalised CT on the band grid with its context margin (float16), the Nicolaes et al. 2019, §3.1
label image (uint8), the band mask, the grid geometry and the annotated vertebrae (level,
centroid LPS, grade). Samples are made from a CT, its truth :class:`~VertebralFractureLib.schema.SpineResult`
(grades in ``extra["commanded_grade"]`` or measured) and the centre-line, e.g. from generated
cases (:func:`VertebralFractureLib.synth.generate_case`) or a written case folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Union

import numpy as np

from ...geometry import ImageGeometry
from ...voxelmap.band_grid import DEFAULT_BAND_MM, DEFAULT_SPACING, band_grid, image_bounds, sample_context
from .targets import annotations_from_result, label_volume

PathLike = Union[str, Path]
#: Default cache folder (outside the repository).
DEFAULT_CACHE = Path("runs/data/cache_voxelmap")


@dataclass
class Sample:
    """One case on the band grid (see the module docstring)."""

    name: str
    context: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    geometry: ImageGeometry
    levels: List[str]
    centroids: np.ndarray
    grades: np.ndarray

    @property
    def fractured(self) -> np.ndarray:
        """Per vertebra: grade >= 1 (Nicolaes et al. 2019's fracture class)."""
        return self.grades >= 1

    def save(self, path: PathLike) -> Path:
        """Write as ``.npz`` (atomically)."""
        from ...io.atomic import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=True) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(
                    handle, context=self.context.astype(np.float16), labels=self.labels, mask=self.mask,
                    origin=np.asarray(self.geometry.origin), spacing=np.asarray(self.geometry.spacing),
                    size=np.asarray(self.geometry.size), levels=np.asarray(self.levels), centroids=self.centroids,
                    grades=self.grades, name=np.asarray(self.name),
                )
        return path

    @classmethod
    def load(cls, path: PathLike) -> Sample:
        """Read a sample written by :meth:`save`."""
        with np.load(path) as data:
            geometry = ImageGeometry([int(s) for s in data["size"]], data["spacing"].tolist(), data["origin"].tolist(),
                                     np.eye(3))
            return cls(str(data["name"]), data["context"], data["labels"], data["mask"], geometry,
                       [str(x) for x in data["levels"]], data["centroids"], data["grades"])


def make_sample(name: str, ct, truth, centreline_points: np.ndarray, spacing: float = DEFAULT_SPACING,
                band_mm: float = DEFAULT_BAND_MM) -> Sample:
    """Band-grid sample of one annotated CT (Nicolaes et al. 2019, §3.1 labels)."""
    grid = band_grid(centreline_points, spacing, band_mm, bounds=image_bounds(ct))
    context = sample_context(ct, grid)
    annotations = annotations_from_result(truth)
    labels = label_volume(grid, annotations, centreline_points)
    return Sample(
        name, context, labels, grid.mask, grid.geometry, [a.label for a in annotations],
        np.asarray([a.centroid for a in annotations], float).reshape(-1, 3),
        np.asarray([a.grade for a in annotations], int),
    )


#: Training mix of generated cases: (preset, weight).
TRAIN_PRESETS = (("spine", 0.35), ("abdomen", 0.25), ("chest", 0.2), ("scoliosis", 0.2))


def synth_overrides(seed: int) -> Dict[str, object]:
    """Per-seed generator overrides for training variety (spacing, slice thickness, prevalence, orientation)."""
    rng = np.random.default_rng(10_000 + int(seed))
    inplane = float(rng.choice([0.8, 1.0, 1.25, 1.5]))
    thick = float(rng.choice([inplane, inplane, 2.0, 2.5]))
    return {
        "spacing": (inplane, inplane, thick),
        "fracture_prevalence": float(rng.choice([0.0, 0.2, 0.35, 0.5], p=[0.15, 0.3, 0.3, 0.25])),
        "direction": str(rng.choice(["LPS", "LPS", "RAS", "oblique"])),
        "radiograph": False,
    }


def synth_sample(seed: int, spacing: float = DEFAULT_SPACING, band_mm: float = DEFAULT_BAND_MM,
                 preset: Optional[str] = None) -> Sample:
    """A training sample from one generated case (preset drawn from :data:`TRAIN_PRESETS`)."""
    from ...synth import generate_case

    if preset is None:
        names, weights = zip(*TRAIN_PRESETS)
        preset = str(np.random.default_rng(20_000 + int(seed)).choice(names, p=weights))
    case = generate_case(int(seed), preset, **synth_overrides(seed))
    return make_sample(f"synth_{preset}_{seed}", case.ct, case.truth, case.centreline, spacing, band_mm)


def case_folders(root: PathLike) -> List[Path]:
    """Complete written case folders (``ct.nii.gz``, ``truth.json``, ``centreline.json``) under ``root``, sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob("truth.json")
                  if (p.parent / "ct.nii.gz").exists() and (p.parent / "centreline.json").exists())


def folder_sample(folder: PathLike, spacing: float = DEFAULT_SPACING, band_mm: float = DEFAULT_BAND_MM) -> Sample:
    """A sample from a written case folder (``ct.nii.gz``, ``truth.json``, ``centreline.json``)."""
    from ...io.images import read_image
    from ...synth.generator import read_truth

    folder = Path(folder)
    truth, centreline = read_truth(folder)
    return make_sample(folder.name, read_image(folder / "ct.nii.gz"), truth, centreline, spacing, band_mm)


def cached(path: PathLike, make) -> Sample:
    """Load ``path`` if present, else ``make()`` and save it there."""
    path = Path(path)
    if path.exists():
        try:
            return Sample.load(path)
        except (OSError, ValueError, KeyError):
            pass
    sample = make()
    sample.save(path)
    return sample


def synth_samples(seeds, cache: PathLike = DEFAULT_CACHE, spacing: float = DEFAULT_SPACING,
                  band_mm: float = DEFAULT_BAND_MM, log=print) -> Iterator[Sample]:
    """Generated training samples, cached as ``{cache}/s{spacing}_b{band}/synth_{seed}.npz``."""
    folder = Path(cache) / f"s{spacing:g}_b{band_mm:g}"
    for seed in seeds:
        sample = cached(folder / f"synth_{seed}.npz", lambda seed=seed: synth_sample(seed, spacing, band_mm))
        if log:
            log(f"sample {sample.name}: grid {sample.labels.shape}, {int(sample.fractured.sum())}/{len(sample.levels)} "
                "fractured")
        yield sample
