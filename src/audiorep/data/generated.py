"""Datasets rendered by the project into a folder of audio (SoundFont notes, spoken digits).

``render_clip_folder`` is the render-check-cache loop they share: each clip is rendered
once in worker processes, checked (a silent clip is dropped and listed in
``dropped.csv``), written as a 16-bit wav, and listed in ``metadata.csv``; the manifest is
written LAST, so a partial render is detected and resumed. ``GeneratedAudioDataModule``
serves the folder as an ``AudioFolderDataModule``: preprocessing, splits and loaders are
the audio folder's.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from audiorep.audio.io import write_wav
from audiorep.data.audio_folder import AudioFolderDataModule
from audiorep.data.cache import (
    MANIFEST_NAME,
    atomic_path,
    atomic_write_text,
    config_hash,
    file_checksum,
    read_manifest,
    verify_manifest,
    write_manifest,
)
from audiorep.data.clips import ClipTable, read_metadata
from audiorep.data.workers import chunked, progress_bar, worker_context

log = logging.getLogger(__name__)

__all__ = [
    "DROPPED_FILE",
    "METADATA_FILE",
    "ClipSpec",
    "GeneratedAudioDataModule",
    "RenderResult",
    "load_clip_table",
    "render_clip_folder",
]

METADATA_FILE = "metadata.csv"
DROPPED_FILE = "dropped.csv"


@dataclass(frozen=True)
class ClipSpec:
    """One clip of a generated dataset: where it goes, its metadata, what renders it.

    ``path`` is relative to the dataset folder, ``/``-separated. ``columns`` are the
    metadata columns after ``path``, labels first. ``request`` is one item of the list the
    dataset's ``render_chunk`` function takes.
    """

    path: str
    columns: dict[str, str]
    request: tuple


@dataclass
class RenderResult:
    """What ``render_clip_folder`` left: the folder, the clips kept and dropped, and how
    many were rendered now (0 when a finished folder was reused)."""

    cache_dir: Path
    num_kept: int
    dropped: list[tuple[str, str]]
    rendered: int


def _silence_reason(audio: np.ndarray, silence_db: float) -> str | None:
    """Why a rendered clip cannot be kept (empty, NaN, silent), or None."""
    if audio.size == 0:
        return "empty: the renderer produced no samples"
    if not np.all(np.isfinite(audio)):
        return "NaN/inf samples"
    peak = float(np.max(np.abs(audio)))
    peak_db = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_db < silence_db:
        return f"silent (peak {peak_db:.1f} dBFS < silence_db={silence_db:g})"
    return None


def _complete_wav(path: Path, sample_rate: int) -> bool:
    """Whether ``path`` is a readable wav of ``sample_rate`` with samples (header only)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError):
        return False
    return info.samplerate == sample_rate and info.frames > 0


