"""DreamerV3's world model (Hafner et al. 2023, "Mastering Diverse Domains through World Models"), behind the same
protocol as the MDN-RNN and the RSSM.

State: ``h`` (B, deter) the deterministic path, ``z`` (B, stoch * classes) the stochastic state: ``stoch`` one-hot
categorical variables of ``classes`` classes each, flattened. An agent sees ``features = [h, z]``.

    h_t = GRU(h_{t-1}, f(z_{t-1}, a_{t-1}))          a GRU with LayerNorm on its gates (optionally block-diagonal)
    prior      p(z_t | h_t)                          what a dream samples
    posterior  q(z_t | h_t, e_t),  e_t = enc(o_t)    what seeing a real observation gives
    o_t ~ dec(h_t, z_t), r_t = symexp(E[two-hot reward bins]), p(continue) = sigmoid(cont_head(h_t, z_t))

Every categorical mixes 1 % of the uniform distribution into its softmax (``unimix``): probabilities never reach 0, so
the KL terms stay bounded. Vector observations enter the encoder as ``symlog(x) = sign(x) log(1 + |x|)``, and the
decoder predicts ``symlog(o)`` (:meth:`Dreamer.decode` returns ``symexp`` of it); frames (64x64) go through the conv
encoder and decoder of :mod:`gym_dream.models.encoders`, in [-0.5, 0.5] in and sigmoid pixels in [0, 1] out. The reward
head predicts a distribution over 255 bins spaced evenly in symlog space from -20 to 20, trained on the two-hot
encoding of ``symlog(r)``; the reward is ``symexp`` of its expected bin. Its output layer starts at zero, so an
untrained model predicts a reward of exactly 0. The continue head predicts the probability that the episode goes
on: a dream step ends (``terminated``) where it is below 0.5, and ``termination_prob = 1 - continue``. Every MLP is
Linear -> LayerNorm -> SiLU. Training (:meth:`Dreamer.sequence_loss`, :mod:`gym_dream.models.dreamer_loss`) is
DreamerV3's: reconstruction + reward + continue losses, and the KL between posterior and prior split into a
dynamics term ``KL(sg(q) || p)`` (weight 0.5, trains the prior) and a representation term ``KL(q || sg(p))``
(weight 0.1, trains the posterior), each clipped below at 1 nat of free bits; samples pass gradients straight through.

**Temperature** ``tau``: a dream step samples each of the ``stoch`` categoricals of the prior from

    softmax(log(p_unimix) / tau)  ∝  p_unimix ** (1 / tau),

where ``p_unimix`` are the prior's class probabilities after the 1 % uniform mix. ``tau = 1`` is the model as trained;
``tau < 1`` sharpens every categorical toward its most likely class (``tau -> 0``: the mode, a deterministic dream);
``tau > 1`` flattens them toward uniform (``tau -> inf``: every class equally likely), a noisier, harder dream. Samples
are drawn by Gumbel-max with the ``torch.Generator`` passed to :meth:`Dreamer.imagine`, so the same seed gives the
same dream. :meth:`Dreamer.observe` and ``initial_state(obs=...)`` take the posterior's mode (the protocol's filter
has no generator, and a filtered real episode is then deterministic); the start-state bank holds those modes.

Where this differs from danijar/dreamerv3: LayerNorm in place of RMSNorm, the memory of a first observation starts at
``h = 0`` (no core step from a zeroed carry), the continue target is not discounted (``contdisc``), the decoder of
pixels is the conv stack gym-dream's other families use, and a single dynamics member (``members`` = 1).
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn
from torch.nn import functional as F

from gym_dream.models import dreamer_loss
from gym_dream.models.base import State, Transition, WorldModel
from gym_dream.models.encoders import conv_decoder, conv_encoder
from gym_dream.models.members import resolve_member
from gym_dream.preprocessing import Preprocessing


# -- symlog, two-hot, categoricals ---------------------------------------------------------------------------
def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(torch.abs(x))


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(torch.abs(x))


def symlog_bins(bins: int = 255, low: float = -20.0, high: float = 20.0) -> torch.Tensor:
    """``bins`` values evenly spaced in symlog space over [low, high] (low = -high), exactly symmetric about 0."""
    if bins < 3 or bins % 2 == 0:
        raise ValueError(f"bins must be an odd integer >= 3 (255 in DreamerV3), got {bins!r}.")
    half = torch.linspace(low, 0.0, (bins + 1) // 2, dtype=torch.float64)
    return torch.cat([half, -half[:-1].flip(0)]).float()


def twohot(x: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """The two-hot encoding of ``x`` (..., in the bins' space) -> (..., K): the weight of x split between its two
    neighbouring bins in proportion to closeness (all of it on a bin x equals; the end bins outside the range)."""
    k = bins.shape[0]
    x = x.clamp(bins[0], bins[-1])
    above = torch.searchsorted(bins, x.contiguous(), right=True).clamp(1, k - 1)  # first bin > x (the last bin: x on it)
    below = above - 1
    lo, hi = bins[below], bins[above]
    w_hi = ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
    out = torch.zeros(*x.shape, k, device=x.device, dtype=x.dtype)
    out.scatter_(-1, below.unsqueeze(-1), (1.0 - w_hi).unsqueeze(-1))
    return out.scatter_add_(-1, above.unsqueeze(-1), w_hi.unsqueeze(-1))


def twohot_mean(probs: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """E[bin] of ``probs`` (..., K) summed symmetrically about the middle bin, so that symmetric probabilities give
    exactly 0 (a left-to-right sum would leave a rounding residue)."""
    m = bins.shape[0] // 2
    lower = (probs[..., :m] * bins[:m]).flip(-1)
    upper = probs[..., m + 1 :] * bins[m + 1 :]
    return (lower + upper).sum(-1) + probs[..., m] * bins[m]


def unimix_logp(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Log-probabilities of ``(1 - unimix) * softmax(logits) + unimix / classes`` over the last dimension."""
    probs = torch.softmax(logits, -1)
    if unimix:
        probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
    return torch.log(probs)


def sample_onehot(logp: torch.Tensor, generator: torch.Generator | None, tau: float | torch.Tensor = 1.0,
                  uniforms: torch.Tensor | None = None) -> torch.Tensor:
    """One-hot samples (Gumbel-max) of ``softmax(logp / tau)``; logp (B, S, C), tau a number or (B,). The Gumbel noise
    comes from ``uniforms`` (B, S, C) on [0, 1) when given (an exportable step), else from ``generator``."""
    if isinstance(tau, torch.Tensor):
        tau = tau.reshape(-1, *([1] * (logp.dim() - 1))).to(logp.dtype)
    u = torch.rand(logp.shape, generator=generator, device=logp.device) if uniforms is None else uniforms.reshape(logp.shape)
    u = u.clamp_min(torch.finfo(logp.dtype).tiny)
    idx = (logp / tau - torch.log(-torch.log(u))).argmax(-1)
    return F.one_hot(idx, logp.shape[-1]).to(logp.dtype)


def mode_onehot(logp: torch.Tensor) -> torch.Tensor:
    return F.one_hot(logp.argmax(-1), logp.shape[-1]).to(logp.dtype)


# -- networks ---------------------------------------------------------------------------------------------
def mlp(inp: int, units: int, layers: int, out: int | None = None) -> nn.Sequential:
    """``layers`` x (Linear -> LayerNorm -> SiLU) of ``units``, then a Linear to ``out`` if given."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else units, units, bias=False), nn.LayerNorm(units), nn.SiLU()]
    if out is not None:
        mods.append(nn.Linear(units if layers else inp, out))
    return nn.Sequential(*mods)


class NormGRU(nn.Module):
    """DreamerV3's GRU: one linear map of [h, x] to three gates, LayerNorm on them, then

        r = sigmoid(r), c = tanh(r * c), u = sigmoid(u - 1), h' = u * c + (1 - u) * h

    With ``blocks`` = g > 1 the map is block-diagonal: h is split into g groups and group i's gates read only its own
    slice of h (and the whole input x), as in dreamerv3's ``BlockLinear`` (fewer weights for a wide h).
    """

    def __init__(self, inp: int, deter: int, blocks: int = 1):
        super().__init__()
        if blocks < 1 or deter % blocks:
            raise ValueError(f"blocks must be >= 1 and divide deter ({deter}), got {blocks!r}.")
        self.blocks, self.group = blocks, deter // blocks
        bound = (inp + self.group) ** -0.5
        self.weight_x = nn.Parameter(torch.empty(3 * deter, inp).uniform_(-bound, bound))  # every group's gates read all of x
        self.weight_h = nn.Parameter(torch.empty(blocks, 3 * self.group, self.group).uniform_(-bound, bound))  # and their own h
        self.norm_weight = nn.Parameter(torch.ones(blocks, 3 * self.group))
        self.norm_bias = nn.Parameter(torch.zeros(blocks, 3 * self.group))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        b, g = h.shape[0], self.blocks
        hg = h.reshape(b, g, self.group)
        from_h = F.linear(h, self.weight_h[0]) if g == 1 else torch.einsum("bgi,goi->bgo", hg, self.weight_h).reshape(b, -1)
        gates = (F.linear(x, self.weight_x) + from_h).reshape(b, g, 3 * self.group)
        gates = F.layer_norm(gates, (3 * self.group,)) * self.norm_weight + self.norm_bias
        reset, cand, update = gates.chunk(3, dim=-1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        return (update * cand + (1.0 - update) * hg).reshape(b, -1)


class PixelDecoder(nn.Module):
    """Features -> (B, 3, 64, 64) pixel means in [0, 1]."""

    def __init__(self, feature_dim: int, channels: tuple[int, ...]):
        super().__init__()
        self.fc = nn.Linear(feature_dim, 4 * channels[-1])
        self.net = conv_decoder(channels, sigmoid=True)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(f)[..., None, None])


class Dreamer(WorldModel):
    """DreamerV3's world model (see the module docstring for the model, ``tau`` and the loss).

    Args:
        observation_space, action_space, preprocessing: as for every family.
        deter: units of the GRU's deterministic path. stoch: categorical latent variables. classes: classes of each.
        hidden: units of the layers around the GRU (input, prior, posterior). units: units of the encoder, decoder
            and heads' MLPs. layers: hidden layers of those MLPs.
        blocks: groups of the block-diagonal GRU (1: a full GRU).
        unimix: the uniform share mixed into every latent categorical (0.01).
        bins: two-hot reward bins over symlog space [-20, 20] (255).
        cnn_channels: conv widths of the encoder/decoder (pixels only).
        bank_size: start states kept (posterior modes of real first observations).
        members: must be 1 (the dreamer family has one dynamics member).
    """

    family = "dreamer"

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, preprocessing: Preprocessing,
                 deter: int = 512, stoch: int = 32, classes: int = 16, hidden: int = 256, units: int = 256, layers: int = 2,
                 blocks: int = 1, unimix: float = 0.01, bins: int = 255, cnn_channels: tuple[int, ...] = (32, 64, 128, 256),
                 bank_size: int = 1, members: int = 1):
        super().__init__(observation_space, action_space, preprocessing)
        if members != 1:
            raise ValueError(f"The dreamer family has one dynamics member, got members={members!r}; fit it with --members 1, "
                             "or use --family rssm or mdnrnn for an ensemble whose disagreement the dream can penalise.")
        if not 0.0 <= unimix < 1.0:
            raise ValueError(f"unimix must be in [0, 1) (0.01 in DreamerV3), got {unimix!r}.")
        self.pixels = preprocessing.kind == "image"
        if self.pixels:
            if tuple(preprocessing.size) != (64, 64):
                raise ValueError(f"The dreamer family's conv encoder needs 64x64 frames, got size {preprocessing.size}; "
                                 "collect with preprocessing size [64, 64].")
            self.encoder: nn.Module = conv_encoder(tuple(cnn_channels))
            embed = cnn_channels[-1] * 4
            self.obs_dim = 64 * 64 * 3
        else:
            if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 1:
                raise ValueError(f"Vector dreamer models need a 1-D Box observation space, got {observation_space}.")
            self.obs_dim = int(observation_space.shape[0])
            self.encoder = mlp(self.obs_dim, units, layers)
            embed = units if layers else self.obs_dim
        self.deter, self.stoch, self.classes, self.hidden, self.units, self.layers = deter, stoch, classes, hidden, units, layers
        self.blocks, self.unimix, self.bins, self.cnn_channels = blocks, float(unimix), bins, tuple(cnn_channels)
        latent = stoch * classes
        self.img_in = mlp(latent + self.action_dim, hidden, 1)
        self.cell = NormGRU(hidden, deter, blocks)
        self.prior_net = mlp(deter, hidden, 1, latent)
        self.post_net = mlp(deter + embed, hidden, 1, latent)
        f = deter + latent
        self.decoder = PixelDecoder(f, self.cnn_channels) if self.pixels else mlp(f, units, layers, self.obs_dim)
        self.reward_head = mlp(f, units, layers, bins)
        self.continue_head = mlp(f, units, layers, 1)
        with torch.no_grad():  # DreamerV3's outscale 0: the reward starts at exactly 0
            self.reward_head[-1].weight.zero_()
            self.reward_head[-1].bias.zero_()
        self.register_buffer("reward_bins", symlog_bins(bins), persistent=False)
        self.register_buffer("start_h", torch.zeros(bank_size, deter))
        self.register_buffer("start_z", torch.zeros(bank_size, latent))

    def hyperparameters(self) -> dict[str, Any]:
        return {"deter": self.deter, "stoch": self.stoch, "classes": self.classes, "hidden": self.hidden, "units": self.units,
                "layers": self.layers, "blocks": self.blocks, "unimix": self.unimix, "bins": self.bins,
                "cnn_channels": list(self.cnn_channels), "bank_size": int(self.start_h.shape[0])}

    @property
    def feature_dim(self) -> int:
        return self.deter + self.stoch * self.classes

    # -- observations --------------------------------------------------------------------------------
    def preprocess(self, obs: torch.Tensor) -> torch.Tensor:
        """Model-input observations -> encoder input: frames (B, 3, 64, 64) in [-0.5, 0.5], vectors symlog'd."""
        if self.pixels:
            return obs.permute(0, 3, 1, 2).float() / 255.0 - 0.5
        return symlog(obs.float())

    def reconstruction_target(self, obs: torch.Tensor) -> torch.Tensor:
        """What the decoder predicts: frames (B, 3, 64, 64) in [0, 1], vectors in symlog space."""
        return obs.permute(0, 3, 1, 2).float() / 255.0 if self.pixels else symlog(obs.float())

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.preprocess(obs))

    # -- the cell --------------------------------------------------------------------------------------
    def step_deter(self, h: torch.Tensor, z: torch.Tensor, action_enc: torch.Tensor) -> torch.Tensor:
        """h_{t-1}, z_{t-1} (B, stoch * classes), encoded action (B, A) -> h_t; Box actions are scaled into [-1, 1]."""
        action_enc = action_enc / action_enc.abs().clamp_min(1.0).detach()
        return self.cell(self.img_in(torch.cat([z, action_enc], dim=-1)), h)

    def _logp(self, logits: torch.Tensor) -> torch.Tensor:
        return unimix_logp(logits.reshape(*logits.shape[:-1], self.stoch, self.classes), self.unimix)

    def prior_logp(self, h: torch.Tensor) -> torch.Tensor:
        """(..., deter) -> the prior's unimixed log-probabilities (..., stoch, classes)."""
        return self._logp(self.prior_net(h))

    def posterior_logp(self, h: torch.Tensor, embed: torch.Tensor) -> torch.Tensor:
        return self._logp(self.post_net(torch.cat([h, embed], dim=-1)))

    def reward(self, feat: torch.Tensor) -> torch.Tensor:
        """The predicted reward (symexp of the expected symlog bin) of features (..., F) -> (...)."""
        return symexp(twohot_mean(torch.softmax(self.reward_head(feat), -1), self.reward_bins))

    def continue_logit(self, feat: torch.Tensor) -> torch.Tensor:
        return self.continue_head(feat).squeeze(-1)

    # -- the protocol --------------------------------------------------------------------------------------
    def initial_state(self, batch: int, generator: torch.Generator | None = None, obs: torch.Tensor | None = None) -> State:
        device = self.start_h.device
        if obs is not None:
            e = self.embed(obs.to(device))
            h = torch.zeros(e.shape[0], self.deter, device=device)
            return {"h": h, "z": mode_onehot(self.posterior_logp(h, e)).flatten(1)}
        idx = torch.randint(self.start_h.shape[0], (batch,), generator=generator, device=device)
        return self.start_state(idx)

    def start_state(self, index: torch.Tensor) -> State:
        return {"h": self.start_h[index].clone(), "z": self.start_z[index].clone()}

    @property
    def bank_size(self) -> int:
        return int(self.start_h.shape[0])

    def noise_spec(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """One step draws one uniform per class of each latent variable (its Gumbel noise)."""
        return {"gumbel_uniform": ("uniform", (self.stoch, self.classes))}

    def observe(self, state: State, action: torch.Tensor, obs: torch.Tensor) -> State:
        h = self.step_deter(state["h"], state["z"], self.encode_action(action))
        return {"h": h, "z": mode_onehot(self.posterior_logp(h, self.embed(obs.to(h.device)))).flatten(1)}

    def imagine(self, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None = None,
                member=None, noise: dict[str, torch.Tensor] | None = None) -> Transition:
        """One dream step: h from the GRU, z sampled from the prior at temperature ``tau`` (see the module docstring);
        ``noise``: the step's uniforms drawn by the caller (:meth:`noise_spec`), in place of ``generator``'s."""
        h, z = state["h"], state["z"]
        if noise is None:
            resolve_member(member, 1, h.shape[0], generator, h.device)  # the one member; refuses indices other than 0
        h = self.step_deter(h, z, self.encode_action(action))
        z = sample_onehot(self.prior_logp(h), generator, tau, None if noise is None else noise["gumbel_uniform"]).flatten(1)
        feat = torch.cat([h, z], dim=-1)
        p_end = 1.0 - torch.sigmoid(self.continue_logit(feat))
        zero = torch.zeros_like(p_end)
        return Transition({"h": h, "z": z}, self.reward(feat), p_end > 0.5, p_end, zero, zero.clone())

    def features(self, state: State) -> torch.Tensor:
        return torch.cat([state["h"], state["z"]], dim=-1)

    def decode(self, state: State) -> torch.Tensor:
        out = self.decoder(self.features(state))
        if self.pixels:
            return (out * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return symexp(out)

    # -- training ----------------------------------------------------------------------------------------------
    def sequence_loss(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor, terminated: torch.Tensor,
                      mask: torch.Tensor, generator: torch.Generator | None = None, outputs: bool = False) -> dict[str, torch.Tensor]:
        """DreamerV3's world-model loss on a batch of sequences.

        Shapes as :meth:`RSSM.sequence_loss <gym_dream.models.rssm.RSSM.sequence_loss>`: obs (B, T+1, ...) o_0..o_T;
        actions (B, T) or (B, T, A); rewards, terminated, mask (B, T): transition t goes from o_t with a_t to o_{t+1},
        its reward and end predicted from the state of o_{t+1}. ``loss`` = reconstruction + reward (two-hot cross-entropy)
        + continue (binary cross-entropy) + 0.5 dyn + 0.1 rep, each a mean over real steps; dyn and rep are the
        posterior-prior KL (summed over the latent variables) with the gradient to the prior and to the posterior
        respectively, each clipped below at 1 nat (free bits). Also reported: ``kl`` (unclipped), ``reward_mse``
        (of the predicted reward), the prior's and posterior's entropies. ``outputs=True`` adds the per-transition
        ``reward_pred`` and ``termination_prob`` (B, T). Posterior samples are drawn with ``generator``.
        """
        return dreamer_loss.sequence_loss(self, obs, actions, rewards, terminated, mask, generator, outputs)
