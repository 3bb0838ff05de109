import numpy as np
import pytest
import torch

from VertebralFractureLib.voxelmap.network import DualPathwayCNN, count_parameters, kernels
from VertebralFractureLib.voxelmap.network_constants import MARGIN, VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_parameters_are_about_230k_and_calibrated(variant):
    n = count_parameters(DualPathwayCNN(variant))
    assert 215_000 <= n <= 250_000  # Nicolaes et al. 2019, §3.2: about 230 k, equal across Table 1 variants


def test_eleven_layers_and_receptive_fields():
    model = DualPathwayCNN("3d")
    convs = [m for m in model.normal.modules() if isinstance(m, torch.nn.Conv3d)]
    head = [m for m in model.head.modules() if isinstance(m, torch.nn.Conv3d)]
    assert len(convs) == 8 and len(head) == 3  # 8 conv + 2 fully connected + classification = 11
    assert model.receptive_field() == {"normal": (17, 17, 17), "subsampled": (51, 51, 51)}
    assert DualPathwayCNN("1slice").receptive_field()["normal"] == (17, 17, 1)
    assert kernels("5slices")[0] == (3, 3, 5) and kernels("5slices")[1] == (3, 3, 1)


def test_output_shape_and_bad_size():
    model = DualPathwayCNN("3d").eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 2 * MARGIN + 6, 2 * MARGIN + 3, 2 * MARGIN + 9))
    assert out.shape == (2, 3, 6, 3, 9)
    with pytest.raises(ValueError, match="must be 2\\*.* a positive multiple of 3"):
        model(torch.zeros(1, 1, 2 * MARGIN + 4, 2 * MARGIN + 3, 2 * MARGIN + 3))


def test_sagittal_variant_ignores_far_lateral_slices():
    torch.manual_seed(0)
    model = DualPathwayCNN("1slice").eval()
    x = torch.randn(1, 1, 51, 51, 51)
    y = x.clone()
    y[..., :21] = 5.0  # more than 1 voxel laterally outside the centre 3 (and its 3-voxel coarse block)
    y[..., 30:] = -5.0
    with torch.no_grad():
        a, b = model(x)[..., 1], model(y)[..., 1]
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5)
