import pytest
import torch

from audiorep.models.networks import build_encoder_decoder


@pytest.mark.parametrize("architecture", ["mlp", "conv", "gru", "pitch_shift"])
@pytest.mark.parametrize("shape", [(84, 63), (33, 17), (1, 8, 8), (1, 28, 28)])
def test_decoder_returns_the_exact_input_shape(architecture, shape):
    if architecture == "pitch_shift" and len(shape) == 3:
        pytest.skip("pitch_shift needs a (freq, frames) feature; see the next test")
    encoder, decoder = build_encoder_decoder(architecture, shape, 6, [32, 16], [8, 8])
    x = torch.randn(3, *shape)
    out = encoder(x)
    assert out.shape == (3, 12)
    assert decoder(out[:, :6]).shape == (3, *shape)


def test_unknown_architecture_names_the_key():
    with pytest.raises(ValueError, match="model.architecture"):
        build_encoder_decoder("transformer", (8, 8), 4, [16], [8])


def test_pitch_shift_refuses_images_and_says_what_it_needs():
    with pytest.raises(ValueError, match="model.architecture=pitch_shift.*feature=cqt"):
        build_encoder_decoder("pitch_shift", (1, 28, 28), 4, [16], [8])


def test_sample_rows_interpolates_between_rows_and_clamps_at_the_edges():
    from audiorep.models.networks import sample_rows

    x = torch.tensor([[[0.0], [10.0], [20.0]]])  # (1, 3 rows, 1 frame)
    rows = torch.tensor([[0.0, 0.25, 1.5, -2.0, 7.0]])
    expected = torch.tensor([[[0.0], [2.5], [15.0], [0.0], [20.0]]])
    assert torch.allclose(sample_rows(x, rows), expected, atol=0.02)


def test_pitch_shift_encoder_moves_latent_0_with_the_input_and_the_rest_not_at_all():
    torch.manual_seed(0)
    encoder, _ = build_encoder_decoder("pitch_shift", (40, 4), 3, [32], [8])
    # A position net whose response peaks on the pattern, as a trained one does (an untrained
    # one spreads its softmax over the whole axis, edges included).
    encoder.position_net = torch.nn.Conv1d(4, 1, 1)
    torch.nn.init.constant_(encoder.position_net.weight, 5.0)
    torch.nn.init.zeros_(encoder.position_net.bias)
    pattern = torch.zeros(40, 4)
    pattern[10:14] = torch.tensor([1.0, 3.0, 2.0, 0.5]).unsqueeze(-1)
    moved = torch.roll(pattern, 7, dims=0)  # the pattern 7 bins higher, still inside the axis
    out = encoder(torch.stack([pattern, moved]))
    shift_in_latent = 7 / encoder.axis.log_bins_per_unit.exp()
    assert torch.allclose(out[1, 0] - out[0, 0], shift_in_latent, atol=1e-4)
    # The other latents see the input re-registered to its position: the same for both.
    assert torch.allclose(out[0, 1:], out[1, 1:], atol=1e-4)


def test_pitch_shift_decoder_shifts_its_output_by_what_latent_0_says():
    torch.manual_seed(0)
    encoder, decoder = build_encoder_decoder("pitch_shift", (40, 4), 3, [32], [8])
    torch.nn.init.zeros_(decoder.pitch_only.net[-1].weight)  # only the shifted template
    torch.nn.init.zeros_(decoder.pitch_only.net[-1].bias)
    z = torch.tensor([[0.0, 0.3, -0.2], [0.0, 0.3, -0.2]])
    z[1, 0] = 5 / encoder.axis.log_bins_per_unit.exp()  # 5 bins up
    low, high = decoder(z)
    assert torch.allclose(high[5:], low[:-5], atol=1e-5)
    assert not torch.allclose(high, low)


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
