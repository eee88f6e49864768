"""Agents that vote as one: the documented vote in Discrete and Box spaces, stored as data, shipped, picklable."""

import json
import pickle
import shutil

import gymnasium as gym
import numpy as np
import gym_dream
import pytest

from trainers.agents.ensemble import AgentEnsemble, save_ensemble
from trainers.agents.controller import LinearController
from trainers.agents.stored_agent import load_agent
from trainers.agents.sb3_policy import SB3Policy, save_policy

DISCRETE = gym.spaces.Discrete(3)
BOX = gym.spaces.Box(np.array([-1.0, 0.0], np.float32), np.array([1.0, 1.0], np.float32))


def bias_controller(space, bias, feature_dim=4):
    """A controller whose output is its bias alone (zero weights): the same action for every observation."""
    c = LinearController(feature_dim, space)
    c.params[-len(bias):] = bias
    return c


def test_discrete_members_vote_by_their_averaged_distributions():
    obs = np.zeros((5, 4), np.float32)
    votes = [bias_controller(DISCRETE, [0, 0, 1]), bias_controller(DISCRETE, [0, 1, 0]), bias_controller(DISCRETE, [0, 0, 1])]
    ens = AgentEnsemble(votes)
    np.testing.assert_allclose(ens.action_probabilities(obs), np.tile([0, 1 / 3, 2 / 3], (5, 1)))
    assert ens.predict(obs)[0].tolist() == [2] * 5
    assert int(ens.predict(obs[0])[0]) == 2  # one observation, one action
    # a tie goes to the lowest action
    assert AgentEnsemble(votes[:2]).predict(obs)[0].tolist() == [1] * 5


def test_sampled_votes_follow_the_average_and_repeat_with_the_episode_seed():
    obs = np.zeros((4000, 4), np.float32)
    ens = AgentEnsemble([bias_controller(DISCRETE, [1, 0, 0]), bias_controller(DISCRETE, [0, 0, 1])])
    ens.begin_episode(7)
    a = ens.predict(obs, deterministic=False)[0]
    assert set(a.tolist()) == {0, 2} and abs((a == 2).mean() - 0.5) < 0.05
    ens.begin_episode(7)
    np.testing.assert_array_equal(ens.predict(obs, deterministic=False)[0], a)


