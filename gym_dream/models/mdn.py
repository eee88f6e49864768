"""Gaussian mixture density head: log-likelihood and temperature sampling.

A mixture of K diagonal Gaussians over a D-dimensional vector. Temperature ``tau`` follows World
Models: the mixture logits are divided by tau (pi' ~ pi^(1/tau)) and each variance is multiplied by
tau. Sampling the component with the Gumbel-max trick on ``logits + tau * gumbel`` is the same
distribution as softmax(logits / tau) and stays exact as tau -> 0, where it returns the most likely
component's mean.
"""

from __future__ import annotations

import math

import torch
from torch import nn

LOG_SIGMA_MIN = -7.0
LOG_SIGMA_MAX = 2.0
_LOG_2PI = math.log(2.0 * math.pi)


class MixtureHead(nn.Module):
    """Linear map from a hidden vector to (logits, means, log-stddevs) of K Gaussians over D dims."""

    def __init__(self, hidden: int, dim: int, mixtures: int):
        super().__init__()
        self.dim, self.mixtures = dim, mixtures
        self.linear = nn.Linear(hidden, mixtures * (1 + 2 * dim))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out = self.linear(h)
        k, d = self.mixtures, self.dim
        logits = out[..., :k]
        mu = out[..., k : k + k * d].unflatten(-1, (k, d))
        log_sigma = out[..., k + k * d :].unflatten(-1, (k, d)).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        return logits, mu, log_sigma


def mixture_log_prob(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x) under the mixture. Shapes: logits (..., K), mu/log_sigma (..., K, D), x (..., D)."""
    z = (x.unsqueeze(-2) - mu) * torch.exp(-log_sigma)
    comp = -0.5 * (z * z + _LOG_2PI).sum(-1) - log_sigma.sum(-1)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1) + comp, dim=-1)


def mixture_sample(
    logits: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    tau: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw one sample per row at temperature ``tau`` (>= 0; 0 gives the top component's mean)."""
    if tau > 0:
        u = torch.rand(logits.shape, generator=generator, device=logits.device, dtype=logits.dtype)
        gumbel = -torch.log(-torch.log(u.clamp_(1e-20, 1.0 - 1e-7)))
        k = torch.argmax(logits + tau * gumbel, dim=-1)
    else:
        k = torch.argmax(logits, dim=-1)
    idx = k[..., None, None].expand(*k.shape, 1, mu.shape[-1])
    mean = mu.gather(-2, idx).squeeze(-2)
    if tau <= 0:
        return mean
    std = torch.exp(log_sigma.gather(-2, idx).squeeze(-2)) * math.sqrt(tau)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    return mean + std * eps
