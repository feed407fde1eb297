import math

import pytest
import torch

from audiorep.models.regularizers import (
    AnnealedCapacity,
    BetaTCVAE,
    BetaVAE,
    FactorVAE,
    build_regularizer,
    gaussian_log_density,
    kl_per_dimension,
    permute_dimensions,
    total_correlation,
)


def test_kl_is_zero_at_the_prior_and_closed_form_elsewhere():
    zeros = torch.zeros(5, 3)
    assert torch.allclose(kl_per_dimension(zeros, zeros), torch.zeros(3))
    mu = torch.ones(5, 3)
    logvar = torch.full((5, 3), math.log(4.0))
    expected = 0.5 * (1 + 4 - math.log(4.0) - 1)
    assert torch.allclose(kl_per_dimension(mu, logvar), torch.full((3,), expected))


def test_gaussian_log_density_matches_torch_distributions():
    z, mu, logvar = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    expected = torch.distributions.Normal(mu, torch.exp(0.5 * logvar)).log_prob(z)
    assert torch.allclose(gaussian_log_density(z, mu, logvar), expected, atol=1e-5)


def test_total_correlation_is_large_for_dependent_codes_and_small_for_independent():
    torch.manual_seed(0)
    n = 512
    logvar = torch.full((n, 2), math.log(0.01))
    independent = torch.randn(n, 2)
    a = torch.randn(n, 1)
    dependent = torch.cat([a, a], dim=1)
    tc_independent = total_correlation(independent, independent, logvar)
    tc_dependent = total_correlation(dependent, dependent, logvar)
    assert tc_dependent > tc_independent + 1.0


def test_beta_weights_the_kl():
    mu, logvar = torch.ones(4, 2), torch.zeros(4, 2)
    kl = kl_per_dimension(mu, logvar).sum()
    assert torch.isclose(BetaVAE(4.0)(mu, logvar, mu, 0)["regularizer"], 4 * kl)


def test_beta_tcvae_with_beta_one_is_the_plain_kl():
    mu, logvar = torch.randn(16, 3), torch.zeros(16, 3)
    terms = BetaTCVAE(1.0)(mu, logvar, mu, 0)
    assert torch.isclose(terms["regularizer"], terms["kl"])


def test_annealed_capacity_rises_linearly_then_stays():
    reg = AnnealedCapacity(gamma=2.0, capacity_max=10.0, capacity_steps=100)
    mu, logvar = torch.zeros(4, 2), torch.zeros(4, 2)
    assert reg(mu, logvar, mu, 50)["capacity"].item() == pytest.approx(5.0)
    assert reg(mu, logvar, mu, 500)["capacity"].item() == pytest.approx(10.0)
    # KL is 0 here, so the penalty is gamma * C.
    assert reg(mu, logvar, mu, 50)["regularizer"].item() == pytest.approx(10.0)


def test_permutation_keeps_each_dimension_marginal():
    z = torch.arange(20.0).view(10, 2)
    permuted = permute_dimensions(z)
    for j in range(2):
        assert torch.equal(permuted[:, j].sort().values, z[:, j].sort().values)


def test_factor_vae_discriminator_learns_to_spot_dependent_codes():
    torch.manual_seed(0)
    reg = FactorVAE(gamma=1.0, latent_dim=2, hidden_dim=64, num_layers=2)
    optimizer = torch.optim.Adam(reg.discriminator.parameters(), lr=1e-3)
    a = torch.randn(256, 1)
    z = torch.cat([a, a], dim=1)
    first = reg.discriminator_loss(z).item()
    for _ in range(200):
        optimizer.zero_grad()
        loss = reg.discriminator_loss(z)
        loss.backward()
        optimizer.step()
    assert loss.item() < first * 0.7
    # A trained discriminator reports positive TC for the dependent codes.
    assert reg(z, torch.zeros_like(z), z, 0)["tc"] > 0


def test_unknown_regularizer_lists_choices():
    with pytest.raises(ValueError, match="beta_tcvae"):
        build_regularizer("vq", 2, 1.0, 1.0, 1.0, 1)
