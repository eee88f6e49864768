"""Pictures of dreams: a dream rollout as GIF/MP4, or real frames next to open-loop predictions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
import torch

import gym_dream
from gym_dream.envs.core import actions_to_tensor, vector_frame
from gym_dream.models import WorldModel
from gym_dream.naming import check_real_env_id
from trainers.data.real_envs import dream_id_for, make_real_env, real_env_of
from trainers.fit.presets import check_ranges

#: the valid range of each numeric option (trainers.fit.presets.check_ranges)
VIDEO_RANGES: dict[str, str] = {"steps": "integer >= 1", "fps": "integer >= 1"}


@dataclass
class DreamVideoConfig:
    model: str | None = None
    """model directory or name (default: the default model of --env-id)"""
    env_id: str | None = None
    """the Dream-* id of the dream (default: the model's own: the registered id of its real env, else Dream-Model-v0, the
    dream of any model; with no --model either, Dream-CartPole-v0)"""
    out: str = "dream.gif"
    """output file: .gif or .mp4"""
    steps: int = 200
    """frames to write"""
    tau: float = 1.0
    """dream temperature"""
    agent: str | None = None
    """controller dir or SB3 .zip to act (default: random actions)"""
    compare: bool = False
    """real frames (left) next to the model's open-loop predictions under the same actions (right)"""
    seed: int = 0
    """seed of the dream / real episode"""
    fps: int = 30
    """frames per second"""

    def __post_init__(self) -> None:
        """Refuse an out-of-range budget or count now, before any folder is made (VIDEO_RANGES)."""
        check_ranges(self, VIDEO_RANGES, "dream")


def frame_renderer(model: WorldModel) -> Callable[[torch.Tensor], np.ndarray]:
    """decoded observation (one row) -> RGB frame. Classic-control vector envs draw with their own renderer."""
    if model.preprocessing.kind == "image":
        return lambda dec: np.repeat(np.repeat(dec.cpu().numpy(), 4, 0), 4, 1)
    env_id = (model.card.get("env") or {}).get("id")
    try:
        env = gym.make(check_real_env_id(env_id), render_mode="rgb_array")  # never a 'module:' id (gym.make imports it)
        env.reset(seed=0)
        if hasattr(env.unwrapped, "state"):
            def render(dec: torch.Tensor) -> np.ndarray:
                env.unwrapped.state = dec.cpu().numpy().astype(np.float64)
                return env.render()
            return render
    except Exception:  # no renderer (e.g. pygame missing): fall back to bars
        pass
    vision = getattr(model, "vision", None)
    scale = (lambda d: (d - vision.mean) / vision.std) if hasattr(vision, "mean") else (lambda d: d)
    return lambda dec: np.repeat(np.repeat(vector_frame(scale(dec).cpu().numpy()), 4, 0), 4, 1)


def _agent_fn(cfg: DreamVideoConfig, space: gym.Space, rng: np.random.Generator) -> Callable[[np.ndarray], Any]:
    if cfg.agent is None:
        space.seed(int(rng.integers(2**31)))
        return lambda obs: space.sample()
    from trainers.agents.stored_agent import load_agent

    agent = load_agent(cfg.agent)
    return lambda obs: agent.predict(obs, deterministic=True)[0]


def write_dream_video(cfg: DreamVideoConfig) -> str:
    import imageio.v2 as imageio

    rng = np.random.default_rng(cfg.seed)
    env_id = dream_id_for(cfg.env_id, cfg.model)
    model = gym_dream.resolve_model(cfg.model or gym.spec(env_id).kwargs["default_model"])
    render = frame_renderer(model)
    frames: list[np.ndarray] = []
    if not cfg.compare:
        env = gym.make(env_id, model=model, tau=cfg.tau)
        act = _agent_fn(cfg, env.action_space, rng)
        obs, _ = env.reset(seed=cfg.seed)
        for _ in range(cfg.steps):
            frames.append(render(model.decode(env.unwrapped.state)[0]))
            obs, _, terminated, truncated, _ = env.step(act(obs))
            if terminated or truncated:
                obs, _ = env.reset()
    else:
        real = gym_dream.wrappers.DreamObservation(make_real_env(real_env_of(env_id, model), render_mode="rgb_array",
                                                                  **((model.card.get("env") or {}).get("kwargs") or {})), model)
        act = _agent_fn(cfg, real.action_space, rng)
        obs, _ = real.reset(seed=cfg.seed)
        dream = {k: v.clone() for k, v in real.state.items()}
        g = torch.Generator().manual_seed(cfg.seed)
        for _ in range(cfg.steps):
            if model.preprocessing.kind == "image":  # the real frame exactly as the model sees it
                left = render(real.last_input[0])
            else:
                left = real.render()
            right = render(model.decode(dream)[0])
            frames.append(_side_by_side(left, right))
            action = act(obs)
            with torch.inference_mode():
                a = actions_to_tensor(action, model.action_space, None, model.device)
                dream = model.imagine(dream, a, cfg.tau, g).state
            obs, _, terminated, truncated, _ = real.step(action)
            if terminated or truncated:
                break
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    if cfg.out.endswith(".mp4"):
        imageio.mimsave(cfg.out, frames, fps=cfg.fps)
    else:
        imageio.mimsave(cfg.out, frames, duration=1000 / cfg.fps, loop=0)
    return cfg.out


def _side_by_side(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    h = max(a.shape[0], b.shape[0])
    pad = lambda x: np.pad(x, ((0, h - x.shape[0]), (0, 0), (0, 0)), constant_values=255)
    return np.concatenate([pad(a), np.full((h, 4, 3), 255, np.uint8), pad(b)], axis=1)
