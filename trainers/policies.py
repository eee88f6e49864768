"""Data-collecting policies over a batch of real envs."""

from __future__ import annotations

import numpy as np
from gymnasium import spaces


class RandomPolicy:
    """Uniform random actions."""

    def __init__(self, action_space: spaces.Space, num_envs: int, seed: int):
        self.space, self.num_envs = action_space, num_envs
        self.rng = np.random.default_rng(seed)

    def reset(self, index: int) -> None:
        """Env ``index`` starts a new episode."""

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        if isinstance(self.space, spaces.Discrete):
            return self.space.start + self.rng.integers(0, self.space.n, size=self.num_envs)
        low, high = self.space.low, self.space.high
        return self.rng.uniform(low, high, size=(self.num_envs, *self.space.shape)).astype(self.space.dtype)


class BrownianPolicy(RandomPolicy):
    """Smoothed random actions for Box spaces: a random walk a_t = clip(a_{t-1} + sigma * N(0, 1)).

    White-noise actions cancel out (a car barely moves); a random walk holds an action for a while
    and explores far better. ``sigma`` is relative to each dimension's range.
    """

    def __init__(self, action_space: spaces.Space, num_envs: int, seed: int, sigma: float = 0.1):
        if not isinstance(action_space, spaces.Box):
            raise ValueError("The brownian policy needs a Box action space; use policy='random' for discrete actions.")
        super().__init__(action_space, num_envs, seed)
        self.sigma = sigma * (action_space.high - action_space.low)
        self.actions = super().__call__(None)

    def reset(self, index: int) -> None:
        self.actions[index] = self.rng.uniform(self.space.low, self.space.high)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        step = self.rng.normal(size=self.actions.shape) * self.sigma
        self.actions = np.clip(self.actions + step, self.space.low, self.space.high).astype(self.space.dtype)
        return self.actions.copy()


POLICIES = {"random": RandomPolicy, "brownian": BrownianPolicy}


def make_policy(name: str, action_space: spaces.Space, num_envs: int, seed: int):
    if name not in POLICIES:
        raise ValueError(f"Unknown collection policy {name!r}; choose from {sorted(POLICIES)}.")
    return POLICIES[name](action_space, num_envs, seed)
