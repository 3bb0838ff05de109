"""The spinal column of a synthetic case: levels, shapes, fractures, poses and keypoints.

Each vertebral body is described in its own frame (w: to the left, u: anterior -> posterior,
t: inferior -> superior) centred on the middle of its centre line. In the mid-sagittal plane
(w = 0) the endplates are

    t_sup(u, w) = +h_lin(u) / 2 - s * c * dome(u, w)
    t_inf(u, w) = -h_lin(u) / 2 + (1 - s) * c * dome(u, w)

with h_lin linear between the anterior height h_a (at u_a, ``KEYPOINT_INSET_MM`` inside the
anterior cortex) and the posterior height h_p (at u_p, as far inside the posterior wall),
dome(u, w) = max(0, 1 - (u/R_u)^2 - (w/R_w)^2) the endplate concavity, c = h_lin(0) - h_m and s
the share of the concavity on the superior endplate. The six Genant keypoints (Pisov et al. 2020,
section 2 and eq. 1) are the endplate points at u_a, 0 and u_p, so the heights measured from
them are exactly h_a, h_m and h_p.

Fracture deformities follow Genant et al. 1993 as used in Pisov et al. 2020 (Table 2): wedge (h_a
reduced against h_p), biconcave (h_m reduced), crush (all heights reduced; graded against the
neighbours with :func:`VertebralFractureLib.genant.neighbour_reductions`); grade 1 = 20-25 %,
2 = 25-40 %, 3 = > 40 % reduction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List

import numpy as np

from ..genant import SIZE_TOLERANCE, expected_heights, genant_index, measure_column
from ..levels import label_from_level
from .morphometry import SYNTH_LEVELS, LevelSize, level_size
from .params import SynthParams

#: Keypoints sit this far inside the anterior / posterior cortex edge (mm).
KEYPOINT_INSET_MM = 1.5
#: Reductions drawn per grade (kept away from the class borders so the measured grade is exact).
GRADE_REDUCTIONS = {1: (0.207, 0.243), 2: (0.265, 0.385), 3: (0.42, 0.58)}
FRACTURE_TYPES = ("wedge", "biconcave", "crush")


@dataclass
class VertebraModel:
    """One vertebra of the synthetic column.

    Attributes:
        name: level name; label: VerSe label.
        size: the level's normal dimensions (scaled).
        ha, hm, hp: heights of the mid-sagittal keypoint segments (mm).
        depth, width: body depth and width (mm).
        sup_share: share of the endplate concavity on the superior endplate.
        origin: LPS position of the frame origin (centre of h_lin at u = 0).
        rotation: 3 x 3 matrix whose columns are the frame axes w, u, t in LPS.
        grade, kind: commanded Genant grade and type (0 / "none" for normal vertebrae).
        reduction: commanded height reduction (0 for normal vertebrae).
        in_truth: entirely inside the field of view and part of the ground truth.
        trabecular_offset: HU added to this body's trabecular bone (fracture sclerosis).
        disc: height (mm) of the disc below this body.

    """

    name: str
    label: int
    size: LevelSize
    ha: float
    hm: float
    hp: float
    depth: float
    width: float
    sup_share: float = 0.5
    origin: np.ndarray = field(default_factory=lambda: np.zeros(3))
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    grade: int = 0
    kind: str = "none"
    reduction: float = 0.0
    in_truth: bool = False
    trabecular_offset: float = 0.0
    disc: float = 0.0

    # ----------------------------------------------------------- body geometry in the frame
    @property
    def u_anterior(self) -> float:
        """U of the anterior keypoints."""
        return -self.depth / 2 + KEYPOINT_INSET_MM

    @property
    def u_posterior(self) -> float:
        """U of the posterior keypoints."""
        return self.depth / 2 - KEYPOINT_INSET_MM

    @property
    def dome_radii(self) -> tuple:
        """(R_u, R_w) of the endplate concavity."""
        return (self.depth / 2 - KEYPOINT_INSET_MM, self.width / 2 - KEYPOINT_INSET_MM)

    def h_lin(self, u: np.ndarray) -> np.ndarray:
        """Height without concavity, linear in u between h_a and h_p."""
        ua, up = self.u_anterior, self.u_posterior
        return self.ha + (self.hp - self.ha) * (u - ua) / (up - ua)

    @property
    def concavity(self) -> float:
        """C = h_lin(0) - h_m (mm)."""
        return float(self.h_lin(np.float64(0.0)) - self.hm)

    def dome(self, u: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Endplate concavity profile, 1 at the centre, 0 at and beyond the keypoint ring."""
        ru, rw = self.dome_radii
        return np.maximum(0.0, 1.0 - (u / ru) ** 2 - (w / rw) ** 2)

    def endplates(self, u: np.ndarray, w: np.ndarray) -> tuple:
        """T of the superior and inferior endplate surfaces at (u, w)."""
        half = self.h_lin(u) / 2
        dent = self.concavity * self.dome(u, w)
        return half - self.sup_share * dent, -half + (1 - self.sup_share) * dent

    def local_keypoints(self) -> np.ndarray:
        """The six keypoints in the frame (w, u, t), genant.KEYPOINT_NAMES order."""
        points = []
        for u in (self.u_anterior, 0.0, self.u_posterior):
            sup, inf = self.endplates(np.float64(u), np.float64(0.0))
            points += [(0.0, u, float(sup)), (0.0, u, float(inf))]
        return np.asarray(points)

    def to_world(self, local: np.ndarray) -> np.ndarray:
        """Frame (w, u, t) coordinates to LPS mm."""
        return np.asarray(local, float) @ self.rotation.T + self.origin

    def keypoints(self) -> np.ndarray:
        """The six keypoints in LPS mm."""
        return self.to_world(self.local_keypoints())

    def centroid(self) -> np.ndarray:
        """Vertebral-body centre: the midpoint of the middle keypoint segment (LPS mm)."""
        points = self.keypoints()
        return (points[2] + points[3]) / 2

    @property
    def axis(self) -> np.ndarray:
        """Superior axis t in LPS."""
        return self.rotation[:, 2]


