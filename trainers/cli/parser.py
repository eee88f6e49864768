"""The ``gym-dream`` command line: one sub-parser per command (:mod:`trainers.cli.commands` holds what each runs).

A command whose options are a config dataclass's fields (collect, fit, calibrate, dream, demo, planet, export) gets
them with :func:`~trainers.cli.options.add_options`; the others declare their few arguments here.
"""

from __future__ import annotations

import argparse

from trainers.cli.options import add_options, tau_arg

EXAMPLES = """\
examples (CartPole, end to end on 2 CPU cores; the longest step is fit's default dreamer model, 1,500 updates: 26 min
for LunarLander in results/any_env.md; --family mdnrnn fitted CartPole in 35 s, results/cartpole_model.json):
  gym-dream demo                     # the shipped model: agents trained in the dream, scored on the real env
  gym-dream collect --env-id CartPole-v1 --out data/cartpole --steps 10000
  gym-dream fit data/cartpole --out models/cartpole
  gym-dream fit --minari cartpole/expert-v0 --out models/cartpole-offline   # from a local Minari dataset (extra: minari)
  gym-dream train cmaes --model models/cartpole --out runs/cmaes
  gym-dream train ppo --model models/cartpole --out runs/ppo --timesteps 100000
  gym-dream evaluate runs/cmaes/best --model models/cartpole --episodes 100 --taus 0.5 1.0 1.5
  gym-dream ensemble runs/ppo-vote runs/ppo-s0/best runs/ppo-s1/best runs/ppo-s2/best   # seeds that vote as one agent
  gym-dream ensemble runs/cmaes-avg runs/cmaes-s0/mean runs/cmaes-s1/mean --average   # controllers averaged into one
  gym-dream calibrate models/cartpole --write models/cartpole   # the tau where random play does as in the real env
  gym-dream dream --model models/cartpole --out dream.gif
  gym-dream planet --env-id dm_control/cartpole-swingup-v0 --out runs/planet --episodes 100   # RSSM + CEM (extra: dmc)
  gym-dream export models/cartpole --env-id Dream-MyCartPole-v0 --name dream-mycartpole
  gym-dream export models/cartpole --env-id Dream-MyCartPole-v0 --name dream-mycartpole-onnx --runtime onnx   # no torch needed
  gym-dream play carracing           # drive the dream with the keyboard in a web page (extra: onnx)
  gym-dream list
"""


def _config_command(sub, name: str, help: str, config: type, func, **options) -> argparse.ArgumentParser:
    """A sub-command whose options are the fields of ``config`` (``options``: :func:`~trainers.cli.options.add_options`'s)."""
    s = sub.add_parser(name, help=help)
    add_options(s, config, **options)
    s.set_defaults(func=func)
    return s


def _add_train(sub, func) -> None:
    from trainers.agents.cmaes import CMAESConfig
    from trainers.agents.sb3 import ALGOS, SB3Config

    s = sub.add_parser("train", help="train an agent inside a dream: cmaes | " + " | ".join(ALGOS))
    tsub = s.add_subparsers(dest="agent", required=True, metavar="AGENT")
    _config_command(tsub, "cmaes", "linear controller on [z, h] trained with CMA-ES, population x rollouts as one batch", CMAESConfig, func)
    for algo in ALGOS:
        _config_command(tsub, algo, f"stable-baselines3 {algo.upper()} on the batched dream", SB3Config, func, skip=("algo",))


def _add_evaluate(sub, func) -> None:
    s = sub.add_parser("evaluate", help="score an agent in the dream (several taus) and on the real env")
    s.add_argument("agent", help="a controller directory (from train cmaes), an SB3 .zip, or the name of an agent shipped with the model (gym-dream list)")
    s.add_argument("--env-id", default=None, help="the Dream-* id the agent was trained in (default: the model's own, "
                   "else Dream-Model-v0; with no --model either, Dream-CartPole-v0)")
    s.add_argument("--model", default=None, help="model directory or name (default: the id's default model)")
    s.add_argument("--algo", default=None, help="SB3 algorithm of a .zip when its name does not say")
    s.add_argument("--taus", type=tau_arg, nargs="+", default=[1.0], metavar="X|LOW:HIGH",
                   help="dream temperatures to score at, each one or a range LOW:HIGH (the first is the training tau)")
    s.add_argument("--episodes", type=int, default=100, help="real episodes (seeds seed..seed+N-1)")
    s.add_argument("--dream-episodes", type=int, default=None, help="dream episodes per tau (default: --episodes)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu")
    s.add_argument("--workers", type=int, default=1, help="processes for the real episodes (seeds split among them; same results)")
    s.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="where the real episodes run: local processes, or Ray tasks (pip install \"gym-dream[ray]\"); same results")
    s.add_argument("--ray-address", default=None, help="the Ray cluster of --backend ray: auto, host:6379 or ray://host:10001 "
                   "(default: $RAY_ADDRESS, else a Ray on this machine)")
    s.add_argument("--action-noise", type=float, default=0.0, metavar="SIGMA",
                   help="run the agent with Ornstein-Uhlenbeck noise of this sigma on its (Box) actions, in the dream and the real env "
                        "(the controller-driven collection's policy)")
    s.add_argument("--noise-theta", type=float, default=0.15, help="mean reversion of that noise")
    s.add_argument("--report", default=None, help="write PATH.md and PATH.json")
    s.set_defaults(func=func)


