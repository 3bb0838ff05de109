"""The overview PNG's layout: every vertebra's caption (level, G, grade) is on the picture, CT and radiograph."""

from pathlib import Path

import numpy as np
import pytest

from VertebralFractureLib.export.overview import draw_overview, render_overview
from VertebralFractureLib.radiograph.analyze import analyze_radiograph

SLICE = Path(__file__).resolve().parents[2] / "Data" / "real" / "covid_sagittal" / "A058062_19010108-077.nii.gz"


@pytest.fixture(scope="module")
def radiograph():
    return analyze_radiograph(SLICE)


def _captions(figure):
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    box = figure.bbox
    texts = [t for t in figure.axes[0].texts if " G " in t.get_text() or "n/a" in t.get_text()]
    return texts, [(t.get_text(), t.get_window_extent(renderer)) for t in texts], box


def test_captions_of_a_wide_radiograph_stay_on_the_picture(radiograph):
    """A 512-pixel slice at 1.06 mm is 540 mm wide: the captions used to sit in 55 mm of the image's own axis
    and lost their level names off the left edge ("grade 0" with no level)."""
    import matplotlib.pyplot as plt

    result, image = radiograph.result, radiograph.mid_sagittal
    spacing = (result.pixel_spacing[1], result.pixel_spacing[0])
    figure = draw_overview(image, radiograph.mid_points, result, spacing=spacing, window=None)
    try:
        texts, extents, box = _captions(figure)
        assert len(texts) == len(result.vertebrae) >= 8
        for text, extent in extents:
            assert extent.x0 >= box.x0 and extent.x1 <= box.x1, text
            assert extent.y0 >= box.y0 and extent.y1 <= box.y1, text
        # each caption names its vertebra's level first, and ends left of the image
        image_left = figure.axes[0].get_window_extent().x0
        assert sorted(t.get_text().split()[0] for t in texts) == sorted(result.labels)
        assert all(extent.x1 <= image_left + 1 for _, extent in extents)
        # a radiograph is drawn as acquired: no "straightened" note, no orientation letters
        notes = " ".join(t.get_text() for t in figure.texts)
        assert "as acquired" in notes and "Straightened" not in notes
    finally:
        plt.close(figure)


def test_the_png_is_written_once_and_kept(radiograph, tmp_path):
    result = radiograph.result
    path = render_overview(radiograph.mid_sagittal, radiograph.mid_points, result, tmp_path / "o.png",
                           spacing=(result.pixel_spacing[1], result.pixel_spacing[0]), window=None)
    picture = path.read_bytes()
    assert picture[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError):
        render_overview(np.zeros((10, 10)), {}, result, path)
    assert path.read_bytes() == picture


def test_captions_never_overlap_on_a_picture_much_wider_than_tall(radiograph):
    """On a picture three times as wide the bodies are a few points tall: the captions are pushed a line apart,
    in the vertebrae's order."""
    import matplotlib.pyplot as plt

    result, image = radiograph.result, radiograph.mid_sagittal
    wide = np.pad(image, ((0, 0), (0, 2 * image.shape[1])), constant_values=float(image.min()))
    figure = draw_overview(wide, radiograph.mid_points, result, spacing=(result.pixel_spacing[1],
                                                                            result.pixel_spacing[0]), window=None)
    try:
        texts, extents, _ = _captions(figure)
        assert len(texts) == len(result.vertebrae)
        ordered = sorted(extents, key=lambda item: -item[1].y0)  # top of the picture first
        assert [t.split()[0] for t, _ in ordered] == [v.label for v in sorted(result.vertebrae,
                                                                              key=lambda v: v.centroid[1])]
        for (_, upper), (_, lower) in zip(ordered, ordered[1:]):
            assert lower.y1 <= upper.y0 + 0.5  # no two captions share a pixel row
    finally:
        plt.close(figure)


def _heading_and_captions(analysis):
    """(heading text, caption texts) of the overview of a radiograph analysis."""
    import matplotlib.pyplot as plt

    result = analysis.result
    figure = draw_overview(analysis.mid_sagittal, analysis.mid_points, result,
                           spacing=(result.pixel_spacing[1], result.pixel_spacing[0]), window=None)
    try:
        texts, _, _ = _captions(figure)
        return " ".join(t.get_text() for t in figure.texts), [t.get_text() for t in texts]
    finally:
        plt.close(figure)


def test_levels_without_an_anchor_are_marked_uncertain_on_the_picture():
    """A real slice with no sacrum to count from (A002304_19001231, cut paramedian): the level names are a guess;
    the overview said "T9 G 0.91 grade 0" as if it knew. Now the heading says the levels are uncertain and each
    caption's level ends with "?"."""
    analysis = analyze_radiograph(SLICE.parent / "A002304_19001231-080.nii.gz")
    result = analysis.result
    assert result.patient["levels"]["certain"] is False
    heading, captions = _heading_and_captions(analysis)
    assert len(captions) == len(result.vertebrae) >= 6
    assert sorted(c.split()[0] for c in captions) == sorted(f"{label}?" for label in result.labels)
    assert "levels uncertain" in heading


