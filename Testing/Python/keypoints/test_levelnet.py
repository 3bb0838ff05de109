"""3D level cues (rib / pelvis bands), the level classifier with consecutive decoding, VerSe training input."""

import numpy as np
import pytest

from VertebralFractureLib.keypoints.levelfeatures import (
    LATERAL_BANDS_MM,
    N_FEATURES,
    RowProfile,
    row_profile,
    vertebra_features,
)
from VertebralFractureLib.keypoints.levelnet import (
    N_INPUTS,
    LevelClassifier,
    context_inputs,
    decode_with_classifier,
    emission_scores,
)
from VertebralFractureLib.training.levels.train import fit_classifier


def _box_keypoints(top: float, height: float = 20.0, anterior: float = 10.0, depth: float = 30.0) -> np.ndarray:
    """Six ``[column, row]`` keypoints (mm) of a rectangular body, genant.KEYPOINT_NAMES order."""
    points = []
    for column in (anterior, anterior + depth / 2, anterior + depth):
        points += [[column, top], [column, top + height]]
    return np.array(points)


def test_row_profile_counts_bone_in_lateral_bands():
    # 10 rows, 11 columns (AP -5..5 mm), 121 lateral samples (-60..60 mm) at 1 mm
    volume = np.full((10, 11, 121), -100.0, dtype=np.float32)
    lateral = np.abs(np.arange(121) - 60.0)
    rib = (lateral >= 30) & (lateral < 45)
    volume[2:5, 5:, :][:, :, rib] = 800.0  # rows 2-4, posterior half (p >= 0), band 30-45 mm
    profile = row_profile(volume, 1.0, 5.0, 60.0)
    assert profile.values.shape == (10, 2 * len(LATERAL_BANDS_MM))
    posterior_rib = len(LATERAL_BANDS_MM) + 1
    np.testing.assert_allclose(profile.values[2:5, posterior_rib], 1.0)
    assert profile.values[:2].sum() == 0 and profile.values[5:].sum() == 0
    assert profile.values[:, :len(LATERAL_BANDS_MM)].sum() == 0  # nothing anterior
    # window averages over rows in mm (profile at 1 mm)
    np.testing.assert_allclose(profile.window(2.0, 4.0)[posterior_rib], 1.0)
    np.testing.assert_allclose(profile.window(0.0, 5.0)[posterior_rib], 0.5)


def test_vertebra_features_sizes_and_bands():
    values = np.zeros((100, 6))
    values[10:31, 4] = 1.0  # rib band beside the first vertebra only (rows 10-30)
    profile = RowProfile(values, 1.0)
    keypoints = np.stack([_box_keypoints(10.0), _box_keypoints(40.0, height=30.0)])
    features = vertebra_features(keypoints, profile)
    assert features.shape == (2, N_FEATURES)
    assert features[0, 4] == pytest.approx(1.0)  # own window: rows 10-30
    assert features[1, 4] == 0.0
    assert features[1, 6 + 4] > 0.0  # the ribs lie above the second vertebra
    np.testing.assert_allclose(features[:, -4], [20.0 / 25.0, 30.0 / 25.0])  # heights
    np.testing.assert_allclose(features[:, -3], 30.0 / 40.0)  # depths
    np.testing.assert_allclose(features[:, -2], [20.0 / 25.0, 30.0 / 25.0])  # relative to the median height


def test_context_inputs_and_emission_scores():
    features = np.arange(2 * N_FEATURES, dtype=float).reshape(2, N_FEATURES)
    inputs = context_inputs(features)
    assert inputs.shape == (2, N_INPUTS)
    np.testing.assert_allclose(inputs[1, N_FEATURES : 2 * N_FEATURES], features[0])  # upper neighbour
    np.testing.assert_allclose(inputs[0, N_FEATURES : 2 * N_FEATURES], 0.0)
    np.testing.assert_allclose(inputs[:, -2:], [[0, 1], [1, 0]])
    np.testing.assert_allclose(emission_scores(np.array([1.0, 0.1, 0.001, 1e-9])), [1.0, 2 / 3, 0.0, 0.0], atol=1e-9)


