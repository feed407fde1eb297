"""Hand-made clip embeddings that every learned one must beat: MFCC and log-mel statistics.

Both are computed with the project's own feature modules (``audiorep.features.spectral``),
so a baseline and a model that reads MFCC or log-mel see the same numbers.

Clips of any length are batched together: sorted by length, zero-padded to the longest of
their batch, and only each clip's own frames are pooled. With centred frames and zero
padding (the features' defaults, fixed here) frame ``i`` of a padded clip is exactly frame
``i`` of the clip alone for ``i <= len // hop``, so batching changes no number. A clip
shorter than one FFT frame still has ``1 + len // hop`` centred frames.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from audiorep.features.spectral import MFCC, STFT, LogMel

__all__ = [
    "BASELINE_EMBEDDINGS",
    "default_fft_size",
    "frame_statistics",
    "logmel_mean",
    "mfcc_stats",
]

BASELINE_EMBEDDINGS = ("mfcc_stats", "logmel_mean")
# Audio samples per batch: bounds memory for long files (the STFT of 2**23 samples at hop
# n_fft/4 is ~256 MB of complex frames) while short clips still go 100s at a time.
BATCH_SAMPLES = 2**23
FRAME_SECONDS = 0.025


def default_fft_size(sample_rate: int) -> int:
    """The power of two nearest a 25 ms window (512 at 16 kHz, 1024 at 44.1 kHz)."""
    return 2 ** round(math.log2(FRAME_SECONDS * sample_rate))


def _as_clips(clips: Sequence[np.ndarray]) -> list[np.ndarray]:
    checked = []
    for i, clip in enumerate(clips):
        audio = np.asarray(clip, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(
                f"clip {i} has shape {audio.shape}; baselines take mono (samples,) audio"
            )
        if len(audio) == 0:
            raise ValueError(f"clip {i} has no samples; drop it before embedding")
        checked.append(audio)
    if not checked:
        raise ValueError("no clips to embed")
    return checked


@torch.no_grad()
def frame_statistics(
    clips: Sequence[np.ndarray],
    feature: STFT,
    batch_samples: int = BATCH_SAMPLES,
    device: str | torch.device = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Per-clip mean and standard deviation of a feature's frames: -> ((N, F), (N, F)).

    ``feature`` is an STFT-based feature (B, T) -> (B, F, frames) with centred, zero-padded
    frames, which makes padding clips to a common length exact. The std is over frames
    (ddof 0), so a one-frame clip has 0.
    """
    if not feature.center or feature.pad_mode != "constant":
        raise ValueError(
            "frame_statistics needs centred frames with zero padding (center=True, "
            f"pad_mode='constant'); got center={feature.center}, pad_mode={feature.pad_mode!r}"
        )
    audio = _as_clips(clips)
    lengths = np.array([len(a) for a in audio])
    feature = feature.to(device).eval()
    means: list[np.ndarray | None] = [None] * len(audio)
    stds: list[np.ndarray | None] = [None] * len(audio)
    order = np.argsort(lengths, kind="stable")
    start = 0
    while start < len(order):
        # Lengths rise along ``order``, so the batch's last clip is its longest.
        stop = start + 1
        while stop < len(order) and (stop - start + 1) * lengths[order[stop]] <= batch_samples:
            stop += 1
        members = order[start:stop]
        batch = torch.zeros(len(members), int(lengths[members[-1]]))
        for row, clip in enumerate(members):
            # torch.tensor copies, so read-only memmap views raise no warning.
            batch[row, : lengths[clip]] = torch.tensor(audio[clip])
        frames = feature(batch.to(device)).double().cpu()  # (B, F, frames)
        n_frames = torch.from_numpy(1 + lengths[members] // feature.hop_length)
        mask = (torch.arange(frames.shape[-1])[None, :] < n_frames[:, None]).double()[:, None, :]
        mean = (frames * mask).sum(-1) / n_frames[:, None]
        var = (((frames - mean[..., None]) * mask) ** 2).sum(-1) / n_frames[:, None]
        for row, clip in enumerate(members):
            means[clip] = mean[row].numpy()
            stds[clip] = var[row].sqrt().numpy()
        start = stop
    return np.stack(means).astype(np.float32), np.stack(stds).astype(np.float32)


def _framing(
    sample_rate: int, n_fft: int | None, hop_length: int | None, fmin: float, fmax: float | None
) -> dict[str, object]:
    """Frame and band settings shared by both baselines, with the defaults filled in."""
    n_fft = n_fft or default_fft_size(sample_rate)
    return {
        "n_fft": n_fft,
        "hop_length": hop_length or n_fft // 4,
        "fmin": fmin,
        "fmax": fmax,
        "center": True,  # centred, zero-padded frames: what makes batching exact
        "pad_mode": "constant",
    }


def mfcc_stats(
    clips: Sequence[np.ndarray],
    sample_rate: int,
    n_mfcc: int = 20,
    n_mels: int = 64,
    n_fft: int | None = None,
    hop_length: int | None = None,
    fmin: float = 0.0,
    fmax: float | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """MFCC mean and standard deviation over each clip's frames: N clips -> (N, 2 * n_mfcc).

    Columns are the n_mfcc means, then the n_mfcc standard deviations. ``n_fft`` defaults
    to ``default_fft_size(sample_rate)`` and ``hop_length`` to a quarter of it.
    """
    framing = _framing(sample_rate, n_fft, hop_length, fmin, fmax)
    feature = MFCC(sample_rate, n_mfcc=n_mfcc, n_mels=n_mels, **framing)
    mean, std = frame_statistics(clips, feature, device=device)
    return np.concatenate([mean, std], axis=1)


def logmel_mean(
    clips: Sequence[np.ndarray],
    sample_rate: int,
    n_mels: int = 64,
    n_fft: int | None = None,
    hop_length: int | None = None,
    fmin: float = 0.0,
    fmax: float | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Mean log-mel spectrum, log(mel power + 1e-6), over each clip's frames: -> (N, n_mels)."""
    feature = LogMel(
        sample_rate, n_mels=n_mels, **_framing(sample_rate, n_fft, hop_length, fmin, fmax)
    )
    return frame_statistics(clips, feature, device=device)[0]
