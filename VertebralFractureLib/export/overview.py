"""The overview figure: the straightened mid-sagittal image with every vertebra's keypoints, coloured by grade.

After Pisov et al. 2020, Fig. 1c-f: the straightened spine with the six keypoints of every vertebra. Each vertebra
is labelled with its level ("T9?" where the levels are not anchored), G and grade (not assessed in grey, "n/a";
"review" in the review colour where the heights grade 0 but a validated learned score disagrees, the verdict of
:mod:`VertebralFractureLib.verdict`); a legend gives the colours, a 20 mm bar the scale and letters the
orientation (S/I, A/P for a CT: rows run superior -> inferior, columns anterior -> posterior in the straightened
image). The Genant table itself is in ``genant.csv`` and the report, once.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Dict, Optional, Tuple, Union

import numpy as np

from ..colors import GRADE_COLORS, grade_color
from ..io.atomic import atomic_path
from ..schema import LEVEL_CERTAIN_KEY, SpineResult

#: Colour of vertebrae the quality gate did not let through (grey: shown, not graded).
NOT_ASSESSED_COLOR = (0.6, 0.6, 0.6)
#: Display window for CT images (HU).
CT_WINDOW = (-250.0, 1250.0)
#: Figure width (inches), the part of it (fraction) for the captions left of the image and for the image.
FIGURE_WIDTH_IN = 7.0
CAPTION_MARGIN = 0.2
#: Least distance between two captions (points; the captions are 8 pt).
CAPTION_LINE_PT = 10.0
IMAGE_WIDTH = 0.62
#: Height of the legend (inches: its title and five 9-pt rows), the note goes below it.
LEGEND_HEIGHT_IN = 1.45
#: Least figure height (inches): room for the heading and the legend.
MIN_FIGURE_HEIGHT_IN = 4.0
#: Length of the scale bar (mm).
SCALE_BAR_MM = 20.0
#: Legend entries: (label, colour).
LEGEND = (
    *((f"grade {g}" + {0: " (normal)", 1: " (review)", 2: " (fracture)", 3: " (fracture)"}[g], c)
      for g, c in GRADE_COLORS.items()),
    ("not assessed", NOT_ASSESSED_COLOR),
)


def verdict_color(vertebra) -> Tuple[float, float, float]:
    """Colour of a vertebra in the figures: its grade's colour, grey when not assessed or not measured."""
    if not vertebra.assessed or vertebra.measure is None:
        return NOT_ASSESSED_COLOR
    return grade_color(vertebra.measure.grade)


def levels_certain(result: SpineResult) -> bool:
    """Whether the analysis anchored its level names (sacrum, 12th rib, T1; True when it does not say)."""
    return bool(result.patient.get("levels", {}).get("certain", True))


def level_text(vertebra, certain: bool = True) -> str:
    """The level name as the figures print it: ``"T9?"`` where the level is not anchored.

    Args:
        vertebra: the vertebra.
        certain: whether the analysis's levels are anchored (:func:`levels_certain`); a vertebra whose own
            count is uncertain (``extra["level_certain"]`` False: past an ambiguous gap) is marked as well.
    """
    sure = certain and vertebra.extra.get(LEVEL_CERTAIN_KEY, True) is not False
    return vertebra.label if sure else f"{vertebra.label}?"


def score_review(vertebra) -> bool:
    """Whether the verdict is "review" although the heights do not say so.

    A validated learned score disagrees with grade-0 heights, or agrees with a height loss the gate withheld, or that
    withheld loss is of grade 2-3 on CT slices that resolve the endplates (:mod:`VertebralFractureLib.verdict`).
    """
    if vertebra.assessed and (vertebra.measure is None or vertebra.measure.grade != 0):
        return False
    return vertebra.verdict()[0] == "review"


def caption_color(vertebra) -> Tuple[float, float, float]:
    """Colour of a vertebra's caption: its keypoints' colour, or the review colour when a learned score disagrees."""
    return GRADE_COLORS[1] if score_review(vertebra) else verdict_color(vertebra)


def _caption(vertebra, certain: bool = True) -> str:
    name = level_text(vertebra, certain)
    if not vertebra.assessed or vertebra.measure is None:
        return f"{name} n/a review" if score_review(vertebra) else f"{name} n/a"
    verdict = "review" if score_review(vertebra) else f"grade {vertebra.measure.grade}"
    return f"{name}  G {vertebra.measure.G:.2f}  {verdict}"


