"""The voxel-map stage: voxel fracture map, vertebra and patient scores (Nicolaes et al. 2019)."""

from __future__ import annotations

from ..progress import Progress
from ..stage import Analysis, RunsWhenChosen, StageContext
from .aggregate import (
    DEFAULT_CUBE,
    DEFAULT_EDGE_MARGIN_MM,
    DEFAULT_NOISE_MM3,
    DEFAULT_PROBABILITY_THRESHOLD,
    patient_score,
    vertebra_scores,
)


class VoxelMapStage(RunsWhenChosen):
    """Voxel fracture probability on a band around the spine and its aggregation per vertebra and patient."""

    name = "voxel_map"
    title = "computing the voxel fracture map"
    share = 0.1

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Compute the fracture map and fill the scores of ``analysis.result``.

        Sets ``Vertebra.voxel_fracture_score`` (Nicolaes et al. 2019, §3.3 Gaussian-weighted cube mean),
        ``result.patient["voxel_fracture_score"]`` (total volume in mm^3 of likely-fracture components above
        the noise threshold, ignoring those within the validated scan-edge margin of the first/last slice),
        ``result.patient["voxel_fracture_positive"]`` and ``analysis.fracture_map`` (SimpleITK p(fracture)
        image on the band grid). Without a centre-line or weights the stage only adds a warning.
        """
        from ..nn.weights import WeightsError
        from .inference import MODEL_NAME, WEIGHTS_NAME, fracture_map, load_model

        result = analysis.result
        centreline = analysis.centreline
        points = getattr(centreline, "points", centreline)
        if points is None or len(points) < 2:
            result.warnings.append("voxel fracture map skipped: no spine centre-line")
            return
        weights = context.weights_for(self.name)
        try:
            model, meta = load_model(weights, context.device)
        except WeightsError as error:
            result.warnings.append(f"voxel fracture map skipped: {error}")
            return
        progress(0.0, self.title)
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
        result.models[MODEL_NAME] = f"{WEIGHTS_NAME} sha256:{sha[:12]}" if sha else str(weights or WEIGHTS_NAME)
        progress(1.0, "voxel fracture map done")
