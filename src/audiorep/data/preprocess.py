"""The preprocessing pass: decode, check, resample and cache every clip of a ``ClipTable``.

Layout of a cache directory, in the order it is written::

    params.json          the decoding parameters the per-clip files were made with
    audio/<relpath>.npy  one float32 (T,) array per usable clip, a tree mirroring the root
    report.csv           path, reason: every file skipped (and every one truncated)
    packed.npy           all kept clips concatenated, float32 (sum of lengths,)
    index.json           the kept clips: table index, path, labels, folds, groups,
                         length and offset into packed.npy
    manifest.json        written last: config and checksums of the three files above

The pass is resumable: each clip's ``.npy`` is written atomically by the worker that
decoded it, so a pass killed at any point leaves only complete files, and a rerun reuses
them and decodes the rest. The manifest is removed when a pass starts and written when it
ends, so an interrupted pass is never mistaken for a finished one. Everything written is a
deterministic function of the files and the parameters: a killed-and-resumed pass leaves
the same bytes as an uninterrupted one. Once the manifest is there, ``audio/`` is only
needed to resume after the table changes; the data modules read ``packed.npy``.

Files that cannot be used are skipped with a reason, never stopping the pass: missing,
unreadable (permissions, not audio, damaged), empty, NaN/inf samples, silent (peak below
``silence_db`` dBFS), shorter than ``min_seconds``. Files longer than ``max_seconds`` are
kept, truncated to their first ``max_seconds``, and listed in the report as truncated.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiorep.audio.io import AudioReadError, read_audio, resample
from audiorep.data.cache import (
    MANIFEST_NAME,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    canonical_json,
    config_hash,
    verify_manifest,
    write_manifest,
)
from audiorep.data.clips import ClipTable
from audiorep.data.workers import chunked, progress_bar, worker_context

log = logging.getLogger(__name__)

__all__ = ["PreprocessResult", "cached_clip_path", "load_index", "preprocess_clips"]

# Bump when the decoding or the cache layout changes, so older caches are rebuilt.
PREPROCESS_VERSION = 1
AUDIO_DIR = "audio"
PARAMS_FILE = "params.json"
REPORT_FILE = "report.csv"
PACKED_FILE = "packed.npy"
INDEX_FILE = "index.json"
CRASHED = "unreadable: the decoder crashed (its worker process died)"
# Skipped files named one by one in the log; the rest are counted (all are in report.csv).
_LOGGED_SKIPS = 20


@dataclass
class PreprocessResult:
    """Outcome of a pass. ``kept``: table indices of the cached clips, in table order;
    ``skipped``/``truncated``: (path, reason) in table order; ``lengths``: samples per kept
    clip; ``reused``: files whose cached ``.npy`` from an earlier pass was reused."""

    cache_dir: Path
    kept: list[int]
    skipped: list[tuple[str, str]]
    truncated: list[tuple[str, str]] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    reused: int = 0

    @property
    def report_path(self) -> Path:
        return self.cache_dir / REPORT_FILE


def cached_clip_path(cache_dir: str | os.PathLike, relpath: str) -> Path:
    """Where the decoded clip of ``relpath`` (relative to the root) lives in the cache."""
    return Path(cache_dir) / AUDIO_DIR / f"{relpath}.npy"


def load_index(cache_dir: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``index.json`` of a finished cache."""
    with open(Path(cache_dir) / INDEX_FILE, encoding="utf-8") as f:
        return json.load(f)


# -- one clip (runs in worker processes) --------------------------------------------------


@dataclass(frozen=True)
class _Params:
    sample_rate: int
    min_seconds: float
    max_seconds: float | None
    silence_db: float


