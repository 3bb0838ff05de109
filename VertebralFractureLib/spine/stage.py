"""The centre-line and straightening stages (Pisov et al. 2020, §3.1).

:class:`CentrelineStage` finds the curve through the vertebral-body centres of the canonical CT;
:class:`StraighteningStage` resamples the CT along it and cuts the virtual mid-sagittal image the
keypoint detector reads.
"""

from __future__ import annotations

from ..progress import Progress
from ..stage import Analysis, RunsWithKeypoints, StageContext
from ..validation import InputError
from .centreline import WEIGHTS_NAME as CENTRELINE_WEIGHTS


def model_id(filename: str) -> str:
    """``name sha256[:12]`` of a shipped weights file, as recorded in the manifest."""
    from ..nn.weights import read_manifest

    entry = read_manifest().get(filename, {})
    return f"{filename} {str(entry.get('sha256', 'unknown'))[:12]}"


class CentrelineStage(RunsWithKeypoints):
    """Spine centre-line of the canonical CT (3D U-Net + per-slice soft-argmax, Pisov et al. 2020, §3.1)."""

    name = "centreline"
    title = "finding the spine centre-line"
    share = 0.25

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Set ``analysis.centreline``.

        Raises:
            InputError: when no spine is found.
        """
        from .centreline import CentrelineError, find_centreline, load_model

        result = analysis.result
        progress(0.0, self.title)
        where = result.input.get("path", "input image")
        try:
            model = load_model(context.weights_for(self.name), device=context.device)
            centreline = find_centreline(analysis.ct_for_models(), model)
        except CentrelineError as error:
            from ..keypoints.stage import coverage_message

            short = coverage_message(float(analysis.canonical_geometry.extent_mm[2]))
            raise InputError(f"{where}: no spine found in the image ({short or error})") from None
        analysis.centreline = centreline
        result.models["centreline"] = model_id(CENTRELINE_WEIGHTS)
        if len(centreline.points) < 2:
            raise InputError(f"{where}: no spine found in the image")


class StraighteningStage(RunsWithKeypoints):
    """Straightened spine and its virtual mid-sagittal image (rotation-minimising frames)."""

    name = "straighten"
    title = "straightening the spine"
    share = 0.15

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Set ``analysis.straightened``, ``mid_sagittal`` and ``mid_spacing``."""
        from .straighten import straighten

        progress(0.0, self.title)
        straight = straighten(analysis.ct_for_models(), analysis.centreline, anti_alias=True)
        analysis.straightened = straight
        analysis.mid_sagittal = straight.mid_sagittal()
        if analysis.model_ct is not None and analysis.model_ct is not analysis.canonical:
            # what the reader sees is the CT itself, the cement of a vertebroplasty as bright as it is
            analysis.mid_sagittal = straight.mid_sagittal_at(analysis.canonical, straight.spacing)
        analysis.mid_spacing = (straight.spacing, straight.spacing)
