"""The overview figure: mid-sagittal image with keypoints coloured by grade, beside the table.

After Pisov et al. 2020, Fig. 1c-f: the straightened spine with the six keypoints of every vertebra.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

from ..colors import grade_color
from ..io.atomic import atomic_path
from ..schema import SpineResult

#: Colour of vertebrae the quality gate did not let through (grey: shown, not graded).
NOT_ASSESSED_COLOR = (0.6, 0.6, 0.6)

#: Display window for CT images (HU).
CT_WINDOW = (-250.0, 1250.0)


def _table_rows(result: SpineResult) -> Sequence[Sequence[str]]:
    def fmt(value: Optional[float], digits: int = 1) -> str:
        return "" if value is None else f"{value:.{digits}f}"

    rows = []
    for v in result.vertebrae:
        m = v.measure
        rows.append([
            v.label,
            *(fmt(h) for h in (m.heights if m else (None,) * 3)),
            fmt(m.G if m else None, 2),
            str(m.grade) if m else "",
            (m.type if m else "invalid") if v.assessed else "not assessed",
            fmt(None if m is None or m.neighbour_reduction is None else 100 * m.neighbour_reduction, 0),
            fmt(v.fracture_probability, 2),
            fmt(v.voxel_fracture_score, 2),
            fmt(v.abnormality, 0),
        ])
    return rows


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
) -> Path:
    """Draw the overview PNG.

    Args:
        image: 2D image ``[row, column]`` (straightened mid-sagittal CT or a radiograph).
        points: level -> six keypoints ``[column, row]`` in that image's pixels.
        result: the analysis result (for grades and the table).
        path: target PNG.
        spacing: (row, column) pixel size in mm, so the image shows with its true aspect.
        window: display window (HU for CT); None to stretch between the 1st and 99th percentile.
        title: figure title (the patient summary is appended).
        overwrite: replace an existing file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    low, high = window if window is not None else np.percentile(image, [1, 99])
    rows = _table_rows(result)
    height_in = max(6.0, min(14.0, 0.5 * image.shape[0] * spacing[0] / 25.4 * 0.5 + 2))
    figure = plt.figure(figsize=(12, height_in), dpi=110)
    axis = figure.add_axes([0.02, 0.03, 0.36, 0.9])
    extent = (0, image.shape[1] * spacing[1], image.shape[0] * spacing[0], 0)
    axis.imshow(image, cmap="gray", vmin=low, vmax=high, extent=extent, interpolation="bilinear")
    axis.set_axis_off()
    for vertebra in result.vertebrae:
        if vertebra.label not in points:
            continue
        grade = vertebra.measure.grade if vertebra.measure else 0
        color = grade_color(grade) if vertebra.assessed else NOT_ASSESSED_COLOR
        xy = np.asarray(points[vertebra.label], dtype=float) * np.array([spacing[1], spacing[0]])
        for a, b in ((0, 1), (2, 3), (4, 5)):
            axis.plot(xy[[a, b], 0], xy[[a, b], 1], "-", color=color, linewidth=1.4)
        axis.plot(xy[:, 0], xy[:, 1], "o", color=color, markersize=2.5)
        name = vertebra.label if vertebra.assessed else f"{vertebra.label} (n/a)"
        axis.text(xy[:, 0].min() - 4, xy[:, 1].mean(), name, color=color, fontsize=8,
                  ha="right", va="center", fontweight="bold")
    table_axis = figure.add_axes([0.42, 0.03, 0.56, 0.9])
    table_axis.set_axis_off()
    columns = ["level", "ha mm", "hm mm", "hp mm", "G", "grade", "type", "nbr red. %", "P(fx)", "voxel", "abn."]
    if rows:
        table = table_axis.table(cellText=rows, colLabels=columns, loc="upper center", cellLoc="center")
        table.auto_set_font_size(False)
        table.set_fontsize(8)
        table.scale(1.0, 1.25)
        for row_index, vertebra in enumerate(result.vertebrae, start=1):
            grade = vertebra.measure.grade if vertebra.measure else 0
            shade = (*grade_color(grade), 0.25) if grade else None
            if not vertebra.assessed:
                shade = (*NOT_ASSESSED_COLOR, 0.35)
            if shade is not None:
                for column_index in range(len(columns)):
                    table[row_index, column_index].set_facecolor(shade)
    else:
        table_axis.text(0.5, 0.9, "no vertebrae found", ha="center", fontsize=12)
    summary = result.patient_summary()
    fractured = ", ".join(summary["fractured_levels"]) or "none"
    headline = f"verdict: {summary['verdict']}; max Genant grade {summary['max_grade']}; fractured: {fractured}"
    if summary["review_levels"]:
        headline += f"; review: {', '.join(summary['review_levels'])}"
    if summary["not_assessed"]:
        headline += f"; not assessed: {', '.join(summary['not_assessed'])}"
    figure.suptitle(f"{title}\n{headline}" if title else headline, fontsize=11)
    with atomic_path(path, overwrite=overwrite) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)
    return Path(path)
