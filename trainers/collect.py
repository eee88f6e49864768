"""Collect real-env episodes into a resumable dataset folder (see :mod:`trainers.data`)."""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_to_dict
from gym_dream.wrappers import action_repeat_of
from trainers.data import Episode, count_episodes, read_meta, write_meta, write_shard
from trainers.envs import make_real_env, recipe
from trainers.policies import make_policy
from trainers.progress import progress


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
    """parallel real envs (AsyncVectorEnv when > 1)"""
    seed: int = 0
    """base seed; a resumed run derives fresh seeds from the episodes already stored"""
    shard_steps: int = 20_000
    """flush a shard when this many steps of finished episodes are buffered (bounds memory)"""
    max_episode_steps: int | None = None
    """override the env's time limit"""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """extra keyword arguments for gym.make"""


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
    make_real_env(cfg.env_id, **kwargs).close()  # fail early with a clear message if deps are missing
    fns = [lambda: _ModelInput(make_real_env(cfg.env_id, **kwargs), prep) for _ in range(cfg.workers)]
    if cfg.workers > 1:
        return gym.vector.AsyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=AutoresetMode.SAME_STEP)


def _done(cfg: CollectConfig, episodes: int, steps: int) -> bool:
    if cfg.episodes is not None and episodes >= cfg.episodes:
        return True
    return cfg.steps is not None and steps >= cfg.steps


def collect(cfg: CollectConfig, policy_factory: Callable | None = None) -> dict[str, Any]:
    """Roll out the policy until the dataset reaches its target; returns a summary.

    Completed episodes are flushed as shards when enough are buffered, at the end, and on an
    interruption (Ctrl-C), so what was collected is never lost; a re-run continues where it stopped.
    """
    if cfg.steps is None and cfg.episodes is None:
        raise ValueError("Give a target: steps or episodes.")
    if cfg.workers < 1:
        raise ValueError(f"workers must be >= 1, got {cfg.workers}.")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    r = recipe(cfg.env_id, cfg.env_kwargs)
    policy_name = cfg.policy or r.collect_policy
    prep: Preprocessing = r.preprocessing
    meta = read_meta(out)
    if meta is not None and (meta["env_id"] != cfg.env_id or meta["preprocessing"] != prep.to_dict()):
        raise ValueError(
            f"{out} already holds a dataset of {meta['env_id']} with preprocessing {meta['preprocessing']}; "
            f"collect {cfg.env_id} into another folder."
        )
    n_eps, n_steps = count_episodes(out)
    if _done(cfg, n_eps, n_steps):
        return {"episodes": n_eps, "steps": n_steps, "new_episodes": 0, "seconds": 0.0}

    envs = _make_vector_env(cfg, prep)
    probe = make_real_env(cfg.env_id, **cfg.env_kwargs)
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
            "action_space": space_to_dict(envs.single_action_space),
            "policies": [],
        }
    probe.close()
    if policy_name not in meta["policies"]:
        meta["policies"].append(policy_name)
    write_meta(out, meta)

    # a resumed run gets seeds no earlier run used, so it never repeats an episode
    run_seed = int(np.random.SeedSequence([cfg.seed, n_eps, n_steps]).generate_state(1)[0])
    policy_kwargs = cfg.policy_kwargs if cfg.policy_kwargs is not None else (r.collect_kwargs if policy_name == r.collect_policy else {})
    factory = policy_factory or (lambda space, n, seed: make_policy(policy_name, space, n, seed, **policy_kwargs))
    policy = factory(envs.single_action_space, cfg.workers, run_seed)
    obs, _ = envs.reset(seed=run_seed % (2**31))
    buffers: list[dict[str, list]] = [
        {"obs": [np.asarray(obs[i])], "actions": [], "rewards": [], "terminated": [], "truncated": []}
        for i in range(cfg.workers)
    ]
    finished: list[Episode] = []
    buffered_steps = 0
    next_id, total_steps, new_eps = n_eps, n_steps, 0
    start = time.time()
    target = cfg.steps if cfg.steps is not None else cfg.episodes
    bar = progress(total=target, initial=min(n_steps if cfg.steps is not None else n_eps, target), desc=f"collect {cfg.env_id}", unit="step" if cfg.steps is not None else "ep")

    # shards are compressed and written by a background thread (zlib releases the GIL), so the
    # envs keep stepping meanwhile; at most one write is pending, which bounds memory
    writer = ThreadPoolExecutor(1, thread_name_prefix="shard-writer")
    pending: list[Future] = []

    def flush() -> None:
        nonlocal finished, buffered_steps, next_id
        if finished:
            for f in pending:
                f.result()
            pending[:] = [writer.submit(write_shard, out, next_id, finished)]
            next_id += len(finished)
            finished, buffered_steps = [], 0

    try:
        while not _done(cfg, next_id + len(finished), total_steps):
            actions = policy(obs)
            obs, rewards, terminated, truncated, info = envs.step(actions)
            done = terminated | truncated
            frames = obs  # model input already (preprocessed in the env processes)
            for i in range(cfg.workers):
                b = buffers[i]
                b["actions"].append(np.asarray(actions[i]))
                b["rewards"].append(rewards[i])
                b["terminated"].append(terminated[i])
                b["truncated"].append(truncated[i])
                if done[i]:
                    b["obs"].append(np.asarray(info["final_obs"][i]))
                    ep = Episode(*(np.stack(b[k]) for k in ("obs", "actions", "rewards", "terminated", "truncated")))
                    finished.append(ep)
                    buffered_steps += len(ep)
                    total_steps += len(ep)
                    new_eps += 1
                    bar.update(len(ep) if cfg.steps is not None else 1)
                    buffers[i] = {"obs": [frames[i]], "actions": [], "rewards": [], "terminated": [], "truncated": []}
                    policy.reset(i)
                else:
                    b["obs"].append(frames[i])
            inflight = sum(len(b["actions"]) for b in buffers)
            if cfg.steps is not None and total_steps + inflight >= cfg.steps:
                # the step budget is spent: keep the unfinished episodes, cut by the budget (truncated)
                for b in buffers:
                    if b["actions"]:
                        b["truncated"][-1] = True
                        ep = Episode(*(np.stack(b[k]) for k in ("obs", "actions", "rewards", "terminated", "truncated")))
                        finished.append(ep)
                        total_steps += len(ep)
                        new_eps += 1
                        bar.update(len(ep))
                break
            if buffered_steps >= cfg.shard_steps:
                flush()
    finally:
        flush()
        writer.shutdown(wait=True)  # every buffered episode reaches disk, also on Ctrl-C
        for f in pending:
            f.result()
        bar.close()
        envs.close()
    n_eps, n_steps = count_episodes(out)
    return {"episodes": n_eps, "steps": n_steps, "new_episodes": new_eps, "seconds": time.time() - start}
