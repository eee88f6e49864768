"""stable-baselines3 agents trained inside a batched dream (:class:`~trainers.agents.sb3_vec_env.SB3VecEnv`, the dream as SB3's
``VecEnv``): the run's settings, SB3's hyper-parameters as data, and a resumable training loop."""

from __future__ import annotations

import io
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import gym_dream  # noqa: F401
from gym_dream.error import DependencyNotInstalled
from gym_dream.checkpoint import atomic_write_bytes
from trainers.agents.action_hold import check_action_hold, with_hold
from trainers.fit.presets import check_ranges
from trainers.agents.sb3_vec_env import SB3VecEnv
from trainers.agents.replay_buffer_file import load_replay_buffer, save_replay_buffer
from trainers.infra.training_log import TrainingLog, read_log

try:
    from stable_baselines3.common.vec_env import VecMonitor
except ImportError as e:  # pragma: no cover
    raise DependencyNotInstalled('stable-baselines3 agents need: pip install "gym-dream[train]"') from e


ALGOS = ("ppo", "a2c", "dqn", "sac", "td3")

#: hyper-parameters per algorithm (rl-zoo's tuned CartPole values for PPO/DQN; SB3 defaults otherwise)
DEFAULT_HPARAMS: dict[str, dict[str, Any]] = {
    "ppo": dict(n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0, learning_rate=1e-3, clip_range=0.2),
    "a2c": dict(ent_coef=0.0),
    "dqn": dict(learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
                target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256])),
    "sac": dict(),
    "td3": dict(),
}


#: hyper-parameters that may be a schedule, written as rl-zoo writes one: "lin_3e-4" decays linearly from 3e-4 to 0
SCHEDULED = ("learning_rate", "clip_range", "clip_range_vf")
#: policy_kwargs entries that name a class: "GELU", "nn.GELU" or "torch.nn.GELU"; "Adam" or "torch.optim.Adam"
CLASS_KWARGS = {"activation_fn": "torch.nn", "optimizer_class": "torch.optim"}


def _policies() -> dict[str, dict[str, type]]:
    """The policy classes a recipe may name (``"policy"``) besides SB3's ``MlpPolicy``, per algorithm."""
    from trainers.agents.dueling_dqn import DuelingDQNPolicy

    return {"dqn": {"DuelingMlpPolicy": DuelingDQNPolicy}}


def sb3_kwargs(hparams: dict[str, Any], algo: str = "ppo") -> dict[str, Any]:
    """The constructor arguments of an SB3 algorithm from JSON hyper-parameters (a recipe's, the CLI's --hparams):
    rl-zoo's ``lin_<value>`` schedules become SB3 schedules, class names in ``policy_kwargs`` (``activation_fn``,
    ``optimizer_class``) become the torch classes and ``"policy"`` (default ``"MlpPolicy"``) may name one of gym-dream's
    policies (DQN: ``"DuelingMlpPolicy"``, trainers/agents/dueling_dqn.py), so a recipe stays plain JSON. Anything else passes
    unchanged."""
    import torch
    from stable_baselines3.common.utils import LinearSchedule

    out = {"policy": "MlpPolicy", **hparams}
    if out["policy"] != "MlpPolicy":
        known = _policies().get(algo, {})
        if out["policy"] not in known:
            raise ValueError(f"hparams policy={out['policy']!r} is not a policy of {algo.upper()}: choose "
                             f"{', '.join(['MlpPolicy', *known])}.")
        out["policy"] = known[out["policy"]]
    for key in SCHEDULED:
        value = out.get(key)
        if isinstance(value, str):
            if not value.startswith("lin_"):
                raise ValueError(f"hparams {key}={value!r}: a schedule is written 'lin_<initial value>' (rl-zoo's linear "
                                 f"decay to 0), e.g. 'lin_3e-4'; or give a number.")
            try:
                start = float(value.removeprefix("lin_"))
            except ValueError:
                raise ValueError(f"hparams {key}={value!r}: the initial value after 'lin_' is not a number, e.g. 'lin_3e-4'.") from None
            out[key] = LinearSchedule(start, 0.0, 1.0)
    if isinstance(out.get("policy_kwargs"), dict):
        kwargs = dict(out["policy_kwargs"])
        for key, module in CLASS_KWARGS.items():
            name = kwargs.get(key)
            if isinstance(name, str):
                attr = name.rsplit(".", 1)[-1]
                cls = getattr(torch.nn if module == "torch.nn" else torch.optim, attr, None)
                if not isinstance(cls, type) or name not in (attr, f"{module.split('.')[-1]}.{attr}", f"{module}.{attr}"):
                    raise ValueError(f"hparams policy_kwargs.{key}={name!r} is not a class of {module}: name one, e.g. "
                                     f"{'GELU' if key == 'activation_fn' else 'Adam'} or {module}.{'GELU' if key == 'activation_fn' else 'Adam'}.")
                kwargs[key] = cls
        out["policy_kwargs"] = kwargs
    return out

