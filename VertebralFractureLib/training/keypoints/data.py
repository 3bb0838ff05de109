"""2D samples from CTs: straighten, take the mid-sagittal image, map the true keypoints into it.

Sources:

* generated cases (:func:`VertebralFractureLib.synth.generate_case`): straightened on the true
  centre-line plus a small smooth random perturbation (so the detector tolerates the errors of
  the predicted curve, Pisov et al. 2020, §3.1 reports about 1 mm);
* real CTs with annotations in the project's annotation JSON (:mod:`VertebralFractureLib.io.annotations`,
  a :class:`~VertebralFractureLib.schema.SpineResult` in LPS): :class:`AnnotatedCTDataset` takes
  (CT path, annotation path) pairs, straightens on a spline through the annotated centroids (or a
  given centre-line) and yields the same samples, so a site can retrain on its corrected cases.

Samples are cached as ``.npz`` (:class:`.sample.Sample`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from ...schema import SpineResult
from .sample import Sample

#: Anterior-posterior half width of the straightened plane (mm): 97 columns at 1 mm.
HALF_WIDTH_AP_MM = 48.0
#: Lateral half width of the straightened volume (only the mid plane is used).
HALF_WIDTH_LATERAL_MM = 2.0


def perturb_curve(points: np.ndarray, rng: np.random.Generator, amplitude_mm: float = 1.5) -> np.ndarray:
    """Add a smooth random displacement (AP and lateral, wavelength ~100 mm) to a centre-line."""
    points = np.asarray(points, dtype=np.float64)
    if amplitude_mm <= 0 or len(points) < 2:
        return points
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points, axis=0), axis=1))])
    out = points.copy()
    for axis in (0, 1):
        phase, wavelength = rng.uniform(0, 2 * np.pi), rng.uniform(60.0, 160.0)
        out[:, axis] += rng.uniform(-1, 1) * amplitude_mm * np.sin(2 * np.pi * arc / wavelength + phase)
        out[:, axis] += rng.normal(0, amplitude_mm / 3)
    return out


def centreline_from_result(result: SpineResult, margin_mm: float = 20.0) -> np.ndarray:
    """A centre-line through an annotation's vertebral-body centres (spline through centroids, Husseini et al. 2020).

    The centroids (mean of the six keypoints when the centroid is missing) are joined by a cubic
    spline (linear for fewer than four vertebrae) and extended straight by ``margin_mm`` at both ends.
    """
    centres = np.array([v.keypoints.mean(axis=0) for v in result.vertebrae], dtype=np.float64)
    return centreline_through(centres, margin_mm)


def centreline_through(centres: np.ndarray, margin_mm: float = 20.0) -> np.ndarray:
    """A 1 mm centre-line through cranio-caudally ordered LPS points (cubic spline, straight ends)."""
    from scipy.interpolate import CubicSpline

    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    if len(centres) < 2:
        raise ValueError("at least two annotated vertebrae are needed to build a centre-line")
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(centres, axis=0), axis=1))])
    t = np.arange(0.0, arc[-1] + 0.5, 1.0)
    if len(centres) >= 4:
        curve = CubicSpline(arc, centres, axis=0)(t)
    else:
        curve = np.stack([np.interp(t, arc, centres[:, a]) for a in range(3)], axis=1)
    up = (curve[1] - curve[0]) / np.linalg.norm(curve[1] - curve[0])
    down = (curve[-1] - curve[-2]) / np.linalg.norm(curve[-1] - curve[-2])
    head = curve[0] - up * np.arange(margin_mm, 0, -1.0)[:, None]
    tail = curve[-1] + down * np.arange(1.0, margin_mm + 1)[:, None]
    return np.concatenate([head, curve, tail])


def sample_from_ct(
    image,
    truth: SpineResult,
    centreline: Optional[np.ndarray] = None,
    rng: Optional[np.random.Generator] = None,
    perturb_mm: float = 0.0,
    name: str = "",
    slab_mm: float = 0.0,
    ignore_lps: Optional[np.ndarray] = None,
) -> Tuple[Sample, object]:
    """Straighten a CT and map its annotated keypoints into the mid-sagittal image.

    Args:
        image: SimpleITK image (any orientation) or ``(array, ImageGeometry)``.
        truth: vertebrae with LPS keypoints.
        centreline: (N, 3) LPS points along the spine (default: spline through the annotation).
        rng: random generator for the curve perturbation.
        perturb_mm: amplitude of the smooth random curve displacement (0: none).
        name: case identifier.
        slab_mm: lateral slab averaged into the mid-sagittal image.
        ignore_lps: (m, 3) centres of vertebrae visible but not annotated (partial ones at the
            edges of the view): no objectness penalty near them, not counted as false positives.

    Returns:
        The sample (1 mm pixels) and the :class:`~VertebralFractureLib.spine.StraightenedSpine`.

    """
    from ...spine import straighten

    if truth.frame != "LPS":
        raise ValueError(f"{name}: annotations must be in LPS (3D), got frame {truth.frame!r}")
    curve = centreline_from_result(truth) if centreline is None else np.asarray(centreline, dtype=np.float64)
    if rng is not None and perturb_mm > 0:
        curve = perturb_curve(curve, rng, perturb_mm)
    spine = straighten(image, curve, spacing=1.0, half_width_mm=(HALF_WIDTH_AP_MM, HALF_WIDTH_LATERAL_MM))
    picture = spine.mid_sagittal(slab_mm)
    keypoints, levels = [], []
    for vertebra in truth.vertebrae:
        rows_cols, _ = spine.patient_to_mid_sagittal(vertebra.keypoints)
        points = rows_cols[:, ::-1]
        centre = points.mean(axis=0)
        if -5 <= centre[1] <= picture.shape[0] + 5:
            keypoints.append(points)
            levels.append(vertebra.label)
    meta = {
        "perturb_mm": perturb_mm,
        "source": "ct",
        "curve": np.round(curve, 3).tolist(),  # rebuilds the point maps: straighten(None, curve, with_volume=False)
        "truth": truth.to_dict(),
        "ignore": [],
    }
    if ignore_lps is not None and len(ignore_lps):
        rows_cols, _ = spine.patient_to_mid_sagittal(np.asarray(ignore_lps, dtype=np.float64).reshape(-1, 3))
        meta["ignore"] = np.round(rows_cols[:, ::-1], 2).tolist()
    return Sample(picture, np.asarray(keypoints).reshape(-1, 6, 2), levels, name, meta), spine


def _partial_centres(case) -> Optional[np.ndarray]:
    from ...io.verse import centroids_from_mask

    partial = case.truth.input.get("synthetic", {}).get("partial_levels", []) or []
    if not partial:
        return None
    centres = centroids_from_mask(case.body_mask, partial)
    return np.array(list(centres.values())) if centres else None


def spine_of(sample: Sample):
    """The point maps (no volume) of the straightening a sample was made with."""
    from ...spine import straighten

    curve = np.asarray(sample.meta["curve"], dtype=np.float64)
    half_width = (HALF_WIDTH_AP_MM, HALF_WIDTH_LATERAL_MM)
    return straighten(None, curve, spacing=1.0, half_width_mm=half_width, with_volume=False)


def truth_of(sample: Sample) -> SpineResult:
    """The LPS ground truth stored with a sample."""
    return SpineResult.from_dict(sample.meta["truth"])


def generated_samples(
    seeds: Sequence[int], perturb_mm: float = 1.5, cache: Optional[Union[str, Path]] = None, **params
) -> Iterator[Sample]:
    """Samples of generated cases (``generate_case(seed, **params)``), cached under ``cache``.

    A non-default ``preset`` or ``realism`` (e.g. ``realism="hospital"``) and a given ``size_scale`` are part of the
    cache file name and of the sample name, so cases of different profiles or sizes never share a cache entry.
    """
    from ...synth import generate_case

    defaults = (("preset", "spine"), ("realism", "v1"))
    tag = "".join(f"{params[key]}_" for key, default in defaults if params.get(key, default) != default)
    if params.get("size_scale") is not None:  # a drawn body size is part of the case, so of its cache name
        tag += f"size{float(params['size_scale']):.4f}_"
    for seed in seeds:
        path = Path(cache) / f"case_{tag}{seed:05d}.npz" if cache is not None else None
        if path is not None and path.exists():
            yield Sample.load(path)
            continue
        case = generate_case(seed, **params)
        rng = np.random.default_rng(seed + 7919)
        ignore = _partial_centres(case)
        sample, _ = sample_from_ct(
            case.ct, case.truth, case.centreline, rng, perturb_mm, name=f"synth-{tag}{seed}", ignore_lps=ignore
        )
        if path is not None:
            sample.save(path)
        yield sample


def case_folder_sample(
    folder: Union[str, Path], perturb_mm: float = 1.5, seed: int = 0, cache: Optional[Union[str, Path]] = None
) -> Sample:
    """Sample of a generated case written by :func:`VertebralFractureLib.synth.write_case`.

    Partial vertebrae at the edges of the view (``input["synthetic"]["partial_levels"]``, in the
    body mask but not in the truth) become ignore points.
    """
    from ...io.images import read_image
    from ...io.verse import centroids_from_mask
    from ...synth import read_truth

    folder = Path(folder)
    path = Path(cache) / f"{folder.parent.name}_{folder.name}.npz" if cache is not None else None
    if path is not None and path.exists():
        return Sample.load(path)
    truth, centreline = read_truth(folder)
    partial = truth.input.get("synthetic", {}).get("partial_levels", []) or []
    ignore = None
    if partial and (folder / "body_msk.nii.gz").exists():
        centres = centroids_from_mask(read_image(folder / "body_msk.nii.gz"), partial)
        ignore = np.array(list(centres.values())) if centres else None
    rng = np.random.default_rng(seed)
    sample, _ = sample_from_ct(
        read_image(folder / "ct.nii.gz"), truth, centreline, rng, perturb_mm, name=folder.name, ignore_lps=ignore
    )
    if path is not None:
        sample.save(path)
    return sample


class AnnotatedCTDataset:
    """Samples from real CTs with annotation JSON files, for retraining on a site's corrected cases.

    Args:
        pairs: (CT path, annotation path) pairs; the annotation is read with
            :func:`VertebralFractureLib.io.annotations.read_annotations`.
        perturb_mm: curve perturbation amplitude (augmentation).
        seed: random seed of the perturbation.
        cache: optional folder for ``.npz`` caches.

    """

    def __init__(
        self,
        pairs: Sequence[Tuple[Union[str, Path], Union[str, Path]]],
        perturb_mm: float = 1.0,
        seed: int = 0,
        cache: Optional[Union[str, Path]] = None,
    ):
        self.pairs = [(Path(a), Path(b)) for a, b in pairs]
        self.perturb_mm = perturb_mm
        self.seed = seed
        self.cache = Path(cache) if cache is not None else None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> Sample:
        from ...io.annotations import read_annotations
        from ...io.images import read_image

        ct_path, annotation_path = self.pairs[index]
        cached = self.cache / f"annotated_{index:04d}_{ct_path.name.split('.')[0]}.npz" if self.cache else None
        if cached is not None and cached.exists():
            return Sample.load(cached)
        truth = read_annotations(annotation_path)
        rng = np.random.default_rng(self.seed + index)
        sample, _ = sample_from_ct(read_image(ct_path), truth, None, rng, self.perturb_mm, name=ct_path.name)
        sample.meta["source"] = str(annotation_path)
        if cached is not None:
            sample.save(cached)
        return sample

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]


def load_cached(folder: Union[str, Path]) -> List[Sample]:
    """Every ``.npz`` sample of a folder, sorted by name."""
    return [Sample.load(path) for path in sorted(Path(folder).glob("*.npz"))]


class VerseDataset:
    """Samples from CTs in VerSe format: CT, vertebra mask and (optionally) centroid JSON.

    The six keypoints of each vertebra come from the mask (:func:`VertebralFractureLib.shape.measure.
    measure_from_mask`: body separated from the posterior elements, end plates fitted, keypoints
    in LPS); vertebrae without keypoints (cut by the view) are left out. The CT is straightened on a
    spline through the VerSe centroids (``*_ctd.json``, :func:`VertebralFractureLib.io.verse.
    read_verse_centroids`) when given, else through the measured bodies.

    Args:
        triples: (CT path, mask path, centroid JSON path or None) per case.
        perturb_mm: curve perturbation amplitude (augmentation).
        seed: random seed of the perturbation.
        cache: optional folder for ``.npz`` caches.

    """

    def __init__(
        self,
        triples: Sequence[Tuple[Union[str, Path], Union[str, Path], Optional[Union[str, Path]]]],
        perturb_mm: float = 1.0,
        seed: int = 0,
        cache: Optional[Union[str, Path]] = None,
    ):
        self.triples = [(Path(a), Path(b), Path(c) if c is not None else None) for a, b, c in triples]
        self.perturb_mm = perturb_mm
        self.seed = seed
        self.cache = Path(cache) if cache is not None else None

    def __len__(self) -> int:
        return len(self.triples)

    def truth(self, index: int) -> SpineResult:
        """The keypoints measured from the mask of case ``index`` (LPS)."""
        from ...levels import level_index
        from ...shape.measure import measure_from_mask

        result = measure_from_mask(self.triples[index][1])
        kept = [v for v in result.vertebrae if v.keypoints is not None and np.all(np.isfinite(v.keypoints))]
        result.vertebrae = sorted(kept, key=lambda v: level_index(v.label))
        return result

    def __getitem__(self, index: int) -> Sample:
        from ...io.images import read_image
        from ...io.verse import read_verse_centroids

        ct_path, mask_path, centroid_path = self.triples[index]
        cached = self.cache / f"verse_{index:04d}_{ct_path.name.split('.')[0]}.npz" if self.cache else None
        if cached is not None and cached.exists():
            return Sample.load(cached)
        ct = read_image(ct_path)
        truth = self.truth(index)
        curve = None
        if centroid_path is not None:
            centroids = read_verse_centroids(centroid_path, ct)
            if len(centroids) >= 2:
                curve = centreline_through(np.array(list(centroids.values())))
        rng = np.random.default_rng(self.seed + index)
        sample, _ = sample_from_ct(ct, truth, curve, rng, self.perturb_mm, name=ct_path.name)
        sample.meta["source"] = f"verse:{mask_path}"
        if cached is not None:
            sample.save(cached)
        return sample

    def __iter__(self) -> Iterator[Sample]:
        for index in range(len(self)):
            yield self[index]
