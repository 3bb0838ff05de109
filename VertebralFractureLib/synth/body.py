"""Everything around the spine: body outline, fat, muscles, organs, lungs, vessels, ribs, pelvis.

Soft tissues are ellipses per axial slice that follow the column; the abdomen is mottled with
visceral fat and a few gas pockets from a smooth random field; ribs are chains of capsules from
the costovertebral joints along the inner chest wall, descending anteriorly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, List, Optional

import numpy as np

from .column import VertebraModel
from .grid import Grid, smooth_field
from .tissue import Tissue
from .vertebrae import Capsule, draw_capsule_union


@dataclass
class Outline:
    """Body outline and landmarks as functions of z (LPS mm), built from the column."""

    z: np.ndarray  # increasing
    spine_x: np.ndarray
    spine_y: np.ndarray
    depth: np.ndarray
    width: np.ndarray
    half_width: float
    half_depth: float
    back: float
    fat: float
    centre_x: float

    @classmethod
    def from_column(cls, models: List[VertebraModel], rng: np.random.Generator) -> Outline:
        """Draw the outline of a case around its column."""
        centres = np.array([m.centroid() for m in models])[::-1]
        return cls(
            z=centres[:, 2],
            spine_x=centres[:, 0],
            spine_y=centres[:, 1],
            depth=np.array([m.depth for m in models])[::-1],
            width=np.array([m.width for m in models])[::-1],
            half_width=float(rng.uniform(140, 175)),
            half_depth=float(rng.uniform(95, 120)),
            back=float(rng.uniform(50, 75)),
            fat=float(rng.uniform(8, 28)),
            centre_x=float(centres[:, 0].mean()),
        )

    def at(self, z: np.ndarray) -> dict:
        """Per-z values: spine centre, body size, outline centre and semi-axes."""
        z = np.asarray(z, float)
        sx = np.interp(z, self.z, self.spine_x)
        sy = np.interp(z, self.z, self.spine_y)
        depth = np.interp(z, self.z, self.depth)
        width = np.interp(z, self.z, self.width)
        b = np.full_like(z, self.half_depth)
        # the skin follows the column's overall line and 30 % of its forward curvature, but all
        # of a backward hump (kyphosis), so the back stays ``back`` mm behind the bodies
        trend = np.polyval(np.polyfit(self.z, self.spine_y, 1), z) if len(self.z) > 1 else sy
        offset = sy - trend
        cy = trend + np.maximum(0.3 * offset, offset) + depth / 2 + self.back - b
        return {
            "sx": sx,
            "sy": sy,
            "depth": depth,
            "width": width,
            "cx": np.full_like(z, self.centre_x),
            "cy": cy,
            "a": np.full_like(z, self.half_width),
            "b": b,
        }


def paint_ellipses(
    grid: Grid,
    hu: np.ndarray,
    value: float | Callable,
    select: np.ndarray,
    cx: np.ndarray,
    cy: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    where: Optional[Callable] = None,
) -> None:
    """Set ``value`` inside the per-slice ellipses (slices where ``select``), within their bounding box."""
    ks = np.flatnonzero(select & (a > 0) & (b > 0))
    if ks.size == 0:
        return
    k0, k1 = ks[0], ks[-1] + 1
    sel = slice(k0, k1)
    low = (np.min((cx - a)[sel]), np.min((cy - b)[sel]), grid.axis(2)[k0])
    high = (np.max((cx + a)[sel]), np.max((cy + b)[sel]), grid.axis(2)[k1 - 1])
    box = grid.box(low, high)
    if box is None:
        return
    slices, x, y, z = box
    ks_box = np.arange(slices[0].start, slices[0].stop)
    ccx, ccy = cx[ks_box].reshape(-1, 1, 1), cy[ks_box].reshape(-1, 1, 1)
    aa, bb = a[ks_box].reshape(-1, 1, 1), b[ks_box].reshape(-1, 1, 1)
    dx, dy = (x - ccx) / aa, (y - ccy) / bb
    inside = (dx * dx + dy * dy <= 1) & select[ks_box].reshape(-1, 1, 1)
    if where is not None:
        inside &= where(x, y, z)
    view = hu[slices]
    if callable(value):
        np.copyto(view, value(slices, inside), where=inside)
    else:
        np.copyto(view, np.float32(value), where=inside)


def draw_soft_tissue(
    grid: Grid,
    hu: np.ndarray,
    outline: Outline,
    models: List[VertebraModel],
    tissue: Tissue,
    rng: np.random.Generator,
    lungs: bool = True,
) -> None:
    """Body outline, fat, muscles, organs, lungs, heart and great vessels."""
    z = grid.axis(2).astype(float)
    o = outline.at(z)
    everywhere = np.ones_like(z, bool)
    a, b = o["a"], o["b"]
    paint_ellipses(grid, hu, tissue.fat, everywhere, o["cx"], o["cy"], a, b)
    wall = outline.fat
    paint_ellipses(grid, hu, tissue.muscle, everywhere, o["cx"], o["cy"], a - wall, b - wall)
    inner_a, inner_b = a - wall - 12.0, b - wall - 12.0
    names = [m.name for m in models]
    z_of = {m.name: float(m.centroid()[2]) for m in models}

    def level_z(name: str) -> float:
        """Z of a level, extrapolated beyond the column in view (about 25 mm per level)."""
        from .morphometry import SYNTH_LEVELS

        if name in z_of:
            return z_of[name]
        index = SYNTH_LEVELS.index(name)
        known = [(SYNTH_LEVELS.index(n), z_of[n]) for n in names]
        nearest = min(known, key=lambda item: abs(item[0] - index))
        return nearest[1] - (index - nearest[0]) * 25.0

    z_dia_back, z_dia_front = level_z("T12") - 5.0, level_z("T10")
    # abdomen / mediastinum interior
    paint_ellipses(grid, hu, tissue.organ, everywhere, o["cx"], o["cy"], inner_a, inner_b)
    if (z < z_dia_back - 10.0).any():
        fat_cut = float(rng.uniform(0.2, 0.8))

        def mottled(slices: tuple, inside: np.ndarray) -> np.ndarray:
            """Organs with visceral fat and, in front, a few gas pockets (smooth random fields)."""
            shape = inside.shape
            spacing = tuple(reversed(grid.spacing))
            fat_field = smooth_field(rng, shape, spacing, 22.0)
            gas_field = smooth_field(rng, shape, spacing, 14.0)
            y = grid.axis(1)[slices[1]].reshape(1, -1, 1)
            anterior = y < o["cy"][slices[0]].reshape(-1, 1, 1).astype(np.float32)
            values = np.where(fat_field > fat_cut, np.float32(tissue.fat), np.float32(tissue.organ))
            return np.where((gas_field > 1.6) & anterior, np.float32(tissue.gas), values).astype(np.float32)

        paint_ellipses(grid, hu, mottled, z < z_dia_back - 10.0, o["cx"], o["cy"], inner_a - 5, inner_b - 5)
    # retroperitoneum: fat around the lumbar spine, psoas muscles, kidneys
    lumbar = z < level_z("T12")
    sx, sy, depth, width = o["sx"], o["sy"], o["depth"], o["width"]
    paint_ellipses(grid, hu, tissue.fat, lumbar, sx, sy - 2, width / 2 + 38, depth / 2 + 16)
    growth = np.clip((level_z("T12") - z) / max(level_z("T12") - level_z("L5"), 1.0), 0, 1)
    for side in (-1, 1):
        psoas_r = 6 + 20 * growth
        paint_ellipses(
            grid, hu, tissue.muscle, lumbar, sx + side * (width / 2 + psoas_r * 0.6), sy + 2, psoas_r, psoas_r * 1.1
        )
        kidney = (z < level_z("T11")) & (z > level_z("L3"))
        paint_ellipses(
            grid,
            hu,
            tissue.organ - 5,
            kidney,
            sx + side * (width / 2 + 55),
            sy + 12,
            np.full_like(z, 28),
            np.full_like(z, 38),
        )
    # chest: lungs above the diaphragm domes (high in the middle and in front, low in the
    # posterior costophrenic recesses), heart in front
    if lungs:
        chest = z > level_z("L1")
        low_z = level_z("L1") + 5.0
        for side in (-1, 1):
            cx_lung = o["cx"] + side * 0.5 * inner_a
            cy_lung = o["cy"] + 0.06 * inner_b
            a_lung, b_lung = 0.4 * inner_a, 0.86 * inner_b
            top_z = z_dia_front + (10.0 if side < 0 else 0.0)  # the right (x < 0) dome is higher (liver)
            dome_x, dome_y = float(np.mean(cx_lung)), float(np.mean(cy_lung - 0.25 * b_lung))
            dome_a, dome_b = float(np.mean(a_lung)) * 1.1, float(np.mean(b_lung)) * 1.3

            def dome(x, y, zz, top_z=top_z, dome_x=dome_x, dome_y=dome_y, dome_a=dome_a, dome_b=dome_b):
                """Above the hemidiaphragm: a paraboloid dome per side."""
                r2 = ((x - np.float32(dome_x)) / np.float32(dome_a)) ** 2 + (
                    (y - np.float32(dome_y)) / np.float32(dome_b)
                ) ** 2
                return zz > np.float32(top_z) - np.float32(top_z - low_z) * np.minimum(r2, 1.0) ** 2

            paint_ellipses(grid, hu, tissue.lung, chest, cx_lung, cy_lung, a_lung, b_lung, where=dome)
        heart = (z > z_dia_front - 5) & (z < z_dia_front + 110)
        paint_ellipses(
            grid,
            hu,
            tissue.blood,
            heart,
            o["cx"] + 0.12 * inner_a,
            o["cy"] - 0.3 * inner_b,
            0.3 * inner_a,
            0.42 * inner_b,
        )
    # muscles behind the spine (erector spinae), aorta and vena cava in front
    paint_ellipses(grid, hu, tissue.muscle, everywhere, sx, sy + depth / 2 + 40, width / 2 + 35, np.full_like(z, 38))
    paint_ellipses(
        grid, hu, tissue.blood, everywhere, sx + 15, sy - depth / 2 - 13, np.full_like(z, 11), np.full_like(z, 11)
    )
    paint_ellipses(
        grid, hu, tissue.blood, lumbar, sx - 22, sy - depth / 2 - 10, np.full_like(z, 12), np.full_like(z, 10)
    )


def rib_capsules(m: VertebraModel, outline: Outline, scale: float) -> List[Capsule]:
    """Both ribs of a thoracic vertebra as capsule chains (LPS)."""
    number = int(m.name[1:])
    end_fraction = {11: 0.6, 12: 0.45}.get(number, 0.86 if number <= 7 else 0.76)
    drop = 30.0 + 3.0 * min(number, 8)
    radius = (3.2 + 0.1 * min(number, 8)) * scale
    capsules: List[Capsule] = []
    s = m.size
    pw = s.canal_width * scale / 2 + s.pedicle_radius * scale * 0.9
    reach = s.transverse_length * scale
    for side in (-1.0, 1.0):
        head = m.to_world((side * (m.width / 2 - 3.0), m.depth / 2 - 6.0, m.hp / 2))
        tip = m.to_world(
            (side * (pw + 0.85 * reach), m.depth / 2 + 0.55 * s.canal_depth * scale + 0.6 * reach - 4.0, 0.12 * m.hp)
        )
        o = outline.at(np.array([tip[2]]))
        a = float(o["a"][0]) - outline.fat - 16.0
        b = float(o["b"][0]) - outline.fat - 16.0
        cx, cy = float(o["cx"][0]), float(o["cy"][0])
        theta0 = math.atan2(side * (tip[0] - cx) / a, (tip[1] - cy) / b) + 0.12
        theta1 = math.pi * end_fraction
        if theta1 <= theta0:  # a short floating rib (T11, T12) whose arc would end before it starts: head and tip only
            chain = [head, tip]
        else:
            n = max(4, int((theta1 - theta0) * (a + b) / 2 / 12.0))
            thetas = np.linspace(theta0, theta1, n)
            frac = (thetas - theta0) / max(theta1 - theta0, 1e-3)
            points = np.stack([cx + side * a * np.sin(thetas), cy + b * np.cos(thetas),
                               tip[2] + 6.0 - drop * frac**1.3], 1)
            chain = [head, tip, *points]
        for p, q in zip(chain[:-1], chain[1:]):
            capsules.append((np.asarray(p), np.asarray(q), radius, radius))
    return capsules


def draw_ribs(grid: Grid, hu: np.ndarray, models: List[VertebraModel], outline: Outline, tissue: Tissue, scale: float):
    """Ribs of the thoracic vertebrae (each rib one union of capsules; not part of the vertebra masks)."""
    for m in models:
        if m.name.startswith("T"):
            draw_capsule_union(
                grid,
                hu,
                None,
                0,
                rib_capsules(m, outline, scale),
                tissue.cortical * 0.8,
                tissue.marrow,
                tissue.cortex_mm,
            )


def draw_pelvis(grid: Grid, hu: np.ndarray, s1: VertebraModel, tissue: Tissue, scale: float) -> None:
    """Iliac wings: curved bony plates from the sacro-iliac joints, flaring laterally and forwards."""
    capsules: List[Capsule] = []
    for side in (-1.0, 1.0):
        for t in np.arange(-70.0, 45.0, 5.0) * scale:
            flare = 1.0 - abs((t - 10.0 * scale) / (70.0 * scale)) ** 2
            span = (40.0 + 55.0 * max(flare, 0.0)) * scale
            thetas = np.linspace(0.0, 1.35, 7)
            pts = [
                s1.to_world(
                    (
                        side * (s1.width / 2 + 28.0 * scale + span * math.sin(th)),
                        15.0 * scale - span * 1.1 * (1 - math.cos(th)) + 10.0 * scale * (t > 0),
                        t,
                    )
                )
                for th in thetas
            ]
            for p, q in zip(pts[:-1], pts[1:]):
                capsules.append((p, q, 4.0 * scale, 4.0 * scale))
    draw_capsule_union(grid, hu, None, 0, capsules, tissue.cortical * 0.8, tissue.marrow, tissue.cortex_mm)


def draw_metal(
    grid: Grid, hu: np.ndarray, models: List[VertebraModel], rng: np.random.Generator, tissue: Tissue, scale: float
) -> List[str]:
    """Pedicle screws and rods spanning two or three adjacent levels; returns the instrumented levels."""
    candidates = [i for i, m in enumerate(models) if m.in_truth]
    if len(candidates) < 3:
        return []
    start = int(rng.choice(candidates[:-2]))
    levels = models[start : start + int(rng.integers(2, 4))]
    capsules: List[Capsule] = []
    heads = {-1.0: [], 1.0: []}
    for m in levels:
        s = m.size
        pw = s.canal_width * scale / 2 + s.pedicle_radius * scale * 0.9
        for side in (-1.0, 1.0):
            entry = m.to_world((side * (pw + 4.0), m.depth / 2 + 0.55 * s.canal_depth * scale + 12.0, 0.18 * m.hp))
            tip = m.to_world((side * pw * 0.35, -m.depth * 0.3, 0.18 * m.hp))
            capsules.append((entry, tip, 3.0, 2.5))
            heads[side].append(entry)
    for points in heads.values():
        for p, q in zip(points[:-1], points[1:]):
            capsules.append((np.asarray(p), np.asarray(q), 2.8, 2.8))
    draw_capsule_union(grid, hu, None, 0, capsules, tissue.metal, tissue.metal, 0.0)
    return [m.name for m in levels]


def draw_pelvic_contents(grid: Grid, hu: np.ndarray, s1: VertebraModel, path: list, tissue: Tissue, scale: float,
                         rng: np.random.Generator) -> None:
    """What lies in front of the sacrum on a real CT: bowel loops, the rectum and the bladder.

    Loops of small bowel and sigmoid (tubes 8-16 mm in radius with a 2 mm wall) hold fluid, gas or, in about
    four cases in ten, positive oral contrast (200-700 HU, brighter than the trabecular bone of an elderly
    spine); the rectum follows the anterior surface of the sacrum with gas or stool; the bladder lies in front
    of the lower sacrum. Drawn before the bones, from the sacrum's random stream.

    Args:
        grid: the case's voxel grid.
        hu: the CT being drawn (HU), changed in place.
        s1: the S1 body.
        path: the sacral centre line (:func:`~VertebralFractureLib.synth.vertebrae.sacral_path`).
        tissue: the case's HU values.
        scale: the case's body size factor.
        rng: the sacrum's random stream.
    """
    oral_contrast = rng.random() < 0.4
    front = -(s1.depth / 2 + 8.0 * scale)
    loops: List[Capsule] = []
    for _ in range(int(rng.integers(6, 12))):
        centre = np.array([rng.uniform(-60.0, 60.0), front - rng.uniform(10.0, 90.0),
                           rng.uniform(-100.0, 70.0)]) * scale
        heading = rng.normal(size=3)
        heading /= np.linalg.norm(heading)
        half = float(rng.uniform(10.0, 30.0)) * scale
        radius = float(rng.uniform(8.0, 16.0)) * scale
        a, b = s1.to_world(centre - heading * half), s1.to_world(centre + heading * half)
        content = rng.random()
        if oral_contrast and content < 0.6:
            value = float(rng.uniform(200.0, 700.0))
        elif content < 0.8:
            value = float(rng.uniform(0.0, 30.0))
        else:
            value = tissue.gas
        loops.append((a, b, radius, radius))
        draw_capsule_union(grid, hu, None, 0, [loops[-1]], tissue.organ, value, 2.0)
    # rectum along the anterior surface of the sacrum, gas or stool
    rectum_r = float(rng.uniform(10.0, 18.0)) * scale
    rectum = []
    for (p, r), (q, rq) in zip(path[1:5], path[2:6]):
        direction = (q - p) / max(float(np.linalg.norm(q - p)), 1e-9)
        front_dir = -np.array([0.0, abs(direction[2]), -direction[1] * np.sign(direction[2] or -1.0)])
        gap = rectum_r + float(rng.uniform(4.0, 15.0)) * scale
        rectum.append((s1.to_world(p + front_dir * (r + gap)), s1.to_world(q + front_dir * (rq + gap)), rectum_r,
                       rectum_r))
    stool = tissue.gas if rng.random() < 0.4 else float(rng.uniform(-60.0, 40.0))
    draw_capsule_union(grid, hu, None, 0, rectum, tissue.organ, stool, 2.5)
    if rng.random() < 0.7:
        tip = path[-1][0]
        bladder = s1.to_world(tip + np.array([0.0, -rng.uniform(60.0, 90.0) * scale, rng.uniform(10.0, 30.0) * scale]))
        radius = float(rng.uniform(25.0, 45.0)) * scale
        draw_capsule_union(grid, hu, None, 0, [(bladder, bladder + np.array([0.0, 0.0, 1.0]), radius, radius)],
                           tissue.organ, float(rng.uniform(0.0, 15.0)), 2.0)
