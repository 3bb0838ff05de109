"""Patch sets for training and evaluating the fracture classifier (Husseini et al. 2020, §3) and their cache.

A :class:`PatchSet` holds, for every vertebra T1-L6 of a set of cases, the normalised
:data:`~VertebralFractureLib.grading.patches.CACHE_SIZE`-pixel sagittal patch centred on it, its
Genant grade, spine region and case. Patches are cut from the CT straightened along the case's
centre-line (or, lacking one, a spline through the vertebral centroids, as in Husseini et al. 2020, §3). Grade-1
vertebrae are kept in the set (``train_mask`` leaves them out, Husseini et al. 2020, §1).

Cache: one ``.npz`` per case in a folder (``runs/data/cache_grading/<set>/<case>.npz`` by
convention, outside the repository), so a set is cut once and re-read in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Union

import numpy as np

from ...grading.patches import CACHE_SIZE, extract_patch, normalise_hu, straighten_for_patches
from ...grading.regions import TRAIN_GRADES, region_index

PathLike = Union[str, Path]


@dataclass
class PatchSet:
    """Patches and labels, one row per vertebra.

    Attributes:
        patches: float16 ``(N, S, S)`` normalised HU, centred on the centroid.
        grades: int ``(N,)`` Genant grade 0-3.
        regions: int ``(N,)`` index into :data:`~VertebralFractureLib.grading.regions.REGION_NAMES`.
        levels: ``(N,)`` level names.
        cases: ``(N,)`` case identifiers (for case-grouped folds).

    """

    patches: np.ndarray
    grades: np.ndarray
    regions: np.ndarray
    levels: np.ndarray
    cases: np.ndarray

    def __len__(self) -> int:
        return len(self.grades)

    @property
    def fractured(self) -> np.ndarray:
        """Binary target: grade >= 2."""
        return (self.grades >= 2).astype(np.int64)

    @property
    def train_mask(self) -> np.ndarray:
        """Rows usable for training and evaluation (grades 0, 2, 3; Husseini et al. 2020, §1 excludes grade 1)."""
        return np.isin(self.grades, TRAIN_GRADES)

    def subset(self, index: Union[np.ndarray, Sequence[int]]) -> PatchSet:
        """Rows selected by an index array or boolean mask."""
        index = np.asarray(index)
        return PatchSet(self.patches[index], self.grades[index], self.regions[index], self.levels[index],
                        self.cases[index])

    @classmethod
    def concatenate(cls, sets: Iterable[PatchSet]) -> PatchSet:
        """One set from several."""
        sets = list(sets)
        if not sets:
            return empty_set()
        return cls(*(np.concatenate([getattr(s, name) for s in sets]) for name in
                     ("patches", "grades", "regions", "levels", "cases")))

    def save(self, path: PathLike) -> Path:
        """Write as a compressed ``.npz`` (atomic)."""
        from ...io.atomic import atomic_path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path, overwrite=True) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, patches=self.patches, grades=self.grades, regions=self.regions,
                                    levels=self.levels.astype(str), cases=self.cases.astype(str))
        return path

    @classmethod
    def load(cls, path: PathLike) -> PatchSet:
        """Read a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            return cls(data["patches"], data["grades"], data["regions"], data["levels"], data["cases"])

    def summary(self) -> str:
        """One line: counts per grade."""
        counts = ", ".join(f"grade {g}: {int(np.sum(self.grades == g))}" for g in range(4))
        return f"{len(self)} vertebrae from {len(set(self.cases.tolist()))} cases ({counts})"


def empty_set(size: int = CACHE_SIZE) -> PatchSet:
    """A set with no rows."""
    return PatchSet(np.zeros((0, size, size), np.float16), np.zeros(0, np.int64), np.zeros(0, np.int64),
                    np.zeros(0, dtype="<U4"), np.zeros(0, dtype="<U32"))


def vertebra_grade(vertebra) -> Optional[int]:
    """The grade a truth vertebra carries: the generator's commanded grade, else the measured one."""
    commanded = vertebra.extra.get("commanded_grade") if vertebra.extra else None
    if commanded is not None:
        return int(commanded)
    if vertebra.measure is not None:
        return int(vertebra.measure.grade)
    return None