def _rotation(sagittal: float, coronal: float, axial: float) -> np.ndarray:
    """Frame rotation: axial twist about t, then sagittal tilt about x, then coronal tilt about y."""
    cx, sx = math.cos(sagittal), math.sin(sagittal)
    cy, sy = math.cos(coronal), math.sin(coronal)
    cz, sz = math.cos(axial), math.sin(axial)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return ry @ rx @ rz


def _sagittal_profile(names: List[str], kyphosis: float, lordosis: float) -> np.ndarray:
    """Tangent angle (radians, positive = superior axis tilted anteriorly) per level.

    Thoracic kyphosis runs from +K/2 at T1 to -K/2 at T12, lumbar lordosis from about -K/2 at
    L1 to -K/2 + L at S1 (Cobb angles between end plates of T1/T12 and L1/S1).
    """
    control_names = ["C7", "T1", "T6", "T12", "L1", "L3", "L5", "S1"]
    k, lo = math.radians(kyphosis), math.radians(lordosis)
    l1 = -k / 2 + math.radians(2)
    control_values = [k / 2 + math.radians(4), k / 2, k * 0.08, -k / 2, l1, l1 + 0.45 * lo, l1 + 0.85 * lo, l1 + lo]
    positions = [SYNTH_LEVELS.index(n) for n in control_names]
    return np.interp([SYNTH_LEVELS.index(n) for n in names], positions, control_values)


def _coronal_profile(names: List[str], cobb: float, apex: float, half_span: float, side: float) -> np.ndarray:
    """Coronal tilt per level: a curve of the given Cobb angle centred on ``apex`` (level index)."""
    if cobb <= 0:
        return np.zeros(len(names))
    index = np.array([SYNTH_LEVELS.index(n) for n in names], float)
    x = np.clip((index - apex) / half_span, -2.0, 2.0)
    inside = np.sin(np.clip(x, -1, 1) * math.pi / 2)
    beyond = np.where(np.abs(x) > 1, np.cos((np.abs(x) - 1) * math.pi / 2), 1.0)
    return side * math.radians(cobb) / 2 * inside * beyond


def _draw_fractures(rng: np.random.Generator, params: SynthParams, truth_names: List[str]) -> Dict[str, tuple]:
    """Commanded (grade, type, reduction) per fractured level, clustered along the column."""
    prevalence = params.fracture_prevalence
    p_after = min(0.9, params.cluster_factor * prevalence)
    p_first = prevalence * (1 - p_after) / (1 - prevalence) if prevalence < 1 else 1.0
    p_first = min(max(p_first, 0.0), 1.0)
    grade_p = np.asarray(params.grade_weights, float) / sum(params.grade_weights)
    type_p = np.asarray(params.type_weights, float) / sum(params.type_weights)
    fractures: Dict[str, tuple] = {}
    previous = rng.random() < prevalence
    last_crush = -10
    for position, name in enumerate(truth_names):
        fractured = rng.random() < (p_after if previous else p_first)
        previous = fractured
        if not fractured:
            continue
        grade = int(rng.choice([1, 2, 3], p=grade_p))
        kind = str(rng.choice(FRACTURE_TYPES, p=type_p))
        # A crush fracture is graded against its two neighbours, which must be in view and not crushed.
        if kind == "crush" and not (0 < position < len(truth_names) - 1 and position - last_crush > 2):
            kind = "wedge"
        if kind == "crush":
            last_crush = position
        low, high = GRADE_REDUCTIONS[grade]
        fractures[name] = (grade, kind, float(rng.uniform(low, high)))
    # a crush whose neighbour became a crush later is turned into a wedge fracture
    return fractures


