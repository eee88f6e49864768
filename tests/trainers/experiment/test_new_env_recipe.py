"""How a user adds a recipe for a new env: a TOML file, run end to end by ``gym-dream experiment``."""

import json

import gymnasium as gym

from trainers.cli.commands import main

#: the fit and CMA-ES budgets of a recipe that must run in seconds
TINY_BUDGETS = """
[fit]
family = "mdnrnn"
preset = "tiny"
bank_size = 16

[cmaes]
generations = 2
popsize = 4
rollouts = 2
"""

RECIPE = """
# a new env, not in gym_dream.catalogue: the recipe names its dream id and model
name = "acrobot"
real_id = "Acrobot-v1"
dream_id = "Dream-Acrobot-v0"
model_name = "acrobot"
taus = [1.0, [0.8, 1.2]]  # a number, and a range: each dream episode of that run draws its own temperature
main_tau = 1.0
episodes = 2
sweep_episodes = 2
random_episodes = 2

[collect]
steps = 1500
workers = 1
seed = 3
""" + TINY_BUDGETS


def test_a_recipe_for_a_new_env_runs_end_to_end(tmp_path, capsys):
    path = tmp_path / "acrobot.toml"
    path.write_text(RECIPE)
    work, results, package = tmp_path / "work", tmp_path / "results", tmp_path / "package"
    stages = ["collect", "fit", "train", "evaluate", "report", "ship"]
    assert main(["experiment", str(path), *stages, "--work", str(work), "--results", str(results), "--package", str(package),
                 "--workers", "1"]) == 0
    text = (results / "acrobot.md").read_text()
    assert "# Acrobot-v1 from dreams alone" in text and "| random policy |" in text
    assert "| CMA-ES linear, trained at tau=1.0" in text and "| CMA-ES linear, trained at tau=0.8:1.2" in text
    assert text.index("trained at tau=0.8:1.2") < text.index("trained at tau=1.0")  # ordered by tau, a range by its low end
    assert (work / "cmaes" / "tau0.8-1.2-seed0" / "mean" / "controller.json").is_file()
    assert (results / "acrobot_cmaes.png").is_file() and (results / "acrobot_real_vs_dream.gif").is_file()
    # the shipped package: the model, its scores and the controller trained in its dream, found by name
    from gym_dream.agents import find_agent, model_agents

    agents = model_agents(package)
    assert sorted(agents) == ["cmaes-tau0.8-1.2", "cmaes-tau1.0"]
    assert agents["cmaes-tau0.8-1.2"]["tau"] == [0.8, 1.2] and agents["cmaes-tau1.0"]["tau"] == 1.0
    assert (find_agent("cmaes-tau1.0", package) / "controller.json").is_file()
    env = gym.make("Dream-Acrobot-v0", model=str(package))
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    # and the shipped agent is scored again by name, as a user would
    assert main(["evaluate", "cmaes-tau1.0", "--env-id", "Dream-Acrobot-v0", "--model", str(package), "--episodes", "1"]) == 0
    assert "cmaes-tau1.0" in capsys.readouterr().out
    # the range agent, scored in its range's dream and at one temperature, as typed on the command line
    report = tmp_path / "range"
    assert main(["evaluate", "cmaes-tau0.8-1.2", "--env-id", "Dream-Acrobot-v0", "--model", str(package), "--episodes", "1",
                 "--taus", "0.8:1.2", "1.0", "--report", str(report)]) == 0
    (row,) = json.loads(report.with_suffix(".json").read_text())
    assert list(row["dream"]) == ["0.8:1.2", "1.0"]


BOX_RECIPE = """
# a Box-action env with a tau range as the main temperature: the noise row, the select stage and a collection round
name = "pendulum"
real_id = "Pendulum-v1"
dream_id = "Dream-Pendulum-v0"
model_name = "pendulum"
taus = [1.0, [0.8, 1.2]]
main_tau = [0.8, 1.2]
episodes = 2
sweep_episodes = 2
random_episodes = 2
noise_row = { sigma = 0.1, theta = 0.15 }

[collect]
steps = 1200
workers = 1
seed = 4
""" + TINY_BUDGETS + """
[select]
episodes = 1
seed = 0
test_seed = 100
candidates = "taus"

[iterate]
rounds = 1
steps = 400
sigma = 0.1
theta = 0.15
check_episodes = 1
refit = { vae_epochs = 1, rnn_epochs = 1 }
"""


def test_a_tau_range_as_main_temperature_through_noise_row_select_and_a_round(tmp_path):
    """The stages that read ``main_tau`` (the noise row, select, report, iterate) with a range there: every file and
    row is named by the range, and the round records it as the recipe wrote it."""
    from trainers.data.dataset import count_episodes
    from trainers.experiment import WorkDir

    path = tmp_path / "pendulum.toml"
    path.write_text(BOX_RECIPE)
    work, results = tmp_path / "work", tmp_path / "results"
    common = ["--work", str(work), "--results", str(results), "--package", str(tmp_path / "package"), "--workers", "1"]
    assert main(["experiment", str(path), "collect", "fit", "train", "evaluate", "select", "report", *common]) == 0
    w = WorkDir(work)
    noise = json.loads(w.row((0.8, 1.2), noise=True).read_text())
    assert list(noise["dream"]) == ["0.8:1.2"] and noise["noise"] == {"sigma": 0.1, "theta": 0.15}
    text = (results / "pendulum.md").read_text()
    assert "trained at tau=0.8:1.2, run with the rounds' OU action noise" in text
    selected = json.loads((results / "pendulum.json").read_text())["selected"]
    assert selected and selected["real"]["episodes"] == 2
    steps = count_episodes(w.data)[1]
    assert main(["experiment", str(path), "iterate", *common]) == 0
    (r,) = w.rounds()
    assert r.info()["tau"] == [0.8, 1.2] and r.controller().tau == (0.8, 1.2)
    assert "tau 0.8:1.2 controller" in r.agent_name() and r.info()["real_check"]["episodes"] == 1
    assert count_episodes(w.data)[1] >= steps + 400
