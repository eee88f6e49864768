"""Dreams of a model with several dynamics members: which member drives each step, MOPO's penalty on the members'
disagreement and MOReL's halt where it is too large; what :class:`~gym_dream.envs.dream_env.DreamEnv` and
:class:`~gym_dream.envs.dream_vector_env.DreamVectorEnv` check and run for ``member=``, ``uncertainty_penalty=``,
``uncertainty_limit=`` and ``uncertainty_halt_reward=``."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from gym_dream.models import State, WorldModel
from gym_dream.models.members import MEMBER_CHOICES

#: the default member choice: one member per dream episode (a whole episode in one plausible world)
DEFAULT_MEMBER = "random_per_episode"


def check_member(member: Any, model: WorldModel) -> str:
    """``member``: which dynamics member drives each dream step (see :mod:`gym_dream.models.members`);
    ``None`` is :data:`DEFAULT_MEMBER`. Every choice is the same dream for a single-member model."""
    if member is None:
        return DEFAULT_MEMBER
    if member not in MEMBER_CHOICES:
        raise ValueError(f"member must be one of {MEMBER_CHOICES} (or None: {DEFAULT_MEMBER!r}), got {member!r}.")
    return member


def uncertainty_card(model: WorldModel) -> dict[str, Any]:
    """The card's ``uncertainty`` section (written by ``gym-dream fit`` for models with members > 1)."""
    return (model.card.get("uncertainty") or {}) if isinstance(model.card, dict) else {}


def _single_member_error(arg: str, model: WorldModel) -> ValueError:
    return ValueError(
        f"{arg} needs a model with several dynamics members: this model has members=1, so its disagreement is "
        f"always 0 and {arg} would change nothing. Fit one with members, e.g. "
        f"`gym-dream fit DATA --out DIR --family mdnrnn --members 5`, and pass model=DIR (every shipped model has one member)."
    )