def _toy_case(top_level: int, count: int, rng: np.random.Generator):
    """Features of a column T1..L5 window: rib band on T levels, size growing caudally."""
    names = [f"T{i}" for i in range(1, 13)] + [f"L{i}" for i in range(1, 6)]
    levels = names[top_level : top_level + count]
    features = np.zeros((count, N_FEATURES))
    for k, name in enumerate(levels):
        index = names.index(name)
        features[k, 4] = (0.1 if name.startswith("T") else 0.0) + rng.normal(0, 0.005)
        features[k, -4] = (15.0 + 0.8 * index) / 25.0
        features[k, -3] = (25.0 + 1.2 * index) / 40.0
    features[:, -2] = features[:, -4] / np.median(features[:, -4])
    features[:, -1] = features[:, -3] / np.median(features[:, -3])
    return features, levels


def test_classifier_learns_ribs_and_decodes_consecutive_labels(tmp_path):
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    cases = [_toy_case(int(rng.integers(0, 11)), 6, rng) for _ in range(60)]
    classifier = fit_classifier([f for f, _ in cases], [lv for _, lv in cases], epochs=250, seed=0)
    features, levels = _toy_case(8, 6, rng)  # T9..L2: the rib-bearing / rib-free boundary fixes the labels
    rows = np.arange(6) * 30.0
    keep, labelling = decode_with_classifier(classifier, features, rows)
    assert list(keep) == list(range(6))
    assert labelling.labels == levels
    assert np.all(labelling.confidence > 0.3)
    # shuffled input order gives the same labels per vertebra
    perm = np.array([3, 0, 5, 1, 4, 2])
    _, shuffled = decode_with_classifier(classifier, features[perm], rows[perm])
    assert shuffled.labels == [levels[i] for i in perm]
    # checkpoint round trip
    loaded = LevelClassifier.load(classifier.save(tmp_path / "levels.pt"))
    np.testing.assert_allclose(loaded.probabilities(features), classifier.probabilities(features), atol=1e-6)


