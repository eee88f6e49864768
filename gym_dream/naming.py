"""What a model package may call itself: strict grammars for the env ids, distribution names and
versions that a model card or ``gym-dream export`` puts into a registry or a generated file.

A model package registers only ids of its own kind, ``Dream-<Name>-v<N>`` (``<Name>``: letters,
digits, ``_``, ``.``, ``-``; a subset of Gymnasium's id grammar, without namespaces), so it can never
take the place of ``CartPole-v1`` or any other env. Names and versions follow the packaging grammars
(PEP 508 names, numeric releases), so nothing taken from a card can add a line to a wheel's METADATA.

A card's real env id (``env.id``, the env the model imitates and its agents are scored on) is a plain registered id,
``Name-vN`` or ``namespace/Name-vN`` (:func:`check_real_env_id`): Gymnasium's ``gym.make("pkg.mod:Name-v0")`` imports
``pkg.mod`` first, so an id with a ``module:`` prefix taken from a card would run that module's code. It is checked
when a card is loaded, when its package's id is registered, at export and before any real env is made.

A package that ``gym-dream export`` writes may not take the name of another project (:func:`check_package_name`):
its name starts with ``dream-`` unless the user says otherwise, and never is, nor imports as, an installed
distribution, a package gym-dream runs on or a module of Python's standard library: installing the wheel would
replace that project's files.
"""

from __future__ import annotations

import re
import sys

from gym_dream.error import UnsafeId

#: ``Dream-`` + a Gymnasium env name (no namespace) + a version; no whitespace, quotes or newlines
DREAM_ID = re.compile(r"^Dream-[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}-v(0|[1-9][0-9]{0,5})$")
#: a real env id as Gymnasium registers it: ``Name-vN`` or ``namespace/Name-vN``, ASCII letters, digits, ``_``, ``-``
#: (and ``.`` in the name); never a ``module:`` prefix, which ``gym.make`` would import
REAL_ID = re.compile(r"^(?:[A-Za-z0-9_][A-Za-z0-9_\-]{0,99}/)?[A-Za-z0-9_][A-Za-z0-9_.\-]{0,99}-v(0|[1-9][0-9]{0,5})$")
#: a PEP 508 distribution name
DIST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._\-]{0,98}[A-Za-z0-9])?$")
#: a numeric release version (``0.1.0``)
RELEASE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,5}$")
#: a version range of comparison clauses (``>=0.1,<0.2``)
VERSION_RANGE = re.compile(r"^(>=|<=|==|!=|>|<|~=)[0-9]{1,9}(\.[0-9]{1,9}){0,5}(,(>=|<=|==|!=|>|<|~=)[0-9]{1,9}(\.[0-9]{1,9}){0,5})*$")


def is_dream_id(env_id: object) -> bool:
    return isinstance(env_id, str) and DREAM_ID.fullmatch(env_id) is not None


def check_dream_id(env_id: object, what: str = "--env-id") -> str:
    """``env_id`` if a model package may declare it, else :class:`UnsafeId` naming the fix."""
    if is_dream_id(env_id):
        return env_id  # type: ignore[return-value]
    raise UnsafeId(
        f"{what} {env_id!r} is not an id a model package may register: ids must start with 'Dream-' and "
        f"match Gymnasium's id grammar, 'Dream-<Name>-v<N>' with <Name> made of letters, digits, '_', '.', '-' "
        f"(e.g. 'Dream-MyGame-v0'). A model package never registers or replaces another env such as 'CartPole-v1'."
    )


def is_plain_env_id(env_id: object) -> bool:
    """``env_id`` is a plain registered-style id (``Name-vN``, ``namespace/Name-vN``): no ``module:`` prefix."""
    return isinstance(env_id, str) and REAL_ID.fullmatch(env_id) is not None


