"""Any stored agent, read from where it is kept: :func:`load_agent`.

Every tool that takes an agent by its path (``gym-dream evaluate``, ``ensemble``, ``video``, collection driven by an
agent, the experiment stages, the benchmarks) reads it here, so one function knows every kind there is:

- a linear controller directory (``controller.json``: :mod:`trainers.agents.controller`, what ``train cmaes`` writes);
- a stored SB3 policy (``policy.json``: :mod:`trainers.agents.sb3_policy`, ``<run>/best`` of ``gym-dream train``), acting
  every ``action_hold`` steps as it was trained;
- an agent ensemble (``ensemble.json``: :mod:`trainers.agents.ensemble`), whose members are read by
  :func:`load_stored_agent`: controller or policy directories (or ensembles of those), never an SB3 ``.zip``;
- an SB3 ``.zip``, only when named itself (it is cloudpickled: see :class:`PickleFormatWarning`).

The first three are safetensors + JSON: data that cannot run code. :func:`load_stored_agent` reads only those.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from trainers.agents.action_hold import with_hold
from trainers.agents.ensemble import AgentEnsemble, is_ensemble_dir
from trainers.agents.controller import LinearController, is_controller_dir
from trainers.agents.sb3_policy import SB3Policy, is_policy_dir


class PickleFormatWarning(UserWarning):
    """Loading a file format that can run code (SB3's ``.zip`` holds cloudpickled objects)."""


def load_agent(path: str | Path, algo: str | None = None):
    """A controller directory, a stored SB3 policy or an ensemble of those (all safetensors + JSON), or an SB3 ``.zip``
    (algorithm from ``algo`` or the file name).

    An SB3 ``.zip`` is loaded only when ``path`` names that file itself, never found by looking in a
    directory: its objects are cloudpickled, so loading it can run code, and a :class:`PickleFormatWarning`
    says so. Load only files you trust.
    """
    path = Path(path)
    if is_ensemble_dir(path) or is_controller_dir(path) or is_policy_dir(path):
        return load_stored_agent(path)
    if path.suffix == ".zip" and path.is_file():
        from trainers.agents.sb3 import ALGOS, algo_class

        warnings.warn(f"loading {path}: SB3's .zip format holds cloudpickled objects and can run code; it is loaded only "
                      "because you named this file. Load only agents you trust.", PickleFormatWarning, stacklevel=2)

        meta = path.parent / "agent.json"
        name = algo or (json.loads(meta.read_text())["algo"] if meta.is_file() else next((a for a in ALGOS if a in path.name.lower()), None))
        if name is None:
            raise ValueError(f"Cannot tell the algorithm of {path}; pass --algo (one of {ALGOS}).")
        recipe = (json.loads(meta.read_text()).get("recipe") or {}) if meta.is_file() else {}
        return with_hold(algo_class(name).load(path, device="cpu"), recipe.get("action_hold", 1))
    raise FileNotFoundError(f"{path} is neither a controller directory (controller.json), a stored SB3 policy (policy.json), "
                            "an agent ensemble (ensemble.json) nor an SB3 .zip file.")


def load_stored_agent(path: str | Path):
    """An agent stored as data: a controller directory, a stored SB3 policy or an ensemble of those (safetensors + JSON
    only). Never an SB3 ``.zip`` or anything else that can run code: this is how an ensemble's members are read (an
    ensemble, like an agent shipped with a model package, may come from anyone)."""
    path = Path(path)
    if is_ensemble_dir(path):
        return AgentEnsemble.load(path, load_member=load_stored_agent)
    if is_controller_dir(path):
        return LinearController.load(path)
    if is_policy_dir(path):
        policy = SB3Policy.load(path)
        return with_hold(policy, policy.card.get("action_hold", 1))  # it acts as it was trained: every k steps
    raise ValueError(f"{path} is not an agent stored as data: a controller directory (controller.json), a stored SB3 policy "
                     "(policy.json) or an agent ensemble (ensemble.json). An SB3 .zip is loaded only when you name the file "
                     "itself (it can run code), never as an ensemble's member or an agent shipped with a model.")
