"""The ``Dream-*`` ids of installed exported packages (``gym-dream export MODEL --runtime onnx``).

A package declares its dream in the entry-point group :data:`ENTRY_POINT_GROUP` (name -> its module); the folder is
found from the distribution's file list, without importing the package, and its ``dream/dream.json`` names the id
(``dream_env.id``) and horizon. ``import gym_dream_onnx`` registers them. Only ``Dream-*`` ids are registered, an id
that another library (gym-dream's torch runtime included) registered is never replaced, and two packages claiming
one id register an id whose ``make`` raises an error naming both.

A name that several packages declare is in conflict on its own (:class:`NameConflict`), as in gym-dream's torch runtime
(gym_dream.store): the name resolves to none of them (making it, or an id whose dream it names, raises an error naming
the packages to uninstall) and every other name and id works. This runtime ships no dream of its own, so no declaration
keeps a contested name; its names are its own entry-point group's, apart from the torch runtime's model names.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import gymnasium as gym
from gymnasium.envs.registration import register

ENTRY_POINT_GROUP = "gym_dream_onnx.models"
ENV_ENTRY = "gym_dream_onnx.env:OnnxDreamEnv"
VECTOR_ENTRY = "gym_dream_onnx.vector_env:OnnxDreamVectorEnv"
CONFLICT_ENTRY = "gym_dream_onnx.registry:conflicting_id"
DREAM_ID = re.compile(r"^Dream-[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}-v(0|[1-9][0-9]{0,5})$")
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MANIFEST_PATH = ("dream", "dream.json")


def _dream_dir(module: str, dist: metadata.Distribution | None) -> Path | None:
    if not _MODULE.match(module) or dist is None:
        return None
    want = "/".join((module, *MANIFEST_PATH))
    try:
        for f in dist.files or ():
            if str(f).replace("\\", "/") == want:
                located = Path(dist.locate_file(f)).absolute()
                if located.is_file():
                    return located.parent
    except (OSError, ValueError):
        pass
    return None


def dream_sources() -> list[tuple[str, Path, str]]:
    """Every installed exported dream: (name, dream folder, distribution); the same folder declared under one name twice
    (an editable install seen through two paths) counts once."""
    out, seen = [], set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        directory = _dream_dir(ep.value.strip(), ep.dist)
        if directory is not None and (ep.name, directory.resolve()) not in seen:
            seen.add((ep.name, directory.resolve()))
            out.append((ep.name, directory, ep.dist.name if ep.dist is not None else "?"))
    return out


@dataclass(frozen=True)
class NameConflict:
    """A dream name that several installed packages declare: it resolves to none of them; every other name works."""

    name: str
    declared: tuple[tuple[Path, str], ...]  # (dream folder, distribution) of every declaration

    def message(self) -> str:
        where = ", ".join(f"{dist} ({directory})" for directory, dist in self.declared)
        fixes = " or ".join(f"pip uninstall {dist}" for dist in sorted({dist for _, dist in self.declared}))
        return (f"Several installed packages declare an exported dream named {self.name!r}: {where}; that name is in conflict "
                f"(every other name works). Uninstall all but one ({fixes}), or pass the dream folder itself.")


def _dreams() -> tuple[dict[str, Path], dict[str, NameConflict]]:
    found: dict[str, list[tuple[Path, str]]] = {}
    for name, directory, dist in dream_sources():
        found.setdefault(name, []).append((directory, dist))
    dreams = {name: declared[0][0] for name, declared in found.items() if len(declared) == 1}
    conflicts = {name: NameConflict(name, tuple(declared)) for name, declared in found.items() if len(declared) > 1}
    return dreams, conflicts


def available_dreams() -> dict[str, Path]:
    """Installed exported dreams by name (the package's distribution name); a name in conflict is left out."""
    return _dreams()[0]


def dream_conflicts() -> dict[str, NameConflict]:
    """Every dream name that several installed packages declare."""
    return _dreams()[1]


def conflicting_id(message: str, **_):
    raise gym.error.Error(message)


def register_onnx_envs() -> dict[str, str]:
    """(Re-)register the id of every installed exported dream; returns id -> package name."""
    claims: dict[str, list[tuple[str, int | None]]] = {}
    for name, directory, dist in dream_sources():
        try:
            spec = json.loads((directory / "dream.json").read_text()).get("dream_env") or {}
        except (OSError, ValueError, AttributeError):
            continue
        env_id, steps = spec.get("id"), spec.get("max_episode_steps")
        if not isinstance(env_id, str) or not DREAM_ID.match(env_id):
            warnings.warn(f"gym-dream-onnx refused the env id {env_id!r} of the installed package {dist}: a package registers "
                          "only ids of the form 'Dream-<Name>-v<N>'.", stacklevel=2)
            continue
        if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            steps = None
        claims.setdefault(env_id, []).append((name, steps))
    registered = {}
    for env_id, who in claims.items():
        existing = gym.envs.registry.get(env_id)
        if existing is not None and existing.entry_point not in (ENV_ENTRY, CONFLICT_ENTRY):
            warnings.warn(f"gym-dream-onnx did not register {env_id!r} (package {who[0][0]}): the id is already registered "
                          f"by {existing.entry_point!r}. Make the dream directly: "
                          f"gym_dream_onnx.OnnxDreamEnv(model={who[0][0]!r}).", stacklevel=2)
            continue
        gym.envs.registry.pop(env_id, None)
        if len(who) > 1:
            names = ", ".join(n for n, _ in who)
            register(id=env_id, entry_point=CONFLICT_ENTRY, vector_entry_point=CONFLICT_ENTRY,
                     kwargs={"message": f"Several installed exported dreams declare {env_id!r}: {names}. "
                                        "Uninstall all but one."})
            continue
        name, steps = who[0]
        register(id=env_id, entry_point=ENV_ENTRY, vector_entry_point=VECTOR_ENTRY, max_episode_steps=steps,
                 kwargs={"default_model": name})
        registered[env_id] = name
    return registered
