"""Parameters of a synthetic case and the named presets.

Every field left as ``None`` is drawn from the case's random generator (seeded), and the drawn
value is written back into the :class:`SynthParams` stored with the case, so a case can be
re-made exactly from its parameters.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

from .morphometry import SYNTH_LEVELS

#: Generator profiles: ``v1`` (the original generator) and ``hospital`` (closer to clinical CT).
REALISM_PROFILES = ("v1", "hospital")
#: How the sacrum is drawn: ``"simple"`` (a stack of capsules nearly in line with S1, as the shipped models were
#: trained on) or ``"curved"`` (:func:`~VertebralFractureLib.synth.vertebrae.draw_curved_sacrum` with the pelvic
#: contents of :func:`~VertebralFractureLib.synth.body.draw_pelvic_contents`).
SACRUM_STYLES = ("simple", "curved")
#: Second seed word of the stream :func:`drawn_size_scale` draws from (the generator's own draws stay untouched).
SIZE_STREAM = 7


def drawn_size_scale(seed: int, low: float, high: float) -> float:
    """A body-size factor for the case of ``seed``, uniform in ``[low, high]``, from the stream ``[seed, SIZE_STREAM]``.

    Training recipes pass it as ``size_scale`` to draw bodies over a wider range than the generator's own
    N(1, 0.05) (real bodies are 1.0-1.3 times its mean) without changing any other draw of the case.
    """
    import numpy as np

    return float(np.random.default_rng([int(seed), SIZE_STREAM]).uniform(low, high))


class SynthParamsError(ValueError):
    """Parameters that cannot describe a synthetic case; the message names the field."""


@dataclass
class SynthParams:
    """Everything that shapes a synthetic case.

    Attributes:
        preset: the preset these parameters started from.
        top_level, bottom_level: first and last vertebra entirely in view (the ground-truth
            set); the field of view cuts into the neighbours beyond them (partial vertebrae).
        spacing: voxel size (x, y, z) in mm, 0.5-3 mm each (thick slices: larger z).
        fov_xy_mm: in-plane field of view (left-right, antero-posterior) in mm.
        edge_fraction: how far (0-1 of the next vertebra) the view reaches beyond the
            ground-truth set at each end; None draws 0.2-0.7.
        max_voxels: the in-plane field of view shrinks to keep the volume below this.
        fracture_prevalence: fraction of fractured vertebrae (clustered: a fracture makes the
            next level more likely to be fractured).
        cluster_factor: P(fracture | cranial neighbour fractured) = min(0.9, factor x prevalence).
        grade_weights: relative frequency of grades 1, 2, 3.
        type_weights: relative frequency of wedge, biconcave, crush.
        osteoporosis: 0 (young, trabecular ~220 HU) to 1 (severe, ~60 HU); None draws 0-1.
        noise_hu: standard deviation of the image noise (after blurring); None draws 8-30 HU.
        blur_mm: Gaussian point-spread sigma in mm; None draws 0.5-1.0 mm.
        metal: add pedicle screws at one or two levels.
        kyphosis_deg, lordosis_deg: sagittal Cobb angles T1-T12 and L1-S1; None draws normal values.
        scoliosis_deg: coronal Cobb angle (0-40); None draws 0 unless the preset asks for a curve.
        size_scale: overall body size factor; None draws about N(1, 0.05).
        direction: orientation code of the written CT (``"LPS"`` identity, ``"RAS"``, ``"PIR"``...),
            ``"oblique"`` (rotated 12 degrees about the z axis, resampled) or ``"random"`` (one of
            LPS, RAS, LAS, PIR, oblique drawn per seed).
        radiograph: also render the lateral DRR.
        radiograph_pixel_mm: square pixel size of the DRR; None uses the smallest CT spacing
            in the sagittal plane.
        radiograph_sid_mm: source-to-detector distance of a point-source DRR (magnification and
            divergent rays, as in a real radiograph); 0 for a parallel beam; None draws 1000-1150 mm.
        ribs, lungs, pelvis: draw these where the levels in view have them.
        realism: ``"v1"`` (default, the generator as trained on so far; every draw and image
            unchanged) or ``"hospital"``: closer to clinical CT (contrast-enhanced blood 35-350 HU
            in the phases none / venous / arterial, thinner and sometimes brighter discs of elderly
            spines, noise 8-70 HU with part of it added after the blur, denser cortical bone).
            The hospital extras are drawn from a second generator seeded from the case seed, so the
            main draws keep their order.
        sacrum: ``"simple"`` (default; unchanged) or ``"curved"``: a sacrum that turns posteriorly and narrows
            (sacral kyphosis 30-75 degrees), rudimentary discs, sacral canal, coccyx, and bowel loops (fluid,
            gas or oral contrast), rectum and bladder in front of it; drawn from a third generator seeded from
            the case seed, so the other draws are unchanged.

    """

    preset: str = "spine"
    top_level: str = "T9"
    bottom_level: str = "L4"
    spacing: Tuple[float, float, float] = (1.0, 1.0, 1.0)
    fov_xy_mm: Tuple[float, float] = (300.0, 240.0)
    edge_fraction: Optional[float] = None
    max_voxels: int = 40_000_000
    fracture_prevalence: float = 0.2
    cluster_factor: float = 2.0
    grade_weights: Tuple[float, float, float] = (0.4, 0.35, 0.25)
    type_weights: Tuple[float, float, float] = (0.5, 0.3, 0.2)
    osteoporosis: Optional[float] = None
    noise_hu: Optional[float] = None
    blur_mm: Optional[float] = None
    metal: bool = False
    kyphosis_deg: Optional[float] = None
    lordosis_deg: Optional[float] = None
    scoliosis_deg: Optional[float] = None
    size_scale: Optional[float] = None
    direction: str = "LPS"
    radiograph: bool = True
    radiograph_pixel_mm: Optional[float] = None
    radiograph_sid_mm: Optional[float] = 0.0
    ribs: bool = True
    lungs: bool = True
    pelvis: bool = True
    realism: str = "v1"
    sacrum: str = "simple"
    extra: Dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Check ranges and names.

        Raises:
            SynthParamsError: naming the field and the allowed range.

        """
        for name in (self.top_level, self.bottom_level):
            if name not in SYNTH_LEVELS:
                raise SynthParamsError(f"level {name!r} is outside what the generator draws ({SYNTH_LEVELS[0]}-S1)")
        top, bottom = SYNTH_LEVELS.index(self.top_level), SYNTH_LEVELS.index(self.bottom_level)
        if not 0 < top <= bottom < len(SYNTH_LEVELS) - 1:
            raise SynthParamsError(
                f"top_level {self.top_level} must be cranial of bottom_level {self.bottom_level}, "
                f"strictly between {SYNTH_LEVELS[0]} and {SYNTH_LEVELS[-1]} (partial neighbours must exist)"
            )
        spacing = tuple(float(s) for s in self.spacing)
        if len(spacing) != 3 or not all(0.3 <= s <= 5.0 for s in spacing):
            raise SynthParamsError(f"spacing must be three values between 0.3 and 5 mm, got {self.spacing}")
        self.spacing = spacing
        if not 0.0 <= self.fracture_prevalence <= 1.0:
            raise SynthParamsError(f"fracture_prevalence must be between 0 and 1, got {self.fracture_prevalence}")
        if self.osteoporosis is not None and not 0.0 <= self.osteoporosis <= 1.0:
            raise SynthParamsError(f"osteoporosis must be between 0 and 1, got {self.osteoporosis}")
        if self.scoliosis_deg is not None and not 0.0 <= self.scoliosis_deg <= 60.0:
            raise SynthParamsError(f"scoliosis_deg must be between 0 and 60, got {self.scoliosis_deg}")
        if (self.noise_hu is not None and self.noise_hu < 0) or (self.blur_mm is not None and self.blur_mm < 0):
            raise SynthParamsError("noise_hu and blur_mm must not be negative")
        if len(self.grade_weights) != 3 or min(self.grade_weights) < 0 or sum(self.grade_weights) <= 0:
            raise SynthParamsError(f"grade_weights must be three non-negative numbers, got {self.grade_weights}")
        if len(self.type_weights) != 3 or min(self.type_weights) < 0 or sum(self.type_weights) <= 0:
            raise SynthParamsError(f"type_weights must be three non-negative numbers, got {self.type_weights}")
        code = str(self.direction).upper()
        if code not in ("OBLIQUE", "RANDOM") and (
            len(code) != 3 or sorted(code.replace("R", "L").replace("A", "P").replace("I", "S")) != ["L", "P", "S"]
        ):
            raise SynthParamsError(
                "direction must be a 3-letter orientation code such as LPS, RAS, PIR, 'oblique' or 'random'; "
                f"got {self.direction!r}"
            )
        if self.realism not in REALISM_PROFILES:
            raise SynthParamsError(f"realism must be one of {', '.join(REALISM_PROFILES)}, got {self.realism!r}")
        if self.sacrum not in SACRUM_STYLES:
            raise SynthParamsError(f"sacrum must be one of {', '.join(SACRUM_STYLES)}, got {self.sacrum!r}")
        if self.edge_fraction is not None and not 0.0 <= self.edge_fraction <= 1.0:
            raise SynthParamsError(f"edge_fraction must be between 0 and 1, got {self.edge_fraction}")

    def to_dict(self) -> Dict[str, Any]:
        """JSON-ready form (``realism`` only when it is not the default ``"v1"``, so v1 cases keep their files)."""
        data = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}
        if data.get("realism") == "v1":
            del data["realism"]
        if data.get("sacrum") == "simple":
            del data["sacrum"]
        return data

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> SynthParams:
        """Inverse of :meth:`to_dict` (unknown keys are refused).

        Raises:
            SynthParamsError: for unknown fields.

        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise SynthParamsError(f"unknown synthetic parameters: {', '.join(unknown)}")
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()}
        return cls(**values)


#: Named starting points. Values are overrides of :class:`SynthParams`; ``levels`` gives the
#: choices (top levels, bottom levels) drawn per case.
PRESETS: Dict[str, Dict[str, Any]] = {
    "spine": {
        "levels": (("T8", "T9", "T10"), ("L3", "L4")),
        "fov_xy_mm": (300.0, 240.0),
    },
    "chest": {
        "levels": (("T2", "T3", "T4"), ("T11", "T12")),
        "fov_xy_mm": (320.0, 250.0),
        "lordosis_deg": 0.0,
    },
    "abdomen": {
        "levels": (("T11", "T12"), ("L4", "L5")),
        "fov_xy_mm": (320.0, 250.0),
    },
    "scoliosis": {
        "levels": (("T5", "T6", "T7"), ("L2", "L3")),
        "fov_xy_mm": (320.0, 240.0),
        "scoliosis_deg": None,
        "extra": {"scoliosis_range": (15.0, 40.0)},
    },
    "radiograph": {
        "levels": (("T5", "T6", "T7"), ("L2", "L3")),
        "spacing": (2.5, 1.0, 1.0),
        "fov_xy_mm": (300.0, 240.0),
        "noise_hu": 0.0,
        "blur_mm": 0.5,
        "radiograph_sid_mm": None,
    },
}


def params_for(preset: str, **overrides: Any) -> SynthParams:
    """Parameters of a preset with overrides (level choices are resolved later, per seed).

    Raises:
        SynthParamsError: for an unknown preset or field.

    """
    if preset not in PRESETS:
        raise SynthParamsError(f"unknown preset {preset!r}; expected one of {', '.join(PRESETS)}")
    names = {f.name for f in dataclasses.fields(SynthParams)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise SynthParamsError(
            f"unknown synthetic parameters: {', '.join(unknown)} (known: {', '.join(sorted(names))})"
        )
    values = {k: v for k, v in PRESETS[preset].items() if k != "levels"}
    values["extra"] = dict(values.get("extra", {}))
    values.update(overrides)
    if "spacing" in values and not isinstance(values["spacing"], (tuple, list)):
        values["spacing"] = (float(values["spacing"]),) * 3
    return SynthParams(preset=preset, **values)
