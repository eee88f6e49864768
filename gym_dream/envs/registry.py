"""Which ``Dream-*`` ids exist, and which model each one runs.

An id comes from a model card: a model package (made by ``gym-dream export``, or gym-dream's own
bundled models, declared the same way) names its id in the card's ``dream_env`` section, and
``import gym_dream`` registers it. Reading a card is reading JSON: no code from a model package runs.
gym-dream also defines ids for its own experiments whose model may not be installed yet; making one
of those explains how to get the model. Two packages claiming one id register an id whose ``make``
raises an error naming both, never a silent override. A package registers only ``Dream-*`` ids and never
replaces an id that gym-dream did not register (``CartPole-v1``, another library's env): such a
declaration is refused with a warning, as is one whose card's real env id (``env.id``) is not a plain
registered id (a ``module:`` prefix would make ``gym.make`` import that module). A package whose model
takes the name of a model gym-dream ships registers no id for it (making its id names the package to
remove); gym-dream's own model keeps its name and its id.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import register

from gym_dream.catalogue import CATALOGUE
from gym_dream.error import ModelMismatch, RefusedIdWarning
from gym_dream.naming import is_dream_id, is_plain_env_id, one_line

DREAM_ENTRY = "gym_dream.envs.dream_env:DreamEnv"
DREAM_VECTOR_ENTRY = "gym_dream.envs.dream_vector_env:DreamVectorEnv"
CONFLICT_ENTRY = "gym_dream.envs.registry:conflicting_id"
#: ``Dream-Model-v0``: the dream of the model passed as ``model=``, of any env (gym_dream/envs/model_dream.py)
MODEL_DREAM_ID = "Dream-Model-v0"
MODEL_DREAM_ENTRY = "gym_dream.envs.model_dream:make_model_dream"
MODEL_DREAM_VECTOR_ENTRY = "gym_dream.envs.model_dream:make_model_dream_vec"


@dataclass(frozen=True)
class DreamId:
    """A registered dream id: the model it runs by default and the real env that model imitates."""

    env_id: str
    model: str
    real_env_id: str | None
    max_episode_steps: int | None
    source: str = "gym-dream"
    directory: str | None = None  # the declaring package's model directory (None: gym-dream's own catalogue)


# ids of gym-dream's own experiments (registered even before their model is trained or installed)
BUILTIN_IDS = [DreamId(e.dream_id, e.model, e.real_id, e.max_episode_steps) for e in CATALOGUE]


def card_dream_id(name: str, directory: Path, dist: str) -> DreamId | None:
    """The id a packaged model's card declares (None when it declares none or the card is unreadable;
    an unreadable card is reported when the model is loaded). The id is returned as declared, checked
    or not: :func:`register_dream_envs` refuses the ones a package may not register."""
    try:
        card = json.loads((directory / "model.json").read_text())
        spec = card.get("dream_env") or {}
        if not spec.get("id"):
            return None
        env = card.get("env") or {}
        steps = spec.get("max_episode_steps", env.get("max_episode_steps"))
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            steps = -1  # refused below, with the reason
        real = env.get("id")  # as declared: a real env id that is not a plain registered id is refused below
        real = None if real is None else real if isinstance(real, str) else repr(real)
        return DreamId(str(spec["id"]), name, real, steps or None, dist, str(directory))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def packaged_ids() -> dict[str, list[DreamId]]:
    """env id -> every installed model package that declares it."""
    from gym_dream.store import packaged_model_sources

    claims: dict[str, list[DreamId]] = {}
    for name, directory, dist in packaged_model_sources():
        dream_id = card_dream_id(name, directory, dist)
        if dream_id is not None:
            claims.setdefault(dream_id.env_id, []).append(dream_id)
    return claims


def conflicting_id(message: str, **_: Any):
    """Entry point of an id claimed by several packages: making it raises, naming them."""
    raise ModelMismatch(message)


def _register(d: DreamId) -> None:
    register(
        id=d.env_id,
        entry_point=DREAM_ENTRY,
        vector_entry_point=DREAM_VECTOR_ENTRY,
        max_episode_steps=d.max_episode_steps,
        kwargs={"default_model": d.model, "real_env_id": d.real_env_id},
    )


@dataclass(frozen=True)
class Claim:
    """An id a model package declares, and what registration made of it."""

    dream_id: DreamId
    status: str  # "registered", "conflict" (several packages declare the id), "name conflict" (its model's name is
    # one gym-dream ships: see gym_dream.store.NameConflict) or "refused"
    reason: str = ""


#: every id every installed model package declares, as of the last :func:`register_dream_envs`
CLAIMS: list[Claim] = []
_WARNED: set[tuple[str, str, str]] = set()


def _refusal(d: DreamId) -> str | None:
    """Why a package may not register ``d`` (None: it may)."""
    if not is_dream_id(d.env_id):
        return ("a model package registers only ids of its own kind, 'Dream-<Name>-v<N>' (Gymnasium's id grammar); "
                "it never registers or replaces another env")
    spec = gym.envs.registry.get(d.env_id)
    if spec is not None and spec.entry_point not in (DREAM_ENTRY, CONFLICT_ENTRY):
        return f"the id is already registered by {spec.entry_point!r}, not by gym-dream, and a model package never replaces it"
    if d.max_episode_steps is not None and d.max_episode_steps < 1:
        return "its dream_env.max_episode_steps is not an integer >= 1"
    if d.real_env_id is not None and not is_plain_env_id(d.real_env_id):
        return (f"its card's real env id (env.id) {one_line(repr(d.real_env_id), 100)} is not a plain registered id "
                f"('Name-vN' or 'namespace/Name-vN'), and gym.make would import (run) the module named before a ':'")
    return None


def _name_lost(d: DreamId, conflicts: dict) -> str | None:
    """Why ``d``'s model is not the one its name stands for (None: it is): gym-dream ships a model of the same name."""
    from gym_dream.store import is_shipped_model_dir

    conflict = conflicts.get(d.model)
    if conflict is None or conflict.shipped is None or d.directory is None or is_shipped_model_dir(d.directory):
        return None
    return conflict.message()


