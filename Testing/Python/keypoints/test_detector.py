"""End-to-end on drawn spines with a real (tiny, briefly trained) model."""

import numpy as np
import pytest
import torch

from VertebralFractureLib.keypoints.detector import Detection, detect_vertebrae, level_input, pad_to
from VertebralFractureLib.keypoints.model import KeypointModel
from VertebralFractureLib.keypoints.result import result_from_detections
from VertebralFractureLib.levels import level_index, shift_level
from VertebralFractureLib.training.keypoints.drawn import draw_spine
from VertebralFractureLib.training.keypoints.train import learning_rate, train


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    samples = [draw_spine(rng, noise=0.05) for _ in range(6)]
    model = KeypointModel.create({"rpn_channels": [4, 8, 16, 16], "level_channels": [4, 8, 8, 8, 8]}, seed=0)
    model = train(samples, samples[:2], steps=30, batch=2, level_batch=2, lr=3e-3, crop=(96, 96), model=model,
                  log=lambda _: None)
    return model, samples


def test_learning_rate_schedule_halves_like_001():
    assert learning_rate(0, 4000, 1e-3) == 1e-3
    assert learning_rate(1000, 4000, 1e-3) == 5e-4
    assert learning_rate(1400, 4000, 1e-3) == 2.5e-4
    assert learning_rate(3999, 4000, 1e-3) == 1.25e-4


@pytest.fixture(scope="module")
def shipped():
    """The shipped keypoint model (it finds every vertebra of the drawn spines: measured 11 of 11 on sample 0)."""
    from VertebralFractureLib.keypoints.model import load_model
    from VertebralFractureLib.nn.weights import WEIGHTS_DIR

    return load_model(WEIGHTS_DIR / "keypoints.pt")


def _drawn_centres(sample):
    return np.array([np.asarray(k).mean(axis=0) for k in sample.keypoints])


def test_detect_finds_each_drawn_vertebra_once_in_order(trained, shipped):
    _, samples = trained
    sample = samples[0]
    detections = detect_vertebrae(sample.image, model=shipped)
    truth = _drawn_centres(sample)
    assert len(truth) - 1 <= len(detections) <= len(truth)  # measured: 11 of 11
    nearest = [int(np.argmin(np.linalg.norm(truth - d.centre, axis=1))) for d in detections]
    assert len(set(nearest)) == len(nearest), "two detections on one vertebra"
    assert all(np.linalg.norm(truth[i] - d.centre) < 5.0 for i, d in zip(nearest, detections))  # measured <= 3.6
    rows = [d.centre[1] for d in detections]
    assert rows == sorted(rows)
    for d in detections:
        assert isinstance(d, Detection) and d.keypoints.shape == (6, 2)
        assert 0 <= d.score <= 1 and 0 <= d.label_confidence <= 1
    labels = [d.label for d in detections]
    assert all(shift_level(a, 1) == b for a, b in zip(labels, labels[1:])), labels  # consecutive levels


def test_tiny_model_detections_are_sorted_and_uniquely_labelled(trained):
    model, samples = trained
    detections = detect_vertebrae(samples[0].image, model=model, score_threshold=0.05)
    assert detections, "a briefly trained model finds something"
    rows = [d.centre[1] for d in detections]
    assert rows == sorted(rows)
    positions = [level_index(d.label) for d in detections]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


def test_spacing_maps_back_to_input_pixels(trained):
    model, samples = trained
    image = samples[0].image
    full = detect_vertebrae(image, 1.0, model=model, score_threshold=0.05)
    double = np.repeat(np.repeat(image, 2, axis=0), 2, axis=1)  # the same picture at 0.5 mm
    fine = detect_vertebrae(double, 0.5, model=model, score_threshold=0.05)
    assert fine and full
    for detection in full[:3]:
        nearest = min(fine, key=lambda d: np.linalg.norm(d.centre / 2 - detection.centre))
        assert np.linalg.norm(nearest.centre / 2 - detection.centre) < 4


def test_result_in_pixel_frame_measures_genant(trained):
    model, samples = trained
    detections = detect_vertebrae(samples[0].image, model=model, score_threshold=0.05)
    result = result_from_detections(detections, None, pixel_spacing=1.0, model_sha256="abc")
    assert result.frame == "pixel" and result.models["keypoints"] == "abc"
    positions = [level_index(label) for label in result.labels]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)  # cranio-caudal level order
    assert [v.label for v in result.vertebrae] == [d.label for d in detections]
    assert all(v.measure is None or 0 < v.measure.G <= 1 for v in result.vertebrae)
    assert result.patient_summary()["n_vertebrae"] == len(result.vertebrae)


def test_save_load_round_trip(trained, tmp_path):
    from VertebralFractureLib.keypoints.model import load_model

    model, samples = trained
    path = model.save(tmp_path / "kp.pt")
    loaded = load_model(path)
    assert loaded.sha256 and len(loaded.sha256) == 64
    a = detect_vertebrae(samples[1].image, model=model, score_threshold=0.05)
    b = detect_vertebrae(samples[1].image, model=loaded, score_threshold=0.05)
    assert [d.label for d in a] == [d.label for d in b]
    np.testing.assert_allclose([d.keypoints for d in a], [d.keypoints for d in b], atol=1e-4)


