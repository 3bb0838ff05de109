"""Write every output of one analysis into a folder (``vertebral-fracture analyze --out DIR``).

Files: ``results.json`` (schema ``vertebral-fracture/1``), ``genant.csv``, ``keypoints.mrk.json``
and ``centroids.mrk.json`` (Slicer markups, LPS), ``segmentation.seg.nrrd`` (one segment per
vertebra coloured by Genant grade), ``abnormality.seg.nrrd`` (the same, coloured by abnormality
0-100 from green to red, when scored), ``fracture_map.nii.gz`` (voxel fracture probability of
Nicolaes et al. 2019 on a band around the spine, when computed), ``overview.png`` and ``report.html``. Each file is
written
atomically; existing files are only replaced with ``overwrite=True``, and the check happens for
all files before anything is written, so a refused run leaves the folder as it was.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Optional, Union

from ..colors import abnormality_color, grade_color
from ..io.atomic import ExistingFileError, atomic_write
from ..levels import label_from_level
from ..schema import SpineResult
from .segmentation import Segment, write_seg_nrrd

OUTPUT_FILES = (
    "results.json",
    "genant.csv",
    "keypoints.mrk.json",
    "centroids.mrk.json",
    "segmentation.seg.nrrd",
    "abnormality.seg.nrrd",
    "fracture_map.nii.gz",
    "overview.png",
    "report.html",
)
#: What a radiograph analysis writes (no patient frame: 2D keypoints as CSV, no segmentation).
RADIOGRAPH_OUTPUT_FILES = ("results.json", "genant.csv", "keypoints.csv", "overview.png", "report.html")


def segments_for(result: SpineResult, colour_by: str = "grade", scores: Optional[Dict[str, float]] = None):
    """One :class:`Segment` per vertebra, named by level.

    Args:
        result: the vertebrae.
        colour_by: ``"grade"`` (Genant grade colours) or ``"abnormality"`` (green 0 -> red 100).
        scores: abnormality per level overriding ``Vertebra.abnormality``.
    """
    if colour_by == "abnormality":
        return [
            Segment(label_from_level(v.label), v.label, abnormality_color((scores or {}).get(v.label, v.abnormality)))
            for v in result.vertebrae
        ]
    return [
        Segment(label_from_level(v.label), v.label, grade_color(v.measure.grade if v.measure else None))
        for v in result.vertebrae
    ]


def output_names(result: SpineResult):
    """The files :func:`write_outputs` may write for this result (CT or radiograph)."""
    return RADIOGRAPH_OUTPUT_FILES if result.frame == "pixel" else OUTPUT_FILES


def write_outputs(analysis, out_dir: Union[str, Path], *, overwrite: bool = False,
                  identity: Optional[Dict[str, str]] = None) -> Dict[str, Path]:
    """Write the outputs of an :class:`~VertebralFractureLib.pipeline.Analysis` (CT or radiograph).

    A radiograph result (frame ``"pixel"``) has no patient frame, so it gets ``keypoints.csv``
    (2D points) instead of the LPS markups and no segmentation; its overview shows the radiograph
    with an automatic window instead of the CT window.

    Args:
        analysis: the analysis (its ``result``, mid-sagittal image and labels are used).
        out_dir: the folder (created if needed).
        overwrite: replace existing files.
        identity: patient identity to put in the report (only when the user asked).

    Returns:
        File kind -> path written.

    Raises:
        ExistingFileError: if any output exists and ``overwrite`` is False (nothing is written).
    """
    from ..io.csv_tables import write_genant_csv, write_keypoints_csv
    from ..io.mrk_json import centroids_list, keypoints_list, write_markups_json
    from .overview import CT_WINDOW, render_overview
    from .report import render_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result: SpineResult = analysis.result
    pixel = result.frame == "pixel"
    existing = [name for name in output_names(result) if (out / name).exists()]
    if existing and not overwrite:
        raise ExistingFileError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    written: Dict[str, Path] = {}
    written["results"] = atomic_write(out / "results.json", result.to_json(), overwrite=overwrite)
    written["genant"] = write_genant_csv(result, out / "genant.csv", overwrite=overwrite)
    if pixel:
        written["keypoints"] = write_keypoints_csv(result, out / "keypoints.csv", overwrite=overwrite)
    else:
        written["keypoints"] = write_markups_json(out / "keypoints.mrk.json", keypoints_list(result),
                                                  overwrite=overwrite)
        written["centroids"] = write_markups_json(out / "centroids.mrk.json", centroids_list(result),
                                                  overwrite=overwrite)
    if analysis.labels is not None and not pixel:
        written["segmentation"] = write_seg_nrrd(analysis.labels, segments_for(result), out / "segmentation.seg.nrrd",
                                                 overwrite=overwrite)
        if any(v.abnormality is not None for v in result.vertebrae):
            written["abnormality"] = write_seg_nrrd(analysis.labels, segments_for(result, "abnormality"),
                                                    out / "abnormality.seg.nrrd", overwrite=overwrite)
    if getattr(analysis, "fracture_map", None) is not None:
        from ..io.images import write_image

        written["fracture_map"] = write_image(analysis.fracture_map, out / "fracture_map.nii.gz", overwrite=overwrite)
    if analysis.mid_sagittal is not None:
        written["overview"] = render_overview(
            analysis.mid_sagittal, analysis.mid_points, result, out / "overview.png",
            spacing=analysis.mid_spacing, window=None if pixel else CT_WINDOW,
            title=str(result.input.get("path", "")), overwrite=overwrite,
        )
    written["report"] = render_report(result, out / "report.html", overview_png=written.get("overview"),
                                      identity=identity, overwrite=overwrite)
    return written
