"""Which keys drive which action on the play page, and how a vector observation is labelled.

A control scheme is plain data (written into the page's ``play.json``), chosen by the model's real env id, with a
generic scheme for any other Discrete or Box action space:

* ``{"type": "discrete", "bindings": [{"keys": [...], "action": i, "label": ...}], "idle": i | "alternate"}``: the
  most recently pressed bound key that is held picks the action; with none held, ``idle`` (an action, or
  ``"alternate"``: the first two bindings' actions in turn, for envs without a no-op such as CartPole);
* ``{"type": "box", "bindings": [{"keys": [...], "dim": d, "value": v, "label": ...}], "idle": [...]}``: each
  dimension takes the value of its most recently pressed held key, else its idle value.

Keys are ``KeyboardEvent.code`` names (``ArrowLeft``, ``KeyA``: the key's place, whatever the keyboard layout), so
arrows and WASD both work.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

LEFT, RIGHT, UP, DOWN = ["ArrowLeft", "KeyA"], ["ArrowRight", "KeyD"], ["ArrowUp", "KeyW"], ["ArrowDown", "KeyS"]
DIGITS = [f"Digit{i}" for i in range(1, 10)]


def _known(env_id: str | None) -> dict[str, Any] | None:
    # ViZDoom's Discrete actions for the buttons [MOVE_LEFT, MOVE_RIGHT] with one pressed at a time are, in its
    # gymnasium wrapper's order (itertools.product((0, 1), repeat=2)): 0 none, 1 MOVE_RIGHT, 2 MOVE_LEFT.
    return {
        "CarRacing-v3": {"type": "box", "idle": [0.0, 0.0, 0.0], "bindings": [
            {"keys": LEFT, "dim": 0, "value": -1.0, "label": "steer left"},
            {"keys": RIGHT, "dim": 0, "value": 1.0, "label": "steer right"},
            {"keys": UP, "dim": 1, "value": 1.0, "label": "gas"},
            {"keys": DOWN, "dim": 2, "value": 0.8, "label": "brake"}]},
        "CartPole-v1": {"type": "discrete", "idle": "alternate", "idle_label": "left and right pushes in turn",
                        "bindings": [{"keys": LEFT, "action": 0, "label": "push left"},
                                     {"keys": RIGHT, "action": 1, "label": "push right"}]},
        "dm_control/cartpole-swingup-v0": {"type": "box", "idle": [0.0], "bindings": [
            {"keys": LEFT, "dim": 0, "value": -1.0, "label": "push the cart left"},
            {"keys": RIGHT, "dim": 0, "value": 1.0, "label": "push the cart right"}]},
        "VizdoomTakeCover-v1": {"type": "discrete", "idle": 0, "idle_label": "stand still",
                                "bindings": [{"keys": LEFT, "action": 2, "label": "move left"},
                                             {"keys": RIGHT, "action": 1, "label": "move right"}]},
    }.get(env_id or "")


def _generic_discrete(space: spaces.Discrete) -> dict[str, Any]:
    n, start = int(space.n), int(space.start)
    bindings = [{"keys": LEFT, "action": start, "label": f"action {start}"}]
    if n > 1:
        bindings.append({"keys": RIGHT, "action": start + n - 1, "label": f"action {start + n - 1}"})
    bindings += [{"keys": [DIGITS[i]], "action": start + i, "label": f"action {start + i}"} for i in range(min(n, 9))]
    return {"type": "discrete", "idle": start, "idle_label": f"action {start}", "bindings": bindings}


def _generic_box(space: spaces.Box) -> dict[str, Any]:
    low, high = space.low.reshape(-1).astype(float), space.high.reshape(-1).astype(float)
    idle = np.clip(0.0, low, high)
    bindings = []
    for dim, (minus, plus) in enumerate([(LEFT, RIGHT), (DOWN, UP)][: low.size]):
        name = f"action[{dim}]"
        bindings.append({"keys": minus, "dim": dim, "value": float(low[dim]), "label": f"{name} = {low[dim]:g}"})
        bindings.append({"keys": plus, "dim": dim, "value": float(high[dim]), "label": f"{name} = {high[dim]:g}"})
    return {"type": "box", "idle": [float(v) for v in idle], "bindings": bindings}


def control_scheme(action_space: spaces.Space, env_id: str | None = None) -> dict[str, Any]:
    """The keys of the page for ``action_space`` (the real env ``env_id``'s own scheme where there is one)."""
    if not isinstance(action_space, (spaces.Discrete, spaces.Box)):
        raise ValueError(f"The play page drives Discrete and Box action spaces; this model's is {action_space}.")
    known = _known(env_id)
    if known is not None and known["type"] == ("discrete" if isinstance(action_space, spaces.Discrete) else "box"):
        scheme = known
    elif isinstance(action_space, spaces.Discrete):
        scheme = _generic_discrete(action_space)
    else:
        if not np.all(np.isfinite(action_space.low)) or not np.all(np.isfinite(action_space.high)):
            raise ValueError(f"The play page maps keys to the bounds of a Box action space; {action_space} is unbounded.")
        scheme = _generic_box(action_space)
    if isinstance(action_space, spaces.Box):
        scheme = {**scheme, "low": [float(v) for v in action_space.low.reshape(-1)],
                  "high": [float(v) for v in action_space.high.reshape(-1)]}
    check_scheme(scheme, action_space)
    return scheme


def scheme_actions(scheme: dict[str, Any]) -> list[Any]:
    """Every action the scheme can produce with one bound key held, and idle (what the page can send)."""
    if scheme["type"] == "discrete":
        idle = [b["action"] for b in scheme["bindings"][:2]] if scheme["idle"] == "alternate" else [scheme["idle"]]
        return [b["action"] for b in scheme["bindings"]] + idle
    out = [list(scheme["idle"])]
    for b in scheme["bindings"]:
        a = list(scheme["idle"])
        a[b["dim"]] = b["value"]
        out.append(a)
    return out


def check_scheme(scheme: dict[str, Any], action_space: spaces.Space) -> None:
    """Every action the page can send lies in ``action_space`` (a scheme written for another space fails here)."""
    for a in scheme_actions(scheme):
        value = np.asarray(a, dtype=action_space.dtype if isinstance(action_space, spaces.Box) else np.int64)
        if not action_space.contains(value.reshape(action_space.shape) if isinstance(action_space, spaces.Box) else value):
            raise ValueError(f"The control scheme sends {a}, outside the action space {action_space}.")


#: names of the dimensions of vector observations, by real env id
OBSERVATION_LABELS = {
    "CartPole-v1": ["cart position", "cart velocity", "pole angle", "pole angular velocity"],
}
#: envs whose vector observation the page can also draw as a picture (a sketch in play.js)
SKETCHES = {"CartPole-v1": "cartpole"}


def observation_labels(env_id: str | None, dim: int) -> list[str]:
    labels = OBSERVATION_LABELS.get(env_id or "")
    return list(labels) if labels is not None and len(labels) == dim else [f"obs[{i}]" for i in range(dim)]
