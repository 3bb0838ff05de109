"""Lateral films of real anatomy (projections of the real abdominal CT of the reference set) through the 2D path.

The film is a projection of the bundled real CT (``Testing/Data/real``, TotalSegmentator's example CT, L1-L5 and the
sacrum in view): the iliac wings lie over L4, L5 and the sacrum, the bowel over everything. Nothing in it was made
to suit the analysis; a wrong body, a wrong certain level or a grade on these normal bodies is a real failure.
"""

import math

import numpy as np
import pytest

from VertebralFractureLib.radiograph.analyze import analyze_radiograph
from VertebralFractureLib.training.real.films import FILM_SID_MM, real_film

MATCH_MM = 12.0


@pytest.fixture(scope="module")
def parallel_film():
    return real_film("sample_ct")


@pytest.fixture(scope="module")
def point_source_film():
    return real_film("sample_ct", sid_mm=FILM_SID_MM)


def _matched(result, film) -> dict:
    """Reported label -> reference label of each reported body within MATCH_MM of a reference centre."""
    pairs = {}
    for vertebra in result.vertebrae:
        distance, label = min((math.dist(np.asarray(vertebra.centroid, float), centre) * film.pixel_mm, label)
                              for label, centre in film.centroids.items())
        if distance <= MATCH_MM:
            pairs[vertebra.label] = label
    return pairs


def test_the_film_projects_the_reference_bodies_in_order_inside_it(parallel_film):
    film = parallel_film
    rows = [film.centroids[level][1] for level in ("L1", "L2", "L3", "L4", "L5")]
    assert rows == sorted(rows)  # superior at the top
    spacing = np.diff(rows) * film.pixel_mm
    assert np.all((spacing > 25) & (spacing < 45))  # a lumbar level is 30-40 mm
    height, width = film.image.shape
    assert all(0 <= film.centroids[level][0] < width and 0 <= film.centroids[level][1] < height
               for level in ("L1", "L5"))
    assert film.image.dtype == np.float32 and 0.0 <= film.image.min() and film.image.max() <= 1.0


def test_the_lumbar_bodies_are_found_on_the_film_and_none_is_graded_or_named_with_a_false_certainty(parallel_film):
    result = analyze_radiograph(parallel_film.image, pixel_spacing=(1.0, 1.0)).result
    pairs = _matched(result, parallel_film)
    assert len(pairs) >= 4
    assert not any(v.status == "assessed" and v.measure.grade >= 2 for v in result.vertebrae)
    levels = result.patient["levels"]
    if levels["certain"]:  # a certain count must be the right one
        assert all(reported == reference for reported, reference in pairs.items())


def test_a_faint_column_is_kept_on_the_point_source_film(point_source_film):
    # the bone check sees two of the five boxed bodies (the iliac wings over L4 and L5): before the faint column
    # the analysis said "no vertebral body was found in a spine column"
    result = analyze_radiograph(point_source_film.image, pixel_spacing=(1.0, 1.0)).result
    assert result.input["faint_column"] is True
    assert any("the spine column is faint" in w for w in result.warnings)
    assert len(_matched(result, point_source_film)) >= 2
    assert not any(v.status == "assessed" and v.measure.grade >= 2 for v in result.vertebrae)
