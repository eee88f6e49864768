"""The MDN-RNN's training objective: the teacher-forced next-latent NLL of the mixture, the reward MSE and the termination
BCE, for one model or several members.

``MDNRNN.sequence_loss`` (gym_dream/models/mdnrnn.py) is the entry point; its docstring gives the shapes and what each
term means.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from gym_dream.models.mdn import mixture_log_prob

if TYPE_CHECKING:
    from gym_dream.models.mdnrnn import MDNRNN


def _per_step(model: MDNRNN, hs: torch.Tensor, z: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, end_weight: float):
    """Each transition's next-latent log-likelihood, reward squared error and weighted termination BCE (not yet masked),
    and the termination logits; ``hs`` is the memory's output on the latents ``z[..., :-1, :]``."""
    z_next = z[..., 1:, :]
    logits, mu, log_sigma = model.next_latent_distribution(hs, z[..., :-1, :])
    log_p = mixture_log_prob(logits, mu, log_sigma, z_next)
    reward_pred, term_logit = model.heads(z_next, hs)
    mse = (reward_pred - rewards) ** 2
    bce = nn.functional.binary_cross_entropy_with_logits(term_logit, terminated.float(), reduction="none")
    if end_weight != 1.0:
        bce = bce * (1.0 + (end_weight - 1.0) * terminated.float())
    return log_p, mse, bce, term_logit


def sequence_loss(model: MDNRNN, z: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                  reward_weight: float = 1.0, termination_weight: float = 1.0, end_weight: float = 1.0,
                  termination_logit: bool = False) -> dict[str, torch.Tensor]:
    """The loss :meth:`MDNRNN.sequence_loss` documents (shapes, members, ``termination_logit``)."""
    if model.members > 1:
        return members_sequence_loss(model, z, actions, rewards, terminated, mask, reward_weight, termination_weight, end_weight,
                                     termination_logit)
    b, t = rewards.shape
    a = model.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
    hs, _ = model.rnn(torch.cat([z[:, :-1], a], dim=-1))
    log_p, mse, bce, term_logit = _per_step(model, hs, z, rewards, terminated, end_weight)
    nll = -log_p / model.z_dim
    n = mask.sum().clamp_min(1.0)
    out = {
        "nll": (nll * mask).sum() / n,
        "reward_mse": (mse * mask).sum() / n,
        "termination_bce": (bce * mask).sum() / n,
    }
    out["loss"] = out["nll"] + reward_weight * out["reward_mse"] + termination_weight * out["termination_bce"]
    if termination_logit:
        out["termination_logit"] = term_logit.detach()
    return out


def members_sequence_loss(model: MDNRNN, z, actions, rewards, terminated, mask, reward_weight, termination_weight, end_weight,
                          termination_logit=False) -> dict[str, torch.Tensor]:
    """Several members at once: per-member batches (a leading member dimension) or one shared batch (``ensemble_nll``)."""
    m = model.members
    shared = rewards.dim() == 2
    if shared:
        z_in, a_in = z, actions  # the memory broadcasts shared inputs over members
        rewards, terminated, mask = (x.unsqueeze(0).expand(m, *x.shape) for x in (rewards, terminated, mask))
        z_all = z.unsqueeze(0).expand(m, *z.shape)
    else:
        if rewards.shape[0] != m:
            raise ValueError(f"Per-member batches need a leading member dimension of {m}, got rewards of shape {tuple(rewards.shape)}.")
        z_in, a_in, z_all = z, actions, z
    hs = model.memory(z_in, a_in)  # (M, B, T, H)
    log_p, mse, bce, term_logit = _per_step(model, hs, z_all, rewards, terminated, end_weight)  # each (M, B, T)
    nll = -log_p / model.z_dim
    n = mask.sum((1, 2)).clamp_min(1.0)  # (M,)
    per = {k: (v * mask).sum((1, 2)) / n for k, v in (("nll", nll), ("reward_mse", mse), ("termination_bce", bce))}
    out = {k: v.mean() for k, v in per.items()}
    out["loss"] = (per["nll"] + reward_weight * per["reward_mse"] + termination_weight * per["termination_bce"]).sum()
    if shared:
        mix = -(torch.logsumexp(log_p, dim=0) - math.log(m)) / model.z_dim
        out["ensemble_nll"] = (mix * mask[0]).sum() / n[0]
    if termination_logit:
        p_end = torch.sigmoid(term_logit.detach())
        out["termination_logit"] = torch.logit(p_end.mean(0), eps=1e-7) if shared else term_logit.detach()
    return out
