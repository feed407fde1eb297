"""Waveform and STFT-based features: STFT magnitude, Mel, LogMel, MFCC."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from audiorep.features.base import Feature, make_window
from audiorep.features.griffin_lim import griffin_lim

# ---- filterbanks (own code; librosa is only a test-time reference) ------------------------

_SLANEY_F_SP = 200.0 / 3  # Hz per mel in the linear part of Slaney's scale
_SLANEY_MIN_LOG_HZ = 1000.0
_SLANEY_LOGSTEP = math.log(6.4) / 27.0

# Frames per block in Mel's power-2 path: ~2 MB of windowed frames and ~2 MB of spectrum
# at n_fft 1024, small enough to stay in cache between passes (measured best of 128..2048).
_BLOCK_FRAMES = 512


def hz_to_mel(freqs: np.ndarray, htk: bool = False) -> np.ndarray:
    """Hz -> mel, Slaney's scale (linear below 1 kHz, log above) or HTK's."""
    freqs = np.asarray(freqs, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + freqs / 700.0)
    mels = freqs / _SLANEY_F_SP
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    log_part = freqs >= _SLANEY_MIN_LOG_HZ
    mels = np.where(
        log_part,
        min_log_mel + np.log(np.maximum(freqs, 1e-12) / _SLANEY_MIN_LOG_HZ) / _SLANEY_LOGSTEP,
        mels,
    )
    return mels


def mel_to_hz(mels: np.ndarray, htk: bool = False) -> np.ndarray:
    """mel -> Hz, inverse of ``hz_to_mel``."""
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    min_log_mel = _SLANEY_MIN_LOG_HZ / _SLANEY_F_SP
    return np.where(
        mels >= min_log_mel,
        _SLANEY_MIN_LOG_HZ * np.exp(_SLANEY_LOGSTEP * (mels - min_log_mel)),
        _SLANEY_F_SP * mels,
    )


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm: str | None = "slaney",
) -> Tensor:
    """Triangular mel filters on the rfft bins: (n_mels, n_fft//2+1), float32.

    Triangles join mel-spaced edge frequencies; ``norm="slaney"`` scales each to unit area
    (2 / bandwidth in Hz) so a flat spectrum gives a flat mel spectrum.
    """
    fmax = sample_rate / 2.0 if fmax is None else float(fmax)
    bin_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin, htk), hz_to_mel(fmax, htk), n_mels + 2), htk)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= 2.0 / (upper - lower)
    elif norm is not None:
        raise ValueError(f"feature.mel_norm={norm!r}: use 'slaney' or null")
    return torch.from_numpy(weights.astype(np.float32))


def dct_matrix(n_out: int, n_in: int) -> Tensor:
    """Orthonormal DCT-II as a matrix: (n_out, n_in); rows are the first n_out basis vectors."""
    n = np.arange(n_in)[None, :]
    k = np.arange(n_out)[:, None]
    basis = np.cos(np.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return torch.from_numpy(basis.astype(np.float32))


def nonnegative_least_squares(matrix: Tensor, target: Tensor, n_iter: int = 50) -> Tensor:
    """Approximate argmin_{X >= 0} ||matrix @ X - target||: (M, K), (B, M, N) -> (B, K, N).

    Starts from the clipped pseudo-inverse solution and refines it with multiplicative
    (Lee-Seung) updates, which keep X non-negative without a step size.
    """
    pinv = torch.linalg.pinv(matrix)
    x = (pinv @ target).clamp_min(0.0)
    floor = 1e-10 * target.amax().clamp_min(1e-30)
    x = x + floor
    gram = matrix.T @ matrix
    numerator = (matrix.T @ target.clamp_min(0.0)).clamp_min(0.0)
    for _ in range(n_iter):
        x = x * numerator / (gram @ x + 1e-30)
    return x


# ---- features ----------------------------------------------------------------------------


class Waveform(Feature):
    """The audio itself: (B, T) -> (B, 1, T); ``invert`` is the identity."""

    nonnegative = False

    def __init__(
        self,
        sample_rate: int,
        compression: str = "none",
        eps: float = 1e-6,
        normalization: str = "none",
    ) -> None:
        super().__init__(sample_rate, compression, eps, normalization)
        self._init_statistics(1)

    def transform(self, audio: Tensor) -> Tensor:
        return audio.unsqueeze(1)

    def inverse_transform(self, raw: Tensor, n_iter: int, length: int | None) -> Tensor:
        audio = raw[:, 0]
        return audio if length is None else audio[..., :length]

    def output_shape(self, num_samples: int) -> tuple[int, int]:
        return 1, int(num_samples)

    @property
    def frame_rate(self) -> float:
        return float(self.sample_rate)


class STFT(Feature):
    """Short-time Fourier magnitude |X|**power: (B, T) -> (B, n_fft//2+1, N)."""

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        window: str = "hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 1.0,
        compression: str = "none",
        eps: float = 1e-6,
        normalization: str = "none",
    ) -> None:
        super().__init__(sample_rate, compression, eps, normalization)
        self.n_fft = int(n_fft)
        self.hop_length = int(hop_length)
        self.win_length = int(win_length or n_fft)
        if self.win_length > self.n_fft:
            raise ValueError(f"feature.win_length={win_length} exceeds feature.n_fft={n_fft}")
        self.window_name = window
        self.center = bool(center)
        self.pad_mode = pad_mode
        self.power = float(power)
        # Not persistent: recomputed from the config, so old checkpoints load after a
        # change to how windows are built.
        self.register_buffer("window", make_window(window, self.win_length), persistent=False)
        left = (self.n_fft - self.win_length) // 2
        self.register_buffer(
            "padded_window",
            torch.nn.functional.pad(self.window, (left, self.n_fft - self.win_length - left)),
            persistent=False,
        )
        self._init_statistics(self.num_bins)

    @property
    def num_bins(self) -> int:
        return self.n_fft // 2 + 1

    def num_frames(self, num_samples: int) -> int:
        """Frames of the STFT of ``num_samples`` samples."""
        if self.center:
            return 1 + num_samples // self.hop_length
        if num_samples < self.n_fft:
            raise ValueError(f"{num_samples} samples is shorter than feature.n_fft={self.n_fft}")
        return 1 + (num_samples - self.n_fft) // self.hop_length

    def frames(self, audio: Tensor) -> Tensor:
        """Unwindowed frames as a strided view: (B, T) -> (B, N, n_fft).

        Same framing as ``torch.stft`` (window centred in n_fft, optional centre padding).
        """
        if self.center:
            pad = self.n_fft // 2
            if self.pad_mode == "constant":
                audio = torch.nn.functional.pad(audio, (pad, pad))
            else:
                audio = torch.nn.functional.pad(audio[:, None], (pad, pad), mode=self.pad_mode)[
                    :, 0
                ]
        return audio.unfold(-1, self.n_fft, self.hop_length)

    def spectrum(self, audio: Tensor) -> Tensor:
        """Complex STFT, frames first: (B, T) -> (B, N, n_fft//2+1).

        Written as pad + unfold + rfft because that is ~2x faster on CPU than ``torch.stft``
        and leaves the frames-first layout that the filterbank GEMM wants.
        """
        return torch.fft.rfft(self.frames(audio) * self.padded_window.to(audio.dtype))

    def magnitude(self, audio: Tensor) -> Tensor:
        """|STFT|: (B, T) -> (B, n_fft//2+1, N)."""
        spec = self.spectrum(audio)
        # hypot of the real and imaginary views is about 2x faster than complex abs() on CPU.
        return torch.hypot(spec.real, spec.imag).transpose(1, 2)

    def _power_spectrum(self, audio: Tensor) -> Tensor:
        mag = self.magnitude(audio)
        if self.power == 1.0:
            return mag
        if self.power == 2.0:
            return mag * mag
        return mag.pow(self.power)

    def transform(self, audio: Tensor) -> Tensor:
        return self._power_spectrum(audio)

    def _griffin_lim(self, magnitude: Tensor, n_iter: int, length: int | None) -> Tensor:
        return griffin_lim(
            magnitude,
            self.n_fft,
            self.hop_length,
            self.win_length,
            self.window,
            n_iter=n_iter,
            length=length,
            center=self.center,
        )

    def inverse_transform(self, raw: Tensor, n_iter: int, length: int | None) -> Tensor:
        magnitude = raw.clamp_min(0.0).pow(1.0 / self.power)
        return self._griffin_lim(magnitude, n_iter, length)

    def output_shape(self, num_samples: int) -> tuple[int, int]:
        return self.num_bins, self.num_frames(num_samples)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    def extra_repr(self) -> str:
        return (
            f"n_fft={self.n_fft}, hop_length={self.hop_length}, win_length={self.win_length}, "
            f"window={self.window_name!r}, power={self.power}, " + super().extra_repr()
        )


class Mel(STFT):
    """Mel spectrogram: mel filterbank @ |STFT|**power, (B, T) -> (B, n_mels, N).

    Defaults follow librosa's ``melspectrogram`` (power 2, Slaney mel scale and area norm).
    """

    def __init__(
        self,
        sample_rate: int,
        n_fft: int = 1024,
        hop_length: int = 256,
        win_length: int | None = None,
        window: str = "hann",
        center: bool = True,
        pad_mode: str = "constant",
        power: float = 2.0,
        n_mels: int = 64,
        fmin: float = 0.0,
        fmax: float | None = None,
        htk: bool = False,
        mel_norm: str | None = "slaney",
        compression: str = "none",
        eps: float = 1e-6,
        normalization: str = "none",
    ) -> None:
        self.n_mels = int(n_mels)
        super().__init__(
            sample_rate,
            n_fft,
            hop_length,
            win_length,
            window,
            center,
            pad_mode,
            power,
            compression,
            eps,
            normalization,
        )
        self.fmin, self.fmax, self.htk = float(fmin), fmax, bool(htk)
        self.register_buffer(
            "mel_basis",
            mel_filterbank(sample_rate, self.n_fft, self.n_mels, fmin, fmax, htk, mel_norm),
            persistent=False,
        )
        # Transposed, each bin's row twice: the GEMM input is |X|^2 as interleaved re^2, im^2.
        self.register_buffer(
            "mel_basis_pairs",
            self.mel_basis.T.repeat_interleave(2, dim=0).contiguous(),
            persistent=False,
        )
        self._mel_bands: list[tuple[int, int, int, int]] = []
        for m0 in range(0, self.n_mels, 16):
            m1 = min(self.n_mels, m0 + 16)
            support = torch.nonzero(self.mel_basis[m0:m1].abs().sum(0) > 0).flatten()
            lo, hi = (int(support[0]), int(support[-1]) + 1) if len(support) else (0, 1)
            self._mel_bands.append((m0, m1, 2 * lo, 2 * hi))  # rows of mel_basis_pairs

    @property
    def num_bins(self) -> int:
        return self.n_mels

    def mel_power(self, audio: Tensor) -> Tensor:
        """mel filterbank @ |STFT|**power: (B, T) -> (B, n_mels, N)."""
        if self.power == 2.0:
            frames = self.frames(audio)
            window = self.padded_window.to(audio.dtype)
            basis_t = self.mel_basis_pairs.to(audio.dtype)
            # Whole-batch intermediates (windowed frames, complex spectrum, power) are tens
            # of MB and each pass streams them through memory; in blocks of about
            # _BLOCK_FRAMES frames they stay in cache (64 x 2 s clips: ~15 ms -> ~9 ms here).
            # A block is several whole short clips, or a run of frames inside a long one.
            n_clips, n_frames = frames.shape[:2]
            clips = max(1, _BLOCK_FRAMES // n_frames)
            steps = min(n_frames, _BLOCK_FRAMES)
            rows = [
                torch.cat(
                    [
                        self._mel_power_block(frames[c : c + clips, n : n + steps], window, basis_t)
                        for n in range(0, n_frames, steps)
                    ],
                    dim=1,
                )
                for c in range(0, n_clips, clips)
            ]
            return torch.cat(rows, dim=0).transpose(1, 2)
        return self.mel_basis.to(audio.dtype) @ self._power_spectrum(audio)

    def _mel_power_block(self, frames: Tensor, window: Tensor, basis_t: Tensor) -> Tensor:
        """Mel power of a block of frames, frames first: (b, n, n_fft) -> (b, n, n_mels).

        ``basis_t`` is the transposed filterbank with each row repeated twice, so that the
        squared real and imaginary parts, interleaved as torch stores them, are summed by
        the GEMM itself: one in-place pass for |X|^2 instead of three.
        """
        spec = torch.fft.rfft(frames * window)
        squares = torch.view_as_real(spec).square_().flatten(-2)  # (b, n, 2F): re^2, im^2, ...
        # The filterbank is banded: each group of filters only touches a contiguous range
        # of bins, so a few narrow GEMMs do ~1/3 of the dense work.
        parts = [squares[..., lo:hi] @ basis_t[lo:hi, m0:m1] for m0, m1, lo, hi in self._mel_bands]
        return torch.cat(parts, dim=-1)

    def transform(self, audio: Tensor) -> Tensor:
        return self.mel_power(audio)

    def mel_to_linear(self, mel: Tensor) -> Tensor:
        """Non-negative least-squares inverse of the filterbank: (B, n_mels, N) -> (B, F, N)."""
        return nonnegative_least_squares(self.mel_basis.to(mel.dtype), mel)

    def inverse_transform(self, raw: Tensor, n_iter: int, length: int | None) -> Tensor:
        linear = self.mel_to_linear(raw.clamp_min(0.0))
        return self._griffin_lim(linear.pow(1.0 / self.power), n_iter, length)

    def extra_repr(self) -> str:
        return f"n_mels={self.n_mels}, fmin={self.fmin}, fmax={self.fmax}, " + super().extra_repr()


class LogMel(Mel):
    """Log-compressed mel spectrogram log(mel + eps): (B, T) -> (B, n_mels, N)."""

    def __init__(self, sample_rate: int, compression: str = "log", **kwargs) -> None:
        super().__init__(sample_rate, compression=compression, **kwargs)


class MFCC(Mel):
    """Mel-frequency cepstral coefficients: (B, T) -> (B, n_mfcc, N).

    Orthonormal DCT-II over the mel axis of the mel power in dB,
    ``10 log10(max(mel, amin))``, as librosa's ``mfcc`` (its ``top_db`` clipping is optional
    here and is applied per example, where librosa clips by the max of the whole array).
    """

    nonnegative = False

    def __init__(
        self,
        sample_rate: int,
        n_mfcc: int = 20,
        n_mels: int = 64,
        amin: float = 1e-10,
        top_db: float | None = None,
        compression: str = "none",
        **kwargs,
    ) -> None:
        if n_mfcc > n_mels:
            raise ValueError(f"feature.n_mfcc={n_mfcc} exceeds feature.n_mels={n_mels}")
        self.n_mfcc = int(n_mfcc)
        super().__init__(sample_rate, n_mels=n_mels, compression=compression, **kwargs)
        self.amin = float(amin)
        self.top_db = top_db
        self.register_buffer("dct", dct_matrix(self.n_mfcc, self.n_mels), persistent=False)

    @property
    def num_bins(self) -> int:
        return self.n_mfcc

    def transform(self, audio: Tensor) -> Tensor:
        mel = self.mel_power(audio)
        db = 10.0 * torch.log10(mel.clamp_min(self.amin))
        if self.top_db is not None:
            floor = db.amax(dim=(-2, -1), keepdim=True) - self.top_db
            db = torch.maximum(db, floor)
        return self.dct.to(db.dtype) @ db

    def inverse_transform(self, raw: Tensor, n_iter: int, length: int | None) -> Tensor:
        # The DCT is orthonormal, so its transpose inverts it; dropped coefficients are zero,
        # which keeps only the smooth spectral envelope.
        db = self.dct.to(raw.dtype).T @ raw
        mel = torch.pow(10.0, db / 10.0)
        return super().inverse_transform(mel, n_iter, length)

    def extra_repr(self) -> str:
        return f"n_mfcc={self.n_mfcc}, " + super().extra_repr()
