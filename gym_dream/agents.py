"""Agents shipped next to a model: ``<model dir>/agents/<name>/``, declared in the card's ``agents`` section.

An agent trained in a model's dream is data that belongs with that model (weights + JSON, never pickle), so it is
shipped and found like the model: ``find_agent("cmaes-selected", model="carracing")`` is the directory of the
controller shipped with the ``carracing`` model. The runtime only locates the files; loading an agent is the
trainers' business (``trainers.agents.stored_agent.load_stored_agent``, which reads agents stored as data only). A shipped
agent is always a directory (:func:`find_agent` refuses anything else), so its name never leads to an SB3 ``.zip``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from gym_dream.checkpoint import read_card
from gym_dream.error import ModelNotFound
from gym_dream.store import find_model_dir

AGENTS_DIR = "agents"
#: an agent's name is one path component: letters, digits, '.', '_', '-' (never '..' or a separator)
AGENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*")


def model_agents(model: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """name -> the card's record of every agent shipped with ``model`` (a name or a directory)."""
    return dict(read_card(find_model_dir(model)).get("agents") or {})


def find_agent(agent: str, model: str | os.PathLike) -> Path:
    """The directory of the agent named ``agent`` shipped with ``model``."""
    directory = find_model_dir(model)
    declared = model_agents(directory)
    if agent not in declared:
        raise ModelNotFound(f"The model {str(model)!r} ships no agent named {agent!r}; it ships {sorted(declared) or 'none'}. "
                            f"Pass one of those, or a path to an agent directory.")
    if not AGENT_NAME.fullmatch(agent):
        raise ModelNotFound(f"{agent!r} is not an agent name (letters, digits, '.', '_' and '-'; no path separators).")
    path = directory / AGENTS_DIR / agent
    if not path.is_dir():
        raise ModelNotFound(f"The card of {directory} declares the agent {agent!r}, but {path} is missing: reinstall the model.")
    return path


def agent_path(agent: str | os.PathLike, model: str | os.PathLike | None = None, dream_id: str | None = None) -> Path:
    """``agent`` as a directory or file: a path as given, else the agent of that name shipped with ``model`` (default: the
    default model of ``dream_id``)."""
    path = Path(agent)
    if path.exists():
        return path
    if model is None and dream_id is not None:
        import gymnasium as gym

        model = gym.spec(dream_id).kwargs.get("default_model") if dream_id in gym.registry else None
    if model is None:
        raise ModelNotFound(f"No agent at {path}: pass a path, or the name of an agent shipped with a model (with --model or --env-id).")
    return find_agent(str(agent), model)
