"""The Ray backend: the three jobs that scale past one machine, on a Ray cluster (``pip install "gym-dream[ray]"``).

Chosen with ``--backend ray`` (and ``--ray-address``) on ``gym-dream collect``, ``gym-dream evaluate`` and
``gym-dream train cmaes``; the local backend stays the default and never imports Ray. Each job keeps its one
implementation in its own module and only hands the work to Ray here:

- **collection** (:func:`collect_on_ray`, called by :func:`trainers.data.collect.collect`): one real env per Ray actor,
  made exactly as the local collector makes its envs, stepping one episode at a time in chunks of at most
  :data:`CHUNK_STEPS`. This process keeps what makes the dataset right: the folder lock, the episode keys (episode k's
  env and policy seeded from ``(seed, k)``), the step budget (handed out in grants, so it is never exceeded) and the
  writing of every finished episode as its own atomic file, through the local collector's own sink. An actor that dies
  loses only the episode it was running: its key is handed out again and the job finishes on the remaining actors.
- **real evaluation** (:class:`TaskPool`, the ``pool`` of :func:`trainers.evaluation.rollout.real_episodes`): seed chunks as Ray
  tasks; each episode is seeded by its own seed, so the results are those of the local runner, and Ray re-runs the
  task of a worker that died.
- **CMA-ES** (:class:`DreamShards`, used by :func:`trainers.agents.cmaes.train_cmaes` with ``shards`` > 1): each actor
  holds one :class:`trainers.agents.cmaes.DreamShard`, a batched dream of its part of the population; the optimizer state and
  the checkpoints stay in this process (:class:`trainers.agents.cmaes.Search`). A shard whose actor died runs again on
  another actor: no generation is lost.

The dataset folder, checkpoints and models are read and written by this process (the driver); the actors only need
gym-dream installed and the model (a name, or a directory they can read). What a job's workers run (the collector's env
maker and seeds, the CMA-ES shard) is handed in by that job's module, so this one never imports them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from gym_dream.error import DependencyNotInstalled, GymDreamError
from trainers.data.episode_store import episode_from

logger = logging.getLogger(__name__)

#: the most steps an actor runs per call while collecting (one call per episode for most envs)
CHUNK_STEPS = 1000


class WorkersLost(GymDreamError, RuntimeError):
    """Every Ray worker of a job died."""


class WorkerSetupFailed(GymDreamError, RuntimeError):
    """A Ray worker could not be made (its constructor raised): every one would fail the same way."""


def init(address: str | None = None):
    """Ray, initialised: the cluster at ``address`` (``auto``, ``host:6379``, ``ray://host:10001``; default: ``$RAY_ADDRESS``,
    else a Ray started on this machine), or the Ray this process already joined."""
    try:
        import ray
    except ImportError:
        raise DependencyNotInstalled('The Ray backend needs Ray: pip install "gym-dream[ray]" (or use --backend local).') from None
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=True)
    return ray


def _dead(ray, error: BaseException) -> bool:
    return isinstance(error, (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError))


class Actors:
    """``n`` Ray actors of ``cls`` (one CPU each), each made with ``args``; :meth:`map` runs calls on them and survives
    dying actors."""

    def __init__(self, cls: type, n: int, *args: Any, address: str | None = None, num_cpus: float = 1) -> None:
        self.ray = init(address)
        remote = self.ray.remote(num_cpus=num_cpus, max_restarts=0)(cls)
        self.actors = [remote.remote(*args) for _ in range(n)]

    def map(self, method: str, items: Sequence[tuple]) -> list:
        """``actor.method(*item)`` for every item, in item order, at most one call in flight per actor. The item of an
        actor that died runs again on another; :class:`WorkersLost` when none is left."""
        ray, results, todo = self.ray, [None] * len(items), list(range(len(items)))
        running: dict = {}  # call -> (actor, item index)
        while todo or running:
            busy = [a for a, _ in running.values()]
            for actor in [a for a in self.actors if a not in busy][: len(todo)]:
                i = todo.pop(0)
                running[getattr(actor, method).remote(*items[i])] = (actor, i)
            (ref,), _ = ray.wait(list(running), num_returns=1)
            actor, i = running.pop(ref)
            try:
                results[i] = ray.get(ref)
            except Exception as e:  # noqa: BLE001  (an actor that died; anything else is re-raised)
                if not _dead(ray, e):
                    raise
                self.lost(actor, e)
                todo.insert(0, i)
        return results

    def lost(self, actor, error: BaseException) -> None:
        text = [line for line in str(error).strip().splitlines() if line.strip()]
        if "creation task" in str(error):  # not a crash: the worker's set-up failed (a missing package, an env it cannot make)
            raise WorkerSetupFailed(f"A Ray worker could not start: {text[-1].strip() if text else type(error).__name__}. Every Ray "
                                    'node needs gym-dream installed with the extras the job uses (e.g. pip install "gym-dream[box2d,ray]") '
                                    "and must be able to read the model.") from None
        self.actors.remove(actor)
        logger.warning(f"ray backend: a worker died ({type(error).__name__}); {len(self.actors)} left, its work runs again on them")
        if not self.actors:
            raise WorkersLost("Every Ray worker of this job died; what was finished is saved: run the same command again to "
                              "resume.") from error

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []


# -- collection ----------------------------------------------------------------------------------
class EnvWorker:
    """One real env, made as the local collector makes its own (``make_envs(cfg, prep)``, a one-env vector env), running
    one episode at a time (a Ray actor); ``seed_of(seed, key, stream)`` seeds episode ``key``'s env (stream 0) and policy
    (stream 1). Both are the local collector's own (:func:`trainers.data.collect.collect` hands them over)."""

    def __init__(self, cfg, prep, factory: Callable, make_envs: Callable, seed_of: Callable[[int, int, int], int]) -> None:
        self.cfg, self.factory, self.seed_of = cfg, factory, seed_of
        self.envs = make_envs(replace(cfg, workers=1), prep)
        self.obs = self.policy = None

    def run(self, key: int | None, steps: int) -> dict[str, Any]:
        """Start episode ``key`` (None: go on with the current one) and step it at most ``steps`` times; the steps taken,
        as the local collector records them, and whether the episode ended."""
        b: dict[str, Any] = {"obs": [], "actions": [], "rewards": [], "terminated": [], "truncated": []}
        if key is not None:
            self.policy = self.factory(self.envs.single_action_space, 1, self.seed_of(self.cfg.seed, key, 1))
            obs, _ = self.envs.reset(seed=[self.seed_of(self.cfg.seed, key, 0)])
            self.obs = np.array(obs)
            b["obs"].append(np.array(self.obs[0]))
        done = False
        for _ in range(steps):
            actions = np.stack([np.asarray(self.policy(self.obs[0:1]))[0]])
            obs, rewards, terminated, truncated, _ = self.envs.step(actions)
            self.obs = np.array(obs)
            b["actions"].append(np.asarray(actions[0]))
            b["rewards"].append(rewards[0])
            b["terminated"].append(terminated[0])
            b["truncated"].append(truncated[0])
            b["obs"].append(np.array(self.obs[0]))
            if terminated[0] or truncated[0]:
                done = True
                break
        return {**b, "done": done}


