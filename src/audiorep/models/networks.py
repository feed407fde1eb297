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

ARCHITECTURES = ("mlp", "conv", "gru")


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
    raise ValueError(f"model.architecture={architecture!r} is not one of {list(ARCHITECTURES)}")
