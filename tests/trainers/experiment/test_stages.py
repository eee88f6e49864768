"""The experiment library's stages on a tiny CartPole model (the same checks the benchmark script's stages had)."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

import gym_dream
from gym_dream.envs.core import tau_name
from trainers.agents.controller import LinearController
from trainers.experiment import Controller, Recipe, WorkDir
from trainers.experiment.recipe import available_recipes, load_recipe
from trainers.experiment.runner import override
from trainers.experiment.stages import evaluate, report, rounds, select
from trainers.experiment.workdir import tau_part

CARTPOLE = Recipe(name="cartpole", real_id="CartPole-v1", taus=(1.0,), main_tau=1.0, collect=dict(workers=1, seed=5), fit={},
                  cmaes=dict(generations=2, popsize=4, rollouts=2), episodes=2, sweep_episodes=2, random_episodes=2)


def _controllers(model_dir):
    """Two CartPole controllers: one always pushes left; one leans with the pole (and balances it for a while)."""
    m = gym_dream.resolve_model(str(model_dir))
    always_left = LinearController(m.feature_dim, m.action_space)  # argmax of zeros: action 0 on every step
    leaning = np.zeros(always_left.num_params, np.float32)
    leaning[m.feature_dim + 2] = leaning[m.feature_dim + 3] = 1.0  # push right when the pole falls right
    return always_left, LinearController(m.feature_dim, m.action_space, leaning)


def _work_with_runs(tmp_path, model, left: tuple[float, int], lean: tuple[float, int]) -> WorkDir:
    """A work dir holding ``model`` and two CMA-ES runs (best and mean alike): ``left`` always pushes left, ``lean`` leans."""
    work = WorkDir(tmp_path)
    shutil.copytree(model, work.model)
    always_left, leaning = _controllers(work.model)
    for kind in ("best", "mean"):
        always_left.save(work.controller(Controller(*left, kind)))
        leaning.save(work.controller(Controller(*lean, kind)))
    return work


def test_the_recipe_names_its_dream_from_the_catalogue_and_checks_itself():
    assert (CARTPOLE.dream_id, CARTPOLE.model_name) == ("Dream-CartPole-v0", "cartpole")
    with pytest.raises(ValueError, match="must name its dream_id"):
        Recipe(name="x", real_id="Acrobot-v1", taus=(1.0,), main_tau=1.0, collect={}, fit={}, cmaes={})
    with pytest.raises(ValueError, match="main_tau 2.0 is not one of taus"):
        replace(CARTPOLE, main_tau=2.0)


def test_the_shipped_recipes_name_their_family_and_a_recipe_without_one_fits_the_default():
    """The shipped recipes are MDN-RNN experiments and say so (their [fit] makes a valid FitConfig); a recipe whose [fit]
    names no family fits gym-dream fit's default, dreamer, so its tiny version gets no MDN-RNN epochs."""
    from trainers.fit.dispatch import DEFAULT_FAMILY, FitConfig

    assert available_recipes()
    for name in available_recipes():
        r = load_recipe(name)
        assert r.fit["family"] == "mdnrnn"
        FitConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.fit.items()})
        assert r.tiny().fit["vae_epochs"] == 1 and r.tiny().fit["family"] == "mdnrnn"
    tiny = CARTPOLE.tiny()  # fit = {}
    assert DEFAULT_FAMILY == "dreamer" and "vae_epochs" not in tiny.fit and FitConfig(**tiny.fit).family == "dreamer"


