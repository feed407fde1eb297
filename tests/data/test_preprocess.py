"""The preprocessing pass: the fuzz set of bad files, the report, resume after kill -9."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audiorep.audio.io import read_audio
from audiorep.data import preprocess
from audiorep.data.cache import verify_manifest
from audiorep.data.clips import ClipTable, read_metadata, scan_folder
from audiorep.data.preprocess import (
    CRASHED,
    PreprocessResult,
    _Params,
    _process_chunk,
    _run_jobs,
    cached_clip_path,
    load_index,
    preprocess_clips,
)

SR = 16000


def tone(seconds: float, sample_rate: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    x = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


# name -> the reason it is skipped (a substring of it), or None when it is kept.
FUZZ_EXPECTED: dict[str, str | None] = {
    "bad/zero bytes.wav": "empty file (0 bytes)",
    "bad/truncated_header.wav": "not audio",
    "bad/text.wav": "not audio",
    "bad/silent.wav": "silent",
    "bad/nan.wav": "NaN/inf samples",
    "bad/one_sample.wav": "too short",
    "good/tone_8k.wav": None,
    "good/stereo_48k.flac": None,
    "good/much longer.wav": None,
    "good/ünïcödé 名前.ogg": None,
    "good/missing.wav": "missing file",
}


def make_fuzz_set(root: Path) -> None:
    """The fuzz set of issue 3, section 5, plus a metadata CSV listing it (and a missing file)."""
    (root / "bad").mkdir(parents=True)
    (root / "good").mkdir()
    (root / "bad" / "zero bytes.wav").write_bytes(b"")
    sf.write(root / "good" / "tone_8k.wav", tone(0.25, 8000), 8000)
    header = (root / "good" / "tone_8k.wav").read_bytes()[:30]
    (root / "bad" / "truncated_header.wav").write_bytes(header)
    (root / "bad" / "text.wav").write_text("this is a text file, not audio\n")
    sf.write(root / "bad" / "silent.wav", np.zeros(4000, np.float32), 16000)
    nan = tone(0.25, 16000)
    nan[100:110] = np.nan
    sf.write(root / "bad" / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(root / "bad" / "one_sample.wav", np.array([0.5], np.float32), 16000)
    sf.write(root / "good" / "stereo_48k.flac", tone(0.3, 48000, channels=2), 48000)
    sf.write(root / "good" / "much longer.wav", tone(4.0, 16000), 16000)
    sf.write(root / "good" / "ünïcödé 名前.ogg", tone(0.25, 22050), 22050)
    with open(root / "meta.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "kind"])
        for name in FUZZ_EXPECTED:
            writer.writerow([name, name.split("/")[0]])


@pytest.fixture
def fuzz_root(tmp_path: Path) -> Path:
    root = tmp_path / "fuzz root"
    make_fuzz_set(root)
    return root


def fuzz_table(root: Path) -> ClipTable:
    return read_metadata(root, "meta.csv", "file", ["kind"])


def read_report(path: Path) -> dict[str, str]:
    with open(path, encoding="utf-8", newline="") as f:
        return {row["path"]: row["reason"] for row in csv.DictReader(f)}


def test_fuzz_set_every_file_handled_and_named_in_the_report(
    fuzz_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    table = fuzz_table(fuzz_root)
    cache = tmp_path / "cache"
    with caplog.at_level(logging.WARNING, logger="audiorep.data.preprocess"):
        result = preprocess_clips(
            table, fuzz_root, cache, SR, max_seconds=1.0, num_workers=2, progress=False
        )
    skipped = dict(result.skipped)
    report = read_report(cache / "report.csv")
    for name, reason in FUZZ_EXPECTED.items():
        if reason is None:
            assert name not in skipped
        else:
            assert reason in skipped[name], (name, skipped.get(name))
            assert report[name] == skipped[name]
    kept_names = [table.paths[i] for i in result.kept]
    assert kept_names == [n for n, r in FUZZ_EXPECTED.items() if r is None]
    # The long file is kept, cut to max_seconds, and the report says so.
    assert dict(result.truncated) == {"good/much longer.wav": report["good/much longer.wav"]}
    assert "truncated to 1 s" in report["good/much longer.wav"]
    # 8 kHz, 48 kHz stereo and 22.05 kHz all come out mono at 16 kHz.
    assert result.lengths == [4000, 4800, 16000, 4000]
    # The log names the count and where the report is.
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert (
        f"skipped 7 of {len(table)} audio files" in warning and str(cache / "report.csv") in warning
    )
    assert "bad/nan.wav: NaN/inf samples" in warning

    index = load_index(cache)
    packed = np.load(cache / "packed.npy", mmap_mode="r")
    assert packed.dtype == np.float32 and packed.ndim == 1
    assert index["offsets"] == [0, 4000, 8800, 24800, 28800] and len(packed) == 28800
    assert index["paths"] == kept_names and index["labels"] == {"kind": ["good"] * 4}
    for k, name in enumerate(kept_names):
        clip = np.load(cached_clip_path(cache, name))
        np.testing.assert_array_equal(packed[index["offsets"][k] : index["offsets"][k + 1]], clip)
        expected, _ = read_audio(fuzz_root / name, SR, max_seconds=1.0)
        np.testing.assert_allclose(clip, expected[: len(clip)], atol=1e-6)
    assert (
        verify_manifest(cache, json.loads((cache / "manifest.json").read_text())["config"]) is None
    )


def test_rerun_reuses_the_cache_and_a_resumed_pass_redoes_nothing(
    fuzz_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = fuzz_table(fuzz_root)
    cache = tmp_path / "cache"
    first = preprocess_clips(table, fuzz_root, cache, SR, num_workers=0, progress=False)
    decoded: list[str] = []
    original = preprocess._process_clip

    def counting(src: str, dst: str, p: _Params):
        decoded.append(src)
        return original(src, dst, p)

    monkeypatch.setattr(preprocess, "_process_clip", counting)
    again = preprocess_clips(table, fuzz_root, cache, SR, num_workers=0, progress=False)
    assert decoded == [] and again.kept == first.kept and again.skipped == first.skipped
    # Without the manifest the pass resumes: kept clips come from their .npy files; only
    # the skipped ones (which have none) are looked at again.
    mtimes = {p: p.stat().st_mtime_ns for p in (cache / "audio").rglob("*.npy")}
    (cache / "manifest.json").unlink()
    resumed = preprocess_clips(table, fuzz_root, cache, SR, num_workers=0, progress=False)
    assert resumed.reused == len(first.kept)
    assert sorted(Path(s).relative_to(fuzz_root).as_posix() for s in decoded) == sorted(
        n for n, r in FUZZ_EXPECTED.items() if r is not None
    )
    assert {p: p.stat().st_mtime_ns for p in (cache / "audio").rglob("*.npy")} == mtimes
    assert resumed.kept == first.kept and resumed.lengths == first.lengths


def test_changed_parameters_rebuild_the_clip_files(fuzz_root: Path, tmp_path: Path) -> None:
    table = scan_folder(fuzz_root / "good")
    cache = tmp_path / "cache"
    preprocess_clips(table, fuzz_root / "good", cache, SR, num_workers=0, progress=False)
    result = preprocess_clips(table, fuzz_root / "good", cache, 8000, num_workers=0, progress=False)
    assert result.reused == 0
    assert dict(zip(table.paths, result.lengths))["stereo_48k.flac"] == 2400
    assert np.load(cached_clip_path(cache, "stereo_48k.flac")).shape == (2400,)


def test_no_usable_file_still_writes_a_complete_empty_cache(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_text("text")
    result = preprocess_clips(scan_folder(tmp_path), tmp_path, tmp_path / "c", SR, progress=False)
    assert result.kept == [] and len(result.skipped) == 1
    assert np.load(tmp_path / "c" / "packed.npy").shape == (0,)
    assert load_index(tmp_path / "c")["offsets"] == [0]


def test_bad_parameters_name_the_config_key(fuzz_root: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data.min_seconds"):
        preprocess_clips(
            fuzz_table(fuzz_root), fuzz_root, tmp_path, SR, min_seconds=2, max_seconds=1
        )


# -- permissions --------------------------------------------------------------------


PERMISSION_SCRIPT = """
import json, sys
from audiorep.data.clips import scan_folder
from audiorep.data.preprocess import preprocess_clips
root = sys.argv[1]
r = preprocess_clips(scan_folder(root), root, root + "/cache", 16000, num_workers=0, progress=False)
print(json.dumps(r.skipped))
"""


def test_unreadable_permissions_are_reported() -> None:
    """chmod 000 does not stop root from reading, so as root the pass runs as nobody."""
    root = Path(tempfile.mkdtemp(prefix="audiorep-perm-"))
    try:
        root.chmod(0o777)  # nobody must be able to write the cache and read ok.wav
        sf.write(root / "ok.wav", tone(0.25, 16000), 16000)
        sf.write(root / "locked.wav", tone(0.25, 16000), 16000)
        (root / "locked.wav").chmod(0o000)
        cmd = [sys.executable, "-c", PERMISSION_SCRIPT, str(root)]
        if os.geteuid() == 0:
            if shutil.which("setpriv") is None:
                pytest.skip("running as root without setpriv: chmod 000 cannot block reads")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        skipped = dict(json.loads(out.stdout.strip().splitlines()[-1]))
        assert skipped == {"locked.wav": "unreadable: permission denied"}
    finally:
        shutil.rmtree(root, ignore_errors=True)


# -- a worker that dies --------------------------------------------------------------


def crash_on_marker(jobs: list, p: _Params) -> list:
    """Worker stand-in: dies like a segfaulting decoder on a file named crash*."""
    if any(Path(src).name.startswith("crash") for _, src, _ in jobs):
        os._exit(11)
    return _process_chunk(jobs, p)


def test_a_file_that_kills_its_worker_is_reported_and_the_rest_are_decoded(tmp_path: Path) -> None:
    names = [f"f{i:02d}.wav" for i in range(12)]
    names.insert(5, "crash.wav")
    for name in names:
        sf.write(tmp_path / name, tone(0.2, 16000), 16000)
    jobs = [(i, str(tmp_path / n), str(tmp_path / "c" / f"{n}.npy")) for i, n in enumerate(names)]
    advanced: list[int] = []
    results = _run_jobs(jobs, _Params(SR, 0.1, None, -60.0), 2, advanced.append, crash_on_marker)
    assert results[5] == (None, CRASHED)
    assert all(results[i] == (3200, None) for i in range(len(names)) if i != 5)
    assert sum(advanced) == len(names)


# -- kill -9 midway ------------------------------------------------------------------


KILL_SCRIPT = """
import sys, time
from pathlib import Path
from audiorep.data import preprocess
from audiorep.data.clips import scan_folder

