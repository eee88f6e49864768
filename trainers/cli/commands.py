"""The ``gym-dream`` command: collect, fit, train, evaluate, dream, list.

Every sub-command's options are the fields of its config dataclass (same names, same docs), so a
script and the CLI run exactly the same code.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from trainers.cli.options import add_options, config_from, tau_arg

EXAMPLES = """\
examples (CartPole, end to end, a few minutes on 2 CPU cores):
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
  gym-dream list
"""


def _tau_text(tau) -> str:
    """A card's tau as ``gym-dream list`` prints it: 1.15, or 1.0:1.5 for a range (as typed on the command line)."""
    from gym_dream.envs.core import tau_name

    try:
        return tau_name(tau)
    except (TypeError, ValueError):
        return repr(tau)


def _cmd_collect(ns):
    from trainers.data.collect import CollectConfig, collect

    print(json.dumps(collect(config_from(CollectConfig, ns))))


def _cmd_fit(ns):
    from trainers.fit.dispatch import FitConfig, fit

    if (ns.data is None) == (ns.minari is None):
        raise ValueError("fit needs one dataset: a folder written by `gym-dream collect` (gym-dream fit DATA --out DIR) "
                         "or a local Minari dataset (gym-dream fit --minari DATASET_ID --out DIR), not both.")
    if ns.data is None:
        del ns.data  # FitConfig's default; --minari's shards go to <out>.minari
    fit(config_from(FitConfig, ns))


def _cmd_train(ns):
    if ns.agent == "cmaes":
        from trainers.agents.cmaes import CMAESConfig, train_cmaes

        r = train_cmaes(config_from(CMAESConfig, ns))
        print(f"best dream fitness {r['best_fitness']:.1f}; controller in {r['out']}/best (best candidate) and {r['out']}/mean")
    else:
        from trainers.agents.sb3 import SB3Config, train_sb3

        ns.algo = ns.agent
        r = train_sb3(config_from(SB3Config, ns))
        print(f"best dream return {r['best_dream_return']:.1f} at step {r['best_step']}; agent in {ns.out}/best (as data; {ns.out}/agent.zip in SB3's own format)")


def _cmd_evaluate(ns):
    from gym_dream.agents import agent_path
    from trainers.data.real_envs import dream_id_for
    from trainers.evaluation.evaluate import evaluate, markdown_table, write_report
    from trainers.agents.stored_agent import load_agent, load_stored_agent

    ns.env_id = dream_id_for(ns.env_id, ns.model)
    path = agent_path(ns.agent, ns.model, ns.env_id)  # a path, or the name of an agent shipped with the model
    # an SB3 .zip only when the user named that file; an agent found by name (shipped with a model) is read as data only
    agent, name = (load_agent(path, ns.algo) if path == Path(ns.agent) else load_stored_agent(path)), path.name
    if ns.action_noise:
        import gymnasium as gym

        from trainers.data.noise import WithActionNoise

        space = gym.make(ns.env_id, **({"model": ns.model} if ns.model else {})).action_space
        agent = WithActionNoise(agent, space, ns.action_noise, ns.noise_theta)
        name += f" + OU noise (sigma {ns.action_noise}, theta {ns.noise_theta})"
    row = evaluate(agent, ns.env_id, ns.model, tuple(ns.taus), ns.episodes, ns.dream_episodes, ns.seed, ns.device, name=name, workers=ns.workers,
                   backend=ns.backend, ray_address=ns.ray_address)
    print(markdown_table([row]))
    if ns.report:
        md, js = write_report([row], ns.report)
        print(f"wrote {md} and {js}")


