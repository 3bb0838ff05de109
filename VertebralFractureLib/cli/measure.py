"""``vertebral-fracture measure MASK --out DIR``: Genant measures and abnormality from a vertebra mask alone.

No CT is needed. The mask holds VerSe labels (whole vertebrae, e.g. VerSe or TotalSegmentator
remapped, or vertebral bodies). Writes the same ``results.json``, ``genant.csv`` and markups
(``keypoints.mrk.json``, ``centroids.mrk.json``) as ``analyze``, plus ``segmentation.seg.nrrd``
(coloured by Genant grade), ``abnormality.seg.nrrd`` (coloured green 0 -> red 100 by the
abnormality score of Botros et al. 2022) and ``keypoints.png`` (the mid-sagittal slice with the six
keypoints and an abnormality legend).
"""

from __future__ import annotations

import argparse
import sys

#: Largest extent (mm) of one vertebra label: C1 and the lumbar transverse processes span 80-100 mm.
MAX_VERTEBRA_EXTENT_MM = 150.0
#: Centre distance per level between neighbouring labels: lumbar levels are 35-40 mm apart (body
#: 25-30 mm + disc 10-12 mm; Panjabi et al. 1992), cervical 15-18 mm; 60 mm is 1.5 x the largest,
#: 5 mm a third of the smallest (two labels on one vertebra are closer).
LEVEL_DISTANCE_MM = (5.0, 60.0)
#: More distinct values than any label scheme defines (TotalSegmentator v2: 117) means intensities.
MAX_DISTINCT_LABELS = 200
#: Fraction of the labelled voxels that must lie inside the CT when one is given.
MIN_INSIDE_CT = 0.5


def _image_values(array, source: str):
    """Non-zero label values of an array, checked to be small non-negative integers (not HU)."""
    import numpy as np

    from ..io.label_schemes import SegmentationError

    low, high = float(array.min()), float(array.max())
    if array.dtype.kind == "f":
        values = np.unique(array)
        integral = bool(np.all(np.isfinite(values)) and np.all(values == np.round(values)))
    else:
        flat = array.ravel() if low >= 0 else (array.ravel() - int(low)).astype(np.int64)
        values = np.unique(array) if high - low > 65535 else np.flatnonzero(np.bincount(flat)) + int(min(low, 0))
        integral = True
    if low < 0 or not integral or len(values) > MAX_DISTINCT_LABELS + 1:
        kind = "not integers" if not integral else f"{len(values)} distinct"
        raise SegmentationError(f"{source}: values {low:g} to {high:g} ({kind}) look like image intensities (HU), "
                                "not labels; pass a label mask (0 = background, one integer per structure)")
    return [int(v) for v in values if v != 0]


def _label_facts(array, geometry, labels):
    """Per label: voxel count, LPS centroid, bounding-box extent (mm), touches the border."""
    import numpy as np
    from scipy import ndimage

    flat = array.ravel()
    foreground = np.flatnonzero(flat)
    values = flat[foreground].astype(np.int64)
    counts = np.bincount(values, minlength=max(labels) + 1)
    kji = np.unravel_index(foreground, array.shape)
    sums = [np.bincount(values, weights=axis.astype(float), minlength=counts.size) for axis in kji]
    boxes = ndimage.find_objects(array.astype(np.int32) if array.dtype.kind == "f" else array)
    facts = {}
    for v in labels:
        index = np.array([sums[2][v], sums[1][v], sums[0][v]]) / counts[v]
        box = boxes[v - 1]
        low = np.array([s.start for s in box][::-1], float)
        high = np.array([s.stop - 1 for s in box][::-1], float)
        corners = np.array([[a, b, c] for a in (low[0], high[0]) for b in (low[1], high[1]) for c in (low[2], high[2])])
        lps = geometry.index_to_lps(corners)
        border = any(s.start == 0 or s.stop == n for s, n in zip(box, array.shape))
        facts[v] = {"count": int(counts[v]), "centroid": geometry.index_to_lps(index),
                    "extent_mm": float(np.max(lps.max(axis=0) - lps.min(axis=0))) + max(geometry.spacing),
                    "border": border}
    return facts


