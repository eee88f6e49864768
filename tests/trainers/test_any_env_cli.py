"""The README's loop for an env outside gym-dream's catalogue: collect, fit, then train, evaluate, calibrate and dream
with only ``--model`` (the model's own dream, Dream-Model-v0, and its real env from the card)."""

import json

import gymnasium as gym
import pytest

from trainers.cli.commands import main
from trainers.data.real_envs import dream_id_for, real_env_of


@pytest.fixture(scope="module")
def acrobot_model(tmp_path_factory):
    from trainers.data.collect import CollectConfig, collect
    from trainers.fit.dispatch import FitConfig, fit

    root = tmp_path_factory.mktemp("acrobot")
    collect(CollectConfig(env_id="Acrobot-v1", out=str(root / "data"), steps=1200, workers=1, seed=0))
    return fit(FitConfig(data=str(root / "data"), out=str(root / "model"), family="mdnrnn", preset="tiny", bank_size=8))


def test_a_model_of_an_env_outside_the_catalogue_runs_in_its_own_dream(acrobot_model, tiny_cartpole_model):
    assert dream_id_for(None, str(acrobot_model)) == "Dream-Model-v0"
    assert real_env_of("Dream-Model-v0", str(acrobot_model)) == "Acrobot-v1"
    assert dream_id_for(None, str(tiny_cartpole_model)) == "Dream-CartPole-v0"  # a catalogue env keeps its id
    assert dream_id_for(None, None) == "Dream-CartPole-v0" and dream_id_for("Dream-CarRacing-v0", None) == "Dream-CarRacing-v0"


def test_the_cli_loop_trains_evaluates_calibrates_and_dreams_with_only_the_model(acrobot_model, tmp_path, capsys):
    m = str(acrobot_model)
    assert main(["train", "ppo", "--model", m, "--out", str(tmp_path / "ppo"), "--timesteps", "256", "--num-envs", "4",
                 "--eval-every", "128", "--eval-episodes", "2"]) == 0
    run = json.loads((tmp_path / "ppo" / "agent.json").read_text())
    assert run["env_id"] == "Dream-Model-v0"
    assert main(["train", "cmaes", "--model", m, "--out", str(tmp_path / "cmaes"), "--generations", "1", "--popsize", "4",
                 "--rollouts", "1", "--max-episode-steps", "20"]) == 0
    report = tmp_path / "report"
    assert main(["evaluate", str(tmp_path / "ppo" / "best"), "--model", m, "--episodes", "2", "--report", str(report)]) == 0
    row = json.loads(report.with_suffix(".json").read_text())[0]
    assert row["dream_id"] == "Dream-Model-v0" and row["real_env_id"] == "Acrobot-v1" and row["real"]["episodes"] == 2
    assert main(["calibrate", m, "--taus", "1.0", "1.5", "--episodes", "2", "--dream-episodes", "2"]) == 0
    assert "closest: tau" in capsys.readouterr().out
    assert main(["dream", "--model", m, "--out", str(tmp_path / "d.gif"), "--steps", "5"]) == 0
    assert (tmp_path / "d.gif").stat().st_size > 0
    # the dream is a registered env, with the horizon the real env's episodes had
    env = gym.make("Dream-Model-v0", model=m)
    assert env.unwrapped.model.card["env"]["id"] == "Acrobot-v1"
    assert env.spec.id == "Dream-Model-v0"
