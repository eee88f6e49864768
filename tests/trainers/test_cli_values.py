"""The command line's promise (issue 47, items 6 and 7): a value it cannot use is one line naming the option and the fix,
given before any folder is made; never a traceback from deep inside numpy, torch or Gymnasium."""

import numpy as np
import pytest

from gym_dream.checkpoint import save_model
from trainers.cli.commands import main
from trainers.agents.controller import LinearController


@pytest.fixture
def model_dir(vector_model, tmp_path):
    return save_model(vector_model, tmp_path / "model", {"env": {"id": "CartPole-v1", "max_episode_steps": 20}})


@pytest.fixture
def controller_dir(vector_model, tmp_path):
    return LinearController(vector_model.feature_dim, vector_model.action_space).save(tmp_path / "controller")


def _one_line(capsys, *needles):
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


# -- 6. every count option is checked before any folder is made ---------------------------------------------------

COUNTS = [
    (["train", "cmaes", "--generations", "-1"], "--generations must be an integer >= 1"),
    (["train", "cmaes", "--generations", "0"], "--generations must be an integer >= 1"),
    (["train", "cmaes", "--popsize", "1"], "--popsize must be an integer >= 2"),
    (["train", "cmaes", "--rollouts", "0"], "--rollouts must be an integer >= 1"),
    (["train", "cmaes", "--max-episode-steps", "0"], "--max-episode-steps must be an integer >= 1"),
    (["train", "cmaes", "--sigma0", "0"], "--sigma0 must be a number > 0"),
    (["train", "cmaes", "--max-seconds", "nan"], "--max-seconds must be a number >= 0"),
    (["train", "cmaes", "--max-seconds", "-1"], "--max-seconds must be a number >= 0"),
    (["train", "ppo", "--timesteps", "-5"], "--timesteps must be an integer >= 1"),
    (["train", "ppo", "--num-envs", "0"], "--num-envs must be an integer >= 1"),
    (["train", "dqn", "--eval-every", "0"], "--eval-every must be an integer >= 1"),
    (["train", "sac", "--eval-episodes", "-1"], "--eval-episodes must be an integer >= 1"),
    (["train", "a2c", "--action-hold", "0"], "--action-hold must be an integer >= 1"),
    (["calibrate", "MODEL", "--episodes", "0"], "--episodes must be an integer >= 1"),
    (["calibrate", "MODEL", "--dream-episodes", "-3"], "--dream-episodes must be an integer >= 1"),
    (["calibrate", "MODEL", "--workers", "0"], "--workers must be an integer >= 1"),
    (["dream", "--steps", "0"], "--steps must be an integer >= 1"),
    (["dream", "--fps", "0"], "--fps must be an integer >= 1"),
    (["demo", "--generations", "0"], "--generations must be an integer >= 1"),
    (["demo", "--ppo-timesteps", "-1"], "--ppo-timesteps must be an integer >= 0"),
    (["demo", "--episodes", "0"], "--episodes must be an integer >= 1"),
    (["planet", "--episodes", "0"], "--episodes must be an integer >= 1"),
    (["planet", "--seed-episodes", "0"], "--seed-episodes must be an integer >= 1"),
    (["planet", "--eval-every", "0"], "--eval-every must be an integer >= 1"),
    (["collect", "--steps", "-1"], "--steps must be an integer >= 1"),
    (["collect", "--workers", "0"], "--workers must be an integer >= 1"),
    (["evaluate", "AGENT", "--episodes", "0"], "--episodes must be an integer >= 1"),
    (["evaluate", "AGENT", "--episodes", "2", "--dream-episodes", "0"], "--dream-episodes must be an integer >= 1"),
    (["evaluate", "AGENT", "--episodes", "2", "--workers", "0"], "--workers must be an integer >= 1"),
]


@pytest.mark.parametrize("argv, message", COUNTS, ids=[" ".join(a) for a, _ in COUNTS])
def test_every_count_option_is_checked_before_any_folder_is_made(argv, message, model_dir, controller_dir, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [str(controller_dir) if a == "AGENT" else str(model_dir) if a == "MODEL" else a for a in argv]
    if argv[0] in ("train", "dream"):
        argv += ["--model", str(model_dir)]
    if argv[0] == "evaluate":
        argv += ["--model", str(model_dir), "--report", str(out / "report")]
    else:
        argv += ["--out", str(out)] if argv[0] not in ("calibrate",) else ["--write", str(out)]
    assert main(argv) == 2
    _one_line(capsys, message)
    assert not out.exists()


# -- 7. one line, not a traceback ---------------------------------------------------------------------------------


def test_evaluate_of_a_truncated_controller_is_one_line(model_dir, controller_dir, capsys):
    weights = controller_dir / "controller.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    assert main(["evaluate", str(controller_dir), "--model", str(model_dir), "--episodes", "1"]) == 1
    _one_line(capsys, "controller.safetensors cannot be read", "truncated or corrupted", "train it again")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_controller_with_nan_parameters_is_refused_at_load(vector_model, model_dir, tmp_path, capsys, value):
    controller = LinearController(vector_model.feature_dim, vector_model.action_space)
    controller.params[3] = value
    path = controller.save(tmp_path / "bad")
    assert main(["evaluate", str(path), "--model", str(model_dir), "--episodes", "1"]) == 1
    _one_line(capsys, "1 of the controller's", "NaN or infinite")


def test_a_controller_evaluated_on_another_dream_is_one_line_naming_both(controller_dir, capsys):
    """A CartPole controller on the CarRacing dream failed inside numpy's einsum; now the spaces are compared first."""
    assert main(["evaluate", str(controller_dir), "--env-id", "Dream-CarRacing-v0", "--episodes", "1"]) == 1
    _one_line(capsys, "reads observations of shape (20,) and acts in Discrete(2)", "Dream-CarRacing-v0 gives observations of shape (288,)")


@pytest.mark.parametrize("command", [["train", "cmaes"], ["train", "ppo"], ["dream"]])
def test_a_real_env_id_where_a_dream_is_run_names_the_dream_id(command, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([*command, "--env-id", "CartPole-v1", "--out", str(out)]) == 2
    _one_line(capsys, "--env-id CartPole-v1 is a real env, not a dream", "--env-id Dream-CartPole-v0")
    assert not out.exists()


def test_a_real_env_id_without_a_dream_names_the_model_dream(tmp_path, capsys):
    assert main(["train", "cmaes", "--env-id", "MountainCarContinuous-v0", "--out", str(tmp_path / "o")]) == 2
    _one_line(capsys, "--env-id Dream-Model-v0 --model MODEL")


def test_collect_env_kwargs_the_env_does_not_take_is_one_line(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["collect", "--env-id", "CartPole-v1", "--out", str(out), "--steps", "50", "--workers", "1", "--env-kwargs", '{"evil": 1}']) == 2
    _one_line(capsys, '--env-kwargs {"evil": 1} are not arguments CartPole-v1 takes', "evil")
    assert not out.exists()


def test_collect_checks_the_minari_id_before_collecting(tmp_path, capsys):
    out = tmp_path / "data"
    code = main(["collect", "--env-id", "CartPole-v1", "--out", str(out), "--steps", "50", "--workers", "1", "--minari", "bad id"])
    assert code in (1, 2)  # 2: the id is refused; 1: without the minari extra, which is named
    err = _one_line(capsys)
    assert "is not a Minari dataset id" in err or 'pip install "gym-dream[minari]"' in err
    assert not out.exists()  # nothing was collected
