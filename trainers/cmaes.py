"""Train a linear controller with CMA-ES (pycma) entirely inside a dream.

Each generation evaluates the whole population x rollouts as ONE batched ``DreamVectorEnv``
(``popsize * rollouts`` envs), so a generation is a few hundred batched model steps.
"""

from __future__ import annotations

import json
import pickle
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import gym_dream  # noqa: F401  (registers the Dream-* ids)
from gym_dream.checkpoint import atomic_write_bytes
from trainers.controller import LinearController
from trainers.progress import progress


@dataclass
class CMAESConfig:
    env_id: str = "Dream-CartPole-v0"
    """the Dream-* id to train in"""
    model: str | None = None
    """model directory or name (default: the id's default model)"""
    out: str = "runs/cmaes-cartpole"
    """run folder: controller (best and mean), per-generation checkpoint, log"""
    tau: float = 1.0
    """dream temperature"""
    generations: int = 40
    """CMA-ES generations"""
    popsize: int = 64
    """candidates per generation"""
    rollouts: int = 16
    """dream episodes per candidate (averaged)"""
    sigma0: float = 0.1
    """initial step size"""
    max_episode_steps: int | None = None
    """dream horizon (default: the id's)"""
    seed: int = 0
    """seed of CMA-ES and of the dreams"""
    device: str = "cpu"
    """torch device of the dream"""
    termination: str | None = None
    """dream episode ends: threshold | sample (default: the model card's choice)"""
    max_seconds: float | None = None
    """stop after the generation that passes this wall time (checkpointed: re-running continues)"""


def dream_returns(venv, params: np.ndarray, feature_dim: int, horizon: int) -> np.ndarray:
    """Undiscounted return of each env's first episode; env i acts with ``params[i]``."""
    obs, _ = venv.reset(seed=int(venv.np_random.integers(2**31)))
    n = venv.num_envs
    total = np.zeros(n, np.float64)
    alive = np.ones(n, bool)
    for _ in range(horizon):
        actions = LinearController.batch_actions(params, obs, venv.single_action_space, feature_dim)
        obs, reward, terminated, truncated, _ = venv.step(actions)
        total += reward * alive
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    return total


def make_dream_vec(env_id: str, num_envs: int, model: str | None, tau: float, device: str, max_episode_steps: int | None = None, **kwargs):
    extra = {"model": model} if model is not None else {}
    if max_episode_steps is not None:
        extra["max_episode_steps"] = max_episode_steps
    return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", tau=tau, device=device,
                        autoreset_mode="Disabled", **extra, **kwargs)


def train_cmaes(cfg: CMAESConfig) -> dict[str, Any]:
    import cma

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    extra = {"termination": cfg.termination} if cfg.termination else {}
    venv = make_dream_vec(cfg.env_id, cfg.popsize * cfg.rollouts, cfg.model, cfg.tau, cfg.device, cfg.max_episode_steps, **extra)
    horizon = venv.unwrapped.max_episode_steps or 1000
    feature_dim = venv.single_observation_space.shape[0]
    template = LinearController(feature_dim, venv.single_action_space)
    state_path, log_path = out / "cmaes_state.pkl", out / "log.jsonl"
    # pycma's own serialisation of the optimiser (a local, self-written resume file; the controllers
    # themselves are safetensors + JSON)
    if state_path.is_file():
        es, gen, best = pickle.loads(state_path.read_bytes())
        print(f"resuming CMA-ES after generation {gen}")
    else:
        es = cma.CMAEvolutionStrategy(np.zeros(template.num_params), cfg.sigma0, {"popsize": cfg.popsize, "seed": cfg.seed + 1, "verbose": -9})
        gen, best = 0, {"fitness": -np.inf, "params": None, "generation": 0}
    venv.reset(seed=cfg.seed * 100_003 + gen)
    start = time.time()
    # the log's "seconds" is the training time summed over resumed invocations
    before = json.loads(log_path.read_text().splitlines()[-1])["seconds"] if gen and log_path.is_file() and log_path.read_text().strip() else 0.0
    bar = progress(total=cfg.generations, initial=gen, desc=f"CMA-ES {cfg.env_id}", unit="gen")
    first_gen = gen
    while gen < cfg.generations:
        # at least one generation per invocation, so a resumed run always makes progress
        if cfg.max_seconds is not None and gen > first_gen and time.time() - start > cfg.max_seconds:
            print(f"CMA-ES stopped at generation {gen} of {cfg.generations} after max_seconds={cfg.max_seconds}; re-run to continue")
            break
        asked = es.ask()
        candidates = np.asarray(asked, np.float32)
        params = np.repeat(candidates, cfg.rollouts, axis=0)
        returns = dream_returns(venv, params, feature_dim, horizon).reshape(cfg.popsize, cfg.rollouts)
        fitness = returns.mean(1)
        es.tell(asked, list(-fitness))
        gen += 1
        i = int(np.argmax(fitness))
        if fitness[i] > best["fitness"]:
            best = {"fitness": float(fitness[i]), "params": candidates[i].copy(), "generation": gen}
        entry = {"generation": gen, "mean_fitness": float(fitness.mean()), "max_fitness": float(fitness.max()),
                 "best_fitness": best["fitness"], "sigma": float(es.sigma), "seconds": round(before + time.time() - start, 2)}
        with open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        meta = {"env_id": cfg.env_id, "model": cfg.model, "tau": cfg.tau, "config": asdict(cfg), "generation": gen}
        LinearController(feature_dim, venv.single_action_space, es.mean).save(out / "mean", {**meta, "kind": "cma-mean"})
        LinearController(feature_dim, venv.single_action_space, best["params"]).save(out / "best", {**meta, "kind": "best-candidate", "dream_fitness": best["fitness"]})
        atomic_write_bytes(state_path, pickle.dumps((es, gen, best)))
        bar.update(1)
        bar.set_postfix(mean=f"{entry['mean_fitness']:.1f}", best=f"{best['fitness']:.1f}")
    bar.close()
    venv.close()
    return {"generations": gen, "best_fitness": best["fitness"], "out": str(out), "seconds": time.time() - start}


