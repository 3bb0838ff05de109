import numpy as np
import torch

from VertebralFractureLib.spine.network import CentrelineNet, centreline_loss, normalise_hu, soft_argmax_2d


def test_soft_argmax_finds_a_sharp_peak_and_the_middle_of_two():
    logits = torch.full((1, 2, 9, 12), -50.0)
    logits[0, 0, 3, 7] = 50.0
    logits[0, 1, 2, 2] = 50.0
    logits[0, 1, 6, 8] = 50.0
    coords, probability = soft_argmax_2d(logits)
    assert torch.allclose(coords[0, 0], torch.tensor([3.0, 7.0]), atol=1e-4)
    assert torch.allclose(coords[0, 1], torch.tensor([4.0, 5.0]), atol=1e-4)
    assert torch.allclose(probability.sum(dim=(2, 3)), torch.ones(1, 2))


def test_soft_argmax_is_sub_voxel_for_a_gaussian_blob():
    j, i = torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="ij")
    logits = -((j - 7.3) ** 2 + (i - 11.6) ** 2) / 2.0
    coords, _ = soft_argmax_2d(logits[None, None])
    assert torch.allclose(coords[0, 0], torch.tensor([7.3, 11.6]), atol=1e-3)


def test_network_shapes_and_stride_conversion():
    torch.manual_seed(0)
    net = CentrelineNet(channels=(4, 8), convs=(1, 1), stem_channels=4)
    assert net.divisor == (2, 4, 4)
    out = net(torch.randn(2, 1, 6, 16, 12))
    assert out["coords"].shape == (2, 6, 2)
    assert out["presence_logit"].shape == (2, 6)
    # coordinates are in input (3 mm) voxels: within the input slice
    coords = out["coords"].detach()
    assert float(coords[..., 0].max()) <= 15 and float(coords[..., 1].max()) <= 11
    assert torch.all(out["spread"] > 0)


def test_loss_masks_absent_and_invalid_slices():
    output = {
        "coords": torch.tensor([[[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]]]),
        "presence_logit": torch.tensor([[10.0, 10.0, -10.0]]),
    }
    target = torch.tensor([[[2.0, 3.0], [0.0, 0.0], [0.0, 0.0]]])
    loss, parts = centreline_loss(output, target, torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0]]))
    # only slice 0 counts for the MAE: (1 + 2) / 2 voxels x 3 mm
    assert parts["mae_mm"] == np.float32(4.5)
    assert parts["bce"] < 1e-3
    assert abs(float(loss) - (parts["mae_mm"] + parts["bce"])) < 1e-4


def test_normalise_hu_clips_and_scales():
    values = np.array([-3000, -1000, 0, 1000, 5000], np.int16)
    assert np.allclose(normalise_hu(values), [-1, -1, 0, 1, 2])
    assert torch.allclose(normalise_hu(torch.tensor(values)), torch.tensor([-1.0, -1, 0, 1, 2]))
