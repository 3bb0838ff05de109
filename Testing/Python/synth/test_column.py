"""Column layout: commanded Genant grades and types, normal wedging, labels, centre-line."""

from __future__ import annotations

import numpy as np
import pytest

from VertebralFractureLib import genant
from VertebralFractureLib.levels import TYPICAL_LEVELS
from VertebralFractureLib.synth.column import build_column, centreline_through
from VertebralFractureLib.synth.generator import resolve_params
from VertebralFractureLib.synth.morphometry import SYNTH_LEVELS, level_size
from VertebralFractureLib.synth.params import params_for


def _column(seed: int, preset: str = "spine", **overrides):
    rng = np.random.default_rng(seed)
    params = resolve_params(params_for(preset, **overrides), rng, set(overrides))
    top, bottom = SYNTH_LEVELS.index(params.top_level), SYNTH_LEVELS.index(params.bottom_level)
    return build_column(rng, params, list(SYNTH_LEVELS[top : bottom + 1])), params


@pytest.mark.parametrize("preset", ["spine", "chest", "abdomen", "scoliosis"])
def test_measured_grade_and_type_equal_the_commanded_ones(preset):
    counts = {"wedge": 0, "biconcave": 0, "crush": 0}
    for seed in range(40):
        models, _ = _column(seed, preset, fracture_prevalence=0.45)
        truth = [m for m in models if m.in_truth]
        measures = genant.measure_column([m.name for m in truth], [m.keypoints() for m in truth], exact=True)
        for m, measure in zip(truth, measures):
            assert measure.grade == m.grade, (preset, seed, m.name, m.kind, measure)
            assert measure.type == m.kind, (preset, seed, m.name, measure)
            if m.grade:
                counts[m.kind] += 1
                own = 1 - measure.G
                by_neighbours = measure.neighbour_reduction
                assert own == pytest.approx(m.reduction, abs=1e-9) or m.kind == "crush" or (
                    m.reduction == pytest.approx(by_neighbours, abs=1e-9) and by_neighbours > own
                )
                if m.kind == "crush":
                    assert measure.G > 0.8
                    assert measure.neighbour_reduction == pytest.approx(m.reduction, abs=1e-9)
    assert min(counts.values()) > 3, counts


def test_normal_thoracic_wedging_and_concavity():
    ratios = []
    for seed in range(10):
        models, _ = _column(seed, "chest", fracture_prevalence=0.0)
        for m in models:
            h = genant.heights(m.keypoints())
            g = genant.genant_index(h)
            assert 0.84 < g <= 1.0, (m.name, h)
            if m.name in ("T6", "T7", "T8", "T9"):
                ratios.append(g)
    assert 0.85 <= np.median(ratios) <= 0.95


def test_labels_are_consecutive_and_sizes_follow_morphometry():
    models, params = _column(3, "spine", size_scale=1.0)
    names = [m.name for m in models]
    positions = [TYPICAL_LEVELS.index(n) for n in names]
    assert positions == list(range(positions[0], positions[0] + len(positions)))
    truth = [m.name for m in models if m.in_truth]
    assert truth[0] == params.top_level and truth[-1] == params.bottom_level
    for m in models:
        size = level_size(m.name)
        assert m.depth == pytest.approx(size.depth, rel=0.1)
        assert m.width == pytest.approx(size.width, rel=0.1)
    # bodies grow from T to L (Panjabi 1991/1992)
    assert level_size("L5").width > level_size("T12").width > level_size("T1").width


def test_keypoints_order_and_mid_sagittal_plane():
    models, _ = _column(5, "scoliosis", scoliosis_deg=35.0)
    for m in models:
        local = (m.keypoints() - m.origin) @ m.rotation
        assert np.allclose(local[:, 0], 0.0, atol=1e-9)  # all six in the mid-sagittal plane
        sup, inf = local[0::2, 2], local[1::2, 2]
        assert np.all(sup > inf)  # superior points above inferior ones
        assert local[0, 1] < local[2, 1] < local[4, 1]  # anterior, middle, posterior
        centre = m.centroid()
        assert np.allclose(centre, (m.keypoints()[2] + m.keypoints()[3]) / 2)


def test_scoliosis_moves_the_column_sideways():
    straight, _ = _column(2, "scoliosis", scoliosis_deg=0.0)
    curved, _ = _column(2, "scoliosis", scoliosis_deg=40.0)

    def lateral(models):
        """Largest left-right distance of a body centre from the chord through the end centres."""
        c = np.array([m.centroid() for m in models])
        t = (c[:, 2] - c[0, 2]) / (c[-1, 2] - c[0, 2])
        return np.max(np.abs(c[:, 0] - (c[0, 0] + t * (c[-1, 0] - c[0, 0]))))

    assert lateral(straight) < 2.0
    assert lateral(curved) > 15.0


def test_centreline_runs_through_the_centres_densely():
    models, _ = _column(4)
    centres = np.array([m.centroid() for m in models])
    line = centreline_through(models, (-1e9, 1e9), 1.0)
    steps = np.linalg.norm(np.diff(line, axis=0), axis=1)
    assert np.allclose(steps, 1.0, atol=0.05)
    for c in centres[1:-1]:
        assert np.min(np.linalg.norm(line - c, axis=1)) < 0.6