def test_a_recipe_takes_a_range_of_temperatures_wherever_it_takes_one(tmp_path):
    """taus and main_tau: a number or a range [low, high] (as tau=(low, high) in gym.make); bad ones say how to write them."""
    r = replace(CARTPOLE, taus=[1.0, [0.8, 1.2]], main_tau=[0.8, 1.2])
    assert r.taus == (1.0, (0.8, 1.2)) and r.main_tau == (0.8, 1.2)
    work = WorkDir(tmp_path)
    assert work.cmaes_run(r.main_tau, 3).name == "tau0.8-1.2-seed3" and work.row(r.main_tau, noise=True).name == "cmaes-tau0.8-1.2-noise.json"
    assert Controller.from_dict(Controller((0.8, 1.2), 0, "mean").to_dict() | {"tau": [0.8, 1.2]}).tau == (0.8, 1.2)  # as JSON gives it back
    with pytest.raises(ValueError, match="is a string; write a temperature as a number"):
        replace(CARTPOLE, taus=[1.0, "0.8:1.2"])
    with pytest.raises(ValueError, match="low <= high"):
        replace(CARTPOLE, taus=[1.0, [1.2, 0.8]])
    with pytest.raises(ValueError, match="name a temperature twice"):
        replace(CARTPOLE, taus=[1.0, [0.8, 1.2], [0.8, 1.2]])
    with pytest.raises(ValueError, match=r"main_tau 0.8:1.3 is not one of taus \['1.0', '0.8:1.2'\]"):
        replace(CARTPOLE, taus=[1.0, [0.8, 1.2]], main_tau=[0.8, 1.3])
    with pytest.raises(ValueError, match="non-empty list"):
        replace(CARTPOLE, taus=1.0)
    # the command line's --taus picks a part of the sweep, ranges included
    assert override(r, taus=[(0.8, 1.2)]).taus == ((0.8, 1.2),)
    with pytest.raises(ValueError, match=r"--taus \['0.9:1.2'\] are not in"):
        override(r, taus=[(0.9, 1.2)])
    # and from a TOML file: an array of two
    toml = tmp_path / "r.toml"
    toml.write_text('real_id = "CartPole-v1"\ntaus = [1.0, [0.8, 1.2]]\nmain_tau = [0.8, 1.2]\ncollect = {}\nfit = {}\ncmaes = {}\n')
    assert load_recipe(toml).taus == (1.0, (0.8, 1.2))


def test_evaluate_scores_the_controller_the_dream_prefers(tiny_cartpole_model, tmp_path):
    """The evaluate stage scores CMA-ES's 'best' or 'mean' controller, whichever the dream rates higher."""
    work = WorkDir(tmp_path)
    shutil.copytree(tiny_cartpole_model, work.model)
    always_left, leaning = _controllers(work.model)
    best, mean = Controller(1.0, 0, "best"), Controller(1.0, 0, "mean")
    always_left.save(work.controller(best))
    leaning.save(work.controller(mean))
    chosen, scores = evaluate.pick_controller(CARTPOLE, work, 1.0, episodes=16)
    assert set(scores) == {best, mean} and scores[best] != scores[mean]
    assert chosen == max(scores, key=scores.get)
    evaluate.evaluate_agents(CARTPOLE, work, workers=1)
    row = json.loads(work.row(1.0).read_text())
    dream = {Controller.from_dict(s): s["dream"] for s in row["selection_dream_returns"]}
    assert set(dream) == {best, mean} and Controller.from_dict(row["controller"]) == max(dream, key=dream.get)
    assert row["real"]["episodes"] == 2 and work.random_row.is_file()


