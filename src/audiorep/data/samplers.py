"""Training samplers over a collection of clips: context pairs (sound-eval's doc2vec) and
tile triplets (Deep embedded Music's Tile2Vec).

A sampler is configured under ``data.sampler`` and turns a clip data module's training
(or validation) clips into a Dataset of *examples drawn on the fly*: nothing is written
to disk, and the draws are seeded. The clip data module calls
``sampler.dataset(datamodule, split, seed)`` and serves its batches.

Clips are read from the data module's packed audio: one 1-D float32 array holding every
clip, and ``offsets`` (num_clips + 1) marking where each starts, so a whole batch of
frames is one fancy-index read.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np
import torch
from torch.utils.data import Dataset

log = logging.getLogger(__name__)


class PackedClips(Protocol):
    """What a sampler needs from a clip data module."""

    @property
    def packed_audio(self) -> tuple[np.ndarray, np.ndarray]: ...

    def split_indices(self, split: str) -> np.ndarray: ...


def frame_counts(lengths: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Frames per clip for un-centred framing; a clip shorter than one frame counts one
    (zero-padded), so every clip can be sampled."""
    lengths = np.asarray(lengths, dtype=np.int64)
    return np.maximum(1, 1 + (lengths - frame_length) // hop_length)


def gather_frames(
    audio: np.ndarray,
    clip_start: np.ndarray,
    clip_length: np.ndarray,
    frame: np.ndarray,
    frame_length: int,
    hop_length: int,
) -> np.ndarray:
    """(B, frame_length) float32: frame ``frame[b]`` of the clip at ``clip_start[b]``.

    Frame k covers samples [k * hop, k * hop + frame_length) of its clip, as an un-centred
    STFT frames them; samples past the clip's end are zero, never the next clip's.
    """
    position = frame[:, None] * hop_length + np.arange(frame_length)[None, :]
    inside = position < clip_length[:, None]
    index = clip_start[:, None] + np.minimum(position, clip_length[:, None] - 1)
    return np.where(inside, audio[index], 0.0).astype(np.float32)


class ContextPairDataset(Dataset):
    """Pairs of frames: a local pair (same clip, within ±``window`` frames) or a random one.

    Each item is a frame pair with ``target`` 1.0 for a local pair and 0.0 for a random
    pair, where the partner frame is drawn uniformly from all frames of the split, as the
    seed did (so it can, rarely, land near the anchor). Per anchor there are
    ``negatives_per_positive`` random pairs for each local one. Anchors are drawn by
    picking a clip uniformly, then a frame in it, like the seed (long clips are not
    favoured).

    Batches come whole from ``__getitems__``: dict(anchor (B, frame_length),
    context (B, frame_length), clip_index (B,) int64, target (B,) float32).
    The draws of a batch are seeded by ``seed`` and the batch's positions, which the
    DataLoader shuffles with the run's seed: the same run draws the same pairs.
    """

    def __init__(
        self,
        audio: np.ndarray,
        offsets: np.ndarray,
        clip_indices: np.ndarray,
        frame_length: int,
        hop_length: int,
        window: int,
        negatives_per_positive: int,
        pairs_per_epoch: int,
        seed: int = 0,
        include_same_frame: bool = False,
    ) -> None:
        if window < 1:
            raise ValueError(f"data.sampler.window={window}: the context window needs >= 1 frame")
        if negatives_per_positive < 0:
            raise ValueError(
                f"data.sampler.negatives_per_positive={negatives_per_positive} must be >= 0"
            )
        if len(clip_indices) == 0:
            raise ValueError("the context-pair sampler got no clips for this split")
        self.audio = audio
        self.clip_indices = np.asarray(clip_indices, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        self.clip_start = offsets[self.clip_indices]
        self.clip_length = offsets[self.clip_indices + 1] - self.clip_start
        self.frame_length = int(frame_length)
        self.hop_length = int(hop_length)
        self.window = int(window)
        self.negatives_per_positive = int(negatives_per_positive)
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.seed = int(seed)
        self.include_same_frame = bool(include_same_frame)
        self.num_frames = frame_counts(self.clip_length, self.frame_length, self.hop_length)
        # Global frame numbering for uniform draws over all frames of the split.
        self.frame_offsets = np.concatenate([[0], np.cumsum(self.num_frames)])

    def __len__(self) -> int:
        return self.pairs_per_epoch

    def draw(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Clip positions (into this split), anchor and context frames, targets."""
        clip = rng.integers(len(self.clip_indices), size=n)
        frames = self.num_frames[clip]
        anchor = (rng.random(n) * frames).astype(np.int64)
        positive = rng.random(n) < 1.0 / (1 + self.negatives_per_positive)

        # Local partner: an offset in [-W, W] (0 excluded unless include_same_frame), kept
        # inside the clip by drawing among the offsets that are.
        low = np.maximum(anchor - self.window, 0)
        high = np.minimum(anchor + self.window, frames - 1)
        span = high - low + 1
        if self.include_same_frame:
            local = low + (rng.random(n) * span).astype(np.int64)
        else:
            # Draw among span - 1 frames and skip over the anchor; a one-frame clip can
            # only pair a frame with itself.
            choices = np.maximum(span - 1, 1)
            local = low + (rng.random(n) * choices).astype(np.int64)
            local = np.where((local >= anchor) & (span > 1), local + 1, local)

        # Random partner: uniform over every frame of the split.
        flat = rng.integers(self.frame_offsets[-1], size=n)
        other_clip = np.searchsorted(self.frame_offsets, flat, side="right") - 1
        other_frame = flat - self.frame_offsets[other_clip]

        context_clip = np.where(positive, clip, other_clip)
        context_frame = np.where(positive, local, other_frame)
        return {
            "clip": clip,
            "anchor": anchor,
            "context_clip": context_clip,
            "context": context_frame,
            "target": positive.astype(np.float32),
        }

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        positions = np.asarray(positions, dtype=np.int64)
        rng = np.random.default_rng(
            [self.seed, int(positions[0]), int(positions[-1]), len(positions)]
        )
        draw = self.draw(len(positions), rng)
        anchor = gather_frames(
            self.audio,
            self.clip_start[draw["clip"]],
            self.clip_length[draw["clip"]],
            draw["anchor"],
            self.frame_length,
            self.hop_length,
        )
        context = gather_frames(
            self.audio,
            self.clip_start[draw["context_clip"]],
            self.clip_length[draw["context_clip"]],
            draw["context"],
            self.frame_length,
            self.hop_length,
        )
        return {
            "anchor": torch.from_numpy(anchor),
            "context": torch.from_numpy(context),
            "clip_index": torch.from_numpy(self.clip_indices[draw["clip"]]),
            "target": torch.from_numpy(draw["target"]),
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class ContextPairSampler:
    """``data.sampler`` for doc2vec: frame pairs from a clip data module's splits.

    ``frame_length`` and ``hop_length`` must match the model's frame feature (an
    un-centred STFT), so each drawn frame is exactly one feature frame; the experiment
    config interpolates them from ``feature``.
    """

    def __init__(
        self,
        frame_length: int,
        hop_length: int,
        window: int = 3,
        negatives_per_positive: int = 1,
        pairs_per_epoch: int = 100_000,
        val_pairs: int = 10_000,
        include_same_frame: bool = False,
    ) -> None:
        self.frame_length = int(frame_length)
        self.hop_length = int(hop_length)
        self.window = int(window)
        self.negatives_per_positive = int(negatives_per_positive)
        self.pairs_per_epoch = int(pairs_per_epoch)
        self.val_pairs = int(val_pairs)
        self.include_same_frame = bool(include_same_frame)

    def dataset(self, datamodule: PackedClips, split: str, seed: int) -> ContextPairDataset:
        audio, offsets = datamodule.packed_audio
        return ContextPairDataset(
            audio,
            offsets,
            datamodule.split_indices(split),
            self.frame_length,
            self.hop_length,
            self.window,
            self.negatives_per_positive,
            self.pairs_per_epoch if split == "train" else self.val_pairs,
            # Validation draws differ from training draws but are the same every epoch.
            seed=seed if split == "train" else seed + 1,
            include_same_frame=self.include_same_frame,
        )

    def describe(self) -> dict[str, Any]:
        return dict(vars(self))


class TripletDataset(Dataset):
    """Tile triplets (Tile2Vec): anchor, neighbour from the same clip, distant from another.

    - **anchor**: a clip drawn uniformly, then a tile start uniform over the clip;
    - **neighbour**: a tile of the same clip whose start is within ±``radius`` samples of
      the anchor's (so it may overlap the anchor, as in the seed, where 5 s tiles lie
      within ±5 s);
    - **distant**: a tile, uniform over its clip, of one of ``buffer_size`` *other* clips
      drawn for the anchor's clip, as the seed's opposite-sample buffer. The triplets of
      one batch come in groups of ``anchors_per_clip`` with the same anchor clip, and the
      group shares its buffer, as the seed's triplets of one file do.

    Short clips are kept, never skipped: in a clip shorter than two tiles the neighbour
    overlaps the anchor more, and a clip shorter than one tile is one zero-padded tile
    whose neighbour is the anchor itself. Skipping them would drop whole bundled datasets
    (spoken digits are under 1.5 s); their number is logged once.

    Batches come whole from ``__getitems__``: dict(anchor, neighbour, distant
    (B, tile_length) float32; clip_index and distant_clip_index (B,) int64 into the data
    module's clips; anchor_start, neighbour_start, distant_start (B,) int64 samples).
    The draws of a batch are seeded by ``seed`` and the batch's positions, which the
    DataLoader shuffles with the run's seed: the same run draws the same triplets.
    """

    def __init__(
        self,
        audio: np.ndarray,
        offsets: np.ndarray,
        clip_indices: np.ndarray,
        tile_length: int,
        radius: int,
        buffer_size: int,
        triplets_per_epoch: int,
        anchors_per_clip: int = 1,
        seed: int = 0,
    ) -> None:
        if tile_length < 1:
            raise ValueError(f"data.sampler.tile_seconds gives {tile_length} samples: need >= 1")
        if radius < 0:
            raise ValueError(f"data.sampler.radius_seconds gives {radius} samples: need >= 0")
        if buffer_size < 1 or anchors_per_clip < 1:
            raise ValueError(
                f"data.sampler.buffer_size={buffer_size} and anchors_per_clip="
                f"{anchors_per_clip} must both be >= 1"
            )
        if len(clip_indices) < 2:
            raise ValueError(
                f"the triplet sampler needs >= 2 clips in a split (got {len(clip_indices)}): "
                "the distant tile comes from another clip; use more data or other data.splits"
            )
        self.audio = audio
        self.clip_indices = np.asarray(clip_indices, dtype=np.int64)
        offsets = np.asarray(offsets, dtype=np.int64)
        self.clip_start = offsets[self.clip_indices]
        self.clip_length = offsets[self.clip_indices + 1] - self.clip_start
        self.tile_length = int(tile_length)
        self.radius = int(radius)
        self.buffer_size = min(int(buffer_size), len(self.clip_indices) - 1)
        self.anchors_per_clip = int(anchors_per_clip)
        self.triplets_per_epoch = int(triplets_per_epoch)
        self.seed = int(seed)
        # Last possible tile start per clip (0 for a clip shorter than a tile: zero-padded).
        self.last_start = np.maximum(self.clip_length - self.tile_length, 0)
        short = int((self.clip_length < 2 * self.tile_length).sum())
        if short:
            log.info(
                "triplet sampler: %d of %d clips are shorter than two tiles (%d shorter than "
                "one); their neighbour tiles overlap the anchor",
                short,
                len(self.clip_length),
                int((self.clip_length < self.tile_length).sum()),
            )

    def __len__(self) -> int:
        return self.triplets_per_epoch

    def draw(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Positions (into this split) of the anchor and distant clips, and tile starts."""
        num_clips = len(self.clip_indices)
        groups = -(-n // self.anchors_per_clip)
        group_clip = rng.integers(num_clips, size=groups)
        # Each group's buffer: buffer_size distinct other clips (positions drawn among the
        # num_clips - 1 others, then shifted past the anchor's own clip).
        buffers = np.stack(
            [rng.choice(num_clips - 1, size=self.buffer_size, replace=False) for _ in group_clip]
        )
        buffers = buffers + (buffers >= group_clip[:, None])
        group = np.repeat(np.arange(groups), self.anchors_per_clip)[:n]
        clip = group_clip[group]
        distant_clip = buffers[group, rng.integers(self.buffer_size, size=n)]

        last = self.last_start[clip]
        anchor = (rng.random(n) * (last + 1)).astype(np.int64)
        low = np.maximum(anchor - self.radius, 0)
        high = np.minimum(anchor + self.radius, last)
        neighbour = low + (rng.random(n) * (high - low + 1)).astype(np.int64)
        distant = (rng.random(n) * (self.last_start[distant_clip] + 1)).astype(np.int64)
        return {
            "clip": clip,
            "anchor": anchor,
            "neighbour": neighbour,
            "distant_clip": distant_clip,
            "distant": distant,
        }

    def _tiles(self, clip: np.ndarray, start: np.ndarray) -> torch.Tensor:
        # A tile is a "frame" at a hop of one sample: zero past the clip's end.
        tiles = gather_frames(
            self.audio, self.clip_start[clip], self.clip_length[clip], start, self.tile_length, 1
        )
        return torch.from_numpy(tiles)

    def __getitems__(self, positions: list[int]) -> dict[str, torch.Tensor]:
        positions = np.asarray(positions, dtype=np.int64)
        rng = np.random.default_rng(
            [self.seed, int(positions[0]), int(positions[-1]), len(positions)]
        )
        draw = self.draw(len(positions), rng)
        return {
            "anchor": self._tiles(draw["clip"], draw["anchor"]),
            "neighbour": self._tiles(draw["clip"], draw["neighbour"]),
            "distant": self._tiles(draw["distant_clip"], draw["distant"]),
            "clip_index": torch.from_numpy(self.clip_indices[draw["clip"]]),
            "distant_clip_index": torch.from_numpy(self.clip_indices[draw["distant_clip"]]),
            "anchor_start": torch.from_numpy(draw["anchor"]),
            "neighbour_start": torch.from_numpy(draw["neighbour"]),
            "distant_start": torch.from_numpy(draw["distant"]),
        }

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[0] for k, v in self.__getitems__([i]).items()}


class TripletSampler:
    """``data.sampler`` for Tile2Vec: tile triplets from a clip data module's splits.

    Lengths are in seconds at ``sample_rate`` (the experiment config interpolates the
    data's rate and the model's tile length, so the sampler's tiles are the model's).
    """

    def __init__(
        self,
        sample_rate: int,
        tile_seconds: float,
        radius_seconds: float,
        buffer_size: int = 2,
        anchors_per_clip: int = 1,
        triplets_per_epoch: int = 20_000,
        val_triplets: int = 2_000,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.tile_seconds = float(tile_seconds)
        self.radius_seconds = float(radius_seconds)
        self.buffer_size = int(buffer_size)
        self.anchors_per_clip = int(anchors_per_clip)
        self.triplets_per_epoch = int(triplets_per_epoch)
        self.val_triplets = int(val_triplets)

    def dataset(self, datamodule: PackedClips, split: str, seed: int) -> TripletDataset:
        audio, offsets = datamodule.packed_audio
        return TripletDataset(
            audio,
            offsets,
            datamodule.split_indices(split),
            tile_length=round(self.tile_seconds * self.sample_rate),
            radius=round(self.radius_seconds * self.sample_rate),
            buffer_size=self.buffer_size,
            triplets_per_epoch=self.triplets_per_epoch if split == "train" else self.val_triplets,
            anchors_per_clip=self.anchors_per_clip,
            # Validation draws differ from training draws but are the same every epoch.
            seed=seed if split == "train" else seed + 1,
        )

    def describe(self) -> dict[str, Any]:
        return dict(vars(self))
