"""General MIDI SoundFont rendering with FluidSynth: one note in, one waveform out.

FluidSynth is driven in-process through libfluidsynth (the ``pyfluidsynth`` binding,
import name ``fluidsynth``), with no audio driver: samples are pulled with
``fluid_synth_write_float``, so nothing is quantised or dithered before the caller
decides. Reverb and chorus are off, so a note is the dry instrument and nothing rings
over from one note into the next.

A SoundFont is parsed once per process (``_LoadedSoundFont``) and each note is played on
a fresh, cheap synth that borrows it (``fluid_synth_add_sfont``). One long-lived synth
would be faster still, but FluidSynth voices keep state (filter coefficients, amplitude
ramps) from the note they last played, so the first block of a note would depend on
which notes came before it in that process: measured up to 1e-2 apart. A fresh synth per
note makes every note bit-identical however the notes are ordered or split across
worker processes, at about 2 ms a note instead of the ~35 ms of re-parsing the file.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_SOUNDFONT",
    "GM_FAMILIES",
    "GM_PROGRAMS",
    "KNOWN_SOUNDFONTS",
    "RENDER_VERSION",
    "family_of",
    "find_soundfont",
    "fluidsynth_version",
    "load_soundfont",
    "program_number",
    "render_note",
    "render_notes",
]

# Part of every dataset's cache key: bump it when a change here changes rendered audio.
RENDER_VERSION = 1

# Short names -> (file installed by the Debian/Ubuntu package, that package).
KNOWN_SOUNDFONTS: dict[str, tuple[str, str]] = {
    "TimGM6mb": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "timgm6mb-soundfont"),
    "FluidR3_GM": ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "fluid-soundfont-gm"),
}
DEFAULT_SOUNDFONT = "TimGM6mb"

# The 16 General MIDI families, 8 consecutive programs each (program // 8).
GM_FAMILIES: tuple[str, ...] = (
    "piano",
    "chromatic_percussion",
    "organ",
    "guitar",
    "bass",
    "strings",
    "ensemble",
    "brass",
    "reed",
    "pipe",
    "synth_lead",
    "synth_pad",
    "synth_effects",
    "ethnic",
    "percussive",
    "sound_effects",
)

# The General MIDI level 1 program names, snake_cased, indexed by program number 0-127.
GM_PROGRAMS: tuple[str, ...] = (
    # piano
    "acoustic_grand_piano", "bright_acoustic_piano", "electric_grand_piano",
    "honky_tonk_piano", "electric_piano_1", "electric_piano_2", "harpsichord", "clavinet",
    # chromatic percussion
    "celesta", "glockenspiel", "music_box", "vibraphone", "marimba", "xylophone",
    "tubular_bells", "dulcimer",
    # organ
    "drawbar_organ", "percussive_organ", "rock_organ", "church_organ", "reed_organ",
    "accordion", "harmonica", "tango_accordion",
    # guitar
    "acoustic_guitar_nylon", "acoustic_guitar_steel", "electric_guitar_jazz",
    "electric_guitar_clean", "electric_guitar_muted", "overdriven_guitar",
    "distortion_guitar", "guitar_harmonics",
    # bass
    "acoustic_bass", "electric_bass_finger", "electric_bass_pick", "fretless_bass",
    "slap_bass_1", "slap_bass_2", "synth_bass_1", "synth_bass_2",
    # strings
    "violin", "viola", "cello", "contrabass", "tremolo_strings", "pizzicato_strings",
    "orchestral_harp", "timpani",
    # ensemble
    "string_ensemble_1", "string_ensemble_2", "synth_strings_1", "synth_strings_2",
    "choir_aahs", "voice_oohs", "synth_voice", "orchestra_hit",
    # brass
    "trumpet", "trombone", "tuba", "muted_trumpet", "french_horn", "brass_section",
    "synth_brass_1", "synth_brass_2",
    # reed
    "soprano_sax", "alto_sax", "tenor_sax", "baritone_sax", "oboe", "english_horn",
    "bassoon", "clarinet",
    # pipe
    "piccolo", "flute", "recorder", "pan_flute", "blown_bottle", "shakuhachi", "whistle",
    "ocarina",
    # synth lead
    "lead_1_square", "lead_2_sawtooth", "lead_3_calliope", "lead_4_chiff",
    "lead_5_charang", "lead_6_voice", "lead_7_fifths", "lead_8_bass_and_lead",
    # synth pad
    "pad_1_new_age", "pad_2_warm", "pad_3_polysynth", "pad_4_choir", "pad_5_bowed",
    "pad_6_metallic", "pad_7_halo", "pad_8_sweep",
    # synth effects
    "fx_1_rain", "fx_2_soundtrack", "fx_3_crystal", "fx_4_atmosphere", "fx_5_brightness",
    "fx_6_goblins", "fx_7_echoes", "fx_8_sci_fi",
    # ethnic
    "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai",
    # percussive
    "tinkle_bell", "agogo", "steel_drums", "woodblock", "taiko_drum", "melodic_tom",
    "synth_drum", "reverse_cymbal",
    # sound effects
    "guitar_fret_noise", "breath_noise", "seashore", "bird_tweet", "telephone_ring",
    "helicopter", "applause", "gunshot",
)  # fmt: skip

_PROGRAM_BY_NAME = {name: i for i, name in enumerate(GM_PROGRAMS)}


def program_number(program: int | str, key: str = "program") -> int:
    """A General MIDI program number 0-127 from a number, a numeric string or a GM name."""
    if isinstance(program, str):
        name = program.strip().lower().replace(" ", "_").replace("-", "_")
        if name in _PROGRAM_BY_NAME:
            return _PROGRAM_BY_NAME[name]
        if not name.isdigit():
            raise ValueError(
                f"{key}: unknown General MIDI program {program!r}; use a number 0-127 or a "
                f"name such as {GM_PROGRAMS[0]!r} (audiorep.audio.soundfont.GM_PROGRAMS)"
            )
        program = int(name)
    if isinstance(program, bool) or not isinstance(program, int | np.integer):
        raise ValueError(f"{key}: expected a program number or name, got {program!r}")
    if not 0 <= int(program) <= 127:
        raise ValueError(f"{key}: General MIDI programs are 0-127, got {program}")
    return int(program)


def family_of(program: int | str) -> str:
    """The General MIDI family of a program (number or name), e.g. 24 -> ``"guitar"``."""
    return GM_FAMILIES[program_number(program) // 8]


def find_soundfont(
    name_or_path: str | os.PathLike | None = None, key: str = "data.soundfont"
) -> Path:
    """Path of a SoundFont given a known name (``KNOWN_SOUNDFONTS``) or a file path.

    ``None`` means the default, TimGM6mb. A missing file raises FileNotFoundError naming
    ``key`` and, for the known fonts, the apt package that installs it.
    """
    name = DEFAULT_SOUNDFONT if name_or_path is None else os.fspath(name_or_path)
    if name in KNOWN_SOUNDFONTS:
        path, package = KNOWN_SOUNDFONTS[name]
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"{key}={name}: SoundFont {path} is not installed; install it with "
                f"`apt-get install --no-install-recommends {package}`, or set {key} to the "
                "path of another General MIDI .sf2 file"
            )
        return Path(path)
    path = Path(name).expanduser()
    if not path.is_file():
        by_file = {Path(p).name: pkg for p, pkg in KNOWN_SOUNDFONTS.values()}
        hint = (
            f"; `apt-get install --no-install-recommends {by_file[path.name]}` installs it"
            if path.name in by_file
            else ""
        )
        raise FileNotFoundError(
            f"{key}={name}: no such SoundFont file{hint}. Use a path to a .sf2 file or one "
            f"of {sorted(KNOWN_SOUNDFONTS)}"
        )
    return path.resolve()


def _import_fluidsynth() -> Any:
    """The pyfluidsynth module, or an ImportError saying what to install."""
    try:
        import fluidsynth
    except ImportError as err:
        missing_lib = "FluidSynth library" in str(err)
        raise ImportError(
            "SoundFont rendering needs libfluidsynth: `apt-get install --no-install-recommends "
            "fluidsynth`"
            if missing_lib
            else "SoundFont rendering needs the pyfluidsynth binding: `pip install pyfluidsynth`"
        ) from err
    if not hasattr(fluidsynth, "Synth") or not hasattr(fluidsynth, "_fl"):
        raise ImportError(
            f"the `fluidsynth` module at {getattr(fluidsynth, '__file__', '?')} is not "
            "pyfluidsynth; `pip install pyfluidsynth` (and uninstall the other package)"
        )
    return fluidsynth


class _FluidLib:
    """The few libfluidsynth calls pyfluidsynth does not wrap, declared on its library.

    A separate CDLL handle on the same file keeps these prototypes from touching the
    ones pyfluidsynth declared.
    """

    FLUID_WARN = 2

    def __init__(self, fluidsynth: Any):
        lib = ctypes.CDLL(fluidsynth._fl._name)
        ptr, i32 = ctypes.c_void_p, ctypes.c_int
        # (synth, len, left buffer, offset, stride, right buffer, offset, stride)
        stereo_out = (ptr, i32, i32, ptr, i32, i32)
        self.write_float = self._proto(lib, "fluid_synth_write_float", i32, ptr, i32, *stereo_out)
        self.get_sfont_by_id = self._proto(lib, "fluid_synth_get_sfont_by_id", ptr, ptr, i32)
        self.add_sfont = self._proto(lib, "fluid_synth_add_sfont", i32, ptr, ptr)
        self.remove_sfont = self._proto(lib, "fluid_synth_remove_sfont", i32, ptr, ptr)
        self.all_sounds_off = self._proto(lib, "fluid_synth_all_sounds_off", i32, ptr, i32)
        self.set_log_function = self._proto(lib, "fluid_set_log_function", ptr, i32, ptr, ptr)
        self.version_str = self._proto(lib, "fluid_version_str", ctypes.c_char_p)

    @staticmethod
    def _proto(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> Any:
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)
        return fn


# FluidSynth settings of every synth: dry (no reverb, no chorus), single-threaded, and
# the 16 MIDI channels of General MIDI rather than pyfluidsynth's 256.
_SYNTH_SETTINGS = {
    "synth.reverb.active": 0,
    "synth.chorus.active": 0,
    "synth.cpu-cores": 1,
    "synth.threadsafe-api": 0,
}
_CHANNELS = 16


class _LoadedSoundFont:
    """A SoundFont parsed once, lent to a fresh synth for each note (see module docstring)."""

    def __init__(self, path: Path, sample_rate: int):
        self.fluidsynth = _import_fluidsynth()
        self.lib = _FluidLib(self.fluidsynth)
        self.path = path
        self.sample_rate = int(sample_rate)
        self.owner = self._new_synth(gain=0.2)
        sfont_id = self.owner.sfload(os.fspath(path))
        if sfont_id < 0:
            raise ValueError(f"FluidSynth could not load SoundFont {path} (not a valid .sf2?)")
        self.sfont = self.lib.get_sfont_by_id(self.owner.synth, sfont_id)

    def _new_synth(self, gain: float) -> Any:
        return self.fluidsynth.Synth(
            gain=float(gain),
            samplerate=float(self.sample_rate),
            channels=_CHANNELS,
            **_SYNTH_SETTINGS,
        )

    def _write(self, synth: Any, n: int) -> np.ndarray:
        """Pull ``n`` samples from ``synth`` -> (n,) float32, the mean of left and right."""
        left = np.zeros(n, dtype=np.float32)
        right = np.zeros(n, dtype=np.float32)
        if n:
            status = self.lib.write_float(
                synth.synth, n, left.ctypes.data, 0, 1, right.ctypes.data, 0, 1
            )
            if status != 0:
                raise RuntimeError("fluid_synth_write_float failed")
        return (left + right) * np.float32(0.5)

    def render(
        self, program: int, pitch: int, velocity: int, n_on: int, n_total: int, gain: float
    ) -> np.ndarray:
        """One note: on for ``n_on`` samples, then released; ``n_total`` samples in all."""
        synth = self._new_synth(gain)
        sfont_id = self.lib.add_sfont(synth.synth, self.sfont)
        if sfont_id < 0:
            raise RuntimeError(f"FluidSynth refused to attach SoundFont {self.path}")
        try:
            synth.program_select(0, sfont_id, 0, program)
            synth.noteon(0, pitch, velocity)
            held = self._write(synth, n_on)
            synth.noteoff(0, pitch)
            tail = self._write(synth, n_total - n_on)
        finally:
            self.lib.all_sounds_off(synth.synth, -1)
            # Detaching resets every channel's program, which FluidSynth reports as one
            # "no preset found" warning per channel: silence warnings for that moment.
            previous = self.lib.set_log_function(_FluidLib.FLUID_WARN, None, None)
            try:
                self.lib.remove_sfont(synth.synth, self.sfont)
                synth.delete()
            finally:
                self.lib.set_log_function(_FluidLib.FLUID_WARN, previous, None)
        return np.concatenate([held, tail])


# One parsed SoundFont per (file, sample rate) in each process; worker processes build
# their own on first use.
_LOADED: dict[tuple[str, int], _LoadedSoundFont] = {}


def _loaded(soundfont: str | os.PathLike | None, sample_rate: int) -> _LoadedSoundFont:
    path = find_soundfont(soundfont)
    key = (os.fspath(path), int(sample_rate))
    if key not in _LOADED:
        _LOADED[key] = _LoadedSoundFont(path, sample_rate)
    return _LOADED[key]


def load_soundfont(soundfont: str | os.PathLike | None, sample_rate: int = 16000) -> None:
    """Parse a SoundFont in this process now, for ``render_notes`` at ``sample_rate``.

    Call it before forking rendering workers: they inherit the parsed font. A forked
    child that parsed it itself would run FluidSynth's OpenMP-parallel sample loader,
    which hangs in a process forked from one whose OpenMP threads have run (torch's,
    once a model has computed anything): GNU OpenMP does not survive fork.
    """
    _loaded(soundfont, sample_rate)


def fluidsynth_version() -> str:
    """The libfluidsynth version, e.g. ``"2.3.1"``: part of rendered datasets' cache keys."""
    return _FluidLib(_import_fluidsynth()).version_str().decode()


