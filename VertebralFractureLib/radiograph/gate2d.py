"""Quality gate for vertebrae found on a 2D lateral image: never grade what the image does not show.

Same statuses and rule as the CT gate (:mod:`VertebralFractureLib.quality.gate`): every check
scores 0-1 with 0.5 the pass mark; one failed **hard** check gives ``not_assessed`` with that
check's reason (the first in :data:`HARD_CHECKS` order); ``quality = min(hard) x mean(soft)``,
capped at 0.49 when not assessed. Everything is measured on the body-windowed image of
:func:`body_window` (0 = 1st, 1 = 99.5th percentile of the patient region), so the same
thresholds serve HU images and 8-bit films.

A vertebral body on a lateral view is a bright-rimmed quadrilateral with dark discs above and
below, posterior to the abdominal contents, in a column with its neighbours (Genant et al. 1993;
the radiographic anatomy of any lateral spine film). Checks and where their thresholds come from:

* ``field_of_view``: every keypoint at least 10 % of the body height inside the image (a cut body
  cannot be measured; 10 % of a 25 mm body is the CT gate's 2 mm margin plus a pixel).
* ``position``: along the body's row, the centre lies in the posterior part of the patient's
  outline (the foreground run through it, air enclosed by the patient -- lungs, bowel gas --
  counted as patient, :func:`patient_outline`): relative position from the anterior skin
  scores 0 at 0.30 and 1 at 0.50 (pass 0.40). Anatomy: the lumbar and thoracic body centres lie
  at 55-75 % of the trunk's antero-posterior depth (the aorta, bowel and abdominal wall are in
  front); the anterior abdominal wall, bowel loops and sternum lie at < 30 %. Absent (not
  scored) when the outline is not in view (the foreground run reaching an image edge: a collimated
  film, a cut view), column 0 is taken as anterior as everywhere in this package.
* ``bone``: the endplate rim (75th percentile of the +-6 % bands around both endplates) brighter
  than the disc bands above and below (median, 8-22 % of the body height beyond the endplate):
  contrast scores 0 at 0.02 and 1 at 0.10 of the window (pass 0.06). HU scale: the window of
  a CT trunk is about -150 ... 900 HU, so 0.06 is about 60 HU -- the CT gate's rim-minus-core
  pass mark (30 HU at 3 mm, more at the 1 mm of a sagittal slice); endplate cortex partial-
  volumed at 1 mm is >= 300 HU against 70-100 HU disc (0.2 of the window). Fat, bowel and the
  abdominal wall have no such step between a band and the bands above and below it.
* ``column``: the body belongs to the spine column, the largest chain of bodies linked to a
  neighbour 0.6-3.5 body heights above or below (one to three levels; body + disc is about
  1.2-1.45 body heights, Panjabi et al. 1991, 1992), offset sideways by no more than half that
  distance plus 30 % of the body depth (lordosis, kyphosis), heights within a factor 2 (the CT
  gate's neighbour ratio). A chain needs 3 bodies; an isolated box fails. The chain is seeded by bodies that
  pass the bone check; with no three of them in a chain, a *faint column* (:func:`faint_column`: a run of at
  least four bodies one level apart, two of them bone-confirmed) is kept, its unseen bodies not assessed
  (a film with the iliac wings over L4-L5: ``benchmarks/bench_real_drr.py``).
* ``overlap``: two column members whose extents along the column (mean superior to mean inferior
  endplate row) overlap by more than 25 % of the smaller height cannot both be vertebral bodies:
  neighbouring bodies are separated by a disc (4-12 mm, Panjabi et al. 1991, 1992), so they never
  overlap craniocaudally. The one farther from the column line (below) leaves the column (it would
  take a level of its own, shifting every level name after it) and is listed as rejected with this
  reason; score 1 at no overlap, 0 at half the smaller height.
* ``in_line``: the body centre lies on the smooth line through the other bodies of the column. The
  line is a least-squares curve (quadratic with four points, else straight) through the two nearest
  *anchor* bodies above and the two below (anchors: column members passing the position and bone
  checks, within 4 body heights), and the offset is measured across it in units of the column's
  median body depth, posterior being where the posterior keypoints lie (so a mirrored view works
  too). Only a posterior offset fails: the posterior elements
  (pedicles, facets, laminae) begin at the posterior wall, half a depth behind the body centre, so
  a box drawn on them lies at least half a depth behind the line, while a retrolisthesis displaces a
  body by a few mm (well under a quarter of the depth); anterior boxes are the ``position`` check's.
  Score 1 at 0.25 depth, 0 at 0.75 (pass 0.5); beyond the end of the column (two anchors on one
  side only, extrapolated: the lordosis and the lumbosacral angle bend the line) 1 at 0.5, 0 at 1.0
  (pass 0.75). The worst failing body is taken out of the anchors and the rest measured again, so
  two adjacent posterior boxes do not hide each other. Absent when there are not enough anchors.
  Measured on the 20 real sagittal images (HU and 8-bit), every detection matched to an annotated
  body lies within 0.5 depth of its line once the line is anchored on bone-confirmed bodies.
* ``endplates``: at each of the six keypoints, the strongest step along the body axis within
  +-30 % of the height (dark-to-bright into the body) lies within 8 % of the height (about 2 mm,
  the CT gate's tolerance) of the point; score = fraction of the six points, pass 0.5. The search
  reaches past the disc's near half only (discs are 20-45 % of the body height, Panjabi et al. 1991,
  1992), where the neighbour's endplate is a step of the other sign. It was +-15 % until a box drawn
  a quarter of its height inside a real body (the true edges outside the search, trabecular noise
  inside it taken for them) passed and was graded 2 as a crush; with +-30 % every false grade >= 2
  on the real sagittal slices (1 or 2 in each of HU, 8-bit, mirrored, framed before) is gone, 74 -> 64 of
  them graded (HU), generated views unchanged (``benchmarks/bench_sagittal.py``,
  ``benchmarks/bench_radiograph.py``).
* ``level``: sacral or unknown levels are not graded (Genant et al. 1993; CT gate rule).
* ``placed`` (only on a body placed above the column by :mod:`.column_template`, always 0): its outline is the body
  below moved one level up, not a measurement, so it counts for the level and is never graded.
* soft ``shape``: depth / largest height 0.8-2.5 scores 1 (normal bodies 1.1-1.6; a grade-3 crush
  keeps 40 % of its height), 0 at 0.5 and 4.

The thresholds were set from the anatomy and HU physics above, before the real sagittal images
were run; none was tuned on a value a test asserts. The endplate search width was widened after a
false grade on those images (see ``endplates``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ASSESSED = "assessed"
NOT_ASSESSED = "not_assessed"
HARD_CHECKS = ("level", "placed", "field_of_view", "position", "overlap", "in_line", "bone", "column", "endplates")
SOFT_CHECKS = ("shape",)
#: Posterior offset from the column line (median body depths) scoring 1 and 0 (``in_line``), between the
#: anchors above and below and beyond the end of the column.
IN_LINE_DEPTHS = (0.25, 0.75)
IN_LINE_DEPTHS_END = (0.5, 1.0)
#: Craniocaudal overlap of two column members (fraction of the smaller height) scoring 1 and 0 (``overlap``).
OVERLAP_FRACTION = (0.0, 0.5)
#: Anchors for the column line are looked for within this many body heights above and below (about 3 levels).
LINE_REACH_HEIGHTS = 4.0
#: Percentiles of the patient region that map to 0 and 1 (:func:`body_window`).
WINDOW_PERCENTILES = (1.0, 99.5)
#: :func:`background_in_view`: the band (fraction of the image's range) above its darkest values that holds
#: flat background, and the fraction of the darker Otsu class that must lie in it.
BACKGROUND_FLAT_RANGE = 0.05
BACKGROUND_FLAT_FRACTION = 0.5
#: Longest run of bone-failed boxes left out at an end of the column (:func:`column_ends`): below S1 the sacrum
#: has three or four short fused segments (S2-S5), which give the detector at most two boxes on the real slices; a
#: longer run of bodies failing the bone check is a column the window shows poorly (the lungs behind a thoracic
#: spine, thin osteoporotic bone) and its bodies are kept, not assessed.
MAX_END_RUN = 2
#: :func:`collimation_mask`: flatness band at the bright end (fraction of the range) and least area (fraction of the
#: picture) of a collimator's shadow.
COLLIMATION_FLAT = 0.01
COLLIMATION_MIN_AREA = 0.01
#: Least width of a collimator's shadow (fraction of the picture's short side): a band, wider than any cortex.
COLLIMATION_MIN_WIDTH = 0.02
#: ``foreground`` of a view with no background in it: every pixel is inside the patient.
NO_BACKGROUND = -1.0


@dataclass
class Finding2D:
    """The gate's verdict on one 2D vertebra (see :class:`VertebralFractureLib.quality.gate.GateFinding`)."""

    status: str
    reason: Optional[str]
    quality: float
    checks: Dict[str, float]
    values: Dict[str, float] = field(default_factory=dict)


