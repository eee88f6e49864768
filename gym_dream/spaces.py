"""Gymnasium spaces as plain JSON data, for model cards and registration kwargs."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces


def _bound_list(arr: np.ndarray) -> Any:
    """A bound as JSON: one number when all entries agree, else a nested list (inf as strings)."""
    flat = np.asarray(arr, dtype=np.float64)
    def conv(v: float) -> Any:
        if np.isposinf(v):
            return "inf"
        if np.isneginf(v):
            return "-inf"
        return float(v)
    if flat.size and np.all(flat == flat.flat[0]):
        return conv(flat.flat[0])
    return np.vectorize(conv, otypes=[object])(flat).tolist()


def _bound_array(value: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    arr = np.array(value, dtype=object)
    arr = np.vectorize(lambda v: float(v) if not isinstance(v, str) else float(v), otypes=[np.float64])(arr)
    return np.broadcast_to(arr, shape).astype(dtype)


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """Serialise a Box or Discrete space (the kinds a dream supports)."""
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": np.dtype(space.dtype).name,
            "low": _bound_list(space.low),
            "high": _bound_list(space.high),
        }
    raise TypeError(
        f"gym_dream supports Box and Discrete spaces, got {type(space).__name__}. "
        "Flatten or select the part of the observation the model uses (e.g. the 'screen' key of a Dict)."
    )


def space_from_dict(data: dict[str, Any]) -> spaces.Space:
    """Rebuild a space written by :func:`space_to_dict`."""
    kind = data.get("type")
    if kind == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    if kind == "Box":
        shape = tuple(int(s) for s in data["shape"])
        dtype = np.dtype(data["dtype"])
        return spaces.Box(
            low=_bound_array(data["low"], shape, dtype),
            high=_bound_array(data["high"], shape, dtype),
            shape=shape,
            dtype=dtype,
        )
    raise ValueError(f"Unknown space type {kind!r} in model card; expected 'Box' or 'Discrete'.")


def spaces_equal(a: spaces.Space, b: spaces.Space) -> bool:
    """Structural equality that treats Box bounds numerically (float32 vs float64 rounding)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Discrete):
        return a.n == b.n and a.start == b.start
    if isinstance(a, spaces.Box):
        return (
            a.shape == b.shape
            and np.dtype(a.dtype) == np.dtype(b.dtype)
            and np.allclose(a.low, b.low, rtol=1e-6, atol=0, equal_nan=True)
            and np.allclose(a.high, b.high, rtol=1e-6, atol=0, equal_nan=True)
        )
    return a == b
