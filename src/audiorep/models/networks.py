"""Encoders and decoders shared by every model.

Inputs are feature maps of shape (batch, freq, frames), or images of shape
(batch, channels, height, width). Encoders map them to a flat vector (batch, out_dim);
decoders map a latent vector back to the input's exact shape.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

ARCHITECTURES = ("mlp", "conv", "gru", "pitch_shift")


def _as_image_shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(F, N) -> (1, F, N); (C, H, W) stays."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    raise ValueError(
        f"input_shape must be (freq, frames) or (channels, height, width), got {shape}"
    )


class MLPEncoder(nn.Module):
    """Flatten, then Linear + LeakyReLU(0.2) blocks (as the ATIAM seed), then Linear(out_dim)."""

    def __init__(self, input_shape: Sequence[int], hidden_dims: Sequence[int], out_dim: int):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = math.prod(input_shape)
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.LeakyReLU(0.2)]
            width = hidden
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class MLPDecoder(nn.Module):
    """Linear + ReLU blocks up to the flattened input size, reshaped to `output_shape`."""

    def __init__(self, latent_dim: int, hidden_dims: Sequence[int], output_shape: Sequence[int]):
        super().__init__()
        self.output_shape = tuple(int(s) for s in output_shape)
        layers: list[nn.Module] = []
        width = latent_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        layers.append(nn.Linear(width, math.prod(self.output_shape)))
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).view(z.shape[0], *self.output_shape)


class ConvEncoder2d(nn.Module):
    """Strided 4x4 convolutions (each halves both axes), then an MLP head."""

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        hidden_dim: int,
        out_dim: int,
    ):
        super().__init__()
        self.input_shape = _as_image_shape(input_shape)
        # (F, N) features get a channel axis here and lose it again in the decoder.
        self.adds_channel = len(input_shape) == 2
        layers: list[nn.Module] = []
        in_channels = self.input_shape[0]
        # Spatial sizes before each layer: the decoder needs them to undo odd sizes exactly.
        self.sizes: list[tuple[int, int]] = []
        size = self.input_shape[1:]
        for out_channels in channels:
            if min(size) < 2:
                raise ValueError(
                    f"input {self.input_shape} is too small for {len(channels)} conv layers: "
                    "use fewer `model.conv_channels` or a larger feature"
                )
            self.sizes.append(size)
            layers += [
                nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1),
                nn.BatchNorm2d(out_channels),
                nn.LeakyReLU(0.2),
            ]
            in_channels = out_channels
            size = (size[0] // 2, size[1] // 2)
        self.conv_out_shape = (in_channels, *size)
        self.conv = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(math.prod(self.conv_out_shape), hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.head(self.conv(x))


class ConvDecoder2d(nn.Module):
    """Mirror of `ConvEncoder2d`: MLP, then transposed convolutions back to the exact input size."""

    def __init__(self, latent_dim: int, encoder: ConvEncoder2d, hidden_dim: int):
        super().__init__()
        self.squeeze_channel = encoder.adds_channel
        self.start_shape = encoder.conv_out_shape
        self.head = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, math.prod(self.start_shape)),
            nn.ReLU(),
        )
        conv_channels = [m.out_channels for m in encoder.conv if isinstance(m, nn.Conv2d)]
        targets = list(reversed(encoder.sizes))
        in_channels = list(reversed(conv_channels))
        out_channels = in_channels[1:] + [encoder.input_shape[0]]
        layers: list[nn.Module] = []
        size = self.start_shape[1:]
        for i, (c_in, c_out, target) in enumerate(zip(in_channels, out_channels, targets)):
            # A stride-2 transposed conv doubles the size; output_padding adds back the odd row.
            padding = (target[0] - 2 * size[0], target[1] - 2 * size[1])
            layers.append(
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, output_padding=padding)
            )
            if i < len(targets) - 1:
                layers += [nn.BatchNorm2d(c_out), nn.ReLU()]
            size = target
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        x = self.deconv(self.head(z).view(z.shape[0], *self.start_shape))
        return x.squeeze(1) if self.squeeze_channel else x


class GRUEncoder(nn.Module):
    """Bidirectional GRU over frames (as the seed's recurrent VAE); the final states feed a Linear."""

    def __init__(
        self, input_shape: Sequence[int], hidden_dim: int, out_dim: int, num_layers: int = 1
    ):
        super().__init__()
        channels, freq, _ = _as_image_shape(input_shape)
        self.gru = nn.GRU(
            channels * freq, hidden_dim, num_layers=num_layers, batch_first=True, bidirectional=True
        )
        self.out = nn.Linear(2 * hidden_dim, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4:  # (B, C, F, N) -> (B, C*F, N)
            x = x.flatten(1, 2)
        _, h = self.gru(x.transpose(1, 2))
        return self.out(torch.cat([h[-2], h[-1]], dim=-1))


class GRUDecoder(nn.Module):
    """The latent sets the GRU's initial state and is fed at every frame; a Linear emits each frame."""

    def __init__(
        self, latent_dim: int, hidden_dim: int, output_shape: Sequence[int], num_layers: int = 1
    ):
        super().__init__()
        self.output_shape = tuple(int(s) for s in output_shape)
        channels, freq, self.frames = _as_image_shape(output_shape)
        self.num_layers = num_layers
        self.init = nn.Linear(latent_dim, hidden_dim * num_layers)
        self.gru = nn.GRU(latent_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.out = nn.Linear(hidden_dim, channels * freq)

    def forward(self, z: Tensor) -> Tensor:
        batch = z.shape[0]
        h0 = torch.tanh(self.init(z)).view(batch, self.num_layers, -1).transpose(0, 1).contiguous()
        steps = z.unsqueeze(1).expand(batch, self.frames, z.shape[-1])
        y, _ = self.gru(steps, h0)
        return self.out(y).transpose(1, 2).reshape(batch, *self.output_shape)


def sample_rows(x: Tensor, rows: Tensor) -> Tensor:
    """Read (B, L, N) maps at fractional rows (B, R) by linear interpolation -> (B, R, N).

    Rows outside [0, L - 1] read the edge row.
    """
    length, frames = x.shape[1], x.shape[2]
    rows = rows.clamp(0.0, length - 1.001)
    below = rows.floor()
    weight = (rows - below).unsqueeze(-1)
    index = below.long().unsqueeze(-1).expand(-1, -1, frames)
    return x.gather(1, index) * (1 - weight) + x.gather(1, index + 1) * weight


class PitchAxis(nn.Module):
    """The affine map between latent 0 and a position (in bins) on the frequency axis.

    Shared by `PitchShiftEncoder` and `PitchShiftDecoder`, so that decoding latent 0 shifts
    the output by exactly the amount the encoder measured.
    """

    def __init__(self, n_bins: int):
        super().__init__()
        self.center = nn.Parameter(torch.tensor(n_bins / 2.0))
        # Initially one latent unit is a sixth of the axis: the prior's +-3 spans it.
        self.log_bins_per_unit = nn.Parameter(torch.tensor(math.log(n_bins / 6.0)))

    def to_latent(self, position: Tensor) -> Tensor:
        return (position - self.center) / self.log_bins_per_unit.exp()

    def to_offset(self, latent: Tensor) -> Tensor:
        """Latent 0 -> the shift in bins from the axis centre."""
        return latent * self.log_bins_per_unit.exp()


class PitchShiftEncoder(nn.Module):
    """Latent 0 is a pitch position read off the log-frequency axis; the other latents see
    the input shifted back by that position, so they cannot carry pitch.

    On a log-frequency feature (CQT) a change of f0 shifts the pattern of partials along the
    frequency axis. The position is a soft-argmax over a frequency-axis convolution, which
    moves with the pattern by construction: no latent has to learn that a shift is one
    factor, which is what plain MLP and conv VAEs fail to learn (they spread f0 over several
    latents). Latent 0's posterior variance is one learned constant.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        latent_dim: int,
        hidden_dims: Sequence[int],
        axis: PitchAxis,
        margin_bins: int = 20,
        position_channels: int = 32,
        kernel_size: int = 5,
        position_sharpness: float = 10.0,
    ):
        super().__init__()
        self.n_bins, self.n_frames = (int(s) for s in input_shape)
        self.axis = axis
        self.margin_bins = margin_bins
        padding = kernel_size // 2
        self.position_net = nn.Sequential(
            nn.Conv1d(self.n_frames, position_channels, kernel_size, padding=padding),
            nn.LeakyReLU(0.2),
            nn.Conv1d(position_channels, position_channels, kernel_size, padding=padding),
            nn.LeakyReLU(0.2),
            nn.Conv1d(position_channels, 1, kernel_size, padding=padding),
        )
        self.position_logvar = nn.Parameter(torch.tensor(-4.0))
        # A peaked softmax from the start: its argmax already follows the pattern when the
        # input shifts, so registration works from the first step. With a flat one (sharpness
        # 1) the template learns pitch itself, and 1 seed in 3 ended entangled.
        self.log_position_sharpness = nn.Parameter(torch.tensor(math.log(position_sharpness)))
        # The re-registered map has a margin on both sides, so a shift loses no bins.
        self.relative_bins = self.n_bins + 2 * margin_bins
        self.rest = MLPEncoder(
            (self.relative_bins, self.n_frames), hidden_dims, 2 * (latent_dim - 1)
        )
        self.register_buffer("bins", torch.arange(self.n_bins, dtype=torch.float32))
        self.register_buffer(
            "relative_rows", torch.arange(self.relative_bins, dtype=torch.float32) - margin_bins
        )

    def position(self, x: Tensor) -> Tensor:
        """(B, F, N) -> (B,) soft-argmax position in bins."""
        logits = self.position_net(x.transpose(1, 2)).squeeze(1) * self.log_position_sharpness.exp()
        return (logits.softmax(dim=-1) * self.bins).sum(dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        position = self.position(x)
        shift = position - self.axis.center
        registered = sample_rows(x, self.relative_rows + shift.unsqueeze(-1))
        mu_rest, logvar_rest = self.rest(registered).chunk(2, dim=-1)
        mu0 = self.axis.to_latent(position).unsqueeze(-1)
        logvar0 = self.position_logvar.expand(len(x), 1)
        return torch.cat([mu0, mu_rest, logvar0, logvar_rest], dim=-1)


class PitchShiftDecoder(nn.Module):
    """Latents 1.. draw a template on a relative frequency axis; latent 0 shifts it into place.

    The template lives on a grid `upsample` times finer than the bins, so a shift by a
    fraction of a bin does not blur narrow peaks (a blur the other latents would otherwise
    learn to undo, as a function of pitch). A second, small MLP of latent 0 alone adds what
    the filterbank does not shift: on the coarse CQT the same sound an octave higher is
    0.04-0.16 (standardised log units) quieter, and patterns run off the axis edges.
    """

    def __init__(
        self,
        latent_dim: int,
        encoder: PitchShiftEncoder,
        hidden_dims: Sequence[int],
        upsample: int = 4,
        pitch_only_width: int = 64,
    ):
        super().__init__()
        self.axis = encoder.axis
        self.n_bins, self.n_frames = encoder.n_bins, encoder.n_frames
        self.margin_bins = encoder.margin_bins
        self.upsample = upsample
        self.template = MLPDecoder(
            latent_dim - 1, hidden_dims, (encoder.relative_bins * upsample, self.n_frames)
        )
        self.pitch_only = MLPDecoder(
            1, (pitch_only_width, pitch_only_width), (self.n_bins, self.n_frames)
        )
        self.register_buffer("bins", torch.arange(self.n_bins, dtype=torch.float32))

    def forward(self, z: Tensor) -> Tensor:
        shift = self.axis.to_offset(z[:, 0])
        template = self.template(z[:, 1:])
        rows = (self.bins + self.margin_bins - shift.unsqueeze(-1)) * self.upsample
        return sample_rows(template, rows) + self.pitch_only(z[:, :1])


def build_encoder_decoder(
    architecture: str,
    input_shape: Sequence[int],
    latent_dim: int,
    hidden_dims: Sequence[int],
    conv_channels: Sequence[int],
) -> tuple[nn.Module, nn.Module]:
    """An encoder to (batch, 2 * latent_dim) and a decoder back to `input_shape`."""
    input_shape = tuple(int(s) for s in input_shape)
    if architecture == "mlp":
        return (
            MLPEncoder(input_shape, hidden_dims, 2 * latent_dim),
            MLPDecoder(latent_dim, list(reversed(hidden_dims)), input_shape),
        )
    if architecture == "conv":
        encoder = ConvEncoder2d(input_shape, conv_channels, hidden_dims[0], 2 * latent_dim)
        return encoder, ConvDecoder2d(latent_dim, encoder, hidden_dims[0])
    if architecture == "gru":
        return (
            GRUEncoder(input_shape, hidden_dims[0], 2 * latent_dim),
            GRUDecoder(latent_dim, hidden_dims[0], input_shape),
        )
    if architecture == "pitch_shift":
        if len(input_shape) != 2 or latent_dim < 2:
            raise ValueError(
                "model.architecture=pitch_shift needs a (freq, frames) feature with a "
                f"log-frequency axis (feature=cqt or cqt_coarse) and model.latent_dim >= 2; "
                f"got input shape {input_shape} and latent_dim {latent_dim}"
            )
        encoder = PitchShiftEncoder(input_shape, latent_dim, hidden_dims, PitchAxis(input_shape[0]))
        return encoder, PitchShiftDecoder(latent_dim, encoder, list(reversed(hidden_dims)))
    raise ValueError(f"model.architecture={architecture!r} is not one of {list(ARCHITECTURES)}")
