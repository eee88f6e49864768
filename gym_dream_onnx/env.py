"""An exported dream as a Gymnasium environment, on onnxruntime + numpy (no torch)."""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from gym_dream_onnx import core
from gym_dream_onnx.dream import OnnxDream, State


class OnnxDreamEnv(gym.Env):
    """
    ## Description

    The dream of a model exported with ``gym-dream export MODEL --runtime onnx``: every step is one run of its
    ``imagine`` graph, the model's own dream step with its random numbers drawn here, from the env's numpy generator.
    It is :class:`gym_dream.DreamEnv` without torch: the same spaces, rewards and ends (``DreamEnv`` with the same
    random numbers gives the same dream to float rounding), but not the same stream of random numbers for a seed.

    ## Action Space

    The real env's action space, from the exported manifest. Actions outside it raise ``ValueError``.

    ## Observation Space

    ``obs_type="latent"`` (default): the model's features as float32 (``[z, h]`` for an MDN-RNN, ``[h, s]`` for an
    RSSM). ``obs_type="pixels"``: the decoded frame as uint8 (pixel models only).

    ## Rewards

    The model's reward head, for each imagined transition.

    ## Starting State

    A row of the model's start-state bank, drawn with the env's generator.

    ## Episode End

    ``terminated`` when the termination head's probability exceeds 0.5 (``termination="threshold"``) or with that
    probability (``"sample"``); ``info["termination_prob"]``. ``truncated`` by the registered ``TimeLimit``.

    ## Arguments

    ```python
    >>> import gymnasium as gym, gym_dream_onnx                # doctest: +SKIP
    >>> env = gym.make("Dream-MyGame-v0", tau=1.15)             # doctest: +SKIP

    ```

    * ``model``: an exported dream folder, an installed exported package's name, or an :class:`OnnxDream`.
    * ``tau``: temperature in (0, 100] or a range ``(low, high)`` (each episode draws its own; ``info["tau"]``);
      default: the card's ``dream_env.tau``, else 1.0.
    * ``obs_type``: ``"latent"`` or ``"pixels"``. ``termination``: ``"threshold"`` or ``"sample"`` (default: the card's).
    * ``render_mode``: ``None`` or ``"rgb_array"``. ``threads``: onnxruntime's intra-op threads (default: its own).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, model: Any = None, tau: Any = None, obs_type: str = "latent", render_mode: str | None = None,
                 termination: str | None = None, default_model: str | None = None, threads: int | None = None):
        if model is None and default_model is None:
            raise ValueError("Pass model= (an exported dream folder or an installed exported package's name).")
        self.dream: OnnxDream = core.resolve_dream(default_model if model is None else model, threads)
        self.tau, self.obs_type, self.termination = core.check_args(self.dream, tau, obs_type, termination, render_mode,
                                                                    self.metadata["render_modes"])
        self.render_mode = render_mode
        self.action_space = self.dream.action_space
        self.observation_space = core.observation_space(self.dream, self.obs_type)
        self.state: State | None = None
        self._features: np.ndarray | None = None
        self._tau = np.ones(1, np.float32)

    def _obs(self) -> np.ndarray:
        if self.obs_type == "latent":
            return self._features[0].copy()
        return self.dream.decode(self.state)[0]

    def _info(self) -> dict[str, Any]:
        return {"tau": float(self._tau[0])} if isinstance(self.tau, tuple) else {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state, self._features = self.dream.initial_state(self.dream.draw_index(self.np_random, 1))
        self._tau = core.draw_taus(self.tau, 1, self.np_random)
        return self._obs(), self._info()

    def step(self, action):
        if self.state is None:
            raise gym.error.ResetNeeded("Call reset() before step().")
        a = core.check_actions(action, self.action_space, None)
        out = self.dream.imagine(self.state, a, self._tau, self.dream.draw_noise(self.np_random, 1))
        self.state, self._features = out["state"], out["features"]
        p_end = float(out["termination_prob"][0])
        terminated = p_end > 0.5 if self.termination == "threshold" else bool(self.np_random.random() < p_end)
        return self._obs(), float(out["reward"][0]), bool(terminated), False, {"termination_prob": p_end, **self._info()}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None or self.state is None:
            return None
        decoded = self.dream.decode(self.state)[0]
        return decoded if self.dream.pixels else core.vector_frame(decoded)
