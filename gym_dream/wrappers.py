"""The real env seen through a world model, so a policy trained in a dream runs on it unchanged."""

from __future__ import annotations

import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from gym_dream.catalogue import by_real_id
from gym_dream.envs import core
from gym_dream.error import ModelMismatch
from gym_dream.models import State, WorldModel
from gym_dream.spaces import spaces_equal

__all__ = ["ActionRepeat", "DreamObservation", "action_repeat_of", "default_model_for"]


def default_model_for(real_env_id: str | None) -> str | None:
    """The default model name of a real env id: the catalogue's, else that of a Dream-* id a model package registered."""
    known = by_real_id(real_env_id)
    if known is not None:
        return known.model
    for spec in gym.registry.values():
        if spec.id.startswith("Dream-") and spec.kwargs.get("real_env_id") == real_env_id:
            return spec.kwargs.get("default_model")
    return None


class ActionRepeat(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Repeat each action ``repeat`` times, summing rewards and stopping early when the episode ends
    (PlaNet: 8 for cartpole-swingup, 4 for cheetah-run). A model trained with action repeat records it
    in its card (``env.action_repeat``) and :class:`DreamObservation` checks the real env repeats the same."""

    def __init__(self, env: gym.Env, repeat: int):
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"repeat must be an integer >= 1, got {repeat!r}.")
        gym.utils.RecordConstructorArgs.__init__(self, repeat=repeat)
        gym.Wrapper.__init__(self, env)
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


def action_repeat_of(env: gym.Env) -> int:
    """The total action repeat of a wrapper chain (1 without :class:`ActionRepeat`)."""
    repeat = 1
    while isinstance(env, gym.Wrapper):
        if isinstance(env, ActionRepeat):
            repeat *= env.repeat
        env = env.env
    return repeat


class DreamObservation(gym.Wrapper):
    """Show a real env through a world model: observations become the model's features.

    Each real observation is preprocessed exactly as the model's training data was, encoded, and
    folded into the model's memory together with the action that produced it (``model.observe``), so
    the observation space equals that of the matching ``Dream-*`` env and a dream-trained policy acts
    here unchanged. Rewards, termination and truncation are the real env's.

    Args:
        env: the real env (its action and observation spaces must match the model card).
        model: a model directory, name or ``WorldModel``; ``None`` uses the default model of the
            ``Dream-*`` id registered for this env.
        obs_type: ``"latent"`` (features ``[z, h]``) or ``"pixels"`` (the model's reconstruction).
        device: torch device of the model.

    The current model state is ``wrapper.state`` (batch 1), e.g. for planning from "now".
    """

    def __init__(self, env: gym.Env, model: WorldModel | str | None = None, obs_type: str = "latent", device: str = "cpu"):
        super().__init__(env)
        real_id = env.spec.id if env.spec is not None else None
        default = default_model_for(real_id) if model is None else None
        self.model = core.load_env_model(model, default, f"DreamObservation({real_id})", None, device)
        self.obs_type = core.check_obs_type(obs_type, self.model)
        card_env = self.model.card.get("env") or {}
        # a model fitted from a dataset (a Minari one) whose env could not be made: say what is missing, once here
        missing = card_env.get("missing")
        note = f" (The model's own real env is unknown: {missing}.)" if missing else ""
        if missing:
            warnings.warn(f"DreamObservation: {missing}. Only the spaces of the env you passed ({real_id or 'unnamed'}) are checked "
                          "against the model's, not its id; make sure it behaves as the env the data came from.", UserWarning, stacklevel=2)
        if not spaces_equal(env.action_space, self.model.action_space):
            raise ModelMismatch(f"The real env's action space {env.action_space} differs from the model's {self.model.action_space}.{note}")
        real_obs_space = env.observation_space
        key = self.model.preprocessing.key
        if key is not None and isinstance(real_obs_space, gym.spaces.Dict):
            real_obs_space = real_obs_space[key]
        if not spaces_equal(real_obs_space, self.model.observation_space):
            raise ModelMismatch(
                f"The real env's observation space {real_obs_space} differs from the model's {self.model.observation_space}; "
                f"this model was trained on another env or another observation setting.{note}"
            )
        if card_env.get("id") is not None and real_id is not None and card_env["id"] != real_id and not missing:
            raise ModelMismatch(f"The model was trained on {card_env['id']}, but the real env is {real_id}.")
        want = int((self.model.card.get("env") or {}).get("action_repeat") or 1)
        have = action_repeat_of(env)
        if want != have:
            raise ModelMismatch(
                f"The model was trained with action repeat {want}, but the real env repeats each action {have} time(s); "
                f"wrap it: gym_dream.wrappers.ActionRepeat(env, {want})."
            )
        self.observation_space = core.observation_space(self.model, self.obs_type)
        self.state: State | None = None
        #: the last real observation as model input (preprocessed), batch 1
        self.last_input: torch.Tensor | None = None

    def _obs(self) -> np.ndarray:
        return core.to_numpy(core.observation(self.model, self.state, self.obs_type))[0]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        with torch.inference_mode():
            self.last_input = self.model.obs_to_tensor(obs)
            self.state = self.model.initial_state(1, obs=self.last_input)
            return self._obs(), info

    def step(self, action):
        if self.state is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        a = core.actions_to_tensor(action, self.model.action_space, None, self.model.device)
        obs, reward, terminated, truncated, info = self.env.step(core.action_for_env(a, self.model.action_space))
        with torch.inference_mode():
            self.last_input = self.model.obs_to_tensor(obs)
            self.state = self.model.observe(self.state, a, self.last_input)
            return self._obs(), reward, terminated, truncated, info
