"""Training data and command of the lumbosacral classifier (training/radiograph/train_lumbosacral.py)."""

from __future__ import annotations

import numpy as np

from VertebralFractureLib.radiograph.fracture import body_axes
from VertebralFractureLib.radiograph.lumbosacral import l5_probabilities, load_model
from VertebralFractureLib.training.radiograph import train_lumbosacral as T


def _body(top, left=100.0, height=24.0, depth=34.0):
    return np.array([[left, top], [left, top + height], [left + depth / 2, top], [left + depth / 2, top + height],
                     [left + depth, top], [left + depth, top + height]])


def test_candidates_label_l5_only_and_keep_the_off_body_boxes_off_every_body():
    levels = ["L3", "L4", "L5"]
    keypoints = [_body(20.0 + 32.0 * k) for k in range(3)]
    s1 = _body(20.0 + 32.0 * 3, left=110.0)
    items = T.candidates(levels, keypoints, s1, np.random.default_rng(0))
    labels = [label for _, label in items]
    assert labels.count(1) == 1 and labels[2] == 1
    assert len(items) == 3 + 2 + T.OFF_BODY_BOXES
    centre, _, _, depth = body_axes(keypoints[2])
    s1_centre = s1.mean(axis=0)
    for points, label in items[5:]:
        assert label == 0
        moved = points.mean(axis=0)
        assert min(np.linalg.norm(moved - centre), np.linalg.norm(moved - s1_centre)) >= T.OFF_BODY_DEPTHS * depth
    # without S1's keypoints (a spine cut above the sacrum) only the true bodies are candidates
    assert len(T.candidates(levels, keypoints, None, np.random.default_rng(0))) == 3


def test_each_generated_picture_has_one_l5_and_the_command_writes_loadable_weights(tmp_path):
    patches, labels, pictures = T.seed_patches((300007, 0))
    assert patches.shape[1:] == (64, 64) and len(patches) == len(labels) == len(pictures)
    assert sorted(np.unique(pictures)) == list(range(T.SLICES + 2))  # the slices and the film's two looks
    for number in np.unique(pictures):
        assert labels[pictures == number].sum() == 1
    out = tmp_path / "l5.pt"
    assert T.main(["--first-seed", "300007", "--count", "1", "--members", "1", "--steps", "4", "--held-out", "0",
                   "--threads", "1", "--no-real", "--out", str(out)]) == 0
    model = load_model(out)
    scores = l5_probabilities(np.random.default_rng(1).random((200, 200)).astype(np.float32),
                              [_body(40.0), _body(72.0)], model)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))


def test_the_real_slices_used_are_those_anchored_on_a_sacrum_and_a_left_out_patient_is_gone():
    slices = T.anchored_slices()
    assert slices and all(e["levels_certain"] and "sacrum" in e["anchors_in_view"] for e in slices)
    patients = {T.slice_patient(e) for e in slices}
    assert "A062055" in patients and "A002304" not in patients  # A002304's slice is paramedian, no S1 body
    kept = T.anchored_slices(["A062055"])
    assert len(kept) == len(slices) - 2 and "A062055" not in {T.slice_patient(e) for e in kept}


def _positives(items):
    return [points.mean(axis=0) for points, label in items if label == 1]


def test_a_real_slice_gives_its_l5_as_the_one_positive_also_when_the_film_faces_right(tmp_path):
    import SimpleITK as sitk

    entry = next(e for e in T.anchored_slices() if "A058062_19001231" in e["image"])
    windowed, items = T.slice_boxes(entry, 0)
    assert windowed.ndim == 2 and 0.0 <= windowed.min() and windowed.max() <= 1.0
    l5 = next(v for v in entry["vertebrae"] if v["label"] == "L5")
    pixel_mm = entry["spacing_mm"][0]
    positives = _positives(items)
    # L5 only: the annotated box, and the analysis's box where it lies within the match distance of L5's centre
    assert any(np.allclose(p, np.mean(l5["keypoints"], axis=0)) for p in positives)
    assert all(np.linalg.norm(p - np.mean(l5["keypoints"], axis=0)) * pixel_mm < T.REAL_SAGITTAL_MATCH_MM
               or np.linalg.norm(p - l5["centroid"]) * pixel_mm < T.REAL_SAGITTAL_MATCH_MM for p in positives)
    # the analysis's boxes come in besides the annotated bodies, S1, the box below it and the boxes off the bodies
    annotated = sum(1 for v in entry["vertebrae"] if v.get("keypoints"))
    assert len(items) >= annotated + 2 + T.OFF_BODY_BOXES + 8
    assert sum(1 for _, label in items if label == 0) >= 10
    # the same slice stored facing right (bench_sagittal.py --mirror's picture and annotations): read facing left
    # again, the same boxes
    from testdata import benchmark

    from VertebralFractureLib.training.real.reference import reference_dir

    bench = benchmark("bench_sagittal")
    source = reference_dir().parent / entry["image"]
    path = bench.mirror_image(source, tmp_path / "mirrored.nii.gz")
    width = sitk.ReadImage(str(source)).GetSize()[0]
    flipped = {**bench.mirrored_entry(entry, width), "image": str(path)}
    windowed_again, items_again = T.slice_boxes(flipped, 0)
    assert np.allclose(windowed_again, windowed, atol=1e-5)
    assert np.allclose(sorted(map(tuple, _positives(items_again))), sorted(map(tuple, positives)), atol=2.0)
