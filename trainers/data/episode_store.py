"""A dataset folder's episode storage while a collection writes it, whichever backend runs the envs: finished episodes
as their own atomic files, flushed off the main thread and compacted into shards, torn files set aside, and the
folder's lock (:mod:`trainers.infra.folder_lock`; :mod:`trainers.data.dataset` reads and writes the files themselves)."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np

from gym_dream.error import DataFormatError, DatasetBusy

from trainers.data.dataset import Episode, episode_paths, load_file, write_episode, write_shard
from trainers.infra.folder_lock import hold_folder

logger = logging.getLogger(__name__)

#: finished episodes are flushed to the disk (power loss) at most this long after they end
SYNC_SECONDS = 1.0


def compact_episode_files(out: Path, paths: list[Path]) -> None:
    """Episode files -> one shard (written first), then the episode files removed."""
    if not paths:
        return
    loaded = [load_file(p) for p in paths]
    loaded.sort(key=lambda f: int(f["ids"][0]))
    first = int(loaded[0]["ids"][0])
    ids = [int(f["ids"][0]) for f in loaded]
    if ids != list(range(first, first + len(ids))):  # a hole (a file moved aside): one shard per run of ids
        runs: list[list[int]] = [[0]]
        for j in range(1, len(ids)):
            (runs[-1] if ids[j] == ids[j - 1] + 1 else runs.append([]) or runs[-1]).append(j)
        for run in runs:
            _write_loaded(out, [loaded[j] for j in run])
    else:
        _write_loaded(out, loaded)
    for p in paths:
        p.unlink(missing_ok=True)


def _write_loaded(out: Path, loaded: list[dict[str, np.ndarray]]) -> None:
    eps = [Episode(f["obs"], f["actions"], f["rewards"], f["terminated"], f["truncated"]) for f in loaded]
    write_shard(out, int(loaded[0]["ids"][0]), eps, [int(f["keys"][0]) for f in loaded])


class Flusher:
    """Flushes written files to the disk (``os.sync``) at most every SYNC_SECONDS, off the main thread."""

    def __init__(self) -> None:
        self.dirty = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="episode-flusher", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.dirty.wait(SYNC_SECONDS):
                self.dirty.clear()
                os.sync()
                self.stop.wait(SYNC_SECONDS)

    def close(self) -> None:
        self.stop.set()
        self.dirty.set()
        self.thread.join()
        os.sync()


def set_aside_torn_episode_files(out: Path) -> None:
    """An episode file a power loss left torn (written, not yet flushed) is renamed ``*.broken``; its
    episode is collected again (its key is missing). Shards are flushed before use and never set aside."""
    for p in episode_paths(out):
        try:
            load_file(p)
        except DataFormatError as e:
            target = p.with_name(p.name + ".broken")
            p.rename(target)
            logger.warning(f"collect: {p.name} is torn ({e}); renamed it {target.name}, its episode is collected again")


def lock_dataset(out: Path):
    """Hold the dataset folder for this process: two collectors writing one dataset would interleave their episode keys."""
    return hold_folder(out, "collect", DatasetBusy)


def episode_from(b: dict[str, list]) -> Episode:
    """An :class:`Episode` from a buffer of per-step lists (obs, actions, rewards, terminated, truncated)."""
    return Episode(*(np.stack(b[k]) for k in ("obs", "actions", "rewards", "terminated", "truncated")))


class EpisodeSink:
    """Where finished episodes go, whichever backend ran them. Each is written as its own file the moment it is
    stored (a kill -9 loses nothing finished), flushed to the disk within SYNC_SECONDS by a background thread,
    and compacted into a shard of ``shard_steps`` by another (zlib releases the GIL, so the envs keep stepping;
    at most one compaction is pending, which bounds memory). ``next_id`` and ``total_steps`` count the dataset."""

    def __init__(self, out: Path, n_eps: int, n_steps: int, bar, done: Callable[[int, int], bool], shard_steps: int,
                 count_steps: bool) -> None:
        self.out, self.bar, self._done = out, bar, done
        self.shard_steps, self.count_steps = shard_steps, count_steps  # the bar counts steps (a step target) or episodes
        self.next_id, self.total_steps, self.new_eps = n_eps, n_steps, 0
        self.finished: list[tuple[int, Episode, Path]] = []  # (key, episode, its file), not yet in a shard
        self.finished_steps = 0
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="shard-writer")
        self.pending: list[Future] = []
        self.flusher = Flusher()

    def done(self) -> bool:
        return self._done(self.next_id, self.total_steps)

    def store(self, key: int, ep: Episode) -> None:
        # in the file system now: a kill -9 loses nothing finished; on the disk (power loss) within about
        # a second, flushed by a background thread (an fsync per episode would cost more than CartPole's steps)
        path = write_episode(self.out, self.next_id, ep, key, durable=False)
        self.flusher.dirty.set()
        self.finished.append((key, ep, path))
        self.next_id += 1
        self.total_steps += len(ep)
        self.finished_steps += len(ep)
        self.new_eps += 1
        self.bar.update(len(ep) if self.count_steps else 1)
        if self.finished_steps >= self.shard_steps:
            self.compact()

    def compact(self) -> None:
        if self.finished:
            for f in self.pending:
                f.result()
            batch, first, out = self.finished, self.next_id - len(self.finished), self.out

            def job() -> None:
                write_shard(out, first, [e for _, e, _ in batch], [k for k, _, _ in batch])
                for _, _, p in batch:
                    p.unlink(missing_ok=True)

            self.pending[:] = [self.writer.submit(job)]
            self.finished, self.finished_steps = [], 0

    def close(self) -> None:
        try:
            self.compact()
            self.writer.shutdown(wait=True)
            self.flusher.close()
            for f in self.pending:
                f.result()
        finally:
            self.bar.close()
