"""A config dataclass as command-line options: every field becomes ``--field-name`` with its type, its default and the
docstring written under it (CleanRL style), so a script and the CLI run exactly the same code; and the argparse types
those options need (a number or a range ``LOW:HIGH``, 'none' for an unset optional)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import textwrap
import typing


def field_docs(cls: type) -> dict[str, str]:
    """Docstrings written under dataclass fields (CleanRL style)."""
    docs: dict[str, str] = {}
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return docs
    body = tree.body[0].body
    for a, b in zip(body, body[1:]):
        if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and isinstance(b, ast.Expr) and isinstance(getattr(b, "value", None), ast.Constant) and isinstance(b.value.value, str):
            docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def add_options(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = (), positional: str | None = None,
                optional_positional: bool = False) -> None:
    """One option per field of the dataclass ``cls`` (but ``skip``); ``positional`` names the field taken as a
    positional argument (``optional_positional``: it may be left out)."""
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        tp = hints[f.name]
        is_union = typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union))
        base = next(a for a in typing.get_args(tp) if a is not type(None)) if is_union else tp
        doc = docs.get(f.name, "")
        help_ = doc if "(default" in doc else f"{doc} (default: {default})"  # a doc that explains its default keeps it
        if f.name == positional:
            parser.add_argument(f.name, help=help_, **({"nargs": "?", "default": None} if optional_positional else {}))
            continue
        flag = "--" + f.name.replace("_", "-")
        if is_union and base is float and any(typing.get_origin(a) is tuple for a in typing.get_args(tp)):
            parser.add_argument(flag, type=number_or_range, default=default, metavar="X|LOW:HIGH", help=help_ + " ('none' to unset)")
        elif base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_)
        elif typing.get_origin(base) is dict or base is dict:
            parser.add_argument(flag, type=json.loads, default=default, metavar="JSON", help=help_)
        elif typing.get_origin(base) is tuple:
            item = next((a for a in typing.get_args(base) if a is not Ellipsis), float)
            parser.add_argument(flag, type=item, nargs="+", default=default, help=help_)
        else:
            kind = optional(base) if is_union else base
            parser.add_argument(flag, type=kind, default=default, help=help_ + (" ('none' to unset)" if is_union else ""))


def number_or_range(text: str) -> float | tuple[float, float] | None:
    """An argparse type for a number or a range ``LOW:HIGH`` (``--tau 1.15``, ``--tau 1.0:1.7``); 'none' is None."""
    if text.strip().lower() in ("none", "null"):
        return None
    parts = text.split(":")
    if len(parts) > 2:
        raise argparse.ArgumentTypeError(f"expected a number or a range LOW:HIGH (e.g. 1.0:1.7), got {text!r}")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or a range LOW:HIGH (e.g. 1.0:1.7), got {text!r}") from None
    return values[0] if len(values) == 1 else (values[0], values[1])


def tau_arg(text: str) -> float | tuple[float, float]:
    """An argparse type for one temperature or a range ``LOW:HIGH`` (``--taus 1.15 1.0:1.5``)."""
    tau = number_or_range(text)
    if tau is None:
        raise argparse.ArgumentTypeError(f"expected a temperature or a range LOW:HIGH (e.g. 1.15 or 1.0:1.5), got {text!r}")
    return tau


def optional(kind: type):
    """An argparse type that also reads 'none' as None (for ``int | None`` fields such as --steps)."""

    def parse(text: str):
        return None if text.strip().lower() in ("none", "null") else kind(text)

    parse.__name__ = kind.__name__
    return parse


def config_from(cls: type, ns: argparse.Namespace):
    """The dataclass ``cls`` made from the parsed options its fields name."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in vars(ns).items() if k in names})
