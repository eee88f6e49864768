"""An exported dream (``gym-dream export MODEL --runtime onnx``): three ONNX graphs and a manifest, run by onnxruntime.

The folder holds ``dream.json`` (plain data: state and noise names and shapes, spaces, the card's dream settings) and
``initial_state.onnx``, ``imagine.onnx``, ``decode.onnx`` (written by ``trainers/export/onnx.py``). Every random
number of a step is an input, drawn here from the caller's numpy generator, so the same seed gives the same dream.
"""

from __future__ import annotations

import json
import math
import numbers
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from gym_dream_onnx.onnx_proto import ProtoError, external_tensors

MANIFEST = "dream.json"
FORMAT_VERSION = 1
GRAPHS = ("initial_state", "imagine", "decode")
NOISE_KINDS = ("uniform", "normal")
#: the highest temperature a dream takes (as gym_dream.envs.core.MAX_TAU)
MAX_TAU = 100.0

State = dict[str, np.ndarray]


class DreamFormatError(ValueError):
    """An exported dream folder that is missing, of another format version, or inconsistent."""


def _shape(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 20
                                              for d in value):
        raise DreamFormatError(f"{where} must be a list of positive integers, got {value!r}.")
    return tuple(value)


def space_from_manifest(data: Any) -> spaces.Space:
    """A Discrete or Box action space as gym_dream.spaces.space_to_dict writes it."""
    if not isinstance(data, dict) or data.get("type") not in ("Discrete", "Box"):
        raise DreamFormatError(f"dream.json: action_space must be a Discrete or Box description, got {data!r}.")
    if data["type"] == "Discrete":
        return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
    shape = _shape(data.get("shape"), "dream.json: action_space.shape")

    def bound(v):
        return np.broadcast_to(np.array(v, dtype=np.float64), shape).astype(np.float32)

    return spaces.Box(bound(data["low"]), bound(data["high"]), shape, np.float32)


def check_tau(tau: Any) -> float | tuple[float, float]:
    """A temperature in (0, 100], or a range ``(low, high)`` of them (each episode draws its own)."""
    if isinstance(tau, (list, tuple)):
        if len(tau) != 2:
            raise ValueError(f"A tau range is two temperatures (low, high), e.g. tau=(1.0, 1.7); got {tau!r}.")
        low, high = (check_tau(t) for t in tau)
        if low > high:
            raise ValueError(f"A tau range is (low, high) with low <= high, got {tau!r}: write tau=({high}, {low}).")
        return low, high
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise TypeError(f"tau must be a positive number (e.g. tau=1.15) or a range of two, got {tau!r}.")
    tau = float(tau)
    if not math.isfinite(tau) or not 0 < tau <= MAX_TAU or float(np.float32(tau)) <= 0:
        raise ValueError(f"tau must be a finite number in (0, {MAX_TAU:g}] (1.0 samples the model as trained; try 0.5-1.5), "
                         f"got {tau}.")
    return tau


def _self_contained(path: Path) -> bytes:
    """The graph's bytes, refused if any tensor keeps its data in another file (an external-data location can name
    any path on the machine; an exported dream keeps every weight inside its graphs). Passed to onnxruntime as bytes."""
    data = path.read_bytes()
    try:
        external = external_tensors(data)
    except ProtoError as e:
        raise DreamFormatError(f"{path} is not an ONNX model ({e}): export the model again "
                               "(gym-dream export ... --runtime onnx).") from None
    if external:
        names = ", ".join(external[:3])
        raise DreamFormatError(f"{path} keeps {len(external)} tensor(s) in external data files ({names}): refused, since an "
                               "external-data location can point at any file. An exported dream holds every weight inside its "
                               "graph: export the model again (gym-dream export ... --runtime onnx).")
    return data


