"""Where models come from. ``model=`` accepts, in this order:

1. a loaded :class:`~gym_dream.models.WorldModel`;
2. a directory holding ``model.json`` + ``model.safetensors``;
3. a name in the user store, ``$GYM_DREAM_HOME/models/<name>`` (default
   ``$XDG_DATA_HOME/gym_dream``, i.e. ``~/.local/share/gym_dream``);
4. a name provided by an installed package through the ``gym_dream.models`` entry-point group
   (gym-dream's own bundled models are declared the same way, and are also found in
   ``gym_dream/bundled/`` when the package metadata is absent, e.g. a plain source checkout).

Locating a packaged model never imports the package: the entry point only names where its files lie.
A name that several packages declare is in conflict on its own (:class:`NameConflict`): a model gym-dream ships
keeps its name, else the name resolves to none of them; every other name works.
"""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

from gym_dream.checkpoint import CARD_FILE, check_device, load_model
from gym_dream.error import ModelMismatch, ModelNotFound
from gym_dream.models import WorldModel
from gym_dream.naming import one_line

ENTRY_POINT_GROUP = "gym_dream.models"
BUNDLED_DIR = Path(__file__).parent / "bundled"


def user_store() -> Path:
    """The user's model store directory (``$GYM_DREAM_HOME/models``)."""
    home = os.environ.get("GYM_DREAM_HOME")
    if home:
        return Path(home).expanduser() / "models"
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(data) / "gym_dream" / "models"


_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _package_dir(module: str, dist: metadata.Distribution | None = None) -> Path | None:
    """The directory of a package, found without importing (executing) any of its code.

    ``importlib.util.find_spec("pkg.models")`` would import ``pkg/__init__.py`` to find its
    submodules, so it is never called on a dotted name. First the distribution's own file list
    (``RECORD``) is asked where ``pkg/models/model.json`` lies; failing that (an editable install,
    a source checkout), only the top-level ``pkg`` is located, which imports nothing, and the
    remaining parts are plain directories below it.
    """
    if not _MODULE.match(module):
        return None
    parts = module.split(".")
    if dist is not None:
        want = "/".join(parts + [CARD_FILE])
        try:
            for f in dist.files or ():
                if str(f).replace("\\", "/") == want:
                    located = Path(dist.locate_file(f)).absolute()
                    if located.is_file():
                        return located.parent
        except (OSError, ValueError):
            pass
    roots: list[Path] = []
    try:
        spec = importlib.util.find_spec(parts[0])  # a top-level name: nothing is imported
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        roots = [Path(p) for p in spec.submodule_search_locations]
    for root in roots:
        directory = root.joinpath(*parts[1:])
        if (directory / CARD_FILE).is_file():
            return directory
    return None


def packaged_model_sources() -> list[tuple[str, Path, str]]:
    """Every model declared by an installed distribution, as ``(name, directory, distribution)``.

    Duplicates are kept (see :func:`packaged_models`); the same directory listed twice (e.g. an
    editable install seen through two paths) counts once.
    """
    sources: list[tuple[str, Path, str]] = []
    seen: set[tuple[str, Path]] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        directory = _package_dir(ep.value.split(":")[0].strip(), ep.dist)
        if directory is None or not (directory / CARD_FILE).is_file():
            continue
        key = (ep.name, directory.resolve())
        if key not in seen:
            seen.add(key)
            sources.append((ep.name, directory, ep.dist.name if ep.dist is not None else "?"))
    names = {name for name, _, _ in sources}
    for card in sorted(BUNDLED_DIR.glob(f"*/{CARD_FILE}")):  # a source checkout without package metadata
        name = card.parent.name.replace("_", "-")  # package dirs need "_", model names use "-"
        if name not in names:
            sources.append((name, card.parent, "gym-dream"))
    return sources


def is_shipped_model_dir(directory: str | os.PathLike) -> bool:
    """``directory`` is one of the models gym-dream itself ships (``gym_dream/bundled/<model>``), told by where it lies,
    never by the distribution name a package's metadata gives."""
    try:
        return Path(directory).resolve().parent == BUNDLED_DIR.resolve()
    except OSError:
        return False


