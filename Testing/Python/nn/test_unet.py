import pytest
import torch

from VertebralFractureLib.nn.unet import UNet, count_parameters


@pytest.mark.parametrize("dims,shape", [(3, (2, 1, 8, 16, 12)), (2, (3, 1, 24, 16))])
def test_unet_output_shape_matches_input(dims, shape):
    torch.manual_seed(0)
    net = UNet(1, 3, (4, 8, 8), dims=dims, convs=(1, 2, 2))
    out = net(torch.randn(*shape))
    assert out.shape == (shape[0], 3, *shape[2:])
    assert net.divisor == 4
    assert torch.isfinite(out).all()


def test_unet_learns_a_tiny_mapping():
    torch.manual_seed(0)
    net = UNet(1, 1, (4, 8), dims=2, convs=1)
    x = torch.randn(4, 1, 8, 8)
    target = (x > 0).float()
    optimiser = torch.optim.Adam(net.parameters(), 3e-2)
    first = None
    for _ in range(30):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), target)
        first = first if first is not None else float(loss.detach())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert float(loss.detach()) < 0.5 * first


def test_convs_per_level_must_match_levels():
    with pytest.raises(ValueError, match="levels"):
        UNet(1, 1, (4, 8, 16), convs=(1, 2))
    assert count_parameters(UNet(1, 1, (4, 8), dims=2, convs=1)) > 0
