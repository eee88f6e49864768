"""The dream temperature at which the dream is as hard as the real env, measured on random play.

A dream kinder than the real env (random play survives longer, or scores more, in it) is what a gradient agent
exploits. ``calibrate_tau`` runs one uniform random policy in the real env (through ``DreamObservation``) and in the
dream at each candidate tau, and picks the tau whose mean dream return is closest to the real one. Random play is
the data's own policy family (the collection policies start from it), so the choice never looks at how a trained
agent does in the real env. ``write_tau`` records the choice in the model card's ``dream_env``: ``tau`` is then the
default temperature of every ``Dream-*`` env of that model (``gym.make(id)`` without ``tau=``), and
``tau_calibration`` keeps the measurements behind it.

    gym-dream calibrate doom-takecover --taus 1.0 1.15 1.3 1.5 1.7 2.0 --write models/doom
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import gym_dream
from gym_dream.checkpoint import atomic_write_bytes, read_card
from gym_dream.envs.core import TERMINATION_MODES
from gym_dream.error import GymDreamError
from trainers.data.real_envs import dream_id_for, real_env_of
from trainers.evaluation.evaluate import RandomAgent, episode_horizon, stats
from trainers.fit.presets import check_ranges
from trainers.evaluation.rollout import dream_episodes, real_episode_returns


#: the closest tau counts as a match when its dream return is within this many standard errors of the real one
MATCH_SE = 3.0


class NoMatchingTau(GymDreamError):
    """No candidate tau makes random play's dream return match the real one."""

#: the valid range of each numeric option (trainers.fit.presets.check_ranges)
CALIBRATE_RANGES: dict[str, str] = {k: "integer >= 1" for k in ("episodes", "dream_episodes", "workers")}


@dataclass
class CalibrateConfig:
    model: str = "cartpole"
    """model directory or name"""
    taus: tuple[float, ...] = (1.0, 1.15, 1.3, 1.5, 1.7, 2.0)
    """the candidate temperatures"""
    episodes: int = 100
    """real episodes of random play (seeds seed..seed+N-1)"""
    dream_episodes: int = 200
    """dream episodes of random play per tau"""
    seed: int = 500_000
    """first real seed (choose seeds that no agent is scored on)"""
    workers: int = 1
    """processes for the real episodes"""
    device: str = "cpu"
    """torch device of the dreams"""
    termination: str | None = None
    """how a dream episode ends: threshold | sample (default: the model card's choice); --write records it with the tau,
    which was measured under it"""
    write: str | None = None
    """a model directory whose card gets the chosen tau as dream_env.tau (the default tau of its dreams)"""

    def __post_init__(self) -> None:
        """Refuse an out-of-range budget or count now, before any folder is made (CALIBRATE_RANGES)."""
        check_ranges(self, CALIBRATE_RANGES, "calibrate")


def calibrate_tau(cfg: CalibrateConfig) -> dict[str, Any]:
    """Random play in the real env and in the dream at every ``cfg.taus``; ``tau`` is the one whose mean dream return
    is closest to the real one. Returns what ``write_tau`` records."""
    if not cfg.taus or any(not (isinstance(t, (int, float)) and math.isfinite(t) and t > 0) for t in cfg.taus):
        raise ValueError(f"--taus must be temperatures > 0, got {cfg.taus!r}.")
    if cfg.termination not in (None, *TERMINATION_MODES):
        raise ValueError(f"--termination must be one of {', '.join(TERMINATION_MODES)} (or left out for the model card's), "
                         f"got {cfg.termination!r}.")
    model = gym_dream.resolve_model(cfg.model)
    dream_id = dream_id_for(None, model)  # its registered id, else Dream-Model-v0: any model's dream
    real_id = real_env_of(dream_id, model)
    # a dream that starts anywhere in the data (trainers/fit/start_bank.py) is compared per step: its episodes begin
    # mid-way through real ones, so their returns are not comparable with whole real episodes' returns, but random
    # play's reward per step is (the bank's states are where random play goes)
    horizon = episode_horizon(model)
    real, real_lengths = real_episode_returns(RandomAgent(model.action_space, seed=0), real_id, cfg.model, cfg.episodes, seed=cfg.seed,
                                              device=cfg.device, workers=cfg.workers)
    if horizon is not None:
        real = real / np.maximum(real_lengths, 1)
    dream = {}
    for tau in cfg.taus:
        r = dream_episodes(RandomAgent(model.action_space, seed=1), dream_id, cfg.model, float(tau), cfg.dream_episodes,
                           seed=1, device=cfg.device, horizon=horizon, termination=cfg.termination)
        dream[str(float(tau))] = stats(r.returns / np.maximum(r.lengths, 1) if horizon is not None else r.returns)
    best = min(cfg.taus, key=lambda t: abs(dream[str(float(t))]["mean"] - float(real.mean())))
    d = dream[str(float(best))]
    gap = d["mean"] - float(real.mean())
    gap_se = math.sqrt(float(real.var()) / len(real) + d["std"] ** 2 / d["episodes"])
    return {"tau": float(best), "policy": "uniform random", "real": stats(real), "real_seeds": [cfg.seed, cfg.seed + cfg.episodes - 1],
            "dream": dream, **({"termination": cfg.termination} if cfg.termination else {}),
            "rule": "the tau whose mean dream return of random play is closest to the real one"
                    + (" (return per step: the dream starts anywhere in the data)" if horizon is not None else ""),
            **({"statistic": "return per step"} if horizon is not None else {}),
            "gap": gap, "gap_se": gap_se, "matched": bool(abs(gap) <= MATCH_SE * gap_se)}


