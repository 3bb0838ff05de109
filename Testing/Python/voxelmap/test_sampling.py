import numpy as np

from VertebralFractureLib.geometry import ImageGeometry
from VertebralFractureLib.training.voxelmap.data import Sample
from VertebralFractureLib.training.voxelmap.sampling import SegmentSampler
from VertebralFractureLib.voxelmap.network_constants import FRACTURE, IGNORE, MARGIN, NORMAL


def fake_sample(shape=(24, 18, 18), seed=0) -> Sample:
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, np.uint8)
    k, j = shape[0], shape[1]
    labels[k // 8:k // 8 + 4, j // 3:2 * j // 3, j // 3:2 * j // 3] = NORMAL
    labels[5 * k // 8:5 * k // 8 + 3, j // 3:2 * j // 3, j // 3:2 * j // 3] = FRACTURE
    labels[:, :, :2] = IGNORE
    context = rng.normal(0, 1, tuple(s + 2 * MARGIN for s in shape)).astype(np.float32)
    # encode the label in the input so a model can learn it
    inner = context[MARGIN:-MARGIN, MARGIN:-MARGIN, MARGIN:-MARGIN]
    inner += 3.0 * (labels == NORMAL) + 6.0 * (labels == FRACTURE)
    geometry = ImageGeometry(list(shape[::-1]), [2.0] * 3, [0.0] * 3, np.eye(3))
    centroids = np.array([[18.0, 18.0, 10.0], [18.0, 18.0, 33.0]])
    return Sample("fake", context, labels, labels != IGNORE, geometry, ["L1", "L2"], centroids, np.array([0, 2]))


def test_segments_line_up_with_labels():
    sample = fake_sample()
    sampler = SegmentSampler([sample], size=3, noise=0.0, flip=False, seed=1)
    for _ in range(20):
        x, y = sampler.draw()
        assert x.shape == (3 + 2 * MARGIN,) * 3 and y.shape == (3, 3, 3)
        centre = x[MARGIN + 1, MARGIN + 1, MARGIN + 1]
        if y[1, 1, 1] == FRACTURE:
            assert centre > 3.0


def test_weighted_classes_and_flips_keep_pairs():
    sampler = SegmentSampler([fake_sample()], size=3, seed=2, class_weights=(0.0, 0.0, 1.0), noise=0.0)
    ys = [sampler.draw()[1] for _ in range(30)]
    assert all(y[1, 1, 1] == FRACTURE for y in ys)
    x, y = sampler.batch(4)
    assert x.shape == (4, 1) + (3 + 2 * MARGIN,) * 3 and y.dtype == np.int64


def test_sample_roundtrip(tmp_path):
    sample = fake_sample()
    loaded = Sample.load(sample.save(tmp_path / "s.npz"))
    assert loaded.levels == ["L1", "L2"] and list(loaded.fractured) == [False, True]
    np.testing.assert_array_equal(loaded.labels, sample.labels)
    np.testing.assert_allclose(loaded.context, sample.context, atol=1e-2)
