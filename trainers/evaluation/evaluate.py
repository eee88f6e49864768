"""Score an agent in the dream (several temperatures) and on the real env, through one code path.

An agent is anything with SB3's ``predict(obs, deterministic=True) -> (action, state)``: a
:class:`~trainers.agents.controller.LinearController`, an SB3 model, a planner. Real-env episodes run through
:class:`gym_dream.wrappers.DreamObservation`, so the agent sees exactly what it saw in the dream. The
dream-vs-real gap is the headline diagnostic: an agent whose real return falls well short of its dream
return has learned to exploit the model's mistakes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gymnasium as gym
import numpy as np

import gym_dream  # noqa: F401  (registers the Dream-* ids)
from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.envs.core import check_tau, tau_name
from gym_dream.error import ModelMismatch
from gym_dream.spaces import spaces_equal
from trainers.data.real_envs import real_env_of
from trainers.fit.presets import check_ranges
from trainers.evaluation.rollout import dream_episode_returns, real_episode_returns


class RandomAgent:
    """The random-policy baseline row: uniform actions, SB3-style ``predict`` (batched or single)."""

    def __init__(self, action_space: gym.Space, seed: int = 0):
        self.action_space, self.seed = action_space, seed
        self.rng = np.random.default_rng(seed)

    def begin_episode(self, seed: int | None = None) -> None:
        """Restart the actions from (the agent's seed, the episode's seed): an episode's actions depend on its seed
        alone, not on which episodes the same process ran before (so ``workers`` never changes the results)."""
        self.rng = np.random.default_rng(self.seed if seed is None else [self.seed, int(seed)])

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = True):
        space, obs = self.action_space, np.asarray(observation)
        batched = obs.ndim == 2
        n = obs.shape[0] if batched else 1
        if isinstance(space, gym.spaces.Discrete):
            a = space.start + self.rng.integers(0, space.n, size=n)
        else:
            a = self.rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(space.dtype)
        return (a if batched else a[0]), state


def stats(x: np.ndarray) -> dict[str, float]:
    """Mean, std, min, max and count of a set of episode returns."""
    return {"mean": float(np.mean(x)), "std": float(np.std(x)), "min": float(np.min(x)), "max": float(np.max(x)), "episodes": int(len(x))}


def rankdata(x: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1, ties sharing their average rank."""
    x = np.asarray(x)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    return (np.bincount(inverse, weights=ranks) / counts)[inverse]


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman's rank correlation (how well one score ranks another, e.g. dream against real returns, or the
    members' disagreement against the actual error); None when either is constant or there are under 3 values."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def exploits_dream(dream: dict[str, float], real: dict[str, float]) -> bool:
    """True when the real return falls short of the dream return by more than noise and 10%."""
    se = math.sqrt(dream["std"] ** 2 / dream["episodes"] + real["std"] ** 2 / real["episodes"])
    return dream["mean"] - real["mean"] > max(0.1 * abs(dream["mean"]), 2.0 * se)


#: the valid range of evaluate's counts (trainers.fit.presets.check_ranges)
EVALUATE_RANGES: dict[str, str] = {"episodes": "integer >= 1", "dream_episodes": "integer >= 1", "workers": "integer >= 1"}


def episode_horizon(model: Any) -> int | None:  # a directory, a name or a loaded WorldModel
    """The dream episodes' length when scoring an agent against the real env: the real env's horizon for a model whose
    bank starts anywhere (its dream's own horizon is a short training horizon, trainers/fit/start_bank.py, and a
    return over it is not comparable with a real episode's); None (the dream's own) otherwise."""
    if model is None:
        return None
    from gym_dream.store import resolve_model

    card = resolve_model(model).card or {}
    if ((card.get("training") or {}).get("start_bank") or {}).get("starts") != "anywhere":
        return None
    return (card.get("env") or {}).get("max_episode_steps")


