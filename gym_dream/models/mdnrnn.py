"""World Models (Ha & Schmidhuber 2018): V (VAE or vector encoder) + M (MDN-RNN), with the reward
and termination heads a dream needs.

State: ``z`` (B, Z) the current latent, ``h``/``c`` (B, H) the LSTM memory. One dream step:

    h', c' = LSTM([z_t, a_t], (h, c))
    z_{t+1} ~ MDN(h')                              # K diagonal Gaussians, temperature tau
    r_{t+1} = reward_head([z_{t+1}, h'])
    p_end   = sigmoid(termination_head([z_{t+1}, h']))   terminated = p_end > 0.5

The heads read the *sampled* next latent, so a dream that wanders out of bounds also ends there.
An agent sees ``features = [z_t, h_t]``.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from gym_dream.models.base import State, Transition, WorldModel
from gym_dream.models.encoders import ConvVAE, StandardizeEncoder
from gym_dream.models.mdn import MixtureHead, mixture_log_prob, mixture_sample
from gym_dream.preprocessing import Preprocessing


def _mlp(inp: int, hidden: int, out: int) -> nn.Module:
    if hidden <= 0:
        return nn.Linear(inp, out)
    return nn.Sequential(nn.Linear(inp, hidden), nn.ELU(), nn.Linear(hidden, out))


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
    ):
        super().__init__(observation_space, action_space, preprocessing)
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
        self.rnn = nn.LSTM(z_dim + self.action_dim, hidden, batch_first=True)
        self.mdn = MixtureHead(hidden, z_dim, mixtures)
        self.reward_head = _mlp(z_dim + hidden, head_hidden, 1)
        self.termination_head = _mlp(z_dim + hidden, head_hidden, 1)
        self.register_buffer("start_z", torch.zeros(bank_size, z_dim))

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "z_dim": self.z_dim,
            "hidden": self.hidden,
            "mixtures": self.mixtures,
            "head_hidden": self.head_hidden,
            "residual": self.residual,
            "vae_channels": list(self.vae_channels),
            "bank_size": int(self.start_z.shape[0]),
        }

    @property
    def feature_dim(self) -> int:
        return self.z_dim + self.hidden

    # -- building blocks -------------------------------------------------------------------------
    def encode(self, obs: torch.Tensor) -> torch.Tensor:
        """Model-input observations -> latent mean."""
        return self.vision.encode(obs)[0]

    def _cell(self, z: torch.Tensor, action: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([z, self.encode_action(action)], dim=-1)
        return torch.lstm_cell(x, (h, c), self.rnn.weight_ih_l0, self.rnn.weight_hh_l0, self.rnn.bias_ih_l0, self.rnn.bias_hh_l0)

    def next_latent_distribution(self, h: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, mu, log_sigma = self.mdn(h)
        if self.residual:
            mu = mu + z.unsqueeze(-2)
        return logits, mu, log_sigma

    def heads(self, z_next: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(reward, termination logit) for a transition into ``z_next`` with memory ``h``."""
        x = torch.cat([z_next, h], dim=-1)
        return self.reward_head(x).squeeze(-1), self.termination_head(x).squeeze(-1)

    # -- the protocol ----------------------------------------------------------------------------
    def initial_state(self, batch: int, generator: torch.Generator | None = None, obs: torch.Tensor | None = None) -> State:
        device = self.start_z.device
        if obs is not None:
            z = self.encode(obs.to(device))
            batch = z.shape[0]
        else:
            idx = torch.randint(self.start_z.shape[0], (batch,), generator=generator, device=device)
            z = self.start_z[idx]
        zeros = torch.zeros(batch, self.hidden, device=device)
        return {"z": z, "h": zeros, "c": zeros.clone()}

    def observe(self, state: State, action: torch.Tensor, obs: torch.Tensor) -> State:
        h, c = self._cell(state["z"], action, state["h"], state["c"])
        return {"z": self.encode(obs.to(h.device)), "h": h, "c": c}

    def imagine(self, state: State, action: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> Transition:
        z = state["z"]
        h, c = self._cell(z, action, state["h"], state["c"])
        logits, mu, log_sigma = self.next_latent_distribution(h, z)
        z_next = mixture_sample(logits, mu, log_sigma, tau, generator)
        reward, term_logit = self.heads(z_next, h)
        p_end = torch.sigmoid(term_logit)
        return Transition({"z": z_next, "h": h, "c": c}, reward, p_end > 0.5, p_end)

    def features(self, state: State) -> torch.Tensor:
        return torch.cat([state["z"], state["h"]], dim=-1)

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
    ) -> dict[str, torch.Tensor]:
        """Teacher-forced loss on a batch of sequences.

        Shapes: z (B, T+1, Z) latents of o_0..o_T; actions (B, T) or (B, T, A); rewards,
        terminated, mask (B, T). ``mask`` is 1 for real transitions, 0 for padding.
        ``termination_weight`` scales the whole termination loss; ``end_weight`` weighs each real end
        against each non-end (BCE's pos_weight): the head then predicts an end, and the dream ends,
        wherever one is at least 1 / (1 + end_weight) likely.
        """
        b, t = rewards.shape
        a = self.encode_action(actions.reshape(b * t, -1) if actions.dim() == 3 else actions.reshape(b * t)).reshape(b, t, -1)
        hs, _ = self.rnn(torch.cat([z[:, :-1], a], dim=-1))
        logits, mu, log_sigma = self.next_latent_distribution(hs, z[:, :-1])
        z_next = z[:, 1:]
        nll = -mixture_log_prob(logits, mu, log_sigma, z_next) / self.z_dim
        reward_pred, term_logit = self.heads(z_next, hs)
        mse = (reward_pred - rewards) ** 2
        bce = nn.functional.binary_cross_entropy_with_logits(term_logit, terminated.float(), reduction="none")
        if end_weight != 1.0:
            bce = bce * (1.0 + (end_weight - 1.0) * terminated.float())
        n = mask.sum().clamp_min(1.0)
        out = {
            "nll": (nll * mask).sum() / n,
            "reward_mse": (mse * mask).sum() / n,
            "termination_bce": (bce * mask).sum() / n,
        }
        out["loss"] = out["nll"] + reward_weight * out["reward_mse"] + termination_weight * out["termination_bce"]
        return out
