"""``Dream-Model-v0``: the dream of any model you pass, of any env.

The other ``Dream-*`` ids each stand for one real env and ship (or name) its default model. This one stands for
none: it is the dream of the model given as ``model=`` (a directory, a model name or a loaded ``WorldModel``),
whatever env it was trained on, with the model card's horizon as its ``TimeLimit``: ``dream_env.max_episode_steps``
if the card sets one, else ``env.max_episode_steps`` (where the real env's episodes were cut)::

    >>> import gymnasium as gym
    >>> import gym_dream
    >>> env = gym.make("Dream-Model-v0", model="cartpole")      # any model directory or name
    >>> env.spec.id, env.unwrapped.model.card["env"]["id"]
    ('Dream-Model-v0', 'CartPole-v1')

It is how a model of an env outside gym-dream's catalogue is trained in and evaluated from the command line
(``gym-dream train ppo --model models/lunar``); the real env an agent is then scored on is the card's ``env.id``.
``max_episode_steps=`` (``gym.make``'s own argument) replaces the card's horizon.

A ``dreamer`` model fitted with gym-dream's defaults starts its dream episodes *anywhere* in the real data (its bank
holds filtered real states from every step of the training episodes) and its card's horizon is short (64 steps):
MBPO's branched rollouts as an environment (trainers/fit/start_bank.py says why and what was measured). Such an
episode is a stretch of an imagined episode, truncated (not terminated) at the horizon, so an agent that bootstraps
at truncation (SB3 does) learns the return past it. ``max_episode_steps=`` gives longer ones.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from gym_dream.envs.registry import MODEL_DREAM_ID as ID
from gym_dream.models import WorldModel
from gym_dream.store import resolve_model


def _model(model: Any, device: str) -> WorldModel:
    if model is None:
        raise ValueError(f"{ID} is the dream of the model you pass: gym.make({ID!r}, model='models/my-env') "
                         f"(a model directory, a model name or a loaded WorldModel).")
    return resolve_model(model, device=device)


def card_horizon(model: WorldModel) -> int | None:
    """The dream horizon a model's card gives (``dream_env.max_episode_steps``, else ``env.max_episode_steps``), or None."""
    card = model.card or {}
    horizon = (card.get("dream_env") or {}).get("max_episode_steps", (card.get("env") or {}).get("max_episode_steps"))
    if horizon is None:
        return None
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"The model card's max_episode_steps (the dream horizon) must be an integer >= 1, got {horizon!r}. "
                         f"Fix the card, or pass gym.make({ID!r}, model=..., max_episode_steps=N).")
    return horizon


def make_model_dream(model: Any = None, device: str = "cpu", **kwargs: Any) -> gym.Env:
    """Entry point of ``Dream-Model-v0``: a :class:`~gym_dream.envs.dream_env.DreamEnv` of ``model`` within the
    card's horizon (``gym.make``'s ``max_episode_steps`` adds its own ``TimeLimit`` outside this one)."""
    from gym_dream.envs.dream_env import DreamEnv

    loaded = _model(model, device)
    env = DreamEnv(model=loaded, device=device, **kwargs)
    horizon = card_horizon(loaded)
    return env if horizon is None else TimeLimit(env, horizon)


def make_model_dream_vec(num_envs: int = 1, model: Any = None, device: str = "cpu", max_episode_steps: int | None = None,
                         **kwargs: Any):
    """Vector entry point of ``Dream-Model-v0``: a :class:`~gym_dream.envs.dream_vector_env.DreamVectorEnv` of ``model``
    whose horizon is ``max_episode_steps``, else the card's."""
    from gym_dream.envs.dream_vector_env import DreamVectorEnv

    loaded = _model(model, device)
    horizon = card_horizon(loaded) if max_episode_steps is None else max_episode_steps
    return DreamVectorEnv(num_envs, model=loaded, device=device, max_episode_steps=horizon, **kwargs)
