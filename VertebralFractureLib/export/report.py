"""A self-contained HTML report, rendered from one Jinja2 template (``templates/report.html.j2``).

What a reader sees, top to bottom: the research-use notice; the patient verdict, its reason and the rule
behind it (:mod:`VertebralFractureLib.verdict`); every vertebra not assessed with its reason; a strip of
sagittal thumbnails, one per vertebra, with its six keypoints; the overview figure; the Genant table once,
with the column names of ``genant.csv`` (:data:`~VertebralFractureLib.io.csv_tables.GENANT_COLUMNS`), their
units and the same rounding; the methods that ran (from ``result.models``); the models; what the report
contains. Figures are embedded as base64, so the single file can be mailed or archived. It carries no patient
name or ID unless the caller puts them in ``identity``.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .. import __version__
from ..io.atomic import atomic_write
from ..io.csv_tables import COLUMN_UNITS, DECIMALS, GENANT_COLUMNS, genant_rows
from ..schema import SpineResult
from ..verdict import MASK_SCORE_RULES, MAX_REAL_FPR, RADIOGRAPH_SCORE_RULES, SCORE_RULES

#: Methods, keyed by the ``result.models`` entry that shows they ran: (name, citation, what it does here).
METHODS: Dict[str, Tuple[str, str, str]] = {
    "keypoints": ("Keypoints and Genant measures", "Pisov M. et al., Keypoints localization for joint vertebra "
                  "detection and fracture severity quantification, MICCAI 2020",
                  "spine centre-line, straightened spine, six keypoints per vertebral body, G = min/max height"),
    "fracture_classifier": ("Fracture classifier", "Husseini M. et al., Grading loss: a fracture grade-based "
                            "metric loss for vertebral fracture detection, MICCAI 2020",
                            "per-vertebra fracture probability from sagittal patches"),
    "voxelmap": ("Voxel fracture map", "Nicolaes J. et al., Detection of vertebral fractures in CT using 3D "
                 "convolutional neural networks, arXiv:1911.01816, 2019",
                 "voxel fracture probability aggregated per vertebra"),
    "abnormality": ("Shape abnormality", "Botros M. et al., A vertebral compression fracture score based on deep "
                    "generative contextual modeling, MIDL 2022 (under review at the time)",
                    "healthy shape predicted from the neighbours; surplus volume scored 0-100"),
}
#: The keypoint method when every vertebra was measured on a vertebra mask (``result.models["keypoints"] == "mask"``:
#: a user's segmentation, or a CT masked to one vertebra).
MASK_METHOD = ("Genant measures from a vertebra mask", "Genant H. K. et al., Vertebral fracture assessment using a "
               "semiquantitative technique, J Bone Miner Res 1993; heights as in Pisov M. et al., MICCAI 2020",
               "body separated at the spinal canal, six keypoints where the mask's outline crosses the body's own "
               "mid-sagittal section, G = min/max height")
#: The method of a radiograph result (frame ``pixel``).
RADIOGRAPH_METHOD = ("Radiograph level centroids", "Gartland C. et al., Tailoring loss to boost vertebra centroid "
                     "localization and classification in sagittal spinal radiographs, MIDL 2025 (under review)",
                     "level centroid heatmaps on the lateral radiograph")
#: Table columns (``genant.csv`` names) the report shows; case and reasons are shown elsewhere, and the
#: reader's review mark (set later, in Slicer) is not part of the analysis report.
TABLE_COLUMNS = tuple(c for c in GENANT_COLUMNS if c not in ("case", "verdict_reason", "status_reason", "review",
                                                             "reviewed_by", "reviewed_at"))
#: Thumbnail half-size around a vertebra's keypoints, in mm, and its pixel size.
THUMBNAIL_MARGIN_MM = 12.0
THUMBNAIL_HEIGHT_PX = 150


def cell_text(column: str, value: Any) -> str:
    """A table cell as the report shows it: numbers with the CSV's decimals (0.9997 -> "1.00"), "" for none."""
    if value is None or value == "":
        return ""
    if column in DECIMALS:
        return f"{float(value):.{DECIMALS[column]}f}"
    return str(value)