def _cmd_ensemble(ns):
    from gym_dream.agents import agent_path
    from trainers.agents.ensemble import save_ensemble
    from trainers.data.real_envs import dream_id_for
    from trainers.agents.stored_agent import load_stored_agent

    ns.env_id = dream_id_for(ns.env_id, ns.model)
    members = [agent_path(a, ns.model, ns.env_id) for a in ns.agents]
    extra = {"model": ns.model} if ns.model else {}
    if ns.average:
        from trainers.agents.controller import LinearController, is_controller_dir

        if not all(is_controller_dir(m) for m in members):
            raise SystemExit(f"--average takes linear controllers only (controller.json); not: {[str(m) for m in members if not is_controller_dir(m)]}. "
                             "Leave --average out to let any agents vote.")
        out = LinearController.mean_of([LinearController.load(m) for m in members]).save(
            ns.out, {**extra, "averaged_from": [str(m) for m in members]})
        print(f"wrote {out}: one controller, the mean of {len(members)} controllers' parameters (gym-dream evaluate {out} --env-id {ns.env_id} ...)")
        return
    out = save_ensemble(members, ns.out, extra or None, load_member=load_stored_agent)  # members are data, never a .zip
    print(f"wrote {out}: {len(members)} agents voting as one (gym-dream evaluate {out} --env-id {ns.env_id} ...)")


def _cmd_features(ns):
    from gym_dream.checkpoint import with_features
    from gym_dream.store import find_model_dir

    out = with_features(find_model_dir(ns.model), ns.out, ns.features)
    print(f"wrote {out}: the weights of {ns.model}, whose agents see {ns.features} "
          f"(gym-dream train cmaes --env-id ... --model {out})")


def _cmd_dream(ns):
    from trainers.evaluation.video import DreamVideoConfig, write_dream_video

    print(write_dream_video(config_from(DreamVideoConfig, ns)))


def _cmd_demo(ns):
    from trainers.cli.demo import DemoConfig, run_demo

    print(run_demo(config_from(DemoConfig, ns)))


def _cmd_export(ns):
    from trainers.export.package import ExportConfig, builtin_id_note, export

    cfg = config_from(ExportConfig, ns)
    paths = export(cfg)
    print(f"project: {paths['project']}")
    print(f"wheel:   {paths['wheel']}")
    for path in paths.get("kept", []):
        print(f"kept:    {path} (edited since the last export, so not regenerated; the wheel carries your version. "
              f"Delete it and export again to regenerate it)")
    note = builtin_id_note(cfg.env_id, cfg.name)
    if note:
        print(f"note: {note}")
    if paths.get("runtime_wheel"):  # --runtime onnx: the torch-free runtime's wheel is written beside the package's
        print(f"runtime: {paths['runtime_wheel']}")
        print(f"install: pip install --find-links {Path(cfg.out)} {paths['wheel']}   (no torch)")
        print(f'then:    python -c "import gymnasium as gym, gym_dream_onnx; print(gym.make(\'{cfg.env_id}\'))"')
        return
    print(f"install: pip install {paths['wheel']}")
    print(f'then:    python -c "import gymnasium as gym, gym_dream; print(gym.make(\'{cfg.env_id}\'))"')


def _cmd_calibrate(ns):
    from trainers.evaluation.calibrate import CalibrateConfig, calibrate_tau, calibration_table, write_tau

    cfg = config_from(CalibrateConfig, ns)
    cal = calibrate_tau(cfg)
    print(calibration_table(cal))
    if cfg.write:
        print(f"wrote dream_env.tau = {cal['tau']} (the default tau of its dreams) into {write_tau(cfg.write, cal)}")
    else:
        print(f"closest: tau {cal['tau']}; --write MODEL_DIR records it as the default tau of that model's dreams")


def _cmd_planet(ns):
    from trainers.planning.planet_loop import PlaNetConfig, run_planet

    print(json.dumps(run_planet(config_from(PlaNetConfig, ns))))


def _cmd_experiment(ns):
    from trainers.experiment.cli import main as run_experiment

    run_experiment(ns)


