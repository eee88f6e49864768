"""Agents that decide every k steps and hold each action in between (frame skip, on the agent's side).

A value-based agent such as DQN learns the difference between its actions' values, and when one step of an action
barely changes what follows (one tic of strafing in VizDoom take-cover, where the next action can undo it) that
difference is lost in the noise of a value of ~100: a DQN trained at every step of the Doom dream ends up holding one
action everywhere (results/trust.md). Atari's DQN and ViZDoom's own DQN example decide every 4 or 12 frames for this
reason. Here the hold is part of the agent, not of an env: trained with ``SB3Config.action_hold = k`` (the dream is
stepped k times per decision, rewards summed), stored with ``action_hold: k`` in its card, and acting k steps per
decision wherever it runs (the dream, the real env through ``DreamObservation``, an ensemble), so the same agent
sees the same thing everywhere. (``gym_dream.wrappers.ActionRepeat`` is the other kind: the real env's own repeat, under
which a model's data was collected, so that one model step is k real steps for every agent.)

:class:`HeldActions` wraps any agent with SB3's ``predict``: it asks the agent on the first step of an episode and every
k steps after, per env of a batch; an episode starts at ``begin_episode`` (the evaluation loops call it), at SB3's
``episode_start`` flags, or when the batch size changes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def check_action_hold(k: Any) -> int:
    """``k`` as a hold length (a positive int), or a clear error."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"action_hold must be a positive integer (steps per decision; 1 decides every step), got {k!r}.")
    return int(k)


def with_hold(agent: Any, every: Any) -> Any:
    """``agent`` acting every ``every`` steps: itself when that is every step, else :class:`HeldActions` around it."""
    return agent if check_action_hold(every) == 1 else HeldActions(agent, every)


class HeldActions:
    """``agent`` deciding every ``every`` steps and holding its action in between."""

    def __init__(self, agent: Any, every: int):
        self.agent, self.every = agent, check_action_hold(every)
        self.observation_space, self.action_space = agent.observation_space, agent.action_space
        self._age: np.ndarray | None = None  # per env of the batch: steps since its last decision
        self._held: np.ndarray | None = None

    def __getattr__(self, name: str) -> Any:  # the agent's card, its policy, ...
        if name == "agent":
            raise AttributeError(name)
        return getattr(self.agent, name)

    def action_probabilities(self, observation: Any) -> None:
        """None: what a held agent does at a step is its held action, not the agent's distribution there (an ensemble
        counts it as all its weight on that action)."""
        return None

    def begin_episode(self, seed: int | None = None) -> None:
        """A new episode in every env: the next call decides."""
        self._age = self._held = None
        if hasattr(self.agent, "begin_episode"):
            self.agent.begin_episode(seed)

    def predict(self, observation: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        obs = np.asarray(observation)
        single = obs.shape == self.observation_space.shape
        n = 1 if single else len(obs)
        if self._age is None or len(self._age) != n:
            self._age = np.zeros(n, np.int64)
            self._held = None
        if episode_start is not None:
            self._age[np.broadcast_to(np.asarray(episode_start, bool).reshape(-1), (n,))] = 0
        decide = self._age % self.every == 0
        if self._held is None or decide.any():
            actions, state = self.agent.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic)
            fresh = np.asarray(actions).reshape(n, *self.action_space.shape)
            self._held = fresh.copy() if self._held is None else np.where(decide.reshape(n, *[1] * len(self.action_space.shape)), fresh, self._held)
        self._age += 1
        out = self._held.copy()
        return (out[0] if single else out), state