def test_verse_dataset_reads_ct_mask_and_centroids(tmp_path):
    from VertebralFractureLib.geometry import ImageGeometry
    from VertebralFractureLib.io.images import image_from_array, write_image
    from VertebralFractureLib.io.verse import centroids_from_mask, write_verse_centroids, write_verse_mask
    from VertebralFractureLib.training.keypoints.data import VerseDataset

    shape = (120, 80, 60)  # k (I -> S in LPS), j (A -> P), i (R -> L), 1 mm
    ct = np.full(shape, -1000.0, dtype=np.float32)
    mask = np.zeros(shape, dtype=np.uint8)
    for label, z0 in ((20, 80), (21, 50), (22, 20)):  # VerSe 20-22 = L1-L3, L1 most superior
        ct[z0 : z0 + 22, 25:55, 20:40] = 300.0
        mask[z0 : z0 + 22, 25:55, 20:40] = label
    geometry = ImageGeometry(shape[::-1], (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.eye(3))
    write_image(image_from_array(ct, geometry), tmp_path / "ct.nii.gz")
    write_verse_mask(mask, tmp_path / "msk.nii.gz", geometry)
    write_verse_centroids(tmp_path / "ctd.json", centroids_from_mask(image_from_array(mask, geometry)), geometry)
    dataset = VerseDataset([(tmp_path / "ct.nii.gz", tmp_path / "msk.nii.gz", tmp_path / "ctd.json")],
                           perturb_mm=0.0, cache=tmp_path / "cache")
    sample = dataset[0]
    assert sample.levels == ["L1", "L2", "L3"]
    kp = sample.keypoints
    heights = kp[:, 1::2, 1] - kp[:, 0::2, 1]
    np.testing.assert_allclose(heights, 22.0, atol=1.0)  # superior above inferior, box height 22 mm
    assert np.all(np.diff(kp[:, :, 1].mean(axis=1)) == pytest.approx(30.0, abs=1.0))  # 30 mm apart
    assert np.all(kp[:, 0, 0] < kp[:, 4, 0])  # anterior before posterior
    centre = kp[0].mean(axis=0)
    assert sample.image[int(round(centre[1])), int(round(centre[0]))] > 200  # on the body
    assert sample.meta["source"].startswith("verse:")
    assert (tmp_path / "cache").exists() and dataset[0].levels == sample.levels  # cached


#: Features of held-out synth_test case_0000 (T9..L3, true keypoints; runs/keypoints_levelprof).
_CASE_0000 = np.array([
    [0.009, 0, 0, 0.201, 0.077, 0.032, 0, 0, 0, 0.006, 0, 0,
     0.011, 0, 0, 0.238, 0.082, 0.046, 0.756, 0.577, 0.947, 0.816],
    [0.01, 0, 0, 0.207, 0.078, 0.035, 0.006, 0, 0, 0.141, 0.05, 0.021,
     0.02, 0, 0, 0.265, 0.092, 0.053, 0.798, 0.632, 1, 0.894],
    [0.016, 0, 0, 0.223, 0.073, 0.029, 0.01, 0, 0, 0.162, 0.055, 0.025,
     0.031, 0, 0, 0.237, 0.062, 0.041, 0.787, 0.673, 0.986, 0.952],
    [0.03, 0, 0, 0.264, 0.096, 0.063, 0.014, 0, 0, 0.183, 0.056, 0.022,
     0.03, 0, 0, 0.187, 0.018, 0, 0.606, 0.713, 0.76, 1.009],
    [0.034, 0, 0, 0.202, 0.02, 0, 0.025, 0, 0, 0.204, 0.067, 0.041,
     0.04, 0, 0, 0.217, 0.031, 0.001, 0.948, 0.707, 1.187, 1],
    [0.043, 0, 0, 0.226, 0.032, 0.001, 0.03, 0, 0, 0.187, 0.018, 0,
     0.048, 0, 0, 0.238, 0.029, 0.006, 0.983, 0.772, 1.231, 1.092],
    [0.051, 0, 0, 0.248, 0.03, 0.007, 0.04, 0, 0, 0.217, 0.031, 0.001,
     0.019, 0, 0, 0.109, 0.002, 0, 1.05, 0.803, 1.315, 1.136],
])


def test_shipped_classifier_finds_the_thoracolumbar_junction():
    classifier = LevelClassifier.load()  # weights/keypoints_levels.pt
    rows = np.array([22.0, 46.8, 72.4, 96.2, 123.1, 155.9, 191.0])
    keep, labelling = decode_with_classifier(classifier, _CASE_0000, rows)
    assert len(keep) == 7
    assert labelling.labels == ["T9", "T10", "T11", "T12", "L1", "L2", "L3"]
    assert np.all(labelling.confidence > 0.9)
    # without the bone bands (ribs, pelvis) only the sizes are left: far less confident
    no_bands = _CASE_0000.copy()
    no_bands[:, :18] = 0.0
    _, blind = decode_with_classifier(classifier, no_bands, rows)
    assert float(np.mean(blind.confidence)) < 0.7


def test_an_anchored_level_is_never_moved_to_keep_extra_bodies_above_it():
    """A neck-to-chest CT: more bodies above the 12th rib's vertebra than levels above T12 (C7-T11). Keeping every
    body standing in the column (labelling.in_column) applies without an anchor only; with one, the extra top
    bodies are left out and the anchored vertebra stays T12 (moving it would name every level wrongly, certain)."""
    from VertebralFractureLib.keypoints.level_anchors import LevelAnchor

    classifier = LevelClassifier.load()
    rows = np.arange(18) * 22.0  # 18 bodies evenly spaced, the 16th (index 15) bears the 12th rib
    features = np.tile(_CASE_0000[:1], (18, 1))
    anchor = LevelAnchor("12th rib", 15, "T12", True, 0.95, "counted from the 12th rib")
    keep, labelling = decode_with_classifier(classifier, features, rows, anchor=anchor)
    labels = dict(zip(keep.tolist(), labelling.labels))
    assert labels[15] == "T12"
    assert [labels[k] for k in (16, 17)] == ["L1", "L2"]
    assert len(keep) == 18 - 3  # C7-T11 hold 12 of the 15 bodies above: 3 are left out (flat emissions: any 3)
