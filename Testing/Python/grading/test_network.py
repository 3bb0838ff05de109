"""The Husseini et al. 2020, §2.3 network."""

import torch

from VertebralFractureLib.grading.network import GradingNet


def test_paper_architecture_shapes():
    torch.manual_seed(0)
    net = GradingNet().eval()
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 128, 256]
    assert all(c.kernel_size == (5, 5) for c in convs)
    linears = [m for m in net.trunk if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [256, 128, 64]
    assert net.embed.out_features == 8 and net.classify.out_features == 2
    x = torch.randn(3, 2, 112, 112)
    with torch.no_grad():
        assert net.embedding(x).shape == (3, 8)
        assert net(x).shape == (3, 2)
        p = net.fracture_probability(x)
    assert p.shape == (3,) and bool(((p > 0) & (p < 1)).all())
    assert torch.allclose(p, torch.softmax(net(x), 1)[:, 1])


def test_width_multiplier():
    net = GradingNet(width=0.25)
    convs = [m.out_channels for m in net.features if isinstance(m, torch.nn.Conv2d)]
    assert convs == [8, 16, 32, 64]
    assert net.config["width"] == 0.25
