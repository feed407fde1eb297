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


def test_feature_cache_computes_each_clip_once_and_returns_the_same_values():
    from audiorep.features.cache import FeatureCache

    calls = []

    class CountingFeature(torch.nn.Module):
        def forward(self, audio):
            calls.append(len(audio))
            return audio.abs().unsqueeze(1) * 2

    cache, feature = FeatureCache(), CountingFeature()
    audio = torch.randn(4, 10)
    first = cache(feature, audio, torch.tensor([0, 1, 2, 3]))
    assert torch.equal(first, feature(audio))
    calls.clear()
    # Clips 1 and 3 again, plus a new clip 7: only clip 7 is computed.
    again = cache(feature, torch.stack([audio[1], audio[3], audio[0] + 1]), torch.tensor([1, 3, 7]))
    assert calls == [1]
    assert torch.equal(again[:2], first[[1, 3]]) and len(cache) == 5


def test_decode_traversals_moves_one_latent_at_a_time():
    from audiorep.models.vae import VariationalAutoencoder

    model = VariationalAutoencoder(input_shape=(6, 5), latent_dim=3, hidden_dims=[8])
    traversals = model.decode_traversals([-1.0, 0.0, 1.0])
    assert traversals.shape == (3, 3, 6, 5)
    # At value 0 every row decodes the prior mean; elsewhere the rows differ.
    assert torch.allclose(traversals[0, 1], traversals[2, 1])
    assert not torch.allclose(traversals[0, 0], traversals[1, 0])
