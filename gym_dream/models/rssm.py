"""PlaNet's recurrent state-space model (Hafner et al. 2019), behind the same protocol as the MDN-RNN.

State: ``h`` (B, deter) the deterministic GRU path, ``s`` (B, stoch) the stochastic state.

    h_t = GRU(h_{t-1}, f(s_{t-1}, a_{t-1}))
    prior      p(s_t | h_t)        = N(mu_p, sigma_p)   (what a dream samples, sigma scaled by tau)
    posterior  q(s_t | h_t, o_t)   = N(mu_q, sigma_q)   (what seeing a real frame gives)
    o_t ~ decoder(h_t, s_t), r_t = reward_head(h_t, s_t), p(end) = sigmoid(termination_head(h_t, s_t))

Pixels are reduced to ``bit_depth`` bits, as in PlaNet. An agent sees ``features = [h, s]``. Training
(:meth:`RSSM.sequence_loss`) is the ELBO with free nats, plus optional latent overshooting.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from gym_dream.models.base import State, Transition, WorldModel
from gym_dream.models.encoders import conv_decoder, conv_encoder
from gym_dream.preprocessing import Preprocessing


def _mlp(inp: int, hidden: int, out: int, layers: int = 2) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else hidden, hidden), nn.ELU()]
    mods.append(nn.Linear(hidden if layers else inp, out))
    return nn.Sequential(*mods)


class ConvEncoder(nn.Module):
    """PlaNet's encoder: 64x64x3 -> four stride-2 convs -> flat embedding (1024 for the default widths)."""

    def __init__(self, channels: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        self.net = conv_encoder(channels)
        self.out_dim = channels[-1] * 4

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, 3, 64, 64) in [-0.5, 0.5]
        return self.net(x)


class ConvDecoder(nn.Module):
    """Features -> 64x64x3 image mean in [-0.5, 0.5] space (unbounded)."""

    def __init__(self, feature_dim: int, channels: tuple[int, ...] = (32, 64, 128, 256)):
        super().__init__()
        self.fc = nn.Linear(feature_dim, 4 * channels[-1])
        self.net = conv_decoder(channels, sigmoid=False)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(f)[..., None, None])


