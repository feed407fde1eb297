"""The HEAR adapter: shapes, dtypes, timestamp rules, frames true to the model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audiorep import hear
from audiorep.features import LogMel
from audiorep.models.doc2vec import Doc2Vec

SR = 16000


@pytest.fixture(scope="module")
def model() -> hear.HearModel:
    torch.manual_seed(0)
    # sound-eval's frames: 2048 samples every 0.1 s, wider apart than HEAR's 50 ms.
    feature = LogMel(SR, n_fft=2048, hop_length=1600, center=False, power=1.0, n_mels=32)
    doc2vec = Doc2Vec([32, 1], feature, num_clips=2, embedding="tower_mean", embedding_dim=8)
    return hear.HearModel(doc2vec, SR)


def test_attributes(model):
    assert model.sample_rate == SR
    assert model.scene_embedding_size == 8 and model.timestamp_embedding_size == 8


def test_scene_embeddings_shape_and_dtype(model):
    audio = torch.rand(3, SR * 2) * 2 - 1
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.shape == (3, 8) and scene.dtype == torch.float32


def test_timestamps_are_centred_sorted_and_at_most_50_ms_apart(model):
    audio = torch.rand(2, SR * 2) * 2 - 1
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    assert embeddings.dtype == torch.float32 and timestamps.dtype == torch.float32
    assert embeddings.shape[:2] == timestamps.shape and embeddings.shape[2] == 8
    assert torch.equal(timestamps[0], timestamps[1])
    steps = torch.diff(timestamps[0])
    assert torch.all(steps > 0) and torch.all(steps <= hear.MAX_HOP_MS + 1e-3)
    assert timestamps[0, 0] >= 0 and timestamps[0, -1] <= 2000.0
    # The first frame's centre, with no delay: half a 2048-sample frame = 64 ms.
    assert np.isclose(timestamps[0], 64.0).any()


def test_interleaved_frames_are_the_models_own_frames(model):
    """The frame at time t is the model's embedding of the 2048 samples centred on t."""
    audio = torch.rand(1, SR * 2) * 2 - 1
    embeddings, timestamps = hear.get_timestamp_embeddings(audio, model)
    for index in (0, 3, 10):
        centre = int(round(float(timestamps[0, index]) * SR / 1000))
        start = centre - 1024
        window = torch.zeros(1, 2048)
        lo = max(start, 0)
        window[0, lo - start :] = audio[0, lo : start + 2048]
        frame, _ = model.model.embed_frames(window)
        assert torch.allclose(frame[0, 0], embeddings[0, index], atol=1e-5)


def test_bad_shape_is_refused(model):
    with pytest.raises(ValueError, match="n_sounds, n_samples"):
        hear.get_scene_embeddings(torch.zeros(SR), model)