def _process_clip(src: str, dst: str, p: _Params) -> tuple[int | None, str | None]:
    """Decode, check, resample and cache one file -> (length, None) or (None, skip reason)."""
    try:
        audio, sr = read_audio(src, max_seconds=p.max_seconds)
    except AudioReadError as err:
        return None, err.reason
    if not np.all(np.isfinite(audio)):
        return None, "NaN/inf samples"
    peak = float(np.max(np.abs(audio)))
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < p.silence_db:
        return None, f"silent (peak {peak_db:.1f} dBFS < data.silence_db={p.silence_db:g})"
    seconds = len(audio) / sr
    if seconds < p.min_seconds:
        return None, f"too short ({seconds:.4g} s < data.min_seconds={p.min_seconds:g})"
    audio = resample(audio, sr, p.sample_rate)
    if p.max_seconds is not None:
        audio = audio[: int(round(p.max_seconds * p.sample_rate))]
    audio = np.ascontiguousarray(audio, dtype="<f4")
    # No fsync per clip: atomic rename already protects against a killed process, and a
    # clip file damaged by a power cut fails _cached_length and is decoded again.
    with atomic_path(dst) as tmp, open(tmp, "wb") as f:
        np.save(f, audio, allow_pickle=False)
    return len(audio), None


_Job = tuple[int, str, str]  # (unique clip number, source path, cache path)
_Outcome = tuple[int, int | None, str | None]  # (clip number, length, reason)


def _process_chunk(jobs: list[_Job], p: _Params) -> list[_Outcome]:
    """Worker entry point: a few files per task, so task overhead stays small."""
    out = []
    for number, src, dst in jobs:
        try:
            length, reason = _process_clip(src, dst, p)
        except Exception as err:  # noqa: BLE001 - one bad file must never stop the pass
            length, reason = None, f"unreadable: {type(err).__name__}: {err}"
        out.append((number, length, reason))
    return out


# -- the pass -----------------------------------------------------------------------------


def _cached_length(path: Path) -> int | None:
    """Samples in a complete cached clip, or None when it is missing or damaged.

    Reads only the .npy header and compares the file size with it: no decoding.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            else:
                return None
            data_start = f.tell()
    except (OSError, ValueError):
        return None
    if len(shape) != 1 or fortran or dtype != np.dtype("<f4"):
        return None
    if path.stat().st_size != data_start + shape[0] * 4:
        return None
    return int(shape[0])


def _run_jobs(
    jobs: list[_Job],
    p: _Params,
    num_workers: int,
    advance: Callable[[int], None],
    work: Callable[[list[_Job], _Params], list[_Outcome]] = _process_chunk,
) -> dict[int, tuple[int | None, str | None]]:
    """Run ``work`` over ``jobs`` in ``num_workers`` processes (0: in this process).

    A file that kills its worker (a decoder crash) breaks the whole pool; the files that
    were in flight are then retried one per fresh single-worker pool, so only the file
    that crashes on its own is reported, as ``CRASHED``.
    """
    results: dict[int, tuple[int | None, str | None]] = {}
    if not jobs:
        return results
    if num_workers <= 0:
        for chunk in chunked(jobs, 1):
            for number, length, reason in work(chunk, p):
                results[number] = (length, reason)
            advance(len(chunk))
        return results
    context = worker_context()
    size = max(1, min(16, len(jobs) // (num_workers * 8)))
    interrupted: list[_Job] = []
    with ProcessPoolExecutor(num_workers, mp_context=context) as pool:
        futures = {pool.submit(work, chunk, p): chunk for chunk in chunked(jobs, size)}
        for future in as_completed(futures):
            try:
                outcomes = future.result()
            except BrokenProcessPool:
                interrupted.extend(futures[future])
                continue
            for number, length, reason in outcomes:
                results[number] = (length, reason)
            advance(len(outcomes))
    for job in sorted(interrupted):
        with ProcessPoolExecutor(1, mp_context=context) as pool:
            try:
                [(number, length, reason)] = pool.submit(work, [job], p).result()
            except BrokenProcessPool:
                number, length, reason = job[0], None, CRASHED
        if reason == CRASHED:
            _check_workers_start(context, p)
        results[number] = (length, reason)
        advance(1)
    return results


def _check_workers_start(context: Any, p: _Params) -> None:
    """Raise if a worker process dies with no file to blame (it cannot start at all)."""
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        try:
            pool.submit(_process_chunk, [], p).result()
        except BrokenProcessPool as err:
            raise RuntimeError(
                "preprocessing worker processes die on start; set data.preprocess_workers=0 "
                "to decode in the main process"
            ) from err


def _write_report(path: Path, rows: list[tuple[str, str]]) -> None:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "reason"])
    writer.writerows(rows)
    atomic_write_text(path, text.getvalue())


def _write_packed(path: Path, clips: Sequence[Path], total: int) -> None:
    """Concatenate the cached clips into one 1-D float32 .npy, streamed (no full copy in RAM)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        header = {"descr": "<f4", "fortran_order": False, "shape": (total,)}
        np.lib.format.write_array_header_1_0(f, header)
        for clip in clips:
            f.write(np.load(clip, allow_pickle=False).astype("<f4", copy=False).tobytes())
        f.flush()
        os.fsync(f.fileno())