def test_anchored_levels_carry_no_question_mark(radiograph):
    assert radiograph.result.patient["levels"]["certain"] is True
    heading, captions = _heading_and_captions(radiograph)
    assert captions and not any("?" in c for c in captions)
    assert "levels uncertain" not in heading


def test_a_square_slice_fills_its_figure_and_the_note_stays_below_the_legend(radiograph):
    """A 512 x 512 slice sat in a 6-inch figure, its lower third empty; on a shorter figure the note ("Lateral view
    as acquired") was printed over the legend."""
    import matplotlib.pyplot as plt

    result = radiograph.result
    figure = draw_overview(radiograph.mid_sagittal, radiograph.mid_points, result,
                           spacing=(result.pixel_spacing[1], result.pixel_spacing[0]), window=None)
    try:
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        image = figure.axes[0].get_window_extent(renderer)
        assert image.height / figure.bbox.height > 0.6
        legend = figure.legends[0].get_window_extent(renderer)
        note = next(t for t in figure.texts if "as acquired" in t.get_text()).get_window_extent(renderer)
        assert note.y1 <= legend.y0 + 1
    finally:
        plt.close(figure)


def test_a_vertebra_a_learned_score_sends_for_review_says_so_on_the_picture(radiograph):
    """The verdict is shown the same way everywhere: a grade-0 body whose validated classifier score disagrees was
    drawn green "grade 0" while the heading said "review: L4" (the sample CT, 2026-12-04)."""
    import copy

    import matplotlib.pyplot as plt

    from VertebralFractureLib.colors import GRADE_COLORS

    result = copy.deepcopy(radiograph.result)
    normal = [v for v in result.vertebrae if v.assessed and v.measure is not None and v.measure.grade == 0]
    flagged = normal[len(normal) // 2]
    flagged.fracture_probability = 0.9
    assert flagged.verdict()[0] == "review"
    figure = draw_overview(radiograph.mid_sagittal, radiograph.mid_points, result,
                           spacing=(result.pixel_spacing[1], result.pixel_spacing[0]), window=None)
    try:
        texts, _, _ = _captions(figure)
        by_level = {t.get_text().split()[0]: t for t in texts}
        caption = by_level[flagged.label]
        assert caption.get_text() == f"{flagged.label}  G {flagged.measure.G:.2f}  review"
        assert tuple(caption.get_color()) == GRADE_COLORS[1]
        others = [(by_level[v.label].get_text(), v.verdict()[0]) for v in normal if v is not flagged]
        assert others and all(text.endswith("review" if verdict == "review" else "grade 0")
                              for text, verdict in others)
        assert any(verdict == "normal" for _, verdict in others)
        assert any("a\nvalidated learned score" in t.get_text() for t in figure.texts)
    finally:
        plt.close(figure)
    unscored = copy.deepcopy(radiograph.result)
    for vertebra in unscored.vertebrae:  # no learned score: nothing it could send for review
        vertebra.fracture_probability = None
    plain = draw_overview(radiograph.mid_sagittal, radiograph.mid_points, unscored,
                          spacing=(result.pixel_spacing[1], result.pixel_spacing[0]), window=None)
    try:
        assert not any("learned score" in t.get_text() for t in plain.texts)
    finally:
        plt.close(plain)


def test_a_withheld_height_loss_a_learned_score_agrees_with_is_captioned_for_review(radiograph):
    """A body the gate withheld (its keypoints off the endplates) whose measured loss a validated score agrees with:
    the verdict is "review" (verdict.UNCONFIRMED_GRADE_KEY); the picture said only "n/a" in grey."""
    import copy

    import matplotlib.pyplot as plt

    from VertebralFractureLib.colors import GRADE_COLORS
    from VertebralFractureLib.verdict import UNCONFIRMED_GRADE_KEY

    result = copy.deepcopy(radiograph.result)
    withheld, plain = [v for v in result.vertebrae if v.assessed][:2]
    for vertebra in (withheld, plain):
        vertebra.not_assessed("keypoints not clearly on the endplates (score 0.83)")
        vertebra.fracture_probability = 0.9
    withheld.extra[UNCONFIRMED_GRADE_KEY] = 2
    assert withheld.verdict()[0] == "review" and plain.verdict()[0] == "not assessed"
    figure = draw_overview(radiograph.mid_sagittal, radiograph.mid_points, result,
                           spacing=(result.pixel_spacing[1], result.pixel_spacing[0]), window=None)
    try:
        texts, _, _ = _captions(figure)
        by_level = {t.get_text().split()[0]: t for t in texts}
        assert by_level[withheld.label].get_text() == f"{withheld.label} n/a review"
        assert tuple(by_level[withheld.label].get_color()) == GRADE_COLORS[1]
        assert by_level[plain.label].get_text() == f"{plain.label} n/a"
        assert any("keypoints cannot confirm" in t.get_text() and "resolve the endplates" in t.get_text()
                   for t in figure.texts)
    finally:
        plt.close(figure)
