"""The module paths trainers/ had before it was grouped by what each module does (issue 48), still importable.

``import trainers.planner`` gives the very module ``trainers.planning.cem`` and warns (``DeprecationWarning``) with the
path to use instead. Four old modules share their name with a new folder, whose ``__init__`` hands on their names
instead: ``trainers.fit`` (:class:`~trainers.fit.dispatch.FitConfig`, :func:`~trainers.fit.dispatch.fit`),
``trainers.cli`` (``main``), ``trainers.export`` and ``trainers.data`` (the episode dataset).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

# old module -> the module that holds its code now
MOVED = {
    "trainers.action_hold": "trainers.agents.action_hold",
    "trainers.agent_ensemble": "trainers.agents.ensemble",
    "trainers.cma_state": "trainers.agents.cma_state",
    "trainers.cmaes": "trainers.agents.cmaes",
    "trainers.controller": "trainers.agents.controller",
    "trainers.dueling_dqn": "trainers.agents.dueling_dqn",
    "trainers.replay_buffer_file": "trainers.agents.replay_buffer_file",
    "trainers.sb3": "trainers.agents.sb3",
    "trainers.sb3_policy": "trainers.agents.sb3_policy",
    "trainers.sb3_vec_env": "trainers.agents.sb3_vec_env",
    "trainers.stored_agent": "trainers.agents.stored_agent",
    "trainers.cli_options": "trainers.cli.options",
    "trainers.demo": "trainers.cli.demo",
    "trainers.collect": "trainers.data.collect",
    "trainers.envs": "trainers.data.real_envs",
    "trainers.episode_store": "trainers.data.episode_store",
    "trainers.minari_data": "trainers.data.minari",
    "trainers.noise": "trainers.data.noise",
    "trainers.policies": "trainers.data.policies",
    "trainers.evaluate": "trainers.evaluation.evaluate",
    "trainers.pooling": "trainers.evaluation.pooling",
    "trainers.rollout": "trainers.evaluation.rollout",
    "trainers.temperature": "trainers.evaluation.calibrate",
    "trainers.video": "trainers.evaluation.video",
    "trainers.onnx_export": "trainers.export.onnx",
    "trainers.fit_dreamer": "trainers.fit.dreamer",
    "trainers.fit_mdnrnn": "trainers.fit.mdnrnn",
    "trainers.fit_rssm": "trainers.fit.rssm",
    "trainers.fit_vae": "trainers.fit.vae",
    "trainers.presets": "trainers.fit.presets",
    "trainers.sequences": "trainers.fit.sequences",
    "trainers.checkpointing": "trainers.infra.checkpoints",
    "trainers.folder_lock": "trainers.infra.folder_lock",
    "trainers.progress": "trainers.infra.progress",
    "trainers.provenance": "trainers.infra.provenance",
    "trainers.ray_backend": "trainers.infra.ray_backend",
    "trainers.training_log": "trainers.infra.training_log",
    "trainers.planet": "trainers.planning.planet_loop",
    "trainers.planner": "trainers.planning.cem",
}


class _SameModule(importlib.abc.Loader):
    """Loads an old name as the new module itself: one module object, so a patch through either name is seen by both."""

    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.new)
        self.spec = module.__spec__  # the import system sets the old name's spec on it next: put back in exec_module
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The new module ran when it was imported; it keeps its own spec (``importlib.reload`` and pickling read it)."""
        module.__spec__ = self.spec


class MovedFinder(importlib.abc.MetaPathFinder):
    """Finds the old names of :data:`MOVED`, after every other finder (no file has an old name any more)."""

    def find_spec(self, name, path=None, target=None):
        new = MOVED.get(name)
        if new is None:
            return None
        warnings.warn(f"{name} has moved: import {new} instead", DeprecationWarning, stacklevel=2)
        return importlib.machinery.ModuleSpec(name, _SameModule(new))


def install() -> None:
    """Adds the finder to ``sys.meta_path`` once."""
    if not any(isinstance(finder, MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(MovedFinder())
