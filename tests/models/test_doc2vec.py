"""doc2vec: shapes, training lowers the pair loss, and inference finds a seen clip's vector."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from audiorep.data.samplers import ContextPairSampler
from audiorep.features import LogMel
from audiorep.models.doc2vec import Doc2Vec

SR = 8000
N_FFT, HOP = 512, 400


def _clips(num_clips: int = 12, seconds: float = 3.0, seed: int = 0) -> np.ndarray:
    """Clips with a clip-specific pair of tones whose loudness drifts slowly: frames of
    one clip share a spectrum, and nearby frames share a loudness."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    clips = []
    for _ in range(num_clips):
        f1, f2 = rng.uniform(150, 3000, size=2)
        envelope = 0.5 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6))
        tone = np.sin(2 * np.pi * f1 * t) + 0.5 * np.sin(2 * np.pi * f2 * t)
        clips.append(0.3 * envelope * tone + 0.01 * rng.standard_normal(len(t)))
    return np.stack(clips).astype(np.float32)


class PackedClips:
    """The two things the sampler needs from a clip data module."""

    def __init__(self, clips: np.ndarray):
        self.audio = clips.reshape(-1)
        self.offsets = np.arange(len(clips) + 1, dtype=np.int64) * clips.shape[1]

    @property
    def packed_audio(self):
        return self.audio, self.offsets

    def split_indices(self, split: str) -> np.ndarray:
        return np.arange(len(self.offsets) - 1)


def _model(num_clips: int, **kwargs) -> Doc2Vec:
    feature = LogMel(SR, n_fft=N_FFT, hop_length=HOP, center=False, power=1.0, n_mels=32)
    params = dict(hidden_dim=64, embedding_dim=16, window=2, infer_steps=150, infer_pairs=64)
    params.update(kwargs)
    return Doc2Vec(input_shape=[32, 1], feature=feature, num_clips=num_clips, **params)


def _loader(clips: np.ndarray, pairs: int, seed: int = 0) -> DataLoader:
    sampler = ContextPairSampler(N_FFT, HOP, window=2, pairs_per_epoch=pairs)
    dataset = sampler.dataset(PackedClips(clips), "train", seed)
    return DataLoader(dataset, batch_size=128, shuffle=True, collate_fn=lambda b: b)


@pytest.fixture(scope="module")
def trained(fit_recording_losses) -> tuple[Doc2Vec, np.ndarray, list[float]]:
    L.seed_everything(0)
    clips = _clips()
    model = _model(len(clips))
    losses = fit_recording_losses(model, _loader(clips, pairs=128 * 40), max_epochs=6)
    return model, clips, losses


def test_a_centred_feature_is_refused():
    feature = LogMel(SR, n_fft=N_FFT, hop_length=HOP, center=True)
    with pytest.raises(ValueError, match="center=false"):
        Doc2Vec(input_shape=[64, 1], feature=feature, num_clips=3)


def test_shapes_and_frame_times():
    model = _model(4).eval()
    audio = torch.from_numpy(_clips(2, seconds=1.0))
    frames, times = model.embed_frames(audio)
    expected = 1 + (SR - N_FFT) // HOP
    assert frames.shape == (2, expected, 16)
    assert times[0].item() == pytest.approx(N_FFT / 2 / SR)
    assert (times[1] - times[0]).item() == pytest.approx(HOP / SR)
    assert model.embed(audio).shape == (2, 16)


def test_training_lowers_the_pair_loss(trained):
    _, _, losses = trained
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < 0.8 * first and last < 0.6, (first, last)


def test_negative_pool_is_filled_during_training(trained):
    model, _, _ = trained
    assert int(model.negative_pool_filled) > 1000


def test_inferred_vector_is_nearest_its_own_trained_vector(trained):
    """doc2vec inference on a clip seen in training lands near that clip's trained vector."""
    model, clips, _ = trained
    inferred = model.infer_clip_vectors(torch.from_numpy(clips), seed=1)
    table = model.clip_vectors.weight.detach()
    cosine = (
        torch.nn.functional.normalize(inferred, dim=1)
        @ torch.nn.functional.normalize(table, dim=1).T
    )
    # Rank of the clip's own vector among all trained vectors (0 = nearest).
    rank = (cosine > cosine.diagonal()[:, None]).sum(dim=1)
    assert (rank <= 1).float().mean() >= 0.75, rank.tolist()


def test_tower_mean_embedding_separates_clips(trained):
    model, clips, _ = trained
    model.embedding = "tower_mean"
    try:
        halves = torch.from_numpy(clips).chunk(2, dim=1)
        first, second = (model.embed(h) for h in halves)
    finally:
        model.embedding = "inferred"
    cosine = (
        torch.nn.functional.normalize(first, dim=1) @ torch.nn.functional.normalize(second, dim=1).T
    )
    # The first half of a clip is nearest the second half of the same clip.
    assert (cosine.argmax(dim=1) == torch.arange(len(clips))).float().mean() >= 0.75


def test_embedding_kinds_concatenate(trained):
    model, clips, _ = trained
    audio = torch.from_numpy(clips[:3])
    model.embedding = "inferred+tower_stats"
    try:
        joined = model.embed(audio)
    finally:
        model.embedding = "inferred"
    frames = model.embed_frames(audio)[0]
    assert joined.shape == (3, 16 + 2 * 16)
    assert torch.allclose(joined[:, 16:32], frames.mean(dim=1), atol=1e-6)
    assert torch.allclose(joined[:, 32:], frames.std(dim=1, correction=0), atol=1e-6)


def test_unknown_embedding_kind_names_the_key():
    with pytest.raises(ValueError, match="model.embedding"):
        _model(3, embedding="inferred+median")
