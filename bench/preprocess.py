"""Benchmark: the preprocessing pass against a librosa load-and-resample loop.

Writes a folder of synthetic files (a mix of 44.1 kHz and 48 kHz stereo, wav and flac,
2 to 10 s), then decodes every one to mono 16 kHz three ways on the same files:

- ``preprocess_clips`` with 2 worker processes into a fresh cache (the real pass:
  decode, check, resample, write the mirrored .npy tree, pack, manifest);
- ``preprocess_clips`` in this process (0 workers), to separate the per-file cost from
  the parallelism;
- the reference: a single-process ``librosa.load(path, sr=16000)`` loop (soxr
  resampler), which keeps the audio in memory and writes nothing.

Prints files/s and audio seconds/s for each and the ratios; the last line is a JSON
object of the figures.

    python bench/preprocess.py [--files 200] [--dir /tmp/folder]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from audiorep.data.clips import scan_folder
from audiorep.data.preprocess import cached_clip_path, preprocess_clips

TARGET_SR = 16000


def make_files(folder: Path, n: int, seed: int = 0) -> float:
    """``n`` stereo files, 44.1/48 kHz, wav/flac, 2-10 s of tones in noise -> total seconds."""
    rng = np.random.default_rng(seed)
    total = 0.0
    for i in range(n):
        sr = (44100, 48000)[i % 2]
        ext = ("wav", "flac")[(i // 2) % 2]
        seconds = float(rng.uniform(2.0, 10.0))
        t = np.arange(int(seconds * sr)) / sr
        freqs = rng.uniform(100, 4000, size=3)
        mono = sum(np.sin(2 * np.pi * f * t) for f in freqs) / 6
        stereo = np.stack([mono, np.roll(mono, 7)], axis=1) + 0.01 * rng.standard_normal(
            (len(t), 2)
        )
        path = folder / f"class{i % 5}" / f"clip{i:04d}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, stereo.astype(np.float32), sr, subtype="PCM_16")
        total += len(t) / sr
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="number of synthetic files")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    parser.add_argument("--workers", type=int, default=2, help="workers of the pass")
    args = parser.parse_args()

    import librosa  # the reference only (dev extra)

    work = Path(args.dir or tempfile.mkdtemp(prefix="audiorep-bench-"))
    folder = work / "audio"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    audio_seconds = make_files(folder, args.files)
    table = scan_folder(folder)
    size_mb = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6
    print(
        f"{len(table)} files, {audio_seconds:.0f} s of audio, {size_mb:.0f} MB "
        f"(44.1/48 kHz stereo wav+flac) -> mono {TARGET_SR} Hz; {os.cpu_count()} CPUs"
    )

    figures: dict[str, float] = {}

    def report(name: str, seconds: float) -> None:
        files_per_s, audio_per_s = len(table) / seconds, audio_seconds / seconds
        figures[f"{name}_seconds"] = round(seconds, 3)
        figures[f"{name}_files_per_second"] = round(files_per_s, 1)
        figures[f"{name}_audio_seconds_per_second"] = round(audio_per_s, 1)
        print(
            f"{name:<22}: {seconds:6.2f} s  {files_per_s:7.1f} files/s  {audio_per_s:8.0f} audio s/s"
        )

    for name, workers in ((f"pass_{args.workers}_workers", args.workers), ("pass_in_process", 0)):
        cache = work / f"cache_{workers}"
        shutil.rmtree(cache, ignore_errors=True)
        start = time.perf_counter()
        result = preprocess_clips(
            table, folder, cache, TARGET_SR, num_workers=workers, progress=False
        )
        report(name, time.perf_counter() - start)
        assert len(result.kept) == len(table), result.skipped

    start = time.perf_counter()
    reference = [librosa.load(folder / p, sr=TARGET_SR, mono=True)[0] for p in table.paths]
    report("librosa_loop", time.perf_counter() - start)

    # Same audio? The resamplers differ (polyphase Kaiser FIR vs soxr), so compare levels.
    cache = work / f"cache_{args.workers}"
    errors = []
    for path, ref in zip(table.paths[:20], reference[:20]):
        ours = np.load(cached_clip_path(cache, path))
        n = min(len(ours), len(ref))
        errors.append(np.sqrt(np.mean((ours[:n] - ref[:n]) ** 2)) / np.sqrt(np.mean(ref[:n] ** 2)))
    figures["relative_rms_difference_vs_librosa"] = float(np.max(errors))
    pass_key = f"pass_{args.workers}_workers"
    figures["speedup_vs_librosa"] = round(
        figures["librosa_loop_seconds"] / figures[f"{pass_key}_seconds"], 2
    )
    figures["in_process_speedup_vs_librosa"] = round(
        figures["librosa_loop_seconds"] / figures["pass_in_process_seconds"], 2
    )
    figures["files"] = len(table)
    figures["audio_seconds"] = round(audio_seconds, 1)
    print(
        f"ratio: the {args.workers}-worker pass is {figures['speedup_vs_librosa']:.2f}x the librosa "
        f"loop (in process: {figures['in_process_speedup_vs_librosa']:.2f}x); largest relative "
        f"RMS difference from librosa's audio: {figures['relative_rms_difference_vs_librosa']:.1e}"
    )
    if args.dir is None:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
