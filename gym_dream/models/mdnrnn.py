"""World Models (Ha & Schmidhuber 2018): V (VAE or vector encoder) + M (MDN-RNN), with the reward
and termination heads a dream needs.

State: ``z`` (B, Z) the current latent, ``h``/``c`` (B, H) the LSTM memory. One dream step:

    h', c' = LSTM([z_t, a_t], (h, c))
    z_{t+1} ~ MDN(h')                              # K diagonal Gaussians, temperature tau
    r_{t+1} = reward_head([z_{t+1}, h'])
    p_end   = sigmoid(termination_head([z_{t+1}, h']))   terminated = p_end > 0.5

The heads read the *sampled* next latent, so a dream that wanders out of bounds also ends there.
An agent sees ``features = [z_t, h_t]`` (``features="zh"``, the default, the paper's CarRacing controller), or
``[z_t, c_t, h_t]`` with the LSTM's cell state too (``features="zch"``, the paper's VizDoom controller: 64 + 512 +
512 = 1088 inputs). Only what the agent sees changes: the weights and the dream are the same, so
:func:`gym_dream.checkpoint.with_features` makes either view of a fitted model (``gym-dream features``).

Members (``members`` = M > 1): M independently initialised LSTM cores with their own MDN, reward and
termination heads, batched in one tensor dimension (:mod:`gym_dream.models.members`), sharing the
encoder (V). The state keeps one ``z`` (B, Z) and each member's memory ``h``/``c`` (B, M, H); every
member steps from the same ``z_t`` and action, the chosen member (or the members' mean) samples
``z_{t+1}``, and all members read it. ``features = [z_t, h_t of member 0]``: an agent's view does not
depend on which member drives the dream, so the same policy acts in the real env through
``DreamObservation``. The disagreement of a step is

    disagreement = mean over the Z dims of std over members of E_m[z_{t+1}]

with E_m the mean of member m's mixture as trained (tau = 1: sum_k pi_k mu_k; std with ddof 0), in
latent units (a standardised observation for vector models, the VAE latent for pixels). The reward
disagreement is the members' std of the reward each predicts for the sampled ``z_{t+1}``.
A single-member model has the parameters, state and floating-point results of the original model
and a disagreement of exactly 0.

Dropout members (``dropout`` = p > 0 with ``members`` = M): one LSTM, MDN and heads, and M fixed dropout
masks on the memory ``h`` that the MDN and the heads read (Dropout's Dream Land); the state is that
of a single model (``h``/``c`` (B, H)), training draws a fresh mask per sequence, and the dream's
members are the M masks stored with the weights. ``gym_dream.models.members`` compares the two forms.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from gym_dream.models import mdnrnn_loss
from gym_dream.models.base import State, Transition, WorldModel, linear_bfloat16, mlp_bfloat16, version_key
from gym_dream.models.encoders import ConvVAE, StandardizeEncoder
from gym_dream.models.mdn import LOG_SIGMA_MAX, LOG_SIGMA_MIN, MixtureHead, mixture_mean, mixture_sample
from gym_dream.models.members import MemberLSTM, check_members, member_mlp, member_spread, pick, resolve_member
from gym_dream.preprocessing import Preprocessing

#: the arithmetic ``imagine`` can run in (``precision=``): the first is the default
PRECISIONS = ("float32", "bfloat16")


def _tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh as 2 sigmoid(2x) - 1 (within 2e-7 of torch.tanh): torch's CPU tanh kernel took 4x sigmoid's time here
    (results/performance.md); used by the bf16 step only, the fp32 step keeps torch's kernels."""
    return torch.sigmoid(x * 2.0).mul_(2.0).sub_(1.0)


#: what an agent may see of the state (``MDNRNN(features=...)``)
FEATURES = {"zh": "[z, h]: the latent and the LSTM's output (the paper's CarRacing controller)",
            "zch": "[z, c, h]: the LSTM's cell state too (the paper's VizDoom controller)"}


