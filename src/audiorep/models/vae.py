"""The beta-VAE family (ATIAM seed) as one LightningModule with a pluggable regularizer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from audiorep.features.cache import FeatureCache
from audiorep.models.networks import build_encoder_decoder
from audiorep.models.regularizers import build_regularizer, kl_per_dimension

LIKELIHOODS = ("bernoulli", "gaussian")


class VariationalAutoencoder(L.LightningModule):
    """Encoder -> (mu, logvar) -> z -> decoder, trained on reconstruction + a regularizer.

    The feature (an `audiorep.features` module) is part of the model: audio (batch, time)
    goes in, the feature map (batch, freq, frames) is what is reconstructed. Without a
    feature the batch's `input_key` entry is modelled as it is (e.g. images).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        feature: nn.Module | None = None,
        input_key: str = "audio",
        latent_dim: int = 10,
        architecture: str = "mlp",
        hidden_dims: Sequence[int] = (512, 256),
        conv_channels: Sequence[int] = (32, 32, 64, 64),
        likelihood: str = "gaussian",
        gaussian_scale: float = 1.0,
        regularizer: str = "beta_vae",
        beta: float = 4.0,
        gamma: float = 10.0,
        capacity_max: float = 25.0,
        capacity_steps: int = 10000,
        optimizer: Callable[..., torch.optim.Optimizer] | None = None,
        scheduler: Callable[..., Any] | None = None,
        discriminator_lr: float = 1e-4,
        cache_features: bool = False,
    ):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"model.likelihood={likelihood!r} is not one of {list(LIKELIHOODS)}")
        self.save_hyperparameters(ignore=["feature", "optimizer", "scheduler"])
        self.feature = feature
        self.input_key = input_key
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.gaussian_scale = gaussian_scale
        self.input_shape = tuple(int(s) for s in input_shape)
        self.encoder, self.decoder = build_encoder_decoder(
            architecture, self.input_shape, latent_dim, hidden_dims, conv_channels
        )
        self.regularizer = build_regularizer(
            regularizer, latent_dim, beta, gamma, capacity_max, capacity_steps
        )
        self.optimizer_factory = optimizer or (lambda params: torch.optim.Adam(params, lr=1e-3))
        self.scheduler_factory = scheduler
        self.discriminator_lr = discriminator_lr
        # Features of unchanging clips are computed once (see FeatureCache), not every epoch.
        self.feature_cache = FeatureCache() if cache_features and feature is not None else None
        # The FactorVAE discriminator has its own optimizer, stepped by hand.
        self.automatic_optimization = not getattr(self.regularizer, "needs_discriminator", False)

    # ----- the representation API (DESIGN.md) -----
    def features(self, inputs: Tensor) -> Tensor:
        """Model input from raw input: audio (B, T) -> feature (B, F, N); images pass through."""
        return self.feature(inputs) if self.feature is not None else inputs

    def batch_features(self, batch: dict[str, Tensor]) -> Tensor:
        """The model input of a training batch, from the feature cache when it is on."""
        inputs = batch[self.input_key]
        if self.feature_cache is not None and "clip_index" in batch:
            return self.feature_cache(self.feature, inputs, batch["clip_index"])
        return self.features(inputs)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Feature map -> posterior mean and log-variance, each (B, latent)."""
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode(self, z: Tensor) -> Tensor:
        """Latent (B, latent) -> mean of p(x|z) in feature space, shaped like the input."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.likelihood == "bernoulli" else out

    @torch.no_grad()
    def decode_traversals(self, values: Sequence[float]) -> Tensor:
        """Decode each latent dimension swept over `values`, the others at the prior mean
        (as the seed did): (latent, len(values), *input_shape)."""
        steps = torch.as_tensor(values, dtype=torch.float32, device=self.device)
        z = torch.zeros(self.latent_dim, len(steps), self.latent_dim, device=self.device)
        for i in range(self.latent_dim):
            z[i, :, i] = steps
        decoded = self.decode(z.flatten(0, 1))
        return decoded.view(self.latent_dim, len(steps), *decoded.shape[1:])

    @torch.no_grad()
    def embed(self, inputs: Tensor) -> Tensor:
        """One vector per clip: the posterior mean, (B, latent)."""
        return self.encode(self.features(inputs))[0]

    # ----- training -----
    def reconstruction_loss(self, logits: Tensor, x: Tensor) -> Tensor:
        """Negative log-likelihood summed over input dimensions, averaged over the batch."""
        if self.likelihood == "bernoulli":
            if x.min() < 0 or x.max() > 1:
                raise ValueError(
                    "model.likelihood=bernoulli needs inputs in [0, 1]: use "
                    "feature.normalization=max with compression=none, or likelihood=gaussian"
                )
            nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        else:
            nll = (logits - x).pow(2) / (2 * self.gaussian_scale**2)
        return nll.flatten(1).sum(dim=1).mean()

    def common_step(self, batch: dict[str, Tensor]) -> tuple[dict[str, Tensor], Tensor]:
        """Loss terms for a batch; shared by training and validation so the two cannot drift."""
        x = self.batch_features(batch)
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        reconstruction = self.reconstruction_loss(self.decoder(z), x)
        terms = self.regularizer(mu, logvar, z, self.global_step)
        losses = {"reconstruction": reconstruction, **terms}
        losses["loss"] = reconstruction + terms["regularizer"]
        return losses, (mu, logvar, z)

    def _log_losses(
        self, stage: str, losses: dict[str, Tensor], mu: Tensor, logvar: Tensor
    ) -> None:
        batch_size = mu.shape[0]
        self.log_dict(
            {f"{stage}/{name}": value.detach() for name, value in losses.items() if name != "loss"},
            on_step=stage == "train",
            on_epoch=True,
            batch_size=batch_size,
            sync_dist=stage != "train",
        )
        self.log(
            f"{stage}/loss",
            losses["loss"].detach(),
            prog_bar=True,
            on_step=stage == "train",
            on_epoch=True,
            batch_size=batch_size,
            sync_dist=stage != "train",
        )
        kl_dims = kl_per_dimension(mu.detach(), logvar.detach())
        self.log_dict(
            {f"{stage}/kl_dim/{i}": kl for i, kl in enumerate(kl_dims)},
            on_step=False,
            on_epoch=True,
            batch_size=batch_size,
            sync_dist=stage != "train",
        )

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor | None:
        losses, (mu, logvar, z) = self.common_step(batch)
        self._log_losses("train", losses, mu, logvar)
        if self.automatic_optimization:
            return losses["loss"]
        vae_optimizer, discriminator_optimizer = self.optimizers()
        vae_optimizer.zero_grad()
        self.manual_backward(losses["loss"])
        vae_optimizer.step()
        discriminator_loss = self.regularizer.discriminator_loss(z)
        discriminator_optimizer.zero_grad()
        self.manual_backward(discriminator_loss)
        discriminator_optimizer.step()
        self.log("train/discriminator", discriminator_loss.detach(), batch_size=len(z))
        return None

    def on_train_epoch_end(self) -> None:
        if not self.automatic_optimization and self.lr_schedulers() is not None:
            self.lr_schedulers().step()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses, (mu, logvar, _) = self.common_step(batch)
        self._log_losses("val", losses, mu, logvar)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        losses, (mu, logvar, _) = self.common_step(batch)
        self._log_losses("test", losses, mu, logvar)

    def configure_optimizers(self) -> Any:
        discriminator = getattr(self.regularizer, "discriminator", None)
        vae_parameters = [
            p for name, p in self.named_parameters() if not name.startswith("regularizer.")
        ]
        optimizer = self.optimizer_factory(vae_parameters)
        if discriminator is not None:
            # Kim & Mnih's discriminator optimizer: Adam with beta1 = 0.5.
            discriminator_optimizer = torch.optim.Adam(
                discriminator.parameters(), lr=self.discriminator_lr, betas=(0.5, 0.9)
            )
            optimizers: list[torch.optim.Optimizer] = [optimizer, discriminator_optimizer]
            if self.scheduler_factory is None:
                return optimizers
            return optimizers, [self.scheduler_factory(optimizer)]
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer)}