#: the valid range of each numeric option (trainers.fit.presets.check_ranges)
SB3_RANGES: dict[str, str] = {k: "integer >= 1" for k in ("timesteps", "num_envs", "eval_every", "eval_episodes", "action_hold")}


@dataclass
class SB3Config:
    algo: str = "ppo"
    """ppo | a2c | dqn | sac | td3"""
    env_id: str | None = None
    """the Dream-* id to train in (default: the model's own: the registered id of its real env, else Dream-Model-v0, the
    dream of any model; with no --model either, Dream-CartPole-v0)"""
    model: str | None = None
    """model directory or name (default: the id's default model)"""
    out: str = "runs/ppo-cartpole"
    """run folder: best/ (the best in the dream, as data: trainers/agents/sb3_policy.py), agent.zip (the best) and last.zip (the
    latest, saved at every dream evaluation: the same command again resumes from it) in SB3's own format, agent.json
    (the run's settings and steps trained), dream_eval_log.csv (a row per dream evaluation), TensorBoard logs"""
    tau: float | tuple[float, float] | None = None
    """dream temperature (default: the model's, its card's dream_env.tau, else 1.0), or a range LOW:HIGH from which
    each dream episode draws its own (uniformly)"""
    timesteps: int = 100_000
    """dream steps to train for"""
    num_envs: int = 16
    """dreams stepped together (one batched env)"""
    seed: int = 0
    """seed of the agent and of the dreams"""
    device: str = "cpu"
    """torch device of the dream (the agent uses SB3's 'auto')"""
    eval_every: int = 10_000
    """evaluate in the dream every this many steps and keep the best agent (dream return only)"""
    eval_episodes: int = 32
    """dream episodes per evaluation"""
    hparams: dict[str, Any] = field(default_factory=dict)
    """overrides of the algorithm's hyper-parameters, as SB3 names them; rl-zoo's "lin_<value>" schedules, class names
    in policy_kwargs (activation_fn "GELU") and "policy": "DuelingMlpPolicy" (DQN) are resolved (sb3_kwargs)"""
    dream_kwargs: dict[str, Any] = field(default_factory=dict)
    """more arguments of the dream it trains in (and is chosen in), e.g. {"uncertainty_penalty": 1.0,
    "uncertainty_limit": "q99"}"""
    action_hold: int = 1
    """steps of the env per decision: the agent picks an action every this many steps and holds it (frame skip;
    trainers/agents/action_hold.py). Stored with the agent, which acts so wherever it runs. Timesteps count the agent's
    decisions"""
    action_low: tuple[float, ...] | None = None
    """the agent's action box, lower end per action dimension, inside the env's (default: the env's)"""
    action_high: tuple[float, ...] | None = None
    """the agent's action box, upper end per action dimension, inside the env's (default: the env's); e.g. 1 1 0.1 on
    CarRacing (steer, gas, brake) keeps a SAC agent, whose squashed Gaussian starts at half brake, off the brake. The
    agent's policy stores its box, so it acts inside it wherever it runs"""

    def __post_init__(self) -> None:
        """Refuse an out-of-range budget or count now, before any folder is made (SB3_RANGES)."""
        check_ranges(self, SB3_RANGES, f"train {self.algo}")


def narrowed_action_box(space: gym.Space, low: Any = None, high: Any = None) -> gym.Space:
    """``space`` (a Box), narrowed to ``[low, high]`` per dimension (None keeps that end): the action box of an agent
    that acts only inside part of an env's, which takes those actions as they are. A clear error when it is not a box
    inside ``space`` with room in every dimension (SAC and TD3 rescale their actions to it)."""
    if low is None and high is None:
        return space
    if not isinstance(space, gym.spaces.Box):
        raise ValueError(f"action_low/action_high narrow a Box action space; this env's is {space}. Leave them unset.")
    lo = space.low.astype(np.float64) if low is None else np.asarray(low, np.float64).reshape(-1)
    hi = space.high.astype(np.float64) if high is None else np.asarray(high, np.float64).reshape(-1)
    for name, v in (("action_low", lo), ("action_high", hi)):
        if v.size != space.low.size:
            raise ValueError(f"{name} has {v.size} values; this env's actions have {space.low.size} dimensions "
                             f"(from {space.low.tolist()} to {space.high.tolist()}): give one per dimension.")
    lo, hi = lo.reshape(space.shape), hi.reshape(space.shape)
    if np.any(lo < space.low) or np.any(hi > space.high) or np.any(lo >= hi):
        raise ValueError(f"The agent's action box [{lo.ravel().tolist()}, {hi.ravel().tolist()}] must lie inside the env's "
                         f"[{space.low.ravel().tolist()}, {space.high.ravel().tolist()}] with low < high in every dimension.")
    return gym.spaces.Box(lo.astype(space.dtype), hi.astype(space.dtype), dtype=space.dtype)