def check_agent_fits(agent: Any, dream_id: str, model: Any = None, device: str = "cpu") -> None:
    """The agent reads the dream's observations and acts in its action space, or a clear error before any episode runs
    (a CartPole controller scored on CarRacing would fail deep inside numpy)."""
    inner = getattr(agent, "agent", agent)  # an agent with action noise: the spaces are its agent's
    obs_space = getattr(agent, "observation_space", None) or getattr(inner, "observation_space", None)
    act_space = getattr(agent, "action_space", None) or getattr(inner, "action_space", None)
    if obs_space is None or act_space is None:
        return  # an agent that does not say (a planner): its first step will
    env = gym.make(dream_id, device=device, **({"model": model} if model is not None else {}))
    try:
        want_obs, want_act = env.observation_space, env.action_space
    finally:
        env.close()
    shape = tuple(getattr(obs_space, "shape", ()) or ())
    if shape != tuple(want_obs.shape) or not spaces_equal(act_space, want_act):
        card = getattr(inner, "card", None) or {}
        trained = f" It was trained in {card['env_id']}" + (f" with model {card['model']}" if card.get("model") else "") + "." \
            if isinstance(card, dict) and card.get("env_id") else ""
        raise ModelMismatch(
            f"The agent reads observations of shape {shape} and acts in {act_space}, but {dream_id}"
            f"{f' (model {model})' if model else ''} gives observations of shape {tuple(want_obs.shape)} and takes actions in "
            f"{want_act}.{trained} Evaluate it on the dream (--env-id, --model) it was trained in.")


def evaluate(agent, dream_id: str, model: str | None = None, taus: tuple[float | tuple[float, float], ...] = (1.0,), episodes: int = 100,
             dream_episodes: int | None = None, seed: int = 0, device: str = "cpu", name: str = "agent", workers: int = 1,
             backend: str = "local", ray_address: str | None = None) -> dict[str, Any]:
    """Dream returns at each tau (a temperature, or a range ``(low, high)``: each dream episode draws its own) and real
    returns, with the exploit flag, as one record; the dream scores are keyed by :func:`~gym_dream.envs.core.tau_name`
    (``"1.15"``, ``"1.0:1.5"``), the first tau's (the training tau's) first."""
    check_ranges(SimpleNamespace(episodes=episodes, dream_episodes=dream_episodes, workers=workers), EVALUATE_RANGES, "evaluate")
    if not taus:
        raise ValueError("evaluate needs at least one dream temperature (--taus 1.0).")
    for tau in taus:
        check_tau(tau)
    spec = gym.spec(dream_id)
    real_id = real_env_of(dream_id, model)
    check_agent_fits(agent, dream_id, model, device)
    start = time.time()
    horizon = episode_horizon(model)
    dream = {tau_name(t): stats(dream_episode_returns(agent, dream_id, model, t, dream_episodes or episodes, seed=seed + 1_000_000, device=device,
                                                      horizon=horizon)) for t in taus}
    real_returns, real_lengths = real_episode_returns(agent, real_id, model, episodes, seed=seed, device=device, desc=f"{name} on {real_id}", workers=workers,
                                                      backend=backend, ray_address=ray_address)
    real = stats(real_returns)
    train_tau = tau_name(taus[0])
    return {
        "agent": name, "dream_id": dream_id, "real_env_id": real_id, "model": model or spec.kwargs.get("default_model"),
        "dream": dream, "real": real, "real_steps": int(real_lengths.sum()), "real_seeds": [seed, seed + episodes - 1],
        # per episode, in seed order: what the mean and std hide (a few crashes or many middling runs)
        "real_returns": [round(float(x), 2) for x in real_returns], "real_lengths": [int(n) for n in real_lengths],
        "exploits_dream": exploits_dream(dream[train_tau], real), "seconds": round(time.time() - start, 1),
    }


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| agent | dream tau | dream return | real return | real episodes | exploits dream? |", "|---|---|---|---|---|---|"]
    for r in rows:
        for tau, d in r["dream"].items():
            lines.append(
                f"| {r['agent']} | {tau} | {d['mean']:.1f} ± {d['std']:.1f} ({d['episodes']} ep) | "
                f"{r['real']['mean']:.1f} ± {r['real']['std']:.1f} | {r['real']['episodes']} (seeds {r['real_seeds'][0]}–{r['real_seeds'][1]}) | "
                f"{'**yes**' if exploits_dream(d, r['real']) else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def write_report(rows: list[dict[str, Any]], out: str | Path, command: str | None = None) -> tuple[Path, Path]:
    """``out``.md and ``out``.json. Each JSON row carries a ``provenance`` block (:func:`trainers.infra.provenance.provenance`:
    the command, here ``command`` or the running one, the commit, the machine and the date) unless it has one."""
    from trainers.infra.provenance import provenance

    stamp = provenance(command)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("") if out.suffix in (".md", ".json") else out  # 'tau1.0_100ep' keeps its dot
    md, js = stem.parent / (stem.name + ".md"), stem.parent / (stem.name + ".json")
    atomic_write_bytes(md, markdown_table(rows).encode())
    stamped = [row if "provenance" in row else {**row, "provenance": stamp} for row in rows]
    atomic_write_bytes(js, (json.dumps(stamped, indent=2) + "\n").encode())
    return md, js
