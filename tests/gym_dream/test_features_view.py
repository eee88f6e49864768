"""What an MDN-RNN's agents see: [z, h] (the default) or [z, c, h] (features="zch", the LSTM's cell state too, as the
paper's VizDoom controller), and gym_dream.checkpoint.with_features, which copies a model with the other view."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from gym_dream.checkpoint import load_model, save_model, with_features
from gym_dream.models import MDNRNN
from gym_dream.preprocessing import Preprocessing
from gym_dream.wrappers import DreamObservation


def _saved(model, path, **card):
    return save_model(model, path, {"env": {"id": "CartPole-v1"}, **card})


def _dream(model_dir, seed=3, steps=40):
    env = gym.make("Dream-CartPole-v0", model=str(model_dir), tau=1.0)
    obs, _ = env.reset(seed=seed)
    out, rewards = [obs], []
    for t in range(steps):
        obs, r, term, trunc, _ = env.step(t % 2)
        out.append(obs)
        rewards.append(r)
        if term or trunc:
            obs, _ = env.reset()
            out.append(obs)
    return np.stack(out), np.array(rewards), env.observation_space


def test_the_zch_view_is_the_same_dream_with_the_cell_state_added(vector_model, tmp_path):
    src = _saved(vector_model, tmp_path / "zh", agents={"a": {}}, scores={"x": 1})
    view = with_features(src, tmp_path / "zch", "zch")
    zh, zh_rewards, zh_space = _dream(src)
    zch, zch_rewards, zch_space = _dream(view)
    z, hidden = vector_model.z_dim, vector_model.hidden
    assert zh_space.shape == (z + hidden,) and zch_space.shape == (z + 2 * hidden,)
    np.testing.assert_array_equal(zh_rewards, zch_rewards)  # the same dream: same seed, same steps, same rewards
    np.testing.assert_array_equal(zch[:, :z], zh[:, :z])  # [z, c, h]: the latent first ...
    np.testing.assert_array_equal(zch[:, z + hidden:], zh[:, z:])  # ... and h last, as in [z, h]
    assert np.abs(zch[1:, z:z + hidden]).max() > 0  # the cell state, not zeros
    assert not np.allclose(zch[1:, z:z + hidden], zch[1:, z + hidden:])  # and not h again
    a, b = load_model(src).state_dict(), load_model(view).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)  # the weights are the source's
    card = json.loads((view / "model.json").read_text())
    assert card["params"]["features"] == "zch" and card["features_view"]["of"] == "zh"
    assert "agents" not in card and "scores" not in card  # those agents read [z, h]
    assert "features" not in json.loads((src / "model.json").read_text())["params"]  # the default stays off the card
    back = with_features(view, tmp_path / "zh-again", "zh")
    np.testing.assert_array_equal(_dream(back)[0], zh)


def test_the_real_side_sees_what_the_dream_shows(vector_model, tmp_path):
    view = with_features(_saved(vector_model, tmp_path / "zh"), tmp_path / "zch", "zch")
    real = DreamObservation(gym.make("CartPole-v1"), model=str(view))
    obs, _ = real.reset(seed=0)
    z, hidden = vector_model.z_dim, vector_model.hidden
    assert real.observation_space.shape == obs.shape == (z + 2 * hidden,)
    for _ in range(5):
        obs, *_ = real.step(0)
    state = real.state  # the model state the wrapper filtered from the real observations
    np.testing.assert_allclose(obs, torch.cat([state["z"], state["c"], state["h"]], -1)[0].numpy(), rtol=0, atol=0)


def test_members_show_member_0s_cell_state(tmp_path):
    env = gym.make("CartPole-v1")
    m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=8, mixtures=2, head_hidden=4, members=3,
               features="zch").eval()
    state = m.initial_state(2, obs=torch.zeros(2, 4))
    state = m.imagine(state, torch.zeros(2, dtype=torch.int64), 1.0, torch.Generator().manual_seed(0)).state
    assert state["c"].shape == (2, 3, 8)
    f = m.features(state)
    assert f.shape == (2, m.feature_dim) == (2, 4 + 16)
    torch.testing.assert_close(f[:, 4:12], state["c"][:, 0], rtol=0, atol=0)
    torch.testing.assert_close(f[:, 12:], state["h"][:, 0], rtol=0, atol=0)


def test_a_view_is_refused_clearly(vector_model, small_rssm, tmp_path):
    src = _saved(vector_model, tmp_path / "zh")
    with pytest.raises(ValueError, match="features must be one of"):
        with_features(src, tmp_path / "bad", "zhc")
    assert not (tmp_path / "bad").exists() and not (tmp_path / ".bad.tmp").exists()
    with_features(src, tmp_path / "zch", "zch")
    before = (tmp_path / "zch" / "model.json").read_text()
    with pytest.raises(FileExistsError, match="new directory"):
        with_features(src, tmp_path / "zch", "zh")
    assert (tmp_path / "zch" / "model.json").read_text() == before  # nothing overwritten
    rssm = save_model(small_rssm, tmp_path / "rssm", {"env": {"id": "CartPole-v1"}})
    with pytest.raises(ValueError, match="only an MDN-RNN"):
        with_features(rssm, tmp_path / "rssm-zch", "zch")
