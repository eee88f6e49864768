"""CEM-MPC: plan by rolling candidate action sequences through the batched dream (PlaNet's planner).

At every real step the planner repeats the current model state (from
:class:`gym_dream.wrappers.DreamObservation`) ``candidates`` times, rolls ``horizon`` steps of candidate
action sequences through the model's batched ``imagine`` (:func:`trainers.evaluation.rollout.rollout` on torch tensors,
ends by the model card's termination rule), keeps the ``top_k`` by predicted return, refits the sampling
distribution and repeats ``iterations`` times; it then takes the first action of the mean plan. Box actions use a Gaussian
per step and dimension, Discrete actions a categorical per step. Works with any model family.

It has SB3's ``predict(obs)``, but it plans from the wrapper's *state*, so it is bound to one
``DreamObservation`` (:meth:`CEMPlanner.bind`), and :func:`trainers.evaluation.evaluate` scores it like any agent.
Sample-efficient variants (iCEM's coloured noise, shrinking population, kept elites, warm start; MPPI's weights) are
options of :class:`trainers.planning.icem.ICEMPlanner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gym_dream.envs import core
from gym_dream.models import WorldModel
from gym_dream.models.base import state_repeat
from trainers.fit import presets
from trainers.evaluation.rollout import rollout


@dataclass
class CEMConfig:
    horizon: int = 12
    """planning horizon (model steps)"""
    iterations: int = 10
    """CEM refits per action"""
    candidates: int = 1000
    """action sequences per iteration"""
    top_k: int = 100
    """elite sequences the distribution is refitted to"""
    tau: float = 1.0
    """dream temperature while planning"""
    min_std: float = 0.05
    """floor of the Gaussian's standard deviation (Box actions)"""
    precision: str = "float32"
    """the model's arithmetic while planning: float32 (exact) or bfloat16 (single-member models; about 1.8x faster on
    CPUs with AVX-512 BF16, results/performance.md)"""


#: PlaNet's planner, a lighter one for CPUs, the tiny one (trainers/fit/presets.py); seconds per action: results/throughput.json
CEM_PRESETS = {name: CEMConfig(**p) for name, p in presets.CEM_PRESETS.items()}


