"""Dynamics members in one tensor dimension (mbrl-lib's ``ensemble_size``, PETS): M independently
initialised copies of a layer whose weights carry a leading member dimension, run as one batched
matrix product over it, never a Python loop over members.

Every layer here takes and returns tensors with the member dimension first, ``(M, ..., features)``.
With one member each layer *is* its ordinary torch counterpart (``nn.Linear``, ``nn.LSTM``'s and
``nn.GRUCell``'s parameter names, shapes, initialisation and kernels), so a single-member model has
the state-dict and the floating-point results of the models gym-dream shipped before members existed.

How a member is chosen for an imagined step (:data:`MEMBER_CHOICES`):

* ``"random_per_step"``: every env draws a member uniformly at each step (PETS' TS1);
* ``"random_per_episode"``: every env draws a member when its episode starts and keeps it (one
  plausible world per dream, as Dropout's Dream Land samples one mask per dream);
* ``"mean"``: every member samples its next state with the same random numbers and the dream follows
  their average (reward and termination probability: the members' averages on that next state).

The envs draw members with their own ``torch.Generator``; a model's ``imagine`` takes ``member``:
``None`` (member 0, the only one of a single-member model), ``"mean"``, ``"random"`` (drawn per env
with the generator passed) or a ``(B,)`` long tensor of member indices.

Two forms, measured on CartPole (``results/calibration/calibration_cartpole*.md``, ``benchmarks/calibration.py``):
an ensemble (independent cores, the default) and, for the MDN-RNN, dropout masks of one network
(``dropout=p``). Both disagreements rank one member's actual one-step error alike (Spearman 0.64 vs
0.63 on random held-out data); for the members' mean the ensemble's ranks it better (0.75 vs 0.36),
and on shifted (sticky-action) data the ensemble predicts better (10-step error 0.022 vs 0.026). The
masks cost less (``results/throughput.json``, ``python benchmarks/throughput.py``: a 1024-env dream step 2.9x one
member's vs 5.8x for 5 ensemble members; a training batch 4.3x vs 9.8x; results/performance.md: the ensemble's 5x is its
arithmetic).
"""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import nn
from torch.nn import functional as F

MEMBER_CHOICES = ("random_per_episode", "random_per_step", "mean")


def check_members(members: int) -> int:
    if isinstance(members, bool) or not isinstance(members, int) or members < 1:
        raise ValueError(f"members must be an integer >= 1 (1: a single model, 5: a 5-member ensemble), got {members!r}.")
    return members


def member_linear(members: int, inp: int, out: int) -> nn.Module:
    """``nn.Linear`` for one member, :class:`MemberLinear` for several."""
    return nn.Linear(inp, out) if members == 1 else MemberLinear(members, inp, out)