#: the largest ``uncertainty_penalty``: MOPO's lambda is 0.1-5 in practice; above this the penalty of any plausible
#: disagreement (up to 1e32) would overflow float32's rewards to -inf
MAX_UNCERTAINTY_PENALTY = 1e6
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32_number(name: str, value: Any, hint: str) -> float:
    """``value`` as a float that stays finite in float32 (the dtype of the dream's rewards), or a clear error."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number ({hint}), got {value!r} of type {type(value).__name__}.")
    value = float(value)
    if not math.isfinite(value) or abs(value) > _FLOAT32_MAX:
        raise ValueError(f"{name} must be a finite number within float32's range (+-{_FLOAT32_MAX:.3g}: the dream's rewards are "
                         f"float32) ({hint}), got {value!r}.")
    return value


def check_uncertainty(model: WorldModel, penalty: Any, limit: Any, halt_reward: Any) -> tuple[float, float | None, float | None]:
    """Validate ``uncertainty_penalty`` (lambda >= 0, at most :data:`MAX_UNCERTAINTY_PENALTY`, so that
    ``penalty * disagreement`` stays finite in float32), ``uncertainty_limit`` (None, a float > 0, or
    ``"q<p>"``: the card's p-th percentile of held-out disagreement, e.g. ``"q99"``) and
    ``uncertainty_halt_reward`` (None: the card's smallest reward in the training data; else a number finite in
    float32, checked even without a limit). Returns (penalty, limit as a number or None, halt reward or None when
    there is no limit)."""
    hint = "0: off; reward - penalty * disagreement"
    penalty = _float32_number("uncertainty_penalty", penalty, hint)
    if penalty < 0 or penalty > MAX_UNCERTAINTY_PENALTY:
        raise ValueError(f"uncertainty_penalty must be >= 0 and at most {MAX_UNCERTAINTY_PENALTY:g} ({hint}; MOPO uses 0.1-5), "
                         f"got {penalty!r}.")
    if halt_reward is not None:
        halt_reward = _float32_number("uncertainty_halt_reward", halt_reward, "the reward of a step the uncertainty limit halts")
    if penalty > 0 and model.members == 1:
        raise _single_member_error("uncertainty_penalty", model)
    if limit is None:
        return penalty, None, None
    if model.members == 1:
        raise _single_member_error("uncertainty_limit", model)
    held = uncertainty_card(model).get("heldout_disagreement") or {}
    quantiles = held.get("quantiles") or {}
    if isinstance(limit, str):
        key = limit[1:] if limit.startswith("q") else None
        if key not in quantiles:
            have = ", ".join(f"'q{k}'" for k in quantiles) or "none (the card has no held-out disagreement: pass a number)"
            raise ValueError(
                f"uncertainty_limit={limit!r} is not a held-out quantile this model's card records; it has {have}. "
                f"Pass one of those, or a number > 0 in disagreement units."
            )
        try:
            value = float(quantiles[key])
        except (TypeError, ValueError):
            raise ValueError(f"The model card's held-out disagreement quantile q{key} is {quantiles[key]!r}, not a number: "
                             f"fix the card, or pass uncertainty_limit as a number > 0.") from None
    elif isinstance(limit, bool) or not isinstance(limit, numbers.Real):
        raise TypeError(f"uncertainty_limit must be None, a number > 0 or a quantile name such as 'q99', got {limit!r}.")
    else:
        value = float(limit)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"uncertainty_limit must be > 0 and finite (got {limit!r} = {value}).")
    if halt_reward is None:
        halt_reward = uncertainty_card(model).get("reward_min")
        if halt_reward is None:
            raise ValueError(
                "uncertainty_limit needs the reward of the halting step: this model's card has no "
                "uncertainty.reward_min (the smallest reward of its training data). Pass uncertainty_halt_reward=, e.g. 0.0."
            )
        try:
            halt_reward = _float32_number("uncertainty.reward_min", halt_reward, "the card's smallest training reward")
        except (TypeError, ValueError) as e:
            raise ValueError(f"The model card's {e} Fix the card, or pass uncertainty_halt_reward=, e.g. 0.0.") from None
    return penalty, value, halt_reward


def draw_members(model: WorldModel, n: int, member: str, generator: torch.Generator | None) -> torch.Tensor | None:
    """Members for ``n`` starting episodes under ``random_per_episode`` (None otherwise, or for one member)."""
    if model.members == 1 or member != "random_per_episode":
        return None
    return torch.randint(model.members, (n,), generator=generator, device=model.device)


def imagine(model: WorldModel, state: State, action: torch.Tensor, tau: float | torch.Tensor, generator: torch.Generator | None,
            member: str, episode_members: torch.Tensor | None, precision: str = "float32"):
    """One dream step with the env's member choice; the Transition always carries (B,) disagreements."""
    if precision != "float32":
        tr = model.imagine(state, action, tau, generator, precision=precision)
    elif model.members == 1:
        tr = model.imagine(state, action, tau, generator)
    else:
        arg = {"random_per_step": "random", "mean": "mean"}.get(member, episode_members)
        tr = model.imagine(state, action, tau, generator, member=arg)
    if tr.disagreement is None or tr.reward_disagreement is None:
        zero = torch.zeros_like(tr.reward)
        tr = tr._replace(disagreement=zero if tr.disagreement is None else tr.disagreement,
                         reward_disagreement=zero.clone() if tr.reward_disagreement is None else tr.reward_disagreement)
    return tr


def apply_uncertainty(reward: torch.Tensor, terminated: torch.Tensor, disagreement: torch.Tensor, penalty: float,
                      limit: float | None, halt_reward: float | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MOPO and MOReL on one batched step: returns (reward, terminated, halted).

    ``reward - penalty * disagreement``; where ``disagreement > limit`` the episode halts:
    ``terminated`` is True and the reward of that step is ``halt_reward`` (no penalty on top).
    """
    if penalty > 0:
        reward = reward - penalty * disagreement
    if limit is None:
        return reward, terminated, torch.zeros_like(terminated)
    halted = disagreement > limit
    return torch.where(halted, torch.full_like(reward, halt_reward), reward), terminated | halted, halted