def _cmd_list(ns):
    import gymnasium as gym

    import gym_dream
    from gym_dream.envs.registry import CLAIMS, CONFLICT_ENTRY, DREAM_ENTRY

    from gym_dream.agents import model_agents
    from gym_dream.error import GymDreamError

    print("models (and the agents shipped with them: gym-dream evaluate NAME --model MODEL):")
    models = gym_dream.available_models()
    for name, path in sorted(models.items()):
        print(f"  {name:24s} {path}")
        try:
            agents = model_agents(path)
        except (GymDreamError, OSError):  # an unreadable card is reported when the model is loaded
            agents = {}
        for agent, info in sorted(agents.items()):
            tau = info.get("tau")
            print(f"      agent {agent:20s} {info.get('kind', '?')} trained at tau {'?' if tau is None else _tau_text(tau)}")
    from gym_dream.store import model_conflicts

    conflicts = model_conflicts()
    if conflicts:
        print("model names declared by several installed packages:")
        for name, conflict in sorted(conflicts.items()):
            print(f"  {name:24s} CONFLICT: {conflict.message()}")
    print("dream env ids:")
    for spec in sorted(gym.registry.values(), key=lambda s: s.id):
        if spec.entry_point == CONFLICT_ENTRY:
            print(f"  {spec.id:28s} CONFLICT: {spec.kwargs['message']}")
        elif spec.entry_point == DREAM_ENTRY:
            d = spec.kwargs.get("default_model")
            state = "ready" if d in models else "no default model installed (pass model=...)"
            print(f"  {spec.id:28s} real env {spec.kwargs.get('real_env_id')}, default model {d!r}: {state}")
    if CLAIMS:
        print("ids declared by installed model packages:")
        for c in sorted(CLAIMS, key=lambda c: (c.dream_id.env_id, c.dream_id.source)):
            label = {"registered": "registered", "conflict": "CONFLICT (declared by several packages)", "refused": "REFUSED",
                     "name conflict": "NOT REGISTERED (its model's name is gym-dream's)"}[c.status]
            line = f"  {c.dream_id.env_id!r:30s} by {c.dream_id.source} (model {c.dream_id.model!r}): {label}"
            print(line + (f": {c.reason}" if c.status in ("refused", "name conflict") else ""))


