import numpy as np

from VertebralFractureLib.keypoints.anchors import (
    anchor_shapes,
    centre_size_to_corners,
    decode,
    grid_anchors,
    iou,
    keypoint_boxes,
)
from VertebralFractureLib.training.keypoints.targets import (
    LABEL_LEVELS,
    detection_targets,
    gaussian_heatmaps,
    labelled_channels,
    layer_weights,
)


def _vertebra(x0, y0, depth, height):
    return np.array(
        [[x0, y0], [x0, y0 + height], [x0 + depth / 2, y0], [x0 + depth / 2, y0 + height],
         [x0 + depth, y0], [x0 + depth, y0 + height]], float
    )


def test_positive_anchors_have_iou_above_half_and_encode_their_vertebra():
    shapes = anchor_shapes()
    points = np.stack([_vertebra(20, 10, 30, 20), _vertebra(22, 40, 32, 22)])
    targets = detection_targets(points, [1.0, 0.5], (48, 32), 2, shapes)
    anchors = grid_anchors((48, 32), 2, shapes)
    positive = targets.objectness > 0
    assert positive.sum() > 10
    overlaps = iou(centre_size_to_corners(anchors[positive]), keypoint_boxes(points))
    assigned = targets.assigned[positive]
    chosen = overlaps[np.arange(len(assigned)), assigned]
    assert np.all(chosen > 0.5)
    # the encoded targets decode back to the assigned vertebra
    decoded = decode(targets.encoded[positive].reshape(-1, 6, 2), anchors[positive])
    np.testing.assert_allclose(decoded, points[assigned], atol=1e-4)
    # eq. 3 weight 1 / G
    np.testing.assert_allclose(targets.weight[positive], np.where(assigned == 0, 1.0, 2.0))
    assert np.all(targets.weight[~positive] == 0) and np.all(targets.assigned[~positive] == -1)


def test_every_vertebra_gets_its_best_anchor_even_below_half():
    shapes = anchor_shapes()
    tiny = _vertebra(30, 30, 6, 5)  # much smaller than any anchor: IoU < 0.5 everywhere
    targets = detection_targets(tiny[None], [1.0], (40, 32), 2, shapes)
    assert targets.objectness.sum() == 1


def test_no_vertebrae_gives_all_negative():
    targets = detection_targets(np.zeros((0, 6, 2)), [], (10, 8), 2, anchor_shapes())
    assert targets.objectness.sum() == 0 and targets.encoded.shape == (16, 10, 8, 12)


def test_heatmap_peak_at_centroid():
    heat = gaussian_heatmaps(np.array([[41.5, 81.5]]), ["T12"], (40, 20), 4.0, 6.0)
    channel = LABEL_LEVELS.index("T12")
    assert heat.shape == (len(LABEL_LEVELS), 40, 20)
    peak = np.unravel_index(heat[channel].argmax(), heat[channel].shape)
    assert peak == (20, 10) and heat[channel].max() == 1.0
    assert heat.sum() == heat[channel].sum()


def test_layer_weights_follow_004_l2():
    labelled = labelled_channels(["T5", "T6", "T7"])
    weights = layer_weights(labelled)
    index = LABEL_LEVELS.index
    assert weights[index("T6")] == 1.0
    assert weights[index("T4")] == 0.0 and weights[index("T8")] == 0.0  # maybe visible, unlabelled
    assert weights[index("T2")] == 5.0 and weights[index("L3")] == 5.0  # not in view
    # transitional T13 between labelled T12 and L1 is known absent
    weights = layer_weights(labelled_channels(["T11", "T12", "L1", "L2"]))
    assert weights[index("T13")] == 5.0
    weights = layer_weights(labelled_channels(["T11", "T12"]))
    assert weights[index("T13")] == 0.0
