"""The world-model protocol every family implements; the envs know nothing else.

State is explicit (as in dreamerv3's ``RSSM.initial / observe / imagine``): a ``dict`` of batched
tensors goes in, a new one comes out, and the caller owns it. Randomness comes only from the
``torch.Generator`` the caller passes, so an env seeded through Gymnasium reproduces its dream.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from gym_dream.models.encoders import STD_FLOOR
from gym_dream.preprocessing import Preprocessing

State = dict[str, torch.Tensor]


def tau_column(tau: float | torch.Tensor) -> float | torch.Tensor:
    """A temperature ready to scale (..., B, D) tensors: a number as it is, a (B,) tensor of per-env temperatures as (B, 1)."""
    return tau.unsqueeze(-1) if isinstance(tau, torch.Tensor) else tau


class Transition(NamedTuple):
    """One batched dream step."""

    state: State
    reward: torch.Tensor  # (B,) float32
    terminated: torch.Tensor  # (B,) bool, from the learned termination head
    termination_prob: torch.Tensor  # (B,) float32 in [0, 1]
    #: (B,) float32 >= 0: the dynamics members' disagreement about the next state (the family's docstring
    #: defines it); None or zeros for a single-member model
    disagreement: torch.Tensor | None = None
    #: (B,) float32 >= 0: the members' standard deviation of the predicted reward; None or zeros for one member
    reward_disagreement: torch.Tensor | None = None


class WorldModel(nn.Module, abc.ABC):
    """The protocol of world-model families: what the dream envs, the wrappers and the trainers call, and nothing else.

    A family sets :attr:`family`, builds its networks in ``__init__`` from JSON-able keyword arguments (returned by
    :meth:`hyperparameters`, stored in the model card) and implements the abstract methods: the dream
    (:meth:`initial_state`, :meth:`imagine`), the filter of real observations (:meth:`observe`), what an agent sees
    (:meth:`features`, :attr:`feature_dim`), the predicted observation (:meth:`decode`) and its training objective
    (:meth:`sequence_loss`, which its fitter calls). ``observation_space``/``action_space`` are the *real* env's spaces.
    A new family is one module plus :func:`gym_dream.models.register_family` (and, to fit it from the command line,
    ``trainers.fit.dispatch.register_fitter``); ``tests/trainers/test_new_family.py`` writes one in a few lines::

        class Linear(WorldModel):
            family = "linear"

            def __init__(self, observation_space, action_space, preprocessing, bank_size=1):
                super().__init__(observation_space, action_space, preprocessing)
                d = observation_space.shape[0]
                self.step = nn.Linear(d + self.action_dim, d + 2)           # next state, reward, end logit
                self.register_buffer("bank", torch.zeros(bank_size, d))
            def initial_state(self, batch, generator=None, obs=None): ...   # rows of the bank, or obs
            def imagine(self, state, action, tau, generator=None, member=None): ...  # Transition(...)
            ...

        register_family(Linear)
    """

    family: ClassVar[str]
    #: dynamics members batched in one tensor dimension (1: a single model; see gym_dream.models.members)
    members: int = 1

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, preprocessing: Preprocessing):
        super().__init__()
        if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
            raise TypeError(f"Dream action spaces must be Discrete or Box, got {action_space}.")
        self.observation_space = observation_space
        self.action_space = action_space
        self.preprocessing = preprocessing
        self.action_dim = int(action_space.n) if isinstance(action_space, spaces.Discrete) else int(np.prod(action_space.shape))
        #: the model card this model was loaded from ({} for a model built in memory)
        self.card: dict[str, Any] = {}
        #: where it was loaded from (a directory), or None
        self.source: str | None = None

    def positive_weights(self) -> dict[str, float]:
        """State-dict entries whose every value must be at least a floor, by name: the standard deviations a vector
        standardiser divides by (``vision.std``, ``obs_std``: :data:`~gym_dream.models.encoders.STD_FLOOR`). Loading
        refuses a file below them (a std of 0 gives inf observations). A family with other such tensors extends it."""
        return {k: STD_FLOOR for k in self.state_dict() if k.rsplit(".", 1)[-1] in ("std", "obs_std")}

    # -- the protocol -------------------------------------------------------------------------
    @abc.abstractmethod
    def initial_state(self, batch: int, generator: torch.Generator | None = None, obs: torch.Tensor | None = None) -> State:
        """Start states: drawn from the bank of encoded real first frames, or from ``obs`` if given."""
        raise NotImplementedError

    @abc.abstractmethod
    def observe(self, state: State, action: torch.Tensor, obs: torch.Tensor) -> State:
        """Fold the real observation that followed ``action`` into ``state``."""
        raise NotImplementedError

    @abc.abstractmethod
    def imagine(self, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None = None,
                member=None) -> Transition:
        """One dream step at temperature ``tau`` (a number, or a (B,) tensor: one per env), driven by ``member`` (None: member 0; ``"mean"``; ``"random"``:
        one per env drawn with ``generator``; or a (B,) tensor of member indices), with the members' disagreement.
        A family listing more than ``"float32"`` in :attr:`precisions` also takes ``precision=`` (a name from it).
        A family with an exportable dream (:meth:`noise_spec`) also takes ``noise=``: the step's random numbers drawn by the
        caller (a dict as :meth:`noise_spec` describes), used instead of ``generator`` by the same arithmetic."""
        raise NotImplementedError

    # -- an exportable dream (ONNX: trainers/export/onnx.py) ----------------------------------------
    # A family whose dream can run outside torch implements these two and takes ``noise=`` in ``imagine``: every random
    # number of a step is then an input, so an exported step is the torch step, with the noise drawn by the caller.
    def start_state(self, index: torch.Tensor) -> State:
        """The start states of the bank rows ``index`` ((B,) long): what :meth:`initial_state` returns once it has drawn
        ``index`` (uniformly over :attr:`bank_size` rows, with its generator)."""
        raise NotImplementedError(f"The {self.family!r} family has no exportable dream yet: it needs start_state(index), "
                                  f"noise_spec() and imagine(noise=...) (see gym_dream.models.base.WorldModel).")

    def noise_spec(self) -> dict[str, tuple[str, tuple[int, ...]]]:
        """The random numbers one single-member float32 :meth:`imagine` step draws, in the order it draws them:
        name -> (``"uniform"`` (on [0, 1)) or ``"normal"`` (standard), the shape of one env's row). ``imagine(..., noise=)``
        takes a dict of (B, *shape) float32 tensors with these names."""
        raise NotImplementedError(f"The {self.family!r} family has no exportable dream yet: it needs start_state(index), "
                                  f"noise_spec() and imagine(noise=...) (see gym_dream.models.base.WorldModel).")

    def draw_noise(self, batch: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """One step's random numbers for ``batch`` envs as :meth:`noise_spec` describes them, drawn with ``generator``."""
        out = {}
        for name, (kind, shape) in self.noise_spec().items():
            draw = torch.rand if kind == "uniform" else torch.randn
            out[name] = draw((batch, *shape), generator=generator, device=self.device)
        return out

    @property
    def bank_size(self) -> int:
        """Rows in the start-state bank (what :meth:`start_state` indexes)."""
        raise NotImplementedError

    @property
    def precisions(self) -> tuple[str, ...]:
        """The arithmetic ``imagine`` can run in; the first, ``"float32"``, is the default and the model as trained."""
        return ("float32",)

    @abc.abstractmethod
    def features(self, state: State) -> torch.Tensor:
        """What an agent sees: a (B, feature_dim) float32 tensor."""
        raise NotImplementedError

    @abc.abstractmethod
    def decode(self, state: State) -> torch.Tensor:
        """The predicted observation: (B, H, W, 3) uint8 for pixel models, (B, D) float32 for vectors."""
        raise NotImplementedError

    @abc.abstractmethod
    def sequence_loss(self, *batch: torch.Tensor, **kwargs: Any) -> dict[str, torch.Tensor]:
        """The family's training objective on a batch of real sequences, as its fitter feeds them: a dict whose
        ``"loss"`` is the scalar to minimise (other entries are reported). Each family documents its batch (e.g.
        :meth:`RSSM.sequence_loss <gym_dream.models.rssm.RSSM.sequence_loss>`: observations, actions, rewards, ends, mask)."""

    # -- shared helpers ------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def feature_dim(self) -> int:
        """The size of :meth:`features`."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @abc.abstractmethod
    def hyperparameters(self) -> dict[str, Any]:
        """Constructor keyword arguments (JSON-able), stored in the card as ``params``."""
        raise NotImplementedError

    def encode_action(self, action: torch.Tensor) -> torch.Tensor:
        """Actions as network input: one-hot for Discrete, float vectors for Box."""
        if isinstance(self.action_space, spaces.Discrete):
            idx = action.reshape(-1).long() - int(self.action_space.start)
            return nn.functional.one_hot(idx, self.action_dim).float()
        return action.reshape(action.shape[0], self.action_dim).float()

    def obs_to_tensor(self, obs: Any, batched: bool = False) -> torch.Tensor:
        """Preprocess raw real observations into a model-input tensor on the model's device."""
        x = self.preprocessing(obs, batched=batched)
        t = torch.as_tensor(x, device=self.device)
        return t if batched else t.unsqueeze(0)


def version_key(t: torch.Tensor) -> tuple[int, int]:
    """Changes when ``t`` is replaced or modified in place (an inference tensor cannot be modified outside inference mode)."""
    return t.data_ptr(), (0 if t.is_inference() else t._version)


def bfloat16_of(model: nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """A bf16 copy of ``weight``, kept on ``model`` and made again only after the weight changes."""
    cache = model.__dict__.setdefault("_bf16_weights", {})
    key = version_key(weight)
    hit = cache.get(id(weight))
    if hit is None or hit[0] != key:
        hit = cache[id(weight)] = (key, weight.detach().to(torch.bfloat16))
    return hit[1]


def linear_bfloat16(model: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``x @ weight.T + bias`` with the product in bf16 (fp32 accumulation) and an fp32 result and bias."""
    y = nn.functional.linear(x.to(torch.bfloat16), bfloat16_of(model, weight)).float()
    return y if bias is None else y.add_(bias)


def mlp_bfloat16(model: nn.Module, mlp: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An ``nn.Linear`` or a ``Sequential`` of Linear layers and activations, its products in bf16 except the last
    Linear's (a narrow output layer: fp32 keeps the prediction's precision for little arithmetic)."""
    layers = list(mlp) if isinstance(mlp, nn.Sequential) else [mlp]
    last = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear))
    for i, layer in enumerate(layers):
        x = linear_bfloat16(model, x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) and i < last else layer(x)
    return x


def state_where(mask: torch.Tensor, a: State, b: State) -> State:
    """Row-wise choice: ``a[i]`` where ``mask[i]`` else ``b[i]``."""
    out = {}
    for key, va in a.items():
        m = mask.reshape(-1, *([1] * (va.dim() - 1)))
        out[key] = torch.where(m, va, b[key])
    return out


def state_repeat(state: State, repeats: int) -> State:
    """Repeat each row ``repeats`` times (row i becomes rows i*repeats .. i*repeats+repeats-1)."""
    return {k: v.repeat_interleave(repeats, dim=0) for k, v in state.items()}


def state_clone(state: State) -> State:
    return {k: v.clone() for k, v in state.items()}


def state_batch_size(state: State) -> int:
    return int(next(iter(state.values())).shape[0])
