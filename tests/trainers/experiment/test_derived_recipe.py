"""``gym-dream experiment --env-id ID``: a recipe derived from the env's spaces, the same choices for every env."""

import json

import pytest

from trainers.cli.commands import main
from trainers.experiment.derive import DEFAULT_STEPS, ROUNDS, derive_recipe
from trainers.experiment.runner import all_stages


def test_the_agent_and_the_data_follow_the_spaces_alone():
    cartpole, pendulum = derive_recipe("CartPole-v1"), derive_recipe("Pendulum-v1", steps=9000)
    assert list(cartpole.sb3) == ["ppo"] and cartpole.iterate["agent"] == "ppo"  # discrete actions: PPO
    assert list(pendulum.sb3) == ["sac"] and pendulum.iterate["agent"] == "sac"  # continuous: SAC
    assert cartpole.sb3["ppo"].keys() == {"timesteps"} and pendulum.sb3["sac"].keys() == {"timesteps"}  # SB3's own defaults
    for r, steps in ((cartpole, DEFAULT_STEPS), (pendulum, 9000)):  # the real-step budget: random data + the rounds
        assert r.collect["steps"] + ROUNDS * r.iterate["steps"] <= steps < r.collect["steps"] + ROUNDS * r.iterate["steps"] + ROUNDS + 1
    assert cartpole.dream_id == "Dream-CartPole-v0"  # a catalogue env keeps its id; another gets one of its own
    assert derive_recipe("Acrobot-v1").dream_id == "Dream-Acrobot-v0"
    assert pendulum.reproduce == "gym-dream experiment --env-id Pendulum-v1 --steps 9000"
    # each round's agent is trained in the latest dream before it drives the round's collection
    stages = all_stages(cartpole)
    assert stages[:3] == ["collect", "fit", "sb3"] and stages.count("iterate") == ROUNDS and stages.count("train") == 1
    assert all(stages[i - 1] == "sb3" for i, s in enumerate(stages) if s == "iterate")


@pytest.mark.parametrize("env_id,match", [("Blackjack-v1", "flat Box"), ("CartPole-v1", "--steps")])
def test_what_it_cannot_dream_is_refused_with_the_fix(env_id, match):
    with pytest.raises(ValueError, match=match):
        derive_recipe(env_id, steps=DEFAULT_STEPS if env_id != "CartPole-v1" else 10)


def test_the_whole_loop_runs_from_an_env_id(tmp_path, capsys):
    work = tmp_path / "work"
    assert main(["experiment", "--env-id", "Acrobot-v1", "--tiny", "--work", str(work), "--workers", "1"]) == 0
    report = json.loads((work / "results" / "acrobot-v1.json").read_text())
    assert any("PPO" in row["agent"] for row in report["sb3_agents"]) and len(list(work.glob("round-*"))) == ROUNDS
    text = (work / "results" / "acrobot-v1.md").read_text()
    assert "gym-dream experiment --env-id Acrobot-v1" in text and "| random policy |" in text


@pytest.mark.parametrize("flag,value", [("--workers", "0"), ("--jobs", "-1"), ("--generations", "0"), ("--collect-workers", "0"),
                                        ("--steps", "100"), ("--rnn-minutes", "0"), ("--train-minutes", "-2")])
def test_count_options_are_checked_before_any_folder(flag, value, tmp_path):
    work = tmp_path / "work"
    with pytest.raises(SystemExit, match=flag):
        main(["experiment", "--env-id", "Acrobot-v1", "--work", str(work), flag, value])
    assert not work.exists()
