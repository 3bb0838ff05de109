"""Inputs and targets of the centre-line network (Pisov et al. 2020, sections 3.1 and 5.1).

* :func:`prepare_volume`: any CT -> canonical orientation at 3 mm (``array[k, j, i]`` int16 HU),
  the resolution of Pisov et al. 2020, §5.1. Fine images are box-averaged (``BinShrink``) before the linear
  resampling so thin structures do not alias.
* :func:`slice_targets`: the per-axial-slice target point, interpolated from a ground-truth
  centre-line through the vertebral-body centres, and the presence flag of each slice.
* :class:`CachedCase`: one training / test case at 3 mm with its ground truth, stored as ``.npz``
  (training data is cached outside the repository, e.g. ``runs/`` or ``/tmp``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Tuple, Union

import numpy as np

from ...geometry import ImageGeometry
from ...spine.volume import NET_SPACING, prepare_volume  # noqa: F401 (re-exported)

PathLike = Union[str, Path]


def slice_targets(
    centreline: np.ndarray, geometry: ImageGeometry, n_slices: int, end_margin_mm: float = 0.0
) -> Tuple[np.ndarray, np.ndarray]:
    """Per-slice target ``(j, i)`` voxel positions and presence flags on a canonical grid.

    The target of slice ``k`` is the point of the ground-truth centre-line at the slice's height,
    linearly interpolated between the curve's samples (Pisov et al. 2020, §3.1: "the ones smoothly interpolated
    from the annotation"). A slice is present when its height lies within the curve's z range
    (extended by ``end_margin_mm``; beyond the ends the curve is extended straight).

    Args:
        centreline: (N, 3) LPS mm, ordered along the spine.
        geometry: canonical (identity direction) geometry of the 3 mm volume.
        n_slices: number of axial slices.
        end_margin_mm: presence margin beyond the curve's ends.

    Returns:
        ``(targets (K, 2) float32, present (K,) float32)``; absent slices get the nearest target.

    """
    points = np.asarray(centreline, dtype=float)
    order = np.argsort(points[:, 2], kind="stable")
    points = points[order]
    z = geometry.origin[2] + np.arange(n_slices) * geometry.spacing[2]
    zs = points[:, 2]
    keep = np.concatenate([[True], np.diff(zs) > 1e-6])
    points, zs = points[keep], zs[keep]
    x = np.interp(z, zs, points[:, 0])
    y = np.interp(z, zs, points[:, 1])
    if len(zs) >= 2:  # straight extension beyond the ends, limited to the margin
        for end, nxt, side in ((0, 1, z < zs[0]), (-1, -2, z > zs[-1])):
            dz = zs[end] - zs[nxt]
            if abs(dz) > 1e-6:
                dist = np.clip(z - zs[end], -end_margin_mm, end_margin_mm)
                x = np.where(side, points[end, 0] + (points[end, 0] - points[nxt, 0]) / dz * dist, x)
                y = np.where(side, points[end, 1] + (points[end, 1] - points[nxt, 1]) / dz * dist, y)
    lps = np.stack([x, y, z], axis=1)
    index = geometry.lps_to_index(lps)
    targets = np.stack([index[:, 1], index[:, 0]], axis=1).astype(np.float32)
    present = ((z >= zs[0] - end_margin_mm) & (z <= zs[-1] + end_margin_mm)).astype(np.float32)
    return targets, present


@dataclass
class CachedCase:
    """A case at 3 mm with everything training and evaluation need.

    Attributes:
        hu: int16 ``[k, j, i]`` canonical CT at 3 mm.
        geometry: its geometry (identity direction).
        centreline: (N, 3) LPS mm ground-truth centre-line.
        centroids: (M, 3) LPS mm vertebral-body centres of the ground-truth vertebrae.
        grades: (M,) Genant grades (0-3) of those vertebrae.
        labels: (M,) level names.
        name: case name (e.g. ``synth-scoliosis-0012``).

    """

    hu: np.ndarray
    geometry: ImageGeometry
    centreline: np.ndarray
    centroids: np.ndarray
    grades: np.ndarray
    labels: List[str]
    name: str = ""

    def targets(self, end_margin_mm: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
        """:func:`slice_targets` on this case's grid."""
        return slice_targets(self.centreline, self.geometry, self.hu.shape[0], end_margin_mm)

    def save(self, path: PathLike) -> Path:
        """Write as compressed ``.npz``."""
        from ...io.atomic import atomic_path

        with atomic_path(path, overwrite=True) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(
                    handle,
                    hu=self.hu,
                    spacing=np.asarray(self.geometry.spacing),
                    origin=np.asarray(self.geometry.origin),
                    centreline=self.centreline,
                    centroids=self.centroids,
                    grades=self.grades,
                    labels=np.asarray(self.labels, dtype="U8"),
                    name=np.asarray(self.name),
                )
        return Path(path)

    @classmethod
    def load(cls, path: PathLike) -> CachedCase:
        """Read a case written by :meth:`save`."""
        with np.load(path) as data:
            hu = data["hu"]
            geometry = ImageGeometry(tuple(reversed(hu.shape)), data["spacing"], data["origin"], np.eye(3))
            return cls(
                hu=hu,
                geometry=geometry,
                centreline=data["centreline"],
                centroids=data["centroids"],
                grades=data["grades"],
                labels=[str(x) for x in data["labels"]],
                name=str(data["name"]),
            )

    @classmethod
    def from_synthetic(cls, case, name: str = "") -> CachedCase:
        """From a :class:`VertebralFractureLib.synth.SyntheticCase`."""
        hu, geometry = prepare_volume(case.ct)
        vertebrae = case.truth.vertebrae
        return cls(
            hu=hu,
            geometry=geometry,
            centreline=np.asarray(case.centreline, dtype=float),
            centroids=np.array([v.centroid for v in vertebrae], dtype=float).reshape(-1, 3),
            grades=np.array([v.measure.grade if v.measure is not None else 0 for v in vertebrae], dtype=int),
            labels=[v.label for v in vertebrae],
            name=name,
        )


