"""The one batched dream rollout and the one seed-split parallel real-episode runner.

:func:`rollout` steps a batch of dreams until every one has ended its first episode (or the horizon),
adding each env's rewards while it is alive; it works on numpy arrays (a ``DreamVectorEnv``:
:func:`dream_rollout`) and on torch tensors (the CEM planner, which calls the model's batched API
directly). Evaluation, CMA-ES, the planner and the benchmarks all use it.

:func:`real_episodes` runs an agent on the real env seen through a model
(:class:`gym_dream.wrappers.DreamObservation`), one episode per seed, optionally split over worker
processes; each episode's result is the same whatever the split.

:func:`dream_episode_returns` and :func:`real_episode_returns` are an agent's returns over many episodes of each, what
evaluation, selection, the temperature calibration and the SB3 trainer's own dream evaluations read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch

import gym_dream
from trainers.infra.progress import progress


class Rollout(NamedTuple):
    """Per env: the undiscounted return of its first episode, its length, and where the model ended it."""

    returns: Any  # (N,) float64
    lengths: Any  # (N,) int64 steps taken while alive
    end_steps: Any  # (N,) int64 step (1-based) at which the termination head ended it, -1 if it did not
    end_rewards: Any  # (N,) float64 reward of that end step (0 where it did not end)


def rollout(act: Callable[[Any, int], Any], step: Callable[[Any], tuple], obs: Any, num: int, horizon: int,
            device: torch.device | str | None = None, stop_when_done: bool = True) -> Rollout:
    """Roll ``num`` dreams for at most ``horizon`` steps: ``actions = act(obs, t)``, then
    ``obs, reward, terminated, truncated = step(actions)``. Numpy arrays when ``device`` is None, else torch
    tensors on ``device``. ``stop_when_done`` stops once every env has ended (no more model calls: a caller
    that reuses its random generator afterwards and wants every rollout to draw the same amount passes False)."""
    if device is None:
        total, end_reward = np.zeros(num), np.zeros(num)
        lengths, end_step, alive = np.zeros(num, np.int64), np.full(num, -1, np.int64), np.ones(num, bool)
    else:
        total, end_reward = torch.zeros(num, dtype=torch.float64, device=device), torch.zeros(num, dtype=torch.float64, device=device)
        lengths, end_step = torch.zeros(num, dtype=torch.long, device=device), torch.full((num,), -1, dtype=torch.long, device=device)
        alive = torch.ones(num, dtype=torch.bool, device=device)
    for t in range(horizon):
        obs, reward, terminated, truncated = step(act(obs, t))[:4]
        total += reward * alive
        lengths += alive
        ended = alive & terminated
        end_step[ended] = t + 1
        end_reward = end_reward + reward * ended  # each env ends once: 0 + its end reward
        alive &= ~(terminated | truncated)
        if stop_when_done and not alive.any():
            break
    return Rollout(total, lengths, end_step, end_reward)


def agent_actions(agent) -> Callable[[np.ndarray, int], np.ndarray]:
    """``act`` for :func:`rollout` from an SB3-style agent (deterministic ``predict``)."""
    return lambda obs, t: agent.predict(obs, deterministic=True)[0]


def dream_rollout(venv, act: Callable[[np.ndarray, int], np.ndarray], seed: int | None, horizon: int | None = None) -> Rollout:
    """Reset ``venv`` (a ``DreamVectorEnv`` with autoreset disabled) with ``seed`` and :func:`rollout` its first
    episodes (``horizon``: default the env's limit, else 1000)."""
    horizon = horizon or venv.unwrapped.max_episode_steps or 1000
    obs, _ = venv.reset(seed=seed)
    return rollout(act, venv.step, obs, venv.num_envs, horizon)


def make_dream_vec(env_id: str, num_envs: int, model: Any = None, tau: float | None = None, device: str = "cpu", **kwargs):
    """``num_envs`` dreams of ``env_id`` as one ``DreamVectorEnv`` without autoreset (``kwargs`` that are None are dropped)."""
    extra = {k: v for k, v in {"model": model, **kwargs}.items() if v is not None}
    import gymnasium as gym

    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", tau=tau, device=device,
                        autoreset_mode="Disabled", **extra)


# -- real episodes -------------------------------------------------------------------------------
class Episode(NamedTuple):
    seed: int
    ret: float
    length: int
    terminated: bool
    last_reward: float
    watched: dict[str, Any]  # what a ``watch`` recorded (empty without one)


def _episodes_here(agents: Sequence, real_env_id: str, model: Any, seeds: Sequence[int], device: str, env_kwargs: dict | None,
                   desc: str, watch: Any = None, single_thread: bool = False) -> list[Episode]:
    from trainers.data.real_envs import make_real_env

    if single_thread:
        torch.set_num_threads(1)
    if env_kwargs is None and model is not None:  # the real env as the model's data was collected
        env_kwargs = (gym_dream.resolve_model(model, device=device).card.get("env") or {}).get("kwargs") or {}
    env = gym_dream.wrappers.DreamObservation(make_real_env(real_env_id, **(env_kwargs or {})), model, device=device)
    out = []
    bar = progress(total=len(seeds), desc=desc, unit="ep")
    for agent, seed in zip(agents, seeds):
        if hasattr(agent, "bind"):  # a planner plans from the wrapper's model state
            agent.bind(env)
        obs, _ = env.reset(seed=seed)
        if hasattr(agent, "begin_episode"):  # a stochastic agent restarts its noise: same seed, same episode
            agent.begin_episode(seed)
        if watch is not None:
            watch.start(env)
        ret, length, done = 0.0, 0, False
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, _ = env.step(action)
            ret, length, done = ret + float(reward), length + 1, terminated or truncated
            if watch is not None:
                watch.step(env)
        out.append(Episode(int(seed), float(ret), length, bool(terminated), float(reward), watch.end(env) if watch is not None else {}))
        bar.update(1)
    bar.close()
    env.close()
    return out


