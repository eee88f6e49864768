"""Data-collecting policies over a batch of real envs."""

from __future__ import annotations

import functools
import os

import numpy as np
from gymnasium import spaces

from trainers.data.noise import OUNoise, OUProcess


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


class StickyRandomPolicy(RandomPolicy):
    """Uniform random actions, each held for a random 1..``max_hold`` steps (World Models' Doom data).

    A fresh uniform action every step jitters in place (left, right, left: the agent barely moves);
    holding each action for a while makes the player walk into corners, across the room and into
    fireballs, so the data shows the model what moving does. Works for any action space.
    """

    def __init__(self, action_space: spaces.Space, num_envs: int, seed: int, max_hold: int = 10):
        if max_hold < 1:
            raise ValueError(f"max_hold must be >= 1, got {max_hold}.")
        super().__init__(action_space, num_envs, seed)
        self.max_hold = max_hold
        self.actions = super().__call__(None)
        self.left = self.rng.integers(1, max_hold + 1, size=num_envs)

    def reset(self, index: int) -> None:
        self.left[index] = 0  # a new episode draws a new action at its first step

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        fresh = self.left <= 0
        if fresh.any():
            self.actions[fresh] = super().__call__(obs)[fresh]
            self.left[fresh] = self.rng.integers(1, self.max_hold + 1, size=int(fresh.sum()))
        self.left -= 1
        return self.actions.copy()


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


class OUPolicy(RandomPolicy):
    """Mean-reverting random actions (Ornstein-Uhlenbeck) for Box spaces, around a per-episode mean.

    ``a_t = clip(x_t)`` with ``x_t`` the :class:`~trainers.data.noise.OUProcess` around ``mu``. Unlike a free random walk,
    it keeps returning to ``mu``: for CarRacing a mean with some gas and no brake drives the car along
    the track (and off it, and back), where a free walk often brakes to a halt on the start line.
    Each episode draws its own ``mu`` within ``mean +- jitter``, so the data covers several speeds and
    steering biases. ``mean``, ``sigma`` and ``jitter`` are in action units, per dimension or scalar.
    """

    def __init__(self, action_space: spaces.Space, num_envs: int, seed: int, mean=0.0, sigma=0.1, theta: float = 0.1, jitter=0.0):
        if not isinstance(action_space, spaces.Box):
            raise ValueError("The ou policy needs a Box action space; use policy='random' for discrete actions.")
        super().__init__(action_space, num_envs, seed)
        shape = action_space.shape
        self.mean = np.broadcast_to(np.asarray(mean, dtype=np.float64), shape)
        self.sigma = np.broadcast_to(np.asarray(sigma, dtype=np.float64), shape)
        self.jitter = np.broadcast_to(np.asarray(jitter, dtype=np.float64), shape)
        self.theta = theta
        self.mu = self.mean + self.jitter * self.rng.uniform(-1, 1, size=(num_envs, *shape))
        self.actions = np.clip(self.mu, self.space.low, self.space.high).astype(self.space.dtype)
        self.process = OUProcess(self.mu.copy(), self.sigma, theta, self.rng, mean=self.mu)

    def reset(self, index: int) -> None:
        self.mu[index] = self.mean + self.jitter * self.rng.uniform(-1, 1, size=self.mean.shape)
        self.process.value[index] = self.mu[index]

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        # the process runs unclipped (so e.g. a brake mean below 0 brakes only now and then); actions are clipped
        self.actions = np.clip(self.process.step(), self.space.low, self.space.high).astype(self.space.dtype)
        return self.actions.copy()


def road_steering(frames: np.ndarray) -> np.ndarray:
    """CarRacing: steering toward the grey road in the band just ahead of the car.

    Uses only the pixels the agent sees: the road is grey (R = G = B, about 100-110), grass is green.
    Works on frames of any size (the collector passes the 64x64 model input; the band, the pixel
    count and the steering scale were tuned on the raw 96x96 frames and scale with the frame).
    Returns steering in [-1, 1] per frame (0 where no road is in view).
    """
    h, w = frames.shape[1:3]
    band = frames[:, round(h * 40 / 96) : round(h * 62 / 96)].astype(np.int16)
    r, g, b = band[..., 0], band[..., 1], band[..., 2]
    road = (np.abs(r - g) < 12) & (np.abs(g - b) < 12) & (r > 80) & (r < 130)
    count = road.sum(axis=(1, 2))
    centre = (road.sum(axis=1) * np.arange(w)).sum(-1) / np.maximum(count, 1)
    return np.where(count > 10 * (h * w) / 96**2, np.clip((centre - w / 2) / (12.0 * w / 96), -1.0, 1.0), 0.0)


class RoadNoisePolicy(OUPolicy):
    """CarRacing data collection: OU noise that, for stretches of time, also steers toward the road.

    Pure random driving leaves the road within ~10 tiles and never shows the model the rest of the
    track (corners, long straights, the finish). Here each stretch of ``segment`` steps (on average)
    is either *following* (OU noise added to a crude pixel road-follower, probability ``follow``) or
    *wandering* (OU noise alone), so episodes cover the whole track and also leaving it, grass,
    recovering and braking. It reads only the frame the agent sees; it is a data recipe, not an agent.
    """

    def __init__(self, action_space: spaces.Space, num_envs: int, seed: int, follow: float = 0.7, segment: int = 150, **ou):
        super().__init__(action_space, num_envs, seed, **ou)
        self.follow, self.segment = follow, segment
        self.following = self.rng.random(num_envs) < follow

    def reset(self, index: int) -> None:
        super().reset(index)
        self.following[index] = self.rng.random() < self.follow

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        switch = self.rng.random(self.num_envs) < 1.0 / self.segment
        self.following = np.where(switch, self.rng.random(self.num_envs) < self.follow, self.following)
        actions = super().__call__(obs)
        steer = road_steering(np.asarray(obs))
        actions[:, 0] = np.clip(actions[:, 0] + self.following * steer, -1.0, 1.0)
        return actions


