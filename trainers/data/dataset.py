"""Episode datasets on disk: a folder of compressed shards, per-episode files, and ``dataset.json``.

Each shard ``shard-<first episode id>.npz`` holds whole episodes only, written atomically (temp
file + rename), so an interrupted writer leaves either a complete shard or none. While collecting,
every episode reaches disk the moment it ends, as its own small uncompressed file
``episode-<id>.npz`` (also atomic); these are compacted into a shard once ``shard_steps`` of them
have accumulated (the shard is written first, then the episode files removed; an episode file
whose id a shard already holds is a leftover of an interrupted compaction and is ignored), so a
kill -9 at any moment loses at most the episodes still running. Episode ids count from 0 in the
order episodes ended; each episode also records its *key*, the index that seeded it (see
:mod:`trainers.data.collect`). Per episode of length L a file stores L+1 observations (uint8 64x64x3
frames or float32 vectors) and L actions, rewards, terminated, truncated.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from gym_dream.checkpoint import atomic_write_bytes, read_json
from gym_dream.error import DataFormatError

META_FILE = "dataset.json"
FIELDS = ("ids", "lengths", "obs", "actions", "rewards", "terminated", "truncated")


@dataclass
class Episode:
    obs: np.ndarray  # (L+1, ...)
    actions: np.ndarray  # (L, ...)
    rewards: np.ndarray  # (L,) float32
    terminated: np.ndarray  # (L,) bool
    truncated: np.ndarray  # (L,) bool

    def __len__(self) -> int:
        return len(self.actions)


def _pack(first_id: int, episodes: list[Episode], keys: list[int] | None, compress: bool) -> bytes:
    lengths = np.array([len(e) for e in episodes], dtype=np.int64)
    ids = np.arange(first_id, first_id + len(episodes), dtype=np.int64)
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(
        buf,
        ids=ids,
        keys=ids.copy() if keys is None else np.asarray(keys, dtype=np.int64),
        lengths=lengths,
        obs=np.concatenate([e.obs for e in episodes]),
        actions=np.concatenate([e.actions for e in episodes]),
        rewards=np.concatenate([e.rewards for e in episodes]).astype(np.float32),
        terminated=np.concatenate([e.terminated for e in episodes]).astype(bool),
        truncated=np.concatenate([e.truncated for e in episodes]).astype(bool),
    )
    return buf.getvalue()


def write_shard(directory: Path, first_id: int, episodes: list[Episode], keys: list[int] | None = None) -> Path:
    """Atomically write ``episodes`` (ids first_id, first_id+1, ...) as one compressed shard."""
    path = Path(directory) / f"shard-{first_id:08d}.npz"
    atomic_write_bytes(path, _pack(first_id, episodes, keys, compress=True))
    return path


def write_episode(directory: Path, episode_id: int, episode: Episode, key: int | None = None, durable: bool = True) -> Path:
    """Atomically write one finished episode as its own (uncompressed, quick to write) file.
    ``durable=False`` leaves the flush to disk to the caller (the collector syncs once a second)."""
    path = Path(directory) / f"episode-{episode_id:08d}.npz"
    atomic_write_bytes(path, _pack(episode_id, [episode], None if key is None else [key], compress=False), durable=durable)
    return path


def shard_paths(directory: str | os.PathLike) -> list[Path]:
    return sorted(Path(directory).glob("shard-*.npz"))


def episode_paths(directory: str | os.PathLike) -> list[Path]:
    return sorted(Path(directory).glob("episode-*.npz"))


_FIX = ("Move it out of the dataset folder (e.g. `mv {path} {path}.broken`): `gym-dream collect` with the same "
        "arguments then collects the missing episodes again, and `gym-dream fit` trains on the others.")


def load_file(path: Path, keys: tuple[str, ...] = (*FIELDS, "keys")) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of one shard or episode file; a truncated or damaged file raises
    :class:`DataFormatError` naming it and the fix. Never unpickles (``allow_pickle=False``)."""
    try:
        with np.load(path, allow_pickle=False) as f:
            out = {k: f[k] for k in keys if k in f.files}
            if "keys" in keys and "keys" not in f.files:  # written before keys existed: the id is the key
                out["keys"] = f["ids"]
            missing = [k for k in keys if k not in out]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError, zipfile.LargeZipFile) as e:
        raise DataFormatError(f"{path} cannot be read ({type(e).__name__}: {e}); the file is truncated or damaged. "
                              + _FIX.format(path=path)) from None
    if missing:
        raise DataFormatError(f"{path} lacks the arrays {missing}; it is not a gym-dream episode file. " + _FIX.format(path=path))
    if "lengths" in out and "ids" in out and len(out["lengths"]) != len(out["ids"]):
        raise DataFormatError(f"{path} holds {len(out['ids'])} ids but {len(out['lengths'])} lengths; it is damaged. " + _FIX.format(path=path))
    if "actions" in out and "lengths" in out and len(out["actions"]) != int(out["lengths"].sum()):
        raise DataFormatError(f"{path} holds {len(out['actions'])} actions for episodes of {int(out['lengths'].sum())} steps; it is damaged. "
                              + _FIX.format(path=path))
    if "obs" in out and "lengths" in out:
        check_observation_count(path, len(out["obs"]), out["lengths"])
    return out


