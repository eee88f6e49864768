"""The one dream rollout (numpy and torch) and the one real-episode runner."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import gym_dream
from trainers.agents.controller import LinearController
from trainers.planning.cem import CEMConfig, CEMPlanner
from trainers.evaluation.rollout import agent_actions, dream_rollout, make_dream_vec, real_episodes, rollout


def _scripted(rewards, ends, truncs):
    """A dream of known rewards and ends: step t returns row t of each table."""
    t = [0]

    def step(actions):
        i = t[0]
        t[0] += 1
        return None, rewards[i], ends[i], truncs[i]

    return step


@pytest.mark.parametrize("device", [None, "cpu"])
def test_rollout_adds_rewards_until_each_env_ends(device):
    rewards = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [9.0, 9.0, 9.0]], np.float32)
    ends = np.array([[False, True, False], [False, False, False], [True, False, False], [False, False, False]])
    truncs = np.array([[False, False, False], [False, False, True], [False, False, False], [False, False, False]])
    if device is not None:
        rewards, ends, truncs = torch.as_tensor(rewards), torch.as_tensor(ends), torch.as_tensor(truncs)
    r = rollout(lambda obs, t: None, _scripted(rewards, ends, truncs), None, 3, horizon=4, device=device)
    as_np = (lambda x: np.asarray(x)) if device is None else (lambda x: x.cpu().numpy())
    np.testing.assert_array_equal(as_np(r.returns), [3.0, 2.0, 6.0])  # env 0 ends at step 3, env 1 at 1, env 2 truncated at 2
    np.testing.assert_array_equal(as_np(r.lengths), [3, 1, 2])
    np.testing.assert_array_equal(as_np(r.end_steps), [3, 1, -1])  # truncation is not an end of the model's
    np.testing.assert_array_equal(as_np(r.end_rewards), [1.0, 2.0, 0.0])


def test_rollout_stops_when_every_env_ended_unless_told_not_to():
    calls = []

    def step(actions):
        calls.append(1)
        return None, np.ones(2, np.float32), np.ones(2, bool), np.zeros(2, bool)

    rollout(lambda obs, t: None, step, None, 2, horizon=5)
    assert len(calls) == 1
    rollout(lambda obs, t: None, step, None, 2, horizon=5, stop_when_done=False)
    assert len(calls) == 1 + 5


def test_dream_rollout_same_seed_same_returns(vector_model):
    agent = LinearController(vector_model.feature_dim, vector_model.action_space, np.random.default_rng(0).normal(size=2 * (vector_model.feature_dim + 1)))
    venv = make_dream_vec("Dream-CartPole-v0", 16, vector_model, 1.0, max_episode_steps=40)
    a, b = (dream_rollout(venv, agent_actions(agent), 5) for _ in range(2))
    np.testing.assert_array_equal(a.returns, b.returns)
    assert (a.lengths <= 40).all() and a.lengths.min() >= 1
    assert not np.array_equal(a.returns, dream_rollout(venv, agent_actions(agent), 6).returns)


def test_planner_scores_plans_as_the_vector_env_does(vector_model):
    """The planner calls the model directly; the same plans from the same state through a DreamVectorEnv
    seeded as the planner's generator is give the same returns."""
    planner = CEMPlanner(vector_model, CEMConfig(horizon=6, iterations=1, candidates=32, top_k=4), seed=3)
    state = vector_model.initial_state(1, torch.Generator().manual_seed(0))
    plans = planner._sample(*planner._init_dist())
    venv = gym_dream.DreamVectorEnv(32, model=vector_model, autoreset_mode="Disabled")
    venv.reset(seed=3)
    venv.reset(options={"state": state})
    total, alive = np.zeros(32), np.ones(32, bool)
    for t in range(plans.shape[1]):
        _, reward, terminated, _, _ = venv.step(plans[:, t])
        total += reward * alive
        alive &= ~terminated
    np.testing.assert_array_equal(planner.returns(state, plans), total)


def test_real_episodes_same_results_whatever_the_split():
    m = gym_dream.resolve_model("cartpole")
    agent = LinearController(m.feature_dim, m.action_space, np.random.default_rng(1).normal(0, 0.2, 2 * (m.feature_dim + 1)))
    one = real_episodes(agent, "CartPole-v1", "cartpole", [4, 5, 6])
    two = real_episodes(agent, "CartPole-v1", "cartpole", [4, 5, 6], workers=2)
    assert [e.seed for e in one] == [4, 5, 6] and one == two
    per_seed = real_episodes([agent, LinearController(m.feature_dim, m.action_space), agent], "CartPole-v1", "cartpole", [4, 5, 6])
    assert per_seed[0] == one[0] and per_seed[2] == one[2]
    with pytest.raises(ValueError, match="one per seed"):
        real_episodes([agent, agent], "CartPole-v1", "cartpole", [4, 5, 6])
    with pytest.raises(TypeError, match="directory or name"):
        real_episodes(agent, "CartPole-v1", m, [4, 5], workers=2)


class CountSteps:
    def start(self, env):
        self.n = 0

    def step(self, env):
        self.n += 1

    def end(self, env):
        return {"counted": self.n}


def test_a_watch_sees_every_step():
    m = gym_dream.resolve_model("cartpole")
    eps = real_episodes(LinearController(m.feature_dim, gym.spaces.Discrete(2)), "CartPole-v1", "cartpole", [0, 1], watch=CountSteps())
    assert all(e.watched == {"counted": e.length} for e in eps)


def test_random_play_on_the_real_env_is_the_same_for_any_number_of_workers():
    """The random baseline (and the tau calibration built on it) restarts its actions from each episode's seed."""
    from trainers.evaluation.evaluate import RandomAgent
    from trainers.evaluation.rollout import real_episode_returns

    space = gym.spaces.Discrete(2)
    one, _ = real_episode_returns(RandomAgent(space, seed=0), "CartPole-v1", "cartpole", 6, seed=3, workers=1)
    two, _ = real_episode_returns(RandomAgent(space, seed=0), "CartPole-v1", "cartpole", 6, seed=3, workers=2)
    np.testing.assert_array_equal(one, two)
    last, _ = real_episode_returns(RandomAgent(space, seed=0), "CartPole-v1", "cartpole", 3, seed=6, workers=1)
    np.testing.assert_array_equal(one[3:], last)  # an episode's return depends on its seed alone
    other, _ = real_episode_returns(RandomAgent(space, seed=1), "CartPole-v1", "cartpole", 6, seed=3, workers=1)
    assert not np.array_equal(one, other)