def real_episodes(agent, real_env_id: str, model: Any, seeds: Sequence[int], device: str = "cpu", env_kwargs: dict[str, Any] | None = None,
                  workers: int = 1, desc: str = "real", watch: Any = None, pool=None, backend: str = "local",
                  ray_address: str | None = None) -> list[Episode]:
    """One real episode per seed (in seed order), the agent seeing the env through ``model``.

    ``agent`` is one agent for every seed, or a list with one agent per seed (CMA-ES candidates). ``workers`` > 1
    splits the seeds into that many contiguous chunks, one process each (``pool``: a
    ``ProcessPoolExecutor`` to reuse); agents and ``watch`` must then be picklable and ``model`` a directory or
    name. ``env_kwargs`` go to the real env (default: the model card's). ``watch`` (optional) has
    ``start(env)``, ``step(env)`` and ``end(env) -> dict`` and records what it likes of each episode.
    ``backend="ray"`` runs the ``workers`` chunks as Ray tasks (:class:`trainers.infra.ray_backend.TaskPool`, on the cluster
    at ``ray_address``), with the same results.
    """
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be local or ray, got {backend!r}.")
    if backend == "ray" and pool is None:
        from trainers.infra.ray_backend import TaskPool

        pool = TaskPool(ray_address)
    seeds = [int(s) for s in seeds]
    agents = list(agent) if isinstance(agent, (list, tuple)) else [agent] * len(seeds)
    if len(agents) != len(seeds):
        raise ValueError(f"Got {len(agents)} agents for {len(seeds)} seeds; pass one agent, or one per seed.")
    workers = max(1, min(int(workers), len(seeds)))
    if workers == 1 and pool is None:
        return _episodes_here(agents, real_env_id, model, seeds, device, env_kwargs, desc, watch)
    if model is not None and not isinstance(model, (str, Path)):
        raise TypeError("With workers > 1 pass the model as a directory or name, not a loaded model.")
    chunks = [c for c in np.array_split(np.arange(len(seeds)), workers) if len(c)]
    args = [([agents[i] for i in c], real_env_id, None if model is None else str(model), [seeds[i] for i in c], device, env_kwargs,
             f"seeds {seeds[c[0]]}-{seeds[c[-1]]}", watch, True) for c in chunks]
    if pool is not None:
        return [e for part in pool.map(_episodes_here, *zip(*args)) for e in part]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(len(chunks), mp_context=mp.get_context("spawn")) as own:
        return [e for part in own.map(_episodes_here, *zip(*args)) for e in part]


# -- returns of many episodes: what scoring an agent reads ----------------------------------------
def dream_episode_returns(agent, dream_id: str, model: str | None, tau: float | tuple[float, float], episodes: int, seed: int = 0, device: str = "cpu", horizon: int | None = None,
                          termination: str | None = None, dream_kwargs: dict[str, Any] | None = None) -> np.ndarray:
    """Returns of ``episodes`` dream episodes, run as one batched DreamVectorEnv (``tau``: one temperature or a range
    ``(low, high)``, each episode drawing its own; ``horizon``: the episodes' length limit, default the dream's own;
    ``termination``: threshold | sample, default the model card's; ``dream_kwargs``: more of the dream's arguments, e.g.
    its ``uncertainty_penalty``)."""
    return dream_episodes(agent, dream_id, model, tau, episodes, seed, device, horizon, termination, dream_kwargs).returns


def dream_episodes(agent, dream_id: str, model: str | None, tau: float | tuple[float, float], episodes: int, seed: int = 0,
                   device: str = "cpu", horizon: int | None = None, termination: str | None = None,
                   dream_kwargs: dict[str, Any] | None = None) -> Rollout:
    """:func:`dream_episode_returns` with the episodes' lengths and ends (a :class:`Rollout`)."""
    venv = make_dream_vec(dream_id, episodes, model, tau, device, termination=termination, max_episode_steps=horizon,
                          **(dream_kwargs or {}))
    if hasattr(agent, "begin_episode"):  # a stochastic agent restarts its noise: same seed, same episodes
        agent.begin_episode(seed)
    out = dream_rollout(venv, agent_actions(agent), seed, horizon)
    venv.close()
    return out


def real_episode_returns(agent, real_env_id: str, model: str | None, episodes: int, seed: int = 0, device: str = "cpu",
                         desc: str = "real", workers: int = 1, env_kwargs: dict[str, Any] | None = None, backend: str = "local",
                         ray_address: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of ``episodes`` real episodes (seeds seed, seed+1, ...) seen through the model.

    ``workers`` > 1 splits the seeds over that many processes (the agent must be picklable, e.g. a
    :class:`~trainers.agents.controller.LinearController`; ``model`` a directory or name); same seeds, same results.
    An agent with a ``bind`` method (a planner, which plans from the wrapper's model state) is bound to
    the wrapper first. ``env_kwargs`` go to the real env (e.g. ``{"obs": "state"}`` for DMC). ``backend="ray"`` runs
    the seed chunks as Ray tasks (on the cluster at ``ray_address``), with the same results.
    """
    eps = real_episodes(agent, real_env_id, model, range(seed, seed + episodes), device, env_kwargs, workers, desc, backend=backend,
                        ray_address=ray_address)
    return np.array([e.ret for e in eps], np.float64), np.array([e.length for e in eps], np.int64)