@dataclass(frozen=True)
class NameConflict:
    """A model name that several installed packages declare. When gym-dream ships a model of that name (``shipped``),
    the name stays gym-dream's and the other declarations are not used; else the name resolves to none of them. Either
    way only that name is affected: every other model, and every dream id of another model, works."""

    name: str
    declared: tuple[tuple[Path, str], ...]  # (model directory, distribution) of every declaration
    shipped: Path | None  # gym-dream's own model of that name, which keeps it

    @property
    def others(self) -> list[str]:
        """The distributions to remove (all of them when gym-dream ships no model of that name)."""
        return sorted({dist for d, dist in self.declared if self.shipped is None or d != self.shipped})

    def message(self) -> str:
        others = [one_line(d, 100) for d in self.others]
        if self.shipped is not None:
            if len(others) == 1:
                who, model, verb, it = f"package {others[0]}", "that package's model is", "declares", "it"
            else:
                who, model, verb, it = f"packages {' and '.join(others)}", "their models are", "declare", "them"
            return (f"The installed {who} {verb} a model named {self.name!r}, the name of a model gym-dream ships "
                    f"({self.shipped}); the name stays gym-dream's, so {model} not used and no env id declared for {it} is "
                    f"registered. Uninstall {it} (pip uninstall {' '.join(others)}), or ask the author to rename the model.")
        where = ", ".join(f"{one_line(dist, 100)} ({d})" for d, dist in self.declared)
        return (f"Several installed packages declare a model named {self.name!r}: {where}; that name is in conflict (every "
                f"other model works). Uninstall all but one ({' or '.join(f'pip uninstall {d}' for d in others)}), or pass "
                f"the model directory itself.")


def _packaged() -> tuple[dict[str, Path], dict[str, NameConflict]]:
    found: dict[str, list[tuple[Path, str]]] = {}
    for name, directory, dist in packaged_model_sources():
        found.setdefault(name, []).append((directory, dist))
    models: dict[str, Path] = {}
    conflicts: dict[str, NameConflict] = {}
    for name, declared in found.items():
        shipped = next((d for d, _ in declared if is_shipped_model_dir(d)), None)
        if len(declared) > 1:
            conflicts[name] = NameConflict(name, tuple(declared), shipped)
        if len(declared) == 1 or shipped is not None:
            models[name] = shipped or declared[0][0]
    return models, conflicts


def packaged_models() -> dict[str, Path]:
    """Models declared by installed distributions (entry-point name -> model directory).

    A name that two distributions declare is never a silent override, and never breaks the other names: when
    gym-dream ships a model of that name, the name stays gym-dream's; else it is left out here and
    :func:`find_model_dir` raises an error naming the packages. :func:`model_conflicts` lists both kinds.
    """
    return _packaged()[0]


def model_conflicts() -> dict[str, NameConflict]:
    """Every model name that several installed distributions declare (``gym-dream list`` shows them)."""
    return _packaged()[1]


def user_models() -> dict[str, Path]:
    root = user_store()
    if not root.is_dir():
        return {}
    return {p.parent.name: p.parent for p in sorted(root.glob(f"*/{CARD_FILE}"))}


def available_models() -> dict[str, Path]:
    """Every model reachable by name; the user store shadows packaged models of the same name."""
    models = packaged_models()
    models.update(user_models())
    return models


def find_model_dir(model: str | os.PathLike) -> Path:
    """Resolve a directory or a name to a model directory, or raise :class:`ModelNotFound`."""
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / CARD_FILE).is_file():
            raise ModelNotFound(f"{path} is a directory but holds no {CARD_FILE}; it is not a model directory.")
        return path
    name = str(model)
    models = available_models()
    if name in models:
        return models[name]
    conflict = model_conflicts().get(name)
    if conflict is not None:
        raise ModelMismatch(conflict.message())
    raise ModelNotFound.for_name(name, list(models))


_CACHE: dict[tuple, WorldModel] = {}


def resolve_model(model: WorldModel | str | os.PathLike, device: str | torch.device = "cpu") -> WorldModel:
    """A ready-to-use model from any of the accepted forms (loaded models are cached per file version)."""
    device = check_device(device)
    if isinstance(model, WorldModel):
        return model.to(device)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a WorldModel, a model directory or a model name, got {type(model).__name__}.")
    directory = find_model_dir(model).resolve()
    stamp = tuple(
        (p.stat().st_mtime_ns, p.stat().st_size) if p.exists() else None
        for p in (directory / CARD_FILE, directory / "model.safetensors")
    )
    key = (str(directory), stamp, str(torch.device(device)))
    if key not in _CACHE:
        _CACHE[key] = load_model(directory, device=device)
    return _CACHE[key]
