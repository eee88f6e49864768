"""A world model's dream as a Gymnasium environment."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import gymnasium as gym

from gym_dream.envs import core, uncertainty
from gym_dream.models import State, WorldModel


class DreamEnv(gym.Env):
    """
    ## Description

    An episode inside a trained world model ("a dream"): every step is one call of the model's
    ``imagine``, sampling the next latent state at temperature ``tau``, with reward and termination
    predicted by the model's heads. Any Gymnasium agent can learn here; the same agent then acts in
    the real env through :class:`gym_dream.wrappers.DreamObservation`, which shows the real env
    through the same model.

    ## Action Space

    The real env's action space, as stored in the model card (e.g. ``Discrete(2)`` for CartPole,
    ``Box([-1, 0, 0], 1, (3,), float32)`` for CarRacing). Actions outside it raise ``ValueError``.

    ## Observation Space

    ``obs_type="latent"`` (default): the model's features ``[z, h]`` as a float32 vector of size
    ``model.feature_dim``. ``obs_type="pixels"``: the decoded 64x64x3 uint8 frame (pixel models only).

    ## Rewards

    The model's reward head, predicted for each imagined transition.

    ## Starting State

    A latent drawn (with the env's own generator) from the model's bank of encoded real first
    observations, with empty memory. ``reset(options={"state": state})`` starts from a given model state.

    ## Episode End

    ``terminated`` when the model's termination head gives probability > 0.5 (``termination="threshold"``),
    or with that probability at each step (``termination="sample"``); the probability is in
    ``info["termination_prob"]``. ``truncated`` by the registered ``TimeLimit`` (the dream horizon).

    ## Uncertainty

    A model with several dynamics members (``members`` in its card) reports their disagreement about
    each step's next state in ``info["disagreement"]`` (the model family's docstring defines it; 0 for a
    single-member model, and every shipped model has one member), and the reward's in
    ``info["reward_disagreement"]``. With ``uncertainty_penalty=lam`` the reward is
    ``reward - lam * disagreement`` (MOPO). With ``uncertainty_limit`` the episode halts (MOReL's absorbing
    HALT) at the first step whose disagreement exceeds the limit: ``terminated=True``, the step's reward
    is ``uncertainty_halt_reward`` (default: the card's smallest reward in the training data, so halting
    is never better than the worst step the data saw) and ``info["uncertainty_halt"]`` is True.

    ## Arguments

    ```python
    >>> import gymnasium as gym
    >>> import gym_dream
    >>> env = gym.make("Dream-CartPole-v0", tau=1.0)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape == env.observation_space.shape
    True

    ```

    * ``model``: a model directory, a model name (see ``gym_dream.available_models()``) or a loaded
      ``WorldModel``; ``None`` uses the id's default model.
    * ``tau``: temperature (> 0, at most 100: a larger one is a ``ValueError``, far above any trained range).
      Higher is more random and harder to exploit; 1.0 is the model as trained.
      Default: the model card's ``dream_env.tau`` if it has one (``gym-dream calibrate`` sets it to the tau at
      which random play lasts as long in the dream as in the real env), else 1.0; ``env.unwrapped.tau`` says which.
      A range ``(low, high)`` draws each episode's temperature uniformly from it at reset (with a generator of its
      own, seeded with the env: a range (t, t) dreams what ``tau=t`` dreams), so an agent must act well across
      the dream's randomness rather than in one of them; ``info["tau"]`` (reset and step) is the episode's.
    * ``obs_type``: ``"latent"`` or ``"pixels"``.
    * ``device``: torch device the dream runs on (``"cpu"``, ``"cuda"``...).
    * ``render_mode``: ``None`` or ``"rgb_array"`` (the decoded dream frame).
    * ``termination``: ``"threshold"`` or ``"sample"`` (default: the model card's choice, else threshold).
    * ``precision``: ``"float32"`` (default: the model as trained) or, for a single-member model,
      ``"bfloat16"``: the network's matrix products in bf16 (about 1.8x the steps per second of a 1024-env
      dream on an AVX-512 BF16 CPU, results/performance.md), the same dream statistics (tested), not the same bits.
      On a CPU without bf16 dot products (AVX2 only) bf16 is emulated, about 6x *slower* than float32, and warns once
      (``gym_dream.error.PerformanceWarning``); ``"auto"`` picks bfloat16 only where it is fast (a CPU with AVX-512 BF16
      or AMX, or a CUDA device) and float32 elsewhere; ``env.unwrapped.precision`` says which runs.
    * ``member``: which dynamics member drives the dream: ``"random_per_episode"`` (default: one member
      drawn at each reset), ``"random_per_step"`` or ``"mean"`` (see ``gym_dream.models.members``); drawn
      with the env's own generator, so the same seed gives the same dream.
    * ``uncertainty_penalty``: lambda >= 0 of the reward penalty (default 0: off; at most 1e6, so that the penalty stays
      finite in float32).
    * ``uncertainty_limit``: ``None`` (default: off), a disagreement > 0, or a held-out quantile of the
      card, ``"q50"``, ``"q90"``, ``"q95"``, ``"q99"`` or ``"q99.9"`` (no scale to know).
    * ``uncertainty_halt_reward``: the reward of a halting step (default: the card's ``uncertainty.reward_min``), a
      number finite in float32 (checked even without a limit).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        model: WorldModel | str | None = None,
        tau: float | None = None,
        obs_type: str = "latent",
        device: str = "cpu",
        render_mode: str | None = None,
        default_model: str | None = None,
        real_env_id: str | None = None,
        termination: str | None = None,
        member: str | None = None,
        uncertainty_penalty: float = 0.0,
        uncertainty_limit: float | str | None = None,
        uncertainty_halt_reward: float | None = None,
        precision: str = "float32",
    ):
        core.check_dream_args(model=model, default_model=default_model, real_env_id=real_env_id, device=device, tau=tau,
                              obs_type=obs_type, termination=termination, member=member, precision=precision,
                              uncertainty_penalty=uncertainty_penalty, uncertainty_limit=uncertainty_limit,
                              uncertainty_halt_reward=uncertainty_halt_reward, render_mode=render_mode,
                              render_modes=self.metadata["render_modes"]).apply_to(self)
        self._episode_member: torch.Tensor | None = None
        self._episode_tau: torch.Tensor | None = None  # the episode's temperature under a tau range
        self._tau_generator: torch.Generator | None = None
        self.device = self.model.device
        self.action_space = self.model.action_space
        self.observation_space = core.observation_space(self.model, self.obs_type)
        self._generator: torch.Generator | None = None
        self.state: State | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or self._generator is None:
            self._generator, self._tau_generator = core.make_generators(self.np_random, self.device, self.tau)
        options = core.check_options(options)
        with torch.inference_mode():
            if "state" in options:
                self.state = core.check_reset_state(self.model, options["state"], (1,), self.device)
            else:
                self.state = self.model.initial_state(1, self._generator)
            self._episode_member = uncertainty.draw_members(self.model, 1, self.member, self._generator)
            self._episode_tau = core.draw_taus(self.tau, 1, self._tau_generator, self.device)
            obs = core.to_numpy(core.observation(self.model, self.state, self.obs_type))[0]
        return obs, self._info()

    def _info(self) -> dict[str, Any]:
        return {} if self._episode_tau is None else {"tau": float(self._episode_tau[0])}

    def step(self, action):
        if self.state is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        a = core.actions_to_tensor(action, self.action_space, None, self.device)
        with torch.inference_mode():
            tau = self.tau if self._episode_tau is None else self._episode_tau
            tr = uncertainty.imagine(self.model, self.state, a, tau, self._generator, self.member, self._episode_member,
                                     self.precision)
            self.state = tr.state
            obs = core.to_numpy(core.observation(self.model, tr.state, self.obs_type))[0]
            terminated = core.terminations(tr.termination_prob, tr.terminated, self.termination, self._generator)
            reward, terminated, halted = uncertainty.apply_uncertainty(
                tr.reward, terminated, tr.disagreement, self.uncertainty_penalty, self.uncertainty_limit, self.uncertainty_halt_reward)
            info = {"termination_prob": float(tr.termination_prob[0]), "disagreement": float(tr.disagreement[0]),
                    "reward_disagreement": float(tr.reward_disagreement[0]), **self._info()}
            if self.uncertainty_limit is not None:
                info["uncertainty_halt"] = bool(halted[0])
        return obs, float(reward[0]), bool(terminated[0]), False, info

    def render(self) -> np.ndarray | None:
        if self.render_mode is None or self.state is None:
            return None
        with torch.inference_mode():
            decoded = core.to_numpy(self.model.decode(self.state))[0]
            if self.model.preprocessing.kind == "image":
                return decoded
            z = core.to_numpy(self.state["z"])[0] if "z" in self.state else decoded
            return core.vector_frame(z)
