"""Drawing vertebrae and discs: bodies, posterior elements, canal, discs and sacrum.

Each object is computed in its own bounding box, in the vertebra's frame (see
:mod:`VertebralFractureLib.synth.column`), as a signed depth that becomes a partial-volume
fraction (:mod:`VertebralFractureLib.synth.grid`). Posterior elements are unions of tapered
capsules (pedicles, laminae, articular pillars, spinous and transverse processes).
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import numpy as np

from .column import VertebraModel
from .grid import Grid, capsule_bounds, capsule_depth, composite, fraction, smooth_field
from .tissue import Tissue

Capsule = Tuple[np.ndarray, np.ndarray, float, float]


def _local(m: VertebraModel, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> tuple:
    """Frame coordinates (w, u, t) of box voxels."""
    r = m.rotation.astype(np.float32)
    o = m.origin.astype(np.float32)
    px, py, pz = x - o[0], y - o[1], z - o[2]
    w = px * r[0, 0] + py * r[1, 0] + pz * r[2, 0]
    u = px * r[0, 1] + py * r[1, 1] + pz * r[2, 1]
    t = px * r[0, 2] + py * r[1, 2] + pz * r[2, 2]
    return w, u, t


def _frame_box(m: VertebraModel, low: tuple, high: tuple) -> tuple:
    """LPS box around a box given in the frame (w, u, t)."""
    corners = np.array(np.meshgrid(*zip(low, high), indexing="ij")).reshape(3, -1).T
    world = m.to_world(corners)
    return world.min(axis=0), world.max(axis=0)


def _radial_depth(u: np.ndarray, w: np.ndarray, a: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """Approximate depth (mm) inside the body outline: ellipse in front, squarer behind."""
    un, wn = u / a, w / b
    posterior = u > 0
    q = np.where(posterior, un**4, un * un) + wn * wn
    g = np.sqrt(q)
    dq_du = np.where(posterior, 4 * un**3 / a, 2 * un / a)
    dq_dw = 2 * wn / b
    grad = np.sqrt(dq_du * dq_du + dq_dw * dq_dw) / (2 * np.maximum(g, 1e-3))
    return np.minimum((1 - g) / np.maximum(grad, 1e-3), 60.0)


def body_depths(m: VertebraModel, w: np.ndarray, u: np.ndarray, t: np.ndarray) -> tuple:
    """Radial and vertical depth (mm) of frame points in the vertebral body."""
    sup, inf = m.endplates(u, w)
    half = np.maximum((sup - inf) / 2, 1.0)
    tn = (t - (sup + inf) / 2) / half
    waist = 1 - np.float32(0.06) * np.clip(1 - tn * tn, 0, 1)
    radial = _radial_depth(u, w, np.float32(m.depth / 2) * waist, np.float32(m.width / 2) * waist)
    vertical = np.minimum(sup - t, t - inf)
    return radial, vertical


def draw_body(
    grid: Grid,
    hu: np.ndarray,
    body_mask: np.ndarray,
    vert_mask: np.ndarray,
    m: VertebraModel,
    tissue: Tissue,
    rng: Optional[np.random.Generator] = None,
):
    """Cortical shell and trabecular core of one vertebral body; labels both masks.

    With ``rng``, the trabecular core gets a texture: a smooth random field with 2.5 mm grain
    whose amplitude (``Tissue.texture_hu``) grows with osteoporosis (coarser, sparser trabeculae).
    """
    top = max(m.ha, m.hm, m.hp) / 2 + 2
    box = grid.box(*_frame_box(m, (-m.width / 2 - 2, -m.depth / 2 - 2, -top), (m.width / 2 + 2, m.depth / 2 + 2, top)))
    if box is None:
        return
    slices, x, y, z = box
    w, u, t = _local(m, x, y, z)
    radial, vertical = body_depths(m, w, u, t)
    s_xy, s_z = grid.s_xy, grid.spacing[2]
    depth = np.minimum(radial / s_xy, vertical / s_z)
    bone = fraction(depth)
    core = fraction(np.minimum((radial - tissue.cortex_mm) / s_xy, (vertical - tissue.cortex_mm) / s_z))
    trabecular = np.float32(tissue.trabecular + m.trabecular_offset)
    if rng is not None and tissue.texture_hu > 0:
        grain = smooth_field(rng, bone.shape, tuple(reversed(grid.spacing)), 2.5)
        trabecular = trabecular + np.float32(tissue.texture_hu) * grain
    composite(hu, slices, bone, core, tissue.cortical, trabecular)
    inside = depth >= 0
    body_mask[slices][inside] = m.label
    vert_mask[slices][inside] = m.label


def draw_disc(grid: Grid, hu: np.ndarray, upper: VertebraModel, lower: VertebraModel, tissue: Tissue) -> None:
    """Intervertebral disc between the inferior endplate of ``upper`` and the superior one of ``lower``."""
    gap_low = _frame_box(
        upper,
        (-upper.width / 2 - 3, -upper.depth / 2 - 3, -max(upper.ha, upper.hp) / 2 - 1),
        (upper.width / 2 + 3, upper.depth / 2 + 3, 0.0),
    )
    gap_high = _frame_box(
        lower,
        (-lower.width / 2 - 3, -lower.depth / 2 - 3, 0.0),
        (lower.width / 2 + 3, lower.depth / 2 + 3, max(lower.ha, lower.hp) / 2 + 1),
    )
    box = grid.box(np.minimum(gap_low[0], gap_high[0]), np.maximum(gap_low[1], gap_high[1]))
    if box is None:
        return
    slices, x, y, z = box
    w1, u1, t1 = _local(upper, x, y, z)
    w2, u2, t2 = _local(lower, x, y, z)
    below_upper = upper.endplates(u1, w1)[1] - t1
    above_lower = t2 - lower.endplates(u2, w2)[0]
    a = np.float32((upper.depth + lower.depth) / 4 * 1.03)
    b = np.float32((upper.width + lower.width) / 4 * 1.03)
    radial = _radial_depth(u1, w1, a, b)
    # reaches 1 voxel into the bodies, which are drawn afterwards on top
    s_z = grid.spacing[2]
    depth = np.minimum(radial / grid.s_xy, np.minimum(below_upper, above_lower) / s_z + 1.0)
    bone = fraction(depth)
    inner = fraction(radial / grid.s_xy - 4.0 / grid.s_xy)
    composite(hu, slices, bone, inner * bone, tissue.disc + 15.0, tissue.disc - 10.0)


def posterior_capsules(m: VertebraModel, scale: float) -> List[Capsule]:
    """Pedicles, laminae, articular pillars, spinous and transverse processes as capsules (frame coordinates)."""
    s = m.size
    h = m.hp
    d2 = m.depth / 2
    cd, cw = s.canal_depth * scale, s.canal_width * scale
    pr = s.pedicle_radius * scale
    lumbar = m.name.startswith("L")
    pw = cw / 2 + pr * 0.9  # pedicle centre, left-right
    t_ped = 0.18 * h
    u_ped_end = d2 + 0.55 * cd
    lam_r = (4.5 if lumbar else 3.5) * scale
    u_base = d2 + cd + lam_r * 0.8
    capsules: List[Capsule] = []
    for side in (-1.0, 1.0):
        capsules.append(((side * pw, d2 - 3.0, t_ped), (side * pw, u_ped_end, t_ped), pr, pr * 0.95))
        for dt in (0.22 * h, -0.12 * h):
            capsules.append(((side * pw, u_ped_end, dt), (0.0, u_base, dt - 0.1 * h), lam_r, lam_r))
        capsules.append(
            (
                (side * pw * 1.02, u_ped_end + 1.0, h / 2 + 5.0),
                (side * pw * 1.02, u_ped_end + 3.0, -h / 2 - 2.0),
                3.8 * scale,
                3.8 * scale,
            )
        )
        reach = s.transverse_length * scale
        if lumbar:
            # flat, slightly backwards and upwards: thin plates rather than rods seen end-on
            tip = (side * (pw + pr + reach), d2 + 0.45 * cd + 10.0, 0.05 * h + 6.0)
            capsules.append(((side * pw, u_ped_end, 0.05 * h), tip, 3.0 * scale, 2.2 * scale))
        else:
            tip = (side * (pw + 0.85 * reach), u_ped_end + 0.6 * reach, 0.12 * h)
            capsules.append(((side * pw, u_ped_end, 0.12 * h), tip, 3.8 * scale, 4.8 * scale))
    angle = math.radians(s.spinous_angle_deg)
    length = s.spinous_length * scale
    tip_u, tip_t = u_base + length * math.cos(angle), -length * math.sin(angle)
    if lumbar:
        for dt in np.linspace(-0.2 * h, 0.2 * h, 5):  # a tall plate
            capsules.append(((0.0, u_base - 2.0, dt), (0.0, tip_u, tip_t + dt * 0.8), 3.5 * scale, 3.2 * scale))
    else:
        capsules.append(((0.0, u_base - 2.0, 0.0), (0.0, tip_u, tip_t), 4.5 * scale, 3.2 * scale))
    return [(np.asarray(a, float), np.asarray(b, float), ra, rb) for a, b, ra, rb in capsules]


def draw_posterior(grid: Grid, hu: np.ndarray, vert_mask: np.ndarray, m: VertebraModel, tissue: Tissue, scale: float):
    """Union of the posterior-element capsules of one vertebra (cortex + cancellous core)."""
    capsules = [(m.to_world(a), m.to_world(b), ra, rb) for a, b, ra, rb in posterior_capsules(m, scale)]
    draw_capsule_union(
        grid, hu, vert_mask, m.label, capsules, tissue.cortical * 0.9, tissue.marrow, tissue.cortex_mm * 1.6
    )


def draw_capsule_union(
    grid: Grid,
    hu: np.ndarray,
    mask: np.ndarray | None,
    label: int,
    capsules: List[Capsule],
    shell: float,
    core: float,
    cortex_mm: float,
) -> None:
    """Union (maximum depth) of capsules given in LPS, composited once with a shell and a core."""
    if not capsules:
        return
    margin = grid.s_mean
    bounds = [capsule_bounds(a, b, max(ra, rb), margin) for a, b, ra, rb in capsules]
    low = np.min([lo for lo, _ in bounds], axis=0)
    high = np.max([hi for _, hi in bounds], axis=0)
    box = grid.box(low, high)
    if box is None:
        return
    slices, _, _, _ = box
    starts = [s.start for s in slices]
    shape = tuple(s.stop - s.start for s in slices)
    depth = np.full(shape, -1e3, np.float32)
    for (a, b, ra, rb), (lo, hi) in zip(capsules, bounds):
        sub = grid.box(lo, hi)
        if sub is None:
            continue
        sub_slices, x, y, z = sub
        local = tuple(slice(s.start - o, s.stop - o) for s, o in zip(sub_slices, starts))
        np.maximum(depth[local], capsule_depth(x, y, z, a, b, ra, rb), out=depth[local])
    s = grid.s_mean
    bone = fraction(depth / s)
    inner = fraction((depth - cortex_mm) / s)
    composite(hu, slices, bone, inner, shell, core)
    if mask is not None:
        mask[slices][depth >= 0] = label


def draw_canal(grid: Grid, hu: np.ndarray, models: List[VertebraModel], tissue: Tissue, scale: float) -> None:
    """Spinal canal: epidural fat around the thecal sac (CSF), along the whole column."""
    for m in models:
        cd = m.size.canal_depth * scale
        centre_u = m.depth / 2 + cd / 2
        reach = m.hp / 2 + m.disc / 2 + 1.0
        a, b = m.to_world((0.0, centre_u, reach)), m.to_world((0.0, centre_u, -reach))
        for radius, value in ((cd / 2 + 0.5, tissue.fat), (cd / 2 - 2.0, tissue.csf)):
            lo, hi = capsule_bounds(a, b, radius, grid.s_mean)
            box = grid.box(lo, hi)
            if box is None:
                continue
            slices, x, y, z = box
            bone = fraction(capsule_depth(x, y, z, a, b, radius, radius) / grid.s_mean)
            composite(hu, slices, bone, None, value, value)


def draw_sacrum(grid: Grid, hu: np.ndarray, vert_mask: np.ndarray, s1: VertebraModel, tissue: Tissue, scale: float):
    """Sacrum below S1 (fused S2-S5 curving backwards) and the alae towards the sacro-iliac joints."""
    capsules: List[Capsule] = []
    u, t, radius = 0.0, -s1.hp / 2, s1.depth / 2 * 0.8
    for _ in range(5):
        nu, nt = u + 6.0 * scale, t - 20.0 * scale
        capsules.append((s1.to_world((0.0, u, t)), s1.to_world((0.0, nu, nt)), radius, radius * 0.78))
        u, t, radius = nu, nt, radius * 0.78
    for side in (-1.0, 1.0):
        a = s1.to_world((side * s1.width * 0.2, 6.0, -4.0))
        b = s1.to_world((side * (s1.width / 2 + 30.0 * scale), 14.0 * scale, -22.0 * scale))
        capsules.append((a, b, 13.0 * scale, 12.0 * scale))
    draw_capsule_union(grid, hu, vert_mask, s1.label, capsules, tissue.cortical * 0.85, tissue.marrow, tissue.cortex_mm)


#: Curved sacrum (``SynthParams.sacrum == "curved"``). Lengths of the segments below S1 along their centre line
#: (S2 ... S5, then three coccygeal segments, mm) and their half antero-posterior depth at each junction as a
#: fraction of S1's depth: the fused sacral bodies shorten from about 25 mm (S2) to 12 mm (S5) and narrow from
#: about 30 to 10 mm in the mid-sagittal plane (Bogduk 2005, ch. 13; Cheng and Song 2003).
SACRAL_SEGMENT_MM = (25.0, 21.0, 17.0, 13.0, 10.0, 8.0, 7.0)
SACRAL_HALF_DEPTH = (0.36, 0.30, 0.24, 0.19, 0.14, 0.11, 0.09, 0.07)
#: Share of the sacral kyphosis (total drawn per case, 30-75 degrees from the S1/S2 junction to the coccygeal
#: tip, the concavity facing forwards) turned at each junction: most of the curve lies at S2-S4.
SACRAL_TURN_SHARE = (0.10, 0.22, 0.24, 0.20, 0.14, 0.10, 0.0)


#: Extra forward tilt of S1 about its superior endplate (degrees): the L5/S1 segment carries 15-25 degrees of
#: lordosis and the sacral slope is 20-65 degrees (Damasceno et al. 2006; Roussouly et al. 2005), up to more than the
#: column's smooth lordosis profile gives S1 (from a nearly vertical sacrum to a steep one).
S1_EXTRA_TILT_DEG = (0.0, 25.0)


def tilt_s1(s1: VertebraModel, rng: np.random.Generator) -> float:
    """Tilt S1 forwards about the centre of its superior endplate (a wedge-shaped L5/S1 disc); returns degrees."""
    from .column import _rotation

    degrees = float(rng.uniform(*S1_EXTRA_TILT_DEG))
    pivot = s1.to_world((0.0, 0.0, s1.hp / 2))
    s1.rotation = s1.rotation @ _rotation(math.radians(degrees), 0.0, 0.0)
    s1.origin = pivot - s1.rotation @ np.array([0.0, 0.0, s1.hp / 2])
    return degrees


#: Share of spines with gas in the L5/S1 disc (vacuum phenomenon of disc degeneration, frequent at L5/S1 in the
#: elderly; two of the nine real sagittal slices with a sacrum show it).
VACUUM_DISC_PROBABILITY = 0.3


def sacral_path(s1: VertebraModel, rng: np.random.Generator, scale: float) -> List[Tuple[np.ndarray, float]]:
    """Centre line of the fused sacral bodies and the coccyx below S1, in S1's frame ``(w, u, t)``.

    Returns (point, half depth) pairs from the centre of S1's inferior endplate down to the coccygeal tip;
    the line starts within a few degrees of S1's own axis (S1 is tilted forwards, so the line runs down and
    back) and turns anteriorly by the drawn kyphosis (the sacrum is concave in front), so its lower end runs
    straight down or forwards.
    """
    kyphosis = math.radians(float(rng.uniform(30.0, 75.0)))
    heading = math.radians(float(rng.uniform(-5.0, 12.0)))
    point = np.array([0.0, 0.0, -s1.hp / 2])
    path = [(point.copy(), SACRAL_HALF_DEPTH[0] * s1.depth)]
    for index, length in enumerate(SACRAL_SEGMENT_MM):
        length *= scale * float(rng.uniform(0.9, 1.1))
        heading -= kyphosis * SACRAL_TURN_SHARE[index] / 2
        point = point + length * np.array([0.0, math.sin(heading), -math.cos(heading)])
        heading -= kyphosis * SACRAL_TURN_SHARE[index] / 2
        path.append((point.copy(), SACRAL_HALF_DEPTH[index + 1] * s1.depth))
    return path


def draw_curved_sacrum(grid: Grid, hu: np.ndarray, vert_mask: np.ndarray, s1: VertebraModel, tissue: Tissue,
                       scale: float, path: List[Tuple[np.ndarray, float]], rng: np.random.Generator) -> None:
    """A sacrum as a radiologist sees it in the mid-sagittal plane, and the coccyx.

    Below S1 (drawn as a body) the fused S2-S5 bodies follow a centre line that turns posteriorly (sacral
    kyphosis) while they narrow; the rudimentary S1/S2 and S2/S3 discs show as thin partial dark lines in
    some people (they ossify with age); behind the bodies the sacral canal narrows to the hiatus under a
    thin dorsal plate (the fused laminae); the alae run laterally to the sacro-iliac joints. Drawn from its
    own random stream so the rest of the case is unchanged.

    Args:
        grid: the case's voxel grid.
        hu: the CT being drawn (HU), changed in place.
        vert_mask: the vertebra label image; the sacrum takes S1's label.
        s1: the S1 body (drawn before).
        tissue: the case's HU values.
        scale: the case's body size factor.
        path: :func:`sacral_path`.
        rng: draws the sacrum's density and which rudimentary discs show.
    """
    world = [(s1.to_world(p), r) for p, r in path]
    bodies = [(a, b, ra, rb) for (a, ra), (b, rb) in zip(world[:-1], world[1:])]
    canal, plate = [], []
    # the sacral canal and the dorsal plate over it, down to the hiatus (about S4)
    for (p, r), (q, rq) in zip(path[:4], path[1:5]):
        direction = _unit3(q - p)
        back = np.array([0.0, abs(direction[2]), -direction[1] * np.sign(direction[2] or -1.0)])
        canal_a, canal_b = 5.0 * scale * r / path[0][1], 5.0 * scale * rq / path[0][1]
        canal.append((s1.to_world(p + back * (r + canal_a)), s1.to_world(q + back * (rq + canal_b)),
                      canal_a + 1.0, canal_b + 1.0))
        plate.append((s1.to_world(p + back * (r + 2 * canal_a + 3.0 * scale)),
                      s1.to_world(q + back * (rq + 2 * canal_b + 3.0 * scale)), 3.0 * scale, 2.5 * scale))
    for side in (-1.0, 1.0):
        a = s1.to_world((side * s1.width * 0.2, 6.0, -4.0))
        b = s1.to_world((side * (s1.width / 2 + 30.0 * scale), 14.0 * scale, -22.0 * scale))
        bodies.append((a, b, 13.0 * scale, 12.0 * scale))
    # the sacral bodies' cancellous bone is about as dense as the lumbar bodies', often paler in the elderly
    cancellous = tissue.trabecular + float(rng.uniform(-50.0, 20.0))
    shell = tissue.cortical * 0.75
    draw_capsule_union(grid, hu, None, 0, canal, tissue.fat, tissue.fat, 0.0)
    draw_capsule_union(grid, hu, vert_mask, s1.label, bodies, shell, cancellous, tissue.cortex_mm)
    draw_capsule_union(grid, hu, vert_mask, s1.label, plate, shell, cancellous, tissue.cortex_mm)
    # vacuum phenomenon: gas in a cleft of the degenerated L5/S1 disc, just above S1's superior endplate
    if rng.random() < VACUUM_DISC_PROBABILITY:
        half, radius = float(rng.uniform(5.0, 10.0)) * scale, float(rng.uniform(0.8, 1.8))
        u, t = -float(rng.uniform(0.0, 0.25)) * s1.depth, s1.hp / 2 + float(rng.uniform(1.5, 3.0))
        cleft = [(s1.to_world((0.0, u - half, t)), s1.to_world((0.0, u + half, t)), radius, radius)]
        draw_capsule_union(grid, hu, None, 0, cleft, tissue.gas, tissue.gas, 0.0)
    # rudimentary discs: thin partial slabs across the upper junctions, fading with age
    for index in (1, 2):
        if rng.random() > (0.75 if index == 1 else 0.5):
            continue
        (p, r), (q, _) = path[index], path[index + 1]
        (o, _) = path[index - 1]
        direction = _unit3(_unit3(q - p) + _unit3(p - o))
        half = float(rng.uniform(0.6, 1.2))
        slab = [(s1.to_world(p - direction * half), s1.to_world(p + direction * half), 0.75 * r, 0.75 * r)]
        mixed = 0.5 * (tissue.disc + tissue.marrow)
        draw_capsule_union(grid, hu, None, 0, slab, mixed, mixed, 0.0)


def _unit3(vector: np.ndarray) -> np.ndarray:
    return np.asarray(vector, float) / max(float(np.linalg.norm(vector)), 1e-9)
