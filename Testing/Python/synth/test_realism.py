"""The synthetic anatomy against the real samples: body sizes and tissue intensities.

Real references (``Testing/Data/real`` or ``../shared/data/real``):

* VerSe sub-verse004 vertebra mask (T9-L5; L1 is a grade-3 fracture, so only its width is used)
  and the TPTBox L3 crop: vertebral-body height, depth and width, measured the same way on the
  real and the synthetic masks, must agree within 25 %.
* The TotalSegmentator abdominal CT (3 mm) and the TPTBox L3 CT with its sub-region mask:
  median HU of fat, soft tissue and bone, and of the vertebral-body core, border and posterior
  elements, within the stated tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.io.images import geometry_of, read_image, to_canonical
from VertebralFractureLib.synth import generate_case

SIZE_TOLERANCE = 0.25


def _run(line: np.ndarray, index: int) -> tuple:
    """Length, start, stop of the run of True values containing ``index``."""
    if not 0 <= index < len(line) or not line[index]:
        return 0, index, index
    start, stop = index, index + 1
    while start > 0 and line[start - 1]:
        start -= 1
    while stop < len(line) and line[stop]:
        stop += 1
    return stop - start, start, stop


def canonical_labels(image):
    """A label image on an identity-direction grid, nearest-neighbour (io.images.to_canonical
    interpolates linearly for oblique images such as sub-verse004, which blurs labels)."""
    geometry = geometry_of(image)
    if geometry.is_axis_aligned:
        return to_canonical(image)
    corners = np.array(np.meshgrid(*[[0, s - 1] for s in geometry.size], indexing="ij")).reshape(3, -1).T
    points = geometry.index_to_lps(corners)
    spacing = min(geometry.spacing)
    size = np.ceil((points.max(axis=0) - points.min(axis=0)) / spacing).astype(int) + 1
    reference = sitk.Image([int(n) for n in size], image.GetPixelID())
    reference.SetSpacing([spacing] * 3)
    reference.SetOrigin(points.min(axis=0).tolist())
    return sitk.Resample(image, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0)


def body_extents(mask_image, label: int) -> np.ndarray:
    """Vertebral-body height, depth and width (mm) from a whole-vertebra or body mask.

    Depth: the anterior run of the mask along the antero-posterior axis through the centre
    (body before the canal); height: the cranio-caudal run in the middle of that depth; width:
    the left-right run there (largest of 5 neighbouring lines each).
    """
    image = canonical_labels(mask_image)
    mask = sitk.GetArrayFromImage(image) == label
    spacing = image.GetSpacing()
    kc, _, ic = np.rint(np.argwhere(mask).mean(axis=0)).astype(int)
    best = (0, 0, 0)
    for k in range(kc - 2, kc + 3):
        js = np.flatnonzero(mask[k, :, ic])
        if js.size:
            best = max(best, _run(mask[k, :, ic], int(js.min())))
    jm = (best[1] + best[2]) // 2
    height = max(_run(mask[:, j, ic], kc)[0] for j in range(jm - 2, jm + 3))
    width = max(_run(mask[k, jm, :], ic)[0] for k in range(kc - 2, kc + 3))
    return np.array([height * spacing[2], best[0] * spacing[1], width * spacing[0]])


@pytest.fixture(scope="module")
def lumbar_case():
    return generate_case(
        21,
        "abdomen",
        top_level="T12",
        bottom_level="L4",
        spacing=(1.0, 1.0, 1.0),
        size_scale=1.0,
        fracture_prevalence=0.0,
        fov_xy_mm=(200.0, 180.0),
        osteoporosis=0.9,
    )


def test_body_sizes_match_verse004_and_tptbox(lumbar_case, real_file):
    verse = read_image(real_file("verse/sub-verse004_seg-vert_msk.nii.gz"))
    tptbox = read_image(real_file("tptbox/sub-ct_seg-vert_label-22_msk.nii.gz"))
    synthetic = {label: body_extents(lumbar_case.vert_mask, label) for label in (20, 21, 22, 23)}
    for label in (20, 21, 22, 23):
        real = body_extents(verse, label)
        dims = [2] if label == 20 else [0, 1, 2]  # L1 of sub-verse004 is a grade-3 fracture
        error = np.abs(synthetic[label][dims] - real[dims]) / real[dims]
        assert np.all(error < SIZE_TOLERANCE), (label, synthetic[label], real)
    real_l3 = body_extents(tptbox, 22)
    assert np.all(np.abs(synthetic[22] - real_l3) / real_l3 < SIZE_TOLERANCE), (synthetic[22], real_l3)


def _median_in(values: np.ndarray, low: float, high: float) -> float:
    return float(np.median(values[(values > low) & (values < high)]))


def test_tissue_intensities_match_the_real_abdominal_ct(real_file):
    real = sitk.GetArrayFromImage(read_image(real_file("totalsegmentator/example_ct.nii.gz"))).astype(float)
    case = generate_case(3, "abdomen", spacing=(3.0, 3.0, 3.0), osteoporosis=0.5)
    synthetic = sitk.GetArrayFromImage(case.ct).astype(float)
    ranges = {"fat": (-200, -50, 25.0), "soft tissue": (-50, 150, 35.0), "bone": (200, 2000, 120.0)}
    for name, (low, high, tolerance) in ranges.items():
        r, s = _median_in(real, low, high), _median_in(synthetic, low, high)
        assert abs(r - s) < tolerance, (name, r, s)
    # both show air outside the body, fat and soft tissue in similar proportions
    for low, high in ((-1100, -900), (-200, -50), (-50, 150)):
        r, s = np.mean((real > low) & (real < high)), np.mean((synthetic > low) & (synthetic < high))
        assert 0.4 < s / r < 2.5, (low, high, r, s)


def test_bone_intensities_match_the_tptbox_vertebra(real_file):
    from scipy.ndimage import binary_erosion

    ct = sitk.GetArrayFromImage(read_image(real_file("tptbox/sub-ct_label-22_ct.nii.gz"))).astype(float)
    sub = sitk.GetArrayFromImage(read_image(real_file("tptbox/sub-ct_seg-subreg_label-22_msk.nii.gz")))
    vert = sitk.GetArrayFromImage(read_image(real_file("tptbox/sub-ct_seg-vert_label-22_msk.nii.gz")))
    real = {
        "core": np.median(ct[(sub == 50) & (vert == 22)]),
        "border": np.median(ct[(sub == 49) & (vert == 22)]),
        "posterior": np.median(ct[(sub >= 41) & (sub <= 48) & (vert == 22)]),
    }
    case = generate_case(
        4, "abdomen", spacing=(1.5, 1.5, 1.5), osteoporosis=1.0, fracture_prevalence=0.0, fov_xy_mm=(200.0, 180.0)
    )
    hu = sitk.GetArrayFromImage(case.ct).astype(float)
    body = sitk.GetArrayFromImage(case.body_mask) == 22
    whole = sitk.GetArrayFromImage(case.vert_mask) == 22
    synthetic = {
        "core": np.median(hu[binary_erosion(body, iterations=2)]),
        "border": np.median(hu[body & ~binary_erosion(body)]),
        "posterior": np.median(hu[whole & ~body]),
    }
    tolerance = {"core": 50.0, "border": 120.0, "posterior": 150.0}
    for name in real:
        assert abs(real[name] - synthetic[name]) < tolerance[name], (name, real[name], synthetic[name])
