"""The RSSM's training objective: PlaNet's ELBO with free nats, optional latent overshooting, and the members' losses.

``RSSM.sequence_loss`` (gym_dream/models/rssm.py) is the entry point; its docstring gives the shapes and what each
term means. Two paths compute the single-member loss: the fast one (what does not depend on the recurrence batched
outside the loop) and the reference one (as first written, the one the fast path is tested against); both end in
:func:`_elbo`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

if TYPE_CHECKING:
    from gym_dream.models.rssm import RSSM


def sequence_loss(model: RSSM, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor, mask: torch.Tensor,
                  free_nats: float = 3.0, overshooting: int = 0, overshooting_scale: float = 1.0, generator: torch.Generator | None = None,
                  reference: bool = False) -> dict[str, torch.Tensor]:
    """The loss :meth:`RSSM.sequence_loss` documents (shapes, members, ``reference``)."""
    if model.members > 1:
        return members_sequence_loss(model, obs, actions, rewards, terminated, mask, free_nats, overshooting, generator)
    if reference:
        return reference_sequence_loss(model, obs, actions, rewards, terminated, mask, free_nats, overshooting, overshooting_scale, generator)
    b, t = rewards.shape
    a = model.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
    flat_obs = obs.reshape(b * (t + 1), *obs.shape[2:])
    target = model.preprocess(flat_obs, generator, dequantize=model.pixels)
    embeds = model.encoder(target).reshape(b, t + 1, -1)
    # what does not depend on the recurrence is computed for every step at once, outside the loop: the
    # posterior's first layer on the embeddings and the input layer on the actions (each a split of one
    # linear map over a concatenation), the prior of every h after it
    post_in, post_rest = model.post_net[0], model.post_net[1:]
    e_part = F.linear(embeds, post_in.weight[:, model.deter:], post_in.bias)  # (B, T+1, hidden)
    w_h = post_in.weight[:, : model.deter]
    img = model.img_in[0]
    a_part = F.linear(a, img.weight[:, model.stoch:], img.bias)  # (B, T, hidden)
    w_s = img.weight[:, : model.stoch]
    noise = [torch.randn(b, model.stoch, generator=generator, device=obs.device) for _ in range(t + 1)]
    h = torch.zeros(b, model.deter, device=obs.device)
    hs, ss, post_m, post_s = [], [], [], []
    for i in range(t + 1):
        if i > 0:
            h = model.cell(model.img_in[1](torch.addmm(a_part[:, i - 1], s, w_s.t())), h)
        qm, qs = model._gaussian(post_rest(torch.addmm(e_part[:, i], h, w_h.t())))
        s = qm + qs * noise[i]
        hs.append(h); ss.append(s); post_m.append(qm); post_s.append(qs)
    H, S = torch.stack(hs, 1), torch.stack(ss, 1)  # (B, T+1, .)
    pm_all, ps_all = model.prior(H)
    recon = model.decoder(torch.cat([H, S], dim=-1).reshape(b * (t + 1), -1))
    return _elbo(model, H, S, a, recon, target, torch.stack(post_m, 1), torch.stack(post_s, 1), pm_all, ps_all, rewards, terminated, mask,
                 free_nats, overshooting, overshooting_scale, generator)


def reference_sequence_loss(model, obs, actions, rewards, terminated, mask, free_nats, overshooting, overshooting_scale, generator) -> dict[str, torch.Tensor]:
    """The single-member loss as first written (one step of everything per loop iteration, the reference
    decoder): what :func:`sequence_loss` is tested against; the same random draws in the same order."""
    b, t = rewards.shape
    a = model.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
    flat_obs = obs.reshape(b * (t + 1), *obs.shape[2:])
    target = model.preprocess(flat_obs, generator, dequantize=model.pixels)
    embeds = model.encoder(target).reshape(b, t + 1, -1)
    h = torch.zeros(b, model.deter, device=obs.device)
    hs, ss, prior_m, prior_s, post_m, post_s = [], [], [], [], [], []
    s = None
    for i in range(t + 1):
        if i > 0:
            h = model.step_deter(h, s, a[:, i - 1])
        pm, ps = model.prior(h)
        qm, qs = model.posterior(h, embeds[:, i])
        s = qm + qs * torch.randn(qm.shape, generator=generator, device=qm.device)
        hs.append(h); ss.append(s); prior_m.append(pm); prior_s.append(ps); post_m.append(qm); post_s.append(qs)
    H, S = torch.stack(hs, 1), torch.stack(ss, 1)  # (B, T+1, .)
    flat_feat = torch.cat([H, S], dim=-1).reshape(b * (t + 1), -1)
    recon = model.decoder.reference_forward(flat_feat) if model.pixels else model.decoder(flat_feat)
    return _elbo(model, H, S, a, recon, target, torch.stack(post_m, 1), torch.stack(post_s, 1), torch.stack(prior_m, 1), torch.stack(prior_s, 1),
                 rewards, terminated, mask, free_nats, overshooting, overshooting_scale, generator)

def _elbo(model, H, S, a, recon, target, qm_all, qs_all, pm_all, ps_all, rewards, terminated, mask, free_nats, overshooting,
          overshooting_scale, generator) -> dict[str, torch.Tensor]:
    """The ELBO's terms from a rolled-out chunk (both the fast and the reference loss end here): reconstruction,
    reward and termination losses, the posterior-to-prior KL with free nats, and latent overshooting."""
    b, t = rewards.shape
    # observation mask: o_0 always, o_{t+1} where transition t is real
    obs_mask = torch.cat([torch.ones(b, 1, device=mask.device), mask], dim=1)
    rec = ((recon - target) ** 2).reshape(b, t + 1, -1).sum(-1) / 2.0
    reward_pred, logit = model.heads(torch.cat([H, S], dim=-1)[:, 1:])
    kl = kl_normal(qm_all, qs_all, pm_all, ps_all)  # (B, T+1)
    n_obs, n = obs_mask.sum().clamp_min(1.0), mask.sum().clamp_min(1.0)
    out = {
        "reconstruction": (rec * obs_mask).sum() / n_obs,
        "reward_mse": (((reward_pred - rewards) ** 2) * mask).sum() / n,
        "termination_bce": (F.binary_cross_entropy_with_logits(logit, terminated.float(), reduction="none") * mask).sum() / n,
        "kl": (kl * obs_mask).sum() / n_obs,
    }
    kl_loss = (torch.clamp(kl, min=free_nats) * obs_mask).sum() / n_obs
    loss = out["reconstruction"] + out["reward_mse"] + out["termination_bce"] + kl_loss
    if overshooting > 1:
        over = _overshooting_kl(model, H, S, a, qm_all.detach(), qs_all.detach(), obs_mask, overshooting, free_nats, generator)
        out.update({f"overshooting_kl_{d}": v for d, v in over.items()})
        loss = loss + overshooting_scale / overshooting * sum(torch.clamp(v, min=free_nats) for v in over.values())
    out["loss"] = loss
    return out

def members_sequence_loss(model, obs, actions, rewards, terminated, mask, free_nats, overshooting, generator) -> dict[str, torch.Tensor]:
    if overshooting > 1:
        raise ValueError(f"Latent overshooting is implemented for single-member RSSMs; this one has members={model.members}. "
                         "Use overshooting=0 with members > 1.")
    m = model.members
    b, t = rewards.shape
    a = model.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
    flat_obs = obs.reshape(b * (t + 1), *obs.shape[2:])
    target = model.preprocess(flat_obs, generator, dequantize=model.pixels)
    embeds = model.encoder(target).reshape(b, t + 1, -1)
    h = torch.zeros(m, b, model.deter, device=obs.device)
    hs, ss, prior_m, prior_s, post_m, post_s = [], [], [], [], [], []
    s = None
    for i in range(t + 1):
        if i > 0:
            # member 0 reads the posterior sample (as a single RSSM); the others its detached copy
            s_in = torch.cat([s.unsqueeze(0), s.detach().unsqueeze(0).expand(m - 1, *s.shape)], dim=0)
            h = model.step_deter(h, s_in, a[:, i - 1])
        pm, ps = model.prior(h)  # (M, B, stoch)
        qm, qs = model.posterior(h[0], embeds[:, i])
        s = qm + qs * torch.randn(qm.shape, generator=generator, device=qm.device)
        hs.append(h); ss.append(s); prior_m.append(pm); prior_s.append(ps); post_m.append(qm); post_s.append(qs)
    H, S = torch.stack(hs, 2), torch.stack(ss, 1)  # (M, B, T+1, deter), (B, T+1, stoch)
    recon = model.decoder(torch.cat([H[0], S], dim=-1).reshape(b * (t + 1), -1))
    obs_mask = torch.cat([torch.ones(b, 1, device=mask.device), mask], dim=1)
    rec = ((recon - target) ** 2).reshape(b, t + 1, -1).sum(-1) / 2.0
    S_in = torch.cat([S.unsqueeze(0), S.detach().unsqueeze(0).expand(m - 1, *S.shape)], dim=0)
    reward_pred, logit = model.heads(torch.cat([H[:, :, 1:], S_in[:, :, 1:]], dim=-1))  # (M, B, T)
    qm_all, qs_all = torch.stack(post_m, 1), torch.stack(post_s, 1)
    q_mean = torch.cat([qm_all.unsqueeze(0), qm_all.detach().unsqueeze(0).expand(m - 1, *qm_all.shape)], dim=0)
    q_std = torch.cat([qs_all.unsqueeze(0), qs_all.detach().unsqueeze(0).expand(m - 1, *qs_all.shape)], dim=0)
    kl = kl_normal(q_mean, q_std, torch.stack(prior_m, 2), torch.stack(prior_s, 2))  # (M, B, T+1)
    # row weights: 1 for member 0, a bootstrap resample of the batch's sequences for each other member
    w = torch.ones(m, b, device=obs.device)
    draws = torch.randint(b, (m - 1, b), generator=generator, device=obs.device)
    w[1:] = torch.zeros(m - 1, b, device=obs.device).scatter_add_(1, draws, torch.ones(m - 1, b, device=obs.device))
    wo, wt = w[:, :, None] * obs_mask, w[:, :, None] * mask  # (M, B, T+1), (M, B, T)
    n_obs, n = wo.sum((1, 2)).clamp_min(1.0), wt.sum((1, 2)).clamp_min(1.0)  # (M,)
    reward_mse = (((reward_pred - rewards) ** 2) * wt).sum((1, 2)) / n
    bce = (F.binary_cross_entropy_with_logits(logit, terminated.float().expand_as(logit), reduction="none") * wt).sum((1, 2)) / n
    kl_loss = (torch.clamp(kl, min=free_nats) * wo).sum((1, 2)) / n_obs
    reconstruction = (rec * obs_mask).sum() / obs_mask.sum().clamp_min(1.0)
    out = {
        "reconstruction": reconstruction,
        "reward_mse": reward_mse[0],
        "termination_bce": bce[0],
        "kl": (kl[0] * obs_mask).sum() / obs_mask.sum().clamp_min(1.0),
        "members_kl": ((kl * wo).sum((1, 2)) / n_obs).mean(),
    }
    out["loss"] = reconstruction + (reward_mse + bce + kl_loss).sum()
    return out

def _overshooting_kl(model, H, S, a, qm, qs, obs_mask, depth, free_nats, generator) -> dict[int, torch.Tensor]:
    """Mean KL(posterior_{t+d} || prior rolled d steps open-loop from posterior_t), for d = 2..depth."""
    b, t1 = H.shape[:2]
    out: dict[int, torch.Tensor] = {}
    h, s = H[:, :-1], S[:, :-1]  # start at every t (with a next step)
    valid = obs_mask[:, :-1]
    for d in range(1, depth + 1):
        steps = t1 - d  # starts t = 0..t1-1-d have a target t+d
        if steps <= 0:
            break
        h, s, valid = h[:, :steps], s[:, :steps], valid[:, :steps]
        act = a[:, d - 1 : d - 1 + steps]
        hf = model.step_deter(h.reshape(b * steps, -1), s.reshape(b * steps, -1), act.reshape(b * steps, -1))
        pm, ps = model.prior(hf)
        s = (pm + ps * torch.randn(pm.shape, generator=generator, device=pm.device)).reshape(b, steps, -1)
        h = hf.reshape(b, steps, -1)
        valid = valid * obs_mask[:, d : d + steps]
        if d >= 2:
            kl = kl_normal(qm[:, d : d + steps], qs[:, d : d + steps], pm.reshape(b, steps, -1), ps.reshape(b, steps, -1))
            out[d] = (kl * valid).sum() / valid.sum().clamp_min(1.0)
    return out


def kl_normal(m1: torch.Tensor, s1: torch.Tensor, m2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1, s1) || N(m2, s2)) summed over the last dimension."""
    return (torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5).sum(-1)
