"""Deep embedded Music: Tile2Vec for audio, a triplet loss on tiles of clips.

Each training example is a triplet of equal-length tiles (`audiorep.data.samplers.
TripletSampler`): an anchor, a neighbour from the same clip near the anchor, and a
distant tile from another clip. The encoder (`audiorep.models.encoders`, chosen with
``model/encoder=<name>``) maps a tile's feature (computed inside the model) to an
L2-normalised embedding, trained so that

    loss = max(0, d(anchor, neighbour) - d(anchor, distant) + margin)

with d the squared (the seed's) or plain Euclidean distance, averaged over all triplets
or, as the seed found better, only over the triplets whose loss is not zero. An optional
penalty on the norm of the embeddings before normalisation is Tile2Vec's; the seed's L2
penalty on kernels is the optimizer's ``weight_decay``.

A whole clip of any length is embedded by tiling it (tiles of the training length every
``embed_hop_seconds``, the last one aligned to the clip's end; a clip shorter than a tile
is zero-padded, as the sampler pads it) and pooling the tile embeddings over the clip:
their mean and standard deviation (``pooling=mean_std``, twice the size) or their mean
alone (``mean``), renormalised. The standard deviation keeps how a clip changes over time
(a piano note's decay against an organ's sustain), which the mean direction loses.
Tiling serves every encoder the same way, including ``dense``, which only takes one tile
length, and keeps the encoders on inputs of the length they were trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiorep.features import Waveform
from audiorep.models.encoders import ENCODERS

DISTANCES = ("squared", "euclidean")
REDUCTIONS = ("mean", "nonzero_mean")
NEGATIVES = ("sampled", "semihard", "hardest")
POOLINGS = ("mean", "mean_std")


def row_distances(a: Tensor, b: Tensor, distance: str = "squared") -> Tensor:
    """Distances between a and b along their last dimension (broadcast over the rest)."""
    if distance not in DISTANCES:
        raise ValueError(f"model.distance={distance!r}: use one of {DISTANCES}")
    squared = (a - b).pow(2).sum(-1)
    # The clamp keeps the gradient finite when two embeddings coincide.
    return squared.clamp_min(1e-12).sqrt() if distance == "euclidean" else squared


def mine_distant(
    anchor: Tensor,
    neighbour: Tensor,
    candidates: Tensor,
    anchor_clips: Tensor,
    candidate_clips: Tensor,
    distance: str = "squared",
    negatives: str = "semihard",
) -> Tensor:
    """For each anchor (B, D), the distant tile chosen among ``candidates`` (M, D) of
    other clips (``candidate_clips != anchor_clips``), returned as (B, D).

    - ``hardest``: the candidate nearest to the anchor;
    - ``semihard`` (FaceNet): the nearest candidate that is farther than the anchor's
      neighbour; when there is none, the farthest candidate, as TensorFlow Addons' semi-hard
      loss does, so that early in training the loss does not pull every tile together.

    Only the choice is made without gradients; the loss flows through the chosen tiles.
    """
    if negatives not in ("semihard", "hardest"):
        raise ValueError(f"model.negatives={negatives!r}: use one of {NEGATIVES}")
    with torch.no_grad():
        to_candidates = row_distances(anchor[:, None, :], candidates[None, :, :], distance)
        allowed = candidate_clips[None, :] != anchor_clips[:, None]
        if not allowed.any(dim=1).all():
            raise ValueError("an anchor has no tile of another clip in its batch to mine")
        inf = torch.full_like(to_candidates, float("inf"))
        if negatives == "hardest":
            chosen = torch.where(allowed, to_candidates, inf).argmin(dim=1)
        else:
            near = row_distances(anchor, neighbour, distance)
            beyond = allowed & (to_candidates > near[:, None])
            semihard = torch.where(beyond, to_candidates, inf).argmin(dim=1)
            farthest = torch.where(allowed, to_candidates, -inf).argmax(dim=1)
            chosen = torch.where(beyond.any(dim=1), semihard, farthest)
    return candidates[chosen]


def triplet_loss(
    anchor: Tensor,
    neighbour: Tensor,
    distant: Tensor,
    margin: float = 1.0,
    distance: str = "squared",
    reduction: str = "nonzero_mean",
) -> tuple[Tensor, dict[str, Tensor]]:
    """The triplet loss of embeddings (B, D) and its statistics.

    ``reduction="nonzero_mean"`` averages over the active triplets (loss > 0) only; with
    none active the loss is zero. Statistics: ``active_fraction``, ``anchor_neighbour``
    and ``anchor_distant`` (mean distances) and ``mean_loss`` (the plain mean).
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"model.reduction={reduction!r}: use one of {REDUCTIONS}")
    near = row_distances(anchor, neighbour, distance)
    far = row_distances(anchor, distant, distance)
    per_triplet = F.relu(near - far + margin)
    active = per_triplet > 0
    if reduction == "mean":
        loss = per_triplet.mean()
    else:
        loss = per_triplet.sum() / active.sum().clamp_min(1)
    stats = {
        "active_fraction": active.float().mean(),
        "anchor_neighbour": near.mean(),
        "anchor_distant": far.mean(),
        "mean_loss": per_triplet.mean(),
    }
    return loss, stats


