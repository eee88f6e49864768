"""``gym-dream experiment RECIPE STAGE...``: run stages of a recipe (see :mod:`trainers.experiment`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from trainers.cli_options import tau_arg
from trainers.experiment.recipe import available_recipes, load_recipe
from trainers.experiment.runner import STAGES, Options, override, run

HELP = f"""Run the World Models experiment of a recipe, stage by stage (each resumable; 'all' runs them in order):
collect (real data) -> fit (VAE + MDN-RNN) -> train (CMA-ES in the dream at every tau) -> iterate (a collection round
driven by the latest controller; then fit and train again) -> evaluate (dream and real returns, random baseline) ->
select (one agent chosen on real validation episodes) -> sb3 -> real_baseline -> report -> ship. 'adopt' starts the
next collection round from a shipped model and its shipped controller. Recipes: {", ".join(available_recipes())}, or a
.toml file (trainers/experiment/recipes/ shows the format)."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help=f"a recipe name ({', '.join(available_recipes())}) or a .toml file")
    p.add_argument("stages", nargs="+", metavar="STAGE", choices=[*STAGES, "all"], help=f"one or more of {', '.join(STAGES)}, or all")
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


def main(ns: argparse.Namespace, results: Path | None = None, package: Path | None = None, report_source: str = "") -> None:
    """Run the stages the namespace names. ``results`` / ``package``: the defaults of a caller that keeps them elsewhere
    (the repository's benchmark script: results/ and gym_dream/bundled/); a tiny run never uses them. ``report_source``:
    where a shipped card says its scores are reported (default: the report's path)."""
    recipe = override(load_recipe(ns.recipe), ns.tiny, ns.taus, ns.generations, ns.collect_workers)
    work = Path(ns.work or Path("runs") / recipe.name)
    if ns.tiny:
        results = package = None
    o = Options(work=work, results=Path(ns.results or results or work / "results"),
                package=Path(ns.package or package or work / "package" / recipe.model_name),
                workers=ns.workers, device=ns.device, jobs=ns.jobs, train_minutes=ns.train_minutes, rnn_minutes=ns.rnn_minutes,
                init=ns.init, ship_in_all=not ns.tiny, report_source=report_source)
    run(recipe, list(ns.stages), o)
