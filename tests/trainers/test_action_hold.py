import json
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import gym_dream
from trainers.agents.action_hold import HeldActions, check_action_hold
from trainers.agents.ensemble import AgentEnsemble
from trainers.evaluation.evaluate import evaluate
from trainers.agents.stored_agent import load_agent
from trainers.agents.sb3 import SB3Config, SB3VecEnv, train_sb3


class Counting:
    """An agent whose action is how many times it was asked (per call, the same for every env of the batch)."""

    observation_space = gym.spaces.Box(-1, 1, (2,), np.float32)
    action_space = gym.spaces.Discrete(100)

    def __init__(self):
        self.calls, self.begun = 0, []

    def begin_episode(self, seed=None):
        self.begun.append(seed)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        self.calls += 1
        obs = np.asarray(observation)
        return (self.calls if obs.ndim == 1 else np.full(len(obs), self.calls)), state


def test_held_actions_decide_every_k_steps_per_env():
    inner = Counting()
    agent = HeldActions(inner, 3)
    batch = np.zeros((2, 2), np.float32)
    seen = [agent.predict(batch)[0].tolist() for _ in range(7)]
    assert seen == [[1, 1]] * 3 + [[2, 2]] * 3 + [[3, 3]]  # asked at steps 0, 3, 6 and held in between
    agent.begin_episode(5)  # a new episode decides at once
    assert agent.predict(batch)[0].tolist() == [4, 4] and inner.begun == [5]
    # SB3's episode_start restarts one env's count: env 1 decides now and its hold runs from here
    assert agent.predict(batch, episode_start=np.array([False, True]))[0].tolist() == [4, 5]
    assert agent.predict(batch)[0].tolist() == [4, 5]  # env 0 at its step 2, env 1 at its step 1: both hold
    assert agent.predict(batch)[0].tolist() == [6, 5]  # env 0 at its step 3 decides; env 1 (step 2) holds
    assert agent.predict(np.zeros(2, np.float32))[0] == 7  # one observation: another batch size, a new count
    assert agent.predict(np.zeros(2, np.float32))[0] == 7
    assert agent.action_probabilities(batch) is None  # an ensemble votes with the held action
    assert HeldActions(Counting(), 1).predict(batch)[0].tolist() == [1, 1]
    for bad in (0, -2, 1.5, True, "4"):
        with pytest.raises(ValueError, match="positive integer"):
            check_action_hold(bad)


def test_a_held_sb3_step_is_k_dream_steps_and_ends_with_the_episode(vector_model):
    k, horizon, n = 2, 5, 6
    plain = gym_dream.DreamVectorEnv(num_envs=n, model=vector_model, max_episode_steps=horizon, autoreset_mode="Disabled")
    held = SB3VecEnv(gym_dream.DreamVectorEnv(num_envs=n, model=vector_model, max_episode_steps=horizon, autoreset_mode="Disabled"), hold=k)
    plain.reset(seed=3)
    held.seed(3)
    held.reset()
    steps = [plain.step(np.ones(n, np.int64)) for _ in range(horizon)]  # the same dreams, a step at a time
    done = np.array([[te | tr for _, _, te, tr, _ in steps]])[0]  # (horizon, n)
    end = done.argmax(axis=0)  # each env's last step (the episode ends by the horizon at the latest)
    assert done[end, np.arange(n)].all()
    total, ended = np.zeros(n), np.full(n, -1)
    for m in range(3):  # SB3 steps of 2, 2 and 1 dream steps
        obs, r, dones, infos = held.step(np.ones(n, np.int64))
        for i in range(n):
            if ended[i] >= 0:
                continue  # restarted: another episode
            total[i] += r[i]
            last = min(k * m + k - 1, horizon - 1)
            if dones[i]:
                ended[i] = m
                e = end[i]
                assert e // k == m  # it ends in the held step that holds its last dream step
                np.testing.assert_allclose(infos[i]["terminal_observation"], steps[e][0][i], rtol=1e-5, atol=1e-6)
                assert infos[i]["TimeLimit.truncated"] == bool(steps[e][3][i] and not steps[e][2][i])
            else:
                assert end[i] > last
                np.testing.assert_allclose(obs[i], steps[last][0][i], rtol=1e-5, atol=1e-6)
    assert (ended >= 0).all()
    rewards = np.array([sum(steps[t][1][i] for t in range(end[i] + 1)) for i in range(n)])
    np.testing.assert_allclose(total, rewards, rtol=1e-5, atol=1e-5)  # the rewards of its steps, summed, none after its end
    with pytest.raises(ValueError, match="autoreset_mode=AutoresetMode.DISABLED"):
        SB3VecEnv(gym_dream.DreamVectorEnv(num_envs=2, model=vector_model, autoreset_mode="SameStep"), hold=2)


def test_an_agent_trained_with_held_actions_acts_so_wherever_it_is_loaded(tiny_cartpole_model, tmp_path):
    hp = {"learning_starts": 20, "train_freq": 4, "gradient_steps": 2, "buffer_size": 1000, "n_steps": 3}
    cfg = SB3Config(algo="dqn", model=str(tiny_cartpole_model), out=str(tmp_path / "dqn"), timesteps=128, num_envs=4, eval_every=64,
                    eval_episodes=2, hparams=hp, action_hold=3)
    train_sb3(cfg)
    card = json.loads((tmp_path / "dqn" / "best" / "policy.json").read_text())
    assert card["action_hold"] == 3 and card["recipe"]["action_hold"] == 3
    agent = load_agent(tmp_path / "dqn" / "best")
    assert isinstance(agent, HeldActions) and agent.every == 3
    with pytest.warns(UserWarning):
        assert load_agent(tmp_path / "dqn" / "agent.zip").every == 3  # SB3's own file: the hold from the run's agent.json
    rng = np.random.default_rng(0)
    agent.begin_episode(0)
    first = agent.predict(rng.normal(size=(8, *agent.observation_space.shape)).astype(np.float32))[0]
    for _ in range(2):  # other observations, the same actions until the 4th step
        np.testing.assert_array_equal(agent.predict(rng.normal(size=(8, *agent.observation_space.shape)).astype(np.float32))[0], first)
    vote = AgentEnsemble([agent, load_agent(tmp_path / "dqn" / "best")])
    vote.begin_episode(0)
    obs = rng.normal(size=(8, *agent.observation_space.shape)).astype(np.float32)
    decided = vote.predict(obs)[0]
    np.testing.assert_array_equal(vote.predict(-obs)[0], decided)  # its members hold, so the vote does
    row = evaluate(agent, "Dream-CartPole-v0", str(tiny_cartpole_model), episodes=2)  # the real env through DreamObservation
    assert row["real"]["episodes"] == 2
    with pytest.raises(ValueError, match=r"differing: recipe.action_hold"):
        train_sb3(replace(cfg, action_hold=2))
