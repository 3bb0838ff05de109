"""The pipeline stage ``voxel_map``: 002 voxel fracture map, vertebra and patient scores.

Wire it with ``EXTRA_STAGES["voxel_map"] = stage_voxel_map`` (see :mod:`VertebralFractureLib.pipeline`).
"""

from __future__ import annotations

from typing import Any

from .aggregate import (
    DEFAULT_CUBE,
    DEFAULT_EDGE_MARGIN_MM,
    DEFAULT_NOISE_MM3,
    DEFAULT_PROBABILITY_THRESHOLD,
    patient_score,
    vertebra_scores,
)

STAGE_NAME = "voxel_map"


def stage_voxel_map(analysis: Any, options: Any = None, progress: Any = None) -> None:
    """Compute the fracture map and fill the scores of ``analysis.result``.

    Sets ``Vertebra.voxel_fracture_score`` (002 §3.3 Gaussian-weighted cube mean),
    ``result.patient["voxel_fracture_score"]`` (total volume in mm^3 of likely-fracture components
    above the noise threshold, ignoring those within the validated scan-edge margin of the first/last
    slice, issue 8), ``result.patient["voxel_fracture_positive"]`` and
    ``analysis.fracture_map`` (SimpleITK p(fracture) image on the band grid). Without a centre-line
    the stage only adds a warning.

    Args:
        analysis: a :class:`~VertebralFractureLib.pipeline.Analysis` (``image``, ``centreline``, ``result``).
        options: :class:`~VertebralFractureLib.pipeline.AnalysisOptions` or None; ``device`` and an
            optional ``voxelmap_weights`` (path; default the shipped ``voxelmap.pt``) are used.
        progress: a :class:`~VertebralFractureLib.progress.Progress` or None.

    """
    from ..nn.weights import WeightsError
    from .infer import MODEL_NAME, WEIGHTS_NAME, fracture_map, load_model

    result = analysis.result
    centreline = getattr(analysis, "centreline", None)
    points = getattr(centreline, "points", centreline)
    if points is None or len(points) < 2:
        result.warnings.append("voxel fracture map skipped: no spine centre-line")
        return
    try:
        model, meta = load_model(getattr(options, "voxelmap_weights", None), getattr(options, "device", None))
    except WeightsError as error:
        result.warnings.append(f"voxel fracture map skipped: {error}")
        return
    if progress is not None:
        progress(0.0, "voxel fracture map (002)")
    prob = fracture_map(analysis.image, points, model, progress=progress)
    analysis.fracture_map = prob
    cube = int(meta.get("cube", DEFAULT_CUBE))
    scores = vertebra_scores(prob, {v.label: v.centroid for v in result.vertebrae}, cube=cube)
    for v in result.vertebrae:
        v.voxel_fracture_score = scores.get(v.label)
    patient = patient_score(prob, float(meta.get("probability_threshold", DEFAULT_PROBABILITY_THRESHOLD)),
                            float(meta.get("noise_mm3", DEFAULT_NOISE_MM3)),
                            float(meta.get("edge_margin_mm", DEFAULT_EDGE_MARGIN_MM)))
    result.patient["voxel_fracture_score"] = round(patient.fracture_volume_mm3, 1)
    result.patient["voxel_fracture_positive"] = patient.positive
    result.patient["voxel_fracture_components"] = patient.n_components
    sha = meta.get("sha256")
    source = getattr(options, "voxelmap_weights", None) or WEIGHTS_NAME
    result.models[MODEL_NAME] = f"{WEIGHTS_NAME} sha256:{sha[:12]}" if sha else str(source)
    if progress is not None:
        progress(1.0, "voxel fracture map done")
