"""Collect real-env episodes into a resumable dataset folder (see :mod:`trainers.data.dataset`; how finished episodes are
stored while the envs run: :mod:`trainers.data.episode_store`)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_to_dict
from gym_dream.wrappers import action_repeat_of
from trainers.data.dataset import count_episodes, dataset_index, read_meta, write_meta
from trainers.data.real_envs import make_real_env, recipe
from trainers.data.episode_store import EpisodeSink, compact_episode_files, episode_from, lock_dataset, set_aside_torn_episode_files
from trainers.data.policies import make_policy
from trainers.infra.progress import progress


@dataclass
class CollectConfig:
    env_id: str = "CartPole-v1"
    """the real Gymnasium env id"""
    out: str = "data/cartpole"
    """dataset folder (created; re-running resumes and adds episodes up to the target)"""
    steps: int | None = 10_000
    """target total real steps in the dataset, never exceeded: episodes still running when the budget is
    spent are stored cut short (truncated) (None: use --episodes)"""
    episodes: int | None = None
    """target total episodes in the dataset"""
    policy: str | None = None
    """collecting policy: random | sticky | brownian | ou | road_noise | controller (default: the env's recipe, with its settings)"""
    policy_kwargs: dict[str, Any] | None = None
    """settings of the collecting policy (default: the recipe's, for the recipe's own policy), e.g.
    ``{"controller": "runs/cmaes/best", "sigma": 0.1}`` for the controller policy"""
    workers: int = 2
    """parallel real envs (AsyncVectorEnv when > 1; one Ray actor each with --backend ray)"""
    seed: int = 0
    """base seed: episode k (counted over the whole dataset) has its env and policy seeded from (seed, k) only, so a
    resumed run repeats no episode and re-runs exactly those a kill cut off"""
    shard_steps: int = 20_000
    """compact finished episodes into a compressed shard once this many steps of them are stored (each episode
    is on disk the moment it ends, as its own file, whatever this is)"""
    max_episode_steps: int | None = None
    """override the env's time limit"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra keyword arguments for gym.make"""
    minari: str | None = None
    """also write the dataset as this local Minari dataset id when collection ends (e.g. "cartpole/random-v0"; needs
    gym-dream[minari]); on a dataset already at its target this converts the shards. Re-running rewrites it"""
    backend: str = "local"
    """where the real envs run: local (processes on this machine) | ray (one Ray actor per worker, on a cluster:
    pip install "gym-dream[ray]"). Same dataset either way: episode k seeded from (seed, k), written by this process"""
    ray_address: str | None = None
    """the Ray cluster of --backend ray: auto, host:6379 or ray://host:10001 (default: $RAY_ADDRESS, else a Ray on this machine)"""


class _ModelInput(gym.ObservationWrapper):
    """Applies the recipe's preprocessing inside the env's own process, so only model-input
    observations (64x64 frames, not 240x320 screens) cross to the collector, and many workers
    resize in parallel instead of one process resizing for all."""

    def __init__(self, env: gym.Env, prep: Preprocessing):
        super().__init__(env)
        import torch

        torch.set_num_threads(1)  # one env per process: no thread oversubscription
        self.prep = prep
        sample = prep(env.observation_space.sample())
        if prep.kind == "image":
            self.observation_space = gym.spaces.Box(0, 255, sample.shape, np.uint8)
        else:
            self.observation_space = gym.spaces.Box(-np.inf, np.inf, sample.shape, np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        return self.prep(observation)


def _make_vector_env(cfg: CollectConfig, prep: Preprocessing) -> gym.vector.VectorEnv:
    kwargs = dict(cfg.env_kwargs)
    if cfg.max_episode_steps is not None:
        kwargs["max_episode_steps"] = cfg.max_episode_steps
    fns = [lambda: _ModelInput(make_real_env(cfg.env_id, **kwargs), prep) for _ in range(cfg.workers)]
    # episodes are restarted by the collector, each with the seed of its key (AutoresetMode.DISABLED)
    if cfg.workers > 1:
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.DISABLED)


def _done(cfg: CollectConfig, episodes: int, steps: int) -> bool:
    if cfg.episodes is not None and episodes >= cfg.episodes:
        return True
    return cfg.steps is not None and steps >= cfg.steps


def _positive_int(value: Any, flag: str, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{flag} must be an integer >= 1{' (or none)' if allow_none else ''}, got {value!r}.")


def check_config(cfg: CollectConfig) -> None:
    """Refuse a configuration that could not collect anything, before any folder is made."""
    if cfg.steps is None and cfg.episodes is None:
        raise ValueError("Give a target: --steps N or --episodes N.")
    _positive_int(cfg.steps, "--steps", allow_none=True)
    _positive_int(cfg.episodes, "--episodes", allow_none=True)
    _positive_int(cfg.workers, "--workers")
    _positive_int(cfg.shard_steps, "--shard-steps")
    _positive_int(cfg.max_episode_steps, "--max-episode-steps", allow_none=True)
    if cfg.backend not in ("local", "ray"):
        raise ValueError(f"--backend must be local or ray, got {cfg.backend!r}.")
    if not isinstance(cfg.env_kwargs, dict):
        raise TypeError(f"--env-kwargs must be a JSON object, got {cfg.env_kwargs!r}.")
    if not isinstance(cfg.env_id, str) or not cfg.env_id:
        raise ValueError(f"--env-id must be a real Gymnasium env id such as CartPole-v1, got {cfg.env_id!r}.")
    spec = gym.registry.get(cfg.env_id)
    entry = str(getattr(spec, "entry_point", "") or "")
    if cfg.env_id.startswith("Dream-") or entry.startswith("gym_dream."):
        raise ValueError(f"{cfg.env_id} is a dream (a world model's env), not a real env: collect stores real data. "
                         f"Pass the real env id, e.g. the one in the model card's env.id.")
    if cfg.minari is not None:  # checked now, not after the whole collection ran
        from trainers.data.minari import _check_id, import_minari

        if not isinstance(cfg.minari, str) or not cfg.minari:
            raise ValueError(f"--minari must be a Minari dataset id such as 'gym-dream/cartpole-random-v0', got {cfg.minari!r}.")
        import_minari()  # the extra is missing: say so before collecting
        _check_id(cfg.minari)


def _make_probe(cfg: CollectConfig) -> gym.Env:
    """The real env once, to fail early (unknown id, missing extra) and read its spaces."""
    try:
        return make_real_env(cfg.env_id, **cfg.env_kwargs)
    except TypeError as e:
        if not cfg.env_kwargs:
            raise
        raise ValueError(f"--env-kwargs {json.dumps(cfg.env_kwargs)} are not arguments {cfg.env_id} takes ({e}). "
                         "Drop the keys it does not take, or fix their spelling.") from None
    except gym.error.Error as e:
        if isinstance(e, gym.error.DependencyNotInstalled) or type(e).__module__.startswith("gym_dream"):
            raise
        raise ValueError(f"Cannot make the real env {cfg.env_id!r}: {e} "
                         "List the known ids with `python -c \"import gymnasium; gymnasium.pprint_registry()\"`.") from None


def episode_seed(seed: int, key: int, stream: int) -> int:
    """The seed of episode ``key``'s real env (stream 0) or its policy (stream 1): a function of the
    base seed and the key only, so an episode is the same whether or not the run was interrupted."""
    return int(np.random.SeedSequence([int(seed), int(key), int(stream)]).generate_state(1)[0]) % (2**31)


class _Keys:
    """Keys for new episodes: first those a killed run started but never finished (below the highest
    stored key), then fresh ones."""

    def __init__(self, stored: set[int]):
        top = max(stored) + 1 if stored else 0
        self.missing = sorted(set(range(top)) - stored)
        self.next = top

    def __call__(self) -> int:
        if self.missing:
            return self.missing.pop(0)
        self.next += 1
        return self.next - 1

    def give_back(self, key: int) -> None:
        """An episode that was started but will not be stored (its worker died): the next key handed out."""
        self.missing = sorted({*self.missing, int(key)})


def collect(cfg: CollectConfig, policy_factory: Callable | None = None) -> dict[str, Any]:
    """Roll out the policy until the dataset reaches its target; returns a summary.

    Every episode is written to disk the moment it ends (its own file, compacted into shards of
    ``shard_steps``), so a kill -9 at any moment loses only the episodes still running; a re-run
    continues where it stopped, first re-running the episodes that were cut off. Episode ``key``
    k's env and policy are seeded from ``(seed, k)`` only (each env slot gets its own policy,
    made afresh for each episode), so with a deterministic env the stored episodes are the same
    whether the run was interrupted or not. With ``steps``, the dataset never holds more than
    ``steps`` steps: episodes still running when the budget is spent are stored cut short.
    """
    check_config(cfg)
    out = Path(cfg.out)
    held = [lock_dataset(out)] if out.is_dir() else []  # a new dataset is held from its first write
    try:
        summary = _collect(cfg, policy_factory, out, held)
        if cfg.minari:
            from trainers.data.minari import shards_to_minari

            summary["minari"] = str(shards_to_minari(out, cfg.minari).spec.data_path)
        return summary
    finally:
        for lock in held:
            lock.close()


def _collect(cfg: CollectConfig, policy_factory: Callable | None, out: Path, held: list) -> dict[str, Any]:
    r = recipe(cfg.env_id, cfg.env_kwargs)
    policy_name = cfg.policy or r.collect_policy
    prep: Preprocessing = r.preprocessing
    meta = read_meta(out) if out.is_dir() else None
    if meta is not None and (meta["env_id"] != cfg.env_id or meta["preprocessing"] != prep.to_dict()):
        raise ValueError(
            f"{out} already holds a dataset of {meta['env_id']} with preprocessing {meta['preprocessing']}; "
            f"collect {cfg.env_id} into another folder."
        )
    if out.is_dir():
        for tmp in [*out.glob(".episode-*.npz.*.tmp"), *out.glob(".shard-*.npz.*.tmp")]:
            tmp.unlink(missing_ok=True)  # a write a kill interrupted (atomic_write_bytes' own temp files, never user data)
        set_aside_torn_episode_files(out)
        files, stale = dataset_index(out)
        for p in stale:  # leftovers of a compaction a kill interrupted: their episodes are in a shard
            p.unlink(missing_ok=True)
        leftovers = [f.path for f in files if f.path.name.startswith("episode-")]
        compact_episode_files(out, leftovers)  # episodes a killed run stored one by one
    n_eps, n_steps = count_episodes(out) if out.is_dir() else (0, 0)
    if _done(cfg, n_eps, n_steps):
        return {"episodes": n_eps, "steps": n_steps, "new_episodes": 0, "seconds": 0.0}

    probe = _make_probe(cfg)  # before any folder is made: an unknown id leaves nothing behind
    try:
        repeat = action_repeat_of(probe)
        if meta is None:
            single = probe.observation_space  # the real env's own space (the model card records it)
            if prep.key is not None:
                single = single[prep.key]
            meta = {
                "env_id": cfg.env_id,
                "env_kwargs": cfg.env_kwargs,
                "max_episode_steps": cfg.max_episode_steps or (probe.spec.max_episode_steps if probe.spec else None),
                "preprocessing": prep.to_dict(),
                "action_repeat": repeat,
                "observation_space": space_to_dict(single),
                "action_space": space_to_dict(probe.action_space),
                "policies": [],
            }
        action_space = probe.action_space
    finally:
        probe.close()
    policy_kwargs = cfg.policy_kwargs if cfg.policy_kwargs is not None else (r.collect_kwargs if policy_name == r.collect_policy else {})
    factory = policy_factory or (lambda space, n, seed: make_policy(policy_name, space, n, seed, **policy_kwargs))
    factory(action_space, 1, 0)  # a policy that cannot be made (bad settings) fails before any folder is made
    out.mkdir(parents=True, exist_ok=True)
    if not held:
        held.append(lock_dataset(out))
    if policy_name not in meta["policies"]:
        meta["policies"].append(policy_name)
    write_meta(out, meta)

    files, _ = dataset_index(out)
    keys = _Keys({int(k) for f in files for k in f.keys})
    target = cfg.steps if cfg.steps is not None else cfg.episodes
    bar = progress(total=target, initial=min(n_steps if cfg.steps is not None else n_eps, target), desc=f"collect {cfg.env_id}", unit="step" if cfg.steps is not None else "ep")
    sink = EpisodeSink(out, n_eps, n_steps, bar, done=lambda episodes, steps: _done(cfg, episodes, steps),
                       shard_steps=cfg.shard_steps, count_steps=cfg.steps is not None)
    start = time.time()
    try:
        if cfg.backend == "ray":
            from trainers.infra.ray_backend import collect_on_ray

            collect_on_ray(cfg, prep, factory, keys, sink, make_envs=_make_vector_env, seed_of=episode_seed)
        else:
            _collect_locally(cfg, prep, factory, keys, sink)
    finally:
        sink.close()  # every finished episode reaches a shard, also on Ctrl-C
    n_eps, n_steps = count_episodes(out)
    return {"episodes": n_eps, "steps": n_steps, "new_episodes": sink.new_eps, "seconds": time.time() - start}


def _collect_locally(cfg: CollectConfig, prep: Preprocessing, factory: Callable, keys: _Keys, sink: EpisodeSink) -> None:
    """The local backend: ``cfg.workers`` real envs in lockstep (one process each when > 1)."""
    envs = _make_vector_env(cfg, prep)
    slot_keys = [keys() for _ in range(cfg.workers)]
    policies = [factory(envs.single_action_space, 1, episode_seed(cfg.seed, k, 1)) for k in slot_keys]
    obs, _ = envs.reset(seed=[episode_seed(cfg.seed, k, 0) for k in slot_keys])
    obs = np.array(obs)

    def fresh(i: int) -> dict[str, list]:
        return {"obs": [np.array(obs[i])], "actions": [], "rewards": [], "terminated": [], "truncated": []}

    buffers = [fresh(i) for i in range(cfg.workers)]
    try:
        while not sink.done():
            inflight = sum(len(b["actions"]) for b in buffers)
            # the step budget: with fewer steps left than envs, only the first envs' steps are kept
            keep = cfg.workers if cfg.steps is None else min(cfg.workers, cfg.steps - sink.total_steps - inflight)
            actions = np.stack([np.asarray(policies[i](obs[i : i + 1]))[0] for i in range(cfg.workers)])
            obs, rewards, terminated, truncated, _ = envs.step(actions)
            obs = np.array(obs)
            done = np.asarray(terminated) | np.asarray(truncated)
            restart = np.zeros(cfg.workers, dtype=bool)
            for i in range(keep):
                b = buffers[i]
                b["actions"].append(np.asarray(actions[i]))
                b["rewards"].append(rewards[i])
                b["terminated"].append(terminated[i])
                b["truncated"].append(truncated[i])
                b["obs"].append(np.array(obs[i]))
                if done[i]:
                    sink.store(slot_keys[i], episode_from(b))
                    buffers[i] = {"obs": [], "actions": [], "rewards": [], "terminated": [], "truncated": []}  # refilled on restart
                    restart[i] = True
            if cfg.steps is not None and sink.total_steps + sum(len(b["actions"]) for b in buffers) >= cfg.steps:
                # the step budget is spent: keep the unfinished episodes, cut by the budget (truncated)
                for i, b in enumerate(buffers):
                    if b["actions"]:
                        b["truncated"][-1] = True
                        sink.store(slot_keys[i], episode_from(b))
                break
            if sink.done():
                break
            if restart.any():
                for i in np.flatnonzero(restart):
                    slot_keys[i] = keys()
                    policies[i] = factory(envs.single_action_space, 1, episode_seed(cfg.seed, slot_keys[i], 1))
                seeds = [episode_seed(cfg.seed, slot_keys[i], 0) for i in range(cfg.workers)]
                new_obs, _ = envs.reset(seed=seeds, options={"reset_mask": restart})
                new_obs = np.array(new_obs)
                obs[restart] = new_obs[restart]
                for i in np.flatnonzero(restart):
                    buffers[i] = fresh(i)
    finally:
        envs.close()
