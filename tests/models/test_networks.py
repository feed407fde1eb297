import pytest
import torch

from audiorep.models.networks import build_encoder_decoder


@pytest.mark.parametrize("architecture", ["mlp", "conv", "gru"])
@pytest.mark.parametrize("shape", [(84, 63), (33, 17), (1, 8, 8), (1, 28, 28)])
def test_decoder_returns_the_exact_input_shape(architecture, shape):
    encoder, decoder = build_encoder_decoder(architecture, shape, 6, [32, 16], [8, 8])
    x = torch.randn(3, *shape)
    out = encoder(x)
    assert out.shape == (3, 12)
    assert decoder(out[:, :6]).shape == (3, *shape)


def test_unknown_architecture_names_the_key():
    with pytest.raises(ValueError, match="model.architecture"):
        build_encoder_decoder("transformer", (8, 8), 4, [16], [8])


def test_conv_too_deep_for_input_says_what_to_change():
    with pytest.raises(ValueError, match="conv_channels"):
        build_encoder_decoder("conv", (4, 4), 4, [16], [8, 8, 8, 8])
