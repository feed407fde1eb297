"""SoundFont rendering: rendered notes have the requested pitch and velocity-dependent loudness.

Needs libfluidsynth, pyfluidsynth and the TimGM6mb SoundFont (``.ci/run`` installs them
with apt); skipped with the reason when they are missing.
"""

from __future__ import annotations

import numpy as np
import pytest

from audiorep.audio import soundfont
from audiorep.audio.soundfont import (
    GM_FAMILIES,
    GM_PROGRAMS,
    family_of,
    find_soundfont,
    program_number,
    render_note,
    render_notes,
)

SR = 16000


def _fluidsynth_missing() -> str | None:
    try:
        find_soundfont(None)
        soundfont._import_fluidsynth()
    except (FileNotFoundError, ImportError) as err:
        return str(err)
    return None


needs_fluidsynth = pytest.mark.skipif(
    _fluidsynth_missing() is not None, reason=f"{_fluidsynth_missing()}"
)


# -- pitch estimators (checked on known tones below) ----------------------------------


def yin_f0(x: np.ndarray, sr: int = SR, fmin: float = 30.0, fmax: float = 2500.0) -> float:
    """YIN (de Cheveigne & Kawahara 2002): the first lag where the cumulative-mean-
    normalised difference function dips below 0.15, refined by a parabola."""
    x = x.astype(np.float64)
    w = len(x) // 2
    max_lag = min(int(sr / fmin), len(x) - w)
    energy = np.concatenate([[0.0], np.cumsum(x**2)])
    lags = np.arange(max_lag)
    n = 1 << int(np.ceil(np.log2(len(x) + w)))
    corr = np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(x[:w], n)), n)[:max_lag]
    # d(tau) = sum_{t<w} (x_t - x_{t+tau})^2
    diff = energy[w] + (energy[lags + w] - energy[lags]) - 2 * corr
    cmnd = np.ones(max_lag)
    cmnd[1:] = diff[1:] * lags[1:] / np.maximum(np.cumsum(diff[1:]), 1e-12)
    lo = max(int(sr / fmax), 2)
    below = np.flatnonzero(cmnd[lo : max_lag - 1] < 0.15)
    if len(below):
        tau = lo + int(below[0])
        while tau + 2 < max_lag and cmnd[tau + 1] < cmnd[tau]:
            tau += 1
    else:
        tau = lo + int(np.argmin(cmnd[lo : max_lag - 1]))
    a, b, c = cmnd[tau - 1 : tau + 2]
    curvature = a - 2 * b + c
    return sr / (tau + (0.5 * (a - c) / curvature if curvature > 0 else 0.0))


def hps_f0(x: np.ndarray, sr: int = SR, fmin: float = 30.0, fmax: float = 2500.0) -> float:
    """Harmonic product spectrum: the frequency whose first 4 harmonics carry the most
    log-magnitude together (zero-padded FFT, ~0.1 Hz bins)."""
    n = 1 << 17
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x)), n))
    log_mag = np.log(mag + 1e-9)
    score = log_mag.copy()
    for h in range(2, 5):
        score[: len(log_mag[::h])] += log_mag[::h]
    freqs = np.fft.rfftfreq(n, 1 / sr)
    lo, hi = np.searchsorted(freqs, [fmin, fmax])
    return float(freqs[lo + int(np.argmax(score[lo:hi]))])


def midi_hz(pitch: float) -> float:
    return 440.0 * 2 ** ((pitch - 69) / 12)


def semitones_off(f0: float, pitch: int) -> float:
    return 12 * np.log2(f0 / midi_hz(pitch))


def _harmonic_tone(f0: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8) if k * f0 < SR / 2)


@pytest.mark.parametrize("estimator", [yin_f0, hps_f0])
@pytest.mark.parametrize("f0", [65.4, 110.0, 261.6, 523.3, 1046.5])
def test_pitch_estimators_on_known_tones(estimator, f0: float) -> None:
    assert abs(12 * np.log2(estimator(_harmonic_tone(f0)) / f0)) < 0.1