def check_real_env_id(env_id: object, what: str = "the real env id", error: type[Exception] = UnsafeId) -> str:
    """``env_id`` if it is a plain registered-style id (:func:`is_plain_env_id`), else ``error`` naming the fix.

    The one check of every real env id that comes from a model card (and of every id ``trainers.data.real_envs.make_real_env``
    makes): ``gym.make`` imports the module named before a ``:``, so such an id would run code from wherever it came from.
    """
    if is_plain_env_id(env_id):
        return env_id  # type: ignore[return-value]
    colon = isinstance(env_id, str) and ":" in env_id
    raise error(
        f"{what} {one_line(repr(env_id), 120)} is not a plain registered env id: it must be 'Name-vN' or 'namespace/Name-vN' "
        f"(letters, digits, '_', '-', and '.' in the name; e.g. 'CartPole-v1', 'dm_control/cheetah-run-v0')"
        + ("; a 'module:' prefix is never accepted, because gym.make would import (run) that module. Import the module that "
           "registers the env yourself, then pass its plain id" if colon else "")
        + "."
    )


def check_dist_name(name: object, what: str = "--name") -> str:
    if isinstance(name, str) and DIST_NAME.fullmatch(name):
        return name
    raise UnsafeId(
        f"{what} must be a valid package name (letters, digits, '-', '_', '.'; starting and ending with a letter or digit), "
        f"e.g. 'dream-mygame'; got {name!r}."
    )


def check_release(version: object, what: str = "--version") -> str:
    if isinstance(version, str) and RELEASE.fullmatch(version):
        return version
    raise UnsafeId(f"{what} must be numeric, like '0.1.0'; got {version!r}.")


def check_version_range(spec: object, what: str = "--requires") -> str:
    if isinstance(spec, str) and VERSION_RANGE.fullmatch(spec.replace(" ", "")):
        return spec.replace(" ", "")
    raise UnsafeId(f"{what} must be a version range of comparison clauses, like '>=0.1,<0.2'; got {spec!r}.")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def one_line(text: object, limit: int = 300) -> str:
    """Free text as one line of plain text: control characters and line breaks become spaces."""
    s = _CONTROL.sub(" ", str(text)).strip()
    return s if len(s) <= limit else s[: limit - 3] + "..."


# -- what an exported package may be called ----------------------------------------------------------------------------
#: a model package's name starts with this (``dream-mygame``, import name ``dream_mygame``) unless the user says otherwise
PACKAGE_PREFIX = "dream_"
#: gym-dream's own distribution and import names, and the packages its runtime and its extras run on (also when their
#: metadata is missing: a source checkout, an extra not installed)
RUNTIME_NAMES = ("gym-dream", "gym_dream", "trainers", "torch", "gymnasium", "numpy", "safetensors", "stable-baselines3",
                 "cma", "tqdm", "matplotlib", "imageio", "box2d", "dm_control", "mujoco", "shimmy", "vizdoom", "minari",
                 "ray", "pip", "setuptools", "wheel")
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._\-]*)")


def normalize_name(name: str) -> str:
    """A distribution name as one key: PEP 503's normalisation, with ``_`` (``Dream.My--Game`` -> ``dream_my_game``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def import_name(name: str) -> str:
    """The import name of the package ``gym-dream export`` writes for the distribution ``name`` (``dream-mygame`` ->
    ``dream_mygame``)."""
    return re.sub(r"[-.]+", "_", name).lower()


def _runtime_names() -> set[str]:
    """gym-dream's names and those of every requirement in its metadata (all extras), normalised."""
    from importlib import metadata

    names = {normalize_name(n) for n in RUNTIME_NAMES}
    try:
        for req in metadata.requires("gym-dream") or ():
            m = _REQUIREMENT_NAME.match(req)
            if m:
                names.add(normalize_name(m.group(1)))
    except metadata.PackageNotFoundError:
        pass
    return names


def _is_model_package(dist, name: str) -> bool:
    """``dist`` is a model package that ``gym-dream export`` made under ``name`` (re-exporting it is an update)."""
    module = import_name(name)
    try:
        eps = [ep for ep in dist.entry_points if ep.group == "gym_dream.models"]
        top = {line.strip() for line in (dist.read_text("top_level.txt") or "").splitlines() if line.strip()}
    except (OSError, ValueError):
        return False
    return (len(eps) == 1 and normalize_name(eps[0].name) == normalize_name(name) and eps[0].value.strip() == module
            and top <= {module})