def build_column(rng: np.random.Generator, params: SynthParams, truth_names: List[str]) -> List[VertebraModel]:
    """Shapes, fractures and poses of the levels in view plus one partial neighbour on each side.

    The parameters' random fields must already be resolved (see ``generator.resolve_params``).
    Returns the vertebrae cranio-caudally; ``in_truth`` marks the ground-truth set.
    """
    top, bottom = SYNTH_LEVELS.index(truth_names[0]), SYNTH_LEVELS.index(truth_names[-1])
    names = list(SYNTH_LEVELS[max(0, top - 2) : min(len(SYNTH_LEVELS), bottom + 3)])
    scale = float(params.size_scale)
    osteo = float(params.osteoporosis)
    # hospital profile: thinner discs of elderly spines (0.4-1.15 of normal; same single draw per level)
    disc_low = 0.4 if params.realism == "hospital" else 0.8
    models: List[VertebraModel] = []
    for name in names:
        size = level_size(name)
        jitter = rng.normal(1.0, 0.015)
        hp = size.height_posterior * scale * jitter
        ha = hp * size.height_anterior / size.height_posterior * rng.normal(1.0, 0.012)
        concavity = rng.uniform(0.03, 0.08)
        hm = (ha + hp) / 2 * (1 - concavity)
        models.append(
            VertebraModel(
                name=name,
                label=label_from_level(name),
                size=size,
                ha=ha,
                hm=hm,
                hp=hp,
                depth=size.depth * scale * rng.normal(1.0, 0.02),
                width=size.width * scale * rng.normal(1.0, 0.02),
                sup_share=float(rng.uniform(0.4, 0.6)),
                in_truth=name in truth_names,
                disc=size.disc * scale * float(rng.uniform(disc_low, 1.15)),
            )
        )
    fractures = _draw_fractures(rng, params, truth_names)
    by_name = {m.name: m for m in models}
    # wedge and biconcave first (their maximal height stays normal), crush last (graded against neighbours)
    for name, (grade, kind, reduction) in sorted(fractures.items(), key=lambda item: item[1][1] == "crush"):
        m = by_name[name]
        m.grade, m.kind, m.reduction = grade, kind, reduction
        m.sup_share = float(rng.uniform(0.55, 0.85))
        m.trabecular_offset = float(rng.uniform(20.0, 70.0)) * (1 + 0.5 * osteo)
        if kind == "wedge":
            ha = (1 - reduction) * m.hp
            hm = min(m.hm, 0.5 * (ha + m.hp) * (1 - rng.uniform(0.0, 0.04)))
            m.ha, m.hm = ha, max(hm, ha + 0.25 * (m.hp - ha))
        elif kind == "biconcave":
            m.hm = (1 - reduction) * max(m.ha, m.hp)
        else:
            # expected height exactly as genant.neighbour_reductions computes it (T13 gaps included)
            truth = [v for v in models if v.in_truth]
            expected = expected_heights([v.name for v in truth], [(v.ha, v.hm, v.hp) for v in truth])[truth.index(m)]
            if expected is None:
                # no normal neighbour within two levels: a crush could not be graded by anyone, so
                # the body collapses in its middle instead
                m.kind = "biconcave"
                m.hm = (1 - reduction) * max(m.ha, m.hp)
                continue
            # 1 - G * (max(h) / expected + SIZE_TOLERANCE) = reduction, G unchanged by the scaling
            own = (m.ha, m.hm, m.hp)
            target_top = ((1 - reduction) / genant_index(own) - SIZE_TOLERANCE) * expected
            factor = target_top / max(own)
            m.ha, m.hm, m.hp = m.ha * factor, m.hm * factor, m.hp * factor
    _pose(models, params, rng)
    _grade_as_measured(models)
    return models


