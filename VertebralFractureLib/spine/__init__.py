"""Spine centre-line and straightening (paper 001, section 3.1).

Modules:
    curve: arc-length parametrised 3D curves and rotation-minimising frames (Wang et al. 2008).
    straighten: the straightened volume, the virtual mid-sagittal image and the exact point maps.
    centreline_net: the 3D U-Net with per-axial-slice soft-argmax and presence score.
    centreline: :func:`find_centreline` (image -> :class:`Centreline`) with the shipped weights.
    centreline_data: training targets and the cached 3 mm training cases.
    train_centreline, evaluate_centreline: ``vertebral-fracture train|evaluate centreline``.
"""

from .curve import SpineCurve, rotation_minimising_frames
from .straighten import StraightenedSpine, straighten

__all__ = ["SpineCurve", "StraightenedSpine", "rotation_minimising_frames", "straighten"]
