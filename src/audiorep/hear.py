"""The HEAR benchmark API (hearbenchmark.com) over any trained audiorep model.

    from audiorep import hear
    model = hear.load_model("outputs/train/sound_eval_doc2vec/<run>")   # run dir or .ckpt
    scene = hear.get_scene_embeddings(audio, model)            # (n_sounds, scene size)
    frames, ms = hear.get_timestamp_embeddings(audio, model)   # (n, T, size), (n, T)

``audio`` is a float32 tensor (n_sounds, n_samples) in [-1, 1] at ``model.sample_rate``.
Scene embeddings are the model's ``embed()``; timestamp embeddings are its
``embed_frames()``, with timestamps in milliseconds at the centre of each frame.

HEAR asks for timestamps no more than 50 ms apart. A model whose frames are further apart
(doc2vec frames every 100 ms) is run on copies of the audio delayed by fractions of its
hop, and the frames are interleaved: each one is then the model's own output for a frame
starting at that time, with no interpolation.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor, nn

from audiorep.tasks.checkpointing import find_checkpoint

#: HEAR's largest allowed spacing of timestamp embeddings.
MAX_HOP_MS = 50.0


class HearModel(nn.Module):
    """A trained model with the attributes HEAR reads."""

    def __init__(self, model: nn.Module, sample_rate: int):
        super().__init__()
        self.model = model.eval()
        self.sample_rate = int(sample_rate)
        probe = torch.zeros(1, self.sample_rate)
        self.scene_embedding_size = int(model.embed(probe).shape[-1])
        if hasattr(model, "embed_frames"):
            frames, times = model.embed_frames(probe)
            self.timestamp_embedding_size = int(frames.shape[-1])
            self.hop_seconds = float(times[1] - times[0]) if len(times) > 1 else 0.0
        else:
            self.timestamp_embedding_size = 0
            self.hop_seconds = 0.0


def load_model(model_file_path: str = "") -> HearModel:
    """A trained run directory (its best checkpoint) or a checkpoint file, for HEAR."""
    from audiorep.tasks.evaluate import load_run

    if not model_file_path:
        raise ValueError("hear.load_model needs a run directory or a checkpoint path")
    path = Path(model_file_path)
    ckpt = path if path.is_file() else find_checkpoint(path, "best")
    _, data, model, _ = load_run(ckpt)
    return HearModel(model, data.sample_rate)


def _check_audio(audio: Tensor) -> Tensor:
    if audio.dim() != 2:
        raise ValueError(f"HEAR audio is (n_sounds, n_samples); got shape {tuple(audio.shape)}")
    return audio.float()


def get_scene_embeddings(audio: Tensor, model: HearModel) -> Tensor:
    """(n_sounds, n_samples) -> (n_sounds, scene_embedding_size) float32."""
    audio = _check_audio(audio)
    return model.model.embed(audio).detach().float()


def get_timestamp_embeddings(audio: Tensor, model: HearModel) -> tuple[Tensor, Tensor]:
    """(n_sounds, n_samples) -> embeddings (n_sounds, T, size), timestamps (n_sounds, T) in ms."""
    if not model.timestamp_embedding_size:
        raise ValueError(f"{type(model.model).__name__} has no embed_frames(): no timestamps")
    audio = _check_audio(audio)
    hop_ms = model.hop_seconds * 1000.0
    copies = max(1, math.ceil(hop_ms / MAX_HOP_MS - 1e-9))
    hop_samples = round(model.hop_seconds * model.sample_rate)
    outputs, stamps = [], []
    for k in range(copies):
        # Delaying the audio by `shift` samples (zeros in front) moves every frame's start
        # `shift` samples earlier in the original signal's time.
        shift = round(k * hop_samples / copies)
        delayed = torch.nn.functional.pad(audio, (shift, 0)) if shift else audio
        frames, times = model.model.embed_frames(delayed)
        outputs.append(frames.detach().float())
        stamps.append(times.float() * 1000.0 - shift * 1000.0 / model.sample_rate)
    count = min(o.shape[1] for o in outputs)
    embeddings = torch.stack([o[:, :count] for o in outputs], dim=2).flatten(1, 2)
    times = torch.stack([t[:count] for t in stamps], dim=1).flatten()
    order = torch.argsort(times)
    keep = order[times[order] >= 0] if copies > 1 else order
    timestamps = times[keep].expand(len(audio), -1).contiguous()
    return embeddings[:, keep], timestamps
