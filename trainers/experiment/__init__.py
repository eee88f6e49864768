"""Experiments as a library: World Models' loop for any env, as one declarative recipe per env.

- :mod:`~trainers.experiment.recipe`: a :class:`Recipe` (a TOML file in ``recipes/`` or anywhere)
- :mod:`~trainers.experiment.workdir`: the typed :class:`WorkDir` every stage reads and writes
- :mod:`~trainers.experiment.stages`: collect, fit, train, iterate, adopt, evaluate, select, sb3, real_baseline,
  report, ship; each a function of (recipe, work dir, its options)
- :mod:`~trainers.experiment.runner`: :func:`run` the stages in order (``gym-dream experiment RECIPE STAGE...``)
"""

from trainers.experiment.recipe import Recipe, available_recipes, load_recipe
from trainers.experiment.runner import STAGES, Options, all_stages, run
from trainers.experiment.workdir import Controller, WorkDir

__all__ = ["Controller", "Options", "Recipe", "STAGES", "WorkDir", "all_stages", "available_recipes", "load_recipe", "run"]