def register_dream_envs() -> dict[str, DreamId | None]:
    """(Re-)register every dream id: built-in ones, and those of installed model packages.

    Call it again after installing a model package in a running interpreter. Returns id -> the
    winning declaration (None for an id claimed by several packages). A package's id that is not a
    ``Dream-*`` id, or that another library registered, is refused with a warning and never
    registered; :data:`CLAIMS` lists every declaration and what became of it (``gym-dream list``).
    """
    gym.envs.registry.pop(MODEL_DREAM_ID, None)
    register(id=MODEL_DREAM_ID, entry_point=MODEL_DREAM_ENTRY, vector_entry_point=MODEL_DREAM_VECTOR_ENTRY,
             kwargs={"default_model": None, "real_env_id": None})
    from gym_dream.store import model_conflicts

    ids: dict[str, DreamId | None] = {d.env_id: d for d in BUILTIN_IDS}
    claims_made: list[Claim] = []
    conflicts = model_conflicts()
    for env_id, claims in packaged_ids().items():
        allowed, lost = [], []
        for c in claims:
            reason = _refusal(c)
            if reason is None:
                name_lost = _name_lost(c, conflicts)
                if name_lost is None:
                    allowed.append(c)
                else:  # its model's name is one gym-dream ships: the id is not the package's to register
                    lost.append(c)
                    claims_made.append(Claim(c, "name conflict", name_lost))
                    if (env_id, c.source, c.model) not in _WARNED:
                        _WARNED.add((env_id, c.source, c.model))
                        warnings.warn(f"gym-dream did not register the env id {env_id!r} declared by the installed package "
                                      f"{c.source}: {name_lost}", RefusedIdWarning, stacklevel=2)
                continue
            claims_made.append(Claim(c, "refused", reason))
            if (env_id, c.source, c.model) not in _WARNED:
                _WARNED.add((env_id, c.source, c.model))
                warnings.warn(
                    f"gym-dream refused the env id {env_id!r} declared by the installed package {c.source} (model {c.model!r}): "
                    f"{reason}. It was not registered. Ask its author to fix its card, or uninstall it (pip uninstall {c.source}).",
                    RefusedIdWarning, stacklevel=2,
                )
        if not allowed:
            if lost and env_id not in ids:  # making it names the package to remove (and another's id stays theirs)
                gym.envs.registry.pop(env_id, None)
                register(id=env_id, entry_point=CONFLICT_ENTRY, vector_entry_point=CONFLICT_ENTRY,
                         kwargs={"message": _name_lost(lost[0], conflicts)})
                ids[env_id] = None
            continue
        distinct = {(c.model, c.source) for c in allowed}
        if len(distinct) > 1:
            who = ", ".join(f"{c.source} (model {c.model!r})" for c in allowed)
            message = (
                f"Several installed packages declare the env id {env_id!r}: {who}. "
                f"Uninstall all but one (pip uninstall ...), or make the env from a model directly with "
                f"gym_dream.DreamEnv(model=...)."
            )
            gym.envs.registry.pop(env_id, None)
            register(id=env_id, entry_point=CONFLICT_ENTRY, vector_entry_point=CONFLICT_ENTRY, kwargs={"message": message})
            ids[env_id] = None
            claims_made += [Claim(c, "conflict", message) for c in allowed]
        else:
            ids[env_id] = allowed[0]
            claims_made += [Claim(c, "registered") for c in allowed]
    for d in ids.values():
        if d is not None:
            gym.envs.registry.pop(d.env_id, None)
            _register(d)
    CLAIMS[:] = claims_made
    return ids
