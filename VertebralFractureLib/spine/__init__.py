"""Spine centre-line and straightening (Pisov et al. 2020, section 3.1).

Modules:
    curve: arc-length parametrised 3D curves and rotation-minimising frames (Wang et al. 2008).
    straighten: the straightened volume, the virtual mid-sagittal image and the exact point maps.
    centreline_net: the 3D U-Net with per-axial-slice soft-argmax and presence score (imports torch).
    centreline: :func:`find_centreline` (CT -> :class:`Centreline`) with the shipped weights.
    centreline_data: 3 mm inputs, per-slice targets and cached training cases.
    train_centreline, evaluate_centreline: ``vertebral-fracture train|evaluate centreline``.
    overview: the overview picture (MIPs with the curve + mid-sagittal image).

Usage::

    from VertebralFractureLib.spine import find_centreline, straighten
    centreline = find_centreline(ct)                 # SimpleITK image, any orientation
    spine = straighten(ct, centreline, spacing=1.0)  # StraightenedSpine
    image = spine.mid_sagittal()                     # rows superior -> inferior, cols anterior -> posterior
    lps = spine.mid_sagittal_to_patient(rows_cols)   # 2D detections back to patient LPS mm
"""

from .centreline import Centreline, CentrelineError, find_centreline
from .curve import SpineCurve, rotation_minimising_frames
from .straighten import StraightenedSpine, straighten

__all__ = [
    "Centreline",
    "CentrelineError",
    "SpineCurve",
    "StraightenedSpine",
    "find_centreline",
    "rotation_minimising_frames",
    "straighten",
]
