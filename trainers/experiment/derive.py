"""A recipe for any env from its id alone (``gym-dream experiment --env-id ID``): derived from the env's spaces.

What a user who names only an env gets; every choice here is the same for every env (no per-env settings):

- **data**: ``steps`` real steps in all (default :data:`DEFAULT_STEPS`): a third collected by random play, the rest
  in :data:`ROUNDS` collection rounds driven by the agent trained in the latest dream (with exploration noise), each
  followed by a refit on everything collected;
- **model**: the family :data:`FAMILY` (dreamer, chosen by measurement) at its default size, from vectors or from 64x64
  frames (an image observation);
- **agent**: stable-baselines3 with its own defaults, PPO for a discrete action space and SAC for a continuous one,
  :data:`AGENT_STEPS` dream steps, trained at the model's default temperature; a linear CMA-ES controller beside it;
- **evaluation**: the agents on fresh real episodes, random play beside them.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from gymnasium import spaces

from gym_dream.catalogue import by_real_id
from trainers.experiment.recipe import Recipe
from trainers.fit.dispatch import DEFAULT_FAMILY

#: real steps of the whole loop (random collection + the rounds), the same for every env
DEFAULT_STEPS = 50_000
#: collection rounds driven by the dream-trained agent after the random collection
ROUNDS = 2
#: the world-model family a derived recipe fits: ``gym-dream fit``'s default (trainers.fit.dispatch.DEFAULT_FAMILY,
#: chosen by measurement)
FAMILY = DEFAULT_FAMILY
#: dream steps of the SB3 agent (each round's and the final one)
AGENT_STEPS = 200_000


def agent_for(action_space: spaces.Space) -> str:
    """PPO for a discrete action space, SAC for a continuous one (SB3's defaults for both)."""
    if isinstance(action_space, spaces.Discrete):
        return "ppo"
    if isinstance(action_space, spaces.Box):
        return "sac"
    raise ValueError(f"A dream takes a Discrete or a Box action space; this env has {action_space}. Wrap the env so its actions "
                     f"are one of them (e.g. gymnasium.wrappers.FlattenObservation for observations, a Discrete encoding of "
                     f"MultiDiscrete actions), register it, and pass its id.")


def observation_kind(observation_space: spaces.Space) -> str:
    """'image' for an (H, W, 3) uint8 observation, 'vector' for a flat Box; anything else is refused with the fix."""
    if isinstance(observation_space, spaces.Box):
        shape = observation_space.shape
        if len(shape) == 3 and shape[-1] == 3 and observation_space.dtype == np.uint8:
            return "image"
        if len(shape) == 1:
            return "vector"
    raise ValueError(f"gym-dream models see a flat Box (vectors) or an (H, W, 3) uint8 image; this env observes {observation_space}. "
                     f"Wrap it (gymnasium.wrappers.FlattenObservation, or an observation wrapper that renders a frame), register "
                     f"the wrapped env, and pass its id.")


def slug(env_id: str) -> str:
    """A name for files and model packages: ``dm_control/cartpole-swingup-v0`` -> ``cartpole-swingup-v0``."""
    return re.sub(r"[^a-z0-9]+", "-", env_id.split("/")[-1].lower()).strip("-")


def derive_recipe(env_id: str, steps: int = DEFAULT_STEPS, env_kwargs: dict[str, Any] | None = None, family: str = FAMILY,
                  name: str | None = None) -> Recipe:
    """The recipe of ``env_id`` from its spaces (the env is made once to read them); ``family`` (default :data:`FAMILY`)
    fits another world-model family, ``name`` names the run (default: from the env id)."""
    from trainers.data.real_envs import make_real_env

    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 3_000:
        raise ValueError(f"--steps (real steps of the whole loop) must be an integer >= 3000, got {steps!r}.")
    env = make_real_env(env_id, **(env_kwargs or {}))
    try:
        kind = observation_kind(env.observation_space)
        algo = agent_for(env.action_space)
    finally:
        env.close()
    first = steps // (ROUNDS + 1)
    known = by_real_id(env_id)
    name = name or slug(env_id)
    ids = {} if known else {"dream_id": f"Dream-{re.sub(r'[^A-Za-z0-9]+', '', env_id.split('/')[-1].rsplit('-v', 1)[0])}-v0",
                            "model_name": name}
    fit: dict[str, Any] = {"family": family}
    if family == "mdnrnn":
        fit.update(residual=kind == "vector")
    return Recipe(
        name=name, real_id=env_id, taus=(1.0,), main_tau=1.0,
        collect={"steps": first, "workers": 1, "seed": 0, **({"env_kwargs": env_kwargs} if env_kwargs else {})},
        fit=fit,
        cmaes={"generations": 20, "popsize": 32, "rollouts": 4},
        sb3={algo: {"timesteps": AGENT_STEPS}},
        iterate={"rounds": ROUNDS, "steps": (steps - first) // ROUNDS, "agent": algo, "check_episodes": 10},
        episodes=30, sweep_episodes=30, random_episodes=30, **ids,
        reproduce=f"gym-dream experiment --env-id {env_id}" + ("" if steps == DEFAULT_STEPS else f" --steps {steps}")
        + ("" if family == FAMILY else f" --family {family}"),
    )
