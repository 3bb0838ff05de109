"""A self-contained HTML report: overview figure, Genant table, patient summary, methods, models.

The figure is embedded as base64, so the single file can be mailed or archived. It carries no
patient name or ID unless the caller puts them in ``identity`` (the user asked for them); the
report states what it contains.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Dict, Optional, Union

from .. import __version__
from ..io.atomic import atomic_write
from ..io.csv_tables import genant_rows
from ..schema import SpineResult

METHODS = (
    ("Keypoints and Genant", "Pisov et al., Keypoints localization for joint vertebra detection and fracture severity "
     "quantification, MICCAI 2020: spine centre-line, straightening, six keypoints, G = min/max height."),
    ("Fracture classifier", "Husseini et al., Grading loss: a fracture grade-based metric loss for vertebral "
     "fracture detection, MICCAI 2020."),
    ("Voxel fracture map", "Nicolaes et al., Detection of vertebral fractures in CT using 3D convolutional neural "
     "networks, 2019."),
    ("Abnormality score", "Botros et al., A vertebral compression fracture score based on deep generative "
     "contextual modeling, MIDL 2022 (under review): healthy shape predicted from the neighbours, surplus volume."),
    ("Radiograph level centroids", "Gartland et al., Tailoring loss to boost vertebra centroid localization and "
     "classification in sagittal spinal radiographs."),
)


def render_report(
    result: SpineResult,
    path: Union[str, Path],
    *,
    overview_png: Optional[Union[str, Path]] = None,
    identity: Optional[Dict[str, str]] = None,
    overwrite: bool = False,
) -> Path:
    """Write the HTML report.

    Args:
        result: the analysis result.
        path: target ``.html`` file.
        overview_png: the overview figure to embed.
        identity: patient name / ID etc., only when the user asked for them.
        overwrite: replace an existing file.
    """
    esc = html.escape
    summary = result.patient_summary()
    rows = genant_rows(result)
    columns = [c for c in rows[0].keys() if any(r[c] not in ("", None) for r in rows)] if rows else []
    table = "".join(
        "<tr class='{}'>{}</tr>".format(
            f"g{row.get('grade', 0) or 0}" if row.get("status") == "assessed" else "na",
            "".join(f"<td>{esc(_fmt(row[c]))}</td>" for c in columns),
        )
        for row in rows
    )
    figure = ""
    if overview_png is not None and Path(overview_png).exists():
        data = base64.b64encode(Path(overview_png).read_bytes()).decode("ascii")
        figure = f"<img alt='overview' src='data:image/png;base64,{data}' style='max-width:100%'>"
    who = (
        "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in identity.items())
        if identity
        else "<li>No patient name or identifier is included (none was requested).</li>"
    )
    models = "".join(f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in result.models.items()) or "<li>none</li>"
    methods = "".join(f"<li><b>{esc(a)}</b>: {esc(b)}</li>" for a, b in METHODS)
    warnings = "".join(f"<li>{esc(w)}</li>" for w in result.warnings)
    fractured = ", ".join(summary["fractured_levels"]) or "none"
    not_assessed = ""
    if summary["not_assessed"]:
        items = "".join(f"<li>{esc(k)}: {esc(str(v))}</li>" for k, v in summary["not_assessed"].items())
        not_assessed = f"<p>Not assessed (shown, never graded):</p><ul>{items}</ul>"
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Vertebral fracture report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.9em; }}
td, th {{ border: 1px solid #bbb; padding: 0.2em 0.5em; text-align: center; }}
tr.na {{ background: #e4e4e4; color: #555; }}
tr.g1 {{ background: #fff6c0; }} tr.g2 {{ background: #ffd9a8; }} tr.g3 {{ background: #ffb0a8; }}
.summary {{ font-size: 1.2em; margin: 1em 0; }}
</style></head><body>
<h1>Vertebral fracture assessment</h1>
<p class="summary">Verdict: <b>{esc(summary['verdict'])}</b> ({esc(summary['verdict_reason'])}).
Maximal Genant grade: <b>{summary['max_grade']}</b>; fractured levels (grade 2-3): <b>{esc(fractured)}</b>;
{summary['n_assessed']} of {summary['n_vertebrae']} vertebrae assessed.</p>
<p>Rule: the Genant grade from the six keypoints decides (grade 2-3: fracture; grade 1: review); a learned
score can only ask for a review, and only once validated on real normal vertebrae; a vertebra the image does not
support is shown as "not assessed" and never graded.</p>
{not_assessed}
{figure}
<h2>Genant table</h2>
<table><tr>{''.join(f'<th>{esc(c)}</th>' for c in columns)}</tr>{table}</table>
<p>Heights in mm from six keypoints per vertebral body; G = min/max height; grade 1: 20-25 %, grade 2: 25-40 %,
grade 3: over 40 % height reduction (Genant 1993); neighbour reduction compares the body's maximal height with
its neighbours'. Results are for review by a qualified reader; every keypoint can be checked and corrected.</p>
<h2>Warnings</h2><ul>{warnings or '<li>none</li>'}</ul>
<h2>Methods</h2><ul>{methods}</ul>
<h2>Models and software</h2><ul><li>VertebralFracture {esc(__version__)}</li>{models}</ul>
<h2>What this report contains</h2><ul>{who}
<li>Image geometry (size, spacing, origin, orientation) and the measurements above.</li></ul>
</body></html>
"""
    return atomic_write(path, text, overwrite=overwrite)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)
