"""Griffin-Lim phase reconstruction on torch.stft / torch.istft."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from audiorep.features.base import make_window


def griffin_lim(
    magnitude: Tensor,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | Tensor = "hann",
    n_iter: int = 32,
    length: int | None = None,
    center: bool = True,
    momentum: float = 0.99,
    init: str = "random",
    seed: int = 0,
) -> Tensor:
    """Estimate audio whose STFT magnitude is ``magnitude``: (B, n_fft//2+1, N) -> (B, T).

    The fast variant (Perraudin et al. 2013) extrapolates the consistent spectrogram with
    ``momentum``; 0 gives the original Griffin & Lim 1984 iteration. ``init="random"`` draws
    the starting phase from a generator seeded by ``seed`` so results are reproducible.
    """
    if magnitude.dim() == 2:
        magnitude = magnitude.unsqueeze(0)
    if magnitude.shape[-2] != n_fft // 2 + 1:
        raise ValueError(
            f"griffin_lim: magnitude has {magnitude.shape[-2]} bins, n_fft={n_fft} needs {n_fft // 2 + 1}"
        )
    win_length = win_length or n_fft
    if isinstance(window, str):
        window = make_window(window, win_length)
    window = window.to(device=magnitude.device, dtype=magnitude.dtype)
    if length is None:
        # What a centred STFT of N frames came from, at most; istft needs it explicitly.
        length = (magnitude.shape[-1] - 1) * hop_length if center else None

    mag = magnitude.clamp_min(0.0)
    if init == "random":
        gen = torch.Generator(device="cpu").manual_seed(seed)
        phase = torch.rand(mag.shape, generator=gen, dtype=mag.dtype).to(mag.device)
        angles = torch.polar(torch.ones_like(mag), 2 * math.pi * phase)
    elif init == "zeros":
        angles = torch.ones_like(
            mag, dtype=torch.complex64 if mag.dtype == torch.float32 else torch.complex128
        )
    else:
        raise ValueError(f"griffin_lim: init={init!r}; use 'random' or 'zeros'")

    def istft(spec: Tensor) -> Tensor:
        if center:
            return torch.istft(
                spec, n_fft, hop_length, win_length, window, center=center, length=length
            )
        # torch.istft refuses windows that vanish at the signal's ends (NOLA), which an
        # uncentred STFT always has; overlap-add by hand, dividing where the envelope is
        # non-zero.
        return _overlap_add(spec, n_fft, hop_length, window, length)

    def stft(audio: Tensor) -> Tensor:
        out = torch.stft(
            audio,
            n_fft,
            hop_length,
            win_length,
            window,
            center=center,
            pad_mode="constant",
            return_complex=True,
        )
        # istft(length=...) may give a signal one frame short of the target; pad frames.
        n = mag.shape[-1]
        if out.shape[-1] < n:
            out = torch.nn.functional.pad(out, (0, n - out.shape[-1]))
        return out[..., :n]

    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        rebuilt = stft(istft(mag * angles))
        accelerated = rebuilt - (momentum / (1 + momentum)) * previous if momentum else rebuilt
        previous = rebuilt
        angles = accelerated / accelerated.abs().clamp_min(1e-16)
    return istft(mag * angles)


def _overlap_add(
    spec: Tensor, n_fft: int, hop_length: int, window: Tensor, length: int | None
) -> Tensor:
    """Least-squares inverse of an uncentred STFT: (B, F, N) complex -> (B, T)."""
    left = (n_fft - window.shape[-1]) // 2
    window = torch.nn.functional.pad(window, (left, n_fft - window.shape[-1] - left))
    frames = torch.fft.irfft(spec.transpose(1, 2), n=n_fft) * window  # (B, N, n_fft)
    n_frames = frames.shape[1]
    total = n_fft + hop_length * (n_frames - 1)
    fold = dict(output_size=(1, total), kernel_size=(1, n_fft), stride=(1, hop_length))
    audio = torch.nn.functional.fold(frames.transpose(1, 2), **fold)[:, 0, 0]
    envelope = (window**2)[None, :, None].expand(1, n_fft, n_frames)
    envelope = torch.nn.functional.fold(envelope, **fold)[:, 0, 0]
    audio = audio / torch.where(envelope > 1e-10, envelope, torch.ones_like(envelope))
    if length is not None:
        audio = torch.nn.functional.pad(audio, (0, max(0, length - total)))[..., :length]
    return audio


def spectral_convergence(reference: Tensor, estimate: Tensor) -> Tensor:
    """||ref - est||_F / ||ref||_F of two magnitude spectrograms (B, F, N) -> (B,)."""
    diff = (reference - estimate).flatten(1).norm(dim=1)
    return diff / reference.flatten(1).norm(dim=1).clamp_min(1e-12)