def write_tau(directory: str | Path, calibration: dict[str, Any]) -> Path:
    """Record ``calibration`` in the card of the model directory: ``dream_env.tau`` (the default tau of its dreams)
    and ``dream_env.tau_calibration``. Refused when no tau matched (:class:`NoMatchingTau`): the dream then differs
    from the real env in something a temperature does not change (its rewards, say), and no default tau follows."""
    if not calibration.get("matched", True):
        raise NoMatchingTau(f"No tau matched: {_gap_text(calibration)}; nothing written. Widen --taus, or pass the tau you "
                            "want to gym.make yourself.")
    directory = Path(directory)
    card = read_card(directory)
    env = card.setdefault("dream_env", {})
    env["tau"] = calibration["tau"]
    if calibration.get("termination"):  # the tau was measured with this termination: it goes with it
        env["termination"] = calibration["termination"]
    env["tau_calibration"] = {k: v for k, v in calibration.items() if k != "tau"}
    path = directory / "model.json"
    atomic_write_bytes(path, (json.dumps(card, indent=2) + "\n").encode())
    return path


def _gap_text(calibration: dict[str, Any]) -> str:
    f = _fmt(calibration)
    return (f"at the closest tau, {calibration['tau']}, random play's dream {calibration.get('statistic', 'return')} is "
            f"{'+' if calibration['gap'] >= 0 else '-'}{f(abs(calibration['gap']))} ± {f(calibration['gap_se'])} from the real one "
            f"(a match is within {MATCH_SE:g} standard errors)")


def _fmt(calibration: dict[str, Any]):
    """How the calibration's numbers print: returns to 0.1, returns per step to 0.001."""
    return (lambda v: f"{v:.3f}") if calibration.get("statistic") == "return per step" else (lambda v: f"{v:.1f}")


def calibration_table(calibration: dict[str, Any]) -> str:
    real, f = calibration["real"], _fmt(calibration)
    what = f" ({calibration['statistic']})" if calibration.get("statistic") else ""
    lines = [f"random play{what}, real: {f(real['mean'])} ± {f(real['std'])} ({real['episodes']} episodes, seeds "
             f"{calibration['real_seeds'][0]}-{calibration['real_seeds'][1]})"
             + (f"; dream episodes end by termination={calibration['termination']}" if calibration.get("termination") else "")]
    for tau, s in calibration["dream"].items():
        mark = "  <- closest" if float(tau) == calibration["tau"] else ""
        lines.append(f"random play{what}, dream tau {tau:<5}: {f(s['mean'])} ± {f(s['std'])} ({s['episodes']} episodes){mark}")
    if "matched" in calibration:
        lines.append(("matched: " if calibration["matched"] else "NO MATCH: ") + _gap_text(calibration)
                     + ("" if calibration["matched"] else "; the dream differs from the real env in more than its randomness"))
    return "\n".join(lines)
