"""The one observation transform shared by data collection, the model and the real-env wrapper.

A model card records its :class:`Preprocessing`; collection applies it before frames reach disk and
:class:`~gym_dream.wrappers.DreamObservation` applies exactly the same transform to live frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Preprocessing:
    """How a raw real-env observation becomes model input.

    Args:
        kind: ``"vector"`` (float32 vector, passed through) or ``"image"`` (HxWx3 uint8 frame).
        key: for Dict observations, the entry the model sees (e.g. ``"screen"`` for ViZDoom).
        crop: ``[top, bottom, left, right]`` pixels removed before resizing (images only).
        size: ``[height, width]`` after resizing (images only).
    """

    kind: str = "vector"
    key: str | None = None
    crop: tuple[int, int, int, int] | None = None
    size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("vector", "image"):
            raise ValueError(f"Preprocessing kind must be 'vector' or 'image', got {self.kind!r}.")
        if self.kind == "image" and self.size is None:
            object.__setattr__(self, "size", (64, 64))
        if self.crop is not None:
            object.__setattr__(self, "crop", tuple(int(c) for c in self.crop))
        if self.size is not None:
            object.__setattr__(self, "size", tuple(int(s) for s in self.size))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Preprocessing":
        unknown = set(data) - {"kind", "key", "crop", "size"}
        if unknown:
            raise ValueError(f"Unknown preprocessing fields {sorted(unknown)} in model card.")
        return cls(**data)

    def select(self, obs: Any) -> np.ndarray:
        """Pick the model's part of a (possibly Dict) observation."""
        if self.key is not None:
            if not isinstance(obs, dict) or self.key not in obs:
                raise ValueError(f"Expected a dict observation with key {self.key!r}, got {type(obs).__name__}.")
            obs = obs[self.key]
        return np.asarray(obs)

    def __call__(self, obs: Any, batched: bool = False) -> np.ndarray:
        """Transform one observation (or a batch when ``batched``) into model input as numpy."""
        x = self.select(obs)
        if self.kind == "vector":
            return np.asarray(x, dtype=np.float32)
        if not batched:
            return self._images(x[None])[0]
        return self._images(x)

    def _images(self, frames: np.ndarray) -> np.ndarray:
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"Expected HxWx3 frames, got a batch of shape {frames.shape}.")
        if self.crop is not None:
            top, bottom, left, right = self.crop
            h, w = frames.shape[1:3]
            frames = frames[:, top : h - bottom, left : w - right]
        if tuple(frames.shape[1:3]) == tuple(self.size):
            return np.ascontiguousarray(frames, dtype=np.uint8)
        t = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        t = F.interpolate(t, size=tuple(self.size), mode="bilinear", antialias=True, align_corners=False)
        return t.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
