"""A CT resampled finer than it was acquired: what it resolves, read from its voxels (io/interpolated.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from VertebralFractureLib.io.images import RESOLUTION_KEY, read_image, resample_spacing, write_image
from VertebralFractureLib.io.interpolated import interpolated_resolution
from VertebralFractureLib.training.real.reference import load_case


def _found(image):
    return interpolated_resolution(sitk.GetArrayViewFromImage(image), image.GetSpacing())


def _as_another_tool_writes_it(image):
    """The resampled copy without the resolution this package carries through its own resampling."""
    if image.HasMetaDataKey(RESOLUTION_KEY):
        image.EraseMetaData(RESOLUTION_KEY)
    return image


@pytest.fixture(scope="module")
def sample_ct():
    return read_image(load_case("sample_ct").image_path)  # real, 3 mm isotropic


@pytest.fixture(scope="module")
def chest_ct():
    return read_image(load_case("cptac_chest").image_path)  # real, 1.1 x 1.1 x 3 mm


@pytest.mark.parametrize("case", ["sample_ct", "cptac_chest", "cptac_cardiac_a", "tptbox_L3", "verse004_L2_crop"])
def test_the_real_cts_as_stored_are_not_taken_for_resampled_ones(case):
    assert _found(read_image(load_case(case).image_path)) is None


def test_a_3_mm_ct_resampled_linearly_to_1_mm_resolves_3_mm_along_every_axis(sample_ct):
    found = _found(_as_another_tool_writes_it(resample_spacing(sample_ct, 1.0)))
    assert found is not None and found.kinds == ("linear", "linear", "linear")
    np.testing.assert_allclose(found.resolution, 3.0, atol=0.1)


def test_only_the_axis_that_was_resampled_is_coarser_than_its_spacing(chest_ct):
    # 1.1 mm pixels to 1.0 (by 1.1: a resampling that changes little, not reported), 3 mm slices to 1.0 and to 1.2
    found = _found(_as_another_tool_writes_it(resample_spacing(chest_ct, 1.0)))
    assert found is not None and found.kinds == (None, None, "linear")
    np.testing.assert_allclose(found.resolution, (1.0, 1.0, 3.0), atol=0.05)
    found = _found(_as_another_tool_writes_it(resample_spacing(chest_ct, (1.1, 1.1, 1.2))))  # 2.5 planes each
    assert found is not None and found.resolution[2] == pytest.approx(3.0, abs=0.1)


def test_repeated_planes_of_a_nearest_neighbour_resampling_are_read_too(chest_ct):
    found = _found(_as_another_tool_writes_it(resample_spacing(chest_ct, (1.1, 1.1, 1.5), nearest=True)))
    assert found is not None and found.kinds[2] == "nearest" and found.resolution[2] == pytest.approx(3.0, abs=0.1)


def test_a_b_spline_resampling_leaves_no_blend_to_read(sample_ct):
    # the documented limit: no zeros in its differences; the file's spacing stands
    size = [int(n * s) for n, s in zip(sample_ct.GetSize(), sample_ct.GetSpacing())]
    smooth = sitk.Resample(sample_ct, size, sitk.Transform(), sitk.sitkBSpline, sample_ct.GetOrigin(), (1.0,) * 3,
                           sample_ct.GetDirection(), -1024, sample_ct.GetPixelID())
    assert _found(smooth) is None


def test_an_image_without_noise_gives_no_verdict():
    # piecewise constant blocks (a synthetic phantom, a mask-like fill): nothing to read, nothing concluded
    array = np.zeros((40, 40, 40), dtype=np.int16)
    array[:, :, 20:] = 100
    assert interpolated_resolution(array, (1.0, 1.0, 1.0)) is None


def test_the_analysis_measures_a_resampled_ct_at_what_it_resolves_and_says_so(tmp_path, chest_ct, capsys):
    from VertebralFractureLib.cli import main
    from VertebralFractureLib.pipeline import AnalysisOptions, analyze

    image = _as_another_tool_writes_it(resample_spacing(chest_ct, 1.0))
    path = write_image(image, tmp_path / "chest_1mm.nii.gz")
    assert main(["analyze", str(path), "--out", str(tmp_path / "out"), "--stages", "none", "--quiet"]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["input"]["spacing"][2] == 1.0 and result["input"]["resolution"][2] == pytest.approx(3.0, abs=0.05)
    said = [w for w in result["warnings"] if "resampled finer than it was acquired" in w]
    assert len(said) == 1 and "chest_1mm.nii.gz" in said[0] and "3.0 mm" in said[0]
    # measured as the CT with its 3 mm known: T5 and T8 not read across two bodies (as test_analyze's
    # --slice-thickness 3)
    reasons = {v["label"]: v.get("status_reason") or "" for v in result["vertebrae"]}
    assert {"T5", "T8"} <= set(reasons) and "too large" not in reasons["T5"] + reasons["T8"]
    # `info` on the same file shows what the analysis measures at, and why
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["spacing"][2] == 1.0 and shown["resolution"][2] == pytest.approx(3.0, abs=0.05)
    assert "resampled finer than it was acquired" in shown["resampled"]
    # a caller's image object is read, never changed; a thickness given wins and nothing is estimated
    analysis = analyze(image, AnalysisOptions(extra_stages=(), slice_thickness_mm=2.0))
    assert not image.HasMetaDataKey(RESOLUTION_KEY)
    assert analysis.geometry.resolution[2] == pytest.approx(2.0)
    assert not [w for w in analysis.result.warnings if "resampled finer" in w]
