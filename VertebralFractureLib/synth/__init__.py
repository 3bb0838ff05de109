"""Synthetic spines with complete ground truth (DESIGN.md section 4).

Public API::

    from VertebralFractureLib.synth import SynthParams, SyntheticCase, generate_case, write_case, PRESETS
    case = generate_case(seed=0, preset="spine", spacing=(1.0, 1.0, 1.0))
    write_case(case, "out/case_0000")

Modules: :mod:`.morphometry` (level sizes), :mod:`.params` (parameters, presets),
:mod:`.column` (shapes, fractures, poses, keypoints), :mod:`.grid` (partial-volume drawing),
:mod:`.vertebrae` and :mod:`.body` (anatomy), :mod:`.tissue` (HU, scanner model),
:mod:`.drr` (lateral radiograph), :mod:`.generator` (cases and files), :mod:`.from_mask`
(real-shape mode: a real VerSe mask drawn with the same tissue model).
"""

from .generator import SyntheticCase, generate_case, read_truth, write_case
from .params import PRESETS, SynthParams, SynthParamsError


def generate_from_mask(mask_image, seed: int, **kwargs) -> SyntheticCase:
    """Real-shape mode (see :func:`VertebralFractureLib.synth.from_mask.generate_from_mask`)."""
    from .from_mask import generate_from_mask as _generate

    return _generate(mask_image, seed, **kwargs)


__all__ = [
    "PRESETS",
    "SynthParams",
    "SynthParamsError",
    "SyntheticCase",
    "generate_case",
    "generate_from_mask",
    "read_truth",
    "write_case",
]
