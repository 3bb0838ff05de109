"""Training data and training of the lateral-view fracture classifier."""

import numpy as np
import pytest

from VertebralFractureLib.radiograph.fracture import PATCH_SIZE, body_axes, load_model
from VertebralFractureLib.training.radiograph import train_fracture as training


def _box(top: float, height: float, depth: float = 40.0, left: float = 50.0) -> np.ndarray:
    return np.array([[left, top], [left, top + height], [left + depth / 2, top], [left + depth / 2, top + height],
                     [left + depth, top], [left + depth, top + height]], dtype=float)


def _with_a_wedge(column):
    """The drawn column with its sixth body's anterior height cut to 60 % (a moderate wedge)."""
    points = column.keypoints[5]
    points[0, 1] = points[1, 1] - 0.6 * (points[1, 1] - points[0, 1])
    return column


def test_labels_follow_the_true_genant_index_and_leave_mild_bodies_out():
    assert training.label_of(training.true_g(_box(0, 30), 1.0)) == 0
    crushed = _box(0, 30)
    crushed[0, 1] = crushed[1, 1] - 21  # anterior height 21 of 30: G 0.7, moderate
    assert training.label_of(training.true_g(crushed, 1.0)) == 1
    mild = _box(0, 30)
    mild[0, 1] = mild[1, 1] - 23.5  # G 0.78: between the two classes, left out
    assert training.label_of(training.true_g(mild, 1.0)) is None
    assert training.label_of(None) is None


def test_the_jitter_moves_turns_and_scales_within_its_bounds():
    rng = np.random.default_rng(0)
    points = _box(10, 30)
    centre, down, _, depth = body_axes(points)
    for _ in range(50):
        moved = training.jittered(points, rng)
        c, d, _, dep = body_axes(moved)
        assert abs(dep / depth - 1) <= training.JITTER_SCALE + 1e-9
        assert np.degrees(np.arccos(np.clip(d @ down, -1, 1))) < 5 * training.JITTER_DEGREES
        assert np.linalg.norm(c - centre) < 6 * training.JITTER_SHIFT * depth


def test_a_drawn_column_gives_patches_from_both_views_and_every_look(drawn):
    column = _with_a_wedge(drawn())
    patches, labels, gs = training.column_patches(column, np.random.default_rng(0), looks=2)
    assert patches.shape[1:] == (PATCH_SIZE, PATCH_SIZE) and len(patches) == len(labels) == len(gs)
    assert set(labels) == {0, 1} and np.all(gs[labels == 1] <= training.POSITIVE_G)
    # two looks of two overlapping views: every body in view counted in each
    one_look = training.column_patches(column, np.random.default_rng(0), looks=1)[1]
    assert len(labels) > 1.5 * len(one_look)


def test_a_few_steps_of_training_give_a_network_that_saves_and_loads(tmp_path, drawn):
    column = _with_a_wedge(drawn())
    patches, labels, _ = training.column_patches(column, np.random.default_rng(0), looks=1)
    model = training.train_network(patches, labels, steps=3, seed=0, width=0.125, batch=8, log=None)
    from VertebralFractureLib.radiograph.fracture import save_model

    path = save_model(model, tmp_path / "fx.pt")
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.sha256
    assert training.evaluate.__doc__  # the held-out scores are documented


def test_auc_counts_ties_half():
    assert training.auc(np.array([0.9, 0.5, 0.5]), np.array([1, 1, 0])) == pytest.approx(0.75)
    assert np.isnan(training.auc(np.array([0.1]), np.array([0])))


