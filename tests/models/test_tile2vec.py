"""Tile2Vec: the loss on hand-computed cases, every encoder's shapes, the experiment under
fast_dev_run for each encoder, and a short training that separates synthetic classes."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from torch.utils.data import DataLoader

from audiorep.data.loading import already_batched
from audiorep.data.samplers import TripletSampler
from audiorep.features import LogMel, Waveform
from audiorep.models.encoders import ENCODERS, build_encoder
from audiorep.models.tile2vec import Tile2Vec, mine_distant, triplet_loss

SR = 8000

# Three triplets in 2-D: (anchor, neighbour, distant).
ANCHOR = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
NEIGHBOUR = torch.tensor([[1.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
DISTANT = torch.tensor([[0.0, 2.0], [1.0, 0.0], [1.0, 1.0]])


@pytest.mark.parametrize(
    "distance, reduction, expected",
    [
        # squared: d_an = 1, 9, 2; d_ad = 4, 1, 2 -> losses 0, 9, 1
        ("squared", "mean", 10 / 3),
        ("squared", "nonzero_mean", 5.0),
        # euclidean: d_an = 1, 3, sqrt 2; d_ad = 2, 1, sqrt 2 -> losses 0, 3, 1
        ("euclidean", "mean", 4 / 3),
        ("euclidean", "nonzero_mean", 2.0),
    ],
)
def test_triplet_loss_on_hand_computed_cases(distance, reduction, expected):
    loss, stats = triplet_loss(ANCHOR, NEIGHBOUR, DISTANT, 1.0, distance, reduction)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert stats["active_fraction"].item() == pytest.approx(2 / 3)
    near = [1.0, 9.0, 2.0] if distance == "squared" else [1.0, 3.0, 2**0.5]
    assert stats["anchor_neighbour"].item() == pytest.approx(np.mean(near), rel=1e-5)


def test_no_active_triplet_gives_zero_loss_with_a_gradient():
    anchor = torch.zeros(2, 2, requires_grad=True)
    far = torch.tensor([[5.0, 0.0], [0.0, 5.0]])
    loss, stats = triplet_loss(anchor, anchor.detach(), far, 1.0, "euclidean", "nonzero_mean")
    loss.backward()
    assert loss.item() == 0.0 and stats["active_fraction"].item() == 0.0
    assert torch.isfinite(anchor.grad).all()
    with pytest.raises(ValueError, match="model.reduction"):
        triplet_loss(anchor, anchor, far, reduction="sum")


# Two anchors at the origin (clips 0 and 1) with neighbours at squared distance 1 and 9,
# and four candidate tiles of clips 0..3 at squared distances 0.25, 4, 25 and 162.
MINE_ANCHOR = torch.zeros(2, 2)
MINE_NEIGHBOUR = torch.tensor([[1.0, 0.0], [3.0, 0.0]])
CANDIDATES = torch.tensor([[0.0, 0.5], [0.0, 2.0], [0.0, 5.0], [9.0, 9.0]])
CANDIDATE_CLIPS = torch.tensor([0, 1, 2, 3])


@pytest.mark.parametrize(
    "negatives, expected",
    [
        # Anchor 0 may not take its own clip's tile (0.25): the hardest other is at 4, which
        # is also the nearest beyond its neighbour (1). Anchor 1: the hardest is at 0.25;
        # the nearest beyond its neighbour (9) is at 25.
        ("hardest", [1, 0]),
        ("semihard", [1, 2]),
    ],
)
def test_mined_distant_tiles_on_a_hand_computed_case(negatives, expected):
    anchor_clips = torch.tensor([0, 1])
    mined = mine_distant(
        MINE_ANCHOR, MINE_NEIGHBOUR, CANDIDATES, anchor_clips, CANDIDATE_CLIPS, "squared", negatives
    )
    assert torch.equal(mined, CANDIDATES[expected])


def test_semihard_mining_falls_back_to_the_farthest_tile_and_needs_another_clip():
    # Every other clip's tile is nearer than the neighbour (at 400): take the farthest (162).
    far_neighbour = torch.tensor([[20.0, 0.0]])
    mined = mine_distant(
        MINE_ANCHOR[:1], far_neighbour, CANDIDATES, torch.tensor([0]), CANDIDATE_CLIPS
    )
    assert torch.equal(mined, CANDIDATES[[3]])
    with pytest.raises(ValueError, match="another clip"):
        mine_distant(
            MINE_ANCHOR[:1], far_neighbour, CANDIDATES[:1], torch.tensor([0]), CANDIDATE_CLIPS[:1]
        )
    with pytest.raises(ValueError, match="model.negatives"):
        mine_distant(
            MINE_ANCHOR,
            MINE_NEIGHBOUR,
            CANDIDATES,
            torch.tensor([0, 1]),
            CANDIDATE_CLIPS,
            negatives="random",
        )


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoders_map_a_tile_to_a_vector_and_longer_inputs_when_they_can(name):
    shape = (1, 4000) if name == "conv1d" else (32, 26)
    options = {"base_channels": 8} if name == "resnet18" else {}
    encoder = build_encoder(name, shape, 12, **options).eval()
    assert encoder(torch.randn(3, *shape)).shape == (3, 12)
    if encoder.accepts_any_length:
        longer = (shape[0], shape[1] * 2 + 3)
        assert encoder(torch.randn(2, *longer)).shape == (2, 12)
    with pytest.raises(ValueError, match="is not one of"):
        build_encoder("transformer", shape, 12)


def _model(encoder: str = "conv2d", **kwargs) -> Tile2Vec:
    if encoder == "conv1d":
        feature = Waveform(SR)
    else:
        feature = LogMel(SR, n_fft=256, hop_length=128, n_mels=32)
    params = dict(tile_seconds=0.25, embedding_dim=16, silhouette_clips=0)
    params.update(kwargs)
    return Tile2Vec(input_shape=[1], feature=feature, encoder=encoder, **params)


@pytest.mark.parametrize("encoder", ["dense", "conv1d"])
def test_embed_tiles_clips_of_any_length_into_unit_vectors(encoder):
    model = _model(encoder).eval()
    for samples in (500, 2000, 5321):  # shorter than a tile, one tile, several
        with torch.no_grad():
            vectors = model.embed(torch.randn(2, samples))
            frames, times = model.embed_frames(torch.randn(2, samples))
        assert vectors.shape == (2, 32)  # mean and std of 16-d tile embeddings
        assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)
        assert frames.shape[:2] == (2, len(times)) and times[0] == pytest.approx(0.125)
    assert model.tile_starts(5321).tolist() == [0, 1000, 2000, 3000, 3321]


def test_mean_std_pooling_measures_how_a_clip_changes():
    model = _model("dense", pooling="mean_std", normalize=False).eval()
    t = np.arange(6000) / SR
    # A 400 Hz tone repeats every 20 samples, so its tiles (every 1,000) are all the same;
    # a tone that turns into noise halfway has tiles that differ.
    steady = np.sin(2 * np.pi * 400 * t)
    changing = np.where(t < 0.375, steady, np.random.default_rng(0).standard_normal(len(t)))
    audio = torch.tensor(np.stack([steady, changing]), dtype=torch.float32)
    with torch.no_grad():
        pooled = model.embed(audio)
        tiles = model.embed_frames(audio)[0]
    assert pooled.shape == (2, 32)
    assert torch.allclose(pooled[:, :16], tiles.mean(dim=1), atol=1e-6)
    assert pooled[0, 16:].abs().max() < 1e-5
    assert pooled[1, 16:].abs().max() > 1e-2
    with pytest.raises(ValueError, match="model.pooling"):
        _model("dense", pooling="max")


def test_encoder_and_feature_must_match():
    with pytest.raises(ValueError, match="feature=waveform"):
        Tile2Vec([1], LogMel(SR, n_fft=256, hop_length=128, n_mels=32), encoder="conv1d")
    with pytest.raises(ValueError, match="feature=logmel"):
        Tile2Vec([1], Waveform(SR), encoder="conv2d")


@pytest.mark.parametrize("encoder", sorted(ENCODERS))
def test_experiment_runs_under_fast_dev_run_for_each_encoder(compose_train, encoder):
    from audiorep.tasks.train import train

    overrides = [
        "experiment=deep_embedded_music",
        f"model/encoder={encoder}",
        "debug=default",
        "data.batch_size=4",
        "model.tile_seconds=0.5",
        "model.embedding_dim=16",
        "model.silhouette_clips=8",
    ]
    overrides.append("feature=waveform" if encoder == "conv1d" else "feature.n_mels=32")
    if encoder == "resnet18":
        overrides.append("model.encoder.base_channels=8")
    if encoder == "conv2d":
        overrides.append("model.negatives=semihard")  # the batch-mined distant tile
    cfg = compose_train(*overrides)
    assert cfg.data.sampler.tile_seconds == 0.5
    train(cfg)


class PackedClips:
    def __init__(self, clips: list[np.ndarray]):
        self.audio = np.concatenate(clips).astype(np.float32)
        self.offsets = np.concatenate([[0], np.cumsum([len(c) for c in clips])]).astype(np.int64)

    @property
    def packed_audio(self):
        return self.audio, self.offsets

    def split_indices(self, split: str) -> np.ndarray:
        return np.arange(len(self.offsets) - 1)


def _separated_clips(per_class: int = 12, seconds: float = 1.0, seed: int = 0):
    """Three timbres (sine, buzz, noise) over random pitches and loudness drifts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    clips, labels = [], []
    for label, kind in enumerate(("sine", "buzz", "noise")):
        for _ in range(per_class):
            f0 = rng.uniform(150, 500)
            if kind == "sine":
                x = np.sin(2 * np.pi * f0 * t)
            elif kind == "buzz":
                x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
            else:
                x = np.convolve(rng.standard_normal(len(t)), np.ones(4) / 4, mode="same")
            envelope = 0.6 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
            clips.append((0.4 * envelope * x / np.abs(x).max()).astype(np.float32))
            labels.append(label)
    return clips, np.array(labels)


