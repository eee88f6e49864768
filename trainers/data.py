"""Episode datasets on disk: a folder of compressed shards plus ``dataset.json``.

Each shard ``shard-<first episode id>.npz`` holds whole episodes only, written atomically (temp
file + rename), so an interrupted writer leaves either a complete shard or none. Episode ids are
consecutive from 0; a reader trusts only complete shards. Per episode of length L the shard stores
L+1 observations (uint8 64x64x3 frames or float32 vectors) and L actions, rewards, terminated,
truncated.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gym_dream.checkpoint import atomic_write_bytes

META_FILE = "dataset.json"


@dataclass
class Episode:
    obs: np.ndarray  # (L+1, ...)
    actions: np.ndarray  # (L, ...)
    rewards: np.ndarray  # (L,) float32
    terminated: np.ndarray  # (L,) bool
    truncated: np.ndarray  # (L,) bool

    def __len__(self) -> int:
        return len(self.actions)


def write_shard(directory: Path, first_id: int, episodes: list[Episode]) -> Path:
    """Atomically write ``episodes`` (ids first_id, first_id+1, ...) as one compressed shard."""
    lengths = np.array([len(e) for e in episodes], dtype=np.int64)
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        ids=np.arange(first_id, first_id + len(episodes), dtype=np.int64),
        lengths=lengths,
        obs=np.concatenate([e.obs for e in episodes]),
        actions=np.concatenate([e.actions for e in episodes]),
        rewards=np.concatenate([e.rewards for e in episodes]).astype(np.float32),
        terminated=np.concatenate([e.terminated for e in episodes]).astype(bool),
        truncated=np.concatenate([e.truncated for e in episodes]).astype(bool),
    )
    path = Path(directory) / f"shard-{first_id:08d}.npz"
    atomic_write_bytes(path, buf.getvalue())
    return path


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    return sorted(Path(directory).glob("shard-*.npz"))


def read_meta(directory: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(directory) / META_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_meta(directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    atomic_write_bytes(Path(directory) / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())


def count_episodes(directory: str | os.PathLike) -> tuple[int, int]:
    """(episodes, steps) stored in complete shards."""
    episodes = steps = 0
    for p in shard_paths(directory):
        with np.load(p) as f:
            lengths = f["lengths"]
        episodes += len(lengths)
        steps += int(lengths.sum())
    return episodes, steps


class EpisodeDataset:
    """All episodes of a dataset folder, concatenated in memory with offsets.

    ``obs[obs_start[i] : obs_start[i] + lengths[i] + 1]`` are episode i's observations and
    ``actions[act_start[i] : act_start[i] + lengths[i]]`` its actions (likewise rewards, flags).
    """

    def __init__(self, directory: str | os.PathLike, max_episodes: int | None = None):
        self.directory = Path(directory)
        self.meta = read_meta(directory)
        if self.meta is None:
            raise FileNotFoundError(f"{directory} holds no {META_FILE}; collect data first with `gym-dream collect`.")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("ids", "lengths", "obs", "actions", "rewards", "terminated", "truncated")}
        n = 0
        for p in shard_paths(directory):
            with np.load(p) as f:
                shard = {k: f[k] for k in parts}
            if max_episodes is not None and n + len(shard["lengths"]) > max_episodes:
                keep = max_episodes - n
                steps = int(shard["lengths"][:keep].sum())
                shard = {
                    "ids": shard["ids"][:keep], "lengths": shard["lengths"][:keep], "obs": shard["obs"][: steps + keep],
                    **{k: shard[k][:steps] for k in ("actions", "rewards", "terminated", "truncated")},
                }
            for k in parts:
                parts[k].append(shard[k])
            n += len(shard["lengths"])
            if max_episodes is not None and n >= max_episodes:
                break
        if n == 0:
            raise ValueError(f"{directory} holds no episodes yet; run `gym-dream collect` first.")
        for k, v in parts.items():
            setattr(self, k, np.concatenate(v))
        self.act_start = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.obs_start = self.act_start + np.arange(len(self.lengths))

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def steps(self) -> int:
        return int(self.lengths.sum())

    def episode(self, i: int) -> Episode:
        a, o, n = self.act_start[i], self.obs_start[i], self.lengths[i]
        return Episode(self.obs[o : o + n + 1], self.actions[a : a + n], self.rewards[a : a + n], self.terminated[a : a + n], self.truncated[a : a + n])

    def split(self, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Episode indices (train, held-out); the split depends only on episode ids and ``seed``."""
        rng = np.random.default_rng(seed)
        u = rng.random(int(self.ids.max()) + 1)[self.ids]
        val = np.flatnonzero(u < val_fraction)
        train = np.flatnonzero(u >= val_fraction)
        if len(val) == 0 and len(self) > 1:
            val, train = train[-1:], train[:-1]
        return train, val