def check_observation_count(path: Path, observations: int, lengths: np.ndarray) -> None:
    """A file holds each episode's steps + 1 observations; otherwise it is damaged (:class:`DataFormatError`)."""
    if observations != int(lengths.sum()) + len(lengths):
        raise DataFormatError(f"{path} holds {observations} observations for {len(lengths)} episodes of {int(lengths.sum())} steps; "
                              "it is damaged. " + _FIX.format(path=path))


def observations_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and dtype of a file's observations, from the array's header alone (nothing decompressed), so a dataset
    can be checked whole before a long job reads its frames. Observations stored as Python objects (a pickle) raise
    :class:`DataFormatError` naming the file: gym-dream never unpickles data."""
    try:
        with zipfile.ZipFile(path) as z, z.open("obs.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as e:
        raise DataFormatError(f"{path} cannot be read ({type(e).__name__}: {e}); the file is truncated or damaged. "
                              + _FIX.format(path=path)) from None
    if dtype.hasobject:
        raise DataFormatError(f"{path} stores its observations as Python objects (a pickle), which gym-dream never loads; "
                              "it was not written by gym-dream. " + _FIX.format(path=path))
    return shape, dtype


@dataclass
class StoredFile:
    path: Path
    ids: np.ndarray
    keys: np.ndarray
    lengths: np.ndarray


def dataset_index(directory: str | os.PathLike) -> tuple[list[StoredFile], list[Path]]:
    """(the files holding the dataset's episodes, in id order; stale episode files).

    An episode file whose id a shard also holds is stale: an interrupted compaction wrote the shard
    but did not get to remove it."""
    files: list[StoredFile] = []
    in_shards: set[int] = set()
    for p in shard_paths(directory):
        f = load_file(p, ("ids", "keys", "lengths"))
        files.append(StoredFile(p, f["ids"], f["keys"], f["lengths"]))
        in_shards.update(int(i) for i in f["ids"])
    stale: list[Path] = []
    for p in episode_paths(directory):
        f = load_file(p, ("ids", "keys", "lengths"))
        if set(int(i) for i in f["ids"]) <= in_shards:
            stale.append(p)
        else:
            files.append(StoredFile(p, f["ids"], f["keys"], f["lengths"]))
    files.sort(key=lambda s: int(s.ids[0]) if len(s.ids) else -1)
    return files, stale


def read_meta(directory: str | os.PathLike) -> dict[str, Any] | None:
    path = Path(directory) / META_FILE
    if not path.is_file():
        return None
    meta = read_json(path, "dataset description")
    if not isinstance(meta, dict) or "env_id" not in meta or "preprocessing" not in meta:
        raise DataFormatError(f"{path} is not a gym-dream dataset description (no env_id / preprocessing); "
                              "collect into a new folder, or restore the file from a copy.")
    return meta


def write_meta(directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    atomic_write_bytes(Path(directory) / META_FILE, (json.dumps(meta, indent=2) + "\n").encode())


def count_episodes(directory: str | os.PathLike) -> tuple[int, int]:
    """(episodes, steps) stored in complete files."""
    files, _ = dataset_index(directory)
    return sum(len(f.lengths) for f in files), sum(int(f.lengths.sum()) for f in files)


class EpisodeDataset:
    """All episodes of a dataset folder, concatenated in memory with offsets.

    ``obs[obs_start[i] : obs_start[i] + lengths[i] + 1]`` are episode i's observations and
    ``actions[act_start[i] : act_start[i] + lengths[i]]`` its actions (likewise rewards, flags).

    The observations are read on first use of ``obs``, all at once into one preallocated array (peak memory: the
    observations once). A job that needs each observation only once (encoding every frame with a trained VAE) reads
    them with :meth:`observation_chunks` instead, one file at a time, and never holds them all: 10,000 VizDoom
    episodes are 44 GB of frames but about 2 GB of latents. Every file's observations are checked at open from their
    headers (count, dtype, one shape for all: ``frame``), so a damaged or foreign file stops a job before it starts.
    """

    def __init__(self, directory: str | os.PathLike, max_episodes: int | None = None):
        self.directory = Path(directory)
        self.meta = read_meta(directory)
        if self.meta is None:
            raise FileNotFoundError(f"{directory} holds no {META_FILE}; collect data first with `gym-dream collect`.")
        # the small arrays now (and how many observations each file gives); the observations when first asked for
        small = tuple(k for k in (*FIELDS, "keys") if k != "obs")
        parts: dict[str, list[np.ndarray]] = {k: [] for k in small}
        self._sources: list[tuple[Path, int]] = []  # (file, observations taken from its start)
        self.frame: tuple[tuple[int, ...], np.dtype] | None = None  # one observation's shape and dtype, from the headers
        n = 0
        for stored in dataset_index(directory)[0]:
            shard = load_file(stored.path, small)
            shape, dtype = observations_header(stored.path)  # checked now, read later
            check_observation_count(stored.path, shape[0], shard["lengths"])
            if self.frame is None:
                self.frame = (tuple(shape[1:]), dtype)
            elif self.frame != (tuple(shape[1:]), dtype):
                raise DataFormatError(f"{stored.path} holds observations of shape {tuple(shape[1:])} ({dtype}), but {self._sources[0][0]} "
                                      f"holds {self.frame[0]} ({self.frame[1]}): one dataset's files must come from the same env "
                                      "and settings. Collect into a new folder for the other observations.")
            if max_episodes is not None and n + len(shard["lengths"]) > max_episodes:
                keep = max_episodes - n
                steps = int(shard["lengths"][:keep].sum())
                shard = {
                    "ids": shard["ids"][:keep], "keys": shard["keys"][:keep], "lengths": shard["lengths"][:keep],
                    **{k: shard[k][:steps] for k in ("actions", "rewards", "terminated", "truncated")},
                }
            for k in parts:
                parts[k].append(shard[k])
            self._sources.append((stored.path, int(shard["lengths"].sum()) + len(shard["lengths"])))
            n += len(shard["lengths"])
            if max_episodes is not None and n >= max_episodes:
                break
        if n == 0:
            raise ValueError(f"{directory} holds no episodes yet; run `gym-dream collect` first.")
        for k, v in parts.items():
            setattr(self, k, np.concatenate(v))
        self._obs: np.ndarray | None = None
        self.act_start = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.obs_start = self.act_start + np.arange(len(self.lengths))

    @property
    def observations(self) -> int:
        """How many observations the dataset holds (each episode's steps + 1), without reading them."""
        return self.steps + len(self)

    def _read_observations(self, path: Path, count: int) -> np.ndarray:
        return load_file(path, ("ids", "lengths", "obs"))["obs"][:count]  # load_file checks obs against lengths

    @property
    def obs(self) -> np.ndarray:
        """Every observation, in episode order; read from disk on first use."""
        if self._obs is None:
            at = 0
            for path, count in self._sources:
                obs = self._read_observations(path, count)
                if self._obs is None:
                    self._obs = np.empty((self.observations, *obs.shape[1:]), dtype=obs.dtype)
                self._obs[at : at + count] = obs
                at += count
        return self._obs

    def observations_at(self, index: np.ndarray) -> np.ndarray:
        """The observations at ``index`` (in that order); when they are not in memory, only the files that hold them are
        read, each once, and only those observations are kept."""
        index = np.asarray(index, dtype=np.int64)
        if len(index) and (index.min() < 0 or index.max() >= self.observations):
            raise IndexError(f"observation indices must lie in [0, {self.observations}); got {index.min()}..{index.max()}")
        if self._obs is not None:
            return self._obs[index]
        if not len(index):
            return np.empty((0, *self.frame[0]), dtype=self.frame[1])
        out = None
        for start, (path, count) in zip(np.cumsum([0] + [c for _, c in self._sources[:-1]]), self._sources):
            inside = np.flatnonzero((index >= start) & (index < start + count))
            if len(inside):
                obs = self._read_observations(path, count)
                if out is None:
                    out = np.empty((len(index), *obs.shape[1:]), dtype=obs.dtype)
                out[inside] = obs[index[inside] - start]
        return out

    def observation_chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """(index of the chunk's first observation, the chunk) over every observation in order: slices of ``obs`` once
        it is in memory, else one file's observations at a time, read and let go (nothing is kept)."""
        at = 0
        for path, count in self._sources:
            yield at, (self._obs[at : at + count] if self._obs is not None else self._read_observations(path, count))
            at += count

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
