"""The common base of every input feature: compression, normalisation, statistics, inversion."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

COMPRESSIONS = ("none", "log")
NORMALIZATIONS = ("none", "max", "standardize", "standardize_global")
# Both use training-set statistics: per frequency bin, or one mean/std over all bins (which
# keeps the loud low bins louder than the rest, as they are in the signal).
STANDARDIZATIONS = ("standardize", "standardize_global")


def make_window(name: str, length: int) -> Tensor:
    """A periodic analysis window, as scipy's ``get_window(name, length, fftbins=True)``: (length,)."""
    key = name.lower()
    if key in ("hann", "hanning"):
        return torch.hann_window(length, periodic=True)
    if key == "hamming":
        return torch.hamming_window(length, periodic=True)
    if key == "blackman":
        return torch.blackman_window(length, periodic=True)
    if key in ("ones", "boxcar", "rect", "rectangular"):
        return torch.ones(length)
    raise ValueError(
        f"feature.window={name!r} is not supported; use one of hann, hamming, blackman, ones"
    )


def _audio_of(batch: Tensor | Mapping[str, Any]) -> Tensor:
    # Data loaders yield dicts (DESIGN.md "Batch"); accept them as well as bare tensors.
    if isinstance(batch, Mapping):
        if "audio" not in batch:
            raise KeyError(
                "fit_statistics needs batches of audio: a (B, T) tensor or a dict with 'audio'"
            )
        return batch["audio"]
    return batch


