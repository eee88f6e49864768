"""The one catalogue of the envs gym-dream knows: which real env, which dream id, which model name, which spaces.

Registration (:mod:`gym_dream.envs.registry`), the space checks of the dream envs
(:func:`gym_dream.envs.core.check_model_fits`), the default model of
:class:`~gym_dream.wrappers.DreamObservation`, the trainers' real-env recipes (``trainers/data/real_envs.py``), the
experiment recipes and every benchmark read this table; nothing else lists these facts.

It holds only what the runtime needs (plain data, no imports of the real envs): how to *make* a real env, how
its frames are preprocessed and which policy collects its data are the trainers' business and live in
``trainers/data/real_envs.py``, keyed by the same real id.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class KnownEnv:
    """A real env gym-dream has a dream id for."""

    real_id: str
    """the real Gymnasium id (what ``gym.make`` and ``DreamObservation`` run)"""
    dream_id: str
    """the registered ``Dream-*`` id"""
    model: str
    """the name of its default model (shipped in ``gym_dream/bundled/`` or installed by the user)"""
    max_episode_steps: int | None
    """the dream's horizon (a ``TimeLimit``: sets ``truncated``), the real env's episode length"""
    action_space: dict[str, Any] | None = None
    """the real env's action space, as :func:`gym_dream.spaces.space_to_dict` writes it (None: not checked)"""
    observation_shape: tuple[int, ...] | None = None
    """the real env's raw observation shape (None: not checked)"""
    extra: str | None = None
    """the pip extra that provides the real env (``pip install "gym-dream[<extra>]"``)"""


CATALOGUE: tuple[KnownEnv, ...] = (
    KnownEnv("CartPole-v1", "Dream-CartPole-v0", "cartpole", 500,
             {"type": "Discrete", "n": 2, "start": 0}, (4,)),
    KnownEnv("CarRacing-v3", "Dream-CarRacing-v0", "carracing", 1000,
             {"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0, 0.0, 0.0], "high": 1.0}, (96, 96, 3),
             extra="box2d"),
    KnownEnv("VizdoomTakeCover-v1", "Dream-DoomTakeCover-v0", "doom-takecover", 2100,
             {"type": "Discrete", "n": 3, "start": 0}, (240, 320, 3), extra="doom"),
    # the continuous task of the offline result (results/offline.md): a dream fitted from a Minari dataset
    KnownEnv("Pendulum-v1", "Dream-Pendulum-v0", "pendulum", 200,
             {"type": "Box", "shape": [1], "dtype": "float32", "low": -2.0, "high": 2.0}, (3,)),
    # 1000 control steps at PlaNet's action repeat of 8; the spaces depend on the observation mode (pixels or state)
    KnownEnv("dm_control/cartpole-swingup-v0", "Dream-CartpoleSwingup-v0", "dmc-cartpole-swingup", 125, extra="dmc"),
    # PlaNet's action repeats: 4 for cheetah-run (250 agent steps), 2 for walker-walk (500)
    KnownEnv("dm_control/cheetah-run-v0", "Dream-CheetahRun-v0", "dmc-cheetah-run", 250, extra="dmc"),
    KnownEnv("dm_control/walker-walk-v0", "Dream-WalkerWalk-v0", "dmc-walker-walk", 500, extra="dmc"),
)


def by_real_id(real_id: str | None) -> KnownEnv | None:
    """The catalogue entry of a real env id (None for an env gym-dream has no entry for)."""
    return next((e for e in CATALOGUE if e.real_id == real_id), None)


def by_dream_id(dream_id: str | None) -> KnownEnv | None:
    """The catalogue entry of a ``Dream-*`` id (None for ids declared only by model packages)."""
    return next((e for e in CATALOGUE if e.dream_id == dream_id), None)