def render_overview(
    image: np.ndarray,
    points: Dict[str, np.ndarray],
    result: SpineResult,
    path: Union[str, Path],
    *,
    spacing: Tuple[float, float] = (1.0, 1.0),
    window: Optional[Tuple[float, float]] = CT_WINDOW,
    title: str = "",
    overwrite: bool = False,
    plane: Optional[str] = None,
) -> Path:
    """Draw the overview PNG.

    Args:
        image: 2D image ``[row, column]`` (straightened mid-sagittal CT or a radiograph).
        points: level -> six keypoints ``[column, row]`` in that image's pixels.
        result: the analysis result (grades, status, patient summary).
        path: target PNG.
        spacing: (row, column) pixel size in mm, so the image shows with its true aspect.
        window: display window (HU for CT); None to stretch between the 1st and 99th percentile (radiographs,
            drawn without orientation letters: their orientation is as acquired).
        title: figure title (the patient summary is appended).
        overwrite: replace an existing file.
        plane: the note saying what the image is (default: the straightened mid-sagittal plane, or the lateral view
            as acquired without a window).
    """
    import matplotlib.pyplot as plt

    figure = draw_overview(image, points, result, spacing=spacing, window=window, title=title, plane=plane)
    with atomic_path(path, overwrite=overwrite) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(path)


