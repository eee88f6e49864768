"""The ``gym-dream`` command (:mod:`~trainers.cli.commands`), its options from config dataclasses
(:mod:`~trainers.cli.options`) and ``gym-dream demo`` (:mod:`~trainers.cli.demo`). The names of the command's module
from before the grouping are handed on here: ``from trainers.cli import main``."""

from trainers.cli.commands import EXAMPLES, build_parser, main, user_error

__all__ = ["EXAMPLES", "build_parser", "main", "user_error"]
