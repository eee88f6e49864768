"""An off-policy agent's replay buffer kept next to its checkpoint, so that a resumed run learns from what it had.

SB3's ``save`` leaves the replay buffer out, and its own ``save_replay_buffer`` pickles it. Here the buffer is plain
arrays in an ``.npz`` (nothing is unpickled on load): the filled part of each of SB3's ``ReplayBuffer`` /
``DictReplayBuffer`` arrays, its write position, and the agent step it belongs to, which must be the step of the
checkpoint it is loaded with. The file is written atomically; a kill while writing leaves the previous one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gym_dream.checkpoint import atomic_write

#: the arrays of an SB3 replay buffer, each (buffer_size, n_envs, ...); ``next_observations`` is None under
#: ``optimize_memory_usage``, and the observations are dicts of arrays in a ``DictReplayBuffer``
FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


def _arrays(buffer: Any) -> dict[str, np.ndarray] | None:
    """The buffer's arrays by name (``observations/<key>`` for a dict space), or None for a buffer this file cannot hold."""
    from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

    if type(buffer) not in (ReplayBuffer, DictReplayBuffer):  # e.g. HER's buffer keeps episodes in other fields
        return None
    arrays = {}
    for name in FIELDS:
        value = getattr(buffer, name, None)
        if isinstance(value, dict):
            arrays.update({f"{name}/{k}": v for k, v in value.items()})
        elif value is not None:
            arrays[name] = value
    return arrays


def save_replay_buffer(agent: Any, path: Path) -> bool:
    """Write ``agent.replay_buffer``'s filled part to ``path`` (atomically); False (nothing written) if the agent has no
    replay buffer this file can hold."""
    buffer = getattr(agent, "replay_buffer", None)
    arrays = None if buffer is None else _arrays(buffer)
    if arrays is None:
        return False
    filled = buffer.buffer_size if buffer.full else buffer.pos
    meta = {"step": np.int64(agent.num_timesteps), "pos": np.int64(buffer.pos), "full": np.bool_(buffer.full),
            "buffer_size": np.int64(buffer.buffer_size), "n_envs": np.int64(buffer.n_envs)}
    atomic_write(path, lambda f: np.savez(f, **meta, **{f"data/{k}": v[:filled] for k, v in arrays.items()}))
    return True


def load_replay_buffer(agent: Any, path: Path) -> str | None:
    """Fill ``agent.replay_buffer`` from ``path``; None when it did, else why it did not (no file, a file of another step
    than the agent's checkpoint, or of another buffer: another size, number of envs or space), the buffer then empty."""
    path = Path(path)
    buffer = getattr(agent, "replay_buffer", None)
    arrays = None if buffer is None else _arrays(buffer)
    if arrays is None:
        return "the agent has no replay buffer that can be kept"
    if not path.is_file():
        return f"no {path.name} next to the checkpoint"
    with np.load(path, allow_pickle=False) as f:
        if int(f["step"]) != int(agent.num_timesteps):
            return f"{path.name} holds the buffer of step {int(f['step'])}, the checkpoint is of step {int(agent.num_timesteps)}"
        if (int(f["buffer_size"]), int(f["n_envs"])) != (buffer.buffer_size, buffer.n_envs):
            return (f"{path.name} holds a buffer of {int(f['buffer_size'])} x {int(f['n_envs'])} envs, the agent's is "
                    f"{buffer.buffer_size} x {buffer.n_envs}")
        stored = {k[len("data/"):] for k in f.files if k.startswith("data/")}
        if stored != set(arrays):
            return f"{path.name} holds the arrays {sorted(stored)}, the agent's buffer has {sorted(arrays)}"
        filled = buffer.buffer_size if bool(f["full"]) else int(f["pos"])
        for name, target in arrays.items():
            data = f[f"data/{name}"]
            if data.shape != (filled, *target.shape[1:]):
                return f"{path.name}'s {name} is {data.shape}, the agent's buffer holds {(filled, *target.shape[1:])}"
        for name, target in arrays.items():
            target[:filled] = f[f"data/{name}"]
        buffer.pos, buffer.full = int(f["pos"]), bool(f["full"])
    return None
