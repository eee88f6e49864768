"""PlaNet's recurrent state-space model (Hafner et al. 2019), behind the same protocol as the MDN-RNN.

State: ``h`` (B, deter) the deterministic GRU path, ``s`` (B, stoch) the stochastic state.

    h_t = GRU(h_{t-1}, f(s_{t-1}, a_{t-1}))
    prior      p(s_t | h_t)        = N(mu_p, sigma_p)   (what a dream samples, sigma scaled by tau)
    posterior  q(s_t | h_t, o_t)   = N(mu_q, sigma_q)   (what seeing a real frame gives)
    o_t ~ decoder(h_t, s_t), r_t = reward_head(h_t, s_t), p(end) = sigmoid(termination_head(h_t, s_t))

Pixels are reduced to ``bit_depth`` bits, as in PlaNet. An agent sees ``features = [h, s]``. Training
(:meth:`RSSM.sequence_loss`, computed in :mod:`gym_dream.models.rssm_loss`) is the ELBO with free nats, plus optional latent overshooting.

Members (``members`` = M > 1): M independently initialised transition cores (the input layer, the GRU
and the prior) with their own reward and termination heads, batched in one tensor dimension
(:mod:`gym_dream.models.members`); the encoder, the posterior and the decoder are shared. The state
keeps one ``s`` (B, stoch) and each member's ``h`` (B, M, deter): every member steps from the same
``s_t`` and action, the chosen member (or the members' mean) samples ``s_{t+1}`` from its prior and all
members read it. Member 0 is the model a single-member RSSM would be (its ``h`` feeds the posterior
and the decoder, and ``features = [h of member 0, s]``); members 1..M-1 learn to predict the same
posterior sequence (KL to the detached posterior, reward and termination, each on a bootstrap
resample of the batch's sequences). The disagreement of a step is

    disagreement = mean over the stoch dims of std over members of the prior mean of s_{t+1}

(std with ddof 0, in units of ``s``); the reward disagreement is the members' std of the reward each
predicts for the sampled ``s_{t+1}``. A single-member RSSM has the parameters, state and floating-point
results of the original model and a disagreement of exactly 0.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from gym_dream.models import rssm_loss
from gym_dream.models.base import State, Transition, WorldModel, linear_bfloat16, mlp_bfloat16, tau_column
from gym_dream.models.encoders import conv_decoder, conv_encoder, fit_standardizer, standardize, unstandardize
from gym_dream.models.members import MemberGRUCell, check_members, member_linear, member_mlp, member_spread, pick, resolve_member
from gym_dream.preprocessing import Preprocessing


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
        """The same function as :meth:`reference_forward`, faster on CPU: the first transposed conv reads a
        1x1 input, so it is one affine map (a matmul, where torch's CPU transposed conv takes a slow path),
        and the rest runs in channels_last, the layout oneDNN's convolutions are fast in."""
        lead = f.shape[:-1]
        x = self.fc(f.reshape(-1, f.shape[-1]))
        first = self.net[0]
        w = first.weight  # (in, out, k, k); on a 1x1 input (no padding): out[n, o, i, j] = sum_c x[n, c] w[c, o, i, j] + b[o]
        k = w.shape[-1]
        y = torch.addmm(first.bias.repeat_interleave(k * k), x, w.reshape(w.shape[0], -1)).reshape(-1, w.shape[1], k, k)
        y = self.net[1:](y.contiguous(memory_format=torch.channels_last))
        return y.contiguous().reshape(*lead, *y.shape[1:])

    def reference_forward(self, f: torch.Tensor) -> torch.Tensor:
        """The decoder as first written (the reference :meth:`forward` is tested against)."""
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
        bank_size: start states kept (posterior states of encoded real first observations).
        members: transition cores (input layer + GRU + prior + reward/termination heads) batched in one
            tensor dimension (1: a single model).
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
        members: int = 1,
    ):
        super().__init__(observation_space, action_space, preprocessing)
        self.members = m = check_members(members)
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
            self.encoder = member_mlp(1, self.obs_dim, hidden, embed, layers=1)
        self.deter, self.stoch, self.hidden = deter, stoch, hidden
        self.min_std, self.bit_depth, self.cnn_channels = min_std, bit_depth, tuple(cnn_channels)
        self.img_in = nn.Sequential(member_linear(m, stoch + self.action_dim, hidden), nn.ELU())
        self.cell = nn.GRUCell(hidden, deter) if m == 1 else MemberGRUCell(m, hidden, deter)
        self.prior_net = member_mlp(m, deter, hidden, 2 * stoch, layers=1)
        self.post_net = member_mlp(1, deter + embed, hidden, 2 * stoch, layers=1)
        f = deter + stoch
        self.decoder = ConvDecoder(f, tuple(cnn_channels)) if self.pixels else member_mlp(1, f, hidden, self.obs_dim, layers=2)
        self.reward_head = member_mlp(m, f, hidden, 1, layers=2)
        self.termination_head = member_mlp(m, f, hidden, 1, layers=2)
        # vector observations are standardised with statistics fitted on the training data
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim if not self.pixels else 1))
        self.register_buffer("obs_std", torch.ones(self.obs_dim if not self.pixels else 1))
        self.register_buffer("start_h", torch.zeros(bank_size, deter) if m == 1 else torch.zeros(bank_size, m, deter))
        self.register_buffer("start_s", torch.zeros(bank_size, stoch))

    def hyperparameters(self) -> dict[str, Any]:
        params = {
            "deter": self.deter, "stoch": self.stoch, "hidden": self.hidden, "min_std": self.min_std,
            "bit_depth": self.bit_depth, "cnn_channels": list(self.cnn_channels), "bank_size": int(self.start_h.shape[0]),
        }
        if self.members > 1:  # a single-member card stays what gym-dream wrote before members existed
            params["members"] = self.members
        return params

    @property
    def feature_dim(self) -> int:
        return self.deter + self.stoch

    # -- observations ----------------------------------------------------------------------------
    def preprocess(self, obs: torch.Tensor, generator: torch.Generator | None = None, dequantize: bool = False) -> torch.Tensor:
        """Model-input observations -> network input: frames (B, 3, 64, 64) reduced to ``bit_depth`` bits
        in [-0.5, 0.5] (``dequantize`` adds PlaNet's uniform noise, for training), vectors standardised."""
        if not self.pixels:
            return standardize(obs, self.obs_mean, self.obs_std)
        x = obs.permute(0, 3, 1, 2).float()
        bins = 2 ** self.bit_depth
        x = torch.floor(x / 2 ** (8 - self.bit_depth)) / bins - 0.5
        if dequantize:
            x = x + torch.rand(x.shape, generator=generator, device=x.device) / bins
        return x

    def postprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder output -> model-input space: uint8 frames (B, 64, 64, 3) or float vectors."""
        if not self.pixels:
            return unstandardize(x, self.obs_mean, self.obs_std)
        return ((x + 0.5) * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)

    @torch.no_grad()
    def fit_normalizer(self, observations: torch.Tensor) -> None:
        if not self.pixels:
            fit_standardizer(self.obs_mean, self.obs_std, observations)

    def embed(self, obs: torch.Tensor, generator: torch.Generator | None = None, dequantize: bool = False) -> torch.Tensor:
        return self.encoder(self.preprocess(obs, generator, dequantize))

    # -- the cell ------------------------------------------------------------------------------------
    def _gaussian(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = out.chunk(2, dim=-1)
        return mean, F.softplus(std) + self.min_std

    def step_deter(self, h: torch.Tensor, s: torch.Tensor, action_enc: torch.Tensor) -> torch.Tensor:
        """h (B, deter), or (M, B, deter) for several members; s (B, stoch) shared or (M, B, stoch)."""
        x = torch.cat([s, action_enc.expand(*s.shape[:-1], action_enc.shape[-1])], dim=-1)
        if self.members == 1:
            return self.cell(self.img_in(x), h)
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.members, *x.shape)
        return self.cell(self.img_in(x), h)

    def prior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.prior_net(h))

    def posterior(self, h: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._gaussian(self.post_net(torch.cat([h, embed], dim=-1)))

    def heads(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward, termination logit) of features [h, s] (several members: (M, ..., F) -> (M, ...))."""
        return self.reward_head(feat).squeeze(-1), self.termination_head(feat).squeeze(-1)

    def _member_features(self, h: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """h (M, B, deter), s (B, stoch) shared -> (M, B, deter + stoch)."""
        return torch.cat([h, s.unsqueeze(0).expand(self.members, *s.shape)], dim=-1)

    # -- the protocol ----------------------------------------------------------------------------
    def initial_state(self, batch: int, generator: torch.Generator | None = None, obs: torch.Tensor | None = None) -> State:
        device = self.start_h.device
        if obs is not None:
            e = self.embed(obs.to(device))
            h = torch.zeros(e.shape[0], self.deter, device=device)
            s = self.posterior(h, e)[0]
            if self.members > 1:
                h = torch.zeros(e.shape[0], self.members, self.deter, device=device)
            return {"h": h, "s": s}
        return self.start_state(torch.randint(self.start_h.shape[0], (batch,), generator=generator, device=device))

    def start_state(self, index: torch.Tensor) -> State:
        """The bank's posterior states ``start_h[index]``, ``start_s[index]``."""
        return {"h": self.start_h[index].clone(), "s": self.start_s[index].clone()}

    @property
    def bank_size(self) -> int:
        return int(self.start_h.shape[0])

    def noise_spec(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """A step draws one standard normal per stochastic dimension (the prior's sample)."""
        return {"normal": ("normal", (self.stoch,))}

    def observe(self, state: State, action: torch.Tensor, obs: torch.Tensor) -> State:
        if self.members == 1:
            h = self.step_deter(state["h"], state["s"], self.encode_action(action))
            return {"h": h, "s": self.posterior(h, self.embed(obs.to(h.device)))[0]}
        h = self.step_deter(state["h"].transpose(0, 1), state["s"], self.encode_action(action))  # (M, B, deter)
        s = self.posterior(h[0], self.embed(obs.to(h.device)))[0]
        return {"h": h.transpose(0, 1).contiguous(), "s": s}

    @property
    def precisions(self) -> tuple[str, ...]:
        """``"float32"`` (the model as trained) and, for one member, ``"bfloat16"`` (:meth:`_imagine_bfloat16`)."""
        return ("float32", "bfloat16") if self.members == 1 else ("float32",)

    def _imagine_bfloat16(self, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None) -> Transition:
        """The single-member step with the GRU's, the prior's and the heads' hidden products in bf16 (fp32 accumulate,
        fp32 biases, state, gates and sampling: the same random numbers as the fp32 step)."""
        tau = tau_column(tau)
        h, s = state["h"], state["s"]
        x = self.img_in(torch.cat([s, self.encode_action(action)], dim=-1))
        cell = self.cell
        xr, xz, xn = linear_bfloat16(self, x, cell.weight_ih, cell.bias_ih).chunk(3, dim=-1)
        hr, hz, hn = linear_bfloat16(self, h, cell.weight_hh, cell.bias_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        h = (1.0 - z) * torch.tanh(xn + r * hn) + z * h  # nn.GRUCell's equations
        mean, std = self._gaussian(mlp_bfloat16(self, self.prior_net, h))
        s = mean + tau * std * torch.randn(mean.shape, generator=generator, device=mean.device)
        feat = torch.cat([h, s], dim=-1)
        reward = mlp_bfloat16(self, self.reward_head, feat).squeeze(-1)
        p_end = torch.sigmoid(mlp_bfloat16(self, self.termination_head, feat).squeeze(-1))
        zero = torch.zeros_like(reward)
        return Transition({"h": h, "s": s}, reward, p_end > 0.5, p_end, zero, zero.clone())

    def imagine(self, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None = None,
                member=None, precision: str = "float32", noise: dict[str, torch.Tensor] | None = None) -> Transition:
        """``noise``: the step's random numbers drawn by the caller (:meth:`noise_spec`; single-member float32 steps),
        instead of ``generator``."""
        if noise is not None and (self.members > 1 or precision != "float32"):
            raise ValueError("imagine(noise=...) is the single-member float32 step (an exportable dream); this call asks for "
                             f"members={self.members}, precision={precision!r}: draw with generator= instead.")
        if precision != "float32":
            if precision not in self.precisions:
                raise ValueError(f"precision must be one of {self.precisions} for this model, got {precision!r}.")
            return self._imagine_bfloat16(state, action, tau, generator)
        tau = tau_column(tau)  # per-env temperatures scale each env's row
        if self.members == 1:
            h = self.step_deter(state["h"], state["s"], self.encode_action(action))
            mean, std = self.prior(h)
            eps = torch.randn(mean.shape, generator=generator, device=mean.device) if noise is None else noise["normal"]
            s = mean + tau * std * eps
            reward, logit = self.heads(torch.cat([h, s], dim=-1))
            p_end = torch.sigmoid(logit)
            zero = torch.zeros_like(reward)
            return Transition({"h": h, "s": s}, reward, p_end > 0.5, p_end, zero, zero.clone())
        h = self.step_deter(state["h"].transpose(0, 1), state["s"], self.encode_action(action))  # (M, B, deter)
        mean, std = self.prior(h)  # (M, B, stoch)
        disagreement = member_spread(mean)
        choice = resolve_member(member, self.members, mean.shape[1], generator, mean.device)
        eps = torch.randn(mean.shape[1:], generator=generator, device=mean.device)  # common random numbers
        if isinstance(choice, str):  # "mean": the members' average sample
            s = (mean + tau * std * eps).mean(0)
        else:
            s = pick(mean, choice) + tau * pick(std, choice) * eps
        rewards, logits = self.heads(self._member_features(h, s))  # every member's (M, B)
        probs = torch.sigmoid(logits)
        if isinstance(choice, str):
            reward, p_end = rewards.mean(0), probs.mean(0)
        else:
            reward, p_end = pick(rewards, choice), pick(probs, choice)
        state = {"h": h.transpose(0, 1).contiguous(), "s": s}
        return Transition(state, reward, p_end > 0.5, p_end, disagreement, member_spread(rewards.unsqueeze(-1)))

    def features(self, state: State) -> torch.Tensor:
        h = state["h"] if self.members == 1 else state["h"][:, 0]
        return torch.cat([h, state["s"]], dim=-1)

    def decode(self, state: State) -> torch.Tensor:
        return self.postprocess(self.decoder(self.features(state)))

    @torch.no_grad()
    def sequence_disagreement(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The disagreement ``imagine`` reports for each transition of real sequences, filtered from an
        empty memory as ``initial_state(obs=o_0)`` and ``observe`` do: obs (B, T+1, ...), actions
        (B, T[, A]) -> (B, T); zeros for a single member."""
        b, t = actions.shape[:2]
        if self.members == 1:
            return torch.zeros(b, t, device=obs.device)
        a = self.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
        embeds = self.embed(obs.reshape(b * (t + 1), *obs.shape[2:])).reshape(b, t + 1, -1)
        h = torch.zeros(self.members, b, self.deter, device=obs.device)
        s = self.posterior(h[0], embeds[:, 0])[0]
        out = []
        for i in range(t):
            h = self.step_deter(h, s, a[:, i])
            out.append(member_spread(self.prior(h)[0]))
            s = self.posterior(h[0], embeds[:, i + 1])[0]
        return torch.stack(out, dim=1)

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
        reference: bool = False,
    ) -> dict[str, torch.Tensor]:
        """PlaNet's ELBO on a batch of sequences (and latent overshooting when ``overshooting`` > 1).

        Shapes: obs (B, T+1, ...) model-input observations o_0..o_T; actions (B, T) or (B, T, A);
        rewards, terminated, mask (B, T): transition t goes from o_t with a_t to o_{t+1}. The
        posterior of o_0 starts from an empty memory; reward and termination are predicted from the
        state of o_{t+1}. KL terms are summed over state dimensions and clipped below at
        ``free_nats``. With ``overshooting = D``, the prior is also rolled open-loop from every
        posterior state for 2..D steps and its KL to the (fixed) posterior added, scaled by
        ``overshooting_scale / D`` (PlaNet's latent overshooting).

        Several members: member 0 gets exactly this loss; each other member m adds its KL from the
        detached posterior (free nats too), reward and termination losses, with the batch's sequences
        weighted by a bootstrap resample of them (drawn with ``generator``) and its memory fed the
        detached posterior samples, so the members never shape the shared posterior. Overshooting is
        for single-member RSSMs. ``reference=True`` runs the loss as first written (slower; the same
        losses to float rounding, from the same random draws).
        """
        return rssm_loss.sequence_loss(self, obs, actions, rewards, terminated, mask, free_nats, overshooting, overshooting_scale, generator, reference)
