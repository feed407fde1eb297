"""Generic pieces of on-disk dataset caches: config hashing, atomic writes, manifests.

A cache is a directory holding data files plus ``manifest.json``, which is written LAST:
a directory without a manifest is an interrupted generation. The manifest records the
generating config, and each file's size and checksum, so a truncated, corrupted or
stale cache is detected (``verify_manifest``) and regenerated instead of reused.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

MANIFEST_NAME = "manifest.json"

# Checksums hash whole files; blake2b runs at ~1 GB/s, so the 1.3 GB default toy
# dataset verifies in about a second, and a single flipped byte anywhere is caught.
_CHUNK = 1 << 22


def canonical_json(obj: Any) -> str:
    """Deterministic JSON text (sorted keys, no spaces) of a JSON-able object."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def config_hash(config: Mapping[str, Any], length: int = 16) -> str:
    """Short hex digest naming a cache directory after the config that generates it."""
    digest = hashlib.blake2b(canonical_json(config).encode(), digest_size=16).hexdigest()
    return digest[:length]


def file_checksum(path: str | os.PathLike) -> str:
    """``"blake2b:<hex>"`` of the whole file, read in 4 MiB chunks."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return "blake2b:" + h.hexdigest()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    On an exception the temporary file is removed and ``path`` is left untouched, so
    readers never see a half-written file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A fresh name rather than mkstemp's file, so the writer creates it with the usual
    # umask permissions instead of mkstemp's 0600.
    tmp_path = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write text to ``path`` atomically (temp file, fsync, ``os.replace``)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write a JSON-able object to ``path`` atomically, indented for people to read."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def write_manifest(
    cache_dir: str | os.PathLike,
    config: Mapping[str, Any],
    files: list[str],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Checksum ``files`` (names inside ``cache_dir``) and write the manifest; returns it.

    Call it after every data file is in place: the manifest marks the cache complete.
    """
    cache_dir = Path(cache_dir)
    manifest: dict[str, Any] = {
        "config": dict(config),
        "files": {
            name: {
                "size": (cache_dir / name).stat().st_size,
                "checksum": file_checksum(cache_dir / name),
            }
            for name in files
        },
    }
    manifest.update(extra or {})
    atomic_write_json(cache_dir / MANIFEST_NAME, manifest)
    return manifest


def read_manifest(cache_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed manifest, or None when it is missing or unreadable."""
    try:
        with open(Path(cache_dir) / MANIFEST_NAME, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def verify_manifest(
    cache_dir: str | os.PathLike, config: Mapping[str, Any], *, checksums: bool = True
) -> str | None:
    """Why the cache in ``cache_dir`` cannot be used for ``config``, or None when it can.

    Checks the manifest exists and parses, its config equals ``config``, and each file
    exists with the recorded size and (with ``checksums``) the recorded checksum.
    """
    cache_dir = Path(cache_dir)
    manifest = read_manifest(cache_dir)
    if manifest is None:
        return f"no readable {MANIFEST_NAME} in {cache_dir} (missing or interrupted generation)"
    # Compare through canonical JSON so tuples/lists and int/float spellings agree.
    if canonical_json(manifest.get("config")) != canonical_json(json.loads(canonical_json(config))):
        return f"{MANIFEST_NAME} in {cache_dir} was written for a different config"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return f"{MANIFEST_NAME} in {cache_dir} lists no files"
    for name, entry in files.items():
        path = cache_dir / name
        if not path.is_file():
            return f"{path} is missing"
        size = path.stat().st_size
        if size != entry.get("size"):
            return f"{path} has {size} bytes, the manifest says {entry.get('size')} (truncated?)"
        if checksums and file_checksum(path) != entry.get("checksum"):
            return f"{path} does not match its checksum (corrupted)"
    return None
