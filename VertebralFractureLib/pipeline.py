"""The end-to-end analysis of one CT: every stage composed, each optional.

Stages (DESIGN.md §1): load and check -> canonical orientation -> spine centre-line (001 §3.1)
-> straightening and virtual mid-sagittal image -> six keypoints and level labels per vertebra
(001 §3.2, 004) -> mapped back to patient LPS mm -> Genant measures -> vertebral-body masks.
Later stages (fracture classifier 000, voxel map 002, abnormality 003) join through
:data:`EXTRA_STAGES` as their models land. Each stage is a plain function usable alone; this
module only composes them, reports progress and honours cancellation between and inside stages.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .geometry import ImageGeometry
from .progress import Progress
from .schema import SpineResult, Vertebra
from .validation import InputError, check_ct

PathLike = Union[str, Path]
#: The later stages an analysis runs by default, in order (see :data:`EXTRA_STAGES`).
DEFAULT_STAGES = ("classifier", "voxel_map", "abnormality")


@dataclass
class AnalysisOptions:
    """What to run and where.

    Attributes:
        keypoints: detect vertebrae and six keypoints (needs the centre-line).
        masks: draw vertebral-body masks for the segmentation output.
        extra_stages: names of optional later stages to run when available.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        segmentation: a user's vertebra label mask (SimpleITK image, VerSe labels) to use
            instead of the drawn body masks.
    """

    keypoints: bool = True
    masks: bool = True
    extra_stages: Tuple[str, ...] = DEFAULT_STAGES
    device: str = "auto"
    segmentation: Any = None


@dataclass
class Analysis:
    """Everything one analysis produced, for the exports and the Slicer scene.

    Attributes:
        result: vertebrae, keypoints (LPS mm), Genant measures, patient summary.
        image: the input CT as read (original geometry).
        centreline: the spine centre-line (points LPS mm, confidence), or None.
        straightened: the straightened spine (mid-sagittal image and point maps), or None.
        mid_sagittal: the virtual mid-sagittal image ``[row, column]`` (1 pixel = ``mid_spacing`` mm).
        mid_points: level -> six keypoints ``[column, row]`` in the mid-sagittal image.
        labels: vertebral-body label image (VerSe labels) on the input's grid, or None.
        fracture_map: voxel fracture probability (0-1) on a band around the spine (paper 002), or None.
    """

    result: SpineResult
    image: Any
    centreline: Any = None
    straightened: Any = None
    mid_sagittal: Optional[np.ndarray] = None
    mid_spacing: Tuple[float, float] = (1.0, 1.0)
    mid_points: Dict[str, np.ndarray] = field(default_factory=dict)
    labels: Any = None
    fracture_map: Any = None


#: Keypoints closer than this (voxels) to the image border mean the vertebra is cut by the field of view.
EDGE_MARGIN_VOXELS = 1.0

StageFunction = Callable[[Analysis, AnalysisOptions, Progress], None]


class StageUnavailable(RuntimeError):
    """An optional stage whose code is not installed in this version."""


def _lazy_stage(module: str, name: str) -> StageFunction:
    """A stage imported on first use, so that loading the pipeline never imports torch."""

    def stage(analysis: Analysis, options: AnalysisOptions, progress: Progress) -> None:
        try:
            function = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as error:
            raise StageUnavailable(f"{module}.{name} cannot be loaded ({error})") from None
        function(analysis, options, progress)

    stage.__name__ = name
    return stage


#: Optional later stages: name -> function(analysis, options, progress) filling result fields.
EXTRA_STAGES: Dict[str, StageFunction] = {
    "mask_measures": _lazy_stage("VertebralFractureLib.shape", "stage_mask_measures"),  # 003 / issue 9
    "classifier": _lazy_stage("VertebralFractureLib.grading", "stage_fracture_classifier"),  # 000
    "voxel_map": _lazy_stage("VertebralFractureLib.voxelmap", "stage_voxel_map"),  # 002
    "abnormality": _lazy_stage("VertebralFractureLib.shape.score", "stage_abnormality"),  # 003
}


def load_ct(source: Union[PathLike, Any]) -> Any:
    """Read a CT from a path (file or DICOM folder) or pass a SimpleITK image through.

    Raises:
        InputError / ImageReadError: for missing, corrupt or non-CT inputs.
    """
    from .io.images import read_image

    if isinstance(source, (str, Path)):
        return read_image(source)
    if source is None:
        raise InputError("no input image was given")
    return source


def input_description(image, source: Union[PathLike, Any]) -> Dict[str, Any]:
    """The ``input`` block of the result: geometry and provenance, no patient identity."""
    from .io.images import geometry_of

    geometry = geometry_of(image)
    description = {**geometry.to_dict(), "orientation": geometry.orientation_code}
    if isinstance(source, (str, Path)):
        description["path"] = Path(source).name
    return description


def analyze(
    source: Union[PathLike, Any],
    options: Optional[AnalysisOptions] = None,
    progress: Optional[Progress] = None,
) -> Analysis:
    """Analyse one CT: a path, a DICOM folder or a SimpleITK image.

    Args:
        source: the CT.
        options: what to run (defaults: everything available).
        progress: progress callback and cancellation.

    Returns:
        The :class:`Analysis`; ``analysis.result`` is the :class:`SpineResult` in LPS mm.

    Raises:
        InputError: for an input that is not a usable CT (the message says why).
        Cancelled: when cancelled through ``progress``.
    """
    import SimpleITK as sitk

    from .io.images import geometry_of, to_canonical

    options = options or AnalysisOptions()
    progress = progress or Progress()
    timings: Dict[str, float] = {}
    warnings: List[str] = []

    started = time.perf_counter()
    progress(0.0, "reading the CT")
    image = load_ct(source)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{_name(source)}: a colour image ({image.GetNumberOfComponentsPerPixel()} components); "
                         "a CT volume is expected")
    geometry = geometry_of(image)
    array = sitk.GetArrayViewFromImage(image)
    check = check_ct(np.asarray(array) if array.ndim != 3 else array, geometry, _name(source))
    warnings += check.warnings
    canonical = to_canonical(image)
    timings["load"] = time.perf_counter() - started

    result = SpineResult(frame="LPS", input=input_description(image, source), warnings=warnings)
    analysis = Analysis(result=result, image=image)

    if options.keypoints:
        with _device(options.device):
            _run_keypoints(analysis, canonical, options, progress.sub(0.05, 0.8), timings)
    if options.masks:
        started = time.perf_counter()
        progress.sub(0.8, 0.9)(0.0, "drawing vertebral-body masks")
        analysis.labels = _labels(analysis, options, geometry)
        timings["masks"] = time.perf_counter() - started
    stages = tuple(options.extra_stages)
    if options.segmentation is not None and "mask_measures" not in stages:
        stages = ("mask_measures",) + stages
    for index, name in enumerate(stages):
        stage = EXTRA_STAGES.get(name)
        if stage is None:
            result.warnings.append(f"stage {name!r} is not available in this version; skipped")
            continue
        started = time.perf_counter()
        share = 0.1 / max(1, len(stages))
        try:
            with _device(options.device):
                stage(analysis, options, progress.sub(0.9 + index * share, 0.9 + (index + 1) * share))
        except StageUnavailable as error:
            result.warnings.append(f"stage {name!r} skipped: {error}")
            continue
        timings[name] = time.perf_counter() - started
    result.timings_s = {k: round(v, 3) for k, v in timings.items()}
    result.recompute()
    progress(1.0, f"done: {len(result.vertebrae)} vertebrae")
    return analysis


def _name(source: Union[PathLike, Any]) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else "input image"


def _run_keypoints(analysis: Analysis, canonical, options: AnalysisOptions, progress: Progress,
                   timings: Dict[str, float]) -> None:
    """Centre-line -> straightening -> 2D detection -> LPS keypoints (001 §3)."""
    from .io.images import geometry_of
    from .keypoints.detector import detect_vertebrae
    from .spine import straighten
    from .spine.centreline import CentrelineError, find_centreline

    result = analysis.result
    started = time.perf_counter()
    progress(0.0, "finding the spine centre-line")
    try:
        centreline = find_centreline(canonical)
    except CentrelineError as error:
        raise InputError(f"{result.input.get('path', 'input image')}: no spine found in the image ({error})") from None
    analysis.centreline = centreline
    result.models["centreline"] = _model_id("centreline.pt")
    timings["centreline"] = time.perf_counter() - started
    if len(centreline.points) < 2:
        raise InputError(f"{result.input.get('path', 'input image')}: no spine found in the image")

    started = time.perf_counter()
    progress(0.35, "straightening the spine")
    straight = straighten(canonical, centreline)
    analysis.straightened = straight
    image2d = straight.mid_sagittal()
    analysis.mid_sagittal = image2d
    analysis.mid_spacing = (straight.spacing, straight.spacing)
    timings["straighten"] = time.perf_counter() - started

    started = time.perf_counter()
    progress(0.55, "detecting vertebrae and keypoints")
    detections = detect_vertebrae(image2d, spacing_mm=straight.spacing, straightened=straight)
    result.models["keypoints"] = _model_id("keypoints.pt")
    result.models["levels"] = _model_id("keypoints_levels.pt")
    progress.check()
    geometry = geometry_of(canonical)
    for detection in detections:
        points2d = np.asarray(detection.keypoints, dtype=float)
        points3d = straight.mid_sagittal_to_patient(points2d, order="col_row")
        centroid3d = straight.mid_sagittal_to_patient(points2d.mean(axis=0)[None], order="col_row")[0]
        if not np.all(geometry.contains(points3d, margin=-EDGE_MARGIN_VOXELS)):
            result.warnings.append(
                f"{detection.label}: cut by the edge of the field of view; not measured")
            continue
        vertebra = Vertebra(label=detection.label, centroid=centroid3d, keypoints=points3d,
                            confidence=float(min(detection.score, detection.label_confidence)), source="model")
        result.vertebrae.append(vertebra)
        analysis.mid_points[vertebra.label] = points2d
    timings["keypoints"] = time.perf_counter() - started
    if not detections:
        warn_no_vertebra(result)
    progress(1.0, f"{len(detections)} vertebrae found")


def warn_no_vertebra(result: SpineResult) -> None:
    """Tell the user that nothing was found (a result without vertebrae is not a normal spine)."""
    result.warnings.append(f"{result.input.get('path', 'input image')}: no vertebra was found; "
                           "is the spine in view? (vertebrae can be added by hand in Slicer)")


def _model_id(filename: str) -> str:
    """``name sha256[:12]`` of a shipped weights file, as recorded in the manifest."""
    from .nn.weights import read_manifest

    entry = read_manifest().get(filename, {})
    return f"{filename} {str(entry.get('sha256', 'unknown'))[:12]}"


@contextlib.contextmanager
def _device(name: str) -> Iterator[None]:
    """Run the models on ``name`` (``auto``: CUDA when present) for the duration of a call."""
    from .nn.device import DEVICE_ENV, pick_device

    previous = os.environ.get(DEVICE_ENV)
    chosen = str(pick_device(None if name == "auto" else name))
    os.environ[DEVICE_ENV] = chosen
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(DEVICE_ENV, None)
        else:
            os.environ[DEVICE_ENV] = previous


def _labels(analysis: Analysis, options: AnalysisOptions, geometry: ImageGeometry):
    """Vertebral-body label image on the input grid: the user's mask, else drawn from keypoints."""
    from .io.images import image_from_array, resample_like
    from .masks import body_masks_from_keypoints

    if options.segmentation is not None:
        return resample_like(options.segmentation, analysis.image, nearest=True)
    if not analysis.result.vertebrae:
        return None
    return image_from_array(body_masks_from_keypoints(analysis.result, geometry), geometry)
