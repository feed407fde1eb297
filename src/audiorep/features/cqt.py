"""Constant-Q transform magnitude, multi-rate, on torch.stft.

Why our own and not nnAudio: nnAudio's CQT1992v2 convolves the full-rate signal with the
longest (8k-sample) kernels and its CQT2010v2 is also a time-domain convolution; on a
2-core CPU both took about 2x librosa's batched ``cqt`` for 64 x 2 s clips. Computing one
octave at a time from the top, each from a short rectangular-window STFT multiplied by that
octave's frequency-domain kernels, then halving the sample rate (Schoerkhuber & Klapuri
2010, the scheme librosa uses), costs a few small FFTs per frame and matches librosa's
filters (same Q, window, lengths and scaling), so parity is close too.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from audiorep.features.base import Feature, make_window
from audiorep.features.griffin_lim import griffin_lim

# Equivalent noise bandwidth (in bins) of the windows we support, for the Nyquist check.
_WINDOW_BANDWIDTH = {"hann": 1.50018310546875, "hamming": 1.3629455320350348, "ones": 1.0}


def _fast_fft_size(minimum: int, multiple: int) -> int:
    """Smallest multiple of ``multiple`` >= minimum whose cofactor has no prime above 5."""
    factor = -(-minimum // multiple)
    while True:
        rest = factor
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return factor * multiple
        factor += 1


def _as_real_matmul(basis: np.ndarray) -> np.ndarray:
    """Complex kernels (K, F) -> real (2F, 2K) acting on interleaved (re, im) spectra.

    ``view_as_real(spectrum).reshape(..., 2F) @ W`` gives [Re(basis @ s), Im(basis @ s)]
    in one real GEMM, which is faster on CPU than a complex matmul followed by abs().
    """
    k, f = basis.shape
    weights = np.zeros((f, 2, 2 * k))
    weights[:, 0, :k] = basis.real.T
    weights[:, 1, :k] = -basis.imag.T
    weights[:, 0, k:] = basis.imag.T
    weights[:, 1, k:] = basis.real.T
    return weights.reshape(2 * f, 2 * k)


class CQT(Feature):
    """Constant-Q magnitude |C|**power: (B, T) -> (B, n_bins, N), librosa's ``cqt`` filters.

    ``n_bins`` geometrically spaced bins from ``fmin``, ``bins_per_octave`` per octave,
    Q = filter_scale / relative bandwidth; scaled by 1/sqrt(filter length) as librosa's
    ``scale=True``. ``hop_length`` is halved with the sample rate while it is even, so a
    hop divisible by 2**(octaves-1) keeps every octave at its lowest possible rate; odd hops
    work but keep the lower octaves at a higher rate (slower, same result).
    """

    def __init__(
        self,
        sample_rate: int,
        hop_length: int = 256,
        fmin: float = 32.70,
        n_bins: int = 84,
        bins_per_octave: int = 12,
        filter_scale: float = 1.0,
        window: str = "hann",
        power: float = 1.0,
        inversion_n_fft: int = 2048,
        compression: str = "none",
        eps: float = 1e-6,
        normalization: str = "none",
    ) -> None:
        super().__init__(sample_rate, compression, eps, normalization)
        self.hop_length = int(hop_length)
        self.fmin = float(fmin)
        self.n_bins = int(n_bins)
        self.bins_per_octave = int(bins_per_octave)
        self.filter_scale = float(filter_scale)
        self.window_name = window
        self.power = float(power)
        self.inversion_n_fft = int(inversion_n_fft)

        self.freqs = self.fmin * 2.0 ** (np.arange(self.n_bins) / self.bins_per_octave)
        ratio = 2.0 ** (2.0 / self.bins_per_octave)
        alpha = (ratio - 1.0) / (ratio + 1.0)  # relative bandwidth of each bin
        self.q_factor = self.filter_scale / alpha
        bandwidth = _WINDOW_BANDWIDTH.get(window.lower(), 1.5)
        cutoff = float(np.max(self.freqs * (1.0 + 0.5 * bandwidth / self.q_factor)))
        if cutoff > sample_rate / 2.0:
            raise ValueError(
                f"CQT top bin reaches {cutoff:.0f} Hz, above Nyquist ({sample_rate / 2:.0f} Hz): "
                "lower feature.n_bins or feature.fmin"
            )
        # Filter lengths at the input rate; the output is scaled by 1/sqrt of these.
        self.lengths = self.q_factor * sample_rate / self.freqs

        # One plan entry per octave, from the top: which bins, at what rate and hop.
        self.plan: list[dict] = []
        self._bases: list[np.ndarray] = []  # complex kernels, kept for the inversion map
        rate, hop, top = float(sample_rate), self.hop_length, self.n_bins
        n_octaves = math.ceil(self.n_bins / self.bins_per_octave)
        for octave in range(n_octaves):
            lo = max(0, top - self.bins_per_octave)
            basis, n_fft = self._octave_basis(self.freqs[lo:top], rate)
            # Fold every scale factor into the kernel so the signal path is plain: librosa
            # scales the kernel and the resampled signal by sqrt(sr / rate) each, then
            # divides by sqrt(filter length at the input rate).
            basis *= (sample_rate / rate) / np.sqrt(self.lengths[lo:top])[:, None]
            self._bases.append(basis)
            weights = torch.from_numpy(_as_real_matmul(basis).astype(np.float32))
            self.register_buffer(f"weights_{octave}", weights, persistent=False)
            self.plan.append({"lo": lo, "hi": top, "rate": rate, "hop": hop, "n_fft": n_fft})
            top = lo
            if octave < n_octaves - 1 and hop % 2 == 0:
                hop //= 2
                rate /= 2.0
        self.n_halvings = round(math.log2(sample_rate / rate))
        self._init_statistics(self.n_bins)
        self._inversion_map: Tensor | None = None

    def _octave_basis(self, freqs: np.ndarray, rate: float) -> tuple[np.ndarray, int]:
        """Frequency-domain kernels of one octave at ``rate``: (bins, n_fft//2+1), n_fft."""
        lengths = self.q_factor * rate / freqs
        n_fft = int(2 ** math.ceil(math.log2(lengths.max())))
        kernels = np.zeros((len(freqs), n_fft), dtype=np.complex128)
        for i, (length, freq) in enumerate(zip(lengths, freqs)):
            n = np.arange(math.floor(-length / 2), math.floor(length / 2), dtype=np.float64)
            kernel = np.exp(2j * np.pi * freq * n / rate)
            kernel *= make_window(self.window_name, len(n)).double().numpy()
            kernel /= np.abs(kernel).sum()  # L1-normalised, as librosa's norm=1
            start = (n_fft - len(n)) // 2
            kernels[i, start : start + len(n)] = kernel * length / n_fft
        return np.fft.fft(kernels, axis=1)[:, : n_fft // 2 + 1], n_fft

    def _octave_lengths(self, num_samples: int) -> list[int]:
        # Each halving keeps ceil(T / 2) samples, as librosa's resampler does.
        lengths, length, rate = [], num_samples, float(self.sample_rate)
        for step in self.plan:
            if step["rate"] < rate:
                length = (length + 1) // 2
                rate = step["rate"]
            lengths.append(length)
        return lengths

    def transform(self, audio: Tensor) -> Tensor:
        num_samples = audio.shape[-1]
        # Resampling by FFT truncation: one forward FFT of the zero-padded input serves
        # every octave, each then needs one inverse FFT of half the previous size. The
        # padding (>= 64 samples at the lowest rate) keeps wrap-around off the signal.
        multiple = 2 ** (self.n_halvings + 1)
        fft_size = _fast_fft_size(num_samples + 64 * multiple, multiple)
        spectrum = torch.fft.rfft(audio, n=fft_size) if self.n_halvings else None
        parts: list[Tensor] = []
        for octave, (step, length) in enumerate(zip(self.plan, self._octave_lengths(num_samples))):
            factor = round(self.sample_rate / step["rate"])
            if factor == 1 or spectrum is None:
                signal = audio
            else:
                size = fft_size // factor
                part = spectrum[..., : size // 2 + 1].clone()
                part[..., -1] = 0  # the new Nyquist bin would alias
                # irfft normalises by the smaller size: scale back to the input amplitude.
                signal = torch.fft.irfft(part, n=size)[..., :length] / factor
            n_fft, hop = step["n_fft"], step["hop"]
            padded = torch.nn.functional.pad(signal, (n_fft // 2, n_fft // 2))
            frames = padded.unfold(-1, n_fft, hop)  # (B, N, n_fft), rectangular window
            spec = torch.view_as_real(torch.fft.rfft(frames))  # (B, N, n_fft//2+1, 2)
            weights = getattr(self, f"weights_{octave}").to(audio.dtype)
            parts.append(spec.reshape(*spec.shape[:2], -1) @ weights)  # (B, N, 2K)
        frames_out = min(p.shape[1] for p in parts)
        # Octaves were computed top-down; the output runs from fmin upwards.
        real = torch.cat([p[:, :frames_out, : p.shape[-1] // 2] for p in reversed(parts)], -1)
        imag = torch.cat([p[:, :frames_out, p.shape[-1] // 2 :] for p in reversed(parts)], -1)
        mag = torch.hypot(real, imag).transpose(1, 2).contiguous()
        return mag if self.power == 1.0 else mag.pow(self.power)

    def output_shape(self, num_samples: int) -> tuple[int, int]:
        frames = [
            1 + length // step["hop"]
            for step, length in zip(self.plan, self._octave_lengths(num_samples))
        ]
        return self.n_bins, min(frames)

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    # ---- inversion ----------------------------------------------------------------------
    def _linear_map(self) -> Tensor:
        """(n_fft//2+1, n_bins) map from CQT magnitude to a linear STFT magnitude.

        Approximation: a spectrum is modelled as sinusoids on a fine frequency grid (1/8 of
        an STFT bin). R_cqt (n_bins, grid) and R_stft (F, grid) are the exact magnitude
        responses of our CQT kernels (including the resampling, which removes everything
        above each octave's Nyquist) and of the STFT window to a unit sinusoid. The
        minimum-norm grid spectrum explaining the CQT, pinv(R_cqt) @ C, is mapped through
        R_stft. Phase interactions between neighbouring sinusoids are ignored, nothing
        above the top bin is recovered, and below ~sample_rate/inversion_n_fft the
        STFT cannot resolve the CQT's low bins, so the result is a smooth, band-limited
        estimate which Griffin-Lim then turns into audio.
        """
        if self._inversion_map is not None:
            return self._inversion_map
        n_fft, oversample = self.inversion_n_fft, 8
        grid_size = n_fft * oversample
        grid_hz = np.arange(grid_size // 2 + 1) * self.sample_rate / grid_size

        r_cqt = np.zeros((self.n_bins, len(grid_hz)))
        for step, basis in zip(self.plan, self._bases):
            nf = step["n_fft"]
            inband = grid_hz < step["rate"] / 2
            nu = grid_hz[inband] / step["rate"]
            # STFT (rectangular window) of each unit complex exponential, then the kernel.
            frames = np.fft.fft(np.exp(2j * np.pi * nu[:, None] * np.arange(nf)[None, :]), axis=1)
            r_cqt[step["lo"] : step["hi"], inband] = np.abs(basis @ frames[:, : nf // 2 + 1].T)

        window = make_window(self.window_name, n_fft).double().numpy()
        w_pad = np.abs(np.fft.fft(window, n=grid_size))
        offsets = (
            oversample * np.arange(n_fft // 2 + 1)[:, None] - np.arange(len(grid_hz))[None, :]
        ) % grid_size
        r_stft = w_pad[offsets]

        mapping = r_stft @ np.linalg.pinv(r_cqt, rcond=1e-4)
        self._inversion_map = torch.from_numpy(mapping.astype(np.float32))
        return self._inversion_map

    def inverse_transform(self, raw: Tensor, n_iter: int, length: int | None) -> Tensor:
        magnitude = raw.clamp_min(0.0).pow(1.0 / self.power)
        mapping = self._linear_map().to(device=raw.device, dtype=raw.dtype)
        linear = (mapping @ magnitude).clamp_min(0.0)
        hop = self.hop_length
        # Griffin-Lim needs overlapping frames: at a hop above a quarter of the FFT, the
        # frames are interpolated in time to a hop that divides the CQT's.
        upsample = 1
        while hop // upsample > self.inversion_n_fft // 4 and hop % (upsample * 2) == 0:
            upsample *= 2
        if upsample > 1:
            frames = linear.shape[-1]
            linear = torch.nn.functional.interpolate(
                linear, size=(frames - 1) * upsample + 1, mode="linear", align_corners=True
            )
            hop //= upsample
        return griffin_lim(
            linear,
            self.inversion_n_fft,
            hop,
            window=self.window_name,
            n_iter=n_iter,
            length=length,
        )

    def extra_repr(self) -> str:
        return (
            f"hop_length={self.hop_length}, fmin={self.fmin}, n_bins={self.n_bins}, "
            f"bins_per_octave={self.bins_per_octave}, " + super().extra_repr()
        )