def test_load_rejects_other_files(tmp_path):
    from VertebralFractureLib.keypoints.model import load_model

    path = tmp_path / "other.pt"
    torch.save({"format": "something else"}, path)
    with pytest.raises(ValueError, match="not a keypoint model"):
        load_model(path)
    with pytest.raises(FileNotFoundError, match="missing.pt: keypoint model weights not found"):
        load_model(tmp_path / "missing.pt")


def test_padding_and_level_input():
    image = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)
    padded = pad_to(image, 8, value=-1)
    assert padded.shape == (16, 8) and padded[15, 7] == -1 and padded[9, 6] == image[9, 6]
    small = level_input(np.ones((9, 8), np.float32), 4.0)
    assert small.shape == (3, 2)


def test_centre_column_window_drops_off_column_detections(trained, shipped):
    _, samples = trained
    image = samples[0].image
    centre = (image.shape[1] - 1) / 2  # 1 mm pixels: offsets in pixels are mm
    everything = detect_vertebrae(image, model=shipped)
    offsets = sorted(abs(d.centre[0] - centre) for d in everything)
    limit = float(np.median(offsets))  # the drawn column is off-centre by 8-19 mm: about half are kept
    saved = shipped.config.get("max_offset_mm")
    shipped.config["max_offset_mm"] = limit
    try:
        narrow = detect_vertebrae(image, model=shipped)
    finally:
        shipped.config["max_offset_mm"] = saved
    expected = [d.centre for d in everything if abs(d.centre[0] - centre) <= limit]
    assert 0 < len(narrow) < len(everything)
    assert len(narrow) == len(expected)
    np.testing.assert_allclose([d.centre for d in narrow], expected, atol=1e-6)
    assert all(abs(d.centre[0] - centre) <= limit + 1e-6 for d in narrow)


def test_three_d_level_path_and_refinement(trained):
    from VertebralFractureLib.keypoints.levelfeatures import RowProfile
    from VertebralFractureLib.levels import level_index
    from VertebralFractureLib.training.levels.train import fit_classifier

    model, samples = trained
    rng = np.random.default_rng(1)
    toy = [(rng.random((6, 22)), [f"T{i}" for i in range(k, k + 6)]) for k in range(1, 7)]
    classifier = fit_classifier([f for f, _ in toy], [lv for _, lv in toy], epochs=3)
    profile = RowProfile(np.zeros((samples[0].image.shape[0], 6)), 1.0)
    plain = detect_vertebrae(samples[0].image, model=model, score_threshold=0.05, refine=False,
                             level_profile=profile, level_classifier=classifier)
    assert plain, "the tiny model finds vertebrae"
    positions = [level_index(d.label) for d in plain]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)  # consecutive order
    assert all(0.0 <= d.label_confidence <= 1.0 for d in plain)
    refined = detect_vertebrae(samples[0].image, model=model, score_threshold=0.05, refine=True,
                               level_profile=profile, level_classifier=classifier)
    assert refined
    positions = [level_index(d.label) for d in refined]
    assert positions == sorted(positions) and len(set(positions)) == len(positions)


@pytest.mark.slow
def test_the_sample_ct_at_5_mm_slices_has_one_box_per_body_and_its_own_levels():
    """The real sample CT resampled to 5 mm slices (as ``bench_real_variants.py --variants thick5``).

    Without the one-box-per-stretch rules the detector kept a box over L4's lower half and its disc beside L4 and
    one on the L4/L5 disc: L4 was named L5, the disc "L6", the true L5 "S1" and the levels were uncertain (a
    doubled detection beside the iliac crests); with the disc box kept alone, the true L5 was named S1 with
    certain levels. Each reported body must lie on its reference body, L1-L5 in order.
    """
    from VertebralFractureLib.io.images import read_image, resample_spacing
    from VertebralFractureLib.pipeline import analyze
    from VertebralFractureLib.stage import AnalysisOptions
    from VertebralFractureLib.training.real.reference import load_case, score_case

    reference = load_case("sample_ct")
    original = read_image(reference.image_path)
    image = resample_spacing(original, (original.GetSpacing()[0], original.GetSpacing()[1], 5.0))
    result = analyze(image, AnalysisOptions(extra_stages=(), masks=False, device="cpu", threads=1)).result
    score = score_case(result, reference)
    # T12, cut by the scan's top (centroid 8 mm under it), is reported not assessed, as on the 3 mm CT (since the
    # canal track looks for the canal beside the network's column, 2026-12-07; before, it was not reported at 5 mm)
    assert [v.label for v in result.vertebrae] == ["T12", "L1", "L2", "L3", "L4", "L5"]
    assert result.vertebrae[0].status == "not_assessed" and "field of view" in result.vertebrae[0].status_reason
    assert [(m.reported, m.reference) for m in score.matches] == [("T12", "T12")] + [(f"L{k}", f"L{k}")
                                                                                     for k in range(1, 6)]
    assert score.outside == 0 and result.patient["levels"]["certain"]