def check_plausible_vertebrae(verse_array, geometry, source: str = "mask") -> None:
    """Refuse labels that cannot be vertebrae: size, extent and distance to the neighbouring levels.

    Labels touching the image border may be fragments (cut by the field of view): they are left to
    the measurement, which marks them not assessed.

    Raises:
        SegmentationError: one line naming the label and the value that fails.

    """
    import numpy as np

    from ..io.label_schemes import SegmentationError
    from ..levels import level_from_label, level_index
    from ..shape.measure import MAX_VERTEBRA_MM3, MIN_VERTEBRA_MM3

    labels = [int(v) for v in np.flatnonzero(np.bincount(verse_array.ravel())) if v != 0]
    if not labels:
        raise SegmentationError(f"{source}: the mask holds no vertebra")
    facts = _label_facts(verse_array, geometry, labels)
    voxel = float(np.prod(geometry.spacing))
    for v in labels:
        level, fact = level_from_label(v), facts[v]
        volume = fact["count"] * voxel
        if volume < MIN_VERTEBRA_MM3 and not fact["border"]:
            raise SegmentationError(f"{source}: {level} is {volume:.0f} mm^3, too small for a vertebra "
                                    f"(at least {MIN_VERTEBRA_MM3:.0f} mm^3 expected)")
        if volume > MAX_VERTEBRA_MM3:
            raise SegmentationError(f"{source}: {level} is {volume / 1000:.0f} cm^3, too large for a vertebra "
                                    f"(at most {MAX_VERTEBRA_MM3 / 1000:.0f} cm^3 expected)")
        if fact["extent_mm"] > MAX_VERTEBRA_EXTENT_MM:
            raise SegmentationError(f"{source}: {level} spans {fact['extent_mm']:.0f} mm, too large for a vertebra "
                                    f"(at most {MAX_VERTEBRA_EXTENT_MM:.0f} mm expected)")
    ordered = sorted(labels, key=lambda v: level_index(level_from_label(v)))
    for a, b in zip(ordered, ordered[1:]):
        steps = level_index(level_from_label(b)) - level_index(level_from_label(a))
        steps -= sum(1 for name in ("T13", "L6") if level_index(level_from_label(a)) < level_index(name)
                     < level_index(level_from_label(b)))
        distance = float(np.linalg.norm(facts[a]["centroid"] - facts[b]["centroid"]))
        per_level = distance / max(steps, 1)
        if not LEVEL_DISTANCE_MM[0] <= per_level <= LEVEL_DISTANCE_MM[1]:
            raise SegmentationError(
                f"{source}: {level_from_label(a)} and {level_from_label(b)} are {distance:.0f} mm apart "
                f"({per_level:.0f} mm per level; {LEVEL_DISTANCE_MM[0]:.0f}-{LEVEL_DISTANCE_MM[1]:.0f} mm expected)")


