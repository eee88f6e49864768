"""Stage ``evaluate``: each tau's controller, chosen in the dream alone, scored in the dream and on the real env
(plus the noise row and the random policy); stage ``real_baseline``: the controller trained on the REAL env."""

from __future__ import annotations

import logging
import time
from typing import Any

import gymnasium as gym

from gym_dream.checkpoint import read_card
from gym_dream.envs.core import tau_name
from trainers.agents.controller import LinearController
from trainers.evaluation.evaluate import RandomAgent, evaluate, stats
from trainers.evaluation.rollout import dream_episode_returns, real_episode_returns
from trainers.experiment.recipe import Recipe
from trainers.experiment.workdir import CONTROLLER_KINDS, Controller, Tau, WorkDir, write_json

logger = logging.getLogger(__name__)

#: the dream episodes that choose among a tau's controllers: fresh seeds no training run used
SELECTION_SEED = 2_000_000


def dream_scores(recipe: Recipe, work: WorkDir, tau: Tau, episodes: int = 100) -> dict[Controller, float]:
    """Mean return over fresh dream episodes (the same seeds for all) of every controller trained at ``tau``: 'best'
    (the best candidate seen, whose score is a lucky maximum over noisy dream rollouts) and 'mean' (CMA-ES's mean) of
    each seed's run."""
    scores = {}
    for seed in recipe.cmaes_seeds:
        for kind in CONTROLLER_KINDS:
            c = Controller(tau, seed, kind)
            if (work.controller(c) / "controller.json").is_file():
                agent = LinearController.load(work.controller(c))
                scores[c] = float(dream_episode_returns(agent, recipe.dream_id, str(work.model), tau, episodes, seed=SELECTION_SEED).mean())
    return scores


def pick_controller(recipe: Recipe, work: WorkDir, tau: Tau, episodes: int = 100) -> tuple[Controller, dict[Controller, float]]:
    """The controller trained at ``tau`` that scores highest over fresh dream episodes, over every seed's run and both
    of its outputs: chosen in the dream alone. Returns it and every candidate's dream score."""
    scores = dream_scores(recipe, work, tau, episodes)
    if not scores:
        raise SystemExit(f"No CMA-ES controller trained at tau {tau_name(tau)} in {work.root}: run the train stage first.")
    return max(scores, key=scores.get), scores


def scores_record(scores: dict[Controller, float]) -> list[dict[str, Any]]:
    """Dream scores as JSON rows: [{tau, seed, kind, dream}, ...]."""
    return [{**c.to_dict(), "dream": s} for c, s in scores.items()]


def with_noise(recipe: Recipe, agent: LinearController):
    """The agent run with the collection rounds' OU action noise (the recipe's ``noise_row``)."""
    from trainers.data.noise import WithActionNoise

    return WithActionNoise(agent, agent.action_space, recipe.noise_row["sigma"], recipe.noise_row.get("theta", 0.15))


def _summary(name: str, row: dict[str, Any], tau: Tau) -> str:
    return f"{name}: dream {row['dream'][tau_name(tau)]['mean']:.1f}, real {row['real']['mean']:.1f} ± {row['real']['std']:.1f}"


def evaluate_agents(recipe: Recipe, work: WorkDir, workers: int = 2) -> None:
    model = str(work.model)
    runs = f", the best in the dream of {len(recipe.cmaes_seeds)} seeds" if len(recipe.cmaes_seeds) > 1 else ""
    for tau in recipe.taus:
        path = work.row(tau)
        if path.is_file():
            continue
        chosen, selection = pick_controller(recipe, work, tau)
        logger.info(f"tau {tau_name(tau)}: dream returns for selection {scores_record(selection)}: evaluating {chosen}")
        agent = LinearController.load(work.controller(chosen))
        n = recipe.episodes if tau == recipe.main_tau else recipe.sweep_episodes
        row = evaluate(agent, recipe.dream_id, model, taus=(tau,), episodes=n, dream_episodes=100,
                       name=f"CMA-ES linear, trained at tau={tau_name(tau)}{runs}", workers=workers)
        row.update(controller=chosen.to_dict(), selection_dream_returns=scores_record(selection))
        write_json(path, row)
        print(_summary(f"tau {tau_name(tau)}", row, tau))
    tau, path = recipe.main_tau, work.row(recipe.main_tau, noise=True)
    if recipe.noise_row and not path.is_file():
        chosen = work.row_controller(tau)
        sigma, theta = recipe.noise_row["sigma"], recipe.noise_row.get("theta", 0.15)
        row = evaluate(with_noise(recipe, LinearController.load(work.controller(chosen))), recipe.dream_id, model, taus=(tau,),
                       episodes=recipe.episodes, dream_episodes=100,
                       name=f"CMA-ES linear, trained at tau={tau_name(tau)}, run with the rounds' OU action noise (sigma {sigma}, theta {theta})",
                       workers=workers)
        row.update(controller=chosen.to_dict(), noise={"sigma": sigma, "theta": theta})
        write_json(path, row)
        print(_summary(f"tau {tau_name(tau)} with noise", row, tau))
    if not work.random_row.is_file():
        t0 = time.time()
        space = gym.make(recipe.dream_id, model=model).action_space
        returns, lengths = real_episode_returns(RandomAgent(space, seed=0), recipe.real_id, model, recipe.random_episodes, seed=0,
                                                workers=workers)
        write_json(work.random_row, {"agent": "random policy", "real": stats(returns), "real_steps": int(lengths.sum()),
                                     "seconds": round(time.time() - t0, 1)})


def real_baseline(recipe: Recipe, work: WorkDir, workers: int = 2) -> None:
    """The same controller trained by CMA-ES on the real env, with the real steps the dream's data cost."""
    from trainers.agents.cmaes import train_cmaes_real

    if not recipe.real_baseline:
        return
    budget = work.real_steps(read_card(work.model))
    train_cmaes_real(recipe.real_id, str(work.model), work.real_cmaes, budget, popsize=16, workers=workers)
    if not work.real_cmaes_row.is_file():
        agent = LinearController.load(work.real_cmaes / "mean")
        returns, lengths = real_episode_returns(agent, recipe.real_id, str(work.model), recipe.episodes, seed=0, workers=workers)
        write_json(work.real_cmaes_row, {"agent": f"CMA-ES linear trained on the REAL env ({budget} real steps, CMA mean)",
                                         "real": stats(returns), "real_steps": int(lengths.sum())})
