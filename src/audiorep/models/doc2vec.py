"""sound-eval's doc2vec for audio: frame towers plus one learned vector per clip.

The model is trained to tell whether two log-mel frames come from the same local context
(a partner within ±W frames of the anchor in the same clip) or from anywhere:

    p(local | A, B, clip) = sigmoid(<tower1(A) + clip_vector[clip], tower2(B)>)

Tower 1 ("origin") and tower 2 ("cross") are separate MLPs over one frame. The clip
vector holds what is common to the whole clip and is what doc2vec calls the document
vector. Differences from the seed, each for a stated reason:
- the label is 1 for a local pair (the seed used 1 for a random pair; only the sign of the
  logit changes);
- the logit is the plain dot product (the seed took the mean over dimensions times 0.1,
  a fixed rescaling the vectors absorb);
- frames are standardised by a non-affine batch norm before the towers, because raw
  log-mel values sit around -10 and an MLP trains slowly on them.

Clips not seen in training get a vector the way doc2vec infers one: the towers are
frozen and only a fresh clip vector per clip is fitted on that clip's own frame pairs,
against random frames from a pool of training frames kept in the checkpoint.
``embedding="tower_mean"`` uses the seed's alternative instead: the mean of tower 1 over
the clip's frames; ``"tower_stats"`` adds the standard deviation over frames, which keeps
how a sound changes in time (its attack and decay) that the mean averages away. Kinds
join with "+" into one concatenated vector, e.g. ``"inferred+tower_stats"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

EMBEDDINGS = ("inferred", "tower_mean", "tower_stats")


def frame_tower(num_bins: int, hidden_dim: int, embedding_dim: int) -> nn.Sequential:
    """The seed's tower: Dense(bins -> hidden) -> ReLU -> Dense(hidden -> embedding)."""
    return nn.Sequential(
        nn.Linear(num_bins, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, embedding_dim)
    )