def _check_note(program: int, pitch: int, velocity: int) -> tuple[int, int, int]:
    program = program_number(program)
    if not 0 <= int(pitch) <= 127:
        raise ValueError(f"pitch must be a MIDI note 0-127, got {pitch}")
    if not 1 <= int(velocity) <= 127:
        raise ValueError(f"velocity must be 1-127 (0 is a note-off in MIDI), got {velocity}")
    return program, int(pitch), int(velocity)


def _note_samples(sample_rate: int, seconds: float, note_seconds: float) -> tuple[int, int]:
    n_total = int(round(seconds * sample_rate))
    n_on = int(round(note_seconds * sample_rate))
    if n_total <= 0 or not 0 < n_on <= n_total:
        raise ValueError(
            f"need 0 < note_seconds <= seconds (got note_seconds={note_seconds}, seconds={seconds})"
        )
    return n_on, n_total


def render_notes(
    soundfont: str | os.PathLike | None,
    notes: Iterable[Sequence[int]],
    *,
    sample_rate: int = 16000,
    seconds: float = 4.0,
    note_seconds: float = 3.0,
    gain: float = 1.0,
) -> np.ndarray:
    """Render ``(program, pitch, velocity)`` notes -> (N, seconds * sample_rate) float32.

    Each note starts at time 0, is held for ``note_seconds`` and then released, so its
    release tail rings in the remaining ``seconds - note_seconds`` (NSynth: 3 s + 1 s).
    Program is a GM number or name, pitch a MIDI note, velocity 1-127. Loudness is not
    normalised: velocity changes it as the SoundFont says, and ``gain`` (FluidSynth's
    master gain) scales everything. Output is deterministic.
    """
    n_on, n_total = _note_samples(sample_rate, seconds, note_seconds)
    checked = [_check_note(*note) for note in notes]
    font = _loaded(soundfont, sample_rate)
    out = np.empty((len(checked), n_total), dtype=np.float32)
    for i, (program, pitch, velocity) in enumerate(checked):
        out[i] = font.render(program, pitch, velocity, n_on, n_total, gain)
    return out


def render_note(
    soundfont: str | os.PathLike | None,
    program: int | str,
    pitch: int,
    velocity: int,
    *,
    sample_rate: int = 16000,
    seconds: float = 4.0,
    note_seconds: float = 3.0,
    gain: float = 1.0,
) -> np.ndarray:
    """One note (see ``render_notes``) -> (seconds * sample_rate,) float32."""
    return render_notes(
        soundfont,
        [(program_number(program), pitch, velocity)],
        sample_rate=sample_rate,
        seconds=seconds,
        note_seconds=note_seconds,
        gain=gain,
    )[0]