original = preprocess._process_clip

def slow(src, dst, p):
    time.sleep(0.05)  # so the parent can kill the pass midway
    return original(src, dst, p)

preprocess._process_clip = slow  # forked workers inherit the patch
root = Path(sys.argv[1])
preprocess.preprocess_clips(
    scan_folder(root), root, sys.argv[2], 16000, max_seconds=1.0, num_workers=int(sys.argv[3]),
    progress=False,
)
"""


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize("workers", [0, 2])
def test_pass_killed_midway_resumes_to_the_same_cache(
    fuzz_root: Path, tmp_path: Path, workers: int
) -> None:
    more = fuzz_root / "more"
    more.mkdir()
    for i in range(40):
        sf.write(more / f"clip {i:02d}.wav", tone(0.2 + 0.01 * i, 22050, 200.0 + 10 * i), 22050)
    table = scan_folder(fuzz_root)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(fuzz_root), str(killed), str(workers)],
        start_new_session=True,  # its own process group: the kill reaches its workers too
    )
    try:
        deadline = time.monotonic() + 60
        while len(list((killed / "audio").rglob("*.npy"))) < 8:
            assert proc.poll() is None, "the pass ended before it could be killed"
            assert time.monotonic() < deadline, "the pass made no progress"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (killed / "manifest.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in (killed / "audio").rglob("*.npy")}
    assert 8 <= len(finished) < 44

    resumed = preprocess_clips(table, fuzz_root, killed, SR, max_seconds=1.0, progress=False)
    assert resumed.reused == len(finished)
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # not redone

    fresh = tmp_path / "fresh"
    whole = preprocess_clips(table, fuzz_root, fresh, SR, max_seconds=1.0, progress=False)
    assert isinstance(whole, PreprocessResult) and whole.reused == 0
    assert (resumed.kept, resumed.skipped, resumed.truncated) == (
        whole.kept,
        whole.skipped,
        whole.truncated,
    )
    assert tree_bytes(killed) == tree_bytes(fresh)
