"""Real environments: how to make them and how their data is collected (preprocessing, horizon, policy).

Which dream id, model name and spaces belong to a real env is :mod:`gym_dream.catalogue`'s; this module adds
what only the trainers need, keyed by the same real id."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from gym_dream.catalogue import by_real_id
from gym_dream.error import DependencyNotInstalled
from gym_dream.naming import check_real_env_id
from gym_dream.preprocessing import Preprocessing
from gym_dream.wrappers import ActionRepeat


@dataclass(frozen=True)
class RealEnv:
    """A real env and how its observations reach a model."""

    env_id: str
    preprocessing: Preprocessing
    kwargs: dict[str, Any] = field(default_factory=dict)
    collect_policy: str = "random"
    collect_kwargs: dict[str, Any] = field(default_factory=dict)  # the recipe policy's settings
    extra: str | None = None  # the pip extra that provides it (default: the catalogue's)
    module: str | None = None  # imported before gym.make (it registers the id)
    factory: Any = None  # builds the env instead of gym.make: factory(env_id, **kwargs)
    setup: Any = None  # called before each env is made (e.g. to create what parallel instances race for)


def _vizdoom_workdir() -> None:
    # every ViZDoom instance creates ./_vizdoom/ at start; 16 started at once race for it and one dies
    # ("Failed to create ./_vizdoom/ directory: File exists"), so it is made before any of them
    os.makedirs("_vizdoom", exist_ok=True)


REAL_ENVS: dict[str, RealEnv] = {
    "CartPole-v1": RealEnv("CartPole-v1", Preprocessing("vector")),
    "CarRacing-v3": RealEnv(
        "CarRacing-v3",
        # 96x96 -> 64x64 with the dashboard (bottom 12 rows: speed, ABS, steering, gyro) kept:
        # speed is information the controller needs and the frame is all the model sees.
        Preprocessing("image", size=(64, 64)),
        # OU noise (steer around 0, some gas, brake now and then: a brake process centred below 0 is
        # clipped to 0) that for stretches also follows the road, so the data covers the whole track
        collect_policy="road_noise",
        collect_kwargs={"mean": [0.0, 0.2, -0.4], "sigma": [0.15, 0.06, 0.1], "theta": 0.1, "jitter": [0.1, 0.12, 0.0]},
    ),
    "VizdoomTakeCover-v1": RealEnv(
        "VizdoomTakeCover-v1",
        # the 240x320 screen squashed to 64x64 as in World Models; the game variable (health) is not used
        Preprocessing("image", key="screen", size=(64, 64)),
        kwargs={"max_episode_steps": 2100},  # the paper's horizon: 60 s at 35 frames/s
        # random actions held for a while (World Models held each for 1-10 steps): the player walks about
        # and also gets pinned against the walls, which a dream must learn is deadly (a controller that
        # only ever moves right found a dream trained on 1-10 step holds believed it safe)
        collect_policy="sticky",
        collect_kwargs={"max_hold": 25},
        module="vizdoom.gymnasium_wrapper",
        setup=_vizdoom_workdir,
    ),
}


#: DeepMind Control tasks (through shimmy) and PlaNet's action repeat for each
DMC_ACTION_REPEAT = {
    "dm_control/cartpole-swingup-v0": 8, "dm_control/cheetah-run-v0": 4, "dm_control/walker-walk-v0": 2,
    "dm_control/reacher-easy-v0": 4, "dm_control/finger-spin-v0": 2, "dm_control/ball_in_cup-catch-v0": 4,
}


def make_dmc(env_id: str, obs: str = "pixels", action_repeat: int | None = None, size: int = 64, camera_id: int = 0, **kwargs: Any) -> gym.Env:
    """A DeepMind Control task as PlaNet sees it: ``obs="pixels"`` (size x size x 3 frames, rendered
    headless with MuJoCo's EGL backend, only after each repeated action) or ``"state"`` (the flattened
    low-dimensional state, float32: the fast path). Actions are repeated ``action_repeat`` times."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    import shimmy  # noqa: F401  (registers the dm_control/* ids)

    if obs not in ("pixels", "state"):
        raise ValueError(f"obs must be 'pixels' or 'state', got {obs!r}.")
    repeat = DMC_ACTION_REPEAT.get(env_id, 1) if action_repeat is None else action_repeat
    env = gym.make(env_id, render_mode="rgb_array", render_kwargs={"width": size, "height": size, "camera_id": camera_id}, **kwargs)
    env = ActionRepeat(env, repeat) if repeat > 1 else env
    if obs == "pixels":
        return gym.wrappers.AddRenderObservation(env, render_only=True)
    env = gym.wrappers.FlattenObservation(env)
    return gym.wrappers.TransformObservation(env, lambda o: o.astype(np.float32),
                                             gym.spaces.Box(-np.inf, np.inf, env.observation_space.shape, np.float32))


