"""The one contract every analysis step implements, and the state the steps share.

An analysis is a list of :class:`Stage` objects run in order by :func:`VertebralFractureLib.pipeline.analyze`
(DESIGN.md §1). Each stage reads what earlier stages left on the :class:`Analysis` (the CT, its canonical
orientation, the centre-line, the vertebrae...) and adds its own part; everything a stage needs from outside
(device, threads, weights files, a user's segmentation) arrives in the :class:`StageContext`, never through
environment variables or module globals. Stage modules import torch and their models lazily inside
:meth:`Stage.run`, so composing the list stays cheap.

Adding a stage: write a class with ``name``, ``title``, ``share``, ``enabled`` and ``run`` in its method's
folder (``<method>/stage.py``) and add one instance to :func:`VertebralFractureLib.pipeline.default_stages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Protocol, Tuple, Union, runtime_checkable

import numpy as np

from .geometry import ImageGeometry
from .progress import Progress
from .schema import SpineResult

PathLike = Union[str, Path]


@dataclass
class AnalysisOptions:
    """What to run, chosen by the caller (CLI flags, the Slicer panel).

    Attributes:
        keypoints: find the centre-line, straighten and detect vertebrae with six keypoints.
        masks: draw vertebral-body masks for the segmentation output.
        extra_stages: names of the optional later stages to run (see
            :func:`VertebralFractureLib.pipeline.default_stages`).
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        segmentation: a user's vertebra label mask (SimpleITK image, VerSe labels) to measure on and to
            use instead of the drawn body masks.
        threads: CPU threads for the models (None: torch's default).
        weights: stage name -> weights file replacing the shipped one (e.g. ``{"voxel_map": "my.pt"}``).
        slice_thickness_mm: the CT's slices are this thick (mm) along its third voxel axis, where the file does not
            say so (a volume from an overlapping reconstruction written without its DICOM header): recorded as what the
            image resolves (``ImageGeometry.resolution``); None: what the file says.
    """

    keypoints: bool = True
    masks: bool = True
    extra_stages: Tuple[str, ...] = ("classifier", "voxel_map", "abnormality")
    device: str = "auto"
    segmentation: Any = None
    threads: Optional[int] = None
    weights: Dict[str, PathLike] = field(default_factory=dict)
    slice_thickness_mm: Optional[float] = None


@dataclass
class StageContext:
    """What every stage receives from outside the analysis.

    Attributes:
        device: the torch device name the models run on (resolved once per analysis: ``cpu``, ``cuda``...).
        threads: CPU threads for torch, or None.
        weights: stage name -> weights file replacing the shipped one.
        segmentation: the user's vertebra label mask, or None.
    """

    device: str = "cpu"
    threads: Optional[int] = None
    weights: Dict[str, PathLike] = field(default_factory=dict)
    segmentation: Any = None

    def weights_for(self, stage: str) -> Optional[PathLike]:
        """The weights file chosen for ``stage``, or None for the shipped one."""
        return self.weights.get(stage)


@dataclass
class Analysis:
    """Everything one analysis produced so far, for the later stages, the exports and the Slicer scene.

    Attributes:
        result: vertebrae, keypoints (LPS mm), Genant measures, patient summary.
        image: the input CT as read (original geometry).
        geometry: the input's geometry (computed once).
        canonical: the CT in canonical orientation (identity direction), computed once per analysis.
        canonical_geometry: its geometry.
        model_ct: ``canonical`` as the models and the keypoint refinement read it, bone cement's solid core read as
            dense bone (:func:`VertebralFractureLib.implants.without_cement_ct`); None:
            ``canonical`` itself. The quality gate reads ``canonical``, cement and all.
        centreline: the spine centre-line (points LPS mm, confidence), or None.
        straightened: the straightened spine (mid-sagittal image and point maps), or None.
        mid_sagittal: the virtual mid-sagittal image ``[row, column]`` (1 pixel = ``mid_spacing`` mm).
        mid_points: level -> six keypoints ``[column, row]`` in the mid-sagittal image.
        detected_points: level -> the (6, 3) LPS points the CT refinement started from (the detector's), for the
            quality gate's re-measurement on noisy copies (:mod:`VertebralFractureLib.quality.noise`).
        mid_caption: what the mid-sagittal image is, for the overview's note (None: the straightened spine's
            mid-sagittal plane).
        mid_plane: the same in a few words, for the report's thumbnails (None: the straightened spine's).
        labels: vertebral-body label image (VerSe labels) on the input's grid, or None.
        fracture_map: voxel fracture probability (0-1) on a band around the spine (Nicolaes et al. 2019), or None.
    """

    result: SpineResult
    image: Any
    geometry: Optional[ImageGeometry] = None
    canonical: Any = None
    canonical_geometry: Optional[ImageGeometry] = None
    model_ct: Any = None
    centreline: Any = None
    straightened: Any = None
    mid_sagittal: Optional[np.ndarray] = None
    mid_spacing: Tuple[float, float] = (1.0, 1.0)
    mid_points: Dict[str, np.ndarray] = field(default_factory=dict)
    detected_points: Dict[str, np.ndarray] = field(default_factory=dict)
    mid_caption: Optional[str] = None
    mid_plane: Optional[str] = None
    labels: Any = None
    fracture_map: Any = None

    def ct_for_models(self) -> Any:
        """The canonical CT the models read (:attr:`model_ct`, else :attr:`canonical`)."""
        return self.model_ct if self.model_ct is not None else self.canonical


@runtime_checkable
class Stage(Protocol):
    """One step of the analysis.

    Attributes:
        name: identifier used in options, timings and ``--stages`` (``"voxel_map"``).
        title: what the step does, in plain words for the progress line.
        share: expected share of the analysis time (for a progress bar that moves evenly).
    """

    name: str
    title: str
    share: float

    def enabled(self, options: AnalysisOptions) -> bool:
        """Whether this stage runs for these options."""
        ...

    def run(self, analysis: Analysis, context: StageContext, progress: Progress) -> None:
        """Add this stage's part to ``analysis`` (in place); report through ``progress``.

        Raises:
            VertebralFractureLib.validation.InputError: when the input cannot be analysed at all.
            VertebralFractureLib.progress.Cancelled: when cancelled through ``progress``.
        """
        ...


class RunsWithKeypoints:
    """Mixin: a stage that runs whenever keypoints are wanted (``AnalysisOptions.keypoints``)."""

    def enabled(self, options: AnalysisOptions) -> bool:
        """Whether keypoints are wanted."""
        return options.keypoints


class RunsWhenChosen:
    """Mixin: an optional stage that runs when its ``name`` is in ``AnalysisOptions.extra_stages``."""

    name: str

    def enabled(self, options: AnalysisOptions) -> bool:
        """Whether the caller chose this stage."""
        return self.name in options.extra_stages