def test_actor_critic_members_vote_with_their_probabilities(tmp_path):
    import stable_baselines3 as sb3

    env = gym.make("CartPole-v1")
    paths = []
    for seed in (0, 1):
        agent = sb3.PPO("MlpPolicy", env, seed=seed, n_steps=64, batch_size=64, n_epochs=1)
        agent.learn(64)
        paths.append(save_policy(agent, tmp_path / f"ppo{seed}"))
    members = [SB3Policy.load(p) for p in paths]
    obs = np.stack([env.observation_space.sample() for _ in range(16)])
    probs = [m.action_probabilities(obs) for m in members]
    np.testing.assert_allclose(probs[0].sum(1), 1.0, rtol=1e-5)
    ens = AgentEnsemble(members)
    np.testing.assert_allclose(ens.action_probabilities(obs), (probs[0] + probs[1]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(ens.predict(obs)[0], np.argmax(probs[0] + probs[1], axis=1))
    # one member alone acts as that member
    np.testing.assert_array_equal(AgentEnsemble(members[:1]).predict(obs)[0], members[0].predict(obs)[0])


def test_box_members_average_their_actions_within_the_space():
    obs = np.zeros((3, 4), np.float32)
    a, b = bias_controller(BOX, [0.5, 0.0]), bias_controller(BOX, [-0.2, 2.0])
    expected = (a.predict(obs)[0] + b.predict(obs)[0]) / 2
    got = AgentEnsemble([a, b]).predict(obs)[0]
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.dtype == BOX.dtype and BOX.contains(got[0])


def test_members_must_share_their_spaces():
    with pytest.raises(ValueError, match="same action space"):
        AgentEnsemble([bias_controller(DISCRETE, [0, 0, 1]), bias_controller(gym.spaces.Discrete(2), [0, 1])])
    with pytest.raises(ValueError, match="same world model's features"):
        AgentEnsemble([bias_controller(DISCRETE, [0, 0, 1]), bias_controller(DISCRETE, [0, 0, 1], feature_dim=5)])
    with pytest.raises(ValueError, match="at least one"):
        AgentEnsemble([])


def test_a_stored_ensemble_holds_its_members_and_acts_the_same(tmp_path):
    sources = []
    for k, bias in enumerate(([0, 0, 1], [0, 1, 0], [0, 0, 1])):
        sources.append(bias_controller(DISCRETE, bias).save(tmp_path / f"c{k}"))
    out = save_ensemble(sources, tmp_path / "vote", {"model": "somewhere"}, load_member=load_agent)
    card = json.loads((out / "ensemble.json").read_text())
    assert card["members"] == ["members/0", "members/1", "members/2"] and card["model"] == "somewhere"
    for s in sources:  # self-contained: the sources may go
        shutil.rmtree(s)
    ens = load_agent(out)
    assert isinstance(ens, AgentEnsemble) and ens.card["model"] == "somewhere"
    obs = np.zeros((2, 4), np.float32)
    assert ens.predict(obs)[0].tolist() == [2, 2]
    clone = pickle.loads(pickle.dumps(ens))  # the real episodes' worker processes get a copy
    assert clone.predict(obs)[0].tolist() == [2, 2]
    # written again: replaced whole, nothing left beside it
    save_ensemble([out / "members" / "1"], tmp_path / "vote2", load_member=load_agent)
    save_ensemble([tmp_path / "vote2" / "members" / "0"], out, load_member=load_agent)
    assert load_agent(out).predict(obs)[0].tolist() == [1, 1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vote", "vote2"]


def test_a_bad_ensemble_is_refused_with_the_reason(tmp_path):
    with pytest.raises(ValueError, match="not an agent directory"):
        save_ensemble([tmp_path / "missing"], tmp_path / "vote", load_member=load_agent)
    c = bias_controller(DISCRETE, [0, 0, 1]).save(tmp_path / "c")
    out = save_ensemble([c, c], tmp_path / "vote", load_member=load_agent)
    card = json.loads((out / "ensemble.json").read_text())
    (out / "ensemble.json").write_text(json.dumps({**card, "members": ["../c"]}))
    with pytest.raises(ValueError, match="outside its folder"):
        load_agent(out)
    mismatched = bias_controller(gym.spaces.Discrete(2), [0, 1]).save(tmp_path / "d")
    with pytest.raises(ValueError, match="same action space"):
        save_ensemble([c, mismatched], tmp_path / "bad", load_member=load_agent)
    assert not (tmp_path / "bad").exists()


def test_the_cli_writes_an_ensemble_that_ships_next_to_a_model(tiny_cartpole_model, tmp_path, capsys):
    from gym_dream.agents import agent_path, model_agents
    from trainers.cli.commands import main
    from trainers.experiment.stages.ship import add_agent

    model = tmp_path / "model"
    shutil.copytree(tiny_cartpole_model, model)
    features = gym_dream.resolve_model(str(model)).feature_dim  # what the model's agents read
    members = [bias_controller(gym.spaces.Discrete(2), bias, features).save(tmp_path / f"c{k}") for k, bias in enumerate(([0, 1], [1, 0], [0, 1]))]
    assert main(["ensemble", str(tmp_path / "vote"), *map(str, members), "--model", str(model)]) in (0, None)
    assert "3 agents voting as one" in capsys.readouterr().out
    path = add_agent(model, "vote", tmp_path / "vote", {"kind": "ensemble", "members": 3})
    assert sorted(p.name for p in (path / "members").iterdir()) == ["0", "1", "2"]
    assert model_agents(str(model))["vote"]["members"] == 3
    ens = load_agent(agent_path("vote", str(model)))
    assert ens.predict(np.zeros(features, np.float32))[0] == 1


def test_averaged_controllers_act_by_their_summed_scores(tmp_path, capsys):
    """``--average``: one linear controller whose parameters are the members' mean: on Discrete actions the members'
    scores summed (a sure member outweighs two unsure ones, where a vote would not), stored as a plain controller."""
    from trainers.cli.commands import main

    obs = np.zeros((3, 4), np.float32)
    sure, unsure = bias_controller(DISCRETE, [0, 0, 5]), bias_controller(DISCRETE, [0, 1, 0])
    mean = LinearController.mean_of([sure, unsure, unsure])
    np.testing.assert_allclose(mean.params[-3:], [0, 2 / 3, 5 / 3])
    assert mean.predict(obs)[0].tolist() == [2] * 3 and AgentEnsemble([sure, unsure, unsure]).predict(obs)[0].tolist() == [1] * 3
    box = LinearController.mean_of([bias_controller(BOX, [1.0, -2.0]), bias_controller(BOX, [-0.5, 4.0])])
    np.testing.assert_allclose(box.params[-2:], [0.25, 1.0])
    with pytest.raises(ValueError, match="same model"):
        LinearController.mean_of([sure, bias_controller(DISCRETE, [0, 0, 1], feature_dim=5)])
    paths = [c.save(tmp_path / f"c{k}") for k, c in enumerate((sure, unsure, unsure))]
    assert main(["ensemble", str(tmp_path / "avg"), *map(str, paths), "--average"]) in (0, None)
    assert "the mean of 3 controllers' parameters" in capsys.readouterr().out
    stored = load_agent(tmp_path / "avg")
    assert isinstance(stored, LinearController) and stored.predict(obs[0])[0] == 2
    assert stored.card["averaged_from"] == [str(p) for p in paths]
    save_policy_dir = tmp_path / "not-a-controller"
    save_policy_dir.mkdir()
    (save_policy_dir / "policy.json").write_text("{}")
    with pytest.raises(SystemExit, match="linear controllers only"):
        main(["ensemble", str(tmp_path / "avg2"), str(paths[0]), str(save_policy_dir), "--average"])
