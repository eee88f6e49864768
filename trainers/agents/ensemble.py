"""Several agents acting as one: a vote that needs no choosing among them.

Agents trained in the same dream with different seeds differ more in the real env than the dream can tell
(results/trust.md: PPO seeds at one tau span 310-895 real steps on Doom, and the dream ranks them close to chance), so
keeping the one the dream likes best is close to keeping a seed at random. An ensemble keeps them all, and uses no
real episode to do so:

- **Discrete actions**: each member's action distribution is averaged (an actor-critic policy's categorical
  probabilities; a member without one, a DQN or a controller, counts as all its weight on its own greedy action), and the
  ensemble acts by the most probable action (``deterministic=True``, ties to the lowest action) or samples the average.
- **Box actions**: the mean of the members' actions (each ``deterministic`` as asked), clipped to the space. A mean
  helped PPO seeds on CarRacing (759 for three voting, 671 the dream's single choice) but not linear controllers from
  separate CMA-ES searches: five of them voting scored 235 ± 31 under one of them alone on the same 100 CarRacing
  tracks (results/tau_range.md), and the dream barely saw it. Score a continuous vote against a member.

Stored as data like its members: ``ensemble.json`` (format, the vote, the members' relative directories) and a copy of
each member under ``members/<k>/`` (a controller or a stored SB3 policy), so a shipped ensemble is one self-contained
folder. ``trainers.agents.stored_agent.load_agent`` reads it like any other agent; ``gym-dream ensemble OUT AGENT...`` writes one.
Reading and writing take the member loader (``load_member``, ``trainers.agents.stored_agent.load_stored_agent``, which reads
agents stored as data and nothing else) as an argument: an ensemble holds stored agents of every kind, and this module
knows none of them. A member is always a directory inside the ensemble's folder, never an SB3 ``.zip`` (cloudpickle).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
from gymnasium import spaces

from gym_dream.checkpoint import atomic_write_bytes, read_json
from gym_dream.error import DataFormatError

ENSEMBLE_FORMAT = "gym-dream-agent-ensemble"
ENSEMBLE_CARD = "ensemble.json"
MEMBERS_DIR = "members"


class AgentEnsemble:
    """``members`` (agents with SB3's ``predict`` on one shared observation and action space) acting as one."""

    def __init__(self, members: list[Any], card: dict[str, Any] | None = None):
        if len(members) < 1:
            raise ValueError("An ensemble needs at least one member agent.")
        first = members[0]
        for k, m in enumerate(members[1:], 1):
            if m.observation_space.shape != first.observation_space.shape:
                raise ValueError(f"Ensemble member {k} reads observations of shape {m.observation_space.shape}, member 0 reads "
                                 f"{first.observation_space.shape}: every member must be trained on the same world model's features.")
            if m.action_space != first.action_space:
                raise ValueError(f"Ensemble member {k} acts in {m.action_space}, member 0 in {first.action_space}: every member must "
                                 "act in the same action space.")
        for k, m in enumerate(members):
            if hasattr(m, "bind"):
                raise ValueError(f"Ensemble member {k} is a planner (it plans from the env's model state); an ensemble takes stored "
                                 "agents: controllers and SB3 policies.")
        self.members = list(members)
        self.observation_space, self.action_space = first.observation_space, first.action_space
        self.card = dict(card or {})
        self.rng = np.random.default_rng(0)

    def begin_episode(self, seed: int | None = None) -> None:
        """Restart the sampling (``deterministic=False``) and every member's own noise from the episode's seed."""
        self.rng = np.random.default_rng(0 if seed is None else [0, int(seed)])
        for m in self.members:
            if hasattr(m, "begin_episode"):
                m.begin_episode(seed)

    def _member_actions(self, m: Any, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        actions, state = m.predict(obs, deterministic=deterministic)
        if state is not None:
            raise ValueError("An ensemble member returned a recurrent state; ensembles of recurrent policies are not supported.")
        return np.asarray(actions).reshape(len(obs), *self.action_space.shape)

    def action_probabilities(self, observation: np.ndarray) -> np.ndarray:
        """(n, actions): the members' action distributions averaged (Discrete action spaces)."""
        space = self.action_space
        if not isinstance(space, spaces.Discrete):
            raise ValueError(f"Action probabilities are for Discrete action spaces; this ensemble acts in {space}.")
        obs = np.asarray(observation, np.float32)
        probs = np.zeros((len(obs), int(space.n)))
        for m in self.members:
            p = m.action_probabilities(obs) if hasattr(m, "action_probabilities") else None
            if p is None:  # a greedy member: all its weight on its own action
                p = np.zeros_like(probs)
                p[np.arange(len(obs)), self._member_actions(m, obs, True).astype(np.int64) - space.start] = 1.0
            probs += p
        return probs / len(self.members)

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        """SB3-style: (action, None) for one observation or a batch."""
        obs = np.asarray(observation, np.float32)
        single = obs.shape == self.observation_space.shape
        batch = obs[None] if single else obs
        space = self.action_space
        if isinstance(space, spaces.Discrete):
            probs = self.action_probabilities(batch)
            if deterministic:
                index = np.argmax(probs, axis=1)
            else:
                index = (self.rng.random((len(batch), 1)) > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=int(space.n) - 1)
            actions = (index + space.start).astype(np.int64)
        else:
            mean = np.mean([self._member_actions(m, batch, deterministic).astype(np.float64) for m in self.members], axis=0)
            actions = np.clip(mean, space.low, space.high).astype(space.dtype)
        return (actions[0] if single else actions), None

    @classmethod
    def load(cls, path: str | Path, load_member: Callable[[Path], Any]) -> "AgentEnsemble":
        """The ensemble stored in ``path``, each member read by ``load_member`` (``trainers.agents.stored_agent.load_stored_agent``,
        which reads agents stored as data only).

        Every member is checked before any is read: it must be what :func:`save_ensemble` writes, a directory inside
        ``path`` (a controller or a stored SB3 policy, as data); a file (an SB3 ``.zip``, which can run code when
        loaded), an absolute path or one that leads outside the folder is refused."""
        path = Path(path)
        card = read_json(path / ENSEMBLE_CARD, "agent ensemble card")
        if not isinstance(card, dict) or card.get("format") != ENSEMBLE_FORMAT:
            raise ValueError(f"{path} is not an agent ensemble (format {card.get('format') if isinstance(card, dict) else None!r}).")
        rels = card.get("members")
        if not isinstance(rels, list) or not rels:
            raise DataFormatError(f"{path / ENSEMBLE_CARD}: members must be a non-empty list of member directories (members/0, ...).")
        root = path.resolve()
        paths = []
        for rel in rels:
            member = (path / rel).resolve() if isinstance(rel, str) and rel and not Path(rel).is_absolute() else None
            if member is None or root not in member.parents:
                raise DataFormatError(f"{path / ENSEMBLE_CARD} names the member {rel!r} outside its folder; an ensemble holds its "
                                      f"members (as {MEMBERS_DIR}/<k> directories).")
            if not member.is_dir():
                raise DataFormatError(f"{path / ENSEMBLE_CARD} names the member {rel!r}, which is not a directory: an ensemble's "
                                      f"members are controller or SB3 policy directories stored as data, never an SB3 .zip or "
                                      f"another file (loading one can run code). Rebuild the ensemble with gym-dream ensemble.")
            paths.append(member)
        return cls([load_member(m) for m in paths], card)


def is_ensemble_dir(path: str | Path) -> bool:
    return (Path(path) / ENSEMBLE_CARD).is_file()


def save_ensemble(members: list[str | Path], out: str | Path, extra: dict[str, Any] | None = None, *,
                  load_member: Callable[[Path], Any]) -> Path:
    """Copy the stored agents ``members`` (controller or SB3 policy directories) into ``out/members/<k>`` and write
    ``out/ensemble.json``; the members are loaded first (by ``load_member``, ``trainers.agents.stored_agent.load_stored_agent``), so a
    folder that would not load is never written. An existing ``out`` is replaced only once the new one is complete."""
    out, sources = Path(out), [Path(m) for m in members]
    for m in sources:
        if not m.is_dir():
            raise ValueError(f"Ensemble member {m} is not an agent directory (a controller from train cmaes, or <run>/best of an SB3 run).")
    AgentEnsemble([load_member(m) for m in sources])  # the spaces agree, or a clear error before anything is written
    stage = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(stage, ignore_errors=True)
    (stage / MEMBERS_DIR).mkdir(parents=True)
    for k, m in enumerate(sources):
        shutil.copytree(m, stage / MEMBERS_DIR / str(k))
    card = {"format": ENSEMBLE_FORMAT, "format_version": 1,
            "vote": "mean action probability (Discrete), mean action (Box)",
            "members": [f"{MEMBERS_DIR}/{k}" for k in range(len(sources))],
            "sources": [str(m) for m in sources], **(extra or {})}
    atomic_write_bytes(stage / ENSEMBLE_CARD, (json.dumps(card, indent=2) + "\n").encode())
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        stage.rename(out)
        shutil.rmtree(old)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        stage.rename(out)
    return out
