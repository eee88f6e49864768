"""The ``gym-dream`` command: collect, fit, train, evaluate, dream, list, ... one function per sub-command, and
:func:`main`, which runs the one the command line names (its options: :mod:`trainers.cli.parser`).

Every sub-command's options are the fields of its config dataclass (same names, same docs), so a
script and the CLI run exactly the same code. What a command finds is printed (stdout); what a long job does on the
way is logged (the ``trainers`` logger, on stderr: :func:`trainers.infra.log.log_to_stderr`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from trainers.cli.options import config_from
from trainers.cli.parser import build_parser
from trainers.infra.log import log_to_stderr



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
    print(fit(config_from(FitConfig, ns)))  # the model directory (how it went: the log on stderr)


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


def _cmd_play(ns):
    from trainers.play import PlayConfig, play

    play(config_from(PlayConfig, ns))


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
    log_to_stderr()
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
