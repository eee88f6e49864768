"""``gym-dream experiment RECIPE STAGE...``: run stages of a recipe (see :mod:`trainers.experiment`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainers.cli.options import tau_arg
from trainers.experiment.recipe import available_recipes, load_recipe
from trainers.experiment.runner import STAGES, Options, override, run

HELP = f"""Run the World Models experiment of a recipe, stage by stage (each resumable; 'all' runs them in order):
collect (real data) -> fit (the recipe's world model) -> train (CMA-ES in the dream at every tau) -> iterate (a collection round
driven by the latest controller; then fit and train again) -> evaluate (dream and real returns, random baseline) ->
select (one agent chosen on real validation episodes) -> sb3 -> real_baseline -> report -> ship. 'adopt' starts the
next collection round from a shipped model and its shipped controller. Recipes: {", ".join(available_recipes())}, or a
.toml file (trainers/experiment/recipes/ shows the format)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="*", metavar="RECIPE STAGE",
                   help=f"a recipe name ({', '.join(available_recipes())}) or a .toml file, then one or more stages: "
                        f"{', '.join(STAGES)}, or all (with --env-id: only the stages, default all)")
    p.add_argument("--env-id", default=None, help="any registered env id instead of a recipe: the whole loop with a recipe derived from "
                   "its spaces (trainers/experiment/derive.py: random data, then rounds driven by PPO (discrete actions) or SAC "
                   "(continuous), SB3's defaults)")
    p.add_argument("--family", default=None, help="with --env-id: the world-model family to fit (default: "
                   "trainers.experiment.derive.FAMILY)")
    p.add_argument("--steps", type=int, default=None, help="with --env-id: real steps of the whole loop (default: "
                   "trainers.experiment.derive.DEFAULT_STEPS)")
    p.add_argument("--work", default=None, help="work folder (default: runs/<recipe>)")
    p.add_argument("--results", default=None, help="where report writes <recipe>.md/.json (default: <work>/results)")
    p.add_argument("--package", default=None, help="the model package directory ship writes (default: <work>/package/<model>)")
    p.add_argument("--workers", type=int, default=2, help="processes for real-env evaluation")
    p.add_argument("--tiny", action="store_true", help="tiny budgets and networks: a smoke run of every stage (results and "
                                                       "package then stay in the work folder)")
    p.add_argument("--taus", type=tau_arg, nargs="+", default=None, metavar="X|LOW:HIGH", help="only these taus of the sweep")
    p.add_argument("--generations", type=int, default=None, help="override the CMA-ES generations (a resumed run continues to this many)")
    p.add_argument("--device", default="cpu", help="torch device for fitting and for CMA-ES dreams (e.g. cuda)")
    p.add_argument("--collect-workers", type=int, default=None, help="parallel real envs while collecting (default: the recipe's)")
    p.add_argument("--init", default=None, help="fit: start from this model directory (e.g. to refit the same data with changed settings)")
    p.add_argument("--rnn-minutes", type=float, default=None, help="wall-time budget of the MDN-RNN fit (resumable: re-run to continue)")
    p.add_argument("--jobs", type=int, default=1, help="CMA-ES runs trained at once, in separate processes")
    p.add_argument("--train-minutes", type=float, default=None, help="wall-time budget per CMA-ES run (resumable: re-run to continue)")


#: the valid range of each count option (trainers.fit.presets.check_ranges), checked before any folder is made
EXPERIMENT_RANGES = {**{k: "integer >= 1" for k in ("workers", "jobs", "generations", "collect_workers")},
                     "steps": "integer >= 3000", **{k: "number > 0" for k in ("rnn_minutes", "train_minutes")}}


def _recipe_and_stages(ns: argparse.Namespace):
    """The recipe (named, a file, or derived from ``--env-id``) and the stages to run, checked."""
    from trainers.fit.presets import check_ranges

    try:
        check_ranges(ns, EXPERIMENT_RANGES, "experiment")
    except ValueError as e:
        raise SystemExit(str(e)) from None
    words = list(ns.recipe)
    if ns.env_id is not None:
        from trainers.experiment.derive import DEFAULT_STEPS, FAMILY, derive_recipe

        recipe = derive_recipe(ns.env_id, ns.steps if ns.steps is not None else DEFAULT_STEPS, family=ns.family or FAMILY)
        stages = words or ["all"]
    else:
        if ns.steps is not None or ns.family is not None:
            raise SystemExit("--steps and --family go with --env-id; a recipe sets its own budgets and family.")
        if len(words) < 2:
            raise SystemExit("gym-dream experiment RECIPE STAGE... (e.g. gym-dream experiment carracing all), or "
                             "gym-dream experiment --env-id ENV-ID [STAGE...]")
        recipe, stages = load_recipe(words[0]), words[1:]
    unknown = [s for s in stages if s not in (*STAGES, "all")]
    if unknown:
        raise SystemExit(f"Unknown stages {unknown}: choose from {', '.join(STAGES)}, or all.")
    return recipe, stages


def main(ns: argparse.Namespace, results: Path | None = None, package: Path | None = None, report_source: str = "") -> None:
    """Run the stages the namespace names. ``results`` / ``package``: the defaults of a caller that keeps them elsewhere
    (the repository's benchmark script: results/ and gym_dream/bundled/); a tiny run never uses them. ``report_source``:
    where a shipped card says its scores are reported (default: the report's path)."""
    recipe, ns.stages = _recipe_and_stages(ns)
    recipe = override(recipe, ns.tiny, ns.taus, ns.generations, ns.collect_workers)
    work = Path(ns.work or Path("runs") / recipe.name)
    if ns.tiny:
        results = package = None
    o = Options(work=work, results=Path(ns.results or results or work / "results"),
                package=Path(ns.package or package or work / "package" / recipe.model_name),
                workers=ns.workers, device=ns.device, jobs=ns.jobs, train_minutes=ns.train_minutes, rnn_minutes=ns.rnn_minutes,
                init=ns.init, ship_in_all=not ns.tiny, report_source=report_source)
    run(recipe, list(ns.stages), o)
