"""Embedding encoders of Deep embedded Music (Tile2Vec for audio), shared by any model.

Each maps one feature map to a vector (batch, out_dim):
- spectral encoders (``dense``, ``conv2d``, ``gru``, ``crnn``, ``resnet18``) read a
  log-mel or MFCC map (B, F, N) or (B, C, F, N);
- ``conv1d`` reads the raw waveform (B, 1, T) (``feature=waveform``).

Layer sizes follow the seed's Keras models. Every encoder starts with a non-affine batch
norm of its input bins, because raw log-mel values sit around -10 and the seed's layers
trained on them only at tiny learning rates. All but ``dense`` end in global pooling or a
recurrent state, so they take inputs of any length (``accepts_any_length``).

These differ from `audiorep.models.networks`' VAE encoders (strided convolutions and an
MLP head sized for one fixed input; a bidirectional GRU): those pair with decoders.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "CRNN",
    "ENCODERS",
    "ConvNet1D",
    "ConvNet2D",
    "DenseEncoder",
    "GRUNet",
    "ResNet18",
    "build_encoder",
]


def _channels_bins_frames(input_shape: Sequence[int]) -> tuple[int, int, int]:
    """(F, N) -> (1, F, N); (C, F, N) stays."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 2:
        return (1, *shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    raise ValueError(f"input_shape must be (bins, frames) or (channels, bins, frames), got {shape}")


def _as_4d(x: Tensor) -> Tensor:
    return x.unsqueeze(1) if x.dim() == 3 else x


class BinNorm(nn.Module):
    """Non-affine batch norm of each (channel, bin) over batch and time: (B, C, F, N)."""

    def __init__(self, channels: int, bins: int):
        super().__init__()
        self.norm = nn.BatchNorm1d(channels * bins, affine=False)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, bins, frames = x.shape
        return self.norm(x.reshape(batch, channels * bins, frames)).view_as(x)


class DenseEncoder(nn.Module):
    """The seed's ``Dense``: one Linear over the flattened map (fixed input length)."""

    input_kind = "spectral"
    accepts_any_length = False

    def __init__(self, input_shape: Sequence[int], out_dim: int):
        super().__init__()
        channels, bins, frames = _channels_bins_frames(input_shape)
        self.norm = BinNorm(channels, bins)
        self.out = nn.Linear(channels * bins * frames, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.norm(_as_4d(x)).flatten(1))


class ConvNet1D(nn.Module):
    """The seed's ``ConvNet1D`` on raw audio: Conv1D 64, 64, 128 with max pooling, dropout,
    then global average pooling. The first layer is strided (``stride``) so that seconds of
    audio fit a CPU batch."""

    input_kind = "waveform"
    accepts_any_length = True

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int,
        channels: Sequence[int] = (64, 64, 128),
        first_kernel: int = 80,
        stride: int = 4,
        pool: int = 4,
        dropout: float = 0.3,
    ):
        super().__init__()
        in_channels = int(input_shape[0])
        layers: list[nn.Module] = [nn.BatchNorm1d(in_channels, affine=False)]
        for i, width in enumerate(channels):
            kernel, step = (first_kernel, stride) if i == 0 else (3, 1)
            layers += [
                nn.Conv1d(in_channels, width, kernel, stride=step, padding=kernel // 2),
                nn.BatchNorm1d(width),
                nn.ReLU(),
                nn.MaxPool1d(pool, ceil_mode=True),
            ]
            in_channels = width
        layers += [nn.Dropout(dropout), nn.AdaptiveAvgPool1d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(in_channels, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.net(x))


class ConvNet2D(nn.Module):
    """The seed's ``ConvNet2D``: 3x3 convolutions of 32, 32, 64 filters, each with batch
    norm and 2x2 max pooling, then global average pooling."""

    input_kind = "spectral"
    accepts_any_length = True

    def __init__(
        self, input_shape: Sequence[int], out_dim: int, channels: Sequence[int] = (32, 32, 64)
    ):
        super().__init__()
        in_channels, bins, _ = _channels_bins_frames(input_shape)
        layers: list[nn.Module] = [BinNorm(in_channels, bins)]
        for width in channels:
            layers += [
                nn.Conv2d(in_channels, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(2, ceil_mode=True),
            ]
            in_channels = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(in_channels, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.net(_as_4d(x)))


class GRUNet(nn.Module):
    """The seed's ``GRUNet``: GRU 64 then GRU 128 over frames; the last state feeds a Linear."""

    input_kind = "spectral"
    accepts_any_length = True

    def __init__(self, input_shape: Sequence[int], out_dim: int, hidden: Sequence[int] = (64, 128)):
        super().__init__()
        channels, bins, _ = _channels_bins_frames(input_shape)
        self.norm = BinNorm(channels, bins)
        widths = [channels * bins, *hidden]
        self.grus = nn.ModuleList(
            nn.GRU(a, b, batch_first=True) for a, b in zip(widths[:-1], widths[1:])
        )
        self.out = nn.Linear(widths[-1], out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.norm(_as_4d(x)).flatten(1, 2).transpose(1, 2)  # (B, N, C*F)
        for gru in self.grus:
            h, last = gru(h)
        return self.out(last[-1])


class CRNN(nn.Module):
    """The seed's ``ConvGRUNet``: 4 convolutions (16/32/32/32 filters, kernels 7, 5, 3, 3),
    each pooling the frequency axis by 2 and keeping time, then GRU 32 over frames."""

    input_kind = "spectral"
    accepts_any_length = True

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int,
        channels: Sequence[int] = (16, 32, 32, 32),
        kernels: Sequence[int] = (7, 5, 3, 3),
        gru_hidden: int = 32,
    ):
        super().__init__()
        if len(channels) != len(kernels):
            raise ValueError(
                f"model.encoder.channels {list(channels)} and kernels {list(kernels)} "
                "need one entry per layer each"
            )
        in_channels, bins, _ = _channels_bins_frames(input_shape)
        layers: list[nn.Module] = [BinNorm(in_channels, bins)]
        for width, kernel in zip(channels, kernels):
            layers += [
                nn.Conv2d(in_channels, width, kernel, padding=kernel // 2),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d((2, 1), ceil_mode=True),
            ]
            in_channels = width
            bins = math.ceil(bins / 2)
        self.conv = nn.Sequential(*layers)
        self.gru = nn.GRU(in_channels * bins, gru_hidden, batch_first=True)
        self.out = nn.Linear(gru_hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(_as_4d(x)).flatten(1, 2).transpose(1, 2)  # (B, N, C*F')
        _, last = self.gru(h)
        return self.out(last[-1])


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convolutions with a shortcut (a 1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 as the seed's: 7x7 stride-2 stem and 3x3 max pooling, stages of [2, 2, 2, 2]
    basic blocks (width ``base_channels`` doubling per stage), global average pooling,
    dropout 0.5. ``base_channels`` 64 is the seed's; smaller trains faster on a CPU."""

    input_kind = "spectral"
    accepts_any_length = True

    def __init__(
        self,
        input_shape: Sequence[int],
        out_dim: int,
        base_channels: int = 64,
        blocks: Sequence[int] = (2, 2, 2, 2),
        dropout: float = 0.5,
    ):
        super().__init__()
        in_channels, bins, _ = _channels_bins_frames(input_shape)
        layers: list[nn.Module] = [
            BinNorm(in_channels, bins),
            nn.Conv2d(in_channels, base_channels, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(base_channels),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        ]
        width = base_channels
        for stage, count in enumerate(blocks):
            out_width = base_channels * 2**stage
            for i in range(count):
                layers.append(BasicBlock(width, out_width, 2 if stage > 0 and i == 0 else 1))
                width = out_width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout)]
        self.net = nn.Sequential(*layers)
        self.out = nn.Linear(width, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.net(_as_4d(x)))


ENCODERS: dict[str, type[nn.Module]] = {
    "dense": DenseEncoder,
    "conv1d": ConvNet1D,
    "conv2d": ConvNet2D,
    "gru": GRUNet,
    "crnn": CRNN,
    "resnet18": ResNet18,
}


def build_encoder(name: str, input_shape: Sequence[int], out_dim: int, **options) -> nn.Module:
    """The encoder called ``name`` (one of `ENCODERS`)."""
    if name not in ENCODERS:
        raise ValueError(f"model/encoder={name!r} is not one of {sorted(ENCODERS)}")
    return ENCODERS[name](input_shape, out_dim, **options)
