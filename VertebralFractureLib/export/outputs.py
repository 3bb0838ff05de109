"""Write every output of one analysis into a folder (``vertebral-fracture analyze --out DIR``).

Files: ``results.json`` (schema ``vertebral-fracture/1``), ``genant.csv``, ``keypoints.mrk.json``
and ``centroids.mrk.json`` (Slicer markups, LPS), ``segmentation.seg.nrrd`` (one segment per
vertebra coloured by Genant grade), ``abnormality.seg.nrrd`` (the same, coloured by abnormality
0-100 from green to red, when scored), ``fracture_map.nii.gz`` (voxel fracture probability of
Nicolaes et al. 2019 on a band around the spine, when computed), ``overview.png`` and ``report.html``.

The files are written as one unit (:class:`~VertebralFractureLib.io.atomic.AtomicSet`): each to a
temporary name, fsynced and read back, then all renamed; a failed or interrupted export leaves the
previous complete set (or nothing), and outputs of a previous run that this run does not write are
removed, so a folder never mixes two analyses. Existing files are only replaced with
``overwrite=True``, checked for all files before anything is written (:func:`check_output_folder`
makes the same checks before an analysis starts).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

from ..colors import abnormality_color, grade_color
from ..io.atomic import AtomicSet, ExistingFileError
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
#: Every name an analysis may have written into a folder (removed when a new set replaces an old one).
ALL_OUTPUT_FILES = tuple(dict.fromkeys(OUTPUT_FILES + RADIOGRAPH_OUTPUT_FILES))
#: Free space asked of the output folder before an analysis, beyond twice the input's size.
MIN_FREE_BYTES = 16 << 20
#: Temporaries of earlier versions (``.overview-x1y2z3w4.png``) left by a kill; removed before writing.
_OLD_STEMS = "|".join(sorted({name.split(".")[0] for name in ALL_OUTPUT_FILES}))
_OLD_TEMPORARY = re.compile(rf"^\.({_OLD_STEMS})-[A-Za-z0-9_]{{8}}\..+$")


class OutputFolderError(ValueError):
    """The output folder cannot take the outputs (a file, not writable, full, or holding outputs)."""


def _existing_ancestor(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_folder(out_dir: Union[str, Path], names: Sequence[str] = OUTPUT_FILES, *, overwrite: bool = False,
                        expected_bytes: int = 0) -> Path:
    """Check, before any work, that ``out_dir`` can take the outputs; nothing is created.

    Args:
        out_dir: the output folder (need not exist yet).
        names: the files the run will write.
        overwrite: whether existing outputs may be replaced.
        expected_bytes: an estimate of the outputs' size (free space needed beyond ``MIN_FREE_BYTES``).

    Raises:
        OutputFolderError: naming the folder and the problem (a file, not writable, too little space).
        ExistingFileError: if outputs exist and ``overwrite`` is False.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder; choose a folder for --out")
    base = _existing_ancestor(out)
    if not base.is_dir():
        raise OutputFolderError(f"{out}: cannot be created ({base} is not a folder)")
    try:
        handle, probe = tempfile.mkstemp(prefix=".vf-tmp-probe-", dir=base)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise OutputFolderError(f"{out}: cannot write there ({error.strerror or error})") from None
    free = shutil.disk_usage(base).free
    needed = MIN_FREE_BYTES + int(expected_bytes)
    if free < needed:
        raise OutputFolderError(f"{out}: only {free / 2**20:.1f} MB free, about {needed / 2**20:.0f} MB needed "
                                "for the outputs")
    if out.is_dir():
        existing = [name for name in names if (out / name).exists()]
        if existing and not overwrite:
            raise ExistingFileError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    return out


def remove_old_temporaries(out_dir: Union[str, Path]) -> None:
    """Remove temporaries an earlier version left when killed (``.overview-XXXXXXXX.png``)."""
    out = Path(out_dir)
    if out.is_dir():
        for path in out.iterdir():
            if _OLD_TEMPORARY.match(path.name) and path.is_file():
                path.unlink()


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
        OutputFolderError: if ``out_dir`` is a file.
        OSError: if writing fails (disk full, permissions); the folder keeps its previous outputs.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    result: SpineResult = analysis.result
    pixel = result.frame == "pixel"
    existing = [name for name in output_names(result) if (out / name).exists()]
    if existing and not overwrite:
        raise ExistingFileError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    remove_old_temporaries(out)
    with AtomicSet(out, overwrite=overwrite, replaces=ALL_OUTPUT_FILES if overwrite else ()) as files:
        _write_into(files, analysis, pixel, identity)
    return {_KINDS[name]: path for name, path in files.written.items()}


_KINDS = {"results.json": "results", "genant.csv": "genant", "keypoints.csv": "keypoints",
          "keypoints.mrk.json": "keypoints", "centroids.mrk.json": "centroids",
          "segmentation.seg.nrrd": "segmentation", "abnormality.seg.nrrd": "abnormality",
          "fracture_map.nii.gz": "fracture_map", "overview.png": "overview", "report.html": "report"}


def _write_into(files: AtomicSet, analysis, pixel: bool, identity: Optional[Dict[str, str]]) -> None:
    """Write every output of ``analysis`` to the set's temporary paths (renamed together at commit)."""
    from ..io.csv_tables import write_genant_csv, write_keypoints_csv
    from ..io.mrk_json import centroids_list, keypoints_list, write_markups_json
    from .overview import CT_WINDOW, render_overview
    from .report import render_report

    result: SpineResult = analysis.result
    files.write("results.json", result.to_json())
    write_genant_csv(result, files.path("genant.csv"), overwrite=True)
    if pixel:
        write_keypoints_csv(result, files.path("keypoints.csv"), overwrite=True)
    else:
        write_markups_json(files.path("keypoints.mrk.json"), keypoints_list(result), overwrite=True)
        write_markups_json(files.path("centroids.mrk.json"), centroids_list(result), overwrite=True)
    if analysis.labels is not None and not pixel:
        write_seg_nrrd(analysis.labels, segments_for(result), files.path("segmentation.seg.nrrd"), overwrite=True)
        if any(v.abnormality is not None for v in result.vertebrae):
            write_seg_nrrd(analysis.labels, segments_for(result, "abnormality"), files.path("abnormality.seg.nrrd"),
                           overwrite=True)
    if getattr(analysis, "fracture_map", None) is not None:
        from ..io.images import write_image

        write_image(analysis.fracture_map, files.path("fracture_map.nii.gz"), overwrite=True)
    overview = None
    if analysis.mid_sagittal is not None:
        overview = render_overview(
            analysis.mid_sagittal, analysis.mid_points, result, files.path("overview.png"),
            spacing=analysis.mid_spacing, window=None if pixel else CT_WINDOW,
            title=str(result.input.get("path", "")), overwrite=True, plane=getattr(analysis, "mid_caption", None),
        )
    render_report(result, files.path("report.html"), overview_png=overview, identity=identity, overwrite=True,
                  sagittal=(analysis.mid_sagittal, analysis.mid_points, analysis.mid_spacing),
                  window=None if pixel else CT_WINDOW,
                  strip_plane=getattr(analysis, "mid_plane", None)
                  or ("lateral view as acquired" if pixel else "straightened mid-sagittal plane"))
