"""``Dream-Model-v0``: the dream of the model you pass, of any env, with the card's horizon."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import gym_dream

ID = "Dream-Model-v0"


def test_it_needs_a_model_and_says_how_to_give_one():
    with pytest.raises(ValueError, match=r"model='models/my-env'"):
        gym.make(ID)
    with pytest.raises(ValueError, match=r"model='models/my-env'"):
        gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point")


def test_it_passes_the_env_checkers_and_stops_at_the_cards_horizon():
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(ID, model="cartpole", tau=1.0)
    check_env(env.unwrapped, skip_render_check=True)
    sb3_check_env(env.unwrapped, warn=False)
    assert env.unwrapped.model.card["env"]["max_episode_steps"] == 500
    env.reset(seed=0)
    steps, done = 0, False
    while not done:  # at a low tau the shipped CartPole dream balances a pole pushed left and right for long
        _, _, terminated, truncated, _ = env.step(steps % 2)
        steps += 1
        done = terminated or truncated
    assert steps <= 500 and (terminated or steps == 500)
    short = gym.make(ID, model="cartpole", max_episode_steps=3)  # gym.make's own limit still applies
    short.reset(seed=0)
    for t in range(1, 4):
        _, _, terminated, truncated, _ = short.step(t % 2)
        if terminated or truncated:
            break
    assert terminated or (truncated and t == 3)


def test_the_same_seed_gives_the_same_dream_as_the_id_of_its_env():
    a, b = gym.make(ID, model="cartpole"), gym.make("Dream-CartPole-v0")
    oa, _ = a.reset(seed=3)
    ob, _ = b.reset(seed=3)
    np.testing.assert_array_equal(oa, ob)
    for t in range(20):
        ra, rb = a.step(t % 2), b.step(t % 2)
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1:3] == rb[1:3]
        if ra[2]:
            break


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_make_vec_in_every_autoreset_mode_takes_the_cards_horizon(mode, vector_model):
    venv = gym.make_vec(ID, num_envs=3, vectorization_mode="vector_entry_point", model="cartpole", autoreset_mode=mode)
    assert venv.unwrapped.max_episode_steps == 500 and venv.metadata["autoreset_mode"] == mode
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, venv.single_observation_space.shape[0])
    obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
    assert reward.shape == (3,) and terminated.dtype == bool
    short = gym.make_vec(ID, num_envs=2, vectorization_mode="vector_entry_point", model=vector_model, max_episode_steps=2)
    assert short.unwrapped.max_episode_steps == 2


def test_a_card_with_a_bad_horizon_is_refused(vector_model):
    vector_model.card = {"env": {"id": "CartPole-v1", "max_episode_steps": 0}}
    with pytest.raises(ValueError, match="max_episode_steps"):
        gym.make(ID, model=vector_model)


def test_a_package_cannot_take_the_id():
    from gym_dream.envs.registry import DreamId, _refusal

    assert "already registered" in _refusal(DreamId(ID, "evil", "CartPole-v1", None, "evil-pkg"))
    assert gym_dream  # registered on import
