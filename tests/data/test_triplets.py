"""Tile triplets: the neighbour is near the anchor in its clip, the distant tile is from
another clip in the anchor clip's buffer, short clips are served, draws are seeded."""

from __future__ import annotations

import numpy as np
import pytest

from audiorep.data.samplers import TripletDataset, TripletSampler

SR = 100


class Clips:
    """Packed clips whose samples encode (clip, position): clip c's sample t is c * 1e4 + t."""

    def __init__(self, lengths: list[int]):
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        self.audio = np.concatenate(
            [c * 10_000 + np.arange(n, dtype=np.float64) for c, n in enumerate(lengths)]
        ).astype(np.float32)

    @property
    def packed_audio(self):
        return self.audio, self.offsets

    def split_indices(self, split: str) -> np.ndarray:
        # Every other clip is "train", so positions and clip indices differ.
        return np.arange(len(self.offsets) - 1)[0 if split == "train" else 1 :: 2]


def _dataset(lengths, tile=50, radius=30, buffer_size=2, anchors_per_clip=1, seed=0):
    sampler = TripletSampler(
        SR, tile / SR, radius / SR, buffer_size, anchors_per_clip, triplets_per_epoch=4096
    )
    return sampler.dataset(Clips(lengths), "train", seed)


def test_neighbour_within_radius_of_the_anchor_in_the_same_clip_distant_elsewhere():
    lengths = [400, 123, 260, 90, 1000, 77, 500, 64, 300, 51]
    dataset = _dataset(lengths)
    batch = dataset.__getitems__(list(range(512)))
    assert batch["anchor"].shape == batch["neighbour"].shape == batch["distant"].shape == (512, 50)
    clip = batch["clip_index"].numpy()
    distant_clip = batch["distant_clip_index"].numpy()
    assert set(clip.tolist()) <= set(range(0, 10, 2)) and (clip != distant_clip).all()
    anchor_start = batch["anchor_start"].numpy()
    neighbour_start = batch["neighbour_start"].numpy()
    assert (np.abs(neighbour_start - anchor_start) <= 30).all()
    assert (neighbour_start != anchor_start).any()  # not always the same tile
    # The audio itself says where it came from: clip * 1e4 + position.
    for key, clips, starts in [
        ("anchor", clip, anchor_start),
        ("neighbour", clip, neighbour_start),
        ("distant", distant_clip, batch["distant_start"].numpy()),
    ]:
        first = batch[key][:, 0].numpy()
        assert np.array_equal(first, clips * 10_000 + starts), key
        assert (starts + 50 <= np.asarray(lengths)[clips]).all(), key


def test_distant_clips_come_from_the_anchor_clips_buffer():
    dataset = _dataset([300] * 20, buffer_size=3, anchors_per_clip=16)
    batch = dataset.__getitems__(list(range(64)))
    clip = batch["clip_index"].numpy().reshape(4, 16)
    distant = batch["distant_clip_index"].numpy().reshape(4, 16)
    assert (clip == clip[:, :1]).all()
    for row, anchor_clip in zip(distant, clip[:, 0]):
        assert 1 <= len(set(row.tolist())) <= 3 and anchor_clip not in row


def test_short_clips_are_zero_padded_and_their_neighbour_overlaps():
    dataset = _dataset([30, 400, 70, 20], tile=50, radius=10)
    batch = dataset.__getitems__(list(range(256)))
    short = batch["clip_index"].numpy() == 0  # 30 samples: one padded tile
    assert short.any()
    assert (batch["anchor_start"].numpy()[short] == 0).all()
    assert (batch["neighbour_start"].numpy()[short] == 0).all()
    assert (batch["anchor"][short][:, 30:] == 0).all()
    assert (batch["anchor"][short][:, :30] >= 0).all()


def test_same_seed_same_triplets_other_seed_other_triplets():
    lengths = [400, 123, 260, 90, 1000, 77]
    positions = [5, 17, 3, 99, 42, 7, 8, 1]
    first = _dataset(lengths, seed=3).__getitems__(positions)
    again = _dataset(lengths, seed=3).__getitems__(positions)
    other = _dataset(lengths, seed=4).__getitems__(positions)
    for key in first:
        assert np.array_equal(first[key].numpy(), again[key].numpy()), key
    assert not np.array_equal(first["anchor_start"].numpy(), other["anchor_start"].numpy())


def test_validation_draws_differ_from_training_and_need_two_clips():
    sampler = TripletSampler(SR, 0.5, 0.3, triplets_per_epoch=100, val_triplets=10)
    assert len(sampler.dataset(Clips([100] * 6), "val", 0)) == 10
    with pytest.raises(ValueError, match="needs >= 2 clips"):
        TripletDataset(np.zeros(10, np.float32), np.array([0, 10]), np.array([0]), 5, 2, 2, 10)