class Doc2Vec(L.LightningModule):
    """Two frame towers and a table of clip vectors, trained on context pairs.

    Training batches come from `audiorep.data.samplers.ContextPairSampler`:
    dict(anchor (B, L), context (B, L), clip_index (B,), target (B,)), where L is one
    frame of the un-centred frame feature.
    """

    #: `embed` takes clips of any length (the evaluation need not crop them).
    accepts_any_length = True

    def __init__(
        self,
        input_shape: Sequence[int],
        feature: nn.Module,
        num_clips: int,
        input_key: str = "audio",
        hidden_dim: int = 128,
        embedding_dim: int = 32,
        window: int = 3,
        negatives_per_positive: int = 1,
        embedding: str = "inferred",
        infer_steps: int = 100,
        infer_lr: float = 0.1,
        infer_pairs: int = 64,
        negative_pool_size: int = 4096,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__()
        if feature is None:
            raise ValueError("model=doc2vec needs a frame feature: set feature=logmel_frames")
        if not set(embedding.split("+")) <= set(EMBEDDINGS):
            raise ValueError(
                f"model.embedding={embedding!r}: use one of {EMBEDDINGS}, or several joined by +"
            )
        if getattr(feature, "center", False):
            raise ValueError(
                "model=doc2vec needs an un-centred frame feature (feature.center=false), so "
                "that one sampled frame of feature.n_fft samples is exactly one feature frame"
            )
        self.save_hyperparameters(ignore=["feature", "optimizer", "scheduler"])
        self.feature = feature
        self.input_key = input_key
        self.num_bins = int(input_shape[0])
        self.embedding_dim = int(embedding_dim)
        self.window = int(window)
        self.negatives_per_positive = int(negatives_per_positive)
        self.embedding = embedding
        self.infer_steps = int(infer_steps)
        self.infer_lr = float(infer_lr)
        self.infer_pairs = int(infer_pairs)
        self.frame_norm = nn.BatchNorm1d(self.num_bins, affine=False)
        self.tower1 = frame_tower(self.num_bins, hidden_dim, embedding_dim)
        self.tower2 = frame_tower(self.num_bins, hidden_dim, embedding_dim)
        self.clip_vectors = nn.Embedding(int(num_clips), embedding_dim)
        # The seed's initialisation: N(0, 1) / embedding size.
        nn.init.normal_(self.clip_vectors.weight, std=1.0 / embedding_dim)
        # Random training frames (normalised), refreshed during training: the negatives
        # when inferring vectors of new clips. Saved with the checkpoint.
        self.register_buffer("negative_pool", torch.zeros(negative_pool_size, self.num_bins))
        self.register_buffer("negative_pool_filled", torch.zeros((), dtype=torch.long))
        self.optimizer_factory = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-3))
        self.scheduler_factory = scheduler

    # ----- frames -----
    def frames(self, audio: Tensor) -> Tensor:
        """Audio (B, T) -> normalised frames (B, N, bins)."""
        return self.frame_norm_apply(self.feature(audio).transpose(1, 2))

    def frame_norm_apply(self, frames: Tensor) -> Tensor:
        """The batch norm over the bins of frames shaped (..., bins)."""
        shape = frames.shape
        return self.frame_norm(frames.reshape(-1, shape[-1])).reshape(shape)

    def single_frames(self, audio_frames: Tensor) -> Tensor:
        """(B, L) audio of one frame each -> (B, bins)."""
        return self.frames(audio_frames)[:, 0]

    def score(self, origin: Tensor, clip_vector: Tensor, cross: Tensor) -> Tensor:
        """The logit of "local pair": <tower1(A) + clip vector, tower2(B)>."""
        return ((origin + clip_vector) * cross).sum(dim=-1)

    # ----- the representation API (DESIGN.md) -----
    def embed_frames(self, audio: Tensor) -> tuple[Tensor, Tensor]:
        """Tower-1 output per frame (B, N, D) and each frame's centre time in seconds (N,)."""
        with torch.no_grad():
            origin = self.tower1(self.frames(audio))
        hop = self.feature.hop_length
        starts = torch.arange(origin.shape[1], device=origin.device) * hop
        times = (starts + self.feature.n_fft / 2) / self.feature.sample_rate
        return origin, times

    def embed(self, audio: Tensor) -> Tensor:
        """One vector per clip: each kind in ``embedding`` ("+"-joined), concatenated."""
        parts = []
        for kind in self.embedding.split("+"):
            if kind == "inferred":
                parts.append(self.infer_clip_vectors(audio))
                continue
            frames = self.embed_frames(audio)[0]
            parts.append(frames.mean(dim=1))
            if kind == "tower_stats":
                # Population std, so a one-frame clip gives zeros rather than NaN.
                parts.append(frames.std(dim=1, correction=0))
        return torch.cat(parts, dim=1)

    def infer_clip_vectors(self, audio: Tensor, steps: int | None = None, seed: int = 0) -> Tensor:
        """doc2vec inference for clips of equal length (B, T) -> (B, D).

        The towers stay frozen; each clip gets a vector, starting at zero, fitted by Adam on
        ``infer_pairs`` pairs per clip per step: local pairs from the clip's own frames and
        random partners from the training-frame pool, in the training ratio.
        """
        steps = self.infer_steps if steps is None else steps
        was_training = self.training
        self.eval()
        generator = torch.Generator(device="cpu").manual_seed(seed)
        with torch.no_grad():
            frames = self.frames(audio)  # (B, N, bins)
            origin = self.tower1(frames)  # (B, N, D)
            cross = self.tower2(frames)
            pool = self.pool_frames()
            pool_cross = self.tower2(pool) if len(pool) else cross.reshape(-1, cross.shape[-1])
        batch, num_frames, dim = origin.shape
        vectors = torch.zeros(batch, dim, device=origin.device, requires_grad=True)
        optimizer = torch.optim.Adam([vectors], lr=self.infer_lr)
        # The step size decays linearly to zero, as doc2vec's inference does, so the
        # vectors settle instead of wandering with the last steps' samples.
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: 1.0 - i / steps)
        p_local = 1.0 / (1 + self.negatives_per_positive)
        rows = torch.arange(batch, device=origin.device)[:, None]
        with torch.enable_grad():
            for _ in range(steps):
                anchor = torch.randint(num_frames, (batch, self.infer_pairs), generator=generator)
                offset = torch.randint(
                    -self.window, self.window + 1, anchor.shape, generator=generator
                )
                local = (anchor + offset).clamp(0, num_frames - 1)
                is_local = torch.rand(anchor.shape, generator=generator) < p_local
                negative = torch.randint(len(pool_cross), anchor.shape, generator=generator)
                anchor, local, negative = (t.to(origin.device) for t in (anchor, local, negative))
                partner = torch.where(
                    is_local.to(origin.device)[..., None],
                    cross[rows, local],
                    pool_cross[negative],
                )
                logits = self.score(origin[rows, anchor], vectors[:, None, :], partner)
                loss = F.binary_cross_entropy_with_logits(
                    logits, is_local.to(origin.device, logits.dtype)
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
        self.train(was_training)
        return vectors.detach()

    def pool_frames(self) -> Tensor:
        return self.negative_pool[: int(self.negative_pool_filled)]

    # ----- training -----
    def pair_logits(
        self, batch: dict[str, Tensor], use_clip_vectors: bool
    ) -> tuple[Tensor, Tensor]:
        if "anchor" not in batch:
            raise ValueError(
                "model=doc2vec trains on frame pairs: set data.sampler to the context-pair "
                "sampler (experiment=sound_eval_doc2vec does)"
            )
        anchor = self.single_frames(batch["anchor"])
        context = self.single_frames(batch["context"])
        clip_vector = (
            self.clip_vectors(batch["clip_index"])
            if use_clip_vectors
            else torch.zeros(1, self.embedding_dim, device=anchor.device)
        )
        return self.score(self.tower1(anchor), clip_vector, self.tower2(context)), context

    def _step(self, batch: dict[str, Tensor], stage: str, use_clip_vectors: bool) -> Tensor:
        logits, context = self.pair_logits(batch, use_clip_vectors)
        target = batch["target"].to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        accuracy = ((logits > 0).to(target.dtype) == target).float().mean()
        size = len(target)
        self.log(f"{stage}/loss", loss, prog_bar=True, batch_size=size, sync_dist=stage != "train")
        self.log(f"{stage}/pair_accuracy", accuracy, batch_size=size, sync_dist=stage != "train")
        if stage == "train":
            self._refresh_pool(context.detach(), batch["target"])
        return loss

    def _refresh_pool(self, context: Tensor, target: Tensor) -> None:
        """Keep the latest random-pair partners: a uniform sample of training frames."""
        random_frames = context[target < 0.5]
        size = len(self.negative_pool)
        if size == 0 or len(random_frames) == 0:
            return
        random_frames = random_frames[-size:]
        start = int(self.global_step * len(random_frames)) % size
        index = (start + torch.arange(len(random_frames), device=context.device)) % size
        self.negative_pool[index] = random_frames
        self.negative_pool_filled.fill_(min(size, int(self.negative_pool_filled) + len(index)))

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train", use_clip_vectors=True)

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # Validation clips have no trained vector: the towers alone are scored (the clip
        # vector at zero), which measures what the frame towers learned of local context.
        self._step(batch, "val", use_clip_vectors=False)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._step(batch, "test", use_clip_vectors=False)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