class _Slot:
    """What one collecting actor is doing: its episode's key, the steps it has sent back, its unspent grant."""

    def __init__(self, actor) -> None:
        self.actor, self.key, self.grant = actor, None, 0
        self.buffer: dict[str, list] = {}

    def steps(self) -> int:
        return len(self.buffer.get("actions", []))


def collect_on_ray(cfg, prep, factory: Callable, keys, sink, make_envs: Callable, seed_of: Callable[[int, int, int], int]) -> None:
    """The Ray backend of :func:`trainers.data.collect.collect`: ``cfg.workers`` actors (:class:`EnvWorker`, made with the
    collector's ``make_envs`` and ``seed_of``), episodes stored by ``sink`` the moment they end (see the module
    docstring)."""
    workers = Actors(EnvWorker, cfg.workers, cfg, prep, factory, make_envs, seed_of, address=cfg.ray_address)
    ray = workers.ray
    slots = {a: _Slot(a) for a in workers.actors}
    running: dict = {}  # call -> slot

    def budget() -> int | None:
        """Steps not yet stored, sent back or granted (None: no step target)."""
        if cfg.steps is None:
            return None
        return cfg.steps - sink.total_steps - sum(s.steps() + s.grant for s in slots.values())

    def may_start() -> bool:
        active = sum(s.key is not None for s in slots.values())
        return (cfg.episodes is None or sink.next_id + active < cfg.episodes) and (budget() is None or budget() > 0)

    try:
        while not sink.done():
            for slot in slots.values():
                if slot in running.values() or (slot.key is None and not may_start()):
                    continue
                left = budget()
                if left is not None and left <= 0:
                    continue  # a cut-off episode waits: a grant another one leaves unspent may let it go on
                start = slot.key is None
                if start:
                    slot.key, slot.buffer = keys(), {}
                slot.grant = CHUNK_STEPS if left is None else min(CHUNK_STEPS, left)
                running[slot.actor.run.remote(slot.key if start else None, slot.grant)] = slot
            if not running:
                break
            (ref,), _ = ray.wait(list(running), num_returns=1)
            slot = running.pop(ref)
            try:
                part = ray.get(ref)
            except Exception as e:  # noqa: BLE001  (an actor that died; anything else is re-raised)
                if not _dead(ray, e):
                    raise
                keys.give_back(slot.key)  # its episode is run again, from its start, by another actor
                del slots[slot.actor]
                workers.lost(slot.actor, e)
                continue
            slot.grant = 0
            done = part.pop("done")
            for k, v in part.items():
                slot.buffer.setdefault(k, []).extend(v)
            if done:
                sink.store(slot.key, episode_from(slot.buffer))
                slot.key, slot.buffer = None, {}
        # the step budget is spent: the unfinished episodes are kept, cut by the budget (truncated)
        for slot in slots.values():
            if slot.key is not None and slot.steps() and not sink.done():
                slot.buffer["truncated"][-1] = True
                sink.store(slot.key, episode_from(slot.buffer))
    finally:
        workers.close()


