"""What OnnxDreamEnv and OnnxDreamVectorEnv share: finding the dream, argument and action checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gym_dream_onnx.dream import MANIFEST, OnnxDream, check_tau

OBS_TYPES = ("latent", "pixels")
TERMINATION_MODES = ("threshold", "sample")


def resolve_dream(model: Any, threads: int | None = None) -> OnnxDream:
    """``model``: an :class:`OnnxDream`, an exported dream folder (or a package folder holding ``dream/``), or the name
    of an installed exported package (``gym_dream_onnx.available_dreams()``)."""
    if isinstance(model, OnnxDream):
        return model
    if not isinstance(model, (str, Path)):
        raise TypeError("model must be an exported dream folder, an installed package's name or an OnnxDream, "
                        f"got {type(model).__name__}.")
    path = Path(model)
    for candidate in (path, path / "dream"):
        if (candidate / MANIFEST).is_file():
            return OnnxDream(candidate, threads)
    from gym_dream_onnx.registry import available_dreams, dream_conflicts

    found = available_dreams()
    if str(model) in found:
        return OnnxDream(found[str(model)], threads)
    conflict = dream_conflicts().get(str(model))
    if conflict is not None:
        raise gym.error.Error(conflict.message())
    raise FileNotFoundError(f"No exported dream {str(model)!r}: not a folder with {MANIFEST} and not an installed package "
                            f"(installed: {sorted(found) or 'none'}). Export one with `gym-dream export MODEL --runtime onnx` "
                            "and pip install its wheel.")


def check_args(dream: OnnxDream, tau: Any, obs_type: Any, termination: Any, render_mode: Any, render_modes: list[str]):
    """(tau or range, obs_type, termination), with the manifest's defaults for None."""
    if tau is None:
        tau = dream.dream_env.get("tau", 1.0)
    tau = check_tau(tau)
    if obs_type not in OBS_TYPES:
        raise ValueError(f"obs_type must be one of {OBS_TYPES}, got {obs_type!r}.")
    if obs_type == "pixels" and not dream.pixels:
        raise ValueError("obs_type='pixels' needs a pixel model; this model sees vector observations. Use obs_type='latent'.")
    if termination is None:
        termination = dream.dream_env.get("termination", "threshold")
    if termination not in TERMINATION_MODES:
        raise ValueError(f"termination must be one of {TERMINATION_MODES}, got {termination!r}.")
    if render_mode is not None and render_mode not in render_modes:
        raise ValueError(f"render_mode must be None or one of {render_modes}, got {render_mode!r}.")
    return tau, obs_type, termination


def observation_space(dream: OnnxDream, obs_type: str) -> spaces.Box:
    if obs_type == "pixels":
        return spaces.Box(0, 255, dream.observation_shape, np.uint8)
    return spaces.Box(-np.inf, np.inf, (dream.feature_dim,), np.float32)


def draw_taus(tau: float | tuple[float, float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` episodes' temperatures: the one tau, or uniform on the range."""
    if isinstance(tau, tuple):
        return (tau[0] + (tau[1] - tau[0]) * rng.random(n)).astype(np.float32)
    return np.full(n, tau, dtype=np.float32)


def check_actions(actions: Any, space: spaces.Space, batch: int | None) -> np.ndarray:
    """Validated actions as the graph takes them: (B,) int64 for Discrete, (B, A) float32 for Box."""
    where = "action" if batch is None else f"actions (num_envs={batch})"
    arr = np.asarray(actions)
    if isinstance(space, spaces.Discrete):
        want = () if batch is None else (batch,)
        if arr.shape != want:
            raise ValueError(f"Expected {where} of shape {want} for {space}, got shape {arr.shape}.")
        whole = np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))
        if not (np.issubdtype(arr.dtype, np.integer) or whole):
            raise TypeError(f"Expected integer {where} for {space}, got dtype {arr.dtype}.")
        lo, hi = int(space.start), int(space.start + space.n - 1)
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"{where.capitalize()} out of range for {space}: values must lie in [{lo}, {hi}].")
        return arr.astype(np.int64).reshape(-1)
    want = tuple(space.shape) if batch is None else (batch, *space.shape)
    if arr.shape != want:
        raise ValueError(f"Expected {where} of shape {want} for {space}, got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"Expected real-valued {where} for {space}, got dtype {arr.dtype}.")
    arr = arr.astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where.capitalize()} contain NaN or inf.")
    if np.any(arr < space.low - 1e-5) or np.any(arr > space.high + 1e-5):
        raise ValueError(f"{where.capitalize()} outside the action space {space}. Clip actions to the space before stepping.")
    return np.ascontiguousarray(arr.reshape(1 if batch is None else batch, -1))


def vector_frame(values: np.ndarray, size: int = 64) -> np.ndarray:
    """A bar chart of a standardised vector (what gym_dream renders for vector-observation dreams)."""
    img = np.full((size, size, 3), 255, np.uint8)
    width = max(size // max(len(values), 1), 1)
    mid = size // 2
    for i, v in enumerate(values):
        height = int(np.clip(v / 3.0, -1.0, 1.0) * (mid - 1))
        top, bottom = (mid - height, mid) if height >= 0 else (mid, mid - height)
        img[top:bottom + 1, i * width : (i + 1) * width - 1] = (40, 90, 200) if v >= 0 else (200, 70, 40)
    img[mid, :] = 0
    return img
