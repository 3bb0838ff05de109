"""The end-to-end analysis of one CT: a list of stages, composed.

Flow (DESIGN.md §1): load and check -> canonical orientation (once) -> spine centre-line (Pisov et al.
2020, §3.1) -> straightening and virtual mid-sagittal image -> six keypoints and level labels per vertebra
(Pisov et al. 2020, §3.2; Gartland et al. 2025) -> quality gate -> vertebral-body masks -> optional stages:
measures from a user's segmentation, fracture classifier (Husseini et al. 2020), voxel fracture map
(Nicolaes et al. 2019), shape abnormality (Botros et al. 2022). Every step implements
:class:`VertebralFractureLib.stage.Stage`; this module only reads the input, builds the
:class:`~VertebralFractureLib.stage.StageContext`, runs the stages of :func:`default_stages` that the
options enable, reports progress and honours cancellation.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .grading.stage import ClassifierStage
from .keypoints.stage import KeypointStage
from .progress import Progress
from .quality.stage import QualityGateStage
from .schema import SpineResult
from .shape.masked_ct import masked_structure
from .shape.stage import AbnormalityStage, BodyMaskStage, MaskMeasureStage
from .spine.stage import CentrelineStage, StraighteningStage
from .stage import Analysis, AnalysisOptions, Stage, StageContext
from .validation import InputError, check_ct, masked_fill
from .voxelmap.stage import VoxelMapStage

PathLike = Union[str, Path]
#: The optional stages an analysis runs by default, in order.
DEFAULT_STAGES = ("classifier", "voxel_map", "abnormality")
#: The stages run on a CT masked to one vertebra (:mod:`VertebralFractureLib.shape.masked_ct`): the measures from the
#: outline of its bone and the shape abnormality (Botros et al. 2022, validated for masks); the others read the tissue
#: around the spine, which the masking removed.
MASKED_CT_STAGES = ("mask_measures", "abnormality")

__all__ = ["DEFAULT_STAGES", "Analysis", "AnalysisOptions", "analyze", "default_stages", "load_ct"]


def default_stages() -> List[Stage]:
    """The analysis, in order. Adding a stage: one new ``<method>/stage.py`` and one line here."""
    return [
        CentrelineStage(),
        StraighteningStage(),
        KeypointStage(),
        QualityGateStage(),
        BodyMaskStage(),
        MaskMeasureStage(),
        ClassifierStage(),
        VoxelMapStage(),
        AbnormalityStage(),
    ]


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


def _with_slice_thickness(image: Any, thickness_mm: float, source: Union[PathLike, Any]) -> Any:
    """``image`` with its slices recorded as ``thickness_mm`` thick (``AnalysisOptions.slice_thickness_mm``).

    A caller's image object is copied first, never changed.

    Raises:
        InputError: for a thickness that is not a positive number up to ``io.images.MAX_SLICE_THICKNESS_MM``, or a
            picture (no slices).
    """
    import SimpleITK as sitk

    from .io.images import MAX_SLICE_THICKNESS_MM, plausible_thickness, record_slice_thickness

    if plausible_thickness(thickness_mm) is None:
        raise InputError(f"{_name(source)}: a slice thickness of {thickness_mm} mm is not one a CT has (0 to "
                         f"{MAX_SLICE_THICKNESS_MM:g} mm)")
    if image.GetDimension() != 3:
        raise InputError(f"{_name(source)}: a slice thickness applies to a CT volume, not to a {image.GetDimension()}D "
                         "image")
    if not isinstance(source, (str, Path)):
        image = sitk.Image(image)
    record_slice_thickness(image, float(thickness_mm))
    return image


def _with_interpolated_resolution(image: Any, source: Union[PathLike, Any]) -> Tuple[Any, Optional[str]]:
    """``image`` with what it resolves recorded when its voxels show it was resampled finer than it was acquired.

    Only where nothing says so already (a DICOM Slice Thickness, a sidecar, ``slice_thickness_mm``):
    :func:`.io.interpolated.interpolated_resolution` reads the blends of a linear or nearest-neighbour resampling
    from the voxels. A caller's image object is copied first, never changed.

    Returns:
        The image and the warning that says what was found, or the image unchanged and None.
    """
    import SimpleITK as sitk

    from .io.images import set_resolution
    from .io.interpolated import unrecorded_interpolation

    found = unrecorded_interpolation(image)
    if found is None:
        return image, None
    if not isinstance(source, (str, Path)):
        image = sitk.Image(image)
    set_resolution(image, found.resolution)
    return image, f"{_name(source)}: {found.describe()}; measured at what it resolves"


def input_description(geometry, source: Union[PathLike, Any], image: Any = None) -> Dict[str, Any]:
    """The ``input`` block of the result: geometry and provenance, no patient identity.

    A DICOM input (``image`` read from a series) adds its ``study_uid`` and ``series_uid``, so the result can be
    linked back to its exam, and, from a folder of several series, ``series_choice``: which series was analysed and
    why (:func:`.io.series_choice.choose_series`); no patient name, ID or date is copied.
    """
    from .io.images import SERIES_CHOICE_KEY, SERIES_UID_TAGS

    description = {**geometry.to_dict(), "orientation": geometry.orientation_code}
    if isinstance(source, (str, Path)):
        description["path"] = Path(source).name
    for key, tag in {**SERIES_UID_TAGS, "series_choice": SERIES_CHOICE_KEY}.items():
        if image is not None and image.HasMetaDataKey(tag):
            description[key] = image.GetMetaData(tag)
    return description


def analyze(
    source: Union[PathLike, Any],
    options: Optional[AnalysisOptions] = None,
    progress: Optional[Progress] = None,
    stages: Optional[Sequence[Stage]] = None,
) -> Analysis:
    """Analyse one CT: a path, a DICOM folder or a SimpleITK image.

    Args:
        source: the CT.
        options: what to run (defaults: everything available).
        progress: progress callback and cancellation.
        stages: the stages to compose (default :func:`default_stages`); those the options disable are skipped.

    Returns:
        The :class:`Analysis`; ``analysis.result`` is the :class:`SpineResult` in LPS mm.

    Raises:
        InputError: for an input that is not a usable CT (the message says why).
        Cancelled: when cancelled through ``progress``.
    """
    import SimpleITK as sitk

    from .implants import without_cement_ct
    from .io.images import GANTRY_TILT_KEY, SERIES_CHOICE_KEY, geometry_of, to_canonical

    options = options or AnalysisOptions()
    progress = progress or Progress()
    stages = list(default_stages() if stages is None else stages)
    timings: Dict[str, float] = {}
    warnings: List[str] = []

    started = time.perf_counter()
    progress(0.0, "reading the CT")
    image = load_ct(source)
    if options.slice_thickness_mm is not None:
        image = _with_slice_thickness(image, options.slice_thickness_mm, source)
    else:
        image, resampled = _with_interpolated_resolution(image, source)
        if resampled is not None:
            warnings.append(resampled)
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{_name(source)}: a colour image ({image.GetNumberOfComponentsPerPixel()} components); "
                         "a CT volume is expected")
    geometry = geometry_of(image)
    array = sitk.GetArrayViewFromImage(image)
    try:
        check = check_ct(np.asarray(array) if array.ndim != 3 else array, geometry, _name(source))
    except InputError:
        fill = masked_fill(array) if array.ndim == 3 else None
        if fill is None:
            raise
        check = check_ct(array, geometry, _name(source), masked=True)  # every other check still applies
        structure = masked_structure(image, *fill, _name(source))
    else:
        structure = _masked_with_air(image, array, _name(source))
    given_segmentation = options.segmentation is not None
    if structure is not None:  # the user's own segmentation, when given, is what is measured (and names the level)
        options = replace(options, segmentation=options.segmentation if given_segmentation else structure.labels,
                          extra_stages=tuple(n for n in options.extra_stages if n in MASKED_CT_STAGES))
        stages = [stage for stage in stages if stage.name in MASKED_CT_STAGES]
        warnings.append(f"{_name(source)}: the CT is masked to one vertebra ({structure.share:.0%} of the voxels hold "
                        f"{structure.fill:g}): measured from the outline of its bone as a vertebra mask; the stages "
                        "that read the tissue around the spine were not run")
    warnings += check.warnings
    if image.HasMetaDataKey(SERIES_CHOICE_KEY):  # a study folder: which of its series was measured
        warnings.insert(0, f"{_name(source)}: {image.GetMetaData(SERIES_CHOICE_KEY)}")
    if image.HasMetaDataKey(GANTRY_TILT_KEY):
        warnings.append(f"{_name(source)}: slices acquired with a gantry tilt of {image.GetMetaData(GANTRY_TILT_KEY)} "
                        "degrees, resampled onto an orthogonal grid before the analysis")
    canonical = to_canonical(image)
    timings["load"] = time.perf_counter() - started

    result = SpineResult(frame="LPS", input=input_description(geometry, source, image), warnings=warnings)
    if structure is not None and not given_segmentation:
        result.patient["levels"] = structure.levels
    analysis = Analysis(result=result, image=image, geometry=geometry, canonical=canonical,
                        canonical_geometry=geometry_of(canonical))
    if structure is None:  # a vertebroplasty's cement, read by the models as dense bone (implants module)
        analysis.model_ct, _ = without_cement_ct(canonical)
    known = {stage.name for stage in stages}
    for name in options.extra_stages:
        if name not in known:
            result.warnings.append(f"stage {name!r} is not available in this version; skipped")
    chosen = [stage for stage in stages if stage.enabled(options)]
    context = _context(options)
    total = sum(stage.share for stage in chosen) or 1.0
    done = 0.05
    for stage in chosen:
        span = 0.95 * stage.share / total
        started = time.perf_counter()
        stage.run(analysis, context, progress.sub(done, done + span))
        timings[stage.name] = time.perf_counter() - started
        done += span
    result.timings_s = {k: round(v, 3) for k, v in timings.items()}
    result.recompute()
    if structure is not None:
        _show_masked_structure(analysis, options.segmentation)
    progress(1.0, f"done: {len(result.vertebrae)} vertebrae")
    return analysis


def _masked_with_air(image, array, name: str):
    """The one vertebra of a CT masked with an air value (-1000, -1024), or None for a CT analysed as usual.

    A fill at air values is also padding outside the reconstructed circle, so such a volume is measured as a masked
    crop only when what is left passes every check of one whole vertebra (:func:`.shape.masked_ct.masked_structure`);
    otherwise it is analysed as a CT.
    """
    fill = masked_fill(array, air=True) if array.ndim == 3 else None
    if fill is None:
        return None
    try:
        return masked_structure(image, *fill, name)
    except InputError:
        return None


def _show_masked_structure(analysis: Analysis, labels) -> None:
    """A CT masked to one vertebra: the labels measured, and the vertebra's mid-sagittal section for the overview."""
    from .io.images import resample_like
    from .shape.masked_ct import mid_section

    analysis.labels = resample_like(labels, analysis.image, nearest=True)
    measured = [v for v in analysis.result.vertebrae if v.keypoints is not None]
    if measured:
        section, points, spacing = mid_section(analysis.image, measured[0].keypoints)
        analysis.mid_sagittal, analysis.mid_points, analysis.mid_spacing = section, {measured[0].label: points}, spacing
        analysis.mid_caption = "The vertebra's own mid-sagittal\nplane (the CT is masked to it)."
        analysis.mid_plane = "the vertebra's own mid-sagittal plane"


def _name(source: Union[PathLike, Any]) -> str:
    return Path(source).name if isinstance(source, (str, Path)) else "input image"


def _context(options: AnalysisOptions) -> StageContext:
    """The stages' context: the device resolved once, threads, weights, the user's segmentation."""
    device = options.device
    if options.keypoints or options.extra_stages:
        from .nn.device import limit_threads, pick_device

        device = str(pick_device(None if options.device == "auto" else options.device))
        limit_threads(options.threads)
    return StageContext(device=device, threads=options.threads, weights=dict(options.weights),
                        segmentation=options.segmentation)
