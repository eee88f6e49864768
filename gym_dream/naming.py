"""What a model package may call itself: strict grammars for the env ids, distribution names and
versions that a model card or ``gym-dream export`` puts into a registry or a generated file.

A model package registers only ids of its own kind, ``Dream-<Name>-v<N>`` (``<Name>``: letters,
digits, ``_``, ``.``, ``-``; a subset of Gymnasium's id grammar, without namespaces), so it can never
take the place of ``CartPole-v1`` or any other env. Names and versions follow the packaging grammars
(PEP 508 names, numeric releases), so nothing taken from a card can add a line to a wheel's METADATA.
"""

from __future__ import annotations

import re

from gym_dream.error import UnsafeId

#: ``Dream-`` + a Gymnasium env name (no namespace) + a version; no whitespace, quotes or newlines
DREAM_ID = re.compile(r"^Dream-[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}-v(0|[1-9][0-9]{0,5})$")
#: a PEP 508 distribution name
DIST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._\-]{0,98}[A-Za-z0-9])?$")
#: a numeric release version (``0.1.0``)
RELEASE = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,5}$")
#: a version range of comparison clauses (``>=0.1,<0.2``)
VERSION_RANGE = re.compile(r"^(>=|<=|==|!=|>|<|~=)[0-9]{1,9}(\.[0-9]{1,9}){0,5}(,(>=|<=|==|!=|>|<|~=)[0-9]{1,9}(\.[0-9]{1,9}){0,5})*$")


def is_dream_id(env_id: object) -> bool:
    return isinstance(env_id, str) and DREAM_ID.match(env_id) is not None


def check_dream_id(env_id: object, what: str = "--env-id") -> str:
    """``env_id`` if a model package may declare it, else :class:`UnsafeId` naming the fix."""
    if is_dream_id(env_id):
        return env_id  # type: ignore[return-value]
    raise UnsafeId(
        f"{what} {env_id!r} is not an id a model package may register: ids must start with 'Dream-' and "
        f"match Gymnasium's id grammar, 'Dream-<Name>-v<N>' with <Name> made of letters, digits, '_', '.', '-' "
        f"(e.g. 'Dream-MyGame-v0'). A model package never registers or replaces another env such as 'CartPole-v1'."
    )


def check_dist_name(name: object, what: str = "--name") -> str:
    if isinstance(name, str) and DIST_NAME.match(name):
        return name
    raise UnsafeId(
        f"{what} must be a valid package name (letters, digits, '-', '_', '.'; starting and ending with a letter or digit), "
        f"e.g. 'dream-mygame'; got {name!r}."
    )


def check_release(version: object, what: str = "--version") -> str:
    if isinstance(version, str) and RELEASE.match(version):
        return version
    raise UnsafeId(f"{what} must be numeric, like '0.1.0'; got {version!r}.")


def check_version_range(spec: object, what: str = "--requires") -> str:
    if isinstance(spec, str) and VERSION_RANGE.match(spec.replace(" ", "")):
        return spec.replace(" ", "")
    raise UnsafeId(f"{what} must be a version range of comparison clauses, like '>=0.1,<0.2'; got {spec!r}.")


_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")


def one_line(text: object, limit: int = 300) -> str:
    """Free text as one line of plain text: control characters and line breaks become spaces."""
    s = _CONTROL.sub(" ", str(text)).strip()
    return s if len(s) <= limit else s[: limit - 3] + "..."
