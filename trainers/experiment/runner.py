"""The runner: a recipe, a work directory and the stages to run, in order. ``gym-dream experiment`` and
``benchmarks/world_models.py`` both call :func:`run`."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path

import gymnasium as gym

from gym_dream.envs.core import check_tau, tau_name
from gym_dream.envs.registry import DREAM_ENTRY, DREAM_VECTOR_ENTRY
from trainers.experiment.recipe import Recipe
from trainers.experiment.stages import collect, evaluate, report, rounds, select, ship, train
from trainers.experiment.workdir import Tau, WorkDir

logger = logging.getLogger(__name__)

STAGES = ("collect", "adopt", "fit", "train", "iterate", "evaluate", "select", "sb3", "real_baseline", "report", "ship")


@dataclass
class Options:
    """What a run of stages needs besides the recipe (the CLI's flags)."""

    work: Path
    results: Path
    """where ``report`` writes <name>.md / .json and its pictures"""
    package: Path
    """the model package directory ``ship`` writes (and ``adopt`` reads when it holds a model)"""
    workers: int = 2
    device: str = "cpu"
    jobs: int = 1
    train_minutes: float | None = None
    rnn_minutes: float | None = None
    init: str | None = None
    report_source: str = ""
    """where the shipped card says the scores are reported"""
    ship_in_all: bool = True
    """``all`` ends with ``ship`` (a tiny run's model is not worth a package)"""


def all_stages(recipe: Recipe) -> list[str]:
    """``all``: collect, fit, train, then (iterate, fit, train) per collection round, then the rest. Where an SB3 agent
    drives the rounds (``iterate.agent``), each round's dream trains it (``sb3``) before the round collects, and the
    CMA-ES controllers (``train``) are trained once, in the last dream."""
    rounds = int(recipe.iterate.get("rounds", 0))
    if recipe.iterate.get("agent", "cmaes") != "cmaes":
        return ["collect", "fit", "sb3", *(["iterate", "fit", "sb3"] * rounds), "train", "evaluate",
                *(["select"] if recipe.select else []), "real_baseline", "report", "ship"]
    return ["collect", "fit", "train", *(["iterate", "fit", "train"] * rounds), "evaluate", *(["select"] if recipe.select else []),
            "sb3", "real_baseline", "report", "ship"]


def override(recipe: Recipe, tiny: bool = False, taus: list[Tau] | None = None, generations: int | None = None,
             collect_workers: int | None = None) -> Recipe:
    """The recipe with the command line's changes: tiny budgets, a part of the sweep (``taus``: numbers or (low, high)
    ranges), more generations, more workers."""
    if tiny:
        recipe = recipe.tiny()
    if taus:
        taus = [check_tau(t) for t in taus]
        unknown = [tau_name(t) for t in taus if t not in recipe.taus]
        if unknown:
            raise ValueError(f"--taus {unknown} are not in the {recipe.name} recipe's sweep {[tau_name(t) for t in recipe.taus]}.")
        recipe = replace(recipe, taus=tuple(taus), main_tau=recipe.main_tau if recipe.main_tau in taus else taus[0])
    if generations:
        recipe = replace(recipe, cmaes={**recipe.cmaes, "generations": generations})
    if collect_workers:
        recipe = replace(recipe, collect={**recipe.collect, "workers": collect_workers})
    return recipe


def ensure_registered(recipe: Recipe) -> None:
    """A recipe for an env outside the catalogue registers its own Dream-* id (its model is passed explicitly)."""
    if recipe.dream_id not in gym.registry:
        gym.register(id=recipe.dream_id, entry_point=DREAM_ENTRY, vector_entry_point=DREAM_VECTOR_ENTRY,
                     kwargs={"default_model": None, "real_env_id": recipe.real_id})


def _adopt(recipe: Recipe, work: WorkDir, o: Options) -> None:
    from gym_dream.agents import find_agent
    from gym_dream.store import find_model_dir

    shipped = o.package if (o.package / "model.json").is_file() else find_model_dir(recipe.model_name)
    rounds.adopt(recipe, work, shipped, find_agent(ship.tau_agent(recipe.main_tau), shipped), o.results)


def run(recipe: Recipe, stages: list[str], o: Options) -> None:
    """Run ``stages`` (names of :data:`STAGES`, or ``["all"]``) of ``recipe`` in ``o.work``."""
    unknown = [s for s in stages if s not in (*STAGES, "all")]
    if unknown:
        raise ValueError(f"Unknown stages {unknown}: choose from {list(STAGES)} or 'all'.")
    ensure_registered(recipe)
    work = WorkDir(o.work)
    work.root.mkdir(parents=True, exist_ok=True)
    everything = stages == ["all"]
    max_seconds = None if o.train_minutes is None else 60 * o.train_minutes
    seen_rounds = 0
    actions = {
        "collect": lambda: collect.collect_data(recipe, work),
        "adopt": lambda: _adopt(recipe, work, o),
        "fit": lambda: collect.fit_model(recipe, work, o.device, o.rnn_minutes, o.init),
        "train": lambda: train.train_controllers(recipe, work, o.device, o.jobs, max_seconds),
        "iterate": lambda: rounds.iterate(recipe, work, o.workers, seen_rounds if everything else None),
        "evaluate": lambda: evaluate.evaluate_agents(recipe, work, o.workers),
        "select": lambda: select.select_agent(recipe, work, o.workers),
        "sb3": lambda: train.train_sb3_agents(recipe, work, o.workers, o.device),
        "real_baseline": lambda: evaluate.real_baseline(recipe, work, o.workers),
        "report": lambda: report.write_report(recipe, work, o.results),
        "ship": lambda: ship.ship(recipe, work, o.package, o.report_source or f"{o.results / recipe.name}.md"),
    }
    todo = [s for s in all_stages(recipe) if s != "ship" or o.ship_in_all] if everything else stages
    for stage in todo:
        t0 = time.time()
        logger.info(f"== {recipe.name}: {stage}")
        seen_rounds += stage == "iterate"
        actions[stage]()
        logger.info(f"== {recipe.name}: {stage} done in {time.time() - t0:.0f} s")
