"""Speech synthesis with the espeak-ng command-line program.

espeak-ng is a formant synthesiser: small, offline, deterministic (the same text, voice,
speed and pitch give the same samples), with dozens of accents and voice variants. A
voice is ``<language>`` or ``<language>+<variant>``, e.g. ``en-gb-scotland+f3``; the
variants (``m1``..``m8``, ``f1``..``f5`` and named ones) change formants and pitch range.
espeak-ng silently falls back to the plain voice for an unknown variant, so ``speak``
checks variants itself.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

import numpy as np

from audiorep.audio.io import read_audio

__all__ = [
    "ESPEAK_PACKAGE",
    "check_voice",
    "espeak_executable",
    "espeak_version",
    "list_variants",
    "list_voices",
    "speak",
    "speak_all",
]

ESPEAK_PACKAGE = "espeak-ng"


def espeak_executable() -> str:
    """Path of the espeak-ng program, or FileNotFoundError saying how to install it."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FileNotFoundError(
            "speech synthesis needs the espeak-ng program, which is not on PATH: "
            f"`apt-get install --no-install-recommends {ESPEAK_PACKAGE}`"
        )
    return exe


def _run(*args: str) -> str:
    result = subprocess.run(
        [espeak_executable(), *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"espeak-ng {' '.join(args)} failed (exit {result.returncode}): "
            f"{(result.stderr or result.stdout).strip()}"
        )
    return result.stdout


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    """The espeak-ng version line, e.g. ``"eSpeak NG text-to-speech: 1.51"``: part of
    synthesised datasets' cache keys, since another version speaks differently."""
    return _run("--version").split("  Data at:")[0].strip()


def _voice_table(spec: str) -> list[list[str]]:
    """Rows of ``espeak-ng --voices[=<spec>]``: Pty, Language, Age/Gender, VoiceName, File,
    then the other languages the voice speaks as ``(<language> <priority>)`` pairs."""
    lines = _run(f"--voices={spec}" if spec else "--voices").splitlines()[1:]  # 1: header
    return [line.split() for line in lines if len(line.split()) >= 5]


@functools.lru_cache(maxsize=8)
def list_voices(language: str = "") -> tuple[str, ...]:
    """Voice names usable as ``speak(voice=...)``, optionally only one language's (``"en"``).

    MBROLA voices (files ``mb/...``) are left out: they need the separate ``mbrola``
    program and its voice databases, which espeak-ng does not ship.
    """
    names = []
    for row in _voice_table(language):
        if row[4].startswith("mb/") or row[1] == "variant":
            continue
        # A voice also answers to its other languages: "en" selects English_(Great_Britain).
        others = [token.lstrip("(") for token in row[5:] if token.startswith("(")]
        names += [row[1], *others]
    return tuple(dict.fromkeys(n for n in names if not language or n.startswith(language)))


@functools.lru_cache(maxsize=1)
def list_variants() -> tuple[str, ...]:
    """Variant names usable after ``+`` in a voice (``m1``, ``f3``, ``klatt``, ...)."""
    return tuple(row[4].removeprefix("!v/") for row in _voice_table("variant"))


def check_voice(voice: str) -> None:
    """Raise ValueError unless ``voice`` is a known voice with, if given, a known variant."""
    base, _, variant = voice.partition("+")
    if base not in list_voices():
        raise ValueError(
            f"unknown espeak-ng voice {base!r} (in {voice!r}); `espeak-ng --voices` lists "
            f"them, e.g. {', '.join(list_voices('en')[:6])}"
        )
    if variant and variant not in list_variants():
        raise ValueError(
            f"unknown espeak-ng voice variant {variant!r} (in {voice!r}); "
            "`espeak-ng --voices=variant` lists them, e.g. m1..m8, f1..f5"
        )


def speak(
    text: str,
    voice: str = "en-us",
    speed_wpm: int = 175,
    pitch: int = 50,
    sample_rate: int = 16000,
) -> np.ndarray:
    """Synthesise ``text`` -> (T,) float32 mono at ``sample_rate``.

    ``voice`` is ``<language>[+<variant>]`` (``list_voices``, ``list_variants``),
    ``speed_wpm`` words per minute (espeak-ng accepts 80-450), ``pitch`` 0-99 (50 is the
    voice's normal pitch). espeak-ng renders at its own rate (22,050 Hz), resampled here
    with ``audiorep.audio.io.resample``. The clip is what espeak-ng produces, including
    its short pauses before and after the words.
    """
    if not text.strip():
        raise ValueError("speak: text is empty")
    if not 80 <= int(speed_wpm) <= 450:
        raise ValueError(f"speak: speed_wpm must be 80-450 words per minute, got {speed_wpm}")
    if not 0 <= int(pitch) <= 99:
        raise ValueError(f"speak: pitch must be 0-99, got {pitch}")
    check_voice(voice)
    with tempfile.TemporaryDirectory(prefix="audiorep-espeak-") as tmp:
        path = os.path.join(tmp, "speech.wav")
        # "--" ends the options, so text starting with "-" is spoken, not parsed.
        _run("-v", voice, "-s", str(int(speed_wpm)), "-p", str(int(pitch)), "-w", path, "--", text)
        audio, _ = read_audio(path, sample_rate)
    return audio


def speak_all(
    requests: Sequence[tuple[str, str, int, int]], sample_rate: int = 16000
) -> list[np.ndarray]:
    """``speak`` each ``(text, voice, speed_wpm, pitch)`` -> one (T_i,) float32 array each.

    A top-level function of picklable arguments, so worker processes can run it.
    """
    return [speak(text, voice, speed, pitch, sample_rate) for text, voice, speed, pitch in requests]
