"""What the viewer's tests and benchmark share: a synthetic clip set and the system chromium.

The clip set stands in for an evaluated run: clustered embeddings (one cluster per
label, so neighbours and colours mean something), metadata columns like a real data
set's, and short WAV tones whose pitch follows the label.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from audiorep.audio.io import write_wav

LABELS = (
    "bass",
    "brass",
    "flute",
    "guitar",
    "keyboard",
    "mallet",
    "organ",
    "reed",
    "string",
    "vocal",
)
SAMPLE_RATE = 8000


def make_clips(
    n_clips: int,
    dim: int,
    audio_dir: str | os.PathLike,
    *,
    n_labels: int = 6,
    n_audio: int | None = None,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """The arrays of an ``eval/embeddings.npz`` for ``n_clips`` synthetic clips.

    The first ``n_audio`` clips (all by default) get a 0.25 s WAV tone in ``audio_dir``.
    """
    if not 1 <= n_labels <= len(LABELS):
        raise ValueError(f"n_labels must be in 1..{len(LABELS)}, got {n_labels}")
    rng = np.random.default_rng(seed)
    label = rng.integers(0, n_labels, n_clips)
    centres = rng.normal(size=(n_labels, dim))
    embeddings = (centres[label] + 1.0 * rng.normal(size=(n_clips, dim))).astype(np.float32)
    names = np.array([f"{LABELS[k]}/{LABELS[k]}_{i:05d}.wav" for i, k in enumerate(label)])
    audio_dir = Path(audio_dir)
    audio_path = np.array([str(audio_dir / name) for name in names])
    n_audio = n_clips if n_audio is None else min(n_audio, n_clips)
    t = np.arange(int(0.25 * SAMPLE_RATE)) / SAMPLE_RATE
    for i in range(n_audio):
        f0 = 110.0 * 2 ** (label[i] / 2 + rng.uniform(0, 0.4))
        write_wav(audio_path[i], 0.3 * np.sin(2 * np.pi * f0 * t) * np.exp(-6 * t), SAMPLE_RATE)
    return {
        "embeddings": embeddings,
        "clip_id": names,
        "audio_path": audio_path,
        "meta:label": np.array([LABELS[k] for k in label]),
        "meta:split": rng.choice(["train", "valid", "test"], n_clips, p=[0.8, 0.1, 0.1]),
        "meta:fold": rng.integers(0, 5, n_clips).astype(str),
        "meta:speaker": np.array([f"spk{k:03d}" for k in rng.integers(0, 40, n_clips)]),
    }


def chromium_executable() -> str | None:
    """The system chromium (``$AUDIOREP_CHROMIUM``, else ``chromium`` on PATH), or None."""
    candidate = os.environ.get("AUDIOREP_CHROMIUM") or shutil.which("chromium")
    if candidate is None and os.path.exists("/usr/bin/chromium"):
        candidate = "/usr/bin/chromium"
    return candidate


# --no-sandbox: CI and containers run as root, where chromium's sandbox refuses to start.
CHROMIUM_ARGS = ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"]
