"""NSynth-like notes rendered from a General MIDI SoundFont, served as a folder of audio.

Every (program, pitch, velocity) of a grid is rendered once with FluidSynth
(``audiorep.audio.soundfont``): 4 s notes at 16 kHz, held 3 s and released, as NSynth
did. Labels: ``program`` (the GM program name), ``family`` (its General MIDI family),
``pitch`` (MIDI note) and ``velocity``. A note that renders silence (a pitch outside the
instrument's samples, for instance) is dropped and listed in ``dropped.csv``.

The rendered dataset is an ordinary audio folder, so everything after rendering (the
preprocessing cache, splits, loaders) is ``AudioFolderDataModule``'s. Layout of
``<data_dir>/soundfont_notes/<hash of the generating config>/``::

    <family>/<program>/<program>-p<pitch>-v<velocity>.wav   16-bit PCM, one per note
    metadata.csv    path, then the label columns, one row per kept clip
    dropped.csv     path, reason: every clip that was not kept
    manifest.json   written LAST, with each file's size and checksum

Rendering, checking and caching are ``audiorep.data.generated``'s, shared with
``spoken_digits``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np

from audiorep.audio.soundfont import (
    GM_PROGRAMS,
    RENDER_VERSION,
    family_of,
    find_soundfont,
    fluidsynth_version,
    load_soundfont,
    program_number,
    render_notes,
)
from audiorep.data.cache import (
    file_checksum,
)
from audiorep.data.generated import ClipSpec, GeneratedAudioDataModule, RenderResult
from audiorep.data.toy_synth import grid_axis

log = logging.getLogger(__name__)

__all__ = [
    "SoundfontNotesDataModule",
    "note_clips",
    "note_grid",
    "soundfont_notes_config",
]

# -- the SoundFont notes grid -------------------------------------------------------------


def _int_axis(spec: Any, key: str, low: int, high: int) -> list[int]:
    values = grid_axis(spec, key)
    if np.any(values != np.round(values)) or values.min() < low or values.max() > high:
        raise ValueError(f"{key}: values must be whole numbers {low}-{high}, got {values.tolist()}")
    return [int(v) for v in values]


def note_grid(
    programs: Sequence[int | str] | None,
    pitches: Any,
    velocities: Any,
) -> tuple[list[int], list[int], list[int]]:
    """The checked axes of a notes grid: programs (numbers; None = all 128), MIDI pitches
    and velocities, each a list or a ``{start, stop, step}`` grid (stop inclusive)."""
    if programs is None:
        numbers = list(range(128))
    else:
        numbers = [program_number(p, "data.programs") for p in programs]
        if not numbers or len(set(numbers)) != len(numbers):
            raise ValueError(f"data.programs: empty or repeated programs {list(programs)}")
    return (
        numbers,
        _int_axis(pitches, "data.pitches", 0, 127),
        _int_axis(velocities, "data.velocities", 1, 127),
    )


def soundfont_notes_config(
    soundfont: str,
    programs: Sequence[int],
    pitches: Sequence[int],
    velocities: Sequence[int],
    sample_rate: int,
    seconds: float,
    note_seconds: float,
    gain: float,
    silence_db: float,
) -> dict[str, Any]:
    """Everything that determines the rendered notes; its hash names the cache folder.

    The SoundFont enters by checksum and the library by version, so replacing either
    renders again rather than serving stale notes.
    """
    path = find_soundfont(soundfont)
    return {
        "name": "soundfont_notes",
        "render_version": RENDER_VERSION,
        "fluidsynth": fluidsynth_version(),
        "soundfont": {"file": path.name, "checksum": file_checksum(path)},
        "programs": list(programs),
        "pitches": list(pitches),
        "velocities": list(velocities),
        "sample_rate": int(sample_rate),
        "seconds": float(seconds),
        "note_seconds": float(note_seconds),
        "gain": float(gain),
        "silence_db": float(silence_db),
    }


def note_clips(
    programs: Sequence[int], pitches: Sequence[int], velocities: Sequence[int]
) -> list[ClipSpec]:
    """One ``ClipSpec`` per note, programs outermost, in a fixed order."""
    clips = []
    for program in programs:
        name, family = GM_PROGRAMS[program], family_of(program)
        for pitch in pitches:
            for velocity in velocities:
                clips.append(
                    ClipSpec(
                        path=f"{family}/{name}/{name}-p{pitch:03d}-v{velocity:03d}.wav",
                        columns={
                            "program": name,
                            "family": family,
                            "pitch": str(pitch),
                            "velocity": str(velocity),
                        },
                        request=(program, pitch, velocity),
                    )
                )
    return clips


# -- data modules -------------------------------------------------------------------------


class SoundfontNotesDataModule(GeneratedAudioDataModule):
    """Notes of a General MIDI SoundFont, NSynth-like; see the module docstring.

    Batches: dict(audio (B, seconds * sample_rate) float32, clip_index (B,), label (B,):
    the first of ``label_columns``), as ``AudioFolderDataModule`` serves them.
    """

    name = "soundfont_notes"

    def __init__(
        self,
        soundfont: str = "TimGM6mb",
        programs: Sequence[int | str] | None = None,
        pitches: Any = None,
        velocities: Any = (75, 127),
        seconds: float = 4.0,
        note_seconds: float = 3.0,
        gain: float = 1.0,
        label_columns: Sequence[str] = ("family", "program", "pitch", "velocity"),
        group_column: str | None = None,
        clip_seconds: float | None = None,
        **kwargs: Any,
    ):
        self.soundfont = str(find_soundfont(soundfont))
        if pitches is None:
            pitches = {"start": 36, "stop": 96, "step": 6}
        self.programs, self.pitches, self.velocities = note_grid(programs, pitches, velocities)
        if not 0 < note_seconds <= seconds:
            raise ValueError(
                f"need 0 < data.note_seconds <= data.seconds (got {note_seconds}, {seconds})"
            )
        self.seconds = float(seconds)
        self.note_seconds = float(note_seconds)
        self.gain = float(gain)
        if self.gain <= 0:
            raise ValueError(f"data.gain must be > 0 (got {gain})")
        super().__init__(
            label_columns=label_columns,
            group_column=group_column,
            clip_seconds=self.seconds if clip_seconds is None else clip_seconds,
            **kwargs,
        )

    def generation_config(self) -> dict[str, Any]:
        return soundfont_notes_config(
            self.soundfont,
            self.programs,
            self.pitches,
            self.velocities,
            self.sample_rate,
            self.seconds,
            self.note_seconds,
            self.gain,
            self.silence_db,
        )

    def clips(self) -> list[ClipSpec]:
        return note_clips(self.programs, self.pitches, self.velocities)

    def render(self) -> RenderResult:
        # Parsed here, before the rendering workers are forked, so they inherit it
        # (see load_soundfont: a child parsing it would hang after torch has run).
        load_soundfont(self.soundfont, self.sample_rate)
        return super().render()

    def render_chunk(self) -> Callable[[list[tuple]], Sequence[np.ndarray]]:
        return partial(
            render_notes,
            self.soundfont,
            sample_rate=self.sample_rate,
            seconds=self.seconds,
            note_seconds=self.note_seconds,
            gain=self.gain,
        )
