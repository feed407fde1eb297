"""The generated real-audio datasets: SoundFont notes and espeak-ng spoken digits.

Rendered once per session (the session ``data_dir``) from the real ``_small`` configs;
the tests that damage a render work on their own copy in ``tmp_path``. Needs FluidSynth
with TimGM6mb and espeak-ng (``.ci/run`` installs them); skipped with the reason when not.
"""

from __future__ import annotations

import csv
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hydra.utils import instantiate

from audiorep.audio import soundfont
from audiorep.audio.soundfont import GM_PROGRAMS, family_of
from audiorep.data.cache import MANIFEST_NAME
from audiorep.data.generated import DROPPED_FILE, METADATA_FILE, ClipSpec, render_clip_folder
from audiorep.data.soundfont_notes import SoundfontNotesDataModule
from audiorep.data.spoken_digits import SpokenDigitsDataModule


def _fluidsynth_missing() -> str | None:
    try:
        soundfont.find_soundfont(None)
        soundfont._import_fluidsynth()
    except (FileNotFoundError, ImportError) as err:
        return str(err)
    return None


needs_fluidsynth = pytest.mark.skipif(
    _fluidsynth_missing() is not None, reason=str(_fluidsynth_missing())
)
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed: apt-get install --no-install-recommends espeak-ng",
)

BATCH_KEYS = {"audio", "clip_index", "label"}
SMALL_NOTES_KEPT = 46  # 6 programs x 4 pitches x 2 velocities, baritone sax silent at 84
CONF = Path(__file__).resolve().parents[2] / "conf" / "data"
SMALL_SPEAKERS = ["en-us+m1", "en-gb+f2", "en-gb-scotland+m3", "en-029+f4"]


def _datamodule(compose_train, config: str, **overrides):
    # small=False: the config named is the one composed, never swapped for SMALL_DATA's.
    cfg = compose_train(f"data={config}", small=False)
    return instantiate(cfg.data, progress=False, **overrides)