def otsu_threshold(image: np.ndarray, bins: int = 256) -> float:
    """Otsu's (1979) threshold between background (air, collimation) and patient."""
    values = np.asarray(image, dtype=np.float64).ravel()
    hist, edges = np.histogram(values, bins=bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    weight = np.cumsum(hist).astype(np.float64)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    w0, w1 = weight[:-1], total - weight[:-1]
    ok = (w0 > 0) & (w1 > 0)
    between = np.zeros_like(w0)
    m0 = mean[:-1][ok] / w0[ok]
    m1 = (mean[-1] - mean[:-1][ok]) / w1[ok]
    between[ok] = w0[ok] * w1[ok] * (m0 - m1) ** 2
    return float(edges[1:][int(np.argmax(between))])


def collimation_mask(image: np.ndarray) -> np.ndarray:
    """Pixels of the collimator's shadow: flat, saturated bright regions reaching the image's edge.

    Where the collimator (or a shutter) blocks the beam the detector receives nothing, and a film or an
    export shows it at the bright end, the brightness of bone or above, flat and bounded by straight edges
    at the sides of the picture. Taken for patient, it made the window's 99.5th percentile that of the
    shadow, and a real slice given white borders lost its sacral anchor or every vertebra. A region is
    collimation when its pixels lie within :data:`COLLIMATION_FLAT` of the range from the image's maximum,
    it is at least :data:`COLLIMATION_MIN_WIDTH` of the picture wide everywhere (a morphological opening: an
    8-bit export saturates cortical bone too, in rims a few pixels thick that may touch the shadow), it touches
    the image's edge and it covers at least :data:`COLLIMATION_MIN_AREA` of the picture (bone, contrast and
    metal are bright but do not form such sheets along the edge).

    Returns:
        boolean mask, True on the collimator's shadow (all False when there is none).
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float32)
    low, high = float(np.percentile(image, 0.5)), float(image.max())
    if high <= low:
        return np.zeros(image.shape, dtype=bool)
    flat = image >= high - COLLIMATION_FLAT * (high - low)
    # a sheet, not a rim: an opening removes saturated cortex and other thin bright structures joined to it
    width = max(3, int(round(COLLIMATION_MIN_WIDTH * min(image.shape))))
    flat = ndimage.grey_opening(flat.astype(np.uint8), size=(width, width)).astype(bool)  # separable: fast on films
    labels, count = ndimage.label(flat)
    if count == 0:
        return np.zeros(image.shape, dtype=bool)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    shadow = [int(k) for k in edge if k and sizes[k] >= COLLIMATION_MIN_AREA * image.size]
    return np.isin(labels, shadow) if shadow else np.zeros(image.shape, dtype=bool)


def without_collimation(image: np.ndarray) -> np.ndarray:
    """The image with the collimator's shadow (:func:`collimation_mask`) set to its darkest values, as air."""
    image = np.asarray(image, dtype=np.float32)
    shadow = collimation_mask(image)
    if not shadow.any():
        return image
    out = image.copy()
    out[shadow] = float(np.percentile(image[~shadow], 0.5))
    return out


#: :func:`scanned_rows`: a row holds the patient when at least this fraction of its pixels lies above Otsu's threshold
#: (a few noise or JPEG-ringing pixels in the padding do not make a row part of the scan).
SCANNED_ROW_FRACTION = 0.01


def scanned_rows(image: np.ndarray) -> Optional[Tuple[int, int]]:
    """First and last rows that hold the patient, when whole rows at the top or bottom hold only background.

    A sagittal CT reformat is padded beyond the scanned range (rows of the reconstruction's fill value, -1024 HU or
    its 8-bit 0) and a film or an export may carry empty rows too; the anatomy ends where the scan ends, as it does
    at the picture's edge. Without this the lumbosacral classifier read a real thoracic slice whose scan ended a
    level below its lowest body (padding below) as L5 above a sacrum (0.87) and named every level wrong with
    certainty, and a real lumbar slice cut through S1 by padding was anchored while the same slice cut by cropping
    was not (docs/findings.md, "The scan's end is the picture's edge"). Rows are trimmed only from the top and the
    bottom, and only when the picture shows a background (:func:`background_in_view`): a view collimated within
    the patient has none, and Otsu's threshold there splits soft tissue from bone.

    Returns:
        (first, last) row holding the patient, or None when the first and last rows both do (or there is no
        background to tell).
    """
    image = np.asarray(image, dtype=np.float32)
    threshold = otsu_threshold(image)
    if not background_in_view(image, threshold):
        return None
    holding = np.flatnonzero((image > threshold).mean(axis=1) >= SCANNED_ROW_FRACTION)
    if holding.size == 0 or (holding[0] == 0 and holding[-1] == image.shape[0] - 1):
        return None
    return int(holding[0]), int(holding[-1])


def rows_overlap(first: Optional[Tuple[int, int]], second: Optional[Tuple[int, int]]) -> Optional[Tuple[int, int]]:
    """The rows both ranges keep (None stands for every row)."""
    if first is None or second is None:
        return second if first is None else first
    return max(first[0], second[0]), min(first[1], second[1])


def body_window(image: np.ndarray) -> Tuple[np.ndarray, Dict[str, float]]:
    """The image mapped to 0-1 by the 1st and 99.5th percentiles of the patient region.

    The patient region is every pixel above Otsu's threshold (air at -1024 HU on a CT slice, the
    black or white surround of a film). Percentiles of that region, not of the whole picture,
    make a CT slice in HU and an 8-bit film look alike: soft tissue low, cortical bone near 1,
    whatever the units, the exposure or the amount of air in the picture. An export that clipped the
    darker fat together with the air (a window from about -150 HU) has no valley for Otsu's threshold
    to find; the patient region then begins just above the clipped value (:func:`_clipped_with_tissue`).

    Returns:
        (windowed float32 image clipped to [0, 1], {"threshold", "low", "high", "foreground"}) with
        ``foreground`` the threshold in window units, or :data:`NO_BACKGROUND` (-1) when the view holds
        no background (:func:`background_in_view`): then the window comes from the whole picture.

    """
    image = np.asarray(image, dtype=np.float32)
    clipped = _clipped_with_tissue(image)
    threshold = otsu_threshold(image) if clipped is None else clipped
    return _window_above(image, threshold, background_in_view(image, threshold))


def _window_above(image: np.ndarray, threshold: float, background: bool) -> Tuple[np.ndarray, Dict[str, float]]:
    """:func:`body_window` for a given patient threshold."""
    region = image[image > threshold] if background else image.ravel()
    if region.size < 0.05 * image.size:
        region = image.ravel()
    low, high = (float(v) for v in np.percentile(region, WINDOW_PERCENTILES))
    span = max(high - low, 1e-6)
    out = np.clip((image - low) / span, 0.0, 1.0).astype(np.float32)
    foreground = float(np.clip((threshold - low) / span, 0.0, 1.0)) if background else NO_BACKGROUND
    return out, {"threshold": threshold, "low": low, "high": high, "foreground": foreground}


#: :func:`threshold_in_valley`: Otsu's threshold lies on a tissue mode, not in the valley between the background and
#: the patient, when the histogram there (5-bin moving average of 256 bins) is more than this many times as dense as
#: the emptiest bin between the background's peak and it. Measured: 1.00-1.56 on the 20 real sagittal CT slices in
#: HU (also framed), 2.07-76 on the same slices exported as 8-bit PNG (window -300 ... 1200 HU).
VALLEY_RATIO = 2.0


#: :func:`_clipped_with_tissue`: the darkest value is a clipped background when it holds at least
#: :data:`CLIPPED_BACKGROUND_SHARE` of the picture; the patient's darkest tissue is clipped with it when the two
#: grey values above it are, on average, at least :data:`CLIPPED_TISSUE_DENSITY` as dense as the densest grey value
#: (the darkest and the brightest left out) and the histogram (3 grey values averaged) rises to at least
#: :data:`CLIPPED_RISE` times that density in the upper half of the next :data:`CLIPPED_RISE_GREYS` grey values: the
#: fat rising out of the clipped value, not the air's noise falling away from it (a CT slice in HU, air clipped at
#: -1024 HU by the scanner, or an export windowed from -1000 HU).
CLIPPED_BACKGROUND_SHARE = 0.05
CLIPPED_TISSUE_DENSITY = 0.05
CLIPPED_RISE_GREYS = 10
CLIPPED_RISE = 2.0


def _eight_bit(values: np.ndarray) -> bool:
    """Whether a picture holds whole grey values 0-255 (an 8-bit export), not HU or a 16-bit film's values."""
    return bool(values.size and values.min() >= 0.0 and values.max() <= 255.0
                and np.array_equal(values, np.round(values)))


def _clipped_with_tissue(image: np.ndarray) -> Optional[float]:
    """The patient threshold just above the darkest value, when that value holds background and darkest tissue.

    None when it does not.

    An export windowed from about -150 HU or higher (a soft-tissue or "trunk" window) sets air, lungs, bowel gas and
    the darker part of the fat to one black value, and the rest of the fat follows in the next grey values: no empty
    valley lies between background and patient, and Otsu's threshold falls between fat and muscle (a real slice
    exported at -150 ... 900 HU: 2 HU; fat and muscle then as black as air, and the detector found 3 of its 13
    bodies). The patient then begins just above the clipped value. An export whose window starts in the air's noise
    (-1000 HU) and one with an empty range between air and fat (bone windows from -200 HU or lower) are not this case.

    Only 8-bit pictures (whole grey values 0-255, read as they are) are read so: a CT slice in HU has its air clipped
    at -1024 HU by the scanner too, and on some slices the lungs rise out of the air's noise as fat does here.
    """
    from scipy.ndimage import uniform_filter1d

    values = np.asarray(image, dtype=np.float64).ravel()
    if not _eight_bit(values):
        return None  # a CT slice in HU or a 16-bit film keeps Otsu's threshold
    low = float(values.min())
    counts = np.bincount((values - low).astype(np.int64), minlength=256)[:256].astype(np.float64)
    if counts[0] < CLIPPED_BACKGROUND_SHARE * values.size:
        return None
    start, densest = float(counts[1:3].mean()), float(counts[1:-1].max())
    further = uniform_filter1d(counts[1:CLIPPED_RISE_GREYS + 3], 3, mode="nearest")[CLIPPED_RISE_GREYS // 2:
                                                                                   CLIPPED_RISE_GREYS]
    if densest <= 0 or start < CLIPPED_TISSUE_DENSITY * densest or float(further.max()) < CLIPPED_RISE * start:
        return None
    return low + 0.5


#: :func:`bone_clipped`: least share of the patient (every pixel above the darkest value) at the brightest value.
#: Measured on the 20 real sagittal CT slices exported as 8-bit PNG: 2.3-20 % with soft-tissue windows (-160 ... 240,
#: -125 ... 225 HU: bone above 225-240 HU clipped), at most 0.95 % with windows reaching 900 HU or higher.
CLIPPED_BONE_SHARE = 0.015


def bone_clipped(image: np.ndarray) -> Optional[float]:
    """Share of an 8-bit picture's patient at its brightest value when bone is clipped there; None otherwise.

    An export windowed for soft tissue sets the bone (above 225-240 HU) to its brightest value: the cortex, the
    endplates and much of the cancellous bone are flat white. The lumbosacral classifier never saw such a picture,
    and on the real slices exported so it named a thoracic body L5 alone (a contrast chest slice at -125 ... 225 HU,
    score 0.59; a lumbar slice mirrored at -160 ... 240 HU, 0.65), every level then counted wrong with certainty.
    Pictures that are not 8-bit (a CT slice in HU, a 16-bit film) are not read so.
    """
    values = np.asarray(image, dtype=np.float64)
    if not _eight_bit(values):
        return None
    patient = values > values.min()
    if not patient.any():
        return None
    share = float(np.mean(values[patient] >= values.max()))
    return share if share >= CLIPPED_BONE_SHARE else None


def threshold_in_valley(image: np.ndarray, threshold: float, bins: int = 256) -> Optional[float]:
    """The patient threshold moved into the valley when Otsu's lies on a tissue mode; None when it is in the valley.

    Otsu's threshold is meant to fall in the valley between the background (air) and the patient. On a CT slice in
    HU it does (-440 ... -520 HU on the 20 real sagittal slices, where the histogram is flat and sparse). An 8-bit
    export windowed for bone (e.g. -300 ... 1200 HU) clips air, lungs and bowel gas to one black value just below
    the fat; Otsu's threshold then falls on the fat's peak (-95 ... -136 HU on those slices). When the histogram at
    the threshold is more than :data:`VALLEY_RATIO` times as dense as the emptiest bin between the background's peak
    and it, that emptiest bin is returned instead: below the patient's darkest tissue. An export that clipped the fat
    with the air has no such valley: just above the clipped value is returned (:func:`_clipped_with_tissue`).
    """
    from scipy.ndimage import uniform_filter1d

    clipped = _clipped_with_tissue(image)
    if clipped is not None:
        return clipped
    hist, edges = np.histogram(np.asarray(image, dtype=np.float64).ravel(), bins=bins)
    smooth = uniform_filter1d(hist.astype(np.float64), 5, mode="nearest")
    at = int(np.clip(np.searchsorted(edges, threshold) - 1, 0, bins - 1))
    peak = int(np.argmax(hist[: at + 1]))
    between = smooth[peak + 2: at + 1]
    if between.size == 0:
        return None
    valley = peak + 2 + int(np.argmin(between))
    if smooth[at] <= VALLEY_RATIO * max(float(smooth[valley]), 1.0):
        return None
    return float(edges[valley + 1])


def detector_window(image: np.ndarray, body: Optional[Tuple[np.ndarray, Dict[str, float]]] = None) -> np.ndarray:
    """The picture the detector reads: :func:`body_window` with its low end below the patient's darkest tissue.

    The detector (Pisov et al. 2020, §3.2 on radiographs) learnt bodies with the soft tissue and fat around them grey,
    as in :func:`body_window` of a CT slice in HU or of a film. On an export that clipped the air near the fat,
    Otsu's threshold sits on the fat (:func:`threshold_in_valley`), the window then starts there, fat and soft tissue
    turn as black as air, and the detector loses the bodies: on the 20 real sagittal slices as 8-bit PNGs it found
    81 of 149 annotated bodies against 117 in HU, also when run at the true pixel size (so not the scale search),
    and the same loss followed giving the HU slices that window (so not the 8 bits). With the threshold moved into
    the valley it finds 90 (2026-12-04). Reverted then (as JPEG its extra boxes reached the sacral test, which named
    L5 alone on three slices, one with no sacrum in view) and re-applied on 2026-12-05 (sixth session) once the
    lumbosacral classifier had to confirm L5 (:func:`.sacrum._choose`): real slices held out, as 8-bit PNG, levels
    47 -> 71 of 113, L1-L5 20 -> 30 of 40, anchors 4 -> 6, all right; as JPEG 70 51 -> 54, no false anchor; no false
    grade (``benchmarks/bench_sagittal.py --all --as-png [--jpeg 70] --folds DIR``). HU slices, framed slices and
    generated films have their threshold in the valley or no background: their window is unchanged.

    Only the detector reads this picture: the 2D gate and the sacral anchor keep :func:`body_window`, whose
    contrasts their thresholds were set on. Moving them onto it too gave a sacral anchor on a real thoracic slice
    with no sacrum in view (``--all --as-png``).

    Args:
        image: the picture as given (HU or grey values).
        body: ``body_window(image)`` when the caller has it already (its threshold and window are reused).
    """
    image = np.asarray(image, dtype=np.float32)
    windowed, window = body if body is not None else body_window(image)
    if window["foreground"] == NO_BACKGROUND:
        return windowed
    valley = threshold_in_valley(image, window["threshold"])
    return windowed if valley is None else _window_above(image, valley, True)[0]


def background_in_view(image: np.ndarray, threshold: float) -> bool:
    """Whether the darker of Otsu's two classes is background (air, the film's surround), not the patient's soft tissue.

    Air is flat and at the dark end: -1000 HU on a CT slice (the noise is a few per cent of the
    image's range), the fully exposed, saturated part of a film, 0 in an 8-bit export. A view
    collimated within the patient (no skin line in the picture, as on many lateral lumbar films and
    on tight generated views) has no such class: Otsu then splits soft tissue from bone, and taking
    the window from the "patient" above it would clip the vertebral bodies to black. The darker class
    is background when at least :data:`BACKGROUND_FLAT_FRACTION` of it lies within
    :data:`BACKGROUND_FLAT_RANGE` of the image's range from its darkest values (0.5th percentile).
    Measured: 0.68-0.99 on the 20 real sagittal CT slices (HU and 8-bit), 0.02-0.47 on 24 generated
    views collimated within the trunk.
    """
    low, high = (float(v) for v in np.percentile(image, (0.5, 99.5)))
    dark = image[image <= threshold]
    if dark.size == 0 or high <= low:
        return False
    return bool(np.mean(dark <= low + BACKGROUND_FLAT_RANGE * (high - low)) >= BACKGROUND_FLAT_FRACTION)


def _ramp(value: float, zero: float, one: float) -> float:
    return float(np.clip((value - zero) / (one - zero), 0.0, 1.0))


def _sample(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    from scipy.ndimage import map_coordinates

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return map_coordinates(image, [points[:, 1], points[:, 0]], order=1, mode="nearest")


def _inside(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    rows, cols = image.shape
    p = np.asarray(points).reshape(-1, 2)
    return (p[:, 0] >= 0) & (p[:, 0] <= cols - 1) & (p[:, 1] >= 0) & (p[:, 1] <= rows - 1)


@dataclass
class _Body:
    keypoints: np.ndarray

    def __post_init__(self) -> None:
        k = np.asarray(self.keypoints, dtype=np.float64)
        self.sup, self.inf = k[[0, 2, 4]], k[[1, 3, 5]]
        self.centre = k.mean(axis=0)
        self.heights = np.linalg.norm(self.inf - self.sup, axis=1)
        self.height = float(max(self.heights.mean(), 1e-6))
        self.depth = float(np.linalg.norm(k[[4, 5]].mean(axis=0) - k[[0, 1]].mean(axis=0)))
        axis = self.inf.mean(axis=0) - self.sup.mean(axis=0)
        self.axis = axis / max(float(np.linalg.norm(axis)), 1e-6)

    def line(self, which: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Points at fractions ``t`` (0 anterior ... 1 posterior) along an endplate polyline."""
        t = np.asarray(t, dtype=np.float64)
        first = which[0][None] + np.clip(2 * t, 0, 1)[:, None] * (which[1] - which[0])[None]
        second = which[1][None] + np.clip(2 * t - 1, 0, 1)[:, None] * (which[2] - which[1])[None]
        return np.where((t <= 0.5)[:, None], first, second)


def _band(body: _Body, which: np.ndarray, start: float, stop: float, sign: float) -> np.ndarray:
    t = np.linspace(0.15, 0.85, 9)
    base = body.line(which, t)
    offsets = np.linspace(start, stop, 5) * body.height * sign
    return (base[None, :, :] + offsets[:, None, None] * body.axis[None, None, :]).reshape(-1, 2)


def check_bone(image: np.ndarray, body: _Body) -> Tuple[float, Dict[str, float]]:
    """Rim (endplate bands) minus the darker-of-nothing disc bands above and below."""
    rim_points = np.vstack([_band(body, body.sup, -0.06, 0.06, 1.0), _band(body, body.inf, -0.06, 0.06, 1.0)])
    rim = float(np.percentile(_sample(image, rim_points), 75))
    discs = []
    for which, sign in ((body.sup, -1.0), (body.inf, 1.0)):
        points = _band(body, which, 0.08, 0.22, sign)
        if _inside(image, points).mean() > 0.8:
            discs.append(float(np.median(_sample(image, points))))
    if not discs:
        return 0.0, {"rim": rim}
    contrast = rim - max(discs)
    return _ramp(contrast, 0.02, 0.10), {"rim": rim, "disc": max(discs), "contrast": contrast}


def patient_outline(image: np.ndarray, foreground: float) -> np.ndarray:
    """(rows, columns) bool: the patient, air inside it (lungs, bowel gas, a vacuum disc) included.

    The foreground (each row smoothed over 5 pixels, as :func:`check_position` reads it) with its holes
    filled; the image's top and bottom rows count as patient while filling, so a lung or a gas-filled bowel
    loop cut by the upper or lower edge of the view is filled too, while the air in front of and behind the
    patient (reaching the anterior and posterior edges) stays air.
    """
    from scipy.ndimage import binary_fill_holes, uniform_filter1d

    mask = uniform_filter1d(image.astype(np.float64), 5, axis=1) > foreground
    return binary_fill_holes(mask)


def check_position(image: np.ndarray, foreground: float, body: _Body, outline: Optional[np.ndarray] = None
                   ) -> Optional[Tuple[float, Dict[str, float]]]:
    """Relative antero-posterior place of the body centre in the patient outline (None: outline not in view).

    The outline along the body's row is the run of :func:`patient_outline` through the centre: air inside
    the patient does not end it. On a sagittal CT slice the lungs (and gas in the bowel) are as dark as the
    air outside; read as the patient's edge they put the anterior skin just in front of the spine, and real
    T8 and L2 bodies in line with their neighbours failed this check (A058062_19001231 of covid_sagittal).
    """
    row = int(np.clip(round(body.centre[1]), 0, image.shape[0] - 1))
    col = int(np.clip(round(body.centre[0]), 0, image.shape[1] - 1))
    if outline is None:
        outline = patient_outline(image, foreground)
    line = outline[row]
    if not line[col]:  # the body itself below the patient threshold: the outline cannot be judged
        return None
    left = col
    while left > 0 and line[left - 1]:
        left -= 1
    right = col
    while right < line.size - 1 and line[right + 1]:
        right += 1
    if left == 0 or right == line.size - 1:  # an outline cut by the image edge gives no relative place
        return None
    relative = (body.centre[0] - left) / max(right - left, 1)
    return _ramp(relative, 0.30, 0.50), {"relative": float(relative)}


def endplate_hits(image: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """(6,) bool, keypoint order: the strongest axial step (searched over +-30 % of the height) lies at the keypoint.

    At it: within 8 % of the height (see ``endplates`` in the module docstring). ``keypoints`` (6, 2) ``[column,
    row]`` in ``image`` pixels.
    """
    body = _Body(np.asarray(keypoints, dtype=np.float64))
    hits = np.zeros(6, dtype=bool)
    steps = np.linspace(-0.3, 0.3, 61) * body.height
    for first, points, sign in ((0, body.sup, 1.0), (1, body.inf, -1.0)):
        for k, point in enumerate(points):
            profile = _sample(image, point[None] + steps[:, None] * body.axis[None])
            gradient = np.gradient(profile) * sign  # into the body: dark (disc) -> bright (bone)
            best = int(np.argmax(gradient))
            hits[first + 2 * k] = abs(steps[best]) <= 0.08 * body.height and gradient[best] > 0
    return hits


def check_endplates(image: np.ndarray, body: _Body) -> Tuple[float, Dict[str, float]]:
    """Fraction of the six keypoints with the strongest axial step on them (:func:`endplate_hits`)."""
    hits = int(endplate_hits(image, body.keypoints).sum())
    return hits / 6.0, {"on_edge": float(hits)}


def check_shape(body: _Body) -> float:
    """Depth / largest height: 1 on 0.8-2.5, 0 at 0.5 and 4."""
    ratio = body.depth / max(float(body.heights.max()), 1e-6)
    if ratio < 0.8:
        return _ramp(ratio, 0.5, 0.8)
    return 1.0 - _ramp(ratio, 2.5, 4.0)


def spine_column(bodies: Sequence[_Body], eligible: Sequence[bool]) -> np.ndarray:
    """(n,) bool: members of the largest chain of linked eligible bodies (at least 3), see ``column``."""
    n = len(bodies)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(n):
        for j in range(n):
            if i == j or not (eligible[i] and eligible[j]):
                continue
            a, b = bodies[i], bodies[j]
            height = 0.5 * (a.height + b.height)
            along = b.centre[1] - a.centre[1]
            if not 0.6 * height <= along <= 3.5 * height:
                continue
            sideways = abs(b.centre[0] - a.centre[0])
            if sideways > 0.5 * along + 0.3 * 0.5 * (a.depth + b.depth):
                continue
            if not 0.5 <= a.height / b.height <= 2.0:
                continue
            parent[find(i)] = find(j)
    roots = [find(i) for i in range(n)]
    sizes = {r: roots.count(r) for r in set(roots) if eligible[r]}
    if not sizes:
        return np.zeros(n, dtype=bool)
    best = max(sizes, key=lambda r: (sizes[r], -min(bodies[i].centre[1] for i in range(n) if roots[i] == r)))
    if sizes[best] < 3:
        return np.zeros(n, dtype=bool)
    return np.array([roots[i] == best and eligible[i] for i in range(n)])


#: :func:`faint_column`: least number of bodies in consecutive one-level steps, and least number of them whose rim
#: the bone check sees, for a column with fewer than three bone-confirmed bodies.
FAINT_COLUMN_RUN = 4
FAINT_COLUMN_SEEN = 2
#: Neighbouring heights within this factor in a faint column (adjacent bodies differ by less than 15 %); one level
#: step is the sacral count's (:data:`.sacrum.STEP_RATIO` of :data:`.sacrum.LEVEL_PER_HEIGHT` mean body heights).
FAINT_HEIGHT_RATIO = 1.5
#: ``Finding2D.values`` key set (1.0) on the members of a faint column: the scale search and the facing choice rank
#: such a column below one seeded by three bone-confirmed bodies.
FAINT_COLUMN_KEY = "faint_column"


def faint_column(bodies: Sequence[_Body], loose: np.ndarray, seen: Sequence[bool]) -> np.ndarray:
    """(n,) bool: a spine column the window shows faintly, or none.

    On a film the iliac wings, the bowel and the ribs lie over the bodies, and the bone check (a rim brighter than the
    discs above and below) passes on fewer than the three bodies that seed a column (:func:`spine_column`): on lateral
    projections of a real abdominal CT (``benchmarks/bench_real_drr.py``) the detector boxed L1-L5 in a line, the bone
    check saw L1 and L2 only, and the analysis said "no vertebral body was found". Such a column is accepted when the
    loose chain (bodies passing the position check) holds a run of at least :data:`FAINT_COLUMN_RUN` bodies, each one
    level from the next (the sacral count's step, :data:`.sacrum.STEP_RATIO`; heights within
    :data:`FAINT_HEIGHT_RATIO`), with at least
    :data:`FAINT_COLUMN_SEEN` of them bone-confirmed: a regular run of four or more is the spine's own pattern,
    and the bodies the bone check does not see stay in it as levels, not assessed. The longest such run is the column
    (a box on the sacrum or the pelvis a level and a half further down is not in it).
    """
    from .sacrum import LEVEL_PER_HEIGHT, STEP_RATIO

    members = sorted((i for i in range(len(bodies)) if loose[i]), key=lambda i: bodies[i].centre[1])
    runs: List[List[int]] = []
    for i in members:
        if runs:
            a, b = bodies[runs[-1][-1]], bodies[i]
            mean_height = 0.5 * (a.height + b.height)
            step = float(np.linalg.norm(b.centre - a.centre)) / (LEVEL_PER_HEIGHT * mean_height) \
                if mean_height > 0 else 0.0
            ratio = max(a.height, b.height) / max(min(a.height, b.height), 1e-9)
            if STEP_RATIO[0] <= step <= STEP_RATIO[1] and ratio <= FAINT_HEIGHT_RATIO:
                runs[-1].append(i)
                continue
        runs.append([i])
    column = np.zeros(len(bodies), dtype=bool)
    good = [run for run in runs
            if len(run) >= FAINT_COLUMN_RUN and sum(bool(seen[i]) for i in run) >= FAINT_COLUMN_SEEN]
    if good:
        column[max(good, key=len)] = True
    return column


def line_offset(bodies: Sequence[_Body], index: int, anchors: Sequence[int], depth: float,
                reach: float, posterior: float = 1.0) -> Optional[Tuple[float, bool]]:
    """Offset of a body centre across the column line through anchor bodies, in body depths (+ = posterior).

    Args:
        bodies: all bodies.
        index: the body measured (left out of the anchors if it is one).
        anchors: indices of the bodies that define the line.
        depth: the depth unit (pixels).
        reach: largest craniocaudal distance (pixels) of an anchor from the body.
        posterior: +1 when posterior is towards higher columns (column 0 anterior), -1 for a mirrored view.

    Returns:
        (offset, between): ``between`` is True when anchors lie above and below (interpolated), False
        when two lie on one side only (extrapolated); None with fewer anchors.

    """
    row = bodies[index].centre[1]
    others = [j for j in anchors if j != index and abs(bodies[j].centre[1] - row) <= reach]
    above = sorted((j for j in others if bodies[j].centre[1] < row), key=lambda j: row - bodies[j].centre[1])[:2]
    below = sorted((j for j in others if bodies[j].centre[1] > row), key=lambda j: bodies[j].centre[1] - row)[:2]
    between = bool(above and below)
    if between:
        chosen = above + below
    elif len(above) == 2 or len(below) == 2:
        chosen = above or below
    else:
        return None
    rows = np.array([bodies[j].centre[1] for j in chosen])
    cols = np.array([bodies[j].centre[0] for j in chosen])
    coef = np.polyfit(rows - row, cols, 2 if len(chosen) >= 4 else 1)
    predicted, slope = float(coef[-1]), float(coef[-2])
    across = (bodies[index].centre[0] - predicted) / np.sqrt(1.0 + slope * slope)  # perpendicular to the line
    return float(posterior * across / max(depth, 1e-6)), between


def _in_line_score(offset: float, between: bool) -> float:
    zero_at, one_at = IN_LINE_DEPTHS if between else IN_LINE_DEPTHS_END
    return 1.0 - _ramp(offset, zero_at, one_at)


def check_alignment(bodies: Sequence[_Body], column: np.ndarray, anchors: np.ndarray
                    ) -> Tuple[np.ndarray, Dict[int, Dict[str, float]], Dict[int, Dict[str, float]]]:
    """The ``overlap`` and ``in_line`` checks of the column members (see the module docstring).

    Args:
        bodies: all bodies.
        column: (n,) bool, members of the spine column.
        anchors: (n,) bool, members that define the column line (pass the position and bone checks).

    Returns:
        (column without the bodies that fail ``overlap``, index -> check scores, index -> measured values).

    """
    column = np.asarray(column, dtype=bool).copy()
    members = [i for i in range(len(bodies)) if column[i]]
    scores: Dict[int, Dict[str, float]] = {i: {} for i in members}
    values: Dict[int, Dict[str, float]] = {i: {} for i in members}
    if len(members) < 3:
        return column, scores, values
    depth = float(np.median([bodies[i].depth for i in members]))
    reach = LINE_REACH_HEIGHTS * float(np.median([bodies[i].height for i in members]))
    # the posterior side from the keypoints themselves (posterior minus anterior wall), so a mirrored view works too
    towards = np.median([bodies[i].keypoints[[4, 5], 0].mean() - bodies[i].keypoints[[0, 1], 0].mean()
                         for i in members])
    posterior = -1.0 if towards < 0 else 1.0
    anchor_set = [i for i in members if anchors[i]]

    # overlap: of two members overlapping craniocaudally, the one farther from the line leaves the column
    for a in members:
        for b in members:
            if b <= a or not (column[a] and column[b]):
                continue
            top = max(bodies[a].sup[:, 1].mean(), bodies[b].sup[:, 1].mean())
            bottom = min(bodies[a].inf[:, 1].mean(), bodies[b].inf[:, 1].mean())
            fraction = max(0.0, bottom - top) / max(min(bodies[a].height, bodies[b].height), 1e-6)
            if fraction <= 0.0:
                continue
            score = 1.0 - _ramp(fraction, *OVERLAP_FRACTION)
            if score >= 0.5:
                continue
            refs = [j for j in anchor_set if j not in (a, b)]
            distance = {}
            for i in (a, b):
                measured = line_offset(bodies, i, refs, depth, reach, posterior)
                # off the line either way; unmeasured: a body the bone check could not see counts as farther;
                # a tie: the posterior one (the posterior elements lie behind the body of their level)
                distance[i] = (abs(measured[0]) if measured is not None else float("inf") if not anchors[i]
                               else 0.0, posterior * bodies[i].centre[0])
            worse = max((a, b), key=lambda i: distance[i])
            scores[worse]["overlap"] = min(scores[worse].get("overlap", 1.0), score)
            values[worse]["overlap_fraction"] = float(fraction)
            column[worse] = False
    for i in members:
        if column[i]:
            scores[i].setdefault("overlap", 1.0)

    # in line: measured against the anchors; the worst failing body leaves the anchors and the rest is measured again
    kept = [i for i in members if column[i]]
    line_anchors = [i for i in anchor_set if column[i]]
    failed: Dict[int, Tuple[float, bool]] = {}
    while True:
        measured = {i: line_offset(bodies, i, line_anchors, depth, reach, posterior) for i in kept
                    if i not in failed}
        worst, worst_score = None, 0.5
        for i, result in measured.items():
            if result is not None and _in_line_score(*result) < worst_score:
                worst, worst_score = i, _in_line_score(*result)
        if worst is None:
            break
        failed[worst] = measured[worst]
        line_anchors = [j for j in line_anchors if j != worst]
    for i in kept:
        result = failed.get(i) or measured.get(i)
        if result is not None:
            scores[i]["in_line"] = _in_line_score(*result)
            values[i]["line_offset_depths"] = result[0]
    return column, scores, values


REASONS = {
    "field_of_view": "the body is cut by the edge of the image",
    "position": "not posterior to the abdominal contents: this is not a vertebral body",
    "bone": "no bright endplate rim with darker discs above and below: not a vertebral body in view",
    "column": "not in the spine column with its neighbours",
    "overlap": "overlaps a neighbouring body craniocaudally and lies farther from the column line: "
               "not a separate vertebral body",
    "in_line": "lies behind the line of the other vertebral bodies (posterior elements?): not a vertebral body",
    "endplates": "the keypoints are not on the endplate edges: the heights would be wrong",
    "placed": "placed one level above the spine column where the detector boxed no body (the image shows a "
              "vertebral body there): counted for the level, its outline not measured",
    "column_end": "at an end of the spine column with no vertebral body in view (no bright endplate rim with "
                  "darker discs above and below): a sacral segment, the pelvis or soft tissue, not a vertebra",
}


def column_ends(checks: Sequence[Dict[str, float]], rows: Sequence[float], protected: Sequence[int] = ()
                ) -> List[int]:
    """Vertebrae at the ends of the column that the image does not show as vertebral bodies: to be left out.

    A body whose ``bone`` check fails is kept between two others (a faint osteoporotic body is still a
    level, reported ``not_assessed``, and dropping it would shift the count), but beyond the last body
    the image shows nothing that makes it a vertebra; below the lumbar spine that is where the sacral
    segments and the pelvis lie (the detector's boxes on S2-S4 of a real slice). Called once the levels
    are set, so leaving these out changes no other level.

    Args:
        checks: per vertebra, its checks (``Finding2D.checks``).
        rows: their centre rows.
        protected: indices never left out (L5 and S1 named by the sacral anchor: identified by their anatomy).

    Returns:
        indices to leave out with :data:`REASONS` ``["column_end"]``: the run of vertebrae failing ``bone`` at
        each end, when it is at most :data:`MAX_END_RUN` long.
    """
    order = [int(i) for i in np.argsort(np.asarray(rows, dtype=np.float64), kind="stable")]
    keep = set(int(i) for i in protected)
    ends: List[int] = []
    for side in (order, order[::-1]):
        run: List[int] = []
        for i in side:
            if i in keep or i in ends or checks[i].get("bone", 0.0) >= 0.5:
                break
            run.append(i)
        if len(run) <= MAX_END_RUN:
            ends += run
    return sorted(ends) if len(ends) < len(order) else []


def _body_checks(image01: np.ndarray, foreground: float, body: _Body, outline: Optional[np.ndarray],
                 view_rows: Optional[Tuple[int, int]] = None) -> Tuple[Dict[str, float], Dict[str, float]]:
    """The checks of one body that need no neighbour: field of view, position, bone, endplates, shape.

    ``view_rows``: the first and last rows the view shows (a collimator's shadow above or below is no view);
    default: the whole image.
    """
    margin = 0.1 * body.height
    k = body.keypoints
    first, last = view_rows if view_rows is not None else (0, image01.shape[0] - 1)
    inside = (k[:, 0].min() >= margin and k[:, 1].min() >= first + margin
              and k[:, 0].max() <= image01.shape[1] - 1 - margin and k[:, 1].max() <= last - margin)
    s = {"field_of_view": 1.0 if inside else 0.0}
    v: Dict[str, float] = {}
    position = check_position(image01, foreground, body, outline)
    if position is not None:
        s["position"], extra = position
        v.update({f"position_{key}": val for key, val in extra.items()})
    s["bone"], extra = check_bone(image01, body)
    v.update({f"bone_{key}": val for key, val in extra.items()})
    s["endplates"], extra = check_endplates(image01, body)
    s["shape"] = check_shape(body)
    return s, v


def body_evidence(image01: np.ndarray, foreground: float, view_rows: Optional[Tuple[int, int]] = None):
    """``evidence(keypoints (6, 2)) -> bool``: the image shows a whole vertebral body there.

    For :func:`VertebralFractureLib.keypoints.chain.extend_chain` on a lateral view: the checks that let a body
    seed the column (in the field of view, in the patient behind its contents, a bright endplate rim with darker
    discs above and below) and its keypoints on the endplates (the gate's own pass marks), so that what lets a
    weak detection in is what lets a body be assessed. Requiring the endplate score a height loss needs to be
    reported (0.9) instead added no body on the real sagittal slices. ``view_rows``: as :func:`assess_bodies`.
    """
    outline = patient_outline(image01, foreground)

    def evidence(keypoints: np.ndarray) -> bool:
        scores, _ = _body_checks(image01, foreground, _Body(np.asarray(keypoints, dtype=np.float64)), outline,
                                 view_rows)
        return all(scores.get(name, 1.0) >= 0.5 for name in ("field_of_view", "position", "bone", "endplates"))

    return evidence


def assess_bodies(image01: np.ndarray, foreground: float, keypoints: Sequence[np.ndarray],
                  view_rows: Optional[Tuple[int, int]] = None) -> List[Finding2D]:
    """Run every check except ``level`` on each detected body (keypoints ``[column, row]``, image pixels).

    Args:
        image01: the :func:`body_window` image.
        foreground: the patient threshold in window units (``body_window(...)[1]["foreground"]``).
        keypoints: (6, 2) per body, :data:`VertebralFractureLib.genant.KEYPOINT_NAMES` order.
        view_rows: the first and last rows the view shows (rows wholly in a collimator's shadow are outside the
            field of view: a body reaching into them is cut); default: every row.

    Returns:
        One :class:`Finding2D` per body, in the input order; add the level with :func:`with_level`.

    """
    bodies = [_Body(np.asarray(k, dtype=np.float64)) for k in keypoints]
    scores: List[Dict[str, float]] = []
    values: List[Dict[str, float]] = []
    outline = patient_outline(image01, foreground)
    for body in bodies:
        s, v = _body_checks(image01, foreground, body, outline, view_rows)
        scores.append(s)
        values.append(v)
    # the column is seeded by bodies that pass the position and the bone checks (no seed column of three: no
    # spine); bodies that pass the position but whose rim the bone check cannot see (thoracic bodies behind
    # ribs and lung on a projection) join it when they link to it, shown and not assessed, so the count of the
    # column and its levels are kept
    seen = [all(s[name] >= 0.5 for name in ("position", "bone") if name in s) for s in scores]
    seeds = spine_column(bodies, seen)
    column = seeds
    loose = spine_column(bodies, [s.get("position", 1.0) >= 0.5 for s in scores])
    if seeds.any():
        if np.all(loose[seeds]):
            column = loose
    else:
        column = faint_column(bodies, loose, seen)
    column, aligned, measured = check_alignment(bodies, column, np.asarray(seen, dtype=bool) & column)
    findings = []
    faint = not seeds.any() and column.any()
    for i, (s, v, member) in enumerate(zip(scores, values, column)):
        s.update(aligned.get(i, {}))
        v.update(measured.get(i, {}))
        s["column"] = 1.0 if member else 0.0
        if member and faint:
            v[FAINT_COLUMN_KEY] = 1.0
        findings.append(_decide(s, v))
    return findings


def _decide(scores: Dict[str, float], values: Dict[str, float], reasons: Optional[Dict[str, str]] = None
            ) -> Finding2D:
    reasons = {**REASONS, **(reasons or {})}
    hard = [name for name in HARD_CHECKS if name in scores]
    failed = [name for name in hard if scores[name] < 0.5]
    soft = [scores[name] for name in SOFT_CHECKS if name in scores] or [1.0]
    quality = min(scores[name] for name in hard) * float(np.mean(soft)) if hard else float(np.mean(soft))
    rounded = {k: round(float(x), 3) for k, x in scores.items()}
    if failed:
        return Finding2D(NOT_ASSESSED, reasons[failed[0]], round(min(quality, 0.49), 3), rounded, values)
    return Finding2D(ASSESSED, None, round(quality, 3), rounded, values)


def with_endplates(finding: Finding2D, on_endplates: np.ndarray) -> Finding2D:
    """The finding with its ``endplates`` check read on the keypoints that are measured (``on_endplates``, (6,))."""
    return _decide(dict(finding.checks, endplates=round(float(np.mean(on_endplates)), 3)), finding.values)


def with_level(finding: Finding2D, label: str) -> Finding2D:
    """The finding with the ``level`` check of the CT gate (:func:`VertebralFractureLib.quality.checks.check_level`)."""
    from ..quality.checks import check_level

    result = check_level(label)
    scores = dict(finding.checks, level=float(result.score))
    return _decide(scores, finding.values, {"level": result.reason or ""})