def case_patches(ct, truth, curve=None, case_id: str = "case", size: int = CACHE_SIZE) -> PatchSet:
    """Cut the patches of every vertebra T1-L6 of one case.

    Args:
        ct: SimpleITK CT.
        truth: :class:`~VertebralFractureLib.schema.SpineResult` with centroids (LPS) and grades.
        curve: centre-line points (N, 3) LPS; None uses a spline through the truth centroids.
        case_id: identifier stored with the rows.
        size: cached patch side.

    """
    wanted = [v for v in truth.vertebrae if region_index(v.label) is not None and vertebra_grade(v) is not None]
    if not wanted:
        return empty_set(size)
    if curve is None or len(np.asarray(getattr(curve, "points", curve))) < 2:
        curve = np.array([v.centroid for v in truth.vertebrae], dtype=float)
        if len(curve) < 2:
            return empty_set(size)
    st = straighten_for_patches(ct, curve)
    patches = np.stack([normalise_hu(extract_patch(st, v.centroid, size)) for v in wanted]).astype(np.float16)
    return PatchSet(
        patches=patches,
        grades=np.array([vertebra_grade(v) for v in wanted], dtype=np.int64),
        regions=np.array([region_index(v.label) for v in wanted], dtype=np.int64),
        levels=np.array([v.label for v in wanted], dtype="<U4"),
        cases=np.array([case_id] * len(wanted), dtype="<U32"),
    )


def read_case_folder(folder: PathLike):
    """CT, truth and centre-line of a case folder written by ``vertebral-fracture synth``.

    The centre-line is read from ``centreline.npy`` / ``centreline.json`` / ``centreline.txt`` or
    the truth's ``centreline`` (or ``input.synthetic.centreline_lps``) entry when present; otherwise
    None (the centroids are used).
    """
    import json

    import SimpleITK as sitk

    from ...schema import SpineResult

    folder = Path(folder)
    ct = sitk.ReadImage(str(folder / "ct.nii.gz"))
    text = (folder / "truth.json").read_text(encoding="utf-8")
    truth = SpineResult.from_json(text)
    curve = None
    for name in ("centreline.npy", "centreline.json", "centreline.txt"):
        path = folder / name
        if path.exists():
            if name.endswith(".npy"):
                curve = np.load(path)
            elif name.endswith(".json"):
                data = json.loads(path.read_text())
                curve = np.asarray(data.get("points", data) if isinstance(data, dict) else data, dtype=float)
            else:
                curve = np.loadtxt(path)
            break
    if curve is None:
        data = json.loads(text)
        entry = (data.get("centreline") or data.get("patient", {}).get("centreline")
                 or data.get("input", {}).get("synthetic", {}).get("centreline_lps"))
        if isinstance(entry, dict):
            entry = entry.get("points")
        if entry is not None:
            curve = np.asarray(entry, dtype=float)
    if curve is not None:
        curve = np.asarray(curve, dtype=float).reshape(-1, 3)
    return ct, truth, curve


#: Presets cycled through for generated cases (by seed), so all five regions T1-L5 occur.
SYNTH_PRESETS = ("spine", "chest", "abdomen", "scoliosis")


@dataclass(frozen=True)
class SynthMix:
    """How generated training cases vary beyond the generator's own draws (cycled by the case's index).

    Why: the generator's bodies follow the mean adult morphometry of Panjabi et al. 1991 / 1992 with a size factor
    of about N(1, 0.05); the real reference vertebrae with hand-placed or mask keypoints are larger (maximal height
    1.00-1.29 times the generator's posterior height for the level, mean 1.13: chest CT T7-T12 1.00-1.12, sample CT
    L1-L4 1.16-1.29, TPTBox L3 1.18), and a classifier that never saw such bodies in its 112 mm patch called three of
    the sample CT's normal lumbar bodies fractures (``benchmarks/calibrate_real.py``). Adult body size varies by
    about +-10 % with stature and sex, so sizes are drawn uniformly over ``size_scale``.

    Attributes:
        realism: generator profiles (``v1``, ``hospital``), one per case in turn.
        spacings: voxel sizes, one per case in turn; ``None`` keeps the preset's.
        size_scale: ``(low, high)`` of the uniform body-size factor
            (:func:`VertebralFractureLib.synth.params.drawn_size_scale`); ``None`` keeps the generator's draw.
        fracture_prevalence: the generator's share of fractured vertebrae (``None``: its default).

    """

    realism: tuple = ("v1",)
    spacings: tuple = (None,)
    size_scale: Optional[tuple] = None
    fracture_prevalence: Optional[float] = None

    def overrides(self, seed: int, index: int) -> dict:
        """Generator overrides of the ``index``-th case (seed ``seed``)."""
        out: dict = {"realism": self.realism[index % len(self.realism)]}
        spacing = self.spacings[index % len(self.spacings)]
        if spacing is not None:
            out["spacing"] = tuple(float(v) for v in spacing)
        if self.size_scale is not None:
            from ...synth.params import drawn_size_scale

            out["size_scale"] = drawn_size_scale(seed, *self.size_scale)
        if self.fracture_prevalence is not None:
            out["fracture_prevalence"] = float(self.fracture_prevalence)
        return out

    def tag(self) -> str:
        """Short name of the mix for its cache folder (``""`` for the plain generator)."""
        if self == SynthMix():
            return ""
        import hashlib

        return "_" + hashlib.sha256(repr(self).encode()).hexdigest()[:8]