def _metadata(dm) -> list[dict[str, str]]:
    with open(dm.root / METADATA_FILE, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def _peak_db(path: Path) -> float:
    audio, _ = sf.read(str(path), dtype="float32")
    peak = float(np.max(np.abs(audio)))
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*.wav")}


# -- configs, without rendering ------------------------------------------------------------


@needs_fluidsynth
@needs_espeak
def test_configs_compose_and_size_their_grids(compose_train) -> None:
    counts = {
        "soundfont_notes": 128 * 11 * 2,
        "soundfont_notes_small": 6 * 4 * 2,
        "spoken_digits": 16 * 10 * 3 * 3,
        "spoken_digits_small": 4 * 10,
    }
    for config, count in counts.items():
        dm = _datamodule(compose_train, config)
        assert len(dm.clips()) == count, config
        assert not dm.root.exists()  # nothing is rendered before prepare_data
    notes = _datamodule(compose_train, "soundfont_notes")
    assert notes.label_columns == ["family", "program", "pitch", "velocity"]
    assert notes.group_column is None and notes.clip_seconds == notes.seconds == 4.0
    digits = _datamodule(compose_train, "spoken_digits")
    assert digits.label_columns == ["digit", "speaker"] and digits.group_column == "speaker"
    assert len(digits.voices) == 16


def test_full_config_needs_fluidr3_and_says_how_to_get_it(compose_train) -> None:
    if Path(soundfont.KNOWN_SOUNDFONTS["FluidR3_GM"][0]).exists():
        pytest.skip("FluidR3 GM is installed: nothing to refuse")
    with pytest.raises(Exception, match=r"data\.soundfont=FluidR3_GM.*fluid-soundfont-gm"):
        _datamodule(compose_train, "soundfont_notes_full")


@needs_fluidsynth
@needs_espeak
def test_bad_settings_name_their_config_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.programs.*kazoo"):
        SoundfontNotesDataModule(data_dir=tmp_path, programs=["kazoo"])
    with pytest.raises(ValueError, match=r"data\.pitches"):
        SoundfontNotesDataModule(data_dir=tmp_path, pitches=[60, 200])
    with pytest.raises(ValueError, match=r"data\.label_columns.*timbre"):
        SoundfontNotesDataModule(data_dir=tmp_path, label_columns=["timbre"])
    with pytest.raises(FileNotFoundError, match=r"data\.soundfont"):
        SoundfontNotesDataModule(data_dir=tmp_path, soundfont=str(tmp_path / "none.sf2"))
    with pytest.raises(ValueError, match=r"data\.voices.*xx-nowhere"):
        SpokenDigitsDataModule(data_dir=tmp_path, voices=["xx-nowhere"])
    with pytest.raises(ValueError, match=r"data\.speeds"):
        SpokenDigitsDataModule(data_dir=tmp_path, speeds=[10])


# -- SoundFont notes -----------------------------------------------------------------------


@needs_fluidsynth
def test_soundfont_notes_render_labels_and_batches(compose_train) -> None:
    dm = _datamodule(compose_train, "soundfont_notes_small")
    dm.prepare_data()
    result = dm.last_render
    assert result.num_kept == SMALL_NOTES_KEPT
    # Out of the instrument's range: silent, so dropped and reported, never kept.
    assert [p for p, _ in result.dropped] == [
        "reed/baritone_sax/baritone_sax-p084-v075.wav",
        "reed/baritone_sax/baritone_sax-p084-v127.wav",
    ]
    assert all(reason.startswith("silent") for _, reason in result.dropped)
    assert (dm.root / DROPPED_FILE).read_text().count("silent") == 2

    rows = _metadata(dm)
    assert list(rows[0]) == ["path", "program", "family", "pitch", "velocity"]
    assert len(rows) == SMALL_NOTES_KEPT
    for row in rows:
        assert row["family"] == family_of(row["program"]) and row["program"] in GM_PROGRAMS
        assert row["pitch"] in {"48", "60", "72", "84"} and row["velocity"] in {"75", "127"}
        assert f"-p{int(row['pitch']):03d}-v{int(row['velocity']):03d}" in row["path"]
        info = sf.info(str(dm.root / row["path"]))
        assert (info.samplerate, info.frames, info.channels) == (16000, 16000, 1)
        assert _peak_db(dm.root / row["path"]) > dm.silence_db

    dm.setup()
    assert dm.num_clips == SMALL_NOTES_KEPT
    assert dm.classes["family"] == sorted({family_of(p) for p in dm.programs})
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == BATCH_KEYS
    assert batch["audio"].shape == (16, 16000) and batch["audio"].dtype.is_floating_point
    families = dm.metadata["family"][batch["clip_index"].numpy()]
    assert [dm.classes["family"][i] for i in batch["label"]] == families.tolist()


@needs_fluidsynth
def test_second_prepare_reuses_the_render(compose_train) -> None:
    dm = _datamodule(compose_train, "soundfont_notes_small")
    dm.prepare_data()
    before = _mtimes(dm.root)
    again = _datamodule(compose_train, "soundfont_notes_small")
    again.prepare_data()
    assert again.root == dm.root and again.last_render.rendered == 0
    assert _mtimes(dm.root) == before


@needs_fluidsynth
def test_damaged_deleted_and_interrupted_renders_are_redone(compose_train, tmp_path) -> None:
    reference = _datamodule(compose_train, "soundfont_notes_small")
    reference.prepare_data()
    # In-process rendering here, workers for the reference: the bytes must agree.
    dm = _datamodule(compose_train, "soundfont_notes_small", data_dir=tmp_path, render_workers=0)
    dm.render()
    names = sorted(_mtimes(dm.root))
    assert names == sorted(_mtimes(reference.root))
    for name in names:
        assert (dm.root / name).read_bytes() == (reference.root / name).read_bytes(), name

    deleted, damaged = dm.root / names[0], dm.root / names[1]
    deleted.unlink()
    damaged.write_bytes(damaged.read_bytes()[:-100])
    assert dm.render().rendered == 2 + 2  # and the 2 silent notes, never written, re-checked
    for path in (deleted, damaged):
        assert path.read_bytes() == (reference.root / path.relative_to(dm.root)).read_bytes()

    # Interrupted: no manifest, some clips missing, a stray temporary file.
    (dm.root / MANIFEST_NAME).unlink()
    for name in names[5:15]:
        (dm.root / name).unlink()
    (dm.root / names[20]).with_name(".stray.wav.123.abcd.tmp").write_bytes(b"half")
    untouched = _mtimes(dm.root)
    result = dm.render()
    assert result.rendered == 10 + 2  # the 10 missing and the 2 silent notes, re-checked
    assert result.num_kept == SMALL_NOTES_KEPT and (dm.root / MANIFEST_NAME).exists()
    assert not list(dm.root.rglob("*.tmp"))
    assert {k: v for k, v in _mtimes(dm.root).items() if k in untouched} == untouched
    assert dm.render().rendered == 0


@needs_fluidsynth
def test_note_level_and_grouped_splits(compose_train) -> None:
    dm = _datamodule(compose_train, "soundfont_notes_small")
    dm.prepare_data()
    dm.setup()
    parts = [dm.split_indices(s) for s in ("train", "val", "test")]
    assert sum(map(len, parts)) == SMALL_NOTES_KEPT
    assert len(set(np.concatenate(parts).tolist())) == SMALL_NOTES_KEPT
    grouped = _datamodule(compose_train, "soundfont_notes_small", group_column="program")
    grouped.prepare_data()
    grouped.setup()
    programs = [
        set(grouped.metadata["program"][grouped.split_indices(s)]) for s in ("train", "val", "test")
    ]
    assert all(programs) and not (programs[0] & programs[1] or programs[0] & programs[2])
    assert not programs[1] & programs[2]


def test_render_clip_folder_drops_silent_and_nan_clips(tmp_path: Path) -> None:
    clips = [
        ClipSpec(f"c{i}.wav", {"kind": kind}, (kind,))
        for i, kind in enumerate(["tone", "zero", "quiet", "nan", "tone"])
    ]
    result = render_clip_folder(
        "fake",
        tmp_path / "fake",
        {"v": 1},
        clips,
        _fake_render,
        8000,
        num_workers=0,
        progress=False,
    )
    assert result.num_kept == 2
    reasons = dict(result.dropped)
    assert reasons["c1.wav"].startswith("silent") and reasons["c2.wav"].startswith("silent")
    assert reasons["c3.wav"] == "NaN/inf samples"
    assert sorted(p.name for p in (tmp_path / "fake").glob("*.wav")) == ["c0.wav", "c4.wav"]


def _fake_render(requests: list[tuple]) -> list[np.ndarray]:
    t = np.arange(800) / 8000
    audio = {
        "tone": 0.5 * np.sin(2 * np.pi * 440 * t),
        "zero": np.zeros(800),
        "quiet": 1e-4 * np.sin(2 * np.pi * 440 * t),  # -80 dBFS
        "nan": np.full(800, np.nan),
    }
    return [audio[kind].astype(np.float32) for (kind,) in requests]


# -- spoken digits --------------------------------------------------------------------------


@needs_espeak
def test_spoken_digits_labels_speakers_and_grouped_splits(compose_train) -> None:
    dm = _datamodule(compose_train, "spoken_digits_small")
    dm.prepare_data()
    assert dm.last_render.num_kept == 40 and dm.last_render.dropped == []
    rows = _metadata(dm)
    assert list(rows[0]) == ["path", "digit", "speaker", "speed_wpm", "pitch"]
    assert sorted((r["speaker"], r["digit"]) for r in rows) == sorted(
        (s, str(d)) for s in SMALL_SPEAKERS for d in range(10)
    )
    for row in rows:
        assert row["path"].startswith(f"{row['speaker']}/{row['digit']}_")
        info = sf.info(str(dm.root / row["path"]))
        assert info.samplerate == 16000 and 0.2 < info.duration < 1.5
        assert _peak_db(dm.root / row["path"]) > dm.silence_db

    dm.setup()
    speakers = [set(dm.metadata["speaker"][dm.split_indices(s)]) for s in ("train", "val", "test")]
    assert [len(s) for s in speakers] == [2, 1, 1]
    assert set.union(*speakers) == set(SMALL_SPEAKERS)
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == BATCH_KEYS and batch["audio"].shape == (8, 24000)
    assert dm.classes["digit"] == [str(d) for d in range(10)]

    again = _datamodule(compose_train, "spoken_digits_small")
    again.prepare_data()
    assert again.last_render.rendered == 0


# A process whose OpenMP threads have run (torch's, once a model computed anything) then
# forks rendering workers: as in train.py. Run apart, so a hang fails instead of hanging.
_RENDER_AFTER_TORCH = """
import sys, torch
torch.ones(10**7).mul(2).sum()  # starts torch's OpenMP thread pool
from audiorep.data.soundfont_notes import SoundfontNotesDataModule
dm = SoundfontNotesDataModule(data_dir=sys.argv[1], programs=list(range(20)), pitches=[60],
                              velocities=[100], seconds=0.5, note_seconds=0.25,
                              render_workers=2, progress=False)
print(dm.render().num_kept)
"""


@needs_fluidsynth
def test_forked_render_workers_survive_a_running_openmp_pool(tmp_path: Path) -> None:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _RENDER_AFTER_TORCH, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("rendering workers hung after torch had run (OpenMP across fork)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "20"


@needs_espeak
def test_a_recorded_digits_folder_gets_the_same_labels_through_audio_folder(
    compose_train, tmp_path: Path
) -> None:
    """The command line of conf/data/spoken_digits.yaml for real recordings, on a copy of
    the rendered clips laid out as the Free Spoken Digit Dataset is."""
    rendered = _datamodule(compose_train, "spoken_digits_small")
    rendered.prepare_data()
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    for i, row in enumerate(_metadata(rendered)):
        speaker = row["speaker"].replace("+", "-")
        shutil.copy(rendered.root / row["path"], recordings / f"{row['digit']}_{speaker}_{i}.wav")
    # The yaml's one-liner that writes metadata.csv, run as written there.
    yaml_text = (CONF / "spoken_digits.yaml").read_text()
    [one_liner] = [line for line in yaml_text.splitlines() if line.startswith("#   python -c")]
    command = shlex.split(one_liner.removeprefix("#").replace("<fsdd>/recordings", ""))
    command[0] = sys.executable
    subprocess.run([*command, str(recordings)], check=True, timeout=60)
    cfg = compose_train(
        "data=audio_folder",
        f"data.root={recordings}",
        "data.metadata=metadata.csv",
        "data.label_columns=[digit,speaker]",
        "data.group_column=speaker",
        "data.clip_seconds=1.5",
        "data.splits=[0.75,0.125,0.125]",
    )
    dm = instantiate(cfg.data, progress=False)
    dm.prepare_data()
    dm.setup()
    assert dm.num_clips == 40 and dm.label_columns == ["digit", "speaker"]
    assert dm.classes["digit"] == [str(d) for d in range(10)]
    speakers = [set(dm.metadata["speaker"][dm.split_indices(s)]) for s in ("train", "val", "test")]
    assert sum(map(len, speakers)) == len(SMALL_SPEAKERS) == len(set.union(*speakers))
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) == BATCH_KEYS and batch["audio"].shape[1] == 24000