def test_yin_is_not_fooled_by_a_missing_fundamental() -> None:
    t = np.arange(SR // 2) / SR
    tone = sum(np.sin(2 * np.pi * k * 200.0 * t) for k in (2, 3, 4, 5))
    assert abs(12 * np.log2(yin_f0(tone) / 200.0)) < 0.1


# -- General MIDI tables ----------------------------------------------------------------


def test_general_midi_tables() -> None:
    assert len(GM_FAMILIES) == 16 and len(GM_PROGRAMS) == 128 == len(set(GM_PROGRAMS))
    assert family_of(0) == "piano" and family_of(24) == "guitar" and family_of(73) == "pipe"
    assert family_of(127) == "sound_effects" and family_of("violin") == "strings"
    assert [family_of(p) for p in range(0, 128, 8)] == list(GM_FAMILIES)
    assert program_number("Acoustic Grand Piano") == 0 == program_number("0")
    assert program_number("flute") == 73
    for bad in (128, -1, "kazoo"):
        with pytest.raises(ValueError, match="program"):
            program_number(bad)


def test_missing_soundfont_names_the_key_and_the_package(tmp_path) -> None:
    if not soundfont.Path(soundfont.KNOWN_SOUNDFONTS["FluidR3_GM"][0]).exists():
        with pytest.raises(FileNotFoundError, match=r"data\.soundfont.*fluid-soundfont-gm"):
            find_soundfont("FluidR3_GM")
    with pytest.raises(FileNotFoundError, match=r"data\.soundfont.*fluid-soundfont-gm"):
        find_soundfont(tmp_path / "FluidR3_GM.sf2")
    with pytest.raises(FileNotFoundError, match="no such SoundFont"):
        find_soundfont(tmp_path / "mine.sf2")


# -- rendering ----------------------------------------------------------------------------

# Programs whose pitch is that of their lowest harmonic: YIN must find it within half a
# semitone (General MIDI SoundFonts are tuned to a few cents).
EXACT_PROGRAMS = {
    "acoustic_grand_piano": [36, 48, 60, 72, 84],
    "electric_piano_1": [48, 60, 72],
    "vibraphone": [48, 60, 72, 84],
    "marimba": [48, 60, 72],
    "acoustic_guitar_nylon": [40, 52, 64, 76],
    "electric_guitar_clean": [40, 52, 64, 76],
    "electric_bass_finger": [28, 36, 48],
    "violin": [55, 67, 79, 91],
    "cello": [36, 48, 60],
    "string_ensemble_1": [48, 60, 72],
    "choir_aahs": [48, 60, 72],
    "trumpet": [55, 67, 79],
    "french_horn": [41, 53, 65],
    "alto_sax": [49, 61, 73],
    "oboe": [58, 70, 82],
    "clarinet": [50, 62, 74],
    "flute": [60, 72, 84, 96],
    "recorder": [60, 72, 84],
    "lead_2_sawtooth": [48, 60, 72],
    "banjo": [48, 60, 72],
}
# Organs sound 16-foot stops an octave below the key, and bells' strike tone is not their
# lowest partial, so for these a whole number of octaves off counts as right. Bells are
# inharmonic, which defeats YIN's period search: their pitch is read from the spectrum.
OCTAVE_PROGRAMS = {
    "drawbar_organ": ([48, 60, 72, 84], yin_f0),
    "rock_organ": ([48, 60, 72, 84], yin_f0),
    "church_organ": ([48, 60, 72, 84], yin_f0),
    "tubular_bells": ([48, 60, 72, 84], hps_f0),
}


def _steady(note: np.ndarray) -> np.ndarray:
    """0.2 s to 0.7 s: past the attack transient, while the note is still sounding."""
    return note[int(0.2 * SR) : int(0.7 * SR)]


@needs_fluidsynth
def test_rendered_notes_have_the_requested_pitch() -> None:
    notes = [(name, pitch, 100) for name, pitches in EXACT_PROGRAMS.items() for pitch in pitches]
    audio = render_notes(None, notes, seconds=1.0, note_seconds=0.8)
    errors = {
        (name, pitch): round(semitones_off(yin_f0(_steady(x)), pitch), 2)
        for (name, pitch, _), x in zip(notes, audio)
    }
    wrong = {k: e for k, e in errors.items() if abs(e) > 0.5}
    assert not wrong, f"pitch off by more than half a semitone: {wrong}"


@needs_fluidsynth
def test_organs_and_bells_have_the_requested_pitch_up_to_octaves() -> None:
    wrong = {}
    for name, (pitches, estimator) in OCTAVE_PROGRAMS.items():
        audio = render_notes(None, [(name, p, 100) for p in pitches], seconds=1.0, note_seconds=0.8)
        for pitch, x in zip(pitches, audio):
            off = semitones_off(estimator(_steady(x)), pitch)
            if abs(off - 12 * round(off / 12)) > 0.5:
                wrong[(name, pitch)] = round(off, 2)
    assert not wrong, f"pitch off by more than half a semitone modulo octaves: {wrong}"


@needs_fluidsynth
def test_velocity_changes_loudness() -> None:
    for program in ("acoustic_grand_piano", "string_ensemble_1", "flute", "trumpet"):
        audio = render_notes(
            None, [(program, 60, v) for v in (30, 75, 127)], seconds=1.0, note_seconds=0.8
        )
        rms = np.sqrt(np.mean(audio.astype(np.float64) ** 2, axis=1))
        assert np.all(np.diff(rms) > 0), (program, rms)
        assert rms[-1] > 2 * rms[0], (program, rms)


@needs_fluidsynth
def test_note_shape_release_and_range() -> None:
    x = render_note(None, "string_ensemble_1", 60, 100, seconds=2.0, note_seconds=1.0)
    assert x.dtype == np.float32 and x.shape == (2 * SR,)
    assert 0.01 < np.abs(x).max() < 1.0
    held = np.sqrt(np.mean(x[int(0.5 * SR) : SR] ** 2))
    end = np.sqrt(np.mean(x[-int(0.1 * SR) :] ** 2))
    assert end < 0.1 * held  # released after note_seconds: the tail dies away


@needs_fluidsynth
def test_rendering_is_deterministic_whatever_the_order() -> None:
    notes = [(0, 60, 100), (40, 67, 80), (19, 48, 127), (0, 60, 100)]
    forward = render_notes(None, notes, seconds=0.5, note_seconds=0.4)
    backward = render_notes(None, notes[::-1], seconds=0.5, note_seconds=0.4)[::-1]
    np.testing.assert_array_equal(forward, backward)
    np.testing.assert_array_equal(forward[0], forward[3])
    alone = render_note(None, 40, 67, 80, seconds=0.5, note_seconds=0.4)
    np.testing.assert_array_equal(alone, forward[1])


@needs_fluidsynth
def test_out_of_range_note_is_silent_and_bad_notes_are_refused() -> None:
    # TimGM6mb's baritone sax has no sample this high: FluidSynth plays nothing.
    assert (
        np.abs(render_note(None, "baritone_sax", 96, 127, seconds=0.5, note_seconds=0.4)).max()
        == 0.0
    )
    with pytest.raises(ValueError, match="pitch"):
        render_note(None, 0, 128, 100)
    with pytest.raises(ValueError, match="velocity"):
        render_note(None, 0, 60, 0)
    with pytest.raises(ValueError, match="note_seconds"):
        render_note(None, 0, 60, 100, seconds=1.0, note_seconds=2.0)
