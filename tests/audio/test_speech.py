"""espeak-ng speech synthesis: voices, determinism, resampling and errors.

Needs the espeak-ng program (``.ci/run`` installs it with apt); skipped when missing.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from audiorep.audio import speech
from audiorep.audio.speech import list_variants, list_voices, speak

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install --no-install-recommends espeak-ng",
)


def test_english_voices_and_variants_are_listed() -> None:
    voices = list_voices("en")
    assert {"en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029"} <= set(voices)
    assert all(v.startswith("en") for v in voices)
    assert {f"m{i}" for i in range(1, 8)} | {f"f{i}" for i in range(1, 6)} <= set(list_variants())


def test_speak_is_deterministic_mono_float_at_the_requested_rate() -> None:
    a = speak("seven", "en-us+m3", speed_wpm=160, pitch=50, sample_rate=16000)
    b = speak("seven", "en-us+m3", speed_wpm=160, pitch=50, sample_rate=16000)
    assert a.dtype == np.float32 and a.ndim == 1
    np.testing.assert_array_equal(a, b)
    assert 0.2 < len(a) / 16000 < 1.5 and 0.05 < np.abs(a).max() <= 1.0
    # Resampled, not relabelled: the same speech lasts as long at 8 kHz.
    c = speak("seven", "en-us+m3", speed_wpm=160, pitch=50, sample_rate=8000)
    assert abs(len(c) / 8000 - len(a) / 16000) < 0.01


def test_voice_speed_and_pitch_change_the_sound() -> None:
    base = speak("three", "en-us", speed_wpm=160, pitch=50)
    slow = speak("three", "en-us", speed_wpm=100, pitch=50)
    assert len(slow) > 1.3 * len(base)
    other_voice = speak("three", "en-gb-scotland+f2", speed_wpm=160, pitch=50)
    higher = speak("three", "en-us", speed_wpm=160, pitch=90)
    for other in (other_voice, higher):
        n = min(len(base), len(other))
        assert not np.allclose(base[:n], other[:n], atol=1e-3)


def test_bad_voice_speed_pitch_and_text_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown espeak-ng voice 'xx-nowhere'"):
        speak("one", "xx-nowhere")
    # espeak-ng itself would silently ignore an unknown variant.
    with pytest.raises(ValueError, match="variant 'zz9'"):
        speak("one", "en-us+zz9")
    with pytest.raises(ValueError, match="speed_wpm"):
        speak("one", speed_wpm=20)
    with pytest.raises(ValueError, match="pitch"):
        speak("one", pitch=120)
    with pytest.raises(ValueError, match="empty"):
        speak("  ")


def test_missing_espeak_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get install.*espeak-ng"):
        speech.espeak_executable()