def _png_base64(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def vertebra_thumbnails(
    image: np.ndarray,
    points: Dict[str, np.ndarray],
    result: SpineResult,
    spacing: Tuple[float, float] = (1.0, 1.0),
    window: Optional[Tuple[float, float]] = (-250.0, 1250.0),
) -> Dict[str, str]:
    """One base64 PNG per vertebra: the sagittal image around it with its six keypoints and three heights.

    Args:
        image: the straightened mid-sagittal image ``[row, column]`` (``Analysis.mid_sagittal``).
        points: level -> six keypoints ``[column, row]`` in that image (``Analysis.mid_points``).
        result: the vertebrae (colours by verdict).
        spacing: (row, column) pixel size in mm.
        window: display window (HU); None to stretch between the 1st and 99th percentile.

    Returns:
        Level -> base64 PNG, for the vertebrae that have points in the image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .overview import verdict_color

    low, high = window if window is not None else np.percentile(image, [1, 99])
    scale = np.array([spacing[1], spacing[0]], dtype=float)
    out = {}
    for vertebra in result.vertebrae:
        if vertebra.label not in points:
            continue
        xy = np.asarray(points[vertebra.label], dtype=float) * scale
        (x0, y0), (x1, y1) = xy.min(axis=0) - THUMBNAIL_MARGIN_MM, xy.max(axis=0) + THUMBNAIL_MARGIN_MM
        size = max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        figure = plt.figure(figsize=(1.5, 1.5), dpi=THUMBNAIL_HEIGHT_PX / 1.5)
        axis = figure.add_axes([0, 0, 1, 1])
        extent = (0, image.shape[1] * spacing[1], image.shape[0] * spacing[0], 0)
        axis.imshow(image, cmap="gray", vmin=low, vmax=high, extent=extent, interpolation="bilinear")
        axis.set_xlim(cx - size / 2, cx + size / 2)
        axis.set_ylim(cy + size / 2, cy - size / 2)
        axis.set_axis_off()
        color = verdict_color(vertebra)
        for a, b in ((0, 1), (2, 3), (4, 5)):
            axis.plot(xy[[a, b], 0], xy[[a, b], 1], "-", color=color, linewidth=1.2)
        axis.plot(xy[:, 0], xy[:, 1], "o", color=color, markersize=3)
        axis.plot([cx - size / 2 + 2, cx - size / 2 + 12], [cy + size / 2 - 3] * 2, "-", color="white", linewidth=2)
        axis.text(cx - size / 2 + 7, cy + size / 2 - 5, "10 px" if result.height_unit == "pixel" else "10 mm",
                  color="white", fontsize=6, ha="center")
        out[vertebra.label] = _png_base64(figure)
        plt.close(figure)
    return out


def _methods(result: SpineResult) -> List[Tuple[str, str, str]]:
    """The methods that ran for this result, in pipeline order."""
    if result.frame == "pixel":
        return [RADIOGRAPH_METHOD]
    masks_only = result.models.get("keypoints") == "mask"
    return [MASK_METHOD if key == "keypoints" and masks_only else METHODS[key] for key in METHODS
            if key in result.models]


def _rules(result: SpineResult):
    """The score calibration that applies.

    The mask one when every vertebra was measured on a mask, the lateral view's on a radiograph (frame ``pixel``),
    else the CT one.
    """
    from_mask = bool(result.vertebrae) and all(v.source == "mask" for v in result.vertebrae)
    if from_mask:
        return MASK_SCORE_RULES
    return RADIOGRAPH_SCORE_RULES if result.frame == "pixel" else SCORE_RULES


def report_context(
    result: SpineResult,
    *,
    overview_png: Optional[Union[str, Path]] = None,
    thumbnails: Optional[Dict[str, str]] = None,
    identity: Optional[Dict[str, str]] = None,
    strip_plane: str = "straightened mid-sagittal plane",
) -> Dict[str, Any]:
    """Everything the template shows, as plain values (tests read the table from here and from the HTML).

    ``strip_plane``: what the thumbnails' image is (the straightened spine's mid-sagittal plane, or a masked
    vertebra's own).
    """
    rows = genant_rows(result)
    columns = [c for c in TABLE_COLUMNS if any(row[c] not in ("", None) for row in rows)]
    figure = None
    if overview_png is not None and Path(overview_png).exists():
        figure = base64.b64encode(Path(overview_png).read_bytes()).decode("ascii")
    from .overview import level_text, levels_certain

    by_label = {v.label: v for v in result.vertebrae}
    certain = levels_certain(result)
    strip = [
        {"level": level_text(by_label[row["level"]], certain), "verdict": row["verdict"], "G": cell_text("G", row["G"]),
         "grade": row["grade"], "png": (thumbnails or {}).get(row["level"]),
         "assessed": by_label[row["level"]].assessed}
        for row in rows
    ]
    return {
        "version": __version__,
        "case": rows[0]["case"] if rows else str(result.input.get("path", "")),
        "summary": result.patient_summary(),
        # the level names are a guess without an anatomical anchor: said in the verdict box, "?" on each name
        "levels_uncertain": None if certain else result.patient.get("levels", {}).get("method", "levels uncertain"),
        "columns": [(c, COLUMN_UNITS[c][0], COLUMN_UNITS[c][1]) for c in columns],
        "rows": [{"class": _row_class(row), "cells": [cell_text(c, row[c]) for c in columns],
                  "verdict_reason": row["verdict_reason"]} for row in rows],
        "not_assessed": [(row["level"], row["status_reason"]) for row in rows if row["status"] != "assessed"],
        "strip": strip,
        "strip_plane": strip_plane,
        "figure": figure,
        "methods": _methods(result),
        "scores": [(rule.name, rule.threshold, rule.validated, rule.real_fpr, rule.real_n) for rule in _rules(result)
                   if any(getattr(v, rule.field, None) is not None for v in result.vertebrae)],
        "max_real_fpr": MAX_REAL_FPR,
        "models": sorted(result.models.items()),
        "warnings": list(result.warnings),
        "identity": dict(identity or {}),
    }


def _row_class(row: Dict[str, Any]) -> str:
    return {"fracture": "fracture", "review": "review", "normal": "normal"}.get(row["verdict"], "na")


def render_report(
    result: SpineResult,
    path: Union[str, Path],
    *,
    overview_png: Optional[Union[str, Path]] = None,
    sagittal: Optional[Tuple[np.ndarray, Dict[str, np.ndarray], Sequence[float]]] = None,
    window: Optional[Tuple[float, float]] = (-250.0, 1250.0),
    identity: Optional[Dict[str, str]] = None,
    overwrite: bool = False,
    strip_plane: str = "straightened mid-sagittal plane",
) -> Path:
    """Write the HTML report.

    Args:
        result: the analysis result.
        path: target ``.html`` file.
        overview_png: the overview figure to embed.
        sagittal: ``(mid_sagittal image, mid_points, mid_spacing)`` of the analysis, for the thumbnails.
        window: display window of the thumbnails (None: automatic, for radiographs).
        identity: patient name / ID etc., only when the user asked for them.
        overwrite: replace an existing file.
        strip_plane: what the image of ``sagittal`` is, for the thumbnails' heading.
    """
    import jinja2

    thumbnails = None
    if sagittal is not None and sagittal[0] is not None:
        image, points, spacing = sagittal
        thumbnails = vertebra_thumbnails(image, points, result, tuple(spacing), window)
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("VertebralFractureLib.export", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    context = report_context(result, overview_png=overview_png, thumbnails=thumbnails, identity=identity,
                             strip_plane=strip_plane)
    text = environment.get_template("report.html.j2").render(**context)
    return atomic_write(path, text, overwrite=overwrite)
