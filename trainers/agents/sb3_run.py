"""The resumable training loop of :func:`~trainers.agents.sb3.train_sb3`: a run folder, an SB3 agent started or resumed in
it, scored in the dream every ``eval_every`` steps, its best kept as data.

The folder holds agent.json (the run's settings and the steps trained), last.zip (the agent at the last dream
evaluation), replay_buffer.npz (an off-policy agent's buffer), best/ (the best-in-dream policy as data, and agent.zip
in SB3's own format) and dream_eval_log.csv (one row per dream evaluation).
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback

from gym_dream.checkpoint import atomic_write_bytes
from trainers.agents.action_hold import with_hold
from trainers.agents.replay_buffer_file import load_replay_buffer, save_replay_buffer
from trainers.agents.sb3 import DEFAULT_HPARAMS, SB3Config, algo_class, make_sb3_env, sb3_kwargs
from trainers.infra.training_log import TrainingLog, read_log

logger = logging.getLogger(__name__)

#: what a run folder's agent.json records of the run, besides the recipe's budget: these must match for a run to continue
_RUN_KEYS = ("algo", "env_id", "model", "tau", "recipe")


def _run_card(cfg: SB3Config, recipe: dict[str, Any], trained_steps: int, finished: bool) -> dict[str, Any]:
    return {"algo": cfg.algo, "env_id": cfg.env_id, "model": cfg.model if isinstance(cfg.model, (str, type(None))) else "<in-memory>",
            "tau": cfg.tau, "recipe": recipe, "trained_steps": int(trained_steps), "finished": bool(finished)}


def _run_differences(card: dict[str, Any], previous: dict[str, Any]) -> list[str]:
    """The settings in which ``previous`` (a run folder's agent.json) differs from ``card``, the budget aside."""
    def settings(c: dict[str, Any]) -> dict[str, Any]:
        recipe = {f"recipe.{k}": v for k, v in (c.get("recipe") or {}).items() if k != "timesteps"}
        return {**{k: c.get(k) for k in _RUN_KEYS if k != "recipe"}, **recipe}

    a, b = json.loads(json.dumps(settings(card))), settings(previous)  # as stored: a tau range (a tuple) is a list in JSON
    return [k for k in {**a, **b} if a.get(k) != b.get(k)]


def _save_atomic(agent, path: Path) -> None:
    """SB3's save through the project's atomic write: a kill leaves the previous file or the new one, never half of one."""
    buffer = io.BytesIO()
    agent.save(buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _recipe(cfg: SB3Config, hp: dict[str, Any]) -> dict[str, Any]:
    """The recipe that made the agent, stored next to it: the hyper-parameters in effect (gym-dream's defaults for the
    algorithm merged with the run's), the budget and the dream it trained in."""
    return json.loads(json.dumps({"algo": cfg.algo, "hparams": hp, "timesteps": cfg.timesteps, "num_envs": cfg.num_envs, "seed": cfg.seed,
                                  "eval_every": cfg.eval_every, "eval_episodes": cfg.eval_episodes, "dream_kwargs": cfg.dream_kwargs,
                                  "action_hold": cfg.action_hold,
                                  **({"action_low": cfg.action_low} if cfg.action_low is not None else {}),
                                  **({"action_high": cfg.action_high} if cfg.action_high is not None else {})},
                                 default=str))


class _RunFolder:
    """A run's files: its card (agent.json), its checkpoint (last.zip, with the replay buffer of an off-policy agent) and
    its best-in-dream agent, with the dream evaluations so far."""

    def __init__(self, cfg: SB3Config, recipe: dict[str, Any]):
        self.cfg, self.recipe, self.out = cfg, recipe, Path(cfg.out)
        self.card, self.last, self.replay_file = self.out / "agent.json", self.out / "last.zip", self.out / "replay_buffer.npz"
        self.best = {"return": -np.inf, "step": 0}
        self.history: list[dict[str, float]] = []
        self.saved_step = 0  # the step last.zip holds

    def start(self, env, hp: dict[str, Any], kwargs: dict[str, Any], tb: str | None):
        """A new agent (``kwargs``: SB3's, from :func:`~trainers.agents.sb3.sb3_kwargs`), or the one last.zip holds
        (refused when the folder's run has other settings), and its step."""
        cfg = self.cfg
        cls, kwargs = algo_class(cfg.algo), dict(kwargs)
        policy = kwargs.pop("policy")
        previous = json.loads(self.card.read_text()) if self.card.is_file() and self.last.is_file() else None
        if previous is None:
            self._write_card(0, False)
            return cls(policy, env, seed=cfg.seed, verbose=0, tensorboard_log=tb, **kwargs), 0
        differ = _run_differences(_run_card(cfg, self.recipe, 0, False), previous)
        if differ:
            raise ValueError(f"{self.out} holds an {previous.get('algo', '?').upper()} run with other settings (differing: {', '.join(differ)}); "
                             "a run continues only with its own settings. Pass another out= (--out) for a new run, or remove the folder "
                             "to start over.")
        agent = cls.load(self.last, env=env, device="auto", tensorboard_log=tb)
        done = self.saved_step = int(agent.num_timesteps)
        agent.set_random_seed(cfg.seed + done)
        if hasattr(agent, "learning_starts"):
            why = load_replay_buffer(agent, self.replay_file)
            if why is None:
                logger.info("%s: resumed at step %d with its replay buffer", self.out, done)
            else:  # an empty replay buffer: refill it before updating again
                agent.learning_starts = done + int(hp.get("learning_starts", agent.learning_starts))
                logger.info("%s: resumed at step %d with an empty replay buffer (%s); it refills for %d steps before the updates resume",
                         self.out, done, why, agent.learning_starts - done)
        if done:
            self._read_evaluations(done)
        return agent, done

    def _read_evaluations(self, done: int) -> None:
        best_card = self.out / "best" / "policy.json"
        if best_card.is_file():
            kept = json.loads(best_card.read_text())
            self.best = {"return": float(kept["dream_return"]), "step": int(kept["step"])}
        self.history = [{"step": int(r["step"]), "dream_return_mean": r["dream_return_mean"], "dream_return_std": r["dream_return_std"]}
                        for r in read_log(self.out, "dream_eval") if r["step"] <= done]

    def _write_card(self, steps: int, finished: bool) -> None:
        atomic_write_bytes(self.card, (json.dumps(_run_card(self.cfg, self.recipe, steps, finished), indent=2) + "\n").encode())

    def checkpoint(self, agent, finished: bool) -> None:
        new_step = self.saved_step != agent.num_timesteps  # not saved again when the last step was just evaluated and saved
        if new_step or finished:
            # the buffer before the agent: a kill between the two leaves a buffer of a later step, which is not used. A
            # checkpoint during training (SB3's callbacks run before a step's transitions are stored) keeps the buffer
            # without its last step's transitions; the one at the end keeps them all
            save_replay_buffer(agent, self.replay_file)
        if new_step:
            _save_atomic(agent, self.last)
            self.saved_step = agent.num_timesteps
        self._write_card(agent.num_timesteps, finished)

    def record(self, agent, returns: np.ndarray, training_log: TrainingLog) -> None:
        """One dream evaluation: a row of the log, and the agent kept when it is the best so far."""
        from trainers.agents.sb3_policy import save_policy

        cfg, step = self.cfg, int(agent.num_timesteps)
        self.history.append({"step": step, "dream_return_mean": float(returns.mean()), "dream_return_std": float(returns.std())})
        training_log.write(step, dream_return_mean=float(returns.mean()), dream_return_std=float(returns.std()))
        if returns.mean() > self.best["return"]:
            self.best.update({"return": float(returns.mean()), "step": step})
            _save_atomic(agent, self.out / "agent.zip")
            save_policy(agent, self.out / "best", {"dream_id": cfg.env_id, "model": cfg.model if isinstance(cfg.model, str) else None,
                                                   "tau": cfg.tau, "dream_kwargs": cfg.dream_kwargs, "action_hold": cfg.action_hold,
                                                   "step": step, "dream_return": self.best["return"], "recipe": self.recipe})


class _DreamEval(BaseCallback):
    """Scores the agent in the dream every ``eval_every`` steps and checkpoints the run."""

    def __init__(self, run: _RunFolder, done: int, training_log: TrainingLog):
        super().__init__()
        self.run, self.training_log = run, training_log
        self.next_eval = (done // run.cfg.eval_every + 1) * run.cfg.eval_every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_eval:
            self.next_eval += self.run.cfg.eval_every
            self.evaluate()
            self.run.checkpoint(self.model, False)
        return True

    def evaluate(self) -> None:
        from trainers.evaluation.rollout import dream_episode_returns

        cfg = self.run.cfg
        r = dream_episode_returns(with_hold(self.model, cfg.action_hold), cfg.env_id, cfg.model, cfg.tau, cfg.eval_episodes,
                                  seed=cfg.seed + 12345, device=cfg.device, dream_kwargs=cfg.dream_kwargs)
        self.logger.record("dream/return_mean", float(r.mean()))
        self.run.record(self.model, r, self.training_log)


class _Progress(BaseCallback):
    def __init__(self, cfg: SB3Config, done: int):
        super().__init__()
        self.cfg, self.done = cfg, done

    def _on_training_start(self) -> None:
        from trainers.infra.progress import progress

        self.bar = progress(total=self.cfg.timesteps, desc=f"{self.cfg.algo.upper()} in {self.cfg.env_id}", unit="step", initial=self.done)

    def _on_step(self) -> bool:
        self.bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self.bar.close()


def _tensorboard_dir(out: Path) -> str | None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return None
    return str(out / "tb")


def run_in_dream(cfg: SB3Config) -> dict[str, Any]:
    """The run of :func:`~trainers.agents.sb3.train_sb3` (which checks the dream id and holds the folder)."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    hp = {**DEFAULT_HPARAMS[cfg.algo], **cfg.hparams}
    kwargs = sb3_kwargs(hp, cfg.algo)  # bad hyper-parameters fail here, before the dream is built
    env = make_sb3_env(cfg.env_id, cfg.num_envs, cfg.model, cfg.tau, cfg.device, cfg.action_hold, cfg.action_low, cfg.action_high,
                       **cfg.dream_kwargs)
    cfg = replace(cfg, tau=env.venv.venv.unwrapped.tau)  # the temperature in effect (the model's default when none was given)
    run = _RunFolder(cfg, _recipe(cfg, hp))
    try:
        agent, done = run.start(env, hp, kwargs, _tensorboard_dir(out))
    except ValueError:
        env.close()
        raise
    start = time.time()
    # the dream evaluations, a row each (OUT/dream_eval_log.csv: `tail -f` it); rows past the checkpoint are dropped
    with TrainingLog(out, "dream_eval", tensorboard=False, resume_from=done) as training_log:
        if done < cfg.timesteps:
            evaluations = _DreamEval(run, done, training_log)
            agent.learn(total_timesteps=cfg.timesteps - done, callback=[evaluations, _Progress(cfg, done)], reset_num_timesteps=done == 0,
                        tb_log_name=f"{cfg.algo}-{cfg.env_id}-s{cfg.seed}")
            if not run.history or run.history[-1]["step"] != agent.num_timesteps:  # the last step, unless just evaluated
                evaluations.evaluate()
            run.checkpoint(agent, True)
    env.close()
    return {"algo": cfg.algo, "best_dream_return": run.best["return"], "best_step": run.best["step"], "seconds": time.time() - start,
            "history": run.history, "config": asdict(cfg), "resumed_from": done}
