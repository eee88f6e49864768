"""pycma's optimizer state as data: arrays in safetensors, everything else in JSON; never pickle.

:func:`es_state` walks a ``cma.CMAEvolutionStrategy`` and collects every value that changes while it runs:
the mean, step size sigma, the covariance matrix C and its eigen-decomposition (B, D) in the sampler, the
evolution paths (pc, ps), the counters (iterations, evaluations, eigen-decomposition updates), the best
solution, the fitness history, plus the global numpy random state that pycma samples from (its ``seed``
option seeds ``np.random``). :func:`restore_es` writes those values into a freshly built strategy with the
same options, which then continues the same search: the same candidates, generation after generation.

Left out: the options (the caller rebuilds the strategy from them), the logger (no effect on
the search) and dict-valued caches (recomputed from constants of the strategy).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

_SKIP = {"opts", "inopts", "inputargs", "logger", "_es_opts", "randn", "eigenmethod", "es",
         "integer_centering", "callbackstop", "_tell2_args"}
_NUMPY_RANDOM = "numpy.random"


def _is_cma(obj: Any) -> bool:
    return type(obj).__module__.startswith("cma.") and hasattr(obj, "__dict__")


def _plain(v: Any) -> Any:
    """A JSON value for a scalar (numpy scalars keep their dtype), or None when ``v`` is not one."""
    if isinstance(v, np.generic):
        return {"numpy": v.dtype.str, "value": v.item()}
    if v is None or isinstance(v, (bool, numbers.Number, str)) and not isinstance(v, complex):
        return {"value": v}
    return None


def _walk(obj: Any, prefix: str, arrays: dict[str, np.ndarray], values: dict[str, Any], seen: dict[int, str]) -> None:
    """Every state value under ``obj`` (a pycma object at ``prefix``), parents before children; an array or
    object reachable by two paths (``es.C`` is ``es.sm.C``) is stored once and the other path records the alias."""
    if isinstance(obj, list) and all(_plain(x) is not None for x in obj):  # a cma list subclass (RecombinationWeights...)
        values[f"{prefix}[]"] = {"items": [_plain(x) for x in obj]}
    for k, v in vars(obj).items():
        if k in _SKIP or callable(v) and not _is_cma(v):
            continue
        path = f"{prefix}.{k}" if prefix else k
        if id(v) in seen and (isinstance(v, np.ndarray) or _is_cma(v)):
            values[path] = {"alias": seen[id(v)]}
        elif isinstance(v, np.ndarray):
            if v.dtype == object:
                raise TypeError(f"CMA-ES state {path} holds Python objects; it cannot be saved as data.")
            seen[id(v)] = path
            # memory order is kept: BLAS may round a product differently for a Fortran-ordered B (numpy's eigh)
            fortran = v.ndim > 1 and v.flags.f_contiguous and not v.flags.c_contiguous
            arrays[path] = np.ascontiguousarray(v.T if fortran else v)
            values[path] = {"array": "F" if fortran else "C"}
        elif _plain(v) is not None:
            values[path] = _plain(v)
        elif isinstance(v, range):  # which injected directions were selective mirrors
            values[path] = {"range": [v.start, v.stop, v.step]}
        elif isinstance(v, (list, tuple)) and not _is_cma(v):
            if all(_plain(x) is not None for x in v):
                values[path] = {"items": [_plain(x) for x in v], "tuple": isinstance(v, tuple)}
            elif all(isinstance(x, np.ndarray) for x in v):
                values[path] = {"arrays": len(v), "tuple": isinstance(v, tuple)}
                arrays.update({f"{path}.{i}": np.ascontiguousarray(x) for i, x in enumerate(v)})
            else:
                raise TypeError(f"CMA-ES state {path} is a list of mixed values; it cannot be saved as data.")
        elif _is_cma(v):
            seen[id(v)] = path
            values[path] = {"object": f"{type(v).__module__}:{type(v).__qualname__}"}
            _walk(v, path, arrays, values, seen)
        # plain dicts: caches and constants rebuilt by the constructor


def _value(spec: dict[str, Any]) -> Any:
    return np.dtype(spec["numpy"]).type(spec["value"]) if "numpy" in spec else spec["value"]


def _cma_class(name: str) -> type:
    """A class of the pycma package by ``module:qualname`` (nothing outside ``cma`` is ever looked up)."""
    import importlib

    module, _, qualname = name.partition(":")
    if not module.startswith("cma.") or "." in qualname:
        raise ValueError(f"A CMA-ES state names the class {name!r}, which is not pycma's; the state file is not one gym-dream wrote.")
    cls = getattr(importlib.import_module(module), qualname)
    if not isinstance(cls, type):
        raise ValueError(f"{name!r} in a CMA-ES state is not a class.")
    return cls


def es_state(es) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """(arrays, JSON values) of a running strategy and of ``np.random``'s global state."""
    arrays: dict[str, np.ndarray] = {}
    values: dict[str, Any] = {}
    _walk(es, "", arrays, values, {id(es): ""})
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    arrays[f"{_NUMPY_RANDOM}.keys"] = np.asarray(keys)
    values[_NUMPY_RANDOM] = {"value": [kind, int(pos), int(has_gauss), float(cached)]}
    return arrays, values


def _names(path: str) -> list[str]:
    names = path.split(".") if path else []
    if any(n.startswith("__") or n in _SKIP for n in names):
        raise ValueError(f"A CMA-ES state names the attribute {path!r}, which gym-dream never saves; the state file is not one it wrote.")
    return names


def _get(es, path: str) -> Any:
    for name in _names(path):
        es = getattr(es, name)
    return es


def _parent(es, path: str) -> tuple[Any, str]:
    parents, _, name = path.rpartition(".")
    _names(name)
    return _get(es, parents), name


def restore_es(es, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
    """Write a saved state into ``es`` (a fresh strategy built with the same x0, sigma0 and options). Objects
    pycma creates only after its first generation (its timer...) are made empty and filled from the state."""
    for path, spec in values.items():  # parents come before their children
        if path == _NUMPY_RANDOM:
            kind, pos, has_gauss, cached = spec["value"]
            np.random.set_state((kind, arrays[f"{_NUMPY_RANDOM}.keys"], pos, has_gauss, cached))
        elif path.endswith("[]"):
            _get(es, path[:-2])[:] = [_value(x) for x in spec["items"]]
        else:
            obj, name = _parent(es, path)
            if "object" in spec:
                cls = _cma_class(spec["object"])
                if type(getattr(obj, name, None)) is not cls:
                    setattr(obj, name, cls.__new__(cls))
            elif "alias" in spec:
                setattr(obj, name, _get(es, spec["alias"]))
            elif "range" in spec:
                setattr(obj, name, range(*spec["range"]))
            elif "array" in spec:
                setattr(obj, name, arrays[path].T.copy(order="F") if spec["array"] == "F" else arrays[path].copy())
            elif "items" in spec or "arrays" in spec:
                items = [_value(x) for x in spec["items"]] if "items" in spec else [arrays[f"{path}.{i}"].copy() for i in range(spec["arrays"])]
                setattr(obj, name, tuple(items) if spec.get("tuple") else items)
            else:
                setattr(obj, name, _value(spec))
