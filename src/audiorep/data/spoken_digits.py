"""Spoken digits synthesised with espeak-ng: a speech dataset that needs no download.

The words "zero" .. "nine" spoken by several espeak-ng voices (accents and voice
variants), each at several speeds and pitches (``audiorep.audio.speech``). Labels:
``digit`` ("0".."9") and ``speaker`` (the voice, e.g. ``en-gb-scotland+f3``); the
metadata also records ``speed_wpm`` and ``pitch``. Splits are grouped by speaker, so no
voice is heard in two splits. Clips are as long as espeak-ng makes them (under 1.5 s).

The same labels come out of a folder of real recordings through ``data=audio_folder``
with a metadata CSV (see ``conf/data/spoken_digits.yaml`` for the Free Spoken Digit
Dataset). Layout of ``<data_dir>/spoken_digits/<hash of the generating config>/``::

    <speaker>/<digit>_<speaker>_s<speed>_p<pitch>.wav   16-bit PCM, one per utterance
    metadata.csv    path, digit, speaker, speed_wpm, pitch
    dropped.csv     path, reason: clips that rendered silent (none expected)
    manifest.json   written last
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from audiorep.audio.speech import check_voice, espeak_version, speak_all
from audiorep.data.generated import ClipSpec, GeneratedAudioDataModule

__all__ = ["DIGIT_WORDS", "SpokenDigitsDataModule", "digit_clips"]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def _distinct(values: Sequence[Any], key: str) -> list[Any]:
    values = list(values)
    if not values or len(set(values)) != len(values):
        raise ValueError(f"{key}: needs at least one value and no repeats, got {values}")
    return values


def digit_clips(
    voices: Sequence[str], speeds: Sequence[int], pitches: Sequence[int]
) -> list[ClipSpec]:
    """One ``ClipSpec`` per (voice, speed, pitch, digit), voices outermost."""
    clips = []
    for voice in voices:
        for speed in speeds:
            for pitch in pitches:
                for digit, word in enumerate(DIGIT_WORDS):
                    clips.append(
                        ClipSpec(
                            path=f"{voice}/{digit}_{voice}_s{speed:03d}_p{pitch:02d}.wav",
                            columns={
                                "digit": str(digit),
                                "speaker": voice,
                                "speed_wpm": str(speed),
                                "pitch": str(pitch),
                            },
                            request=(word, voice, int(speed), int(pitch)),
                        )
                    )
    return clips


class SpokenDigitsDataModule(GeneratedAudioDataModule):
    """Spoken digits from espeak-ng voices; see the module docstring.

    Batches: dict(audio (B, clip_seconds * sample_rate) float32, zero-padded at the end,
    clip_index (B,), label (B,): the first of ``label_columns``).
    """

    name = "spoken_digits"

    def __init__(
        self,
        voices: Sequence[str] = ("en-us+m1", "en-us+f1", "en-gb+m2", "en-gb+f2"),
        speeds: Sequence[int] = (130, 175, 220),
        pitches: Sequence[int] = (35, 50, 65),
        label_columns: Sequence[str] = ("digit", "speaker"),
        group_column: str | None = "speaker",
        clip_seconds: float = 1.5,
        splits: Sequence[float] = (0.75, 0.125, 0.125),
        **kwargs: Any,
    ):
        self.voices = [str(v) for v in _distinct(voices, "data.voices")]
        for voice in self.voices:
            try:
                check_voice(voice)
            except ValueError as err:
                raise ValueError(f"data.voices: {err}") from None
        self.speeds = [int(s) for s in _distinct(speeds, "data.speeds")]
        if not all(80 <= s <= 450 for s in self.speeds):
            raise ValueError(f"data.speeds: words per minute must be 80-450, got {self.speeds}")
        self.pitches = [int(p) for p in _distinct(pitches, "data.pitches")]
        if not all(0 <= p <= 99 for p in self.pitches):
            raise ValueError(f"data.pitches: espeak-ng pitches are 0-99, got {self.pitches}")
        super().__init__(
            label_columns=label_columns,
            group_column=group_column,
            clip_seconds=clip_seconds,
            splits=splits,
            **kwargs,
        )

    def generation_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "espeak": espeak_version(),
            "words": list(DIGIT_WORDS),
            "voices": self.voices,
            "speeds": self.speeds,
            "pitches": self.pitches,
            "sample_rate": self.sample_rate,
            "silence_db": self.silence_db,
        }

    def clips(self) -> list[ClipSpec]:
        return digit_clips(self.voices, self.speeds, self.pitches)

    def render_chunk(self) -> Callable[[list[tuple]], Sequence[np.ndarray]]:
        return partial(speak_all, sample_rate=self.sample_rate)