class Tile2Vec(L.LightningModule):
    """Feature, encoder and L2 normalisation, trained on tile triplets.

    Training batches: dict(anchor, neighbour, distant (B, tile samples)) from the triplet
    sampler (``experiment=deep_embedded_music`` sets it).
    """

    #: `embed` takes clips of any length (the evaluation need not crop them).
    accepts_any_length = True

    def __init__(
        self,
        input_shape: Sequence[int],
        feature: nn.Module,
        input_key: str = "audio",
        encoder: Callable[..., nn.Module] | str = "conv2d",
        tile_seconds: float = 1.0,
        embedding_dim: int = 256,
        margin: float = 1.0,
        distance: str = "squared",
        reduction: str = "nonzero_mean",
        negatives: str = "sampled",
        norm_penalty: float = 0.0,
        normalize: bool = True,
        pooling: str = "mean_std",
        embed_hop_seconds: float | None = None,
        embed_batch_tiles: int = 128,
        silhouette_clips: int = 256,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        if feature is None:
            raise ValueError(
                "model=tile2vec computes its feature inside: set feature=logmel (or mfcc), "
                "or feature=waveform for model/encoder=conv1d"
            )
        if distance not in DISTANCES:
            raise ValueError(f"model.distance={distance!r}: use one of {DISTANCES}")
        if reduction not in REDUCTIONS:
            raise ValueError(f"model.reduction={reduction!r}: use one of {REDUCTIONS}")
        if pooling not in POOLINGS:
            raise ValueError(f"model.pooling={pooling!r}: use one of {POOLINGS}")
        if negatives not in NEGATIVES:
            raise ValueError(f"model.negatives={negatives!r}: use one of {NEGATIVES}")
        self.save_hyperparameters(ignore=["feature", "encoder", "optimizer", "scheduler"])
        self.feature = feature
        self.input_key = input_key
        self.sample_rate = int(feature.sample_rate)
        self.tile_samples = round(float(tile_seconds) * self.sample_rate)
        hop = float(tile_seconds) / 2 if embed_hop_seconds is None else float(embed_hop_seconds)
        self.embed_hop = max(1, round(hop * self.sample_rate))
        self.tile_shape = tuple(feature.output_shape(self.tile_samples))
        if isinstance(encoder, str):
            if encoder not in ENCODERS:
                raise ValueError(f"model/encoder={encoder!r} is not one of {sorted(ENCODERS)}")
            encoder = ENCODERS[encoder]
        self.encoder = encoder(input_shape=self.tile_shape, out_dim=int(embedding_dim))
        reads_waveform = isinstance(feature, Waveform)
        if reads_waveform != (getattr(self.encoder, "input_kind", "spectral") == "waveform"):
            name = type(self.encoder).__name__
            raise ValueError(
                f"the {name} encoder reads "
                + ("the raw waveform: set feature=waveform" if not reads_waveform else "")
                + ("a spectral map: set feature=logmel or mfcc" if reads_waveform else "")
            )
        self.embedding_dim = int(embedding_dim)
        self.margin = float(margin)
        self.distance = distance
        self.reduction = reduction
        self.negatives = negatives
        self.norm_penalty = float(norm_penalty)
        self.normalize = bool(normalize)
        self.pooling = pooling
        self.embed_batch_tiles = int(embed_batch_tiles)
        self.silhouette_clips = int(silhouette_clips)
        self.optimizer_factory = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-4))
        self.scheduler_factory = scheduler

    # ----- tiles -----
    def encode_tiles(self, tiles: Tensor) -> tuple[Tensor, Tensor]:
        """Tiles (B, tile samples) -> (embeddings (B, D), their norms before normalising)."""
        raw = self.encoder(self.feature(tiles))
        norms = raw.norm(dim=-1)
        return (F.normalize(raw, dim=-1) if self.normalize else raw), norms

    def tile_starts(self, num_samples: int) -> Tensor:
        """Start samples of the tiles covering a clip: every hop, the last one at the end."""
        last = max(num_samples - self.tile_samples, 0)
        starts = list(range(0, last + 1, self.embed_hop))
        if starts[-1] != last:
            starts.append(last)
        return torch.tensor(starts)

    # ----- the representation API (DESIGN.md) -----
    def embed_frames(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """One embedding per tile (B, N, D) and each tile's centre time in seconds (N,)."""
        if audio.shape[1] < self.tile_samples:
            audio = F.pad(audio, (0, self.tile_samples - audio.shape[1]))
        starts = self.tile_starts(audio.shape[1]).to(audio.device)
        tiles = audio.unfold(1, self.tile_samples, 1)[:, starts]  # (B, N, tile)
        flat = tiles.reshape(-1, self.tile_samples)
        embedded = torch.cat(
            [
                self.encode_tiles(flat[i : i + self.embed_batch_tiles])[0]
                for i in range(0, len(flat), self.embed_batch_tiles)
            ]
        )
        times = (starts + self.tile_samples / 2) / self.sample_rate
        return embedded.view(audio.shape[0], len(starts), -1), times

    def embed(self, audio: Tensor) -> Tensor:
        """One vector per clip: its tile embeddings pooled over the clip (``pooling``),
        renormalised; (B, D) for ``mean``, (B, 2 D) for ``mean_std``."""
        tiles = self.embed_frames(audio)[0]
        pooled = tiles.mean(dim=1)
        if self.pooling == "mean_std":
            # unbiased=False: a clip of one tile has deviation 0, not NaN.
            pooled = torch.cat([pooled, tiles.std(dim=1, unbiased=False)], dim=-1)
        return F.normalize(pooled, dim=-1) if self.normalize else pooled

    # ----- training -----
    def _step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        if "anchor" not in batch or "distant" not in batch:
            raise ValueError(
                "model=tile2vec trains on tile triplets: set data.sampler to the triplet "
                "sampler (experiment=deep_embedded_music does)"
            )
        size = len(batch["anchor"])
        tiles = torch.cat([batch["anchor"], batch["neighbour"], batch["distant"]])
        # One encoder pass for all three, so batch norm sees them together.
        embedded, norms = self.encode_tiles(tiles)
        anchor, neighbour, distant = embedded.split(size)
        if self.negatives != "sampled":
            # Every tile of the batch from another clip may serve as the distant tile.
            clips = batch["clip_index"]
            tile_clips = torch.cat([clips, clips, batch["distant_clip_index"]])
            distant = mine_distant(
                anchor, neighbour, embedded, clips, tile_clips, self.distance, self.negatives
            )
        loss, stats = triplet_loss(
            anchor, neighbour, distant, self.margin, self.distance, self.reduction
        )
        if self.norm_penalty:
            loss = loss + self.norm_penalty * norms.view(3, size).sum(0).mean()
        on_step = stage == "train"
        options = dict(batch_size=size, on_epoch=True, sync_dist=stage != "train")
        self.log(f"{stage}/loss", loss, prog_bar=True, on_step=on_step, **options)
        for name, value in stats.items():
            self.log(f"{stage}/{name}", value, on_step=False, **options)
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        score = self.validation_silhouette()
        if score is not None:
            self.log("val/silhouette", score, sync_dist=True)

    def validation_silhouette(self) -> float | None:
        """Silhouette of up to ``silhouette_clips`` validation clips' embeddings under the
        data's first label column, as the seed computed each epoch; None when the data has
        no labels or too few clips or classes."""
        trainer = self._trainer
        data = getattr(trainer, "datamodule", None) if trainer is not None else None
        if trainer is None or trainer.sanity_checking or self.silhouette_clips <= 0:
            return None
        if not all(hasattr(data, a) for a in ("split_indices", "clip_audio", "metadata")):
            return None
        from sklearn.metrics import silhouette_score

        clips = data.split_indices("val")[: self.silhouette_clips]
        labels = np.asarray(data.metadata[data.label_columns[0]])[clips]
        if not 2 <= len(set(labels.tolist())) < len(clips):
            return None
        with torch.no_grad():
            # One clip at a time: clips differ in length, and each is a batch of tiles.
            vectors = torch.cat(
                [
                    self.embed(torch.tensor(data.clip_audio(i), device=self.device)[None])
                    for i in clips
                ]
            )
        return float(silhouette_score(vectors.float().cpu().numpy(), labels))

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
