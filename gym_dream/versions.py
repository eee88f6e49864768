"""Version ranges for model packages (``">=0.1,<0.2"``), checked without third-party packages."""

from __future__ import annotations

import operator
import re

_CLAUSE = re.compile(r"^\s*(>=|<=|==|!=|>|<|~=)\s*([0-9]+(?:\.[0-9]+)*)\s*$")
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, "!=": operator.ne, ">": operator.gt, "<": operator.lt}


def release(version: str) -> tuple[int, ...]:
    """The numeric release part of a version (``"0.1.0.dev3+g12"`` -> ``(0, 1, 0)``)."""
    m = re.match(r"^\s*v?([0-9]+(?:\.[0-9]+)*)", version)
    if m is None:
        raise ValueError(f"Not a version: {version!r}.")
    return tuple(int(p) for p in m.group(1).split("."))


def _pad(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    n = max(len(a), len(b))
    return a + (0,) * (n - len(a)), b + (0,) * (n - len(b))


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` lies in ``spec``, a comma-separated list of ``>=, <=, ==, !=, >, <, ~=`` clauses."""
    v = release(version)
    for clause in spec.split(","):
        if not clause.strip():
            continue
        m = _CLAUSE.match(clause)
        if m is None:
            raise ValueError(f"Cannot read the version range {spec!r} (clause {clause.strip()!r}); write e.g. '>=0.1,<0.2'.")
        op, bound = m.group(1), release(m.group(2))
        if op == "~=":  # compatible release: >= bound and == bound's prefix
            if len(bound) < 2:
                raise ValueError(f"'~=' needs at least two version parts, got {clause.strip()!r}.")
            a, b = _pad(v, bound)
            if a < b or v[: len(bound) - 1] != bound[:-1]:
                return False
            continue
        a, b = _pad(v, bound)
        if not _OPS[op](a, b):
            return False
    return True


def compatible_range(version: str) -> str:
    """The range of gym-dream releases a model made with ``version`` can rely on: same minor series
    before 1.0 (``0.1.x``), same major after."""
    parts = release(version) + (0, 0)
    major, minor = parts[0], parts[1]
    if major == 0:
        return f">={major}.{minor},<{major}.{minor + 1}"
    return f">={major}.{minor},<{major + 1}"
