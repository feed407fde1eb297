"""Waveform file I/O through soundfile (libsndfile)."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio (T,) or (T, channels) in [-1, 1] as 16-bit PCM WAV.

    Samples outside [-1, 1] are clipped rather than wrapped by the integer conversion.
    """
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    sf.write(os.fspath(path), audio, int(sample_rate), subtype="PCM_16")


def read_wav(path: str | os.PathLike, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 in [-1, 1] -> ((T,) if mono else (T, channels), sample_rate).

    With ``mono`` the channels are averaged.
    """
    audio, sample_rate = sf.read(os.fspath(path), dtype="float32", always_2d=True)
    if mono:
        audio = audio.mean(axis=1)
    return audio, int(sample_rate)
