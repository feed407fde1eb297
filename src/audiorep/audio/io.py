"""Waveform file I/O through soundfile (libsndfile): reading, resampling, writing.

Every reader in the project goes through ``read_audio``: wav, flac, ogg and mp3 (libsndfile
>= 1.1) decode to float32, channels averaged to mono, optionally resampled with
``resample``. Anything libsndfile cannot decode raises ``AudioReadError`` naming the file
and the reason, so callers can skip and report a bad file instead of crashing on it.
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np
import soundfile as sf
from scipy.signal import firwin, resample_poly

__all__ = ["AUDIO_EXTENSIONS", "AudioReadError", "read_audio", "read_wav", "resample", "write_wav"]

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")


class AudioReadError(ValueError):
    """A file that cannot be read as audio; ``path`` and a short ``reason`` for reports."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def write_wav(path: str | os.PathLike, audio: np.ndarray, sample_rate: int) -> None:
    """Write float audio (T,) or (T, channels) in [-1, 1] as 16-bit PCM WAV.

    Samples outside [-1, 1] are clipped rather than wrapped by the integer conversion. The
    format is WAV whatever the name ends in, so atomic writers can use a temporary name.
    """
    audio = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    sf.write(os.fspath(path), audio, int(sample_rate), format="WAV", subtype="PCM_16")


def read_audio(
    path: str | os.PathLike,
    sample_rate: int | None = None,
    *,
    mono: bool = True,
    max_seconds: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file -> (float32 (T,) if mono else (T, channels), sample rate).

    With ``mono`` the channels are averaged. With ``sample_rate`` the audio is resampled
    to it (``resample``) and that rate is returned. ``max_seconds`` decodes only the
    start of the file, so a long file is not read whole just to be truncated.

    Raises ``AudioReadError`` for a file that is missing, not readable (permissions),
    not audio or damaged, or holds no samples.
    """
    path = os.fspath(path)
    try:
        with sf.SoundFile(path) as sound:
            orig_sr = int(sound.samplerate)
            frames = -1 if max_seconds is None else math.ceil(max_seconds * orig_sr)
            audio = sound.read(frames=frames, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError, EOFError) as err:
        raise AudioReadError(path, _why_unreadable(path, err)) from err
    if audio.shape[0] == 0:
        raise AudioReadError(path, "empty: no audio samples")
    if mono:
        audio = _mix_down(audio)
    if sample_rate is not None and int(sample_rate) != orig_sr:
        audio = resample(audio, orig_sr, int(sample_rate))
        orig_sr = int(sample_rate)
    return audio, orig_sr


def _mix_down(audio: np.ndarray) -> np.ndarray:
    """(T, channels) -> (T,) channel average. Column sums rather than ``mean(axis=1)``,
    which reduces along the 2-element axis one frame at a time and costs more than
    decoding."""
    mono = audio[:, 0].copy()
    for channel in range(1, audio.shape[1]):
        mono += audio[:, channel]
    if audio.shape[1] > 1:
        mono *= np.float32(1.0 / audio.shape[1])
    return mono


def _why_unreadable(path: str, err: BaseException) -> str:
    """A report reason for a file libsndfile failed on: libsndfile says "Error opening"
    for a missing, forbidden or empty file alike, so those are told apart here."""
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except FileNotFoundError:
        return "missing file"
    except PermissionError:
        return "unreadable: permission denied"
    except IsADirectoryError:
        return "unreadable: a directory, not a file"
    except OSError as os_err:
        return f"unreadable: {os_err.strerror or os_err}"
    if empty:
        return "empty file (0 bytes)"
    # LibsndfileError.error_string is libsndfile's message without the path.
    return f"unreadable or not audio: {getattr(err, 'error_string', None) or err}"


def read_wav(path: str | os.PathLike, *, mono: bool = True) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 in [-1, 1] -> ((T,) if mono else (T, channels), sample_rate).

    Kept for existing callers; the same as ``read_audio`` without resampling.
    """
    return read_audio(path, mono=mono)


# The anti-aliasing lowpass: flat to PASSBAND x the lower Nyquist frequency, at least
# STOPBAND_DB down from that Nyquist frequency on, so nothing above it folds back.
PASSBAND = 0.9
STOPBAND_DB = 60.0


@lru_cache(maxsize=32)
def _lowpass(up: int, down: int) -> np.ndarray:
    """Kaiser-windowed sinc FIR for ``resample_poly`` at the upsampled rate (float32).

    Taps from Kaiser's formula for the transition band [PASSBAND, 1] x Nyquist and
    STOPBAND_DB; scipy's default filter instead centres its transition on Nyquist, which
    lets content just above it alias back at only -6 to -30 dB.
    """
    nyquist = 1.0 / max(up, down)  # the lower Nyquist, relative to the upsampled one
    width = (1.0 - PASSBAND) * nyquist
    numtaps = math.ceil((STOPBAND_DB - 7.95) / (2.285 * math.pi * width)) + 1
    numtaps += 1 - numtaps % 2  # odd: a linear-phase filter with a whole-sample delay
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    taps = firwin(numtaps, (1.0 + PASSBAND) / 2 * nyquist, window=("kaiser", beta))
    return taps.astype(np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample (T,) or (T, channels) audio from ``orig_sr`` to ``target_sr`` -> float32.

    Polyphase filtering (``scipy.signal.resample_poly``) with the reduced ratio
    up/down = target/gcd : orig/gcd. Why this resampler: the ratio is exact for any pair of
    integer rates (44.1 kHz -> 16 kHz is 160/441, with no drift over long files); the
    anti-aliasing filter is a linear-phase Kaiser-windowed FIR lowpass, flat (ripple
    ~1e-3) to 0.9 x the lower Nyquist frequency and >= 60 dB down above it, so nothing
    above the new Nyquist folds back and every frequency is delayed equally (the delay
    is compensated); and the polyphase form computes only the kept output samples, O(T)
    work, unlike an FFT resampler that transforms the whole file and assumes it is
    periodic. The output has ``ceil(T * target_sr / orig_sr)`` samples.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive (got {orig_sr} -> {target_sr})")
    audio = np.asarray(audio, dtype=np.float32)
    if orig_sr == target_sr:
        return audio
    g = math.gcd(orig_sr, target_sr)
    up, down = target_sr // g, orig_sr // g
    out = resample_poly(audio, up, down, axis=0, window=_lowpass(up, down))
    return out.astype(np.float32, copy=False)