def _real_candidate(params: np.ndarray, feature_dim: int, real_env_id: str, model: str, seed: int) -> tuple[float, int]:
    import torch

    from trainers.evaluate import real_episode_returns

    torch.set_num_threads(1)
    spec_space = gym_dream.resolve_model(model).action_space
    r, n = real_episode_returns(LinearController(feature_dim, spec_space, params), real_env_id, model, 1, seed=seed, desc="candidate")
    return float(r[0]), int(n[0])


def train_cmaes_real(real_env_id: str, model: str, out: str | Path, budget_steps: int, popsize: int = 16, sigma0: float = 0.1,
                     seed: int = 0, workers: int = 2) -> dict[str, Any]:
    """The comparison row: the same linear controller on the same model features, trained with CMA-ES
    on the REAL env (one real episode per candidate) until ``budget_steps`` real steps are spent.
    Resumable like :func:`train_cmaes`; the log records the real steps spent per generation."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    import cma

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    m = gym_dream.resolve_model(model)
    feature_dim, space = m.feature_dim, m.action_space
    template = LinearController(feature_dim, space)
    state_path, log_path = out / "cmaes_state.pkl", out / "log.jsonl"
    if state_path.is_file():
        es, gen, best, spent = pickle.loads(state_path.read_bytes())
        print(f"resuming real-env CMA-ES after generation {gen} ({spent} real steps)")
    else:
        es = cma.CMAEvolutionStrategy(np.zeros(template.num_params), sigma0, {"popsize": popsize, "seed": seed + 1, "verbose": -9})
        gen, best, spent = 0, {"fitness": -np.inf, "params": None, "generation": 0}, 0
    start = time.time()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        while spent < budget_steps:
            asked = es.ask()
            seeds = [seed * 1_000_003 + gen * popsize + i for i in range(len(asked))]
            results = list(pool.map(_real_candidate, [np.asarray(x, np.float32) for x in asked], [feature_dim] * len(asked),
                                    [real_env_id] * len(asked), [str(model)] * len(asked), seeds))
            fitness = np.array([r for r, _ in results])
            spent += sum(n for _, n in results)
            es.tell(asked, list(-fitness))
            gen += 1
            i = int(np.argmax(fitness))
            if fitness[i] > best["fitness"]:
                best = {"fitness": float(fitness[i]), "params": np.asarray(asked[i], np.float32), "generation": gen}
            entry = {"generation": gen, "real_steps": spent, "mean_fitness": float(fitness.mean()), "max_fitness": float(fitness.max()),
                     "best_fitness": best["fitness"], "seconds": round(time.time() - start, 1)}
            with open(log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")
            meta = {"real_env_id": real_env_id, "model": str(model), "generation": gen, "real_steps": spent}
            LinearController(feature_dim, space, es.mean).save(out / "mean", {**meta, "kind": "cma-mean"})
            atomic_write_bytes(state_path, pickle.dumps((es, gen, best, spent)))
            print(f"real CMA-ES generation {gen}: mean {entry['mean_fitness']:.1f}, max {entry['max_fitness']:.1f}, {spent} real steps", flush=True)
    return {"generations": gen, "real_steps": spent, "best_fitness": best["fitness"], "out": str(out)}