class RSSM(WorldModel):
    """Recurrent state-space model.

    Args:
        observation_space, action_space, preprocessing: as for every family.
        deter: GRU units (200 in PlaNet). stoch: stochastic state size (30).
        hidden: units of the MLPs around the cell and of the heads (200).
        min_std: floor of the state standard deviations (0.1).
        bit_depth: bits per colour channel kept from frames (5 in PlaNet; pixels only).
        cnn_channels: conv widths of the encoder/decoder (pixels only).
        obs_std: standard deviation of the observation likelihood (1.0, as in PlaNet).
        bank_size: start states kept (posterior states of encoded real first observations).
    """

    family = "rssm"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        preprocessing: Preprocessing,
        deter: int = 200,
        stoch: int = 30,
        hidden: int = 200,
        min_std: float = 0.1,
        bit_depth: int = 5,
        cnn_channels: tuple[int, ...] = (32, 64, 128, 256),
        bank_size: int = 1,
    ):
        super().__init__(observation_space, action_space, preprocessing)
        self.pixels = preprocessing.kind == "image"
        if self.pixels:
            if tuple(preprocessing.size) != (64, 64):
                raise ValueError(f"RSSM's conv encoder needs 64x64 frames, got size {preprocessing.size}.")
            if not 1 <= bit_depth <= 8:
                raise ValueError(f"bit_depth must be in 1..8, got {bit_depth}.")
            self.encoder: nn.Module = ConvEncoder(tuple(cnn_channels))
            embed = self.encoder.out_dim
            self.obs_dim = 64 * 64 * 3
        else:
            if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
                raise ValueError(f"Vector RSSMs need a 1-D Box observation space, got {observation_space}.")
            self.obs_dim = int(observation_space.shape[0])
            embed = hidden
            self.encoder = _mlp(self.obs_dim, hidden, embed, layers=1)
        self.deter, self.stoch, self.hidden = deter, stoch, hidden
        self.min_std, self.bit_depth, self.cnn_channels = min_std, bit_depth, tuple(cnn_channels)
        self.img_in = nn.Sequential(nn.Linear(stoch + self.action_dim, hidden), nn.ELU())
        self.cell = nn.GRUCell(hidden, deter)
        self.prior_net = _mlp(deter, hidden, 2 * stoch, layers=1)
        self.post_net = _mlp(deter + embed, hidden, 2 * stoch, layers=1)
        f = deter + stoch
        self.decoder = ConvDecoder(f, tuple(cnn_channels)) if self.pixels else _mlp(f, hidden, self.obs_dim)
        self.reward_head = _mlp(f, hidden, 1)
        self.termination_head = _mlp(f, hidden, 1)
        # vector observations are standardised with statistics fitted on the training data
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim if not self.pixels else 1))
        self.register_buffer("obs_std", torch.ones(self.obs_dim if not self.pixels else 1))
        self.register_buffer("start_h", torch.zeros(bank_size, deter))
        self.register_buffer("start_s", torch.zeros(bank_size, stoch))

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "deter": self.deter, "stoch": self.stoch, "hidden": self.hidden, "min_std": self.min_std,
            "bit_depth": self.bit_depth, "cnn_channels": list(self.cnn_channels), "bank_size": int(self.start_h.shape[0]),
        }

    @property
    def feature_dim(self) -> int:
        return self.deter + self.stoch

    # -- observations ----------------------------------------------------------------------------
    def preprocess(self, obs: torch.Tensor, generator: torch.Generator | None = None, dequantize: bool = False) -> torch.Tensor:
        """Model-input observations -> network input: frames (B, 3, 64, 64) reduced to ``bit_depth`` bits
        in [-0.5, 0.5] (``dequantize`` adds PlaNet's uniform noise, for training), vectors standardised."""
        if not self.pixels:
            return (obs.float() - self.obs_mean) / self.obs_std
        x = obs.permute(0, 3, 1, 2).float()
        bins = 2 ** self.bit_depth
        x = torch.floor(x / 2 ** (8 - self.bit_depth)) / bins - 0.5
        if dequantize:
            x = x + torch.rand(x.shape, generator=generator, device=x.device) / bins
        return x

    def postprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder output -> model-input space: uint8 frames (B, 64, 64, 3) or float vectors."""
        if not self.pixels:
            return x * self.obs_std + self.obs_mean
        return ((x + 0.5) * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

    @torch.no_grad()
    def fit_normalizer(self, observations: torch.Tensor) -> None:
        if not self.pixels:
            self.obs_mean.copy_(observations.float().mean(0))
            self.obs_std.copy_(observations.float().std(0).clamp_min(1e-6))

    def embed(self, obs: torch.Tensor, generator: torch.Generator | None = None, dequantize: bool = False) -> torch.Tensor:
        return self.encoder(self.preprocess(obs, generator, dequantize))

    # -- the cell ------------------------------------------------------------------------------------
    def _gaussian(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = out.chunk(2, dim=-1)
        return mean, F.softplus(std) + self.min_std

    def step_deter(self, h: torch.Tensor, s: torch.Tensor, action_enc: torch.Tensor) -> torch.Tensor:
        return self.cell(self.img_in(torch.cat([s, action_enc], dim=-1)), h)

    def prior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.post_net(torch.cat([h, embed], dim=-1)))

    def heads(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.reward_head(feat).squeeze(-1), self.termination_head(feat).squeeze(-1)

    # -- the protocol ----------------------------------------------------------------------------
    def initial_state(self, batch: int, generator: torch.Generator | None = None, obs: torch.Tensor | None = None) -> State:
        device = self.start_h.device
        if obs is not None:
            e = self.embed(obs.to(device))
            h = torch.zeros(e.shape[0], self.deter, device=device)
            return {"h": h, "s": self.posterior(h, e)[0]}
        idx = torch.randint(self.start_h.shape[0], (batch,), generator=generator, device=device)
        return {"h": self.start_h[idx].clone(), "s": self.start_s[idx].clone()}

    def observe(self, state: State, action: torch.Tensor, obs: torch.Tensor) -> State:
        h = self.step_deter(state["h"], state["s"], self.encode_action(action))
        return {"h": h, "s": self.posterior(h, self.embed(obs.to(h.device)))[0]}

    def imagine(self, state: State, action: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> Transition:
        h = self.step_deter(state["h"], state["s"], self.encode_action(action))
        mean, std = self.prior(h)
        s = mean + tau * std * torch.randn(mean.shape, generator=generator, device=mean.device)
        reward, logit = self.heads(torch.cat([h, s], dim=-1))
        p_end = torch.sigmoid(logit)
        return Transition({"h": h, "s": s}, reward, p_end > 0.5, p_end)

    def features(self, state: State) -> torch.Tensor:
        return torch.cat([state["h"], state["s"]], dim=-1)

    def decode(self, state: State) -> torch.Tensor:
        return self.postprocess(self.decoder(self.features(state)))

    # -- training ----------------------------------------------------------------------------------
    def sequence_loss(
        self,
        obs: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        mask: torch.Tensor,
        free_nats: float = 3.0,
        overshooting: int = 0,
        overshooting_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """PlaNet's ELBO on a batch of sequences (and latent overshooting when ``overshooting`` > 1).

        Shapes: obs (B, T+1, ...) model-input observations o_0..o_T; actions (B, T) or (B, T, A);
        rewards, terminated, mask (B, T): transition t goes from o_t with a_t to o_{t+1}. The
        posterior of o_0 starts from an empty memory; reward and termination are predicted from the
        state of o_{t+1}. KL terms are summed over state dimensions and clipped below at
        ``free_nats``. With ``overshooting = D``, the prior is also rolled open-loop from every
        posterior state for 2..D steps and its KL to the (fixed) posterior added, scaled by
        ``overshooting_scale / D`` (PlaNet's latent overshooting).
        """
        b, t = rewards.shape
        a = self.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
        flat_obs = obs.reshape(b * (t + 1), *obs.shape[2:])
        target = self.preprocess(flat_obs, generator, dequantize=self.pixels)
        embeds = self.encoder(target).reshape(b, t + 1, -1)
        h = torch.zeros(b, self.deter, device=obs.device)
        hs, ss, prior_m, prior_s, post_m, post_s = [], [], [], [], [], []
        s = None
        for i in range(t + 1):
            if i > 0:
                h = self.step_deter(h, s, a[:, i - 1])
            pm, ps = self.prior(h)
            qm, qs = self.posterior(h, embeds[:, i])
            s = qm + qs * torch.randn(qm.shape, generator=generator, device=qm.device)
            hs.append(h); ss.append(s); prior_m.append(pm); prior_s.append(ps); post_m.append(qm); post_s.append(qs)
        H, S = torch.stack(hs, 1), torch.stack(ss, 1)  # (B, T+1, .)
        feat = torch.cat([H, S], dim=-1)
        recon = self.decoder(feat.reshape(b * (t + 1), -1))
        # observation mask: o_0 always, o_{t+1} where transition t is real
        obs_mask = torch.cat([torch.ones(b, 1, device=mask.device), mask], dim=1)
        rec = ((recon - target) ** 2).reshape(b, t + 1, -1).sum(-1) / 2.0
        reward_pred, logit = self.heads(feat[:, 1:])
        kl = _kl(torch.stack(post_m, 1), torch.stack(post_s, 1), torch.stack(prior_m, 1), torch.stack(prior_s, 1))  # (B, T+1)
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
            qm_all, qs_all = torch.stack(post_m, 1).detach(), torch.stack(post_s, 1).detach()
            over = self._overshooting_kl(H, S, a, qm_all, qs_all, obs_mask, overshooting, free_nats, generator)
            out.update({f"overshooting_kl_{d}": v for d, v in over.items()})
            loss = loss + overshooting_scale / overshooting * sum(torch.clamp(v, min=free_nats) for v in over.values())
        out["loss"] = loss
        return out

    def _overshooting_kl(self, H, S, a, qm, qs, obs_mask, depth, free_nats, generator) -> dict[int, torch.Tensor]:
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
            hf = self.step_deter(h.reshape(b * steps, -1), s.reshape(b * steps, -1), act.reshape(b * steps, -1))
            pm, ps = self.prior(hf)
            s = (pm + ps * torch.randn(pm.shape, generator=generator, device=pm.device)).reshape(b, steps, -1)
            h = hf.reshape(b, steps, -1)
            valid = valid * obs_mask[:, d : d + steps]
            if d >= 2:
                kl = _kl(qm[:, d : d + steps], qs[:, d : d + steps], pm.reshape(b, steps, -1), ps.reshape(b, steps, -1))
                out[d] = (kl * valid).sum() / valid.sum().clamp_min(1.0)
        return out


def _kl(m1: torch.Tensor, s1: torch.Tensor, m2: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
    """KL(N(m1, s1) || N(m2, s2)) summed over the last dimension."""
    return (torch.log(s2 / s1) + (s1 ** 2 + (m1 - m2) ** 2) / (2 * s2 ** 2) - 0.5).sum(-1)
