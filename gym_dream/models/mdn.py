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

from gym_dream.models.base import tau_column
from gym_dream.models.members import member_linear

LOG_SIGMA_MIN = -7.0
LOG_SIGMA_MAX = 2.0
_LOG_2PI = math.log(2.0 * math.pi)


class MixtureHead(nn.Module):
    """Linear map from a hidden vector to (logits, means, log-stddevs) of K Gaussians over D dims.

    With ``members`` > 1 the map is one per member and inputs carry the member dimension first.
    """

    def __init__(self, hidden: int, dim: int, mixtures: int, members: int = 1):
        super().__init__()
        self.dim, self.mixtures = dim, mixtures
        self.linear = member_linear(members, hidden, mixtures * (1 + 2 * dim))

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


def mixture_mean(logits: torch.Tensor, mu: torch.Tensor) -> torch.Tensor:
    """E[x] of the mixture as trained (tau = 1): sum_k softmax(logits)_k mu_k -> (..., D)."""
    return (torch.softmax(logits, dim=-1).unsqueeze(-1) * mu).sum(-2)


def mixture_sample(
    logits: torch.Tensor,
    mu: torch.Tensor,
    log_sigma: torch.Tensor,
    tau: float | torch.Tensor,
    generator: torch.Generator | None = None,
    common_dims: int = 0,
    noise: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Draw one sample per row at temperature ``tau`` (>= 0; 0 gives the top component's mean), or per row at its own
    temperature: a (B,) tensor of them (each > 0) for logits of shape (..., B, K).

    ``common_dims``: the first that many dimensions share their random numbers (members drawing
    with common random numbers: the noise has the shape of one member's parameters).
    ``noise``: ``(uniform, normal)`` drawn by the caller, of the shapes this draws them in (uniforms on [0, 1) like
    ``logits`` less the first ``common_dims`` dimensions, standard normals like one component's mean), used instead of
    ``generator``: the same arithmetic on the same numbers (an exported dream's step, trainers/export/onnx.py).
    """
    if isinstance(tau, torch.Tensor):
        positive, scale = True, tau_column(tau.to(logits.dtype))
        root = scale.sqrt()
    else:
        positive, scale, root = tau > 0, tau, math.sqrt(max(tau, 0.0))
    if positive:
        if noise is None:
            u = torch.rand(logits.shape[common_dims:], generator=generator, device=logits.device, dtype=logits.dtype)
        else:
            u = noise[0]
        gumbel = -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
        k = torch.argmax(logits + scale * gumbel, dim=-1)
    else:
        k = torch.argmax(logits, dim=-1)
    idx = k[..., None, None].expand(*k.shape, 1, mu.shape[-1])
    mean = mu.gather(-2, idx).squeeze(-2)
    if not positive:
        return mean
    std = torch.exp(log_sigma.gather(-2, idx).squeeze(-2)) * root
    if noise is None:
        eps = torch.randn(mean.shape[common_dims:], generator=generator, device=mean.device, dtype=mean.dtype)
    else:
        eps = noise[1]
    return mean + std * eps
