"""The dreamer family's training objective: DreamerV3's world-model loss with KL balancing and free bits.

``Dreamer.sequence_loss`` (gym_dream/models/dreamer.py) is the entry point; its docstring gives the shapes and the
terms. The weights and the free bits are DreamerV3's and the same for every env (one set of hyper-parameters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from gym_dream.models.dreamer import Dreamer

#: DreamerV3's loss weights (prediction terms 1) and free bits (nats, per step, of the KL summed over the latents)
DYN_SCALE, REP_SCALE, FREE_BITS = 0.5, 0.1, 1.0


def categorical_kl(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    """KL(p || q) of categoricals given as log-probabilities (..., S, C), summed over the S variables -> (...)."""
    return (logp.exp() * (logp - logq)).sum((-2, -1))


def kl_balance(post_logp: torch.Tensor, prior_logp: torch.Tensor, free_bits: float = FREE_BITS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DreamerV3's two KL terms (..., S, C) -> (dyn, rep, kl), each (...):

    * ``dyn = max(free_bits, KL(sg(q) || p))``: its gradient reaches only the prior (it learns to predict the posterior);
    * ``rep = max(free_bits, KL(q || sg(p)))``: its gradient reaches only the posterior (it stays predictable);
    * ``kl``: the unclipped KL(q || p), for reporting.

    Below ``free_bits`` a term is constant, so neither distribution is pushed once they agree that well.
    """
    dyn = categorical_kl(post_logp.detach(), prior_logp)
    rep = categorical_kl(post_logp, prior_logp.detach())
    return dyn.clamp_min(free_bits), rep.clamp_min(free_bits), dyn.detach()


def straight_through(logp: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """A one-hot sample of each categorical (..., S, C) whose gradient is that of its probabilities (straight-through)."""
    from gym_dream.models.dreamer import sample_onehot

    probs = logp.exp()
    return sample_onehot(logp.detach(), generator) + probs - probs.detach()


def _rollout(model: Dreamer, embeds: torch.Tensor, a: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, ...]:
    """The posterior filter over a chunk from an empty memory: (H (B, T+1, deter), Z (B, T+1, S*C), posterior log-probs)."""
    b, t1 = embeds.shape[:2]
    h = embeds.new_zeros(b, model.deter)
    z = None
    hs, zs, logps = [], [], []
    for i in range(t1):
        if i > 0:
            h = model.step_deter(h, z, a[:, i - 1])
        logp = model.posterior_logp(h, embeds[:, i])
        z = straight_through(logp, generator).flatten(1)
        hs.append(h); zs.append(z); logps.append(logp)
    return torch.stack(hs, 1), torch.stack(zs, 1), torch.stack(logps, 1)


def sequence_loss(model: Dreamer, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
                  mask: torch.Tensor, generator: torch.Generator | None = None, outputs: bool = False) -> dict[str, torch.Tensor]:
    """The loss :meth:`Dreamer.sequence_loss` documents."""
    from gym_dream.models.dreamer import symlog, twohot

    b, t = rewards.shape
    a = model.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
    flat_obs = obs.reshape(b * (t + 1), *obs.shape[2:])
    embeds = model.embed(flat_obs).reshape(b, t + 1, -1)
    H, Z, post_logp = _rollout(model, embeds, a, generator)
    prior_logp = model.prior_logp(H)
    feat = torch.cat([H, Z], dim=-1)  # (B, T+1, F)

    obs_mask = torch.cat([torch.ones(b, 1, device=mask.device), mask.float()], dim=1)  # o_0 always, o_{t+1} where real
    mask = mask.float()
    n_obs, n = obs_mask.sum().clamp_min(1.0), mask.sum().clamp_min(1.0)
    recon = model.decoder(feat.reshape(b * (t + 1), -1))
    rec = ((recon - model.reconstruction_target(flat_obs)) ** 2).reshape(b, t + 1, -1).sum(-1)

    next_feat = feat[:, 1:]
    reward_logits = model.reward_head(next_feat)  # (B, T, K)
    target = twohot(symlog(rewards.float()), model.reward_bins)
    reward_ce = -(target * torch.log_softmax(reward_logits, -1)).sum(-1)
    cont_logit = model.continue_logit(next_feat)
    cont_bce = F.binary_cross_entropy_with_logits(cont_logit, 1.0 - terminated.float(), reduction="none")
    dyn, rep, kl = kl_balance(post_logp, prior_logp)

    def over_steps(x: torch.Tensor) -> torch.Tensor:
        return (x * mask).sum() / n

    def over_obs(x: torch.Tensor) -> torch.Tensor:
        return (x * obs_mask).sum() / n_obs

    out = {"reconstruction": over_obs(rec), "reward_loss": over_steps(reward_ce), "continue_loss": over_steps(cont_bce),
           "dyn": over_obs(dyn), "rep": over_obs(rep)}
    out["loss"] = out["reconstruction"] + out["reward_loss"] + out["continue_loss"] + DYN_SCALE * out["dyn"] + REP_SCALE * out["rep"]
    with torch.no_grad():
        reward_pred = model.reward(next_feat)
        out["kl"] = over_obs(kl)
        out["reward_mse"] = over_steps((reward_pred - rewards.float()) ** 2)
        out["prior_entropy"] = over_obs(-(prior_logp.exp() * prior_logp).sum((-2, -1)))
        out["posterior_entropy"] = over_obs(-(post_logp.exp() * post_logp).sum((-2, -1)))
        if outputs:
            out["reward_pred"] = reward_pred
            out["termination_prob"] = 1.0 - torch.sigmoid(cont_logit)
    return out
