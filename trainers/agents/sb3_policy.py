"""A stable-baselines3 agent as data: its policy's weights in safetensors and its constructor in JSON, never pickle.

SB3's own ``.zip`` holds cloudpickled objects (loading one can run code), so agents that are shipped, exported or
found by name are stored with :func:`save_policy` instead: ``policy.safetensors`` + ``policy.json`` (the algorithm,
the policy class, the spaces and the constructor's arguments; classes such as the activation function are named and
resolved only from torch, stable-baselines3 and gym-dream's own policies). :class:`SB3Policy` loads one for acting (``predict``), the way the
agent acted when it was saved; it is not for further training.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

from gym_dream.checkpoint import atomic_write_bytes, atomic_write_tensors
from gym_dream.spaces import space_from_dict, space_to_dict
from trainers._moved import MOVED

POLICY_FORMAT = "gym-dream-sb3-policy"
POLICY_CARD, POLICY_WEIGHTS = "policy.json", "policy.safetensors"
#: where the classes a policy names may come from (resolved by import of these libraries, never from the file)
TRUSTED_MODULES = ("torch.nn", "torch.optim", "stable_baselines3.", "trainers.agents.dueling_dqn")
#: per algorithm, the parts of its policy that acting never uses (value functions, critics, target networks): a stored
#: policy is for acting, so they are left out of policy.safetensors (half of a DQN's or PPO's weights) and stay at their
#: initial values when it is loaded
NOT_FOR_ACTING = {
    "ppo": ("value_net.", "mlp_extractor.value_net."),
    "a2c": ("value_net.", "mlp_extractor.value_net."),
    "dqn": ("q_net_target.",),
    "sac": ("critic.", "critic_target."),
    "td3": ("critic.", "critic_target.", "actor_target."),
}


def _encode(value: Any) -> Any:
    if inspect.isclass(value):
        return {"class": f"{value.__module__}.{value.__qualname__}"}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"Cannot store the policy argument {value!r} ({type(value).__name__}) as JSON.")


def resolve_class(name: str) -> type:
    """A class named by its module path, from torch, stable-baselines3 or gym-dream's policies only."""
    module, _, attr = name.rpartition(".")
    module = MOVED.get(module, module)  # an agent stored before trainers/ was grouped names its class's old module
    if not any(module == m.rstrip(".") or module.startswith(m) for m in TRUSTED_MODULES):
        raise ValueError(f"{name!r} is not a class of {', '.join(m.rstrip('.') for m in TRUSTED_MODULES)}: a stored policy may only name those.")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not inspect.isclass(obj):
        raise ValueError(f"{name!r} is not a class.")
    return obj


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        return resolve_class(value["class"]) if set(value) == {"class"} else {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def save_policy(agent, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Store the policy of an SB3 algorithm object (PPO, A2C, DQN, SAC, TD3) in ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    policy = agent.policy
    params = {k: v for k, v in policy._get_constructor_parameters().items()
              if k not in ("observation_space", "action_space", "lr_schedule")}
    algo = type(agent).__name__.lower()
    left_out = list(NOT_FOR_ACTING.get(algo, ()))
    card = {"format": POLICY_FORMAT, "format_version": 1, "algo": algo,
            "policy_class": _encode(type(policy))["class"], "observation_space": space_to_dict(policy.observation_space),
            "action_space": space_to_dict(policy.action_space), "constructor": _encode(params), "left_out": left_out, **(extra or {})}
    atomic_write_tensors(path / POLICY_WEIGHTS, {k: v.detach().cpu().contiguous() for k, v in policy.state_dict().items()
                                                 if not k.startswith(tuple(left_out))})
    atomic_write_bytes(path / POLICY_CARD, (json.dumps(card, indent=2) + "\n").encode())
    return path


def _for_acting_only(policy) -> None:
    """No gradients anywhere: a stored policy only acts. gSDE's exploration matrices (``use_sde``) are drawn from the
    weights with gradients, which makes them non-leaf tensors that cannot be sent to the worker processes of a parallel
    real evaluation; they are detached here (acting deterministically never reads them)."""
    from torch.distributions import Normal

    policy.requires_grad_(False)
    for module in policy.modules():
        dist = getattr(module, "action_dist", None)
        for name in ("exploration_mat", "exploration_matrices"):
            value = getattr(dist, name, None)
            if value is not None and hasattr(value, "detach"):
                setattr(dist, name, value.detach())
        if isinstance(getattr(dist, "weights_dist", None), Normal):
            dist.weights_dist = Normal(dist.weights_dist.loc.detach(), dist.weights_dist.scale.detach())


def is_policy_dir(path: str | Path) -> bool:
    return (Path(path) / POLICY_CARD).is_file()


class SB3Policy:
    """A stored SB3 policy, acting like the agent it was saved from (SB3's ``predict``), one decision per call. An agent
    trained to hold its actions (``action_hold`` in the card) is loaded by ``trainers.agents.stored_agent.load_agent`` as
    :class:`~trainers.agents.action_hold.HeldActions` around this; use that to act as it was trained."""

    def __init__(self, policy, card: dict[str, Any]):
        self.policy, self.card = policy, card
        self.observation_space, self.action_space = policy.observation_space, policy.action_space

    @classmethod
    def load(cls, path: str | Path) -> "SB3Policy":
        from safetensors.torch import load_file

        from gym_dream.checkpoint import read_json

        path = Path(path)
        card = read_json(path / POLICY_CARD, "stored SB3 policy")
        if card.get("format") != POLICY_FORMAT:
            raise ValueError(f"{path} is not a stored SB3 policy (format {card.get('format')!r}).")
        policy_cls = resolve_class(card["policy_class"])
        policy = policy_cls(space_from_dict(card["observation_space"]), space_from_dict(card["action_space"]), lambda _: 0.0,
                            **_decode(card["constructor"]))
        left_out = tuple(card.get("left_out") or ())  # the parts acting never uses, not stored (older cards: none)
        missing, unexpected = policy.load_state_dict(load_file(str(path / POLICY_WEIGHTS)), strict=False)
        absent = [k for k in missing if not k.startswith(left_out)] if left_out else list(missing)
        if absent or unexpected:
            raise ValueError(f"{path / POLICY_WEIGHTS} does not fit its card's policy: missing {absent[:4]}, unexpected "
                             f"{list(unexpected)[:4]}. Save the agent again (trainers.agents.sb3_policy.save_policy).")
        policy.set_training_mode(False)
        _for_acting_only(policy)
        return cls(policy, card)

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = True):
        return self.policy.predict(observation, state, episode_start, deterministic)

    def action_probabilities(self, observation):
        """(n, actions) probabilities of each Discrete action for a batch of observations (an actor-critic policy's
        categorical distribution), or None when the policy has none (a DQN's greedy Q-network)."""
        import torch

        if not hasattr(self.policy, "get_distribution"):
            return None
        with torch.no_grad():
            obs, _ = self.policy.obs_to_tensor(observation)
            dist = self.policy.get_distribution(obs).distribution
        probs = getattr(dist, "probs", None)
        return None if probs is None else probs.cpu().numpy().reshape(len(observation), -1)