def _grade_as_measured(models: List[VertebraModel]) -> None:
    """Make the ground truth the Genant measure of the true heights, neighbour comparison included.

    A wedge or biconcave body drawn at grade 1 that is also a little smaller than its normal
    neighbours reaches grade 2 by :func:`VertebralFractureLib.genant.neighbour_reductions`; the
    truth follows the definition, so that a model is never scored against a grade the definition
    does not give.
    """
    truth = [m for m in models if m.in_truth]
    measures = measure_column([m.name for m in truth], [m.keypoints() for m in truth], exact=True)
    for m, measure in zip(truth, measures):
        if measure.grade != m.grade:
            m.grade, m.kind = measure.grade, measure.type
            m.reduction = max(measure.reduction, measure.neighbour_reduction or 0.0)


def _pose(models: List[VertebraModel], params: SynthParams, rng: np.random.Generator) -> None:
    """Place the vertebrae along a curved column (sagittal profile, scoliosis, fracture angulation)."""
    names = [m.name for m in models]
    sagittal = _sagittal_profile(names, float(params.kyphosis_deg), float(params.lordosis_deg))
    # A wedged body angulates the column above it (local kyphosis).
    for index, m in enumerate(models):
        normal_wedge = math.atan((m.size.height_posterior - m.size.height_anterior) / max(m.depth, 1.0))
        extra = math.atan((m.hp - m.ha) / (m.u_posterior - m.u_anterior)) - normal_wedge
        if extra > 0:
            sagittal[:index] += extra
            sagittal[index] += extra / 2
    cobb = float(params.scoliosis_deg)
    apex = float(params.extra.get("scoliosis_apex", SYNTH_LEVELS.index("T10")))
    side = float(params.extra.get("scoliosis_side", 1.0))
    coronal = _coronal_profile(names, cobb, apex, 4.5, side)
    # apical rotation: the vertebrae rotate towards the convexity, up to about Cobb / 3
    lateral = np.cumsum(np.sin(coronal))
    lateral = lateral - lateral.mean()
    axial = np.radians(cobb / 3) * (lateral / max(np.abs(lateral).max(), 1e-6)) if cobb > 0 else np.zeros(len(models))
    position = np.zeros(3)
    for index, m in enumerate(models):
        m.rotation = _rotation(float(sagittal[index]), float(coronal[index]), float(axial[index]))
        if index > 0:
            previous = models[index - 1]
            middle = previous.axis + m.axis
            middle /= np.linalg.norm(middle)
            h_prev = float(previous.h_lin(np.float64(0.0)))
            h_this = float(m.h_lin(np.float64(0.0)))
            position = position - previous.axis * h_prev / 2 - middle * previous.disc - m.axis * h_this / 2
        m.origin = position.copy()
    # The patient lies on the table: turn the column so that the chord through the ground-truth
    # set runs along z (up to a small random tilt), then centre that set on the LPS origin.
    truth = [m for m in models if m.in_truth]
    chord = truth[0].centroid() - truth[-1].centroid()
    chord /= np.linalg.norm(chord)
    tilt = np.radians(rng.normal(0.0, 2.0, size=2))
    target = np.array([math.sin(tilt[0]), math.sin(tilt[1]), 1.0])
    turn = _rotation_between(chord, target / np.linalg.norm(target))
    for m in models:
        m.origin = turn @ m.origin
        m.rotation = turn @ m.rotation
    shift = np.mean([m.centroid() for m in truth], axis=0)
    for m in models:
        m.origin = m.origin - shift


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation taking unit vector a onto unit vector b (Rodrigues)."""
    v = np.cross(a, b)
    c = float(a @ b)
    if np.linalg.norm(v) < 1e-12:
        return np.eye(3)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1 + c)


def centreline_through(models: List[VertebraModel], z_range: tuple, step_mm: float = 1.0) -> np.ndarray:
    """Dense polyline through the vertebral-body centres (LPS mm), clipped to ``z_range``.

    The centres are joined by a cubic Hermite (PCHIP) curve parameterised by cumulative chord
    length, then resampled every ``step_mm`` of arc length; it runs through the discs too.
    """
    from scipy.interpolate import PchipInterpolator

    centres = np.array([m.centroid() for m in models])
    chord = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(centres, axis=0), axis=1))]
    curve = PchipInterpolator(chord, centres, axis=0)
    fine = curve(np.linspace(0, chord[-1], int(chord[-1] / 0.25) + 2))
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(fine, axis=0), axis=1))]
    samples = np.arange(0.0, arc[-1], step_mm)
    points = np.stack([np.interp(samples, arc, fine[:, d]) for d in range(3)], axis=1)
    low, high = z_range
    return points[(points[:, 2] >= low) & (points[:, 2] <= high)]