def build_parser() -> argparse.ArgumentParser:
    from trainers.agents.cmaes import CMAESConfig
    from trainers.data.collect import CollectConfig
    from trainers.fit.dispatch import FitConfig
    from trainers.agents.sb3 import ALGOS, SB3Config
    from trainers.evaluation.video import DreamVideoConfig

    p = argparse.ArgumentParser(
        prog="gym-dream",
        description="Turn trained world models into Gymnasium environments: collect real data, fit a world model, "
        "train agents inside its dream, and score them on the real env.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error (also accepted after the sub-command)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("collect", help="roll out a random policy in a real env and store episodes (resumable)")
    add_options(s, CollectConfig)
    s.set_defaults(func=_cmd_collect)

    s = sub.add_parser("fit", help="fit a VAE + MDN-RNN world model on a dataset and write a model directory (resumable)")
    add_options(s, FitConfig, skip=("extra_card",), positional="data", optional_positional=True)
    s.set_defaults(func=_cmd_fit)

    s = sub.add_parser("train", help="train an agent inside a dream: cmaes | " + " | ".join(ALGOS))
    tsub = s.add_subparsers(dest="agent", required=True, metavar="AGENT")
    t = tsub.add_parser("cmaes", help="linear controller on [z, h] trained with CMA-ES, population x rollouts as one batch")
    add_options(t, CMAESConfig)
    t.set_defaults(func=_cmd_train)
    for algo in ALGOS:
        t = tsub.add_parser(algo, help=f"stable-baselines3 {algo.upper()} on the batched dream")
        add_options(t, SB3Config, skip=("algo",))
        t.set_defaults(func=_cmd_train)

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
    s.set_defaults(func=_cmd_evaluate)

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
    s.set_defaults(func=_cmd_ensemble)

    from gym_dream.models.mdnrnn import FEATURES

    s = sub.add_parser("features", help="copy an MDN-RNN model with another view for agents: [z, h] or [z, c, h] (its LSTM cell state too)")
    s.add_argument("model", help="model directory or name")
    s.add_argument("out", help="the new model directory (must not exist)")
    s.add_argument("--features", required=True, choices=sorted(FEATURES), help="; ".join(f"{k}: {v}" for k, v in FEATURES.items()))
    s.set_defaults(func=_cmd_features)

    from trainers.evaluation.calibrate import CalibrateConfig

    s = sub.add_parser("calibrate", help="the dream temperature at which random play does as well in the dream as in the real env")
    add_options(s, CalibrateConfig, positional="model")
    s.set_defaults(func=_cmd_calibrate)

    s = sub.add_parser("dream", help="write a GIF/MP4 of a dream, or real frames next to open-loop predictions")
    add_options(s, DreamVideoConfig)
    s.set_defaults(func=_cmd_dream)

    from trainers.cli.demo import DemoConfig

    s = sub.add_parser("demo", help="train CMA-ES and PPO in the shipped CartPole dream, score them on the real env")
    add_options(s, DemoConfig)
    s.set_defaults(func=_cmd_demo)

    from trainers.planning.planet_loop import PlaNetConfig

    s = sub.add_parser("planet", help="the PlaNet loop: RSSM + CEM planner, collecting with the planner (resumable)")
    add_options(s, PlaNetConfig)
    s.set_defaults(func=_cmd_planet)

    from trainers.export.package import ExportConfig

    s = sub.add_parser("export", help="turn a model directory into a pip-installable environment package (project + wheel)")
    add_options(s, ExportConfig, positional="model_dir")
    s.set_defaults(func=_cmd_export)

    from trainers.experiment.cli import HELP as EXPERIMENT_HELP, add_arguments as experiment_arguments

    s = sub.add_parser("experiment", help="run stages of an experiment recipe (World Models' loop for an env)", description=EXPERIMENT_HELP)
    experiment_arguments(s)
    s.set_defaults(func=_cmd_experiment)

    s = sub.add_parser("list", help="list available models and Dream-* ids")
    s.set_defaults(func=_cmd_list)
    return p


def _interrupt_on_sigterm() -> None:
    """`kill PID` stops a long job like Ctrl-C does: collected episodes are flushed, checkpoints stay whole.
    (A job started with `&` from a script ignores Ctrl-C's SIGINT, so SIGTERM is how it gets stopped.)"""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        def handler(signum, frame):
            raise KeyboardInterrupt(f"signal {signum}")

        signal.signal(signal.SIGTERM, handler)


def _raised_here(e: BaseException) -> bool:
    """Whether ``e`` was raised by gym-dream's own code (gym_dream/, trainers/), not deep inside a library."""
    tb = e.__traceback__
    last = None
    while tb is not None:
        last, tb = tb, tb.tb_next
    if last is None:
        return False
    import gym_dream
    import trainers

    where = Path(last.tb_frame.f_code.co_filename).resolve()
    return any(where.is_relative_to(Path(pkg.__file__).resolve().parent) for pkg in (gym_dream, trainers))


def user_error(e: BaseException) -> int | None:
    """The exit code of an error a user can act on (2: bad arguments), or None for a bug (traceback).

    gym-dream's own error kinds (:class:`gym_dream.error.GymDreamError`), Gymnasium's (an unknown env id)
    and missing files always name the problem; a ``ValueError``/``TypeError`` counts only when gym-dream's
    code raised it (its argument checks), not when it comes from inside torch or numpy."""
    import gymnasium as gym

    from gym_dream.error import DeviceNotAvailable, GymDreamError, ModelNotFound, UnsafeId

    if isinstance(e, (UnsafeId, ModelNotFound, DeviceNotAvailable, gym.error.UnregisteredEnv)):
        return 2
    if isinstance(e, (GymDreamError, gym.error.Error)):
        return 1
    if isinstance(e, (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError, FileExistsError)):
        return 1
    if isinstance(e, (ValueError, TypeError)) and _raised_here(e):
        return 2
    return None


def main(argv: list[str] | None = None) -> int:
    """Run the ``gym-dream`` command. An error a user can act on prints one line (exit 2 for bad
    arguments, 1 otherwise); ``--debug`` (anywhere on the line) or ``GYM_DREAM_DEBUG=1`` shows the traceback."""
    import os

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GYM_DREAM_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    ns = build_parser().parse_args(argv)
    _interrupt_on_sigterm()
    try:
        ns.func(ns)
    except KeyboardInterrupt:
        print("interrupted: what was finished is saved; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001  (sorted by user_error: a bug still shows its traceback)
        code = user_error(e)
        if code is None or debug:
            raise
        from gym_dream.naming import one_line

        print(f"gym-dream {ns.command}: error: {one_line(e, 4000)} (--debug shows the traceback)", file=sys.stderr)
        return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
