import math

import pytest
import torch

from gym_dream.models.mdn import mixture_log_prob, mixture_sample


def _mixture():
    logits = torch.tensor([[0.2, 1.0, -0.5]])
    mu = torch.tensor([[[-2.0, 1.0], [0.5, -1.0], [3.0, 0.0]]])
    log_sigma = torch.log(torch.tensor([[[0.5, 0.3], [0.8, 0.2], [0.4, 1.0]]]))
    return logits, mu, log_sigma


def _expand(t, n):
    return t.expand(n, *t.shape[1:]).contiguous()


def test_sampling_matches_mixture_moments_at_tau_1():
    logits, mu, log_sigma = _mixture()
    n = 400_000
    g = torch.Generator().manual_seed(0)
    x = mixture_sample(_expand(logits, n), _expand(mu, n), _expand(log_sigma, n), 1.0, g)
    pi = torch.softmax(logits[0], -1)[:, None]
    mean = (pi * mu[0]).sum(0)
    var = (pi * (torch.exp(2 * log_sigma[0]) + mu[0] ** 2)).sum(0) - mean ** 2
    assert torch.allclose(x.mean(0), mean, atol=0.02)
    assert torch.allclose(x.var(0), var, rtol=0.02)


def test_temperature_sharpens_component_choice_and_scales_variance():
    logits, mu, log_sigma = _mixture()
    n, tau = 200_000, 0.5
    g = torch.Generator().manual_seed(1)
    # well separated unit components: identify the chosen component from the sample
    mu_sep = torch.tensor([[[-100.0, 0.0], [0.0, 0.0], [100.0, 0.0]]])
    x = mixture_sample(_expand(logits, n), _expand(mu_sep, n), _expand(torch.zeros_like(log_sigma), n), tau, g)
    k = torch.bucketize(x[:, 0], torch.tensor([-50.0, 50.0]))
    freq = torch.bincount(k, minlength=3).float() / n
    assert torch.allclose(freq, torch.softmax(logits[0] / tau, -1), atol=0.005)
    # within a component, variance is sigma^2 * tau
    assert torch.allclose(x[k == 1, 1].var(), torch.tensor(tau), rtol=0.03)


@pytest.mark.parametrize("tau", [0.0, 1e-8, 1e-4])
def test_tau_to_zero_gives_top_component_mean(tau):
    logits, mu, log_sigma = _mixture()
    g = torch.Generator().manual_seed(2)
    x = mixture_sample(_expand(logits, 1000), _expand(mu, 1000), _expand(log_sigma, 1000), tau, g)
    assert torch.allclose(x, mu[0, 1].expand(1000, 2), atol=1e-6 + 5 * math.sqrt(tau))


def test_log_prob_matches_torch_distributions():
    logits, mu, log_sigma = _mixture()
    mix = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits[0]),
        torch.distributions.Independent(torch.distributions.Normal(mu[0], log_sigma[0].exp()), 1),
    )
    x = torch.randn(50, 2)
    ours = mixture_log_prob(_expand(logits, 50), _expand(mu, 50), _expand(log_sigma, 50), x)
    assert torch.allclose(ours, mix.log_prob(x), atol=1e-5)
    assert math.isfinite(float(ours.sum()))