class CEMPlanner:
    """Cross-entropy-method model-predictive control on a world model's dream."""

    def __init__(self, model: WorldModel, config: CEMConfig | str = "cpu", seed: int = 0, device: str | None = None):
        self.cfg = CEM_PRESETS[config] if isinstance(config, str) else config
        if not 0 < self.cfg.top_k <= self.cfg.candidates:
            raise ValueError(f"top_k must be in 1..candidates, got {self.cfg.top_k} of {self.cfg.candidates}.")
        self.model = model
        self.space = model.action_space
        self.tau = core.check_tau(self.cfg.tau, ranges=False)  # it imagines every candidate at one temperature
        self.termination = core.check_termination(None, model)
        self.precision = core.check_precision(self.cfg.precision, model)
        # the generator a DreamVectorEnv seeded with ``seed`` would derive, after its first reset's start-state
        # draw: the planner plans exactly as it did when it rolled its candidates through that env
        self.generator = core.make_generator(np.random.default_rng(seed), model.device)
        with torch.inference_mode():
            model.initial_state(self.cfg.candidates, self.generator)
        self.rng = np.random.default_rng(seed)
        self.wrapper = None
        self.exploration = 0.0

    def bind(self, wrapper) -> "CEMPlanner":
        """Plan from the state of this :class:`~gym_dream.wrappers.DreamObservation` (returns self)."""
        self.wrapper = wrapper
        return self

    # -- sampling ----------------------------------------------------------------------------------
    def _init_dist(self) -> tuple[np.ndarray, np.ndarray]:
        h = self.cfg.horizon
        if isinstance(self.space, gym.spaces.Discrete):
            return np.full((h, int(self.space.n)), 1.0 / int(self.space.n)), np.zeros(0)
        low, high = self.space.low, self.space.high
        return np.broadcast_to((low + high) / 2, (h, *self.space.shape)).copy(), np.broadcast_to((high - low) / 2, (h, *self.space.shape)).copy()

    def _sample(self, mean: np.ndarray, std: np.ndarray, n: int | None = None) -> np.ndarray:
        """``n`` (default: candidates) action sequences from the distribution."""
        n, h = self.cfg.candidates if n is None else n, self.cfg.horizon
        if isinstance(self.space, gym.spaces.Discrete):
            u = self.rng.random((n, h, 1))
            idx = (u > np.cumsum(mean, axis=-1)[None]).sum(-1)
            return self.space.start + np.minimum(idx, int(self.space.n) - 1)
        a = mean[None] + std[None] * self.rng.standard_normal((n, h, *self.space.shape))
        return np.clip(a, self.space.low, self.space.high).astype(self.space.dtype)

    def _refit(self, elites: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self.space, gym.spaces.Discrete):
            counts = np.stack([(elites - self.space.start == k).mean(0) for k in range(int(self.space.n))], -1)
            return counts, np.zeros(0)
        return elites.mean(0), np.maximum(elites.std(0), self.cfg.min_std)

    # -- planning ----------------------------------------------------------------------------------
    @torch.inference_mode()
    def returns(self, state: dict[str, torch.Tensor], plans: np.ndarray) -> np.ndarray:
        """Predicted undiscounted return of each plan (candidates, horizon, ...) from ``state`` (batch 1)."""
        device = self.model.device
        actions = torch.as_tensor(plans, device=device)
        actions = actions.long() if isinstance(self.space, gym.spaces.Discrete) else actions.float().reshape(len(plans), plans.shape[1], -1)
        states = [state_repeat({k: v.to(device) for k, v in state.items()}, len(plans))]

        def step(a: torch.Tensor):
            extra = {"precision": self.precision} if self.precision != "float32" else {}
            tr = self.model.imagine(states[0], a, self.tau, self.generator, **extra)
            states[0] = tr.state
            ended = core.terminations(tr.termination_prob, tr.terminated, self.termination, self.generator)
            return None, tr.reward, ended, torch.zeros_like(ended)

        # every plan runs the whole horizon: each call draws the same amount from the generator
        out = rollout(lambda obs, t: actions[:, t], step, None, len(plans), plans.shape[1], device=device, stop_when_done=False)
        return out.returns.cpu().numpy()

    def plan(self, state: dict[str, torch.Tensor]) -> np.ndarray:
        """The first action of the refined plan from ``state`` (a model state of batch 1)."""
        mean, std = self._init_dist()
        for _ in range(self.cfg.iterations):
            plans = self._sample(mean, std)
            scores = self.returns(state, plans)
            elites = plans[np.argsort(-scores)[: self.cfg.top_k]]
            mean, std = self._refit(elites)
        if isinstance(self.space, gym.spaces.Discrete):
            return np.asarray(self.space.start + int(np.argmax(mean[0])), dtype=self.space.dtype)
        return mean[0].astype(self.space.dtype)

    def act(self, state: dict[str, torch.Tensor], exploration: float = 0.0) -> Any:
        """:meth:`plan` plus exploration noise (Gaussian std for Box actions, epsilon for Discrete)."""
        action = self.plan(state)
        if exploration > 0:
            if isinstance(self.space, gym.spaces.Discrete):
                if self.rng.random() < exploration:
                    action = np.asarray(self.space.start + self.rng.integers(int(self.space.n)), dtype=self.space.dtype)
            else:
                noise = exploration * self.rng.standard_normal(self.space.shape)
                action = np.clip(action + noise, self.space.low, self.space.high).astype(self.space.dtype)
        return action

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        """SB3-style: the planned action for the bound wrapper's current model state."""
        if self.wrapper is None or self.wrapper.state is None:
            raise RuntimeError("CEMPlanner.predict plans from a DreamObservation's state: call planner.bind(wrapper) and reset it first.")
        return self.act(self.wrapper.state, 0.0 if deterministic else self.exploration), state
