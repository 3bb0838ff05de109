"""Level-dependent vertebral dimensions used by the synthetic spine generator.

Body sizes (posterior height, mid-sagittal endplate depth, endplate width, mm) follow the
published morphometry of Panjabi et al., "Thoracic human vertebrae: quantitative
three-dimensional anatomy", Spine 16(8):888-901, 1991 (T1-T12) and Panjabi et al., "Human lumbar
vertebrae: quantitative three-dimensional anatomy", Spine 17(3):299-306, 1992 (L1-L5), rounded
and smoothed (T1: height ~14, depth ~16, width ~24 mm; L5: height ~27, depth ~35, width ~50 mm).
C7 and S1 are extrapolated. Disc heights (thoracic 4-6 mm, lumbar 8-11 mm), pedicle, canal and
process sizes are rounded values from the same papers; normal anterior wedging of the thoracic
bodies (a few degrees, G about 0.85-0.95 mid-thoracic) and lumbar anterior > posterior heights
at L4-L5 follow the normal ranges of Genant et al. (1993) quoted in Pisov et al. 2020 section 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

#: level: (posterior body height, mid-sagittal depth, endplate width, disc height below) in mm.
_BODY: Dict[str, tuple] = {
    "C7": (13.5, 15.5, 22.0, 4.0),
    "T1": (14.0, 16.0, 24.0, 4.0),
    "T2": (15.5, 16.5, 24.5, 4.0),
    "T3": (16.0, 17.5, 25.0, 4.0),
    "T4": (16.5, 19.0, 25.5, 4.0),
    "T5": (17.0, 21.0, 26.5, 4.5),
    "T6": (17.5, 23.0, 27.5, 4.5),
    "T7": (18.0, 25.0, 28.5, 4.5),
    "T8": (19.0, 26.0, 30.0, 5.0),
    "T9": (19.5, 27.0, 32.0, 5.0),
    "T10": (20.5, 28.0, 34.0, 5.5),
    "T11": (21.5, 29.5, 37.0, 6.0),
    "T12": (22.5, 31.0, 40.0, 7.0),
    "L1": (24.0, 32.0, 42.0, 8.0),
    "L2": (25.0, 33.0, 44.0, 9.0),
    "L3": (25.5, 34.0, 46.0, 10.0),
    "L4": (25.5, 34.5, 48.0, 11.0),
    "L5": (25.0, 35.0, 50.0, 10.0),
    "S1": (28.0, 36.0, 48.0, 0.0),
}

#: anterior / posterior height ratio of normal bodies (thoracic wedging, lumbar lordotic shape).
_ANTERIOR_RATIO: Dict[str, float] = {
    "C7": 0.97,
    "T1": 0.96,
    "T2": 0.95,
    "T3": 0.94,
    "T4": 0.93,
    "T5": 0.92,
    "T6": 0.91,
    "T7": 0.90,
    "T8": 0.90,
    "T9": 0.91,
    "T10": 0.92,
    "T11": 0.94,
    "T12": 0.95,
    "L1": 0.96,
    "L2": 0.98,
    "L3": 1.0,
    "L4": 1.03,
    "L5": 1.08,
    "S1": 1.10,
}

#: Levels the generator knows, cranio-caudal.
SYNTH_LEVELS = tuple(_BODY)


@dataclass(frozen=True)
class LevelSize:
    """Normal dimensions of one level (mm).

    Attributes:
        height_posterior: posterior body height h_p.
        height_anterior: anterior body height h_a (normal wedging included).
        depth: mid-sagittal antero-posterior endplate depth.
        width: endplate width (left-right).
        disc: height of the disc below this level.
        pedicle_radius: half the pedicle width.
        canal_depth, canal_width: spinal canal (antero-posterior, left-right).
        spinous_length, spinous_angle_deg: spinous process length and downward slope.
        transverse_length: transverse process reach beyond the pedicle.

    """

    height_posterior: float
    height_anterior: float
    depth: float
    width: float
    disc: float
    pedicle_radius: float
    canal_depth: float
    canal_width: float
    spinous_length: float
    spinous_angle_deg: float
    transverse_length: float


def level_size(name: str) -> LevelSize:
    """Normal dimensions of a level (C7 ... S1).

    Raises:
        ValueError: for a level outside C7 ... S1.

    """
    if name not in _BODY:
        raise ValueError(f"the generator has no morphometry for level {name!r}; it knows {', '.join(SYNTH_LEVELS)}")
    hp, depth, width, disc = _BODY[name]
    region = name[0]
    index = SYNTH_LEVELS.index(name)
    thoracic = region == "T" or name == "C7"
    return LevelSize(
        height_posterior=hp,
        height_anterior=hp * _ANTERIOR_RATIO[name],
        depth=depth,
        width=width,
        disc=disc,
        pedicle_radius=(3.5 + 0.15 * index) if thoracic else (5.5 + 0.5 * min(index - 13, 4)),
        canal_depth=15.0 if thoracic else 17.0,
        canal_width=17.0 if thoracic else 22.0,
        spinous_length=38.0 if thoracic else 30.0,
        spinous_angle_deg=45.0 if name in ("T4", "T5", "T6", "T7", "T8", "T9") else (25.0 if thoracic else 8.0),
        transverse_length=22.0 if thoracic else (16.0 + 6.0 * (name == "L3") + 4.0 * (name in ("L2", "L4"))),
    )