def test_ct_slices_of_a_generated_spine_put_the_keypoints_on_its_bodies():
    """The slice is sampled on the DRR's pixel grid: the column's 2D keypoints frame a body of bone on it."""
    from VertebralFractureLib.training.radiograph.columns import Column, column_case

    case = column_case(3, fracture_prevalence=0.0)
    column = Column.from_truth(case.radiograph, case.radiograph_truth, 3)
    transform, offset = training._drr_to_patient(case, column)
    by_level = {v.label: np.asarray(v.keypoints) for v in case.truth.vertebrae if v.keypoints is not None}
    residual = [np.abs(by_level[lv][:, 1:3] @ transform + offset - k).max()
                for lv, k in zip(column.levels, column.keypoints) if lv in by_level]
    assert max(residual) < 1.0  # pixels
    patches, labels, _ = training.slice_patches(case, column, np.random.default_rng(0), jitter=False)
    assert len(patches) >= 10 and set(labels) == {0}
    middle = slice(PATCH_SIZE // 2 - 5, PATCH_SIZE // 2 + 5)
    inside = np.mean([p[middle, middle].mean() for p in patches])
    front = np.mean([p[middle, :8].mean() for p in patches])  # in front of the bodies: soft tissue
    assert inside > front + 0.3


def test_the_train_command_writes_weights_with_their_training_facts(tmp_path, drawn):
    import torch

    from VertebralFractureLib.cli import main
    from VertebralFractureLib.nn.weights import load_weights
    from VertebralFractureLib.training.radiograph.columns import column_path

    folder = tmp_path / "columns"
    for seed in (0, 1):
        column = _with_a_wedge(drawn(seed))
        column.seed = seed
        column.save(column_path(folder, seed))
    out = tmp_path / "fx.pt"
    threads = torch.get_num_threads()
    try:
        code = main(["train", "radiograph-fracture", "--columns", str(folder), "--first-seed", "0", "--count", "2",
                     "--members", "2", "--steps", "2", "--width", "0.125", "--threads", "1", "--no-slices",
                     "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0
    checkpoint = load_weights(out, model="radiograph_fracture")
    assert checkpoint["config"]["members"] == 2 and checkpoint["meta"]["columns"] == "0-1"
    assert checkpoint["meta"]["slices"] is False and checkpoint["meta"]["positives"] >= 1
    assert load_model(out).config["patch_size"] == PATCH_SIZE


def test_the_real_reference_cts_give_negative_patches_centred_on_their_bodies():
    """Real negatives: every normal-looking body of the real reference CTs, read on its own mid-sagittal plane."""
    patches, labels, gs = training.real_negative_patches(0, draws=3)
    assert len(patches) >= 3 * 15 and len(patches) % 3 == 0 and set(labels) == {0}
    assert np.all(gs > 0.7)  # measured G of normal-looking bodies
    middle = slice(PATCH_SIZE // 2 - 4, PATCH_SIZE // 2 + 4)
    inside = np.mean([p[middle, middle].mean() for p in patches])
    front = np.mean([p[middle, :6].mean() for p in patches])  # in front of the body: soft tissue, lung
    assert inside > front + 0.4


def test_the_train_command_says_in_one_line_what_is_missing(tmp_path, drawn, capsys):
    from VertebralFractureLib.cli import main
    from VertebralFractureLib.training.radiograph.columns import column_path

    folder = tmp_path / "columns"
    _with_a_wedge(drawn(0)).save(column_path(folder, 0))
    common = ["train", "radiograph-fracture", "--columns", str(folder), "--first-seed", "0", "--count", "1",
              "--members", "1", "--steps", "1", "--width", "0.125", "--threads", "1", "--no-slices",
              "--no-real-negatives", "--out", str(tmp_path / "fx.pt")]
    assert main(common + ["--held-out", str(tmp_path / "empty")]) != 0
    assert "empty: no held-out columns" in capsys.readouterr().err
    healthy = drawn(1)
    healthy.save(column_path(tmp_path / "normal", 1))
    normal_only = ["--columns", str(tmp_path / "normal"), "--first-seed", "1"]
    assert main(common[:2] + normal_only + common[6:]) != 0
    assert "need both normal and moderately fractured bodies (0 of" in capsys.readouterr().err
    assert not (tmp_path / "fx.pt").exists()  # nothing written