def _importable(module: str) -> bool:
    """A top-level module of that name can be imported here (found without importing it)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _provides(dist, module: str) -> bool:
    """``dist`` installs the top-level module ``module`` (its ``top_level.txt``, else its file list, read as text)."""
    try:
        top = dist.read_text("top_level.txt")
        if top is not None:
            return module in {t.strip().lower() for t in top.split()}
        files = dist.read_text("RECORD") or dist.read_text("SOURCES.txt") or ""
    except (OSError, ValueError):
        return False
    return any(line.strip().lower().startswith((f"{module}/", f"{module}.")) for line in files.splitlines())


def package_name_owners(name: str) -> list[str]:
    """What already owns the distribution name ``name`` or its import name, one phrase each: installed distributions of
    that name, installed distributions that provide a top-level module of that import name (or a module importable here
    that no distribution provides), gym-dream's own names and those of the packages it runs on, and Python's standard
    library. A model package that ``gym-dream export`` made under this very name (an earlier version being updated) is
    not an owner."""
    from importlib import metadata

    key, module = normalize_name(name), import_name(name)
    owners: list[str] = []
    if {key, normalize_name(module)} & _runtime_names():
        owners.append("gym-dream itself or a package it runs on")
    stdlib = {m.lower() for m in (*getattr(sys, "stdlib_module_names", ()), *sys.builtin_module_names)}
    if module in stdlib:
        owners.append("a module of Python's standard library")
    dists = {}  # normalised distribution name -> (its name, the distribution)
    for dist in metadata.distributions():
        dist_name = dist.metadata["Name"] if dist.metadata is not None else None
        if dist_name:
            dists.setdefault(normalize_name(dist_name), (dist_name, dist))
    if key in dists and not _is_model_package(dists[key][1], name):
        owners.append(f"the installed distribution {one_line(dists[key][0], 100)!r}")
    if module not in stdlib and _importable(module):  # only then ask which distribution provides it
        providers = sorted(dist_name for dist_name, dist in dists.values() if _provides(dist, module))
        for provider in providers:
            if normalize_name(provider) == key and any(o.startswith("the installed distribution") for o in owners):
                continue  # said already
            entry = dists.get(normalize_name(provider))
            if entry is None or not _is_model_package(entry[1], name):
                owners.append(f"the import name {module!r} of the installed distribution {one_line(provider, 100)!r}")
        if not providers:
            owners.append(f"the module {module!r} that Python already imports here (from no installed distribution)")
    return sorted(set(owners), key=owners.index)


def check_package_name(name: object, *, name_ok: bool = False, what: str = "--name") -> str:
    """``name`` if ``gym-dream export`` may write a package of that name, else :class:`UnsafeId` naming the fix.

    The name must be a valid distribution name; start with ``dream-`` or ``dream_`` unless ``name_ok`` (the user's
    word that the name is theirs to publish); and never be, nor import as, what :func:`package_name_owners` lists
    (``name_ok`` does not lift that): installing the wheel would write over that project's files."""
    check_dist_name(name, what)
    assert isinstance(name, str)
    key = normalize_name(name)
    owners = package_name_owners(name)
    if owners:
        raise UnsafeId(
            f"{what} {name!r} (import name {import_name(name)!r}) would shadow {'; '.join(owners)}: installing the wheel "
            f"would write over that project's files. Pick a name of your own, e.g. "
            f"'dream-{key.removeprefix(PACKAGE_PREFIX).replace('_', '-')}'."
        )
    if not (key.startswith(PACKAGE_PREFIX) and len(key) > len(PACKAGE_PREFIX)) and not name_ok:
        raise UnsafeId(
            f"{what} {name!r} does not start with 'dream-': a model package is named dream-<something> (e.g. "
            f"'dream-{key.replace('_', '-')}') so that it cannot be mistaken for, or install over, another project. "
            f"If {name!r} is a name you own and mean to publish, pass --name-ok."
        )
    return name