def _probe_accuracy(model: Tile2Vec, clips, labels) -> float:
    model.eval()
    with torch.no_grad():
        x = model.embed(torch.from_numpy(np.stack(clips))).numpy()
    train = np.arange(len(labels)) % 2 == 0
    probe = LogisticRegression(max_iter=2000).fit(x[train], labels[train])
    return float((probe.predict(x[~train]) == labels[~train]).mean())


def test_short_training_lowers_the_loss_and_separates_the_classes(fit_recording_losses):
    L.seed_everything(0)
    clips, labels = _separated_clips()
    # The plain mean: the mean over active triplets need not fall as triplets get easier.
    model = _model("conv2d", reduction="mean", optimizer=lambda p: torch.optim.Adam(p, lr=3e-3))
    sampler = TripletSampler(SR, 0.25, 0.25, buffer_size=2, triplets_per_epoch=32 * 15)
    loader = DataLoader(
        sampler.dataset(PackedClips(clips), "train", 0),
        batch_size=32,
        shuffle=True,
        collate_fn=already_batched,
    )
    losses = fit_recording_losses(model, loader, max_epochs=4)
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5]), (losses[:5], losses[-10:])
    accuracy = _probe_accuracy(model, clips, labels)
    print(f"loss {np.mean(losses[:5]):.3f} -> {np.mean(losses[-10:]):.3f}, probe {accuracy:.2f}")
    assert accuracy >= 0.8  # chance: 1/3
