import numpy as np
import SimpleITK as sitk
import torch
from vmhelpers import line_centreline, phantom_ct, tiny_model

from VertebralFractureLib.voxelmap.inference import fracture_map, predict_probabilities
from VertebralFractureLib.voxelmap.network_constants import MARGIN


def test_slabs_stitch_without_seams():
    model = tiny_model(1)
    rng = np.random.default_rng(0)
    context = rng.normal(0, 1, (6 + 2 * MARGIN, 3 + 2 * MARGIN, 3 + 2 * MARGIN)).astype(np.float32)
    whole = predict_probabilities(model, context, slab=6)
    pieces = predict_probabilities(model, context, slab=3)
    np.testing.assert_allclose(whole, pieces, atol=1e-5)
    np.testing.assert_allclose(whole.sum(axis=0), 1.0, atol=1e-5)
    with torch.no_grad():
        direct = torch.softmax(model(torch.from_numpy(context)[None, None]), 1)[0].numpy()
    np.testing.assert_allclose(whole, direct, atol=1e-5)


def test_fracture_map_is_a_probability_image_on_the_band():
    image = phantom_ct(size=(30, 30, 40), spacing=(1.5, 1.5, 2.0),
                       value=lambda x, y, z: np.where(np.hypot(x, y) < 10, 300.0, 0.0))
    model = tiny_model(2)
    prob, grid, probs = fracture_map(image, line_centreline(50), model, spacing=3.0, band_mm=9.0, return_grid=True)
    array = sitk.GetArrayFromImage(prob)
    assert array.shape == grid.shape and prob.GetSpacing() == (3.0, 3.0, 3.0)
    assert array.min() >= 0 and array.max() <= 1 and array[grid.mask].std() > 0
    assert (array[~grid.mask] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)
    on_ct = fracture_map(image, line_centreline(50), model, spacing=3.0, band_mm=9.0, on_ct_grid=True)
    assert on_ct.GetSize() == image.GetSize()
