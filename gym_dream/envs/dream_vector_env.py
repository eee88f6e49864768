"""Many dreams as one batched tensor program."""

from __future__ import annotations

from typing import Any

import numpy as np
import gymnasium as gym
import torch
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from gym_dream.envs import core, uncertainty
from gym_dream.models import State, WorldModel
from gym_dream.models.base import state_batch_size, state_repeat


class DreamVectorEnv(VectorEnv):
    """``num_envs`` dreams of one world model, stepped together as one batched call of ``imagine``.

    Made by ``gym.make_vec("Dream-...", num_envs=N, vectorization_mode="vector_entry_point")``; the
    arguments are those of :class:`~gym_dream.envs.dream_env.DreamEnv` plus:

    * ``termination``: ``"threshold"`` or ``"sample"``, as for ``DreamEnv``.
    * ``max_episode_steps``: the dream horizon (``truncated``), passed by ``make_vec`` from the spec.
    * ``autoreset_mode``: Gymnasium's ``AutoresetMode`` (or its string value). ``NEXT_STEP`` (default,
      as ``CartPoleVectorEnv``): the step after an episode ends returns the new first observation and
      ignores that env's action. ``SAME_STEP``: the env restarts within the step and the last
      observation is in ``info["final_obs"]`` (rows flagged by ``info["_final_obs"]``). ``DISABLED``:
      restart finished envs yourself with ``reset(options={"reset_mask": mask})``.
    * ``precision``: ``"float32"`` (default), ``"bfloat16"`` or ``"auto"``, as for ``DreamEnv``.
    * ``tau``: as for ``DreamEnv``; a range ``(low, high)`` gives every env's episode its own temperature, drawn
      uniformly at each of its resets (autoresets included), reported per env as ``info["tau"]``: the temperature of
      the episode each returned observation belongs to (after ``reset`` too).
    * ``member``, ``uncertainty_penalty``, ``uncertainty_limit``, ``uncertainty_halt_reward``: as for
      ``DreamEnv`` (its "Uncertainty" section), applied per env: ``info["disagreement"]`` and
      ``info["reward_disagreement"]`` are (num_envs,) arrays, ``info["uncertainty_halt"]`` (with a limit)
      flags the envs that halted this step. Under ``NEXT_STEP`` the restarting step of an env reports
      disagreement 0 (like its reward and termination probability); under ``SAME_STEP`` the values are
      those of the step that ended.

    ``reset(options={"state": state})`` starts every env from a given model state (batch 1 is
    broadcast to all envs), which is how a planner rolls candidate actions out from "now".
    Observations, rewards and flags are fresh numpy arrays; nothing aliases internal buffers.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30, "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(
        self,
        num_envs: int = 1,
        model: WorldModel | str | None = None,
        tau: float | None = None,
        obs_type: str = "latent",
        device: str = "cpu",
        render_mode: str | None = None,
        max_episode_steps: int | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        default_model: str | None = None,
        real_env_id: str | None = None,
        termination: str | None = None,
        member: str | None = None,
        uncertainty_penalty: float = 0.0,
        uncertainty_limit: float | str | None = None,
        uncertainty_halt_reward: float | None = None,
        precision: str = "float32",
    ):
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}.")
        if max_episode_steps is not None and (not isinstance(max_episode_steps, (int, np.integer)) or max_episode_steps < 1):
            raise ValueError(f"max_episode_steps must be None or an integer >= 1, got {max_episode_steps!r}.")
        try:
            self.autoreset_mode = AutoresetMode(autoreset_mode)
        except ValueError:
            raise ValueError(f"autoreset_mode must be one of {[m.value for m in AutoresetMode]}, got {autoreset_mode!r}.") from None
        self.num_envs = int(num_envs)
        core.check_dream_args(model=model, default_model=default_model, real_env_id=real_env_id, device=device, tau=tau,
                              obs_type=obs_type, termination=termination, member=member, precision=precision,
                              uncertainty_penalty=uncertainty_penalty, uncertainty_limit=uncertainty_limit,
                              uncertainty_halt_reward=uncertainty_halt_reward, render_mode=render_mode,
                              render_modes=self.metadata["render_modes"]).apply_to(self)
        #: each env's member under member="random_per_episode" (None otherwise)
        self._episode_members: torch.Tensor | None = None
        #: each env's temperature under a tau range (None for one tau), and the generator that draws them
        self._episode_taus: torch.Tensor | None = None
        self._tau_generator: torch.Generator | None = None
        self.max_episode_steps = None if max_episode_steps is None else int(max_episode_steps)
        self.metadata = {**self.metadata, "autoreset_mode": self.autoreset_mode}
        self.device = self.model.device
        self.single_action_space = self.model.action_space
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = core.observation_space(self.model, self.obs_type)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self._generator: torch.Generator | None = None
        self.state: State | None = None
        self._elapsed = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._needs_reset = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)

    # -- helpers ---------------------------------------------------------------------------------
    def _restart(self, mask: torch.Tensor) -> None:
        """Give the envs in ``mask`` fresh start states (in place)."""
        idx = mask.nonzero().squeeze(-1)
        if idx.numel() == 0:
            return
        fresh = self.model.initial_state(int(idx.numel()), self._generator)
        for k, v in fresh.items():
            self.state[k][idx] = v
        self._elapsed[idx] = 0
        members = uncertainty.draw_members(self.model, int(idx.numel()), self.member, self._generator)
        if members is not None:
            self._episode_members[idx] = members
        taus = core.draw_taus(self.tau, int(idx.numel()), self._tau_generator, self.device)
        if taus is not None:
            self._episode_taus[idx] = taus

    def _new_episodes(self) -> None:
        """Per-episode draws for a full reset: members and temperatures of every env."""
        self._episode_members = uncertainty.draw_members(self.model, self.num_envs, self.member, self._generator)
        self._episode_taus = core.draw_taus(self.tau, self.num_envs, self._tau_generator, self.device)

    def _info(self) -> dict[str, Any]:
        if self._episode_taus is None:
            return {}
        return {"tau": core.to_numpy(self._episode_taus).astype(np.float64), "_tau": np.ones(self.num_envs, dtype=np.bool_)}

    def _obs(self) -> np.ndarray:
        return core.to_numpy(core.observation(self.model, self.state, self.obs_type))

    # -- the VectorEnv API -----------------------------------------------------------------------
    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None):
        if isinstance(seed, (list, tuple)):  # one generator drives all envs: the first seed seeds it
            if len(seed) == 0:
                raise ValueError(f"reset(seed=[...]) needs a seed (an int), got an empty {type(seed).__name__}.")
            seed = seed[0]
        super().reset(seed=seed)
        if seed is not None or self._generator is None:
            self._generator, self._tau_generator = core.make_generators(self.np_random, self.device, self.tau)
        options = core.check_options(options)
        with torch.inference_mode():
            mask = options.get("reset_mask")
            if mask is not None:
                mask = np.asarray(mask)
                if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
                    raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},).")
                if self.state is None:
                    raise ValueError("reset(options={'reset_mask': ...}) needs a full reset() first.")
                m = torch.as_tensor(mask, device=self.device)
                self._restart(m)
                self._needs_reset &= ~m
            elif "state" in options:
                state = core.check_reset_state(self.model, options["state"], tuple(sorted({1, self.num_envs})), self.device)
                if state_batch_size(state) == 1 and self.num_envs > 1:
                    state = state_repeat(state, self.num_envs)
                self.state = state
                self._elapsed.zero_()
                self._needs_reset.zero_()
                self._new_episodes()
            else:
                self.state = self.model.initial_state(self.num_envs, self._generator)
                self._elapsed.zero_()
                self._needs_reset.zero_()
                self._new_episodes()
            return self._obs(), self._info()

    def step(self, actions):
        if self.state is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        a = core.actions_to_tensor(actions, self.single_action_space, self.num_envs, self.device)
        with torch.inference_mode():
            tau = self.tau if self._episode_taus is None else self._episode_taus
            tr = uncertainty.imagine(self.model, self.state, a, tau, self._generator, self.member, self._episode_members,
                                     self.precision)
            self.state = tr.state
            p_end, disagreement, reward_disagreement = tr.termination_prob, tr.disagreement, tr.reward_disagreement
            terminated = core.terminations(p_end, tr.terminated, self.termination, self._generator)
            reward, terminated, halted = uncertainty.apply_uncertainty(
                tr.reward, terminated, disagreement, self.uncertainty_penalty, self.uncertainty_limit, self.uncertainty_halt_reward)
            self._elapsed += 1
            if self.max_episode_steps is not None:
                truncated = (self._elapsed >= self.max_episode_steps) & ~terminated
            else:
                truncated = torch.zeros_like(terminated)
            info: dict[str, Any] = {}
            if self.autoreset_mode == AutoresetMode.NEXT_STEP:
                restart = self._needs_reset
                if bool(restart.any()):
                    self._restart(restart)
                    reward = reward.masked_fill(restart, 0.0)
                    terminated = terminated & ~restart
                    truncated = truncated & ~restart
                    p_end = p_end.masked_fill(restart, 0.0)
                    disagreement = disagreement.masked_fill(restart, 0.0)
                    reward_disagreement = reward_disagreement.masked_fill(restart, 0.0)
                    halted = halted & ~restart
                self._needs_reset = terminated | truncated
            elif self.autoreset_mode == AutoresetMode.SAME_STEP:
                done = terminated | truncated
                if bool(done.any()):
                    info["final_obs"] = self._obs()
                    info["_final_obs"] = core.to_numpy(done)
                    self._restart(done)
            obs = self._obs()
            info.update(self._info())
            info["termination_prob"] = core.to_numpy(p_end)
            info["_termination_prob"] = np.ones(self.num_envs, dtype=np.bool_)
            info["disagreement"] = core.to_numpy(disagreement)
            info["_disagreement"] = np.ones(self.num_envs, dtype=np.bool_)
            info["reward_disagreement"] = core.to_numpy(reward_disagreement)
            info["_reward_disagreement"] = np.ones(self.num_envs, dtype=np.bool_)
            if self.uncertainty_limit is not None:
                info["uncertainty_halt"] = core.to_numpy(halted)
                info["_uncertainty_halt"] = np.ones(self.num_envs, dtype=np.bool_)
            return obs, core.to_numpy(reward), core.to_numpy(terminated), core.to_numpy(truncated), info

    def render(self):
        if self.render_mode is None or self.state is None:
            return None
        with torch.inference_mode():
            decoded = core.to_numpy(self.model.decode(self.state))
            if self.model.preprocessing.kind == "image":
                return decoded
            rows = core.to_numpy(self.state["z"]) if "z" in self.state else decoded
            return np.stack([core.vector_frame(x) for x in rows])