# -- real evaluation -----------------------------------------------------------------------------
class TaskPool:
    """``map(fn, *iterables)`` as Ray tasks, results in order, like ``ProcessPoolExecutor.map``: the ``pool`` of
    :func:`trainers.evaluation.rollout.real_episodes`. Ray re-runs a task whose worker died (``max_retries``)."""

    def __init__(self, address: str | None = None, num_cpus: float = 1, max_retries: int = 3) -> None:
        self.ray = init(address)
        self.num_cpus, self.max_retries = num_cpus, max_retries

    def map(self, fn: Callable, *iterables: Iterable) -> list:
        task = self.ray.remote(num_cpus=self.num_cpus, max_retries=self.max_retries)(fn)
        return self.ray.get([task.remote(*args) for args in zip(*iterables)])

    def __enter__(self) -> "TaskPool":
        return self

    def __exit__(self, *exc) -> None:
        return None


# -- CMA-ES --------------------------------------------------------------------------------------
class DreamShards:
    """One actor per shard of a CMA-ES population, each holding a ``shard(cfg)`` (:class:`trainers.agents.cmaes.DreamShard`,
    which :func:`trainers.agents.cmaes.train_cmaes` hands over)."""

    def __init__(self, cfg, shard: type) -> None:
        self.workers = Actors(shard, cfg.shards, cfg, address=cfg.ray_address)

    def returns(self, parts: Sequence[np.ndarray], seeds: Sequence[int]) -> list[np.ndarray]:
        """Shard j's returns (one per candidate of ``parts[j]``) in a dream reset with ``seeds[j]``."""
        return self.workers.map("returns", list(zip(parts, seeds)))

    def close(self) -> None:
        self.workers.close()