def build_cache(sources: Sequence, cache_dir: PathLike, *, presets: Sequence[str] = SYNTH_PRESETS,
                progress: bool = True, mix: Optional[SynthMix] = None, **synth_overrides) -> PatchSet:
    """Cut (or re-read) the patches of many cases.

    Args:
        sources: case folders (paths) or integer seeds for
            :func:`VertebralFractureLib.synth.generate_case` (preset ``presets[seed % len(presets)]``,
            no radiograph).
        cache_dir: folder of per-case ``.npz`` files; existing files are reused.
        presets: generator presets cycled by seed.
        progress: print one line per 10 cases.
        mix: per-case variation of generated cases (:class:`SynthMix`; the ``i``-th source gets its ``i``-th
            overrides).
        **synth_overrides: further generator parameters for every generated case (e.g. ``fracture_prevalence``).

    Returns:
        All rows concatenated.

    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    sets: List[PatchSet] = []
    for number, source in enumerate(sources):
        case_id = f"seed{source:05d}" if isinstance(source, (int, np.integer)) else Path(source).name
        target = cache_dir / f"{case_id}.npz"
        if target.exists():
            sets.append(PatchSet.load(target))
        else:
            if isinstance(source, (int, np.integer)):
                from ...synth import generate_case

                preset = presets[int(source) % len(presets)]
                overrides = {**(mix.overrides(int(source), number) if mix is not None else {}), **synth_overrides}
                case = generate_case(int(source), preset, radiograph=False, **overrides)
                ct, truth, curve = case.ct, case.truth, getattr(case, "centreline", None)
            else:
                ct, truth, curve = read_case_folder(source)
            rows = case_patches(ct, truth, curve, case_id)
            rows.save(target)
            sets.append(rows)
        if progress and (number + 1) % 10 == 0:
            print(f"  patches: {number + 1}/{len(sources)} cases", flush=True)
    return PatchSet.concatenate(sets)


def load_sets(sources: Sequence[PathLike], cache_root: PathLike, *, progress: bool = True) -> PatchSet:
    """Patch rows of several sources.

    Each source is a folder of case folders (``case_*/truth.json``), one case folder, or a folder of
    cached ``.npz`` files.

    Args:
        sources: folders as above.
        cache_root: cases of ``<source>`` are cached in ``cache_root/<source name>/``.
        progress: print progress lines.

    Raises:
        FileNotFoundError: for a source that holds neither cases nor cached patches.

    """
    sets = []
    for source in sources:
        source = Path(source)
        if (source / "truth.json").exists():
            folders = [source]
        else:
            folders = sorted(p for p in source.glob("*") if (p / "truth.json").exists())
        if folders:
            rows = build_cache(folders, Path(cache_root) / source.name, progress=progress)
        else:
            cached = sorted(source.glob("*.npz"))
            if not cached:
                raise FileNotFoundError(f"{source}: no case folders (*/truth.json) and no cached patches (*.npz)")
            rows = PatchSet.concatenate(PatchSet.load(p) for p in cached)
        if progress:
            print(f"{source}: {rows.summary()}", flush=True)
        sets.append(rows)
    return PatchSet.concatenate(sets)
