"""Exploration noise on a Box action: one Ornstein-Uhlenbeck process (:class:`OUProcess`). As noise added to
an agent's actions (:class:`OUNoise`) it drives the controller-driven collection policy
(``policies.AgentPolicy``) and :class:`WithActionNoise`, which runs any agent with that same noise (to
score the policy that drove a collection round); as the actions themselves, around a mean, the collection
policies ``policies.OUPolicy`` and ``RoadNoisePolicy``."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


class OUProcess:
    """The one Ornstein-Uhlenbeck process: ``x_t = x_{t-1} + theta * (mean - x_{t-1}) + sigma * N(0, 1)``, elementwise
    over ``value`` (num_envs, *action shape); ``mean`` and ``sigma`` broadcast against it. Used by :class:`OUNoise`
    (mean 0, added to an agent's actions) and by ``policies.OUPolicy`` (the actions themselves, around a mean)."""

    def __init__(self, value: np.ndarray, sigma: Any, theta: float, rng: np.random.Generator, mean: Any = 0.0):
        if not 0.0 < theta <= 1.0:
            raise ValueError(f"theta must be in (0, 1], got {theta}.")
        if np.any(np.asarray(sigma) < 0):
            raise ValueError(f"sigma must be >= 0, got {sigma}.")
        self.value, self.sigma, self.theta, self.rng, self.mean = value, sigma, float(theta), rng, mean

    def step(self) -> np.ndarray:
        self.value += self.theta * (self.mean - self.value) + self.sigma * self.rng.normal(size=self.value.shape)
        return self.value


class OUNoise:
    """``n_t = n_{t-1} - theta * n_{t-1} + sigma * N(0, 1)`` per env and action dim, in action units
    (stationary std ``sigma / sqrt(theta * (2 - theta))``); ``add`` clips the noisy actions to the space."""

    def __init__(self, space: spaces.Box, num_envs: int, sigma: float = 0.1, theta: float = 0.15, seed: int | None = 0,
                 rng: np.random.Generator | None = None):
        if not isinstance(space, spaces.Box):
            raise ValueError(f"Action noise needs a Box action space, got {space}.")
        self.space, self.sigma, self.theta = space, float(sigma), float(theta)
        rng = rng if rng is not None else np.random.default_rng(seed)  # a caller's generator: one shared stream
        self.process = OUProcess(np.zeros((num_envs, *space.shape)), self.sigma, self.theta, rng)

    @property
    def value(self) -> np.ndarray:
        return self.process.value

    def reset(self, index: int | None = None, seed: int | None = None) -> None:
        """Env ``index`` (all when None) starts a new episode; ``seed`` restarts the random stream."""
        if seed is not None:
            self.process.rng = np.random.default_rng(seed)
        if index is None:
            self.value[:] = 0.0
        else:
            self.value[index] = 0.0

    def add(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions + self.process.step(), self.space.low, self.space.high).astype(self.space.dtype)


class WithActionNoise:
    """``agent``'s actions plus :class:`OUNoise`: a stochastic policy, e.g. the controller-plus-noise that
    drove a collection round. ``predict`` takes one observation or a batch (the batch size is fixed by the
    first call after ``begin_episode``); the evaluation loops call ``begin_episode(seed)`` at every episode
    start, so scores do not depend on how episodes are split among workers. Picklable."""

    def __init__(self, agent: Any, action_space: spaces.Box, sigma: float = 0.1, theta: float = 0.15):
        self.agent, self.action_space, self.sigma, self.theta = agent, action_space, float(sigma), float(theta)
        self.noise: OUNoise | None = None
        self.seed: int | None = 0

    def begin_episode(self, seed: int | None = None) -> None:
        self.noise, self.seed = None, seed

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        actions, state = self.agent.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)
        actions = np.asarray(actions)
        single = actions.shape == self.action_space.shape
        batch = actions[None] if single else actions
        if self.noise is None or len(self.noise.value) != len(batch):
            self.noise = OUNoise(self.action_space, len(batch), self.sigma, self.theta, seed=self.seed)
        noisy = self.noise.add(batch)
        return (noisy[0] if single else noisy), state
