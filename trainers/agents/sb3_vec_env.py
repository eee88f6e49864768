"""A batched dream as stable-baselines3's ``VecEnv``.

SB3 has no adapter for Gymnasium's ``VectorEnv``; :class:`SB3VecEnv` is one. SB3's ``VecEnv`` resets a
finished env within the same step and hands back the last observation in
``info["terminal_observation"]``; Gymnasium vector envs may instead restart on the next step. The
adapter reads the env's declared ``metadata["autoreset_mode"]`` and converts: ``SAME_STEP`` (final
observation from ``info["final_obs"]``) and ``DISABLED`` (it restarts finished envs itself with
``reset(options={"reset_mask": ...})``) are supported; ``NEXT_STEP`` cannot be converted without an
extra step, so it is refused with the fix. With ``hold`` = k > 1 each SB3 step is k steps of the env under one action
(rewards summed; an env that ends within them ends the SB3 step, and its later sub-steps are not counted): the
training side of :class:`~trainers.agents.action_hold.HeldActions`. It needs ``DISABLED``, so that no episode restarts
inside a held step.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_dream.error import DependencyNotInstalled
from trainers.agents.action_hold import check_action_hold

try:
    from stable_baselines3.common.vec_env import VecEnv
except ImportError as e:  # pragma: no cover
    raise DependencyNotInstalled('stable-baselines3 agents need: pip install "gym-dream[train]"') from e


class SB3VecEnv(VecEnv):
    """A Gymnasium ``VectorEnv`` seen as an SB3 ``VecEnv`` (no Python copies of the env)."""

    def __init__(self, venv: gym.vector.VectorEnv, hold: int = 1, action_space: gym.Space | None = None):
        mode = venv.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP)
        if mode == AutoresetMode.NEXT_STEP:
            raise ValueError(
                "SB3 needs same-step resets; make the vector env with autoreset_mode=AutoresetMode.SAME_STEP "
                "(or DISABLED), e.g. gym.make_vec(id, ..., autoreset_mode='SameStep')."
            )
        self.hold = check_action_hold(hold)
        if self.hold > 1 and mode != AutoresetMode.DISABLED:
            raise ValueError(f"Holding each action for {self.hold} steps needs a vector env with autoreset_mode=AutoresetMode.DISABLED "
                             "(no episode may restart inside a held step): gym.make_vec(id, ..., autoreset_mode='Disabled').")
        self.venv, self.mode = venv, mode
        # the agent's own action space: the env's, or a box inside it (narrowed_action_box) whose actions the env takes as they are
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space if action_space is None else action_space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        seed = self._seeds[0] if self._seeds and self._seeds[0] is not None else None
        obs, _ = self.venv.reset(seed=seed)
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def _held_step(self):
        """``hold`` steps of the env under the same actions (autoreset disabled): the observation, summed reward and
        flags of each env at its last step, or at the step where its episode ended."""
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        obs, rewards = obs.copy(), rewards.astype(np.float64)
        for _ in range(self.hold - 1):
            alive = ~(terminated | truncated)
            if not alive.any():
                break
            o, r, te, tr, _ = self.venv.step(self._actions)
            obs[alive], rewards[alive] = o[alive], rewards[alive] + r[alive]
            terminated, truncated = terminated | (te & alive), truncated | (tr & alive)
        return obs, rewards, terminated, truncated & ~terminated, {}

    def step_wait(self):
        if self.hold > 1:
            obs, rewards, terminated, truncated, info = self._held_step()
        else:
            obs, rewards, terminated, truncated, info = self.venv.step(self._actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            if self.mode == AutoresetMode.SAME_STEP:
                final = info["final_obs"]
            else:
                final = obs.copy()
                obs, _ = self.venv.reset(options={"reset_mask": dones})
            for i in np.flatnonzero(dones):
                infos[i]["terminal_observation"] = final[i]
                infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def get_attr(self, attr_name: str, indices=None) -> list[Any]:
        return [getattr(self.venv, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *args, indices=None, **kwargs) -> list[Any]:
        return [getattr(self.venv, method_name)(*args, **kwargs)] * len(self._get_indices(indices))

    def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def get_images(self):
        return list(self.venv.render()) if self.venv.render_mode == "rgb_array" else []
