"""Score an agent in the dream (several temperatures) and on the real env, through one code path.

An agent is anything with SB3's ``predict(obs, deterministic=True) -> (action, state)``: a
:class:`~trainers.controller.LinearController`, an SB3 model, a planner. Real-env episodes run through
:class:`gym_dream.wrappers.DreamObservation`, so the agent sees exactly what it saw in the dream. The
dream-vs-real gap is the headline diagnostic: an agent whose real return falls well short of its dream
return has learned to exploit the model's mistakes.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import gym_dream  # noqa: F401  (registers the Dream-* ids)
from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.envs.core import tau_name
from trainers.action_hold import with_hold
from trainers.agent_ensemble import AgentEnsemble, is_ensemble_dir
from trainers.controller import LinearController, is_controller_dir
from trainers.rollout import agent_actions, dream_rollout, make_dream_vec, real_episodes
from trainers.sb3_policy import SB3Policy, is_policy_dir


class PickleFormatWarning(UserWarning):
    """Loading a file format that can run code (SB3's ``.zip`` holds cloudpickled objects)."""


def load_agent(path: str | Path, algo: str | None = None):
    """A controller directory, a stored SB3 policy or an ensemble of those (all safetensors + JSON), or an SB3 ``.zip``
    (algorithm from ``algo`` or the file name).

    An SB3 ``.zip`` is loaded only when ``path`` names that file itself, never found by looking in a
    directory: its objects are cloudpickled, so loading it can run code, and a :class:`PickleFormatWarning`
    says so. Load only files you trust.
    """
    path = Path(path)
    if is_ensemble_dir(path):
        return AgentEnsemble.load(path)
    if is_controller_dir(path):
        return LinearController.load(path)
    if is_policy_dir(path):
        policy = SB3Policy.load(path)
        return with_hold(policy, policy.card.get("action_hold", 1))  # it acts as it was trained: every k steps
    if path.suffix == ".zip" and path.is_file():
        from trainers.sb3 import ALGOS, algo_class

        warnings.warn(f"loading {path}: SB3's .zip format holds cloudpickled objects and can run code; it is loaded only "
                      "because you named this file. Load only agents you trust.", PickleFormatWarning, stacklevel=2)

        meta = path.parent / "agent.json"
        name = algo or (json.loads(meta.read_text())["algo"] if meta.is_file() else next((a for a in ALGOS if a in path.name.lower()), None))
        if name is None:
            raise ValueError(f"Cannot tell the algorithm of {path}; pass --algo (one of {ALGOS}).")
        recipe = (json.loads(meta.read_text()).get("recipe") or {}) if meta.is_file() else {}
        return with_hold(algo_class(name).load(path, device="cpu"), recipe.get("action_hold", 1))
    raise FileNotFoundError(f"{path} is neither a controller directory (controller.json), a stored SB3 policy (policy.json), "
                            "an agent ensemble (ensemble.json) nor an SB3 .zip file.")


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


def dream_episode_returns(agent, dream_id: str, model: str | None, tau: float | tuple[float, float], episodes: int, seed: int = 0, device: str = "cpu", horizon: int | None = None,
                          termination: str | None = None, dream_kwargs: dict[str, Any] | None = None) -> np.ndarray:
    """Returns of ``episodes`` dream episodes, run as one batched DreamVectorEnv (``tau``: one temperature or a range
    ``(low, high)``, each episode drawing its own; ``termination``:
    threshold | sample, default the model card's; ``dream_kwargs``: more of the dream's arguments, e.g. its
    ``uncertainty_penalty``)."""
    venv = make_dream_vec(dream_id, episodes, model, tau, device, termination=termination, **(dream_kwargs or {}))
    if hasattr(agent, "begin_episode"):  # a stochastic agent restarts its noise: same seed, same episodes
        agent.begin_episode(seed)
    returns = dream_rollout(venv, agent_actions(agent), seed, horizon).returns
    venv.close()
    return returns


def real_episode_returns(agent, real_env_id: str, model: str | None, episodes: int, seed: int = 0, device: str = "cpu",
                         desc: str = "real", workers: int = 1, env_kwargs: dict[str, Any] | None = None, backend: str = "local",
                         ray_address: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Returns and lengths of ``episodes`` real episodes (seeds seed, seed+1, ...) seen through the model.

    ``workers`` > 1 splits the seeds over that many processes (the agent must be picklable, e.g. a
    :class:`~trainers.controller.LinearController`; ``model`` a directory or name); same seeds, same results.
    An agent with a ``bind`` method (a planner, which plans from the wrapper's model state) is bound to
    the wrapper first. ``env_kwargs`` go to the real env (e.g. ``{"obs": "state"}`` for DMC). ``backend="ray"`` runs
    the seed chunks as Ray tasks (on the cluster at ``ray_address``), with the same results.
    """
    eps = real_episodes(agent, real_env_id, model, range(seed, seed + episodes), device, env_kwargs, workers, desc, backend=backend,
                        ray_address=ray_address)
    return np.array([e.ret for e in eps], np.float64), np.array([e.length for e in eps], np.int64)


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


def evaluate(agent, dream_id: str, model: str | None = None, taus: tuple[float | tuple[float, float], ...] = (1.0,), episodes: int = 100,
             dream_episodes: int | None = None, seed: int = 0, device: str = "cpu", name: str = "agent", workers: int = 1,
             backend: str = "local", ray_address: str | None = None) -> dict[str, Any]:
    """Dream returns at each tau (a temperature, or a range ``(low, high)``: each dream episode draws its own) and real
    returns, with the exploit flag, as one record; the dream scores are keyed by :func:`~gym_dream.envs.core.tau_name`
    (``"1.15"``, ``"1.0:1.5"``), the first tau's (the training tau's) first."""
    spec = gym.spec(dream_id)
    real_id = spec.kwargs["real_env_id"]
    start = time.time()
    dream = {tau_name(t): stats(dream_episode_returns(agent, dream_id, model, t, dream_episodes or episodes, seed=seed + 1_000_000, device=device)) for t in taus}
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


def write_report(rows: list[dict[str, Any]], out: str | Path) -> tuple[Path, Path]:
    """``out``.md and ``out``.json."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("") if out.suffix in (".md", ".json") else out  # 'tau1.0_100ep' keeps its dot
    md, js = stem.parent / (stem.name + ".md"), stem.parent / (stem.name + ".json")
    atomic_write_bytes(md, markdown_table(rows).encode())
    atomic_write_bytes(js, (json.dumps(rows, indent=2) + "\n").encode())
    return md, js
