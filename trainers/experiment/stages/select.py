"""Stage ``select``: choose ONE agent on real validation episodes, then score it on test episodes it never drove.

Candidates (``select.candidates``): ``"runs"``, each CMA-ES run's dream pick ('best' or 'mean', per seed and tau), run
deterministically and, if the recipe has a noise row, with that noise; or ``"taus"``, each tau's evaluated row (its
dream pick over that tau's runs). Each gets ``select.episodes`` real episodes from seed ``select.seed`` (a row that
already drove those seeds lends its episodes); the winner is scored on ``episodes`` test episodes from
``select.test_seed``. Validation and test seeds never overlap. Every agent was still trained only in the dream; the
real steps spent choosing are counted in the row. Resumable: the select state grows one candidate at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gym_dream.envs.core import tau_name
from trainers.agents.controller import LinearController
from trainers.evaluation.evaluate import evaluate, stats
from trainers.evaluation.rollout import real_episode_returns
from trainers.experiment.recipe import Recipe
from trainers.experiment.stages.evaluate import dream_scores, with_noise
from trainers.experiment.workdir import Controller, WorkDir, read_json, write_json


def candidate_name(c: dict[str, Any]) -> str:
    return f"{Controller.from_dict(c['controller'])}{', with OU noise' if c['noise'] else ''}"


def _key(c: dict[str, Any]) -> tuple:
    return (*Controller.from_dict(c["controller"]).to_dict().values(), c["noise"])


def validation(recipe: Recipe) -> tuple[int, int, int, str]:
    """``select``'s validation episodes, first validation seed, first test seed and kind of candidates, checked."""
    n, first = int(recipe.select["episodes"]), int(recipe.select.get("seed", 100_000))
    test, kind = int(recipe.select.get("test_seed", 0)), recipe.select.get("candidates", "runs")
    if kind not in ("runs", "taus"):
        raise SystemExit(f"select candidates {kind!r}: choose 'runs' (each CMA-ES run's dream pick) or 'taus' (each tau's evaluated row).")
    if first < test + recipe.episodes and test < first + n:
        raise SystemExit(f"select seed {first} overlaps the test seeds {test}..{test + recipe.episodes - 1}: "
                         "validation and test episodes must be disjoint (move select's seed or test_seed).")
    return n, first, test, kind


def _sweep_candidates(recipe: Recipe, work: WorkDir, n: int, first: int) -> list[dict[str, Any]]:
    """One candidate per tau: the controller its evaluate row scored. Its validation episodes are taken from the row
    when the row drove those seeds (same seeds, same episodes), else left to run."""
    out = []
    for tau in recipe.taus:
        row = work.read_row(work.row(tau))
        if row is None:
            raise SystemExit(f"select with candidates 'taus' needs every tau's row: run the evaluate stage first ({work.row(tau)} is missing).")
        c = {"controller": row["controller"], "noise": False, "dream": next(iter(row["dream"].values()))["mean"]}
        lo, hi = row.get("real_seeds", [0, -1])
        if lo <= first and first + n - 1 <= hi and "real_returns" in row and "real_lengths" in row:
            k = first - lo
            returns, lengths = np.asarray(row["real_returns"][k:k + n]), np.asarray(row["real_lengths"][k:k + n])
            c.update(real=stats(returns), real_steps=int(lengths.sum()), real_returns=[round(float(x), 2) for x in returns],
                     from_row=work.row(tau).name)
        out.append(c)
    return out


def _run_candidates(recipe: Recipe, work: WorkDir) -> list[dict[str, Any]]:
    """Each CMA-ES run's dream pick, deterministic and (with a noise row) with the rounds' noise."""
    out = []
    for tau in recipe.taus:
        scores = dream_scores(recipe, work, tau)
        for seed in recipe.cmaes_seeds:
            own = {c: s for c, s in scores.items() if c.seed == seed}
            if own:
                best = max(own, key=own.get)
                out += [{"controller": best.to_dict(), "noise": noise, "dream": own[best]}
                        for noise in ((False, True) if recipe.noise_row else (False,))]
    return out


def _agent(recipe: Recipe, work: WorkDir, c: dict[str, Any]):
    agent = LinearController.load(work.controller(Controller.from_dict(c["controller"])))
    return with_noise(recipe, agent) if c["noise"] else agent


def select_agent(recipe: Recipe, work: WorkDir, workers: int = 2) -> None:
    if not recipe.select:
        raise SystemExit(f"The {recipe.name} recipe has no select settings.")
    n, first, test, kind = validation(recipe)
    model = str(work.model)
    state = read_json(work.select_state) if work.select_state.is_file() else {"episodes": n, "seed": first, "candidates": []}
    done = {_key(c) for c in state["candidates"]}
    todo = _sweep_candidates(recipe, work, n, first) if kind == "taus" else _run_candidates(recipe, work)
    for c in todo:
        if _key(c) in done:
            continue
        if "real" not in c:
            returns, lengths = real_episode_returns(_agent(recipe, work, c), recipe.real_id, model, n, seed=first, workers=workers)
            c.update(real=stats(returns), real_steps=int(lengths.sum()), real_returns=[round(float(x), 2) for x in returns])
        state["candidates"].append(c)
        write_json(work.select_state, state)
        print(f"validation, {candidate_name(c)}: dream {c['dream']:.0f}, real {c['real']['mean']:.0f} ± {c['real']['std']:.0f} "
              f"over {n} episodes{' (from ' + c['from_row'] + ')' if c.get('from_row') else ''}", flush=True)
    win = max(state["candidates"], key=lambda c: c["real"]["mean"])
    previous = work.read_row(work.selected_row)
    if previous and previous["selection"]["chosen"] == win:
        return
    chosen = Controller.from_dict(win["controller"])
    row = work.read_row(work.row(chosen.tau, noise=win["noise"]))  # already scored on the test seeds by evaluate: the same episodes
    if not (row and row.get("controller") == win["controller"] and row["real"]["episodes"] == recipe.episodes
            and row.get("real_seeds", [0])[0] == test):
        row = evaluate(_agent(recipe, work, win), recipe.dream_id, model, taus=(chosen.tau,), episodes=recipe.episodes,
                       dream_episodes=100, seed=test, name="selected", workers=workers)
        row.update(controller=win["controller"], **({"noise": dict(recipe.noise_row)} if win["noise"] else {}))
    tracks = f", test seeds {test}-{test + recipe.episodes - 1}" if test else ""
    row["agent"] = (f"CMA-ES linear, trained at tau={tau_name(chosen.tau)} ({candidate_name(win)}), **chosen on {n} real validation episodes** "
                    f"among {len(state['candidates'])} candidates{tracks}")
    row["selection"] = {"chosen": win, "candidates": len(state["candidates"]), "kind": kind, "episodes": n, "seeds": [first, first + n - 1],
                        "real_steps": sum(c["real_steps"] for c in state["candidates"])}
    write_json(work.selected_row, row)
    print(f"chosen: {candidate_name(win)} (validation {win['real']['mean']:.0f}); test: real {row['real']['mean']:.1f} ± "
          f"{row['real']['std']:.1f} over {row['real']['episodes']} episodes from seed {test}")