class OnnxDream:
    """The dream of an exported model: start states, one batched step, decoding, all as numpy arrays.

    >>> dream = OnnxDream("dist/dream-mygame/src/dream_mygame/dream")      # doctest: +SKIP
    >>> rng = np.random.default_rng(0)                                     # doctest: +SKIP
    >>> state, features = dream.initial_state(dream.draw_index(rng, 4))    # doctest: +SKIP
    """

    def __init__(self, directory: str | Path, threads: int | None = None):
        import onnxruntime as ort

        self.directory = Path(directory)
        try:
            manifest = json.loads((self.directory / MANIFEST).read_text())
        except FileNotFoundError:
            raise DreamFormatError(f"{self.directory} is not an exported dream: no {MANIFEST}. Export one with "
                                   "`gym-dream export MODEL --runtime onnx ...`.") from None
        except ValueError as e:
            raise DreamFormatError(f"{self.directory / MANIFEST} is not valid JSON: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
            found = manifest.get("format_version") if isinstance(manifest, dict) else "?"
            raise DreamFormatError(f"{self.directory / MANIFEST} has format version {found}; this gym-dream-onnx reads "
                                   f"version {FORMAT_VERSION}: install the gym-dream-onnx that the package asks for.")
        self.manifest = manifest
        self.family = str(manifest.get("family"))
        self.bank_size = int(manifest["bank_size"])
        if self.bank_size < 1:
            raise DreamFormatError(f"dream.json: bank_size must be >= 1, got {self.bank_size}.")
        self.state_shapes = {str(k): _shape(v, f"dream.json: state.{k}") for k, v in dict(manifest["state"]).items()}
        self.noise = {}
        for k, v in dict(manifest["noise"]).items():
            if not isinstance(v, dict) or v.get("kind") not in NOISE_KINDS:
                raise DreamFormatError(f"dream.json: noise.{k}.kind must be one of {NOISE_KINDS}, got {v!r}.")
            self.noise[str(k)] = (v["kind"], _shape(v.get("shape"), f"dream.json: noise.{k}.shape"))
        self.action_space = space_from_manifest(manifest["action_space"])
        self.feature_dim = int(manifest["feature_dim"])
        obs = manifest["observation"]
        self.pixels = bool(obs["pixels"])
        self.observation_shape = _shape(obs["shape"], "dream.json: observation.shape")
        self.dream_env = manifest.get("dream_env") if isinstance(manifest.get("dream_env"), dict) else {}
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        self.sessions = {}
        for g in GRAPHS:
            path = self.directory / f"{g}.onnx"
            if not path.is_file():
                raise DreamFormatError(f"{self.directory} has no {path.name}: export the model again "
                                       "(gym-dream export ... --runtime onnx).")
            self.sessions[g] = ort.InferenceSession(_self_contained(path), options, providers=["CPUExecutionProvider"])
        self._inputs = {g: [i.name for i in s.get_inputs()] for g, s in self.sessions.items()}
        self._outputs = {g: [o.name for o in s.get_outputs()] for g, s in self.sessions.items()}
        want = [*self.state_shapes, "action", "tau", *self.noise]
        if self._inputs["imagine"] != want:
            raise DreamFormatError(f"{self.directory / 'imagine.onnx'} takes {self._inputs['imagine']}, "
                                   f"but dream.json describes {want}.")

    # -- randomness: every draw from the caller's generator --------------------------------------------
    def draw_index(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Rows of the start-state bank for ``batch`` new episodes."""
        return rng.integers(0, self.bank_size, size=batch, dtype=np.int64)

    def draw_noise(self, rng: np.random.Generator, batch: int) -> dict[str, np.ndarray]:
        """One step's random numbers, in the manifest's order."""
        out = {}
        for name, (kind, shape) in self.noise.items():
            if kind == "uniform":
                out[name] = rng.random((batch, *shape), dtype=np.float32)
            else:
                out[name] = rng.standard_normal((batch, *shape), dtype=np.float32)
        return out

    # -- the graphs ---------------------------------------------------------------------------------------
    def initial_state(self, index: np.ndarray) -> tuple[State, np.ndarray]:
        """(state, features) of the bank rows ``index``."""
        outs = self.sessions["initial_state"].run(None, {"index": np.ascontiguousarray(index, dtype=np.int64)})
        names = self._outputs["initial_state"]
        state = {k: v for k, v in zip(names, outs) if k in self.state_shapes}
        return state, outs[names.index("features")]

    def imagine(self, state: State, action: np.ndarray, tau: np.ndarray, noise: dict[str, np.ndarray]) -> dict[str, Any]:
        """One batched step: ``state`` (the next one), ``reward``, ``termination_prob``, ``features``."""
        feed = {**state, "action": action, "tau": np.ascontiguousarray(tau, dtype=np.float32), **noise}
        outs = dict(zip(self._outputs["imagine"], self.sessions["imagine"].run(None, feed)))
        return {"state": {k: outs[f"next_{k}"] for k in self.state_shapes}, "reward": outs["reward"],
                "termination_prob": outs["termination_prob"], "features": outs["features"]}

    def decode(self, state: State) -> np.ndarray:
        """The predicted observation of each state: (B, H, W, 3) uint8 frames for pixel models, vectors otherwise."""
        return self.sessions["decode"].run(None, {k: state[k] for k in self._inputs["decode"]})[0]
