"""Stage ``train``: CMA-ES in the dream at every tau of the sweep, once per seed; stage ``sb3``: the recipe's
stable-baselines3 agents in the dream at the main tau, each scored like the controllers."""

from __future__ import annotations

from typing import Any

from gym_dream.envs.core import tau_name
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.evaluation.evaluate import evaluate
from trainers.agents.stored_agent import load_agent
from trainers.experiment.recipe import Recipe
from trainers.experiment.workdir import Tau, WorkDir, write_json


def train_one(recipe: Recipe, work: WorkDir, tau: Tau, seed: int, device: str = "cpu", max_seconds: float | None = None) -> dict[str, Any]:
    return train_cmaes(CMAESConfig(env_id=recipe.dream_id, model=str(work.model), out=str(work.cmaes_run(tau, seed)), tau=tau,
                                   device=device, max_seconds=max_seconds, seed=seed, **recipe.cmaes))


def train_controllers(recipe: Recipe, work: WorkDir, device: str = "cpu", jobs: int = 1, max_seconds: float | None = None) -> None:
    """CMA-ES at every tau of the sweep, once per seed of ``cmaes_seeds``; ``jobs`` > 1 trains several runs at once in
    separate processes (on a GPU they share the device: each dream step is latency-bound, so they overlap well)."""
    runs = [(tau, seed) for tau in recipe.taus for seed in recipe.cmaes_seeds]
    if jobs <= 1:
        for tau, seed in runs:
            train_one(recipe, work, tau, seed, device, max_seconds)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    n = len(runs)
    with ProcessPoolExecutor(min(jobs, n), mp_context=mp.get_context("spawn")) as pool:
        results = pool.map(train_one, [recipe] * n, [work] * n, [t for t, _ in runs], [s for _, s in runs], [device] * n,
                           [max_seconds] * n)
        for (tau, seed), r in zip(runs, results):
            print(f"tau {tau_name(tau)}, seed {seed}: {r['generations']} generations, best dream fitness {r['best_fitness']:.1f}", flush=True)


def train_sb3_agents(recipe: Recipe, work: WorkDir, workers: int = 2, device: str = "cpu") -> None:
    """Each SB3 agent of the recipe, trained only in the dream at ``main_tau``, scored on the sweep's real episodes."""
    from trainers.agents.sb3 import SB3Config, train_sb3

    model, tau = str(work.model), recipe.main_tau
    for algo, kwargs in recipe.sb3.items():
        out = work.sb3_run(algo, tau)
        # resumes a run stopped part-way, returns at once for a finished one
        train_sb3(SB3Config(algo=algo, env_id=recipe.dream_id, model=model, out=str(out), tau=tau, device=device, **kwargs))
        path = work.sb3_row(algo, tau)
        if not path.is_file():
            agent = load_agent(out / "best")  # the best in the dream, stored as data
            row = evaluate(agent, recipe.dream_id, model, taus=(tau,), episodes=recipe.sweep_episodes, dream_episodes=100,
                           name=f"{algo.upper()} ({kwargs.get('timesteps')} dream steps), trained at tau={tau_name(tau)}", workers=workers)
            write_json(path, row)
            print(f"{algo} tau {tau_name(tau)}: dream {row['dream'][tau_name(tau)]['mean']:.1f}, real {row['real']['mean']:.1f} ± {row['real']['std']:.1f}")
