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

#: The patient-level finding of the map (Nicolaes et al. 2019, §3.3: connected components of likely fracture voxels, at
#: least ``noise_mm3`` large, away from the scan's ends) on the real CTs of the reference set whose reference holds no
#: fracture, measured with ``OMP_NUM_THREADS=1 python benchmarks/calibrate_real.py`` on 2026-12-06: positive on
#: :data:`REAL_NORMAL_POSITIVE` of :data:`REAL_NORMAL_CTS` (the sample CT: 4 components, 7928 mm^3, about 22 mm in front
#: of the centres of L2-L4; the chest CT: 3, 1952 mm^3, mostly inside its normal T2, T11 and T12 bodies, a sharp-kernel
#: 3 mm scan; each of its two cardiac crops: 1; the TPTBox crop: none), and on a crop of the chest CT with no spine in
#: it (2 components in the heart; such a crop, with no vertebra found, now gets no map at all). Those are two patients
#: of three. The map's vertebra score (the Gaussian-weighted cube) is the one calibrated on real vertebrae (0 of 32 at
#: 0.5, :data:`VertebralFractureLib.verdict.SCORE_RULES`) and enters the verdict; the patient-level flag, trained and
#: validated on generated spines only (patient AUC 0.973 there), is no finding on a real scan until its rate on real CTs
#: without a fracture is at most :data:`~VertebralFractureLib.verdict.MAX_REAL_FPR` over at least 10.
REAL_NORMAL_POSITIVE = 4
REAL_NORMAL_CTS = 5
#: What ``result.patient["voxel_fracture_patient_level"]`` says while the flag is not validated.
PATIENT_LEVEL_NOTE = ("research only, not a finding: the voxel map's patient-level components were positive on "
                      f"{REAL_NORMAL_POSITIVE} of {REAL_NORMAL_CTS} real CTs without a fracture (benchmarks/"
                      "calibrate_real.py); its per-vertebra score is the calibrated one")


def patient_level_validated() -> bool:
    """Whether the map's patient-level flag may be reported as a finding (see :data:`REAL_NORMAL_POSITIVE`)."""
    from ..verdict import ScoreRule

    rule = ScoreRule("voxel_fracture_positive", "voxel map, patient level (Nicolaes et al. 2019)", 0.5,
                     REAL_NORMAL_POSITIVE / REAL_NORMAL_CTS, REAL_NORMAL_CTS)
    return rule.validated


class VoxelMapStage(RunsWhenChosen):
    """Voxel fracture probability on a band around the spine and its aggregation per vertebra and patient."""

    name = "voxel_map"
    title = "computing the voxel fracture map"
    share = 0.1

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Compute the fracture map and fill the scores of ``analysis.result``.

        Sets ``Vertebra.voxel_fracture_score`` (Nicolaes et al. 2019, §3.3 Gaussian-weighted cube mean),
        ``result.patient["voxel_fracture_volume_mm3"]`` and ``["voxel_fracture_components"]`` (total volume in mm^3
        and number of the likely-fracture components above the noise threshold, ignoring those within the
        validated scan-edge margin of the first/last slice), ``result.patient["voxel_fracture_positive"]`` (None
        while the patient-level flag is not validated on real CTs, :func:`patient_level_validated`, with
        ``["voxel_fracture_patient_level"]`` saying so) and ``analysis.fracture_map`` (SimpleITK p(fracture)
        image on the band grid). Without a centre-line, a vertebra on it or weights the stage only adds a warning.
        """
        from ..nn.weights import WeightsError
        from .inference import MODEL_NAME, WEIGHTS_NAME, fracture_map, load_model

        result = analysis.result
        centreline = analysis.centreline
        points = getattr(centreline, "points", centreline)
        if points is None or len(points) < 2:
            result.warnings.append("voxel fracture map skipped: no spine centre-line")
            return
        if not result.vertebrae:
            # a centre-line with no vertebral body on it (a crop of the heart took one) maps no spine: its hot
            # voxels would be drawn on whatever it crossed
            result.warnings.append("voxel fracture map skipped: no vertebra was found on the centre-line")
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
        result.patient["voxel_fracture_volume_mm3"] = round(patient.fracture_volume_mm3, 1)
        result.patient["voxel_fracture_components"] = patient.n_components
        validated = patient_level_validated()
        result.patient["voxel_fracture_positive"] = patient.positive if validated else None
        if not validated:
            result.patient["voxel_fracture_patient_level"] = PATIENT_LEVEL_NOTE
        sha = meta.get("sha256")
        result.models[MODEL_NAME] = f"{WEIGHTS_NAME} sha256:{sha[:12]}" if sha else str(weights or WEIGHTS_NAME)
        progress(1.0, "voxel fracture map done")