def recipe(env_id: str, env_kwargs: dict[str, Any] | None = None) -> RealEnv:
    """The recipe for ``env_id`` (a vector default for unknown envs with Box observations)."""
    if env_id in REAL_ENVS:
        return REAL_ENVS[env_id]
    if env_id.startswith("dm_control/"):
        pixels = (env_kwargs or {}).get("obs", "pixels") == "pixels"
        return RealEnv(env_id, Preprocessing("image", size=(64, 64)) if pixels else Preprocessing("vector"),
                       collect_policy="random", extra="dmc", factory=make_dmc)
    return RealEnv(env_id, Preprocessing("vector"))


def make_real_env(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make`` with a clear message when the env's optional dependency is missing.

    ``env_id`` must be a plain registered id (``Name-vN``, ``namespace/Name-vN``): it often comes from a model card or
    a dataset, and ``gym.make("pkg.mod:Name-v0")`` would import ``pkg.mod`` (:func:`gym_dream.naming.check_real_env_id`).
    """
    check_real_env_id(env_id)
    r = recipe(env_id, kwargs)
    try:
        if r.module:
            importlib.import_module(r.module)
        if r.setup is not None:
            r.setup()
        if r.factory is not None:
            return r.factory(env_id, **{**r.kwargs, **kwargs})
        return gym.make(env_id, **{**r.kwargs, **kwargs})
    except (gym.error.DependencyNotInstalled, ImportError) as e:
        known = by_real_id(env_id)
        extra = r.extra or (known.extra if known else None) or "train"
        raise DependencyNotInstalled(f"{env_id} needs extra packages: pip install \"gym-dream[{extra}]\" ({e})") from e


# -- which dream an agent trains in, and which real env it is scored on --------------------------
#: the dream id of a command given neither --env-id nor --model (the README's first example)
DEFAULT_DREAM_ID = "Dream-CartPole-v0"


def dream_id_for(env_id: str | None, model: Any = None) -> str:
    """The ``Dream-*`` id a command runs: ``env_id`` as given; else the id of ``model`` (a registered id whose real env
    is the model card's: its own ``dream_env.id``, or the catalogue's for its real env, as long as that id's horizon is
    the one the card sets in ``dream_env.max_episode_steps``), else ``Dream-Model-v0`` (the dream of any model, its
    real env and horizon from the card); with no model either, ``Dream-CartPole-v0``."""
    if env_id is not None:
        return check_dream_id(env_id)
    if model is None:
        return DEFAULT_DREAM_ID
    from gym_dream.envs.registry import MODEL_DREAM_ID
    from gym_dream.store import resolve_model

    card = resolve_model(model).card
    real = (card.get("env") or {}).get("id")
    horizon = (card.get("dream_env") or {}).get("max_episode_steps")  # a model's own dream horizon (a dreamer fit's 64)
    for candidate in ((card.get("dream_env") or {}).get("id"), getattr(by_real_id(real), "dream_id", None)):
        spec = gym.registry.get(candidate) if isinstance(candidate, str) else None
        if spec is not None and real is not None and spec.kwargs.get("real_env_id") == real \
                and horizon in (None, spec.max_episode_steps):
            return candidate
    return MODEL_DREAM_ID


def check_dream_id(env_id: Any) -> str:
    """``env_id`` where a command runs a dream (``--env-id`` of train, evaluate, dream...): a real env's id (``CartPole-v1``)
    is a clear error naming its ``Dream-*`` id; an unknown id is left to ``gym.make`` (which suggests close ones)."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"--env-id must be a Dream-* id such as {DEFAULT_DREAM_ID}, got {env_id!r}.")
    spec = gym.registry.get(env_id)
    if spec is None or str(spec.entry_point).startswith("gym_dream."):
        return env_id
    from gym_dream.envs.registry import MODEL_DREAM_ID

    dream = next((s.id for s in gym.registry.values()
                  if str(s.entry_point).startswith("gym_dream.") and s.kwargs.get("real_env_id") == env_id), None)
    fix = f"pass --env-id {dream}" if dream else f"pass --env-id {MODEL_DREAM_ID} --model MODEL (the dream of a model of {env_id})"
    raise ValueError(f"--env-id {env_id} is a real env, not a dream: agents are trained and scored in a dream of it; {fix}.")


def real_env_of(dream_id: str, model: Any = None) -> str:
    """The real env an agent trained in ``dream_id`` is scored on: the id's own, else (``Dream-Model-v0``) the one
    ``model``'s card names (made with the card's env kwargs, as every real episode is: :mod:`trainers.evaluation.rollout`)."""
    real = gym.spec(dream_id).kwargs.get("real_env_id")
    if real is not None:
        return real
    if model is None:
        raise ValueError(f"{dream_id} is the dream of the model you pass: give --model (a model directory or name).")
    from gym_dream.store import resolve_model

    real = (resolve_model(model).card.get("env") or {}).get("id")
    if not isinstance(real, str):
        raise ValueError(f"The card of {model} names no real env (env.id), so its agents cannot be scored on one.")
    return real
