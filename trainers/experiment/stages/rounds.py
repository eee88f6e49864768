"""Stages ``iterate`` (one more collection round, World Models' iterative procedure) and ``adopt`` (start the next
round from a shipped model and its shipped controller, on a machine without the earlier rounds' work folder)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from gym_dream.checkpoint import read_card
from gym_dream.envs.core import tau_name
from trainers.data.collect import CollectConfig, collect
from trainers.agents.controller import LinearController
from trainers.evaluation.evaluate import stats
from trainers.agents.stored_agent import load_agent
from trainers.evaluation.rollout import real_episode_returns
from trainers.experiment.recipe import Recipe
from trainers.experiment.stages.evaluate import pick_controller, scores_record
from trainers.experiment.workdir import Controller, Round, WorkDir, write_json

#: the card fields a kept controller does not carry over (they are re-derived when it is saved)
DERIVED = ("format", "format_version", "feature_dim", "action_space")


def _new_round(work: WorkDir, rounds: list[Round]) -> Round:
    number = rounds[-1].number + 1 if rounds else len(work.adopted().get("collection_rounds", [])) + 1
    path = work.round_path(number)
    path.mkdir()
    return Round(path)


def iterate(recipe: Recipe, work: WorkDir, workers: int = 2, up_to: int | None = None) -> None:
    """One more collection round. The current model, controllers and their rows move to ``round-K/``; the dataset grows
    by ``iterate.steps`` real steps driven by ``iterate.agent`` ('cmaes', the default: the main-tau controller the dream
    prefers; or an SB3 algorithm of the recipe: its best agent in the dream) with exploration noise; fit,
    train and evaluate then start afresh on the grown dataset. Resumable: re-running finishes the round's collection.
    ``up_to`` (from ``all``): only start a new round while fewer than that many exist."""
    from trainers.data.dataset import count_episodes

    if not recipe.iterate:
        raise SystemExit(f"The {recipe.name} recipe has no iterate settings.")
    rounds = work.rounds()
    driver = recipe.iterate.get("agent", "cmaes")
    if work.has_model() and (up_to is None or len(rounds) < up_to):
        info = _driver_info(recipe, work, driver)
        new = _new_round(work, rounds)
        steps = count_episodes(work.data)[1]
        for p in work.outputs():
            if p.exists():
                _move_into(p, new.path / p.relative_to(work.root))
        new.write_info({**info, "tau": recipe.main_tau, "steps_before": steps, "target_steps": steps + recipe.iterate["steps"]})
        rounds.append(new)
    if not rounds:
        raise SystemExit("Nothing to iterate from: run the fit and train stages first.")
    last = rounds[-1]
    info = last.info()
    agent = last.agent()
    n = int(recipe.iterate.get("check_episodes", 0))
    if n and "real_check" not in info:  # how the round's agent really drives: the case for this round
        returns, _ = real_episode_returns(load_agent(agent), recipe.real_id, str(last.work.model), n, seed=0, workers=workers)
        info["real_check"] = stats(returns)
        last.write_info(info)
        _log_round(work, last.number, last.dream_return(), info)
        print(f"round {last.number}: the {last.agent_name()} scores {returns.mean():.1f} ± {returns.std():.1f} over {n} real "
              f"episodes (dream {last.dream_return():.1f})", flush=True)
    settings = {k: v for k, v in recipe.iterate.items() if k not in ("rounds", "steps", "check_episodes", "refit", "agent")}
    r = collect(CollectConfig(env_id=recipe.real_id, out=str(work.data), steps=info["target_steps"], workers=recipe.collect.get("workers", 2),
                              seed=recipe.collect.get("seed", 0) + 1000 * last.number, policy="agent",
                              policy_kwargs={"agent": str(agent), "model": str(last.work.model), **settings}))
    print(json.dumps(r))


def _log_round(work: WorkDir, number: int, dream_return: float, info: dict) -> None:
    """One row per collection round whose driving agent is checked on the real env (``iterate.check_episodes``), in
    ``<work>/rounds_log.csv`` (and TensorBoard): its dream and real returns and the real steps before the round (a
    re-run replaces its round's row)."""
    from trainers.infra.training_log import TrainingLog

    check = info.get("real_check") or {}
    with TrainingLog(work.root, "rounds", resume_from=number - 1) as log:
        log.write(number, dream_return=dream_return, real_return=check.get("mean", float("nan")),
                  real_return_std=check.get("std", float("nan")), steps_before=info.get("steps_before", float("nan")))


def _driver_info(recipe: Recipe, work: WorkDir, driver: str) -> dict:
    """Who drives the next round: the main-tau CMA-ES controller the dream prefers, or one of the recipe's SB3 agents
    (its best in the dream), recorded in round.json."""
    tau = recipe.main_tau
    if driver == "cmaes":
        if not any(work.cmaes_run(tau, s).is_dir() for s in recipe.cmaes_seeds):
            raise SystemExit(f"No controller at tau {tau_name(tau)} to drive the round: run the train stage first.")
        chosen, selection = pick_controller(recipe, work, tau)
        return {"agent": "cmaes", "controller": chosen.to_dict(), "selection_dream_returns": scores_record(selection)}
    best = work.sb3_run(driver, tau) / "best"
    if not (best / "policy.json").is_file():
        raise SystemExit(f"No {driver} agent at tau {tau_name(tau)} to drive the round ({best} is missing): run the sb3 stage first.")
    return {"agent": driver, "dream_return": float(json.loads((best / "policy.json").read_text())["dream_return"])}


def _move_into(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    src.rename(dest)


def _git_commit(where: Path) -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def adopt(recipe: Recipe, work: WorkDir, shipped: Path, kept: Path, results: Path | None = None) -> None:
    """Start the next collection round from the SHIPPED model ``shipped`` and its controller ``kept``, when the work
    folder of the earlier rounds is gone (a fresh machine): they become ``round-K/`` (K = the card's rounds + 1); the
    card's data, rounds and fits are recorded in ``adopted.json``, so reports and the shipped card count them. The next
    ``iterate`` collects the round's data into a fresh dataset, and ``fit`` starts from the adopted model. A real-env
    baseline that the earlier run's report (``results/<name>.json``) shows stopped before its budget is carried over."""
    if work.adopted_file.is_file():
        print(f"{work.root} already adopted {work.adopted()['from']}")
        return
    if work.model.exists() or work.rounds() or work.data.exists():
        raise SystemExit(f"{work.root} already holds a model, rounds or data: adopt starts a fresh work folder (pass --work for a new one).")
    if not (shipped / "model.json").is_file() or not (kept / "controller.json").is_file():
        raise SystemExit(f"Nothing to adopt: needs the shipped model {shipped} and its controller {kept} (run the ship stage once).")
    card = read_card(shipped)
    earlier = card["data"].get("collection_rounds", [])
    new = Round(work.round_path(len(earlier) + 1))
    shutil.copytree(shipped, new.work.model, ignore=shutil.ignore_patterns("__init__.py", "__pycache__", "agents"))
    controller = LinearController.load(kept)
    main = Controller(recipe.main_tau, recipe.cmaes_seeds[0], "mean")
    controller.save(new.work.controller(main), {k: v for k, v in controller.card.items() if k not in DERIVED})
    adopted = {"from": str(shipped), "controller": str(kept), "commit": _git_commit(shipped), "real_steps": card["data"]["steps"],
               "episodes": card["data"]["episodes"], "policies": card["data"]["policies"], "collection_rounds": earlier,
               "fits_seconds": card["training"].get("fits_seconds", [card["training"]["seconds"]]), "scores": card.get("scores", {})}
    previous = results / f"{recipe.name}.json" if results else None
    if previous and previous.is_file() and json.loads(previous.read_text()).get("real_env_cmaes_partial"):
        adopted["real_env_cmaes_partial"] = json.loads(previous.read_text())["real_env_cmaes_partial"]
    _, selection = pick_controller(recipe, new.work, recipe.main_tau)
    new.write_info({"controller": main.to_dict(), "selection_dream_returns": scores_record(selection), "tau": recipe.main_tau,
                    "steps_before": 0, "target_steps": recipe.iterate["steps"], "adopted": True})
    write_json(work.adopted_file, adopted)
    print(f"adopted {shipped} ({card['data']['steps']} real steps, {len(earlier)} rounds) and {kept} as {new.path}; next: iterate, fit, train")
