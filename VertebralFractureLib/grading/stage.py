"""The classifier stage: probability of a moderate or severe fracture per vertebra (Husseini et al. 2020)."""

from __future__ import annotations

from ..progress import Progress
from ..stage import Analysis, RunsWhenChosen, StageContext


class ClassifierStage(RunsWhenChosen):
    """Fracture probability per vertebra from the grading-loss network on sagittal patches."""

    name = "classifier"
    title = "scoring fractures with the patch classifier"
    share = 0.05

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Fill ``Vertebra.fracture_probability`` and the patient's maximum.

        Also sets ``result.models["fracture_classifier"]``. Missing weights or a 2D result add a warning
        instead of failing the analysis.
        """
        from ..nn.weights import WeightsError, read_manifest
        from .classifier import WEIGHTS_NAME, fracture_probabilities, load_model
        from .regions import region_index

        result = analysis.result
        progress(0.0, self.title)
        if result.frame != "LPS":
            result.warnings.append("fracture classifier: only CT (3D) results are supported; skipped")
            return
        try:
            weights = context.weights_for(self.name)
            model = load_model(weights, device=context.device) if weights else None
            probabilities = fracture_probabilities(analysis, model, device=context.device)
        except WeightsError as error:
            result.warnings.append(f"fracture classifier skipped: {error}")
            return
        for vertebra in result.vertebrae:
            if vertebra.label in probabilities:
                vertebra.fracture_probability = probabilities[vertebra.label]
        assessed = [p for label, p in probabilities.items() if result.vertebra(label).assessed]
        if assessed:
            result.patient["fracture_probability"] = max(assessed)
        elif not probabilities and any(region_index(v.label) is not None for v in result.vertebrae):
            result.warnings.append("fracture classifier: no CT and centre-line to cut the patches from; skipped")
            return
        # scored but none assessed: each vertebra keeps its probability, the patient no maximum (no assessed one)
        entry = read_manifest().get(WEIGHTS_NAME, {})
        result.models["fracture_classifier"] = f"{WEIGHTS_NAME} sha256:{str(entry.get('sha256', '?'))[:12]}"
        progress(1.0, f"fracture probabilities for {len(probabilities)} vertebrae")