def _write_clip(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav, written atomically: a killed render leaves no half-written clip."""
    with atomic_path(path) as tmp:
        write_wav(tmp, audio, sample_rate)


def _drop_damaged(cache_dir: Path, manifest: Mapping[str, Any] | None) -> int:
    """Delete files a previous manifest lists whose size or checksum no longer match, so
    they are rendered again instead of being blessed by the new manifest."""
    damaged = 0
    for name, entry in ((manifest or {}).get("files") or {}).items():
        path = cache_dir / name
        if not path.is_file():
            continue
        if path.stat().st_size != entry.get("size") or file_checksum(path) != entry.get("checksum"):
            path.unlink()
            damaged += 1
    return damaged


def _render_parallel(
    render_chunk: Callable[[list[tuple]], Sequence[np.ndarray]],
    requests: Sequence[tuple],
    num_workers: int,
    chunk_size: int,
) -> Iterator[tuple[int, np.ndarray]]:
    """(position in ``requests``, audio) for every request, in completion order.

    Workers only render and send the audio back; this process checks and writes it, so
    the workers import nothing but the renderer. At most two chunks per worker are in
    flight, so finished audio never piles up in memory.
    """
    chunks = list(chunked(range(len(requests)), chunk_size))
    if num_workers <= 0 or len(chunks) <= 1:
        for positions in chunks:
            yield from zip(positions, render_chunk([requests[i] for i in positions]))
        return
    with ProcessPoolExecutor(num_workers, mp_context=worker_context()) as pool:
        pending: dict[Future, list[int]] = {}
        queue = iter(chunks)
        while True:
            while len(pending) < 2 * num_workers and (positions := next(queue, None)):
                future = pool.submit(render_chunk, [requests[i] for i in positions])
                pending[future] = positions
            if not pending:
                return
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield from zip(pending.pop(future), future.result())


def _csv_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue()


def render_clip_folder(
    name: str,
    cache_dir: str | os.PathLike,
    config: Mapping[str, Any],
    clips: Sequence[ClipSpec],
    render_chunk: Callable[[list[tuple]], Sequence[np.ndarray]],
    sample_rate: int,
    *,
    silence_db: float = -60.0,
    num_workers: int = 2,
    chunk_size: int = 16,
    progress: bool = True,
) -> RenderResult:
    """Make sure ``cache_dir`` holds every clip of a generated dataset; return what it holds.

    A folder whose manifest matches ``config`` and its files is reused untouched.
    Otherwise the render resumes: clips already written (atomically) are kept, damaged
    ones are deleted and rendered again, the rest are rendered by ``render_chunk`` in
    ``num_workers`` processes. A clip that comes back empty, NaN or silent (peak below
    ``silence_db`` dBFS) is dropped, never kept, and listed in ``dropped.csv`` and the
    log. ``metadata.csv`` lists the kept clips; the manifest is written last.
    """
    cache_dir = Path(cache_dir)
    problem = verify_manifest(cache_dir, config)
    if problem is None:
        manifest = read_manifest(cache_dir) or {}
        return RenderResult(cache_dir, manifest["num_clips"], _read_dropped(cache_dir), 0)
    if cache_dir.exists():
        log.info("%s: resuming the render in %s (%s)", name, cache_dir, problem)
    else:
        log.info("%s: rendering %d clips into %s", name, len(clips), cache_dir)
    old_manifest = read_manifest(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # The manifest goes first: an interrupted render must never look finished.
    (cache_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for tmp in cache_dir.rglob(".*.tmp"):  # left by a killed render (see atomic_path)
        tmp.unlink(missing_ok=True)
    if damaged := _drop_damaged(cache_dir, old_manifest):
        log.warning("%s: %d damaged clips in %s are rendered again", name, damaged, cache_dir)

    todo = [
        i for i, clip in enumerate(clips) if not _complete_wav(cache_dir / clip.path, sample_rate)
    ]
    if done := len(clips) - len(todo):
        log.info("%s: %d of %d clips were already rendered", name, done, len(clips))
    dropped: dict[int, str] = {}
    clipped = 0
    with progress_bar(progress, f"rendering {name}") as bar:
        task = bar.add_task("render", total=len(todo))
        requests = [clips[i].request for i in todo]
        for position, audio in _render_parallel(render_chunk, requests, num_workers, chunk_size):
            index = todo[position]
            audio = np.asarray(audio, dtype=np.float32)
            reason = _silence_reason(audio, silence_db)
            if reason is None:
                clipped += bool(np.max(np.abs(audio)) > 1.0)
                _write_clip(cache_dir / clips[index].path, audio, sample_rate)
            else:
                dropped[index] = reason
            bar.advance(task)
    if clipped:
        log.warning("%s: %d clips peaked above full scale and were clipped", name, clipped)

    kept = [clip for i, clip in enumerate(clips) if i not in dropped]
    dropped_rows = [(clips[i].path, dropped[i]) for i in sorted(dropped)]
    columns = list(clips[0].columns) if clips else []
    metadata = [[clip.path, *(clip.columns[c] for c in columns)] for clip in kept]
    atomic_write_text(cache_dir / METADATA_FILE, _csv_text(["path", *columns], metadata))
    atomic_write_text(cache_dir / DROPPED_FILE, _csv_text(["path", "reason"], dropped_rows))
    write_manifest(
        cache_dir,
        config,
        [*(clip.path for clip in kept), METADATA_FILE, DROPPED_FILE],
        extra={"num_clips": len(kept), "num_dropped": len(dropped_rows)},
    )
    _log_dropped(name, cache_dir, len(clips), dropped_rows)
    return RenderResult(cache_dir, len(kept), dropped_rows, len(todo))


def _read_dropped(cache_dir: Path) -> list[tuple[str, str]]:
    with open(cache_dir / DROPPED_FILE, encoding="utf-8", newline="") as f:
        return [(row["path"], row["reason"]) for row in csv.DictReader(f)]


def _log_dropped(name: str, cache_dir: Path, total: int, dropped: list[tuple[str, str]]) -> None:
    if not dropped:
        log.info("%s: %d clips in %s, none dropped", name, total, cache_dir)
        return
    log.warning(
        "%s: dropped %d of %d clips (listed in %s)",
        name,
        len(dropped),
        total,
        cache_dir / DROPPED_FILE,
    )
    for path, reason in dropped[:10]:
        log.warning("  dropped %s: %s", path, reason)
    if len(dropped) > 10:
        log.warning("  ... and %d more", len(dropped) - 10)


def load_clip_table(
    cache_dir: Path, label_columns: Sequence[str], group_column: str | None = None
) -> ClipTable:
    """The ``ClipTable`` of a rendered folder, read from its ``metadata.csv`` exactly as
    ``data=audio_folder data.metadata=metadata.csv`` would read it."""
    return read_metadata(
        cache_dir, METADATA_FILE, "path", list(label_columns), group_column=group_column
    )


class GeneratedAudioDataModule(AudioFolderDataModule):
    """An ``AudioFolderDataModule`` whose folder it renders itself.

    Subclasses set ``name`` and implement ``generation_config`` (everything that
    determines the audio), ``clips`` and ``render_chunk``. The rendered folder is
    ``<data_dir>/<name>/<hash of generation_config>/``; from there on it is an audio folder
    with ``metadata.csv``, preprocessed and split by the parent class.
    """

    def __init__(
        self,
        label_columns: Sequence[str],
        group_column: str | None = None,
        render_workers: int = 2,
        **kwargs: Any,
    ):
        super().__init__(
            None,
            metadata=METADATA_FILE,
            label_columns=list(label_columns),
            group_column=group_column,
            **kwargs,
        )
        self.render_workers = int(render_workers)
        self.config = self.generation_config()
        clips = self.clips()
        if not clips:
            raise ValueError(f"{self.name}: the configured grid holds no clips")
        columns = set(clips[0].columns)
        unknown = [c for c in [*self.label_columns, group_column] if c and c not in columns]
        if unknown:
            raise ValueError(
                f"data.label_columns / data.group_column: {unknown} are not columns of "
                f"{self.name}; its columns are {sorted(columns)}"
            )
        # Known before rendering, so the preprocessing cache is named the same in every
        # process (the parent class hashes the root into it).
        self.root = self.data_dir / self.name / config_hash(self.config)
        self.last_render: RenderResult | None = None

    def generation_config(self) -> dict[str, Any]:
        raise NotImplementedError

    def clips(self) -> list[ClipSpec]:
        raise NotImplementedError

    def render_chunk(self) -> Callable[[list[tuple]], Sequence[np.ndarray]]:
        """A picklable function rendering a list of ``ClipSpec.request`` to audio arrays."""
        raise NotImplementedError

    def render(self) -> RenderResult:
        """Render whatever is missing from the folder (nothing when it is complete)."""
        self.last_render = render_clip_folder(
            self.name,
            self.root,
            self.config,
            self.clips(),
            self.render_chunk(),
            self.sample_rate,
            silence_db=self.silence_db,
            num_workers=self.render_workers,
            progress=self.progress,
        )
        return self.last_render

    def _source(self) -> tuple[Path, ClipTable]:
        result = self.render()
        table = load_clip_table(result.cache_dir, self.label_columns, self.group_column)
        return result.cache_dir, table

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "generation": self.config}