def test_adopt_turns_a_shipped_model_into_the_next_round(tiny_cartpole_model, tmp_path):
    """On a machine without the earlier rounds' work folder, ``adopt`` turns the shipped model and its shipped controller
    into round K+1 (K = the rounds in its card); ``iterate`` then collects that round into a fresh dataset, and the
    real steps, rounds and fits behind the model keep counting the adopted ones."""
    recipe = replace(CARTPOLE, iterate=dict(rounds=1, steps=60, sigma=0.1, theta=0.15, check_episodes=1))
    shipped, work = tmp_path / "shipped", WorkDir(tmp_path / "work")
    shutil.copytree(tiny_cartpole_model, shipped)
    card = json.loads((shipped / "model.json").read_text())
    earlier = [{"controller": "mean", "selection_dream_returns": {"mean": 10.0}, "tau": 1.0, "steps_before": 100, "target_steps": 150}]
    card["data"]["collection_rounds"] = earlier
    card["training"]["fits_seconds"] = [3.0, card["training"]["seconds"]]
    (shipped / "model.json").write_text(json.dumps(card))
    kept = shipped / "agents" / "cmaes-tau1.0"
    with pytest.raises(SystemExit, match="run the ship stage"):
        rounds.adopt(recipe, work, shipped, kept)
    _controllers(shipped)[0].save(kept)
    rounds.adopt(recipe, work, shipped, kept)
    assert [r.path.name for r in work.rounds()] == ["round-2"]  # numbered after the card's round 1
    info = work.rounds()[0].info()
    assert info["adopted"] and info["steps_before"] == 0 and info["target_steps"] == 60
    assert Controller.from_dict(info["controller"]) == Controller(1.0, 0, "mean")
    assert [Controller.from_dict(s) for s in info["selection_dream_returns"]] == [Controller(1.0, 0, "mean")]
    assert not (work.rounds()[0].work.model / "agents").exists()  # the model, not its shipped agents
    assert work.real_steps(card) == 2 * card["data"]["steps"]  # the fresh dataset's, plus the adopted model's
    assert [r["target_steps"] for r in work.all_rounds()] == [150, 60]
    rounds.adopt(recipe, work, shipped, kept)  # idempotent: already adopted
    rounds.iterate(recipe, work, workers=1)
    assert work.rounds()[0].info()["real_check"]["episodes"] == 1
    from trainers.data.dataset import count_episodes

    assert count_episodes(work.data)[1] >= 60  # the round's data start a fresh dataset
    occupied = WorkDir(tmp_path / "occupied")
    occupied.data.mkdir(parents=True)
    with pytest.raises(SystemExit, match="fresh work folder"):  # never mixes with data a user collected
        rounds.adopt(recipe, occupied, shipped, kept)


def test_seeds_per_tau_and_a_choice_on_real_validation_episodes(tiny_cartpole_model, tmp_path):
    """With several CMA-ES seeds per tau, each tau's row scores the controller the dream rates highest over all runs;
    ``select`` validates each run's pick on real episodes disjoint from the test seeds and scores the winner on the test seeds."""
    recipe = replace(CARTPOLE, cmaes_seeds=(0, 3), select=dict(episodes=2, seed=50))
    work = _work_with_runs(tmp_path, tiny_cartpole_model, left=(1.0, 0), lean=(1.0, 3))
    assert work.controller(Controller(1.0, 3, "mean")) == tmp_path / "cmaes" / "tau1.0-seed3" / "mean"
    chosen, scores = evaluate.pick_controller(recipe, work, 1.0, episodes=16)
    assert set(scores) == {Controller(1.0, s, k) for s in (0, 3) for k in ("best", "mean")} and chosen == max(scores, key=scores.get)
    evaluate.evaluate_agents(recipe, work, workers=1)
    row = json.loads(work.row(1.0).read_text())
    assert Controller.from_dict(row["controller"]) in scores and "2 seeds" in row["agent"]
    with pytest.raises(SystemExit, match="overlaps the test seeds"):
        select.select_agent(replace(recipe, select=dict(episodes=2, seed=1)), work, workers=1)
    select.select_agent(recipe, work, workers=1)
    state = json.loads(work.select_state.read_text())
    # one per run: its dream pick (a tie: the first)
    assert [Controller.from_dict(c["controller"]) for c in state["candidates"]] == [Controller(1.0, 0, "best"), Controller(1.0, 3, "best")]
    assert all(c["real"]["episodes"] == 2 == len(c["real_returns"]) for c in state["candidates"])
    always, lean = state["candidates"]
    assert lean["real"]["mean"] > always["real"]["mean"]  # pushing with the pole beats always pushing left
    selected = json.loads(work.selected_row.read_text())
    assert selected["selection"]["chosen"] == lean and selected["selection"]["seeds"] == [50, 51]
    assert Controller.from_dict(selected["controller"]) == Controller(1.0, 3, "best")
    assert selected["real"]["episodes"] == 2 and selected["real_seeds"] == [0, 1]
    assert selected["selection"]["real_steps"] == sum(c["real_steps"] for c in state["candidates"])
    select.select_agent(recipe, work, workers=1)  # resumable: nothing more to do
    assert json.loads(work.select_state.read_text()) == state
    note = report.selection_note(recipe, work, selected)
    assert note.startswith("(***)") and note.count("| tau 1.0, seed") == 2