def _result_from_cache(cache_dir: Path) -> PreprocessResult:
    index = load_index(cache_dir)
    with open(cache_dir / REPORT_FILE, encoding="utf-8", newline="") as f:
        rows = [(r["path"], r["reason"]) for r in csv.DictReader(f)]
    truncated = [r for r in rows if r[1].startswith("truncated")]
    skipped = [r for r in rows if not r[1].startswith("truncated")]
    return PreprocessResult(
        cache_dir,
        list(index["table_index"]),
        skipped,
        truncated,
        list(index["lengths"]),
        len(index["lengths"]),
    )


def _start_pass(cache_dir: Path, params: dict[str, Any]) -> None:
    """Mark the cache as in progress and clear what cannot be reused."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    # The manifest goes first: if this pass is interrupted the cache must not look done.
    (cache_dir / MANIFEST_NAME).unlink(missing_ok=True)
    params_path = cache_dir / PARAMS_FILE
    try:
        old = params_path.read_text(encoding="utf-8")
    except OSError:
        old = None
    if old is not None and old.strip() != canonical_json(params):
        log.warning("preprocessing parameters changed; decoding every clip again in %s", cache_dir)
        shutil.rmtree(cache_dir / AUDIO_DIR, ignore_errors=True)
    atomic_write_text(params_path, canonical_json(params) + "\n")
    # Temporary files of a killed pass (atomic_path names them .<name>.<pid>.<id>.tmp).
    for tmp in cache_dir.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def preprocess_clips(
    table: ClipTable,
    root: str | os.PathLike,
    cache_dir: str | os.PathLike,
    sample_rate: int,
    *,
    min_seconds: float = 0.1,
    max_seconds: float | None = None,
    silence_db: float = -60.0,
    num_workers: int = 2,
    progress: bool = True,
) -> PreprocessResult:
    """Decode every clip of ``table`` (paths relative to ``root``) into ``cache_dir``.

    Clips are mono float32 at ``sample_rate``. A finished cache with a valid manifest for
    the same table and parameters is reused as is; an unfinished one is resumed.
    ``num_workers`` decoding processes (0: decode in this process).
    """
    root = Path(root)
    cache_dir = Path(cache_dir)
    if min_seconds < 0 or (max_seconds is not None and max_seconds <= min_seconds):
        raise ValueError(
            f"need 0 <= data.min_seconds < data.max_seconds (got {min_seconds}, {max_seconds})"
        )
    p = _Params(
        int(sample_rate),
        float(min_seconds),
        None if max_seconds is None else float(max_seconds),
        float(silence_db),
    )
    params = {"version": PREPROCESS_VERSION, **p.__dict__}
    table_json = {
        "paths": table.paths,
        "labels": table.labels,
        "folds": table.folds,
        "groups": table.groups,
    }
    config = {**params, "root": str(root.resolve()), "table": config_hash(table_json, 32)}
    if verify_manifest(cache_dir, config) is None:
        log.info("preprocessed audio cache is complete: %s", cache_dir)
        return _result_from_cache(cache_dir)

    _start_pass(cache_dir, params)
    unique = list(dict.fromkeys(table.paths))
    outcome: dict[str, tuple[int | None, str | None]] = {}
    todo: list[_Job] = []
    for number, rel in enumerate(unique):
        dst = cached_clip_path(cache_dir, rel)
        length = _cached_length(dst)
        if length is None:
            todo.append((number, str(root / rel), str(dst)))
        else:
            outcome[rel] = (length, None)
    reused = len(outcome)
    if reused:
        log.info("resuming: %d of %d clips already decoded in %s", reused, len(unique), cache_dir)
    with progress_bar(progress) as bar:
        task = bar.add_task(f"decoding to {p.sample_rate} Hz", total=len(todo))
        done = _run_jobs(todo, p, num_workers, lambda k: bar.advance(task, k))
    for number, length_reason in done.items():
        outcome[unique[number]] = length_reason
    kept, lengths, skipped, truncated = [], [], [], []
    for i, rel in enumerate(table.paths):
        length, reason = outcome[rel]
        if length is None:
            skipped.append((rel, reason or "unreadable"))
            continue
        kept.append(i)
        lengths.append(length)
        if p.max_seconds is not None and length == round(p.max_seconds * p.sample_rate):
            note = _truncation_note(root / rel, p.max_seconds)
            if note:
                truncated.append((rel, note))
    _write_report(cache_dir / REPORT_FILE, skipped + truncated)
    offsets = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)]).astype(np.int64)
    _write_packed(
        cache_dir / PACKED_FILE,
        [cached_clip_path(cache_dir, table.paths[i]) for i in kept],
        int(offsets[-1]),
    )
    index = {
        "sample_rate": p.sample_rate,
        "root": str(root.resolve()),
        "num_clips": len(kept),
        "num_skipped": len(skipped),
        "num_truncated": len(truncated),
        "table_index": kept,
        "paths": [table.paths[i] for i in kept],
        "labels": {k: [v[i] for i in kept] for k, v in table.labels.items()},
        "folds": None if table.folds is None else [table.folds[i] for i in kept],
        "groups": None if table.groups is None else [table.groups[i] for i in kept],
        "lengths": lengths,
        "offsets": offsets.tolist(),
    }
    atomic_write_json(cache_dir / INDEX_FILE, index)
    write_manifest(
        cache_dir,
        config,
        [PACKED_FILE, INDEX_FILE, REPORT_FILE],
        extra={"num_clips": len(kept), "num_skipped": len(skipped), "sample_rate": p.sample_rate},
    )
    _log_report(cache_dir, len(table), skipped, truncated)
    return PreprocessResult(cache_dir, kept, skipped, truncated, lengths, reused)


def _truncation_note(src: Path, max_seconds: float) -> str | None:
    """The report line of a clip cut at ``max_seconds``, or None if the file is no longer.

    Read from the file's header here rather than in the worker, so the report is the same
    whether a clip was decoded in this pass or in an earlier, interrupted one.
    """
    try:
        info = sf.info(str(src))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return None
    if info.frames <= math.ceil(max_seconds * info.samplerate):
        return None
    return (
        f"truncated to {max_seconds:g} s (data.max_seconds); the file has "
        f"{info.frames / info.samplerate:.1f} s"
    )


def _log_report(
    cache_dir: Path, total: int, skipped: list[tuple[str, str]], truncated: list[tuple[str, str]]
) -> None:
    report = cache_dir / REPORT_FILE
    if truncated:
        log.warning(
            "%d clips longer than data.max_seconds were truncated (listed in %s)",
            len(truncated),
            report,
        )
    if not skipped:
        log.info("preprocessed %d clips into %s, none skipped", total, cache_dir)
        return
    log.warning(
        "skipped %d of %d audio files; the list with reasons is in %s", len(skipped), total, report
    )
    for path, reason in skipped[:_LOGGED_SKIPS]:
        log.warning("  skipped %s: %s", path, reason)
    if len(skipped) > _LOGGED_SKIPS:
        log.warning("  ... and %d more (see %s)", len(skipped) - _LOGGED_SKIPS, report)