def make_sb3_env(env_id: str, num_envs: int, model: str | None, tau: float | None, device: str, action_hold: int = 1,
                 action_low: Any = None, action_high: Any = None, **dream_kwargs: Any) -> VecMonitor:
    extra = {"model": model} if model is not None else {}
    mode = AutoresetMode.SAME_STEP if check_action_hold(action_hold) == 1 else AutoresetMode.DISABLED
    venv = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", tau=tau, device=device,
                        autoreset_mode=mode, **extra, **dream_kwargs)
    try:
        box = narrowed_action_box(venv.single_action_space, action_low, action_high)
    except ValueError:
        venv.close()
        raise
    return VecMonitor(SB3VecEnv(venv, hold=action_hold, action_space=box))


def algo_class(name: str):
    import stable_baselines3 as sb3

    if name.lower() not in ALGOS:
        raise ValueError(f"Unknown algorithm {name!r}; choose from {ALGOS}.")
    return getattr(sb3, name.upper())


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


def train_sb3(cfg: SB3Config) -> dict[str, Any]:
    """Train ``cfg.algo`` in the dream; resumable: the run folder holds last.zip (saved at every dream evaluation) and
    agent.json (the run's settings and the steps trained), and the same call again continues where it stopped (or
    returns at once when the run is finished; a larger ``timesteps`` trains on). Settings other than the budget must
    match the folder's. An off-policy agent (DQN, SAC, TD3) keeps its replay buffer next to last.zip
    (replay_buffer.npz, :mod:`trainers.agents.replay_buffer_file`) and continues with it; without one that matches the
    checkpoint (a run stopped while writing them), it continues with an empty buffer, refilled for ``learning_starts``
    steps before its updates resume, and says so."""
    from trainers.data.real_envs import dream_id_for
    from trainers.infra.folder_lock import held

    cfg = replace(cfg, env_id=dream_id_for(cfg.env_id, cfg.model))
    with held(cfg.out, f"train {cfg.algo}"):  # one process per run: a second copy would interleave its checkpoints
        return _train_sb3(cfg)