@pytest.mark.parametrize("tau", [1.0, (0.8, 1.2)], ids=["one-tau", "tau-range"])
def test_select_among_the_taus_of_the_sweep_then_test_on_fresh_episodes(tiny_cartpole_model, tmp_path, tau):
    """The protocol fixed before CarRacing's round 7: each tau's evaluated row is a candidate, validated on the episodes
    the sweep already drove (its episodes are reused, not driven again); the winner drives fresh test episodes. The
    same with a range of temperatures as the sweep's second (and main) tau."""
    protocol = dict(episodes=2, seed=0, test_seed=40, candidates="taus")
    recipe = replace(CARTPOLE, taus=(0.5, tau), main_tau=tau, select=protocol)
    work = _work_with_runs(tmp_path, tiny_cartpole_model, left=(0.5, 0), lean=(tau, 0))
    with pytest.raises(SystemExit, match="run the evaluate stage first"):
        select.select_agent(recipe, work, workers=1)
    with pytest.raises(SystemExit, match="overlaps the test seeds 40..41"):
        select.select_agent(replace(recipe, select={**protocol, "seed": 41}), work, workers=1)
    with pytest.raises(SystemExit, match="choose 'runs'"):
        select.select_agent(replace(recipe, select={**protocol, "candidates": "all"}), work, workers=1)
    evaluate.evaluate_agents(recipe, work, workers=1)
    rows = {t: json.loads(work.row(t).read_text()) for t in (0.5, tau)}
    assert tau_name(tau) in rows[tau]["dream"]
    select.select_agent(recipe, work, workers=1)
    state = json.loads(work.select_state.read_text())
    assert [(Controller.from_dict(c["controller"]).tau, c["from_row"]) for c in state["candidates"]] == [
        (0.5, "cmaes-tau0.5.json"), (tau, work.row(tau).name)]
    for c in state["candidates"]:
        row = rows[Controller.from_dict(c["controller"]).tau]
        assert c["real_returns"] == row["real_returns"] and c["real_steps"] == row["real_steps"]
    selected = json.loads(work.selected_row.read_text())
    assert Controller.from_dict(selected["selection"]["chosen"]["controller"]).tau == tau and selected["selection"]["kind"] == "taus"
    assert selected["real_seeds"] == [40, 41] and "test seeds 40-41" in selected["agent"]
    # validation seeds the rows did not drive are driven for the choice
    other = WorkDir(tmp_path / "other")
    shutil.copytree(tmp_path, other.root, ignore=shutil.ignore_patterns("select.json", "selected.json", "other"))
    select.select_agent(replace(recipe, select={**protocol, "seed": 10}), other, workers=1)
    again = json.loads(other.select_state.read_text())["candidates"]
    assert all("from_row" not in c and c["real"]["episodes"] == 2 and c["real_steps"] > 0 for c in again)