class MDNRNN(WorldModel):
    """VAE + MDN-RNN world model.

    Args:
        observation_space, action_space: the real env's spaces.
        preprocessing: how real observations become model input (recorded in the card).
        z_dim: latent size for images (vector models use the observation size).
        hidden: LSTM units (256 in the paper).
        mixtures: Gaussians in the MDN (5 in the paper).
        head_hidden: hidden units of the reward/termination MLPs (0: linear heads).
        residual: predict z_{t+1} - z_t instead of z_{t+1} (helps smooth low-dimensional dynamics).
        vae_channels: conv widths of the VAE (images only).
        bank_size: number of stored start latents (encoded real first observations).
        members: dynamics members (LSTM + MDN + heads) batched in one tensor dimension (1: a single model).
        dropout: 0 (default): the members are independently initialised networks; p > 0 (with members > 1):
            the members are M fixed dropout masks (keep probability 1 - p) on the memory of one network.
        features: what an agent sees: ``"zh"`` (default) ``[z, h]``, or ``"zch"`` ``[z, c, h]`` (the LSTM's cell
            state too, as the paper's VizDoom controller).
    """

    family = "mdnrnn"

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        preprocessing: Preprocessing,
        z_dim: int = 32,
        hidden: int = 256,
        mixtures: int = 5,
        head_hidden: int = 64,
        residual: bool = False,
        vae_channels: tuple[int, ...] = (32, 64, 128, 256),
        bank_size: int = 1,
        members: int = 1,
        dropout: float = 0.0,
        features: str = "zh",
    ):
        super().__init__(observation_space, action_space, preprocessing)
        if features not in FEATURES:
            raise ValueError(f"features must be one of {sorted(FEATURES)} (what an agent sees: {FEATURES}), got {features!r}.")
        self.feature_kind = features
        self.members = check_members(members)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a number in [0, 1), got {dropout!r}.")
        if dropout > 0 and members == 1:
            raise ValueError("dropout > 0 makes the members dropout masks: set members > 1 too (e.g. members=5, dropout=0.1).")
        self.dropout = float(dropout)
        #: members in the weights' leading dimension: M for an ensemble, 1 for one network (dropout masks or a single model)
        self.weight_members = wm = members if self.dropout == 0 else 1
        if preprocessing.kind == "image":
            self.vision: nn.Module = ConvVAE(z_dim=z_dim, channels=tuple(vae_channels), image_size=preprocessing.size[0])
        else:
            if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
                raise ValueError(f"Vector models need a 1-D Box observation space, got {observation_space}.")
            z_dim = int(observation_space.shape[0])
            self.vision = StandardizeEncoder(z_dim)
        self.z_dim, self.hidden, self.mixtures = z_dim, hidden, mixtures
        self.head_hidden, self.residual = head_hidden, residual
        self.vae_channels = tuple(vae_channels)
        if wm == 1:
            self.rnn: nn.Module = nn.LSTM(z_dim + self.action_dim, hidden, batch_first=True)
        else:
            self.rnn = MemberLSTM(wm, z_dim + self.action_dim, hidden)
        self.mdn = MixtureHead(hidden, z_dim, mixtures, wm)
        self.reward_head = member_mlp(wm, z_dim + hidden, head_hidden, 1)
        self.termination_head = member_mlp(wm, z_dim + hidden, head_hidden, 1)
        self.register_buffer("start_z", torch.zeros(bank_size, z_dim))
        if self.dropout > 0:  # the members' masks (inverted dropout), saved with the weights
            keep = torch.rand(members, hidden, generator=torch.Generator().manual_seed(0)) >= self.dropout
            self.register_buffer("member_masks", keep.float() / (1.0 - self.dropout))

    def hyperparameters(self) -> dict[str, Any]:
        params = {
            "z_dim": self.z_dim,
            "hidden": self.hidden,
            "mixtures": self.mixtures,
            "head_hidden": self.head_hidden,
            "residual": self.residual,
            "vae_channels": list(self.vae_channels),
            "bank_size": int(self.start_z.shape[0]),
        }
        if self.members > 1:  # a single-member card stays what gym-dream wrote before members existed
            params["members"] = self.members
        if self.dropout > 0:
            params["dropout"] = self.dropout
        if self.feature_kind != "zh":  # the default view stays off the card, as cards written before it had it
            params["features"] = self.feature_kind
        return params

    @property
    def feature_dim(self) -> int:
        return self.z_dim + self.hidden * (2 if self.feature_kind == "zch" else 1)

    # -- building blocks -------------------------------------------------------------------------
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Model-input observations -> latent mean."""
        return self.vision.encode(obs)[0]

    def _cell(self, z: torch.Tensor, action: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One memory step; h, c are (B, H) for one member, (M, B, H) for several."""
        x = torch.cat([z, self.encode_action(action)], dim=-1)
        if self.weight_members > 1:
            return self.rnn.cell(x, h, c)
        return torch.lstm_cell(x, (h, c), self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0, self.rnn.bias_hh_l0)

    def _members_first(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        return state["h"].transpose(0, 1), state["c"].transpose(0, 1)

    def _encode_actions(self, actions: torch.Tensor, lead: tuple[int, ...]) -> torch.Tensor:
        """Actions of shape (*lead) or (*lead, A) -> network input (*lead, action_dim)."""
        n = 1
        for d in lead:
            n *= d
        flat = actions.reshape(n) if isinstance(self.action_space, spaces.Discrete) else actions.reshape(n, -1)
        return self.encode_action(flat).reshape(*lead, -1)

    def memory(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Teacher-forced memories h_1..h_T from zero memory: z (B, T+1, Z) latents and actions (B, T[, A]),
        shared by the members, or (M, B, ...) one sequence per member -> (B, T, H), or (M, B, T, H) for M > 1."""
        lead = tuple(z.shape[:-2]) + (z.shape[-2] - 1,)
        x = torch.cat([z[..., :-1, :], self._encode_actions(actions, lead)], dim=-1)
        if self.members == 1:
            return self.rnn(x)[0]
        if self.dropout == 0:
            return self.rnn(x)
        # one network; the members are masks of its memory (fresh ones per sequence while training)
        hs = self.rnn(x.reshape(-1, *x.shape[-2:]))[0].reshape(*x.shape[:-1], -1)
        if hs.dim() == 3:
            hs = hs.unsqueeze(0)
        if self.training:
            keep = torch.rand(self.members, hs.shape[1], 1, self.hidden, device=hs.device) >= self.dropout
            return hs * (keep.float() / (1.0 - self.dropout))
        return hs * self.member_masks[:, None, None, :]

    def next_latent_distribution(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, log_sigma = self.mdn(h)
        if self.residual:
            mu = mu + z.unsqueeze(-2)
        return logits, mu, log_sigma

    def heads(self, z_next: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward, termination logit) for a transition into ``z_next`` with memory ``h``. With several
        members ``h`` is (M, ...) and ``z_next`` (M, ...) or shared (...): every member's prediction, (M, ...)."""
        if self.members > 1 and z_next.dim() == h.dim() - 1:
            z_next = z_next.unsqueeze(0).expand(self.members, *z_next.shape)
        x = torch.cat([z_next, h], dim=-1)
        return self.reward_head(x).squeeze(-1), self.termination_head(x).squeeze(-1)

    @torch.no_grad()
    def sequence_disagreement(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """The disagreement ``imagine`` reports, for each transition of real sequences teacher-forced from
        zero memory: z (B, T+1, Z), actions (B, T[, A]) -> (B, T); zeros for a single member."""
        if self.members == 1:
            return z.new_zeros(z.shape[0], z.shape[1] - 1)
        hs = self.memory(z, actions)
        logits, mu, _ = self.next_latent_distribution(hs, z[:, :-1])
        return member_spread(mixture_mean(logits, mu))

    # -- the protocol ----------------------------------------------------------------------------
    def initial_state(self, batch: int, generator: torch.Generator | None = None, obs: torch.Tensor | None = None) -> State:
        device = self.start_z.device
        if obs is not None:
            z = self.encode(obs.to(device))
            batch = z.shape[0]
        else:
            return self.start_state(torch.randint(self.start_z.shape[0], (batch,), generator=generator, device=device))
        return self._with_empty_memory(z)

    def _with_empty_memory(self, z: torch.Tensor) -> State:
        batch = z.shape[0]
        shape = (batch, self.hidden) if self.weight_members == 1 else (batch, self.members, self.hidden)
        zeros = torch.zeros(shape, device=z.device)
        return {"z": z, "h": zeros, "c": zeros.clone()}

    def start_state(self, index: torch.Tensor) -> State:
        """Bank latents ``start_z[index]`` with an empty LSTM memory."""
        return self._with_empty_memory(self.start_z[index])

    @property
    def bank_size(self) -> int:
        return int(self.start_z.shape[0])

    def noise_spec(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """A step draws one uniform per mixture component (the Gumbel-max choice), then one standard normal per latent
        dimension (the chosen Gaussian's sample): :func:`~gym_dream.models.mdn.mixture_sample`."""
        return {"uniform": ("uniform", (self.mixtures,)), "normal": ("normal", (self.z_dim,))}

    def observe(self, state: State, action: torch.Tensor, obs: torch.Tensor) -> State:
        if self.weight_members == 1:
            h, c = self._cell(state["z"], action, state["h"], state["c"])
            return {"z": self.encode(obs.to(h.device)), "h": h, "c": c}
        h, c = self._cell(state["z"], action, *self._members_first(state))
        return {"z": self.encode(obs.to(h.device)), "h": h.transpose(0, 1).contiguous(), "c": c.transpose(0, 1).contiguous()}

    @property
    def precisions(self) -> tuple[str, ...]:
        """``imagine``'s arithmetic: ``"float32"`` (the model as trained, bit for bit), and for a single-member
        model ``"bfloat16"`` (:meth:`_imagine_bfloat16`)."""
        return PRECISIONS if self.members == 1 else PRECISIONS[:1]

    def imagine(self, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None = None, member=None,
                precision: str = "float32", noise: dict[str, torch.Tensor] | None = None) -> Transition:
        """``noise``: the step's random numbers drawn by the caller (:meth:`noise_spec`; single-member float32 steps),
        instead of ``generator``."""
        z = state["z"]
        if noise is not None and (self.members > 1 or precision != "float32"):
            raise ValueError("imagine(noise=...) is the single-member float32 step (an exportable dream); this call asks for "
                             f"members={self.members}, precision={precision!r}: draw with generator= instead.")
        if precision != "float32":
            if precision not in self.precisions:
                raise ValueError(f"precision must be one of {self.precisions} for this model, got {precision!r}.")
            return self._imagine_bfloat16(state, action, tau, generator)
        if self.members == 1:
            h, c = self._cell(z, action, state["h"], state["c"])
            logits, mu, log_sigma = self.next_latent_distribution(h, z)
            z_next = mixture_sample(logits, mu, log_sigma, tau, generator,
                                    noise=None if noise is None else (noise["uniform"], noise["normal"]))
            reward, term_logit = self.heads(z_next, h)
            p_end = torch.sigmoid(term_logit)
            zero = torch.zeros_like(reward)
            return Transition({"z": z_next, "h": h, "c": c}, reward, p_end > 0.5, p_end, zero, zero.clone())
        if self.dropout > 0:  # one memory, read through M masks
            h_one, c = self._cell(z, action, state["h"], state["c"])
            h = h_one.unsqueeze(0) * self.member_masks.unsqueeze(1)
            next_memory = {"h": h_one, "c": c}
        else:
            h, c = self._cell(z, action, *self._members_first(state))  # (M, B, H)
            next_memory = {"h": h.transpose(0, 1).contiguous(), "c": c.transpose(0, 1).contiguous()}
        logits, mu, log_sigma = self.next_latent_distribution(h, z)  # (M, B, K), (M, B, K, Z)
        disagreement = member_spread(mixture_mean(logits, mu))
        choice = resolve_member(member, self.members, z.shape[0], generator, z.device)
        if isinstance(choice, str):  # "mean": common random numbers, the members' average
            z_next = mixture_sample(logits, mu, log_sigma, tau, generator, common_dims=1).mean(0)
        else:
            z_next = mixture_sample(pick(logits, choice), pick(mu, choice), pick(log_sigma, choice), tau, generator)
        rewards, term_logits = self.heads(z_next, h)  # every member's (M, B)
        probs = torch.sigmoid(term_logits)
        if isinstance(choice, str):
            reward, p_end = rewards.mean(0), probs.mean(0)
        else:
            reward, p_end = pick(rewards, choice), pick(probs, choice)
        return Transition({"z": z_next, **next_memory}, reward, p_end > 0.5, p_end, disagreement, member_spread(rewards.unsqueeze(-1)))

    def _imagine_bfloat16(self, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None) -> Transition:
        """The single-member step with its matrix products in bfloat16 (AVX-512 BF16 or tensor cores; fp32 accumulate and
        fp32 biases), everything else in fp32: the LSTM state, the gates' nonlinearities, the mixture and its sampling
        (the same random numbers as the fp32 step). Products of the gates' inputs [z, a, h] with [W_ih | W_hh] are one
        matrix product. Differences to fp32 are bf16 rounding (~3 significant digits); the dream's statistics are those
        of the fp32 dream (tests/gym_dream/test_performance.py)."""
        z, h, c = state["z"], state["h"], state["c"]
        rnn = self.rnn
        fused = self.__dict__.get("_lstm_fused")  # [W_ih | W_hh] and b_ih + b_hh, made again after the weights change
        key = tuple(version_key(p) for p in (rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0))
        if fused is None or fused[0] != key:
            with torch.no_grad():
                fused = self.__dict__["_lstm_fused"] = (key, torch.cat([rnn.weight_ih_l0, rnn.weight_hh_l0], dim=1),
                                                        rnn.bias_ih_l0 + rnn.bias_hh_l0)
        x = torch.cat([z, self.encode_action(action), h], dim=-1)
        gates = linear_bfloat16(self, x, fused[1], fused[2])
        i, f, g, o = gates.chunk(4, dim=-1)  # torch's gate order
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * _tanh(g)
        h = torch.sigmoid(o) * _tanh(c)
        out = linear_bfloat16(self, h, self.mdn.linear.weight, self.mdn.linear.bias)
        k, d = self.mixtures, self.z_dim
        logits = out[..., :k]
        mu = out[..., k : k + k * d].unflatten(-1, (k, d))
        log_sigma = out[..., k + k * d :].unflatten(-1, (k, d)).clamp(LOG_SIGMA_MIN, LOG_SIGMA_MAX)
        if self.residual:
            mu = mu + z.unsqueeze(-2)
        z_next = mixture_sample(logits, mu, log_sigma, tau, generator)
        x = torch.cat([z_next, h], dim=-1)
        reward = mlp_bfloat16(self, self.reward_head, x).squeeze(-1)
        p_end = torch.sigmoid(mlp_bfloat16(self, self.termination_head, x).squeeze(-1))
        zero = torch.zeros_like(reward)
        return Transition({"z": z_next, "h": h, "c": c}, reward, p_end > 0.5, p_end, zero, zero.clone())

    def features(self, state: State) -> torch.Tensor:
        h = state["h"] if self.weight_members == 1 else state["h"][:, 0]
        if self.feature_kind == "zch":
            c = state["c"] if self.weight_members == 1 else state["c"][:, 0]
            return torch.cat([state["z"], c, h], dim=-1)
        return torch.cat([state["z"], h], dim=-1)

    def decode(self, state: State) -> torch.Tensor:
        out = self.vision.decode(state["z"])
        if self.preprocessing.kind == "image":
            return (out * 255.0).round().clamp(0, 255).to(torch.uint8)
        return out

    # -- training ----------------------------------------------------------------------------------
    def sequence_loss(
        self,
        z: torch.Tensor,
        actions: torch.Tensor,
        rewards: torch.Tensor,
        terminated: torch.Tensor,
        mask: torch.Tensor,
        reward_weight: float = 1.0,
        termination_weight: float = 1.0,
        end_weight: float = 1.0,
        termination_logit: bool = False,
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced loss on a batch of sequences.

        Shapes: z (B, T+1, Z) latents of o_0..o_T; actions (B, T) or (B, T, A); rewards,
        terminated, mask (B, T). ``mask`` is 1 for real transitions, 0 for padding.
        ``termination_weight`` scales the whole termination loss; ``end_weight`` weighs each real end
        against each non-end (BCE's pos_weight): the head then predicts an end, and the dream ends,
        wherever one is at least 1 / (1 + end_weight) likely.

        Several members: every input may carry a leading member dimension (M, B, ...), one batch per
        member (each member's own shuffled windows, in one batched pass), or none (every member on the
        same batch, which also gives ``ensemble_nll``: the NLL of the members' equal-weight mixture).
        ``loss`` is then the *sum* of the members' losses, so each member's gradient is that of its own
        loss; ``nll``, ``reward_mse`` and ``termination_bce`` are the members' means.

        ``termination_logit``: also return the termination head's logits (B, T) as ``out["termination_logit"]``
        (several members on a shared batch: the logit of their mean probability, what ``member="mean"`` dreams
        end on), so an evaluation scores the ends without running the memory again.
        """
        return mdnrnn_loss.sequence_loss(self, z, actions, rewards, terminated, mask, reward_weight, termination_weight, end_weight,
                                         termination_logit)