def _train_sb3(cfg: SB3Config) -> dict[str, Any]:
    from stable_baselines3.common.callbacks import BaseCallback

    from trainers.evaluation.rollout import dream_episode_returns
    from trainers.agents.sb3_policy import save_policy

    cls = algo_class(cfg.algo)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    hp = {**DEFAULT_HPARAMS[cfg.algo], **cfg.hparams}
    kwargs = sb3_kwargs(hp, cfg.algo)  # bad hyper-parameters fail here, before the dream is built
    policy = kwargs.pop("policy")
    env = make_sb3_env(cfg.env_id, cfg.num_envs, cfg.model, cfg.tau, cfg.device, cfg.action_hold, cfg.action_low, cfg.action_high,
                       **cfg.dream_kwargs)
    cfg = replace(cfg, tau=env.venv.venv.unwrapped.tau)  # the temperature in effect (the model's default when none was given)
    try:
        import tensorboard  # noqa: F401
        tb = str(out / "tb")
    except ImportError:
        tb = None
    # the recipe that made the agent, stored next to it: the hyper-parameters in effect (gym-dream's defaults for the
    # algorithm merged with the run's), the budget and the dream it trained in
    recipe = json.loads(json.dumps({"algo": cfg.algo, "hparams": hp, "timesteps": cfg.timesteps, "num_envs": cfg.num_envs, "seed": cfg.seed,
                                    "eval_every": cfg.eval_every, "eval_episodes": cfg.eval_episodes, "dream_kwargs": cfg.dream_kwargs,
                                    "action_hold": cfg.action_hold,
                                    **({"action_low": cfg.action_low} if cfg.action_low is not None else {}),
                                    **({"action_high": cfg.action_high} if cfg.action_high is not None else {})},
                                   default=str))
    card_path, last, replay_file = out / "agent.json", out / "last.zip", out / "replay_buffer.npz"
    previous = json.loads(card_path.read_text()) if card_path.is_file() and last.is_file() else None
    if previous is not None:
        differ = _run_differences(_run_card(cfg, recipe, 0, False), previous)
        if differ:
            env.close()
            raise ValueError(f"{out} holds an {previous.get('algo', '?').upper()} run with other settings (differing: {', '.join(differ)}); "
                             "a run continues only with its own settings. Pass another out= (--out) for a new run, or remove the folder "
                             "to start over.")
        agent = cls.load(last, env=env, device="auto", tensorboard_log=tb)
        done = int(agent.num_timesteps)
        agent.set_random_seed(cfg.seed + done)
        if hasattr(agent, "learning_starts"):
            why = load_replay_buffer(agent, replay_file)
            if why is None:
                print(f"{out}: resumed at step {done} with its replay buffer", flush=True)
            else:  # an empty replay buffer: refill it before updating again
                agent.learning_starts = done + int(hp.get("learning_starts", agent.learning_starts))
                print(f"{out}: resumed at step {done} with an empty replay buffer ({why}); it refills for "
                      f"{agent.learning_starts - done} steps before the updates resume", flush=True)
    else:
        agent, done = cls(policy, env, seed=cfg.seed, verbose=0, tensorboard_log=tb, **kwargs), 0
        atomic_write_bytes(card_path, (json.dumps(_run_card(cfg, recipe, 0, False), indent=2) + "\n").encode())
    best_card = out / "best" / "policy.json"
    best = {"return": -np.inf, "step": 0}
    if done and best_card.is_file():
        kept = json.loads(best_card.read_text())
        best = {"return": float(kept["dream_return"]), "step": int(kept["step"])}
    history: list[dict[str, float]] = [{"step": int(r["step"]), "dream_return_mean": r["dream_return_mean"], "dream_return_std": r["dream_return_std"]}
                                       for r in read_log(out, "dream_eval") if r["step"] <= done] if done else []

    saved = {"step": done}  # the step last.zip holds

    def save_progress(finished: bool) -> None:
        new_step = saved["step"] != agent.num_timesteps  # not saved again when the last step was just evaluated and saved
        if new_step or finished:
            # the buffer before the agent: a kill between the two leaves a buffer of a later step, which is not used. A
            # checkpoint during training (SB3's callbacks run before a step's transitions are stored) keeps the buffer
            # without its last step's transitions; the one at the end keeps them all
            save_replay_buffer(agent, replay_file)
        if new_step:
            _save_atomic(agent, last)
            saved["step"] = agent.num_timesteps
        atomic_write_bytes(card_path, (json.dumps(_run_card(cfg, recipe, agent.num_timesteps, finished), indent=2) + "\n").encode())

    class DreamEval(BaseCallback):
        def __init__(self):
            super().__init__()
            self.next_eval = (done // cfg.eval_every + 1) * cfg.eval_every

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.next_eval += cfg.eval_every
                self._evaluate()
                save_progress(False)
            return True

        def _evaluate(self) -> None:
            r = dream_episode_returns(with_hold(self.model, cfg.action_hold), cfg.env_id, cfg.model, cfg.tau, cfg.eval_episodes, seed=cfg.seed + 12345, device=cfg.device,
                                     dream_kwargs=cfg.dream_kwargs)
            step = int(self.model.num_timesteps)
            history.append({"step": step, "dream_return_mean": float(r.mean()), "dream_return_std": float(r.std())})
            log.write(step, dream_return_mean=float(r.mean()), dream_return_std=float(r.std()))
            self.logger.record("dream/return_mean", float(r.mean()))
            if r.mean() > best["return"]:
                best.update({"return": float(r.mean()), "step": step})
                _save_atomic(self.model, out / "agent.zip")
                save_policy(self.model, out / "best", {"dream_id": cfg.env_id, "model": cfg.model if isinstance(cfg.model, str) else None, "tau": cfg.tau,
                                                         "dream_kwargs": cfg.dream_kwargs, "action_hold": cfg.action_hold, "step": step,
                                                         "dream_return": best["return"], "recipe": recipe})

    from trainers.infra.progress import progress

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.bar = progress(total=cfg.timesteps, desc=f"{cfg.algo.upper()} in {cfg.env_id}", unit="step", initial=done)

        def _on_step(self) -> bool:
            self.bar.update(self.training_env.num_envs)
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    start = time.time()
    cb = DreamEval()
    # the dream evaluations, a row each (OUT/dream_eval_log.csv: `tail -f` it); rows past the checkpoint are dropped
    with TrainingLog(out, "dream_eval", tensorboard=False, resume_from=done) as log:
        if done < cfg.timesteps:
            agent.learn(total_timesteps=cfg.timesteps - done, callback=[cb, Progress()], reset_num_timesteps=done == 0,
                        tb_log_name=f"{cfg.algo}-{cfg.env_id}-s{cfg.seed}")
            if not history or history[-1]["step"] != agent.num_timesteps:  # the last step, unless just evaluated
                cb._evaluate()
            save_progress(True)
    env.close()
    return {"algo": cfg.algo, "best_dream_return": best["return"], "best_step": best["step"], "seconds": time.time() - start,
            "history": history, "config": asdict(cfg), "resumed_from": done}
