"""Many exported dreams stepped as one batched onnxruntime call (no torch)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gym_dream_onnx import core
from gym_dream_onnx.dream import OnnxDream, State


class OnnxDreamVectorEnv(VectorEnv):
    """``num_envs`` dreams of one exported model, each step one run of its ``imagine`` graph over the batch.

    Made by ``gym.make_vec(id, num_envs=N, vectorization_mode="vector_entry_point")``; the arguments are those of
    :class:`~gym_dream_onnx.env.OnnxDreamEnv` plus ``max_episode_steps`` (the dream horizon: ``truncated``, passed by
    ``make_vec`` from the spec) and ``autoreset_mode`` (Gymnasium's ``AutoresetMode``, as ``gym_dream.DreamVectorEnv``:
    ``NEXT_STEP`` (default), ``SAME_STEP`` with ``info["final_obs"]``, or ``DISABLED`` with
    ``reset(options={"reset_mask": mask})``). One numpy generator, seeded by ``reset(seed=...)``, draws every start
    state, temperature and noise: the same seed gives the same dream. Returned arrays are fresh copies.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30,
                                          "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, model: Any = None, tau: Any = None, obs_type: str = "latent",
                 render_mode: str | None = None, max_episode_steps: int | None = None,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, termination: str | None = None,
                 default_model: str | None = None, threads: int | None = None):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}.")
        steps_ok = isinstance(max_episode_steps, (int, np.integer)) and not isinstance(max_episode_steps, bool)
        if max_episode_steps is not None and (not steps_ok or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be None or an integer >= 1, got {max_episode_steps!r}.")
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            modes = [m.value for m in AutoresetMode]
            raise ValueError(f"autoreset_mode must be one of {modes}, got {autoreset_mode!r}.") from None
        if model is None and default_model is None:
            raise ValueError("Pass model= (an exported dream folder or an installed exported package's name).")
        self.dream: OnnxDream = core.resolve_dream(default_model if model is None else model, threads)
        self.tau, self.obs_type, self.termination = core.check_args(self.dream, tau, obs_type, termination, render_mode,
                                                                    self.metadata["render_modes"])
        self.render_mode = render_mode
        self.num_envs = int(num_envs)
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.single_action_space = self.dream.action_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = core.observation_space(self.dream, self.obs_type)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.state: State | None = None
        self._features = np.zeros((self.num_envs, self.dream.feature_dim), np.float32)
        self._taus = np.ones(self.num_envs, np.float32)
        self._elapsed = np.zeros(self.num_envs, np.int64)
        self._needs_reset = np.zeros(self.num_envs, np.bool_)

    def _restart(self, mask: np.ndarray) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        fresh, features = self.dream.initial_state(self.dream.draw_index(self.np_random, idx.size))
        for k, v in fresh.items():
            self.state[k][idx] = v
        self._features[idx] = features
        self._taus[idx] = core.draw_taus(self.tau, idx.size, self.np_random)
        self._elapsed[idx] = 0

    def _obs(self) -> np.ndarray:
        return self._features.copy() if self.obs_type == "latent" else self.dream.decode(self.state)

    def _info(self) -> dict[str, Any]:
        if not isinstance(self.tau, tuple):
            return {}
        return {"tau": self._taus.astype(np.float64), "_tau": np.ones(self.num_envs, np.bool_)}

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if isinstance(seed, (list, tuple)):  # one generator drives all envs: the first seed seeds it
            if len(seed) == 0:
                raise ValueError("reset(seed=[...]) needs a seed (an int), got an empty list.")
            seed = seed[0]
        super().reset(seed=seed)
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"reset(options=...) must be None or a dict, got {type(options).__name__}.")
        mask = (options or {}).get("reset_mask")
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},).")
            if self.state is None:
                raise ValueError("reset(options={'reset_mask': ...}) needs a full reset() first.")
            self._restart(mask)
            self._needs_reset &= ~mask
        else:
            state, features = self.dream.initial_state(self.dream.draw_index(self.np_random, self.num_envs))
            self.state = {k: np.array(v) for k, v in state.items()}
            self._features = np.array(features)
            self._taus = core.draw_taus(self.tau, self.num_envs, self.np_random)
            self._elapsed[:] = 0
            self._needs_reset[:] = False
        return self._obs(), self._info()

    def step(self, actions):
        if self.state is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        a = core.check_actions(actions, self.single_action_space, self.num_envs)
        out = self.dream.imagine(self.state, a, self._taus, self.dream.draw_noise(self.np_random, self.num_envs))
        self.state, self._features = out["state"], out["features"]
        p_end, reward = out["termination_prob"], out["reward"]
        if self.termination == "threshold":
            terminated = p_end > 0.5
        else:
            terminated = self.np_random.random(self.num_envs) < p_end
        self._elapsed += 1
        if self.max_episode_steps is not None:
            truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
        else:
            truncated = np.zeros(self.num_envs, np.bool_)
        info: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            restart = self._needs_reset
            if restart.any():
                self._restart(restart)
                reward = np.where(restart, np.float32(0), reward)
                p_end = np.where(restart, np.float32(0), p_end)
                terminated, truncated = terminated & ~restart, truncated & ~restart
            self._needs_reset = terminated | truncated
        elif self.autoreset_mode == AutoresetMode.SAME_STEP:
            done = terminated | truncated
            if done.any():
                info["final_obs"] = self._obs()
                info["_final_obs"] = done.copy()
                self._restart(done)
        info.update(self._info())
        info["termination_prob"] = np.array(p_end, np.float32)
        info["_termination_prob"] = np.ones(self.num_envs, np.bool_)
        return self._obs(), np.array(reward, np.float32), np.array(terminated), np.array(truncated), info

    def render(self):
        if self.render_mode is None or self.state is None:
            return None
        decoded = self.dream.decode(self.state)
        return decoded if self.dream.pixels else np.stack([core.vector_frame(x) for x in decoded])