@functools.lru_cache(maxsize=4)
def _driver(path: str, model: str | None):
    """An agent and its world model, loaded once per process (collection makes a policy for every episode)."""
    import gym_dream
    from gym_dream.agents import AGENTS_DIR, agent_path
    from trainers.agents.stored_agent import load_agent

    named = model if isinstance(model, (str, os.PathLike)) else None
    where = agent_path(path, named)  # a path, or the name of an agent shipped with the model named
    agent = load_agent(where)
    if model is None and where.parent.name == AGENTS_DIR and (where.parent.parent / "model.json").is_file():
        model = str(where.parent.parent)  # shipped next to its model: the path its card recorded was the training machine's
    model = model or agent.card.get("model")
    if model is None:
        raise ValueError(f"{path} does not record its world model; pass model=<directory or name>.")
    return agent, gym_dream.resolve_model(model)


class AgentPolicy(RandomPolicy):
    """Iterative collection, World Models' suggestion for harder envs: an agent trained in a dream drives the real
    envs, seen through the world model it was trained in, with exploration noise.

    A dream is only right where its data went. An agent trained in it goes where it pleases (in CarRacing: full
    throttle, where the data drove slowly), so the next round's data shows the model what really happens there.
    ``agent`` is any stored agent ``trainers.agents.stored_agent.load_agent`` reads: a CMA-ES controller directory or an SB3
    policy stored as data (``<run>/best``), or the name of an agent shipped with ``model``; ``controller`` is its older
    name. ``model`` is its world model (default: the model a shipped agent sits next to, else the one recorded in the
    agent's card). Box actions get Ornstein-Uhlenbeck noise (``sigma``, ``theta``, in action
    units); with probability ``random`` per step (the only noise for Discrete spaces) the action is uniform random.
    Like every collection policy it is called with the model's input (preprocessed observations), not raw ones.
    """

    def __init__(self, action_space: spaces.Space, num_envs: int, seed: int, agent: str | None = None, model: str | None = None,
                 sigma: float = 0.1, theta: float = 0.15, random: float = 0.0, controller: str | None = None):
        super().__init__(action_space, num_envs, seed)
        path = agent or controller
        if path is None:
            raise ValueError("The agent policy needs agent=<a controller directory or a stored SB3 policy>.")
        if model is None or isinstance(model, (str, os.PathLike)):
            self.agent, self.model = _driver(str(path), None if model is None else str(model))
        else:  # a loaded model
            self.agent, self.model = _driver.__wrapped__(str(path), model)
        reads = int(np.prod(self.agent.observation_space.shape))
        if self.model.feature_dim != reads:
            raise ValueError(f"The agent reads {reads} features but {model} gives {self.model.feature_dim}; "
                             "pass the model the agent was trained in.")
        self.random = random
        self.noise = OUNoise(action_space, num_envs, sigma, theta, rng=self.rng) if isinstance(action_space, spaces.Box) else None
        self.state = None
        self.last_actions = None
        self.fresh = np.ones(num_envs, bool)

    def reset(self, index: int) -> None:
        self.fresh[index] = True
        if self.noise is not None:
            self.noise.reset(index)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        import torch

        from gym_dream.envs.core import actions_to_tensor
        from gym_dream.models.base import state_where

        with torch.inference_mode():
            # the collector hands policies the model's input (the recipe's preprocessing already applied in the env's
            # process: the 'screen' of a dict observation, resized), so it goes to the model as it is
            x = torch.as_tensor(np.asarray(obs), device=self.model.device)
            start = self.model.initial_state(self.num_envs, obs=x)
            if self.state is None:
                self.state = start
            else:
                a = actions_to_tensor(self.last_actions, self.space, self.num_envs, self.model.device)
                seen = self.model.observe(self.state, a, x)
                self.state = state_where(torch.as_tensor(self.fresh, device=self.model.device), start, seen)
            features = self.model.features(self.state).cpu().numpy()
        self.fresh[:] = False
        actions, _ = self.agent.predict(features)
        if self.noise is not None:
            actions = self.noise.add(actions)
        swap = self.rng.random(self.num_envs) < self.random
        if swap.any():
            actions = np.array(actions)
            actions[swap] = super().__call__(obs)[swap]
        self.last_actions = actions
        return actions


POLICIES = {"random": RandomPolicy, "sticky": StickyRandomPolicy, "brownian": BrownianPolicy, "ou": OUPolicy, "road_noise": RoadNoisePolicy,
            "controller": AgentPolicy, "agent": AgentPolicy}


def make_policy(name: str, action_space: spaces.Space, num_envs: int, seed: int, **kwargs):
    """Policy ``name`` for ``num_envs`` envs; ``kwargs`` are the policy's own settings (a recipe's)."""
    if name not in POLICIES:
        raise ValueError(f"Unknown collection policy {name!r}; choose from {sorted(POLICIES)}.")
    return POLICIES[name](action_space, num_envs, seed, **kwargs)
