"""The context-pair sampler's guarantees: local partners within ±W in the same clip,
random partners from anywhere, the requested ratio, and seeded draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiorep.data.samplers import ContextPairDataset, frame_counts, gather_frames

FRAME, HOP = 8, 4


def _packed(lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Clips whose samples encode (clip, position): clip c sample t = c * 1000 + t."""
    clips = [c * 1000.0 + np.arange(n, dtype=np.float64) for c, n in enumerate(lengths)]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return np.concatenate(clips).astype(np.float32), offsets


def _dataset(lengths, clip_indices=None, **kwargs) -> ContextPairDataset:
    audio, offsets = _packed(lengths)
    clip_indices = np.arange(len(lengths)) if clip_indices is None else clip_indices
    params = dict(window=2, negatives_per_positive=1, pairs_per_epoch=2000, seed=0)
    params.update(kwargs)
    return ContextPairDataset(audio, offsets, np.asarray(clip_indices), FRAME, HOP, **params)


def test_frame_counts_and_zero_padding_past_the_clip_end():
    assert frame_counts(np.array([8, 11, 12, 3]), FRAME, HOP).tolist() == [1, 1, 2, 1]
    audio, offsets = _packed([10, 20])
    frames = gather_frames(audio, offsets[:1], np.array([10]), np.array([1]), FRAME, HOP)
    # Frame 1 of clip 0 covers samples 4..11: 4..9 exist, 10 and 11 must be zero, not clip 1.
    assert frames[0].tolist() == [4, 5, 6, 7, 8, 9, 0, 0]


def test_local_partners_are_within_the_window_of_the_same_clip():
    data = _dataset([60, 100, 44], window=2)
    batch = data.__getitems__(list(range(1000)))
    anchor, context = batch["anchor"].numpy(), batch["context"].numpy()
    anchor_clip, anchor_pos = anchor[:, 0] // 1000, anchor[:, 0] % 1000
    context_clip, context_pos = context[:, 0] // 1000, context[:, 0] % 1000
    local = batch["target"].numpy() == 1.0
    assert np.array_equal(anchor_clip, batch["clip_index"].numpy())
    assert np.array_equal(context_clip[local], anchor_clip[local])
    offset_frames = (context_pos[local] - anchor_pos[local]) / HOP
    assert np.all(np.abs(offset_frames) <= 2) and np.all(offset_frames != 0)
    # Random partners land in other clips too.
    assert np.mean(context_clip[~local] != anchor_clip[~local]) > 0.4


@pytest.mark.parametrize("negatives", [1, 3])
def test_negative_ratio(negatives):
    data = _dataset([200] * 5, negatives_per_positive=negatives)
    target = data.__getitems__(list(range(2000)))["target"].numpy()
    assert target.mean() == pytest.approx(1 / (1 + negatives), abs=0.04)


def test_only_the_split_clips_are_drawn_and_draws_are_seeded():
    data = _dataset([50, 50, 50, 50], clip_indices=[1, 3])
    batch = data.__getitems__(list(range(500)))
    assert set(np.unique(batch["clip_index"].numpy())) == {1, 3}
    assert set(np.unique(batch["context"].numpy()[:, 0] // 1000)) <= {1, 3}
    again = _dataset([50, 50, 50, 50], clip_indices=[1, 3]).__getitems__(list(range(500)))
    assert all(torch.equal(batch[k], again[k]) for k in batch)
    other = _dataset([50, 50, 50, 50], clip_indices=[1, 3], seed=1).__getitems__(list(range(500)))
    assert not torch.equal(batch["anchor"], other["anchor"])


def test_a_clip_shorter_than_a_frame_is_still_sampled():
    data = _dataset([5, 40])
    batch = data.__getitems__(list(range(200)))
    short = batch["clip_index"].numpy() == 0
    assert short.any()
    assert np.all(batch["anchor"].numpy()[short][:, 5:] == 0)


def test_bad_window_names_the_config_key():
    with pytest.raises(ValueError, match="data.sampler.window"):
        _dataset([40], window=0)
