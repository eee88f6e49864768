"""stable-baselines3 agents trained inside a batched dream (:class:`~trainers.agents.sb3_vec_env.SB3VecEnv`, the dream as SB3's
``VecEnv``): the run's settings, SB3's hyper-parameters as data, and a resumable training loop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

import gym_dream  # noqa: F401
from gym_dream.error import DependencyNotInstalled
from trainers.agents.action_hold import check_action_hold
from trainers.fit.presets import check_ranges
from trainers.agents.sb3_vec_env import SB3VecEnv

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

    from trainers.agents.sb3_run import run_in_dream

    cfg = replace(cfg, env_id=dream_id_for(cfg.env_id, cfg.model))
    with held(cfg.out, f"train {cfg.algo}"):  # one process per run: a second copy would interleave its checkpoints
        return run_in_dream(cfg)
