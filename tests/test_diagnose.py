"""inr_lib.book.diagnose: the colour sweep and the occlusion map measure what they say."""
import numpy as np
import pytest
import torch
from torch import nn

from inr_lib.book import diagnose
from inr_lib.spectral import WAVELENGTHS


def pixelwise_model(seed=0):
    """A per-pixel linear map RGB -> 31 bands: no context, so every answer is known."""
    torch.manual_seed(seed)
    return nn.Conv2d(3, 31, kernel_size=1).double()


def test_colour_sweep_is_the_response_on_uniform_colours():
    model = pixelwise_model()
    a, b = np.array([0.6, 0.1, 0.1]), np.array([0.7, 0.15, 0.1])
    band = int(np.flatnonzero(WAVELENGTHS == 650)[0])
    w, bias = model.weight[band, :, 0, 0].detach().numpy(), model.bias[band].item()
    expected = [w @ ((1 - t) * a + t * b) + bias for t in np.linspace(0, 1, 5)]
    np.testing.assert_allclose(diagnose.colour_sweep(model, a, b, 650, steps=5), expected, rtol=1e-6)


def test_occlusion_moves_the_block_only_where_it_paints_inside_it():
    model = pixelwise_model(1)
    rgb = np.random.default_rng(0).random((3, 64, 64))
    block = (slice(16, 32), slice(32, 48))           # exactly cell (1, 2) of a 16-pixel grid
    fill = np.array([0.5, 0.2, 0.1])
    effect = diagnose.occlusion_effect(model, rgb, block, 650, fill, square=16)
    assert effect.shape == (4, 4)
    outside = np.ones((4, 4), bool)
    outside[1, 2] = False
    assert np.all(effect[outside] == 0)               # a per-pixel model cannot see other cells
    band = int(np.flatnonzero(WAVELENGTHS == 650)[0])
    w = model.weight[band, :, 0, 0].detach().numpy()
    expected = w @ (fill - rgb[:, block[0], block[1]].reshape(3, -1).mean(1))
    assert effect[1, 2] == pytest.approx(expected, rel=1e-5)


def test_a_wavelength_between_bands_is_refused():
    with pytest.raises(ValueError, match="655 nm is not one of the bands"):
        diagnose.colour_sweep(pixelwise_model(), np.zeros(3), np.ones(3), 655)
