"""The World Models experiments on pixels, trained only in the dream and scored on the real game.

    python benchmarks/world_models.py doom all          # VizDoom take-cover: the paper's temperature table
    python benchmarks/world_models.py carracing all     # CarRacing-v3

This is ``gym-dream experiment`` (trainers/experiment/) with the repository's destinations as defaults: ``report``
writes results/<recipe>.md/.json, ``ship`` writes gym_dream/bundled/<model>/ (the shipped default model and its
agents). The recipes are trainers/experiment/recipes/<recipe>.toml; what the runs showed and the commands of each
reported run are results/<recipe>_notes.md. ``--tiny`` runs every stage on tiny budgets inside the work folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path


from trainers.experiment.cli import HELP, add_arguments, main
from trainers.experiment.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__ + "\n" + HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    ns = p.parse_args()
    if ns.env_id is not None or not ns.recipe:
        p.error("name a recipe of gym-dream's own (doom, carracing); gym-dream experiment --env-id ID runs any env")
    recipe = load_recipe(ns.recipe[0])
    main(ns, results=ROOT / "results", package=ROOT / "gym_dream" / "bundled" / recipe.model_name.replace("-", "_"),
         report_source=f"the gym-dream repository's results/{recipe.name}.md (python benchmarks/world_models.py {recipe.name} all)")