class Feature(nn.Module):
    """Base of all features: ``forward`` maps audio (B, T) to features (B, F, N).

    Subclasses implement ``transform`` (raw, uncompressed features), ``inverse_transform``
    (raw features back to audio), ``output_shape`` and ``frame_rate``. This class adds the
    optional log compression and per-example ("max"), per-bin ("standardize") or global
    ("standardize_global")
    normalisation, the streaming statistics, and ``invert`` which undoes them.
    """

    #: whether the raw features are non-negative magnitudes (so log compression makes sense)
    nonnegative: bool = True

    def __init__(
        self,
        sample_rate: int,
        compression: str = "none",
        eps: float = 1e-6,
        normalization: str = "none",
    ) -> None:
        super().__init__()
        if compression not in COMPRESSIONS:
            raise ValueError(f"feature.compression={compression!r}: use one of {COMPRESSIONS}")
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"feature.normalization={normalization!r}: use one of {NORMALIZATIONS}"
            )
        if compression == "log" and not self.nonnegative:
            raise ValueError(
                f"feature.compression='log' does not apply to {type(self).__name__} "
                "(its values can be negative); set feature.compression=none"
            )
        self.sample_rate = int(sample_rate)
        self.compression = compression
        self.eps = float(eps)
        self.normalization = normalization

    def _init_statistics(self, num_bins: int) -> None:
        """Register the per-bin statistics buffers; subclasses call this once F is known."""
        if self.normalization in STANDARDIZATIONS:
            # Persistent: they are learned from the training set and must come back with
            # the checkpoint, unlike filterbanks which are recomputed from the config.
            self.register_buffer("stats_mean", torch.zeros(num_bins))
            self.register_buffer("stats_std", torch.ones(num_bins))
            self.register_buffer("stats_count", torch.zeros((), dtype=torch.float64))

    # ---- to be implemented by subclasses -------------------------------------------------
    def transform(self, audio: Tensor) -> Tensor:
        """Raw features before compression/normalisation: (B, T) -> (B, F, N)."""
        raise NotImplementedError

    def inverse_transform(self, raw: Tensor, n_iter: int, length: int | None) -> Tensor:
        """Raw features back to audio: (B, F, N) -> (B, T)."""
        raise NotImplementedError

    def output_shape(self, num_samples: int) -> tuple[int, int]:
        """(F, N) that ``forward`` returns for ``num_samples`` samples, without running audio."""
        raise NotImplementedError

    @property
    def frame_rate(self) -> float:
        """Frames per second of the output."""
        raise NotImplementedError

    # ---- shared pipeline ----------------------------------------------------------------
    @property
    def needs_statistics(self) -> bool:
        """True when ``fit_statistics`` must run on training audio before ``forward``."""
        return self.normalization in STANDARDIZATIONS and float(self.stats_count) == 0.0

    def _check_audio(self, audio: Tensor) -> Tensor:
        if audio.dim() != 2:
            raise ValueError(
                f"{type(self).__name__} expects audio of shape (batch, time), got {tuple(audio.shape)}"
            )
        if not audio.is_floating_point():
            audio = audio.float()
        return audio

    def compress(self, raw: Tensor) -> Tensor:
        """Apply ``compression``: (B, F, N) -> (B, F, N)."""
        if self.compression == "log":
            return torch.log(raw + self.eps)
        return raw

    def decompress(self, features: Tensor) -> Tensor:
        """Undo ``compression``: (B, F, N) -> (B, F, N)."""
        if self.compression == "log":
            return (torch.exp(features) - self.eps).clamp_min(0.0)
        return features

    def normalize(self, features: Tensor) -> Tensor:
        """Apply ``normalization``: (B, F, N) -> (B, F, N)."""
        if self.normalization == "max":
            # Per example, as the ATIAM seed did; abs() so signed features (MFCC, waveform)
            # end up in [-1, 1] too.
            peak = features.abs().amax(dim=(-2, -1), keepdim=True)
            return features / peak.clamp_min(torch.finfo(features.dtype).tiny)
        if self.normalization in STANDARDIZATIONS:
            if self.needs_statistics:
                raise RuntimeError(
                    f"feature.normalization='standardize' needs per-bin statistics: call "
                    f"{type(self).__name__}.fit_statistics(training audio batches) before use, "
                    "or set feature.normalization to 'none' or 'max'"
                )
            mean = self.stats_mean.to(features.dtype)[:, None]
            std = self.stats_std.to(features.dtype)[:, None]
            return (features - mean) / std
        return features

    def denormalize(self, features: Tensor) -> Tensor:
        """Undo ``normalization`` where possible ("max" loses the scale and is left as is)."""
        if self.normalization in STANDARDIZATIONS:
            if self.needs_statistics:
                raise RuntimeError("feature.normalization='standardize' has no fitted statistics")
            return (
                features * self.stats_std.to(features.dtype)[:, None]
                + self.stats_mean.to(features.dtype)[:, None]
            )
        return features

    def forward(self, audio: Tensor) -> Tensor:
        """Audio (B, T) -> features (B, F, N)."""
        return self.normalize(self.compress(self.transform(self._check_audio(audio))))

    @torch.no_grad()
    def fit_statistics(self, batches: Iterable[Tensor | Mapping[str, Any]]) -> Feature:
        """Stream (B, T) audio batches and store per-bin mean/std of the compressed features.

        Sums are accumulated in float64 so a long pass over the training set stays exact.
        """
        if self.normalization not in STANDARDIZATIONS:
            raise RuntimeError(
                f"fit_statistics only applies with feature.normalization in {STANDARDIZATIONS}"
            )
        count = 0.0
        total: Tensor | None = None
        total_sq: Tensor | None = None
        for batch in batches:
            audio = self._check_audio(_audio_of(batch).to(self.stats_mean.device))
            feats = self.compress(self.transform(audio)).double()  # (B, F, N)
            s = feats.sum(dim=(0, 2))
            s2 = (feats * feats).sum(dim=(0, 2))
            total = s if total is None else total + s
            total_sq = s2 if total_sq is None else total_sq + s2
            count += feats.shape[0] * feats.shape[2]
        if total is None or total_sq is None or count == 0:
            raise ValueError("fit_statistics got no batches")
        if self.normalization == "standardize_global":
            num_bins = total.numel()
            total = total.sum().expand(num_bins)
            total_sq = total_sq.sum().expand(num_bins)
            count *= num_bins
        mean = total / count
        var = (total_sq / count - mean * mean).clamp_min(0.0)
        # Constant bins (e.g. above fmax) would divide by zero; a floor keeps them finite.
        std = var.sqrt().clamp_min(1e-5)
        self.stats_mean.copy_(mean.to(self.stats_mean.dtype))
        self.stats_std.copy_(std.to(self.stats_std.dtype))
        self.stats_count.fill_(count)
        return self

    @torch.no_grad()
    def invert(self, features: Tensor, n_iter: int = 32, length: int | None = None) -> Tensor:
        """Features (B, F, N) -> audio (B, T), undoing normalisation and compression first."""
        raw = self.decompress(self.denormalize(features))
        return self.inverse_transform(raw, n_iter=n_iter, length=length)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, compression={self.compression!r}, "
            f"normalization={self.normalization!r}"
        )
