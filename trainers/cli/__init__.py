"""The ``gym-dream`` command (:mod:`~trainers.cli.commands`), its parser (:mod:`~trainers.cli.parser`), options from
config dataclasses (:mod:`~trainers.cli.options`) and ``gym-dream demo`` (:mod:`~trainers.cli.demo`). The names of the
command's module from before the grouping are handed on here: ``from trainers.cli import main``."""

from trainers.cli.commands import main, user_error
from trainers.cli.parser import EXAMPLES, build_parser

__all__ = ["EXAMPLES", "build_parser", "main", "user_error"]
