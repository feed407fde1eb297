"""The beta-VAE family as one hook: a regularizer on the posterior, added to the reconstruction loss.

Each regularizer maps the posterior (mu, logvar) and a sample z, all (batch, latent), to a
dict of named terms; `"regularizer"` is the one added to the loss, the rest are logged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

REGULARIZERS = ("beta_vae", "beta_tcvae", "annealed_vae", "factor_vae")


def kl_per_dimension(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(q(z|x) || N(0, I)) per latent dimension, averaged over the batch: (latent,)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1.0).mean(dim=0)


def gaussian_log_density(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise log N(z; mu, exp(logvar)); broadcasts."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) * torch.exp(-logvar))


def total_correlation(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """Minibatch estimate of TC(q(z)) = KL(q(z) || prod_j q(z_j)) (Chen et al. 2018).

    z, mu, logvar: (batch, latent). q(z) is taken as the mixture of the batch's posteriors,
    so log q(z) and each log q(z_j) carry a -log(batch) term: (latent - 1) * log(batch) is
    left in TC. Without it the logged TC is shifted far below zero; the gradient is the same.
    """
    # log q(z_i | x_j) for every pair (i, j) and dimension: (batch, batch, latent).
    log_qz_pairs = gaussian_log_density(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))
    log_qz = torch.logsumexp(log_qz_pairs.sum(dim=2), dim=1)
    log_qz_product = torch.logsumexp(log_qz_pairs, dim=1).sum(dim=1)
    batch, latent = z.shape
    return (log_qz - log_qz_product).mean() + (latent - 1) * math.log(batch)


class BetaVAE(nn.Module):
    """beta * KL (Higgins et al. 2017)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, mu: Tensor, logvar: Tensor, z: Tensor, step: int) -> dict[str, Tensor]:
        kl = kl_per_dimension(mu, logvar).sum()
        return {"regularizer": self.beta * kl, "kl": kl}


class BetaTCVAE(nn.Module):
    """KL + (beta - 1) * TC: only the total correlation is penalised harder (Chen et al. 2018)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = beta

    def forward(self, mu: Tensor, logvar: Tensor, z: Tensor, step: int) -> dict[str, Tensor]:
        kl = kl_per_dimension(mu, logvar).sum()
        tc = total_correlation(z, mu, logvar)
        return {"regularizer": kl + (self.beta - 1.0) * tc, "kl": kl, "tc": tc}


class AnnealedCapacity(nn.Module):
    """gamma * |KL - C|, C growing linearly to capacity_max over capacity_steps (Burgess et al. 2018)."""

    def __init__(self, gamma: float, capacity_max: float, capacity_steps: int):
        super().__init__()
        self.gamma = gamma
        self.capacity_max = capacity_max
        self.capacity_steps = max(1, int(capacity_steps))

    def forward(self, mu: Tensor, logvar: Tensor, z: Tensor, step: int) -> dict[str, Tensor]:
        kl = kl_per_dimension(mu, logvar).sum()
        capacity = self.capacity_max * min(1.0, step / self.capacity_steps)
        regularizer = self.gamma * (kl - capacity).abs()
        return {"regularizer": regularizer, "kl": kl, "capacity": kl.new_tensor(capacity)}


def permute_dimensions(z: Tensor) -> Tensor:
    """Shuffle each latent dimension independently across the batch: samples of prod_j q(z_j)."""
    batch, latent = z.shape
    order = torch.argsort(torch.rand(batch, latent, device=z.device), dim=0)
    return torch.gather(z, 0, order)


class FactorVAE(nn.Module):
    """KL + gamma * TC, with TC from a discriminator of q(z) versus its dimension-permuted codes
    (Kim & Mnih 2018). The discriminator has its own optimizer: see `discriminator_loss`."""

    needs_discriminator = True

    def __init__(self, gamma: float, latent_dim: int, hidden_dim: int = 1000, num_layers: int = 6):
        super().__init__()
        self.gamma = gamma
        layers: list[nn.Module] = []
        width = latent_dim
        for _ in range(num_layers):
            layers += [nn.Linear(width, hidden_dim), nn.LeakyReLU(0.2)]
            width = hidden_dim
        layers.append(nn.Linear(width, 2))
        self.discriminator = nn.Sequential(*layers)

    def forward(self, mu: Tensor, logvar: Tensor, z: Tensor, step: int) -> dict[str, Tensor]:
        kl = kl_per_dimension(mu, logvar).sum()
        logits = self.discriminator(z)
        # log D(z) / (1 - D(z)) estimates log q(z) / prod_j q(z_j).
        tc = (logits[:, 0] - logits[:, 1]).mean()
        return {"regularizer": kl + self.gamma * tc, "kl": kl, "tc": tc}

    def discriminator_loss(self, z: Tensor) -> Tensor:
        """Cross-entropy of telling codes (class 0) from permuted codes (class 1); z is detached."""
        z = z.detach()
        logits = self.discriminator(torch.cat([z, permute_dimensions(z)]))
        labels = torch.cat(
            [torch.zeros(len(z), dtype=torch.long), torch.ones(len(z), dtype=torch.long)]
        ).to(z.device)
        return F.cross_entropy(logits, labels)


def build_regularizer(
    name: str,
    latent_dim: int,
    beta: float,
    gamma: float,
    capacity_max: float,
    capacity_steps: int,
) -> nn.Module:
    """The regularizer named by `model.regularizer`."""
    if name == "beta_vae":
        return BetaVAE(beta)
    if name == "beta_tcvae":
        return BetaTCVAE(beta)
    if name == "annealed_vae":
        return AnnealedCapacity(gamma, capacity_max, capacity_steps)
    if name == "factor_vae":
        return FactorVAE(gamma, latent_dim)
    raise ValueError(f"model.regularizer={name!r} is not one of {list(REGULARIZERS)}")