#: Presets drawn for training and test cases, with their relative frequency.
SYNTH_PRESETS = ("spine", "chest", "abdomen", "scoliosis")


def synthetic_case_settings(seed: int) -> Tuple[str, dict]:
    """Preset and overrides of the ``seed``-th generated case (deterministic).

    Spacing varies from 1 mm to 3 mm (thick slices included) and the orientation of the written
    CT varies, so the 3 mm preparation is exercised like on real data.
    """
    rng = np.random.default_rng(10_000 + int(seed))
    preset = SYNTH_PRESETS[int(seed) % len(SYNTH_PRESETS)]
    in_plane = float(rng.choice([1.5, 2.0, 3.0]))
    thickness = float(rng.choice([1.5, 2.0, 3.0]))
    overrides = {
        "spacing": (in_plane, in_plane, thickness),
        "radiograph": False,
        "direction": str(rng.choice(["LPS", "LPS", "RAS", "LPI"])),
    }
    return preset, overrides


def build_synthetic_cache(
    seeds: Iterable[int], folder: PathLike, *, log=print, overwrite: bool = False, realism: str = "v1"
) -> List[Path]:
    """Generate synthetic cases, prepare them at 3 mm and cache them as ``.npz`` in ``folder``.

    Cases already in the folder are reused unless ``overwrite``. ``realism`` is the generator's profile
    (:class:`VertebralFractureLib.synth.params.SynthParams`; ``"hospital"``: contrast-enhanced heart, aorta and
    organs, bowel gas, the table, sharp kernels, streaks, crops with the spine at the edge); a profile other than
    ``"v1"`` is part of the file name, so the two never mix up in one folder.
    """
    from ...synth import generate_case

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for seed in seeds:
        preset, overrides = synthetic_case_settings(seed)
        name = f"synth-{preset}-{seed:05d}" + ("" if realism == "v1" else f"-{realism}")
        path = folder / f"{name}.npz"
        if overwrite or not path.exists():
            if realism != "v1":
                overrides = {**overrides, "realism": realism}
            case = generate_case(int(seed), preset=preset, **overrides)
            CachedCase.from_synthetic(case, name).save(path)
            if log:
                log(f"cached {path.name} ({case.ct.GetSize()} at {case.params.spacing})")
        paths.append(path)
    return paths


def load_cases(paths: Iterable[PathLike]) -> List[CachedCase]:
    """Read cached cases."""
    return [CachedCase.load(p) for p in paths]


def find_cached(folder: PathLike, limit: Optional[int] = None) -> List[Path]:
    """The ``.npz`` cases of a folder, sorted by name."""
    paths = sorted(p for p in Path(folder).glob("*.npz") if not p.name.startswith("."))
    return paths[:limit] if limit else paths