@pytest.mark.parametrize("tau", [1.0, (0.8, 1.2)], ids=["one-tau", "tau-range"])
def test_an_sb3_agent_drives_a_collection_round(tiny_cartpole_model, tmp_path, tau):
    """World Models' iterative loop for any agent: the recipe's PPO, trained in the dream, drives the next round
    (with one main temperature, or a range of them: the round's record gives its tau back as the recipe wrote it)."""
    from trainers.experiment.stages import train

    ppo = {"timesteps": 128, "num_envs": 4, "eval_every": 64, "eval_episodes": 2, "hparams": {"n_steps": 16, "batch_size": 32, "n_epochs": 1}}
    with pytest.raises(ValueError, match="must be 'cmaes' or one of the recipe's sb3 agents"):
        replace(CARTPOLE, iterate=dict(rounds=1, steps=60, agent="ppo"))
    recipe = replace(CARTPOLE, taus=(tau,), main_tau=tau, sb3={"ppo": ppo},
                     iterate=dict(rounds=1, steps=60, agent="ppo", random=0.1, check_episodes=1))
    work = WorkDir(tmp_path)
    shutil.copytree(tiny_cartpole_model, work.model)
    with pytest.raises(SystemExit, match="run the sb3 stage first"):
        rounds.iterate(recipe, work, workers=1)
    train.train_sb3_agents(recipe, work, workers=1)
    assert work.sb3_row("ppo", tau).is_file()
    rounds.iterate(recipe, work, workers=1)
    (r,) = work.rounds()
    info = r.info()
    assert info["agent"] == "ppo" and info["real_check"]["episodes"] == 1 and "controller" not in info
    assert r.agent() == r.path / "sb3" / f"ppo-tau{tau_part(tau)}" / "best" and (r.agent() / "policy.json").is_file()
    from trainers.data.dataset import count_episodes, read_meta

    assert count_episodes(work.data)[1] >= 60 and read_meta(work.data)["policies"] == ["agent"]
    lines = report._rounds_section(recipe, work, json.loads((r.work.model / "model.json").read_text()), work.all_rounds())
    assert any(f"the tau {tau_name(tau)} PPO agent scored" in line for line in lines)


def test_add_agent_ships_a_stored_policy_next_to_a_model_by_name(tiny_cartpole_model, tmp_path, monkeypatch):
    from gym_dream.agents import model_agents
    from trainers.agents.stored_agent import load_agent
    from trainers.experiment.stages.ship import add_agent
    from trainers.agents.sb3 import SB3Config, train_sb3

    model = tmp_path / "model"
    shutil.copytree(tiny_cartpole_model, model)
    train_sb3(SB3Config(algo="ppo", model=str(model), out=str(tmp_path / "ppo"), timesteps=64, num_envs=2, eval_every=64, eval_episodes=2,
                        hparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1}))
    info = {"kind": "sb3-ppo", "tau": 1.0, "real": {"mean": 1.0}}
    assert str(tmp_path) in (tmp_path / "ppo" / "best" / "policy.json").read_text()  # the run's card: where it was trained
    monkeypatch.chdir(tmp_path)
    path = add_agent(model, "ppo-tau1.0", tmp_path / "ppo" / "best", {**info, "trained_with": str(model)})
    # shipped, the cards name those places relative to where it was shipped from: no path of this machine
    assert model_agents(str(model)) == {"ppo-tau1.0": {**info, "trained_with": "model"}}
    assert not [f for f in path.rglob("*.json") if str(tmp_path) in f.read_text()]
    assert json.loads((path / "policy.json").read_text())["model"] == "model"
    agent = load_agent(gym_dream.agents.agent_path("ppo-tau1.0", str(model)))
    assert agent.predict(np.zeros(agent.observation_space.shape, np.float32))[0] in (0, 1)
    # again, with new scores: replaced, nothing left over; a folder that is no agent is refused before anything changes
    add_agent(model, "ppo-tau1.0", tmp_path / "ppo" / "best", {**info, "real": {"mean": 2.0}})
    assert model_agents(str(model))["ppo-tau1.0"]["real"] == {"mean": 2.0}
    assert sorted(p.name for p in path.parent.iterdir()) == ["ppo-tau1.0"]
    with pytest.raises(FileNotFoundError, match="not a stored agent"):
        add_agent(model, "other", tmp_path / "ppo", info)
    assert list(model_agents(str(model))) == ["ppo-tau1.0"]