def _add_ensemble(sub, func) -> None:
    s = sub.add_parser("ensemble", help="store several agents as one that acts by their vote (no choosing among them): the most "
                       "probable action of the members' averaged distributions (Discrete), or their mean action (Box; a mean of CarRacing "
                       "CMA-ES controllers scored far under its members, results/tau_range.md: score a vote against a member)")
    s.add_argument("out", help="the ensemble's directory (members are copied into it)")
    s.add_argument("agents", nargs="+", help="agent directories (controllers, <run>/best of SB3 runs) or names of agents shipped with the model")
    s.add_argument("--env-id", default=None, help="the Dream-* id whose default model ships the named agents (default: "
                   "the model's own, else Dream-CartPole-v0)")
    s.add_argument("--model", default=None, help="model directory or name the named agents ship with (default: the id's default model)")
    s.add_argument("--average", action="store_true", help="linear controllers only: write ONE controller whose parameters are "
                   "their mean (it acts by their summed scores) instead of a vote")
    s.set_defaults(func=func)


def _add_features(sub, func) -> None:
    from gym_dream.models.mdnrnn import FEATURES

    s = sub.add_parser("features", help="copy an MDN-RNN model with another view for agents: [z, h] or [z, c, h] (its LSTM cell state too)")
    s.add_argument("model", help="model directory or name")
    s.add_argument("out", help="the new model directory (must not exist)")
    s.add_argument("--features", required=True, choices=sorted(FEATURES), help="; ".join(f"{k}: {v}" for k, v in FEATURES.items()))
    s.set_defaults(func=func)


def _add_experiment(sub, func) -> None:
    from trainers.experiment.cli import HELP as EXPERIMENT_HELP, add_arguments as experiment_arguments

    s = sub.add_parser("experiment", help="run stages of an experiment recipe (World Models' loop for an env)", description=EXPERIMENT_HELP)
    experiment_arguments(s)
    s.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    """The ``gym-dream`` parser; each sub-command's ``func`` is its function in :mod:`trainers.cli.commands`."""
    from trainers.cli import commands as c
    from trainers.cli.demo import DemoConfig
    from trainers.data.collect import CollectConfig
    from trainers.evaluation.calibrate import CalibrateConfig
    from trainers.evaluation.video import DreamVideoConfig
    from trainers.export.package import ExportConfig
    from trainers.fit.dispatch import FitConfig
    from trainers.planning.planet_loop import PlaNetConfig
    from trainers.play import PlayConfig

    p = argparse.ArgumentParser(
        prog="gym-dream",
        description="Turn trained world models into Gymnasium environments: collect real data, fit a world model, "
        "train agents inside its dream, and score them on the real env.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error (also accepted after the sub-command)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _config_command(sub, "collect", "roll out a random policy in a real env and store episodes (resumable)", CollectConfig, c._cmd_collect)
    _config_command(sub, "fit", "fit a world model (dreamer; --family mdnrnn | rssm) on a dataset and write a model directory (resumable)", FitConfig,
                    c._cmd_fit, skip=("extra_card",), positional="data", optional_positional=True)
    _add_train(sub, c._cmd_train)
    _add_evaluate(sub, c._cmd_evaluate)
    _add_ensemble(sub, c._cmd_ensemble)
    _add_features(sub, c._cmd_features)
    _config_command(sub, "calibrate", "the dream temperature at which random play does as well in the dream as in the real env",
                    CalibrateConfig, c._cmd_calibrate, positional="model")
    _config_command(sub, "dream", "write a GIF/MP4 of a dream, or real frames next to open-loop predictions", DreamVideoConfig, c._cmd_dream)
    _config_command(sub, "demo", "train CMA-ES and PPO in the shipped CartPole dream, score them on the real env", DemoConfig, c._cmd_demo)
    _config_command(sub, "planet", "the PlaNet loop: RSSM + CEM planner, collecting with the planner (resumable)", PlaNetConfig, c._cmd_planet)
    _config_command(sub, "export", "turn a model directory into a pip-installable environment package (project + wheel)", ExportConfig,
                    c._cmd_export, positional="model_dir")
    _config_command(sub, "play", "drive a model's dream with the keyboard in a web page (served on 127.0.0.1, or --build DIR)",
                    PlayConfig, c._cmd_play, positional="model")
    _add_experiment(sub, c._cmd_experiment)
    sub.add_parser("list", help="list available models and Dream-* ids").set_defaults(func=c._cmd_list)
    return p