def check_overlap_with_ct(mask_image, reference_ct, source: str = "mask") -> None:
    """Refuse a mask whose labelled voxels lie mostly outside the CT (another patient frame or origin).

    Raises:
        SegmentationError: one line with the fraction inside and the two centres.

    """
    import numpy as np
    import SimpleITK as sitk

    from ..io.images import geometry_of
    from ..io.label_schemes import SegmentationError

    mask_geometry, ct_geometry = geometry_of(mask_image), geometry_of(reference_ct)
    array = sitk.GetArrayViewFromImage(mask_image)
    kji = np.argwhere(array)
    if len(kji) == 0:
        return
    kji = kji[:: max(1, len(kji) // 20000)]
    points = mask_geometry.index_to_lps(kji[:, ::-1].astype(float))
    index = ct_geometry.lps_to_index(points)
    size = np.asarray(ct_geometry.size, float)
    inside = np.all((index >= -0.5) & (index <= size - 0.5), axis=1)
    if inside.mean() < MIN_INSIDE_CT:
        corners = ct_geometry.index_to_lps(np.array([[0, 0, 0], size - 1]))
        centre = 0.5 * corners.sum(axis=0)
        hint = ("; same array size as the CT, so its header (origin, spacing, direction) is probably lost"
                if tuple(mask_image.GetSize()) == tuple(reference_ct.GetSize()) else "")
        raise SegmentationError(
            f"{source}: only {100 * inside.mean():.0f} % of the labelled voxels lie inside the CT (mask centre "
            f"{np.round(points.mean(axis=0)).astype(int).tolist()} mm, "
            f"CT centre {np.round(centre).astype(int).tolist()} mm, LPS); "
            f"the mask must be in the CT's patient coordinates{hint}")


def _read_folder(folder, files=None):
    """TotalSegmentator's folder output, or single-structure files named by level, as one VerSe image.

    The folder holds one ``vertebrae_<level>.nii.gz`` per vertebra (other structures are ignored);
    ``files`` is a list of single-structure files whose names give the levels. The image is on the
    first file's grid.
    """
    import numpy as np
    import SimpleITK as sitk

    from ..io.images import image_from_array, read_image, resample_like
    from ..io.label_schemes import SegmentationError, level_of_name
    from ..levels import label_from_level

    if files is None:
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().startswith("vertebrae_")
                       and level_of_name(p.name))
        if not files:
            raise SegmentationError(f"{folder}: no vertebrae_<level>.nii.gz file (TotalSegmentator's folder output) "
                                    "in this folder")
    unnamed = [p.name for p in files if level_of_name(p.name) is None]
    if unnamed:
        raise SegmentationError(f"{unnamed[0]}: with several mask files, each file name must give its level "
                                "(e.g. vertebrae_L1.nii.gz)")
    levels = [level_of_name(p.name) for p in files]
    if len(set(levels)) != len(levels):
        raise SegmentationError(f"two files name the same level: {', '.join(p.name for p in files)}")
    first = read_image(files[0])
    out = np.zeros(sitk.GetArrayViewFromImage(first).shape, np.uint8)
    for path in files:
        image = read_image(path)
        if image.GetSize() != first.GetSize() or image.GetOrigin() != first.GetOrigin():
            image = resample_like(image, first, nearest=True)
        out[sitk.GetArrayViewFromImage(image) > 0] = label_from_level(level_of_name(path.name))
    from ..io.images import geometry_of

    return image_from_array(out, geometry_of(first)), f"folder of {len(files)} vertebrae_<level> files"


def _seg_nrrd_levels(image):
    """Slicer ``.seg.nrrd`` segment names -> {label value: level} (names that give no level are skipped)."""
    from ..io.label_schemes import level_of_name

    keys = set(image.GetMetaDataKeys())
    out, index = {}, 0
    while f"Segment{index}_Name" in keys:
        name = image.GetMetaData(f"Segment{index}_Name")
        value_key = f"Segment{index}_LabelValue"
        value = int(image.GetMetaData(value_key)) if value_key in keys else index + 1
        level = level_of_name(name)
        if level is not None:
            out[value] = level
        index += 1
    return out if index else None


def read_segmentation(path, scheme=None, reference_ct=None):
    """Read a vertebra segmentation in any supported form, check it and return it in VerSe labels.

    Forms: a multi-label file (numbering ``scheme``: ``verse`` by default, ``totalsegmentator``,
    ``totalsegmentator-v1``; see :mod:`VertebralFractureLib.io.label_schemes`), TotalSegmentator's
    folder output (``vertebrae_L1.nii.gz`` ... ; other structures ignored), a single-structure file
    whose name gives the level (``vertebrae_L1.nii.gz``, ``L1.nrrd``), or a Slicer ``.seg.nrrd`` whose
    segment names give the levels.

    Checks, before anything is measured or written: integer labels, not HU; a label scheme that
    explains every label, in cranio-caudal order in the image; every vertebra plausible (size, extent,
    distance to its neighbours; :func:`check_plausible_vertebrae`); with ``reference_ct``, the labelled
    voxels inside the CT (:func:`check_overlap_with_ct`).

    Args:
        path: file or folder, or a list of single-structure files whose names give the levels.
        scheme: label scheme name, or None (VerSe unless ambiguous).
        reference_ct: SimpleITK CT image the mask belongs to, or None.

    Returns:
        ``(image, description)``: a uint8 SimpleITK image with VerSe labels on the mask's grid and a
        short description of what was read (for ``results.json``'s ``input``).

    Raises:
        SegmentationError: one line saying what is wrong (``vertebral-fracture`` exits with 2).
        ImageReadError: when the file cannot be read.

    """
    from pathlib import Path

    import numpy as np
    import SimpleITK as sitk

    from ..io.images import geometry_of, image_from_array, read_image
    from ..io.label_schemes import SegmentationError, choose_scheme, level_of_name, to_verse
    from ..levels import label_from_level

    if isinstance(path, (list, tuple)):
        if len(path) == 1:
            path = path[0]
        else:
            image, description = _read_folder(None, [Path(p) for p in path])
            description = f"{len(path)} single-structure files named by level"
            if reference_ct is not None:
                check_overlap_with_ct(image, reference_ct, "the mask files")
            verse = sitk.GetArrayFromImage(image)
            check_plausible_vertebrae(verse, geometry_of(image), "the mask files")
            return image, description
    path = Path(path)
    source = path.name
    if path.is_dir():
        image, description = _read_folder(path)
        verse = sitk.GetArrayFromImage(image)
        geometry = geometry_of(image)
    else:
        image = read_image(path)
        if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
            raise SegmentationError(f"{source}: a vertebra mask must be a 3D single-component label image")
        array = sitk.GetArrayFromImage(image)
        geometry = geometry_of(image)
        values = _image_values(array, source)
        named = _seg_nrrd_levels(image) if path.name.lower().endswith(".seg.nrrd") else None
        level = level_of_name(path.name)
        if named:
            lookup = np.zeros(max(values + list(named)) + 1, np.uint8)
            for value, name in named.items():
                lookup[value] = label_from_level(name)
            verse = lookup[array.astype(np.int64)]
            description = f"Slicer segmentation, {len(named)} segments named by level"
        elif len(values) == 1 and level is not None:
            verse = np.where(array != 0, label_from_level(level), 0).astype(np.uint8)
            description = f"single structure {level} (from the file name)"
        else:
            facts = _label_facts(array, geometry, values) if values else {}
            chosen = choose_scheme(values, scheme, {v: f["centroid"] for v, f in facts.items()}, source)
            verse = to_verse(array, chosen)
            description = f"multi-label, {chosen.name} numbering"
        if reference_ct is not None:
            check_overlap_with_ct(image, reference_ct, source)
    if reference_ct is not None and path.is_dir():
        check_overlap_with_ct(image, reference_ct, source)
    check_plausible_vertebrae(verse, geometry, source)
    return image_from_array(verse.astype(np.uint8), geometry), description


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``measure`` sub-command."""
    from . import plain_text

    parser = subparsers.add_parser(
        "measure",
        help="measure vertebrae (six keypoints, Genant G, grade) and their abnormality from a label mask, no CT",
        description=plain_text(__doc__),
    )
    parser.add_argument("mask", nargs="+", help="vertebra label mask (NIfTI/NRRD; multi-label, one file per level "
                        "named vertebrae_L1.nii.gz, Slicer .seg.nrrd) or TotalSegmentator's output folder")
    parser.add_argument("--label-scheme", default=None, choices=("verse", "totalsegmentator", "totalsegmentator-v1"),
                        help="numbering of a multi-label mask (default: VerSe; an ambiguous label set is refused)")
    parser.add_argument("--ct", default=None, help="optional CT of the mask: refused when the mask lies outside it")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--body-mask", help="optional vertebral-body mask on the same grid (VerSe labels, "
                        "TPTBox sub-regions 49/50, or binary)")
    parser.add_argument("--no-abnormality", action="store_true", help="skip the abnormality score (no torch needed)")
    parser.add_argument("--weights", default=None, help="abnormality model weights (default: shipped)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help="where the model runs")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Measure, score and write the outputs."""
    from pathlib import Path

    from ..export.mask_figure import abnormality_segments, render_keypoints_figure
    from ..export.outputs import segments_for
    from ..export.segmentation import write_seg_nrrd
    from ..io.atomic import atomic_write
    from ..io.csv_tables import write_genant_csv
    from ..io.images import read_image
    from ..io.mrk_json import write_result_markups
    from ..shape.measure import measure_from_mask
    from . import CommandError

    reference = read_image(args.ct) if args.ct else None
    mask, description = read_segmentation(args.mask, args.label_scheme, reference)
    body = read_image(args.body_mask) if args.body_mask else None
    out = Path(args.out)
    names = ["results.json", "genant.csv", "keypoints.mrk.json", "centroids.mrk.json", "segmentation.seg.nrrd",
             "keypoints.png"] + ([] if args.no_abnormality else ["abnormality.seg.nrrd"])
    existing = [name for name in names if (out / name).exists()]
    if existing and not args.overwrite:
        raise CommandError(f"{out} already holds {', '.join(existing)}; pass --overwrite to replace them")
    result = measure_from_mask(mask, body)
    result.input["path"] = ", ".join(Path(p).name for p in args.mask)
    result.input["segmentation"] = description
    if not args.no_abnormality:
        from ..nn.weights import WeightsError
        from ..shape.score import AbnormalityModel, abnormality_scores

        try:
            model = AbnormalityModel.load(args.weights or "abnormality_shape.pt", device=args.device)
            abnormality_scores(mask, result, model, body_mask=body)
        except WeightsError as error:
            result.warnings.append(f"abnormality: {error}; skipped")
    out.mkdir(parents=True, exist_ok=True)
    written = {"results": atomic_write(out / "results.json", result.to_json(), overwrite=True),
               "genant": write_genant_csv(result, out / "genant.csv", overwrite=True)}
    written["keypoints"], written["centroids"] = write_result_markups(
        result, out / "keypoints.mrk.json", out / "centroids.mrk.json", overwrite=True)
    written["segmentation"] = write_seg_nrrd(mask, segments_for(result), out / "segmentation.seg.nrrd", overwrite=True)
    if not args.no_abnormality:
        written["abnormality"] = write_seg_nrrd(mask, abnormality_segments(result), out / "abnormality.seg.nrrd",
                                                overwrite=True)
    written["figure"] = render_keypoints_figure(mask, result, out / "keypoints.png",
                                                title=f"{result.input['path'][:60]}: mask-derived keypoints")
    for v in result.vertebrae:
        m = v.measure
        score = f"  abnormality {v.abnormality:5.1f}" if v.abnormality is not None else ""
        if m is not None:
            print(f"{v.label:4s} h = {m.heights[0]:5.1f} {m.heights[1]:5.1f} {m.heights[2]:5.1f} mm  "
                  f"G = {m.G:.3f}  grade {m.grade} {m.type:9s}{score}")
        elif not v.assessed:
            print(f"{v.label:4s} not assessed: {v.status_reason}")
    for kind, path in written.items():
        print(f"  {kind:13s} {path}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
