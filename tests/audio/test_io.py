"""Audio file I/O: every supported format to mono float32, resampling, clear read errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiorep.audio.io import (
    AUDIO_EXTENSIONS,
    AudioReadError,
    read_audio,
    read_wav,
    resample,
    write_wav,
)


def tone(freq: float, sample_rate: int, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_write_then_read_wav_roundtrip(tmp_path: Path) -> None:
    audio = tone(440.0, 16000, 0.25)
    write_wav(tmp_path / "sub" / "a.wav", audio, 16000)
    back, sr = read_wav(tmp_path / "sub" / "a.wav")
    assert sr == 16000 and back.dtype == np.float32
    np.testing.assert_allclose(back, audio, atol=1 / 32768 + 1e-6)


@pytest.mark.parametrize("ext", AUDIO_EXTENSIONS)
def test_every_format_decodes_to_mono_float32_at_the_asked_rate(tmp_path: Path, ext: str) -> None:
    stereo = np.stack([tone(440.0, 44100, 0.5), tone(440.0, 44100, 0.5)], axis=1)
    path = tmp_path / f"a{ext}"
    sf.write(path, stereo, 44100)
    audio, sr = read_audio(path, 16000)
    assert sr == 16000 and audio.dtype == np.float32 and audio.ndim == 1
    # Lossy codecs add or drop a few padding frames around the 0.5 s.
    assert abs(len(audio) - 8000) < 1200
    # The tone survives: its level is the original's (0.5 / sqrt 2) within codec error.
    assert rms(audio[1000:-1000]) == pytest.approx(0.5 / math.sqrt(2), rel=0.1)


def test_stereo_is_averaged_and_kept_when_asked(tmp_path: Path) -> None:
    left, right = np.full(800, 0.5, np.float32), np.full(800, -0.25, np.float32)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    mono, _ = read_audio(tmp_path / "s.wav")
    np.testing.assert_allclose(mono, 0.125)
    both, _ = read_audio(tmp_path / "s.wav", mono=False)
    assert both.shape == (800, 2)


def test_max_seconds_decodes_only_the_start(tmp_path: Path) -> None:
    sf.write(tmp_path / "long.wav", tone(100.0, 8000, 3.0), 8000)
    audio, sr = read_audio(tmp_path / "long.wav", max_seconds=0.5)
    assert (len(audio), sr) == (4000, 8000)


@pytest.mark.parametrize(
    ("orig", "target", "freq"),
    [(48000, 16000, 1000.0), (44100, 16000, 7000.0), (22050, 16000, 3000.0), (8000, 16000, 3500.0)],
)
def test_resample_keeps_a_tone_below_the_new_nyquist(orig: int, target: int, freq: float) -> None:
    x = tone(freq, orig)
    y = resample(x, orig, target)
    assert len(y) == math.ceil(len(x) * target / orig) and y.dtype == np.float32
    expected = tone(freq, target)[: len(y)]
    # Away from the edges, where the filter sees zeros beyond the signal.
    np.testing.assert_allclose(y[200:-200], expected[200:-200], atol=1e-2)


@pytest.mark.parametrize(
    ("orig", "target", "freq"),
    [(48000, 16000, 12000.0), (44100, 16000, 8200.0), (22050, 16000, 9000.0)],
)
def test_resample_removes_a_tone_above_the_new_nyquist(orig: int, target: int, freq: float) -> None:
    x = tone(freq, orig)
    y = resample(x, orig, target)
    attenuation_db = 20 * np.log10(rms(y[200:-200]) / rms(x))
    # Without the anti-aliasing filter it would fold back at full level (0 dB).
    assert attenuation_db < -40


def test_resample_lengths_and_identity() -> None:
    for n in (1, 2, 441, 1000, 44101):
        assert len(resample(np.zeros(n, np.float32), 44100, 16000)) == math.ceil(n * 16000 / 44100)
    x = tone(50.0, 8000, 0.1)
    assert resample(x, 8000, 8000) is x
    assert resample(np.zeros((100, 2), np.float32), 8000, 16000).shape == (200, 2)
    with pytest.raises(ValueError, match="positive"):
        resample(x, 0, 16000)


def test_unreadable_files_raise_audio_read_error_with_reason(tmp_path: Path) -> None:
    (tmp_path / "zero.wav").write_bytes(b"")
    (tmp_path / "text.wav").write_text("not audio at all")
    sf.write(tmp_path / "ok.wav", tone(100.0, 8000, 0.1), 8000)
    (tmp_path / "trunc.wav").write_bytes((tmp_path / "ok.wav").read_bytes()[:30])
    sf.write(tmp_path / "no_samples.wav", np.zeros(0, np.float32), 8000)
    expected = {
        "zero.wav": "empty file (0 bytes)",
        "text.wav": "not audio",
        "trunc.wav": "not audio",
        "no_samples.wav": "no audio samples",
        "missing.wav": "missing file",
    }
    for name, reason in expected.items():
        with pytest.raises(AudioReadError) as info:
            read_audio(tmp_path / name)
        assert reason in info.value.reason and isinstance(info.value, ValueError)
        assert info.value.path == str(tmp_path / name) and str(tmp_path / name) in str(info.value)