class MemberLinear(nn.Module):
    """M independent affine maps: ``(M, ..., inp) -> (M, ..., out)`` with ``weight`` (M, out, inp), ``bias`` (M, out).

    Each member is initialised as ``nn.Linear`` initialises itself.
    """

    def __init__(self, members: int, inp: int, out: int):
        super().__init__()
        self.members, self.in_features, self.out_features = members, inp, out
        self.weight = nn.Parameter(torch.empty(members, out, inp))
        self.bias = nn.Parameter(torch.empty(members, out))
        bound = 1.0 / math.sqrt(inp) if inp > 0 else 0.0
        with torch.no_grad():
            for m in range(members):
                nn.init.kaiming_uniform_(self.weight[m], a=math.sqrt(5))
                nn.init.uniform_(self.bias[m], -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.members:
            raise ValueError(f"MemberLinear expects the member dimension first ({self.members}), got input shape {tuple(x.shape)}.")
        flat = x.reshape(self.members, -1, self.in_features)
        y = torch.baddbmm(self.bias.unsqueeze(1), flat, self.weight.transpose(1, 2))
        return y.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"members={self.members}, in_features={self.in_features}, out_features={self.out_features}"


def member_mlp(members: int, inp: int, hidden: int, out: int, layers: int = 1) -> nn.Module:
    """``layers`` hidden ELU layers of ``hidden`` units (0 hidden units: one linear map), per member."""
    if hidden <= 0 or layers == 0:
        return member_linear(members, inp, out)
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [member_linear(members, inp if i == 0 else hidden, hidden), nn.ELU()]
    mods.append(member_linear(members, hidden, out))
    return nn.Sequential(*mods)


def _uniform_init(module: nn.Module, hidden: int) -> None:
    """nn.LSTM's and nn.GRUCell's initialisation: every parameter ~ U(-1/sqrt(hidden), 1/sqrt(hidden)), in order."""
    bound = 1.0 / math.sqrt(hidden)
    with torch.no_grad():
        for p in module.parameters():
            nn.init.uniform_(p, -bound, bound)


def _input_gates(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x (B, in) shared by every member, or (M, B, in) -> (M, B, gates)."""
    m = weight.shape[0]
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(m, *x.shape)
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _recurrent_params(module: nn.Module, members: int, inp: int, hidden: int, gates: int, suffix: str) -> None:
    """A recurrent cell's weights and biases with a member dimension, named as torch names them (``suffix``: nn.LSTM's
    "_l0", nn.GRUCell's ""), initialised as torch does."""
    module.members, module.input_size, module.hidden_size = members, inp, hidden
    for name, shape in (("weight_ih", (gates * hidden, inp)), ("weight_hh", (gates * hidden, hidden)),
                        ("bias_ih", (gates * hidden,)), ("bias_hh", (gates * hidden,))):
        setattr(module, name + suffix, nn.Parameter(torch.empty(members, *shape)))
    _uniform_init(module, hidden)


class MemberLSTM(nn.Module):
    """M LSTM cores (one layer), batched over members; nn.LSTM's parameter names with a member dimension.

    ``cell(x, h, c)``: x (B, in) shared by the members or (M, B, in), h/c (M, B, H) -> h', c' (M, B, H).
    ``forward(x)``: a teacher-forced sequence, x (B, T, in) shared or (M, B, T, in) -> (M, B, T, H).
    """

    def __init__(self, members: int, inp: int, hidden: int):
        super().__init__()
        _recurrent_params(self, members, inp, hidden, gates=4, suffix="_l0")

    @staticmethod
    def _gates(gx: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """gx: input gates with both biases (M, B, 4H); w_hh_t: (M, H, 4H)."""
        g = torch.baddbmm(gx, h, w_hh_t)
        i, f, cell, o = g.chunk(4, dim=-1)  # torch's gate order
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cell)
        return torch.sigmoid(o) * torch.tanh(c), c

    def cell(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        gx = _input_gates(x, self.weight_ih_l0, self.bias_ih_l0 + self.bias_hh_l0)  # both biases in one product
        return self._gates(gx, h, c, self.weight_hh_l0.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, hdim = self.members, self.hidden_size
        if x.dim() == 3:
            x = x.unsqueeze(0).expand(m, *x.shape)
        _, b, t, _ = x.shape
        # the input projection of every step at once; only the recurrence steps in time
        bias = (self.bias_ih_l0 + self.bias_hh_l0).unsqueeze(1)
        gx = torch.baddbmm(bias, x.reshape(m, b * t, -1), self.weight_ih_l0.transpose(1, 2)).reshape(m, b, t, -1).transpose(1, 2).contiguous()
        w_hh_t = self.weight_hh_l0.transpose(1, 2).contiguous()  # one copy per sequence, not per step
        h = x.new_zeros(m, b, hdim)
        c = x.new_zeros(m, b, hdim)
        out = []
        for g in gx.unbind(1):  # unbind, not gx[:, i]: its backward builds one gradient, not T full-size zero tensors
            h, c = self._gates(g, h, c, w_hh_t)
            out.append(h)
        return torch.stack(out, dim=2)


class MemberGRUCell(nn.Module):
    """M GRU cells batched over members; nn.GRUCell's parameter names and equations with a member dimension.

    ``forward(x, h)``: x (B, in) shared or (M, B, in), h (M, B, H) -> (M, B, H).
    """

    def __init__(self, members: int, inp: int, hidden: int):
        super().__init__()
        _recurrent_params(self, members, inp, hidden, gates=3, suffix="")

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        gx = _input_gates(x, self.weight_ih, self.bias_ih)
        gh = torch.baddbmm(self.bias_hh.unsqueeze(1), h, self.weight_hh.transpose(1, 2))
        xr, xz, xn = gx.chunk(3, dim=-1)
        hr, hz, hn = gh.chunk(3, dim=-1)
        r = torch.sigmoid(xr + hr)
        z = torch.sigmoid(xz + hz)
        n = torch.tanh(xn + r * hn)
        return (1.0 - z) * n + z * h


# -- choosing and comparing members -------------------------------------------------------------------
def member_spread(x: torch.Tensor) -> torch.Tensor:
    """Disagreement of M predictions ``x`` (M, ..., D): the members' standard deviation (population, ddof 0)
    in each dimension, averaged over the D dimensions -> (...). Computed from the deviations to member 0
    (the variance is shift-invariant), so identical members give exactly 0."""
    dev = x - x[:1]
    var = (dev.pow(2).mean(0) - dev.mean(0).pow(2)).clamp_min(0.0)
    return var.sqrt().mean(dim=-1)


DISAGREEMENT_QUANTILES = ("50", "90", "95", "99", "99.9")


def disagreement_summary(values, episodes: int) -> dict:
    """A model card's ``uncertainty.heldout_disagreement``: the distribution of per-transition disagreements
    (a 1-D array of held-out real transitions) as mean, max and the quantiles the envs' ``uncertainty_limit="q<p>"`` names."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64).reshape(-1)
    return {"transitions": int(v.size), "episodes": int(episodes), "mean": float(v.mean()), "max": float(v.max()),
            "quantiles": {q: float(np.quantile(v, float(q) / 100.0)) for q in DISAGREEMENT_QUANTILES}}


def resolve_member(member, members: int, batch: int, generator: torch.Generator | None, device) -> torch.Tensor | str:
    """``imagine``'s ``member`` argument -> a (B,) long tensor of member indices, or ``"mean"``."""
    if member is None:
        return torch.zeros(batch, dtype=torch.long, device=device)
    if isinstance(member, str):
        if member == "mean":
            return "mean"
        if member == "random":
            return torch.randint(members, (batch,), generator=generator, device=device)
        raise ValueError(f"member must be None, 'mean', 'random' or a tensor of member indices, got {member!r}.")
    idx = torch.as_tensor(member, device=device).long().reshape(-1)
    if idx.shape[0] != batch or (idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= members)):
        raise ValueError(f"member indices must be a ({batch},) tensor with values in [0, {members - 1}], got {tuple(idx.shape)}.")
    return idx


def pick(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Row b of member idx[b]: x (M, B, ...) -> (B, ...)."""
    return x[idx, torch.arange(x.shape[1], device=x.device)]


def clip_grad_norm_per_member(parameters: Iterable[nn.Parameter], max_norm: float, members: int) -> torch.Tensor:
    """``clip_grad_norm_`` for each member separately, over member-batched parameters (first dimension
    = members): one member's large gradient never shrinks another's. With one member this is
    ``torch.nn.utils.clip_grad_norm_``. Returns the (M,) gradient norms before clipping."""
    params = [p for p in parameters if p.grad is not None]
    if members == 1:
        return torch.nn.utils.clip_grad_norm_(params, max_norm).reshape(1)
    if not params:
        return torch.zeros(members)
    for p in params:
        if p.dim() == 0 or p.shape[0] != members:
            raise ValueError(f"clip_grad_norm_per_member got a parameter of shape {tuple(p.shape)} without a leading member dimension ({members}).")
    norms = sum(p.grad.detach().reshape(members, -1).pow(2).sum(1) for p in params).sqrt()
    scale = (max_norm / (norms + 1e-6)).clamp(max=1.0)
    for p in params:
        p.grad.detach().mul_(scale.reshape(members, *([1] * (p.dim() - 1))))
    return norms