def draw_overview(
    image: np.ndarray,
    points: Dict[str, np.ndarray],
    result: SpineResult,
    *,
    spacing: Tuple[float, float] = (1.0, 1.0),
    window: Optional[Tuple[float, float]] = CT_WINDOW,
    title: str = "",
    plane: Optional[str] = None,
):
    """The overview as a matplotlib figure (arguments of :func:`render_overview`); the caller closes it.

    The captions ("L1  G 0.93  grade 0") stand in a margin of fixed width (:data:`CAPTION_MARGIN` of the
    figure) left of the image, whatever the image's width: a wide radiograph (a 512-pixel slice at 1 mm) no
    longer pushes the level names off the picture.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import patheffects
    from matplotlib.lines import Line2D

    low, high = window if window is not None else np.percentile(image, [1, 99])
    height_mm, width_mm = image.shape[0] * spacing[0], image.shape[1] * spacing[1]
    image_width = IMAGE_WIDTH - CAPTION_MARGIN
    # the image's own height at the figure's width, plus the heading; at least the captions' column (one line
    # each) and the legend, at most 12 inches (a square slice used to sit in a 6-inch figure, a third of it empty)
    image_in = FIGURE_WIDTH_IN * image_width * height_mm / width_mm
    least = max(MIN_FIGURE_HEIGHT_IN, len(result.vertebrae) * CAPTION_LINE_PT / 72.0 + 1.6)
    figure_height = float(np.clip(image_in + 1.2, least, 12.0))
    figure = plt.figure(figsize=(FIGURE_WIDTH_IN, figure_height), dpi=110)
    summary = result.patient_summary()
    headline = f"verdict: {summary['verdict_reason']}; {summary['n_assessed']} of {summary['n_vertebrae']} assessed"
    if summary["not_assessed"]:
        headline += f"; not assessed: {', '.join(summary['not_assessed'])}"
    certain = levels_certain(result)
    if not certain:  # the level names are a guess: said where the reader looks first, and "?" on each
        because = result.patient.get("levels", {}).get("uncertain_because", "no 12th rib, iliac crests or sacrum found")
        headline += f"; levels uncertain ({because}): set one level by hand"
    # wrapped to the figure's width (about 87 characters of 10 pt on 7 inches), the image below the heading:
    # a long list of levels not assessed must neither run off the picture nor over the image
    heading = "\n".join(([title] if title else []) + textwrap.wrap(headline, width=87))
    reserve = (0.15 + 0.17 * (heading.count("\n") + 1)) / figure_height
    axis = figure.add_axes([0.01 + CAPTION_MARGIN, 0.02, image_width, 0.98 - 0.02 - reserve])
    axis.set_anchor("W")  # a tall image shrinks the box: it stays against the captions
    extent = (0, width_mm, height_mm, 0)
    axis.imshow(image, cmap="gray", vmin=low, vmax=high, extent=extent, interpolation="bilinear")
    axis.set_xlim(-2, width_mm + 2)
    all_points = [np.asarray(p, dtype=float) * [spacing[1], spacing[0]] for p in points.values()]
    top = min([0.0] + [p[:, 1].min() - 6 for p in all_points])
    bottom = max([height_mm] + [p[:, 1].max() + 6 for p in all_points])
    axis.set_ylim(bottom, top)
    axis.set_facecolor("black")
    axis.set_axis_off()
    drawn = [v for v in result.vertebrae if v.label in points]
    centres = {v.label: float(np.mean(np.asarray(points[v.label], dtype=float)[:, 1])) * spacing[0] for v in drawn}
    # captions at least one line apart: small bodies on a wide picture would print them over each other
    axis.apply_aspect()  # the image's box on the page, without rendering the figure first
    box = axis.get_window_extent()
    line_mm = CAPTION_LINE_PT / 72.0 * figure.dpi * abs(bottom - top) / max(box.height, 1.0)
    rows = _spread(sorted(centres.values()), line_mm)
    caption_row = dict(zip(sorted(centres, key=centres.get), rows))
    for vertebra in drawn:
        color = verdict_color(vertebra)
        xy = np.asarray(points[vertebra.label], dtype=float) * np.array([spacing[1], spacing[0]])
        # a thin dark outline keeps grey (not assessed) and yellow marks visible on white bone
        outline = [patheffects.withStroke(linewidth=2.6, foreground="black")]
        for a, b in ((0, 1), (2, 3), (4, 5)):
            axis.plot(xy[[a, b], 0], xy[[a, b], 1], "-", color=color, linewidth=1.4, path_effects=outline)
        axis.plot(xy[:, 0], xy[:, 1], "o", color=color, markersize=2.5, markeredgecolor="black",
                  markeredgewidth=0.4)
        # at the image's left edge, in the margin (not clipped by the image's box)
        axis.annotate(_caption(vertebra, certain), xy=(-2, caption_row[vertebra.label]), xytext=(-4, 0),
                      textcoords="offset points", color=caption_color(vertebra), fontsize=8, ha="right", va="center",
                      fontweight="bold", annotation_clip=False)
    unit = "px" if result.height_unit == "pixel" else "mm"  # a picture with no pixel size is drawn in pixels
    _scale_bar(axis, width_mm, bottom, unit)
    if window is not None:  # CT: the straightened image's axes
        _orientation(axis, width_mm, top, bottom)
    handles = [Line2D([0], [0], color=c, marker="o", linewidth=1.4, markersize=4, label=t) for t, c in LEGEND]
    legend_x = 0.02 + CAPTION_MARGIN + image_width
    legend_top = 0.98 - reserve  # level with the image's top, below the heading
    figure.legend(handles=handles, loc="upper left", bbox_to_anchor=(legend_x, legend_top), frameon=False,
                  fontsize=9, title="keypoints and heights", title_fontsize=9, alignment="left")
    if plane is None:
        plane = ("Straightened mid-sagittal plane\n(rows follow the spine's centre-line)." if window is not None
                 else "Lateral view as acquired.")
    note_top = legend_top - LEGEND_HEIGHT_IN / figure_height
    reviewed = any(score_review(v) for v in drawn if v.assessed)
    withheld = any(score_review(v) for v in drawn if not v.assessed)
    figure.text(legend_x + 0.01, note_top, f"{plane}\nBar: {SCALE_BAR_MM:.0f} {unit}."
                + ("\nS superior, I inferior,\nA anterior, P posterior." if window is not None else "")
                + ("\n\"review\" beside green keypoints:\nheights normal (grade 0), a\nvalidated learned score\n"
                   "disagrees (see the report)."
                   if reviewed else "")
                + ("\n\"n/a review\": a height loss\nthe keypoints cannot confirm,\nand a validated learned\n"
                   "score agrees, or a loss of\n25 % or more on slices that\nresolve the endplates\n(see the report)."
                   if withheld else ""),
                fontsize=8, va="top", color="#333")
    figure.suptitle(heading, fontsize=10)
    return figure


def _spread(rows: list, gap: float) -> list:
    """Sorted positions moved apart to at least ``gap``, as little as possible (centred on the original block)."""
    out = list(rows)
    for i in range(1, len(out)):
        out[i] = max(out[i], out[i - 1] + gap)
    shift = (float(np.mean(rows)) - float(np.mean(out))) if out else 0.0
    out = [r + shift for r in out]
    for i in range(1, len(out)):  # keep the order and the gap after centring
        out[i] = max(out[i], out[i - 1] + gap)
    return out


def _scale_bar(axis, width_mm: float, bottom: float, unit: str = "mm") -> None:
    x0, y = width_mm - SCALE_BAR_MM - 3, bottom - 6
    axis.plot([x0, x0 + SCALE_BAR_MM], [y, y], "-", color="white", linewidth=3, solid_capstyle="butt")
    axis.text(x0 + SCALE_BAR_MM / 2, y - 2, f"{SCALE_BAR_MM:.0f} {unit}", color="white", fontsize=8, ha="center",
              va="bottom")


def _orientation(axis, width_mm: float, top: float, bottom: float) -> None:
    style = {"color": "yellow", "fontsize": 10, "fontweight": "bold", "ha": "center", "va": "center"}
    middle = (top + bottom) / 2
    axis.text(4, top + 5, "S", **style)
    axis.text(4, bottom - 5, "I", **style)
    axis.text(3, middle, "A", **style)
    axis.text(width_mm - 3, middle, "P", **style)
