"""World Models' controller: a linear map from the features [z, h] to the action.

``a = squash(W @ features + b)``: argmax over ``W @ f + b`` for Discrete actions; per bounded Box
dimension tanh (for [-1, 1]), a one-sided tanh ``high * clip(tanh(y), 0, 1)`` for pedals bounded by
[0, high] (CarRacing's gas and brake: released at rest, World Models' brake mapping) or an affine
sigmoid (other bounds); unbounded dimensions are left linear. Saved as safetensors + JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from safetensors import SafetensorError
from safetensors.numpy import load_file

from gym_dream.checkpoint import atomic_write_bytes, atomic_write_tensors, read_json
from gym_dream.error import DataFormatError
from gym_dream.spaces import space_from_dict, space_to_dict

CONTROLLER_FORMAT = "gym-dream-linear-controller"


class LinearController:
    def __init__(self, feature_dim: int, action_space: spaces.Space, params: np.ndarray | None = None):
        if isinstance(action_space, spaces.Discrete):
            self.out_dim = int(action_space.n)
        elif isinstance(action_space, spaces.Box) and len(action_space.shape) == 1:
            self.out_dim = int(action_space.shape[0])
        else:
            raise ValueError(f"A linear controller needs a Discrete or 1-D Box action space, got {action_space}.")
        self.feature_dim, self.action_space = int(feature_dim), action_space
        self.params = np.zeros(self.num_params, np.float32) if params is None else np.asarray(params, np.float32).copy()
        if self.params.shape != (self.num_params,):
            raise ValueError(f"Expected {self.num_params} parameters, got {self.params.shape}.")

    @property
    def observation_space(self) -> spaces.Box:
        """The features it reads: a world model's ``[z, h]``."""
        return spaces.Box(-np.inf, np.inf, (self.feature_dim,), np.float32)

    @property
    def num_params(self) -> int:
        return self.out_dim * (self.feature_dim + 1)

    @staticmethod
    def batch_actions(params: np.ndarray, features: np.ndarray, action_space: spaces.Space, feature_dim: int) -> np.ndarray:
        """Actions for N envs, each with its own parameter row: params (N, P), features (N, F)."""
        n = features.shape[0]
        out_dim = params.shape[1] // (feature_dim + 1)
        w = params[:, : out_dim * feature_dim].reshape(n, out_dim, feature_dim)
        b = params[:, out_dim * feature_dim :]
        y = np.einsum("naf,nf->na", w, features.astype(np.float32)) + b
        return squash(y, action_space)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        """SB3-style: (action, None) for one observation or a batch."""
        obs = np.asarray(observation, np.float32)
        single = obs.ndim == 1
        feats = obs[None] if single else obs
        actions = self.batch_actions(np.broadcast_to(self.params, (len(feats), self.num_params)), feats, self.action_space, self.feature_dim)
        return (actions[0] if single else actions), None

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        atomic_write_tensors(path / "controller.safetensors", {"params": torch.from_numpy(self.params)})
        card = {"format": CONTROLLER_FORMAT, "format_version": 1, "feature_dim": self.feature_dim,
                "action_space": space_to_dict(self.action_space), **(extra or {})}
        atomic_write_bytes(path / "controller.json", (json.dumps(card, indent=2) + "\n").encode())
        return path

    @classmethod
    def mean_of(cls, controllers: list["LinearController"]) -> "LinearController":
        """One controller whose parameters are the mean of ``controllers`` (searched for the same features and actions):
        its outputs before the squash are their mean, so on Discrete actions it acts by the members' summed scores, a
        vote weighted by how sure each is; on Box actions, by their mean pre-squash output."""
        if not controllers:
            raise ValueError("Averaging needs at least one controller.")
        first = controllers[0]
        for c in controllers[1:]:
            if c.feature_dim != first.feature_dim or c.action_space != first.action_space:
                raise ValueError(f"Cannot average controllers for different features or actions: {first.feature_dim} features "
                                 f"and {first.action_space} against {c.feature_dim} and {c.action_space}; average controllers "
                                 "searched in dreams of the same model.")
        return cls(first.feature_dim, first.action_space, np.mean([c.params.astype(np.float64) for c in controllers], axis=0))

    @classmethod
    def load(cls, path: str | Path) -> "LinearController":
        """A controller directory, checked: its card (format, features, action space) and its parameters (one float32 vector
        of the card's size, every value finite, no NaN from a diverged search) agree, or a
        :class:`~gym_dream.error.DataFormatError` naming the file and the fix."""
        path = Path(path)
        card = read_json(path / "controller.json", "CMA-ES controller card")
        if not isinstance(card, dict) or card.get("format") != CONTROLLER_FORMAT:
            raise ValueError(f"{path} is not a linear controller (format {card.get('format') if isinstance(card, dict) else card!r}).")
        fix = "Restore it from a copy, or train it again (gym-dream train cmaes)."
        weights = path / "controller.safetensors"
        try:
            tensors = load_file(str(weights))
        except FileNotFoundError:
            raise FileNotFoundError(f"{weights} does not exist: the controller directory {path} is incomplete. {fix}") from None
        except (SafetensorError, OSError, ValueError) as e:
            raise DataFormatError(f"{weights} cannot be read ({e}); the file is truncated or corrupted. {fix}") from None
        params = tensors.get("params")
        if params is None or params.ndim != 1 or not np.issubdtype(params.dtype, np.floating):
            raise DataFormatError(f"{weights} holds no 'params' vector of floats (it holds {sorted(tensors)}). {fix}")
        bad = int((~np.isfinite(params.astype(np.float32))).sum())
        if bad:
            raise DataFormatError(f"{weights}: {bad} of the controller's {params.size} parameters are NaN or infinite (in float32); "
                                  f"it would act on NaN scores. {fix}")
        try:
            c = cls(card["feature_dim"], space_from_dict(card["action_space"]), params)
        except (KeyError, TypeError, ValueError, OverflowError) as e:
            raise DataFormatError(f"{path / 'controller.json'} does not describe these parameters ({e}). {fix}") from None
        c.card = card
        return c


def squash(y: np.ndarray, space: spaces.Space) -> np.ndarray:
    """Map linear outputs (N, A) into the action space."""
    if isinstance(space, spaces.Discrete):
        return (np.argmax(y, axis=1) + space.start).astype(np.int64)
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    out = y.astype(np.float32).copy()
    bounded = np.isfinite(low) & np.isfinite(high)
    sym = bounded & np.isclose(low, -high)
    out[:, sym] = np.tanh(y[:, sym]) * high[sym]
    # pedals ([0, high]): released at rest. A sigmoid would half-press the brake at y = 0, where every search
    # starts, which is far from data collected by drivers who seldom brake.
    pedal = bounded & ~sym & (low == 0) & (high > 0)
    out[:, pedal] = np.clip(np.tanh(y[:, pedal]), 0.0, 1.0) * high[pedal]
    other = bounded & ~sym & ~pedal
    out[:, other] = low[other] + (high[other] - low[other]) / (1.0 + np.exp(-y[:, other]))
    return np.clip(out, low, high).astype(space.dtype)


def is_controller_dir(path: str | Path) -> bool:
    return (Path(path) / "controller.json").is_file()
