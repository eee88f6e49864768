"""The optimised dream paths: the bfloat16 step keeps the dream's statistics, and options are checked."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import gym_dream


def _dream_statistics(precision: str, seed: int, steps: int = 60, envs: int = 512) -> dict[str, np.ndarray]:
    venv = gym.make_vec("Dream-CarRacing-v0", num_envs=envs, vectorization_mode="vector_entry_point", tau=1.15,
                        precision=precision, max_episode_steps=1000)
    obs, _ = venv.reset(seed=seed)
    rng = np.random.default_rng(seed)
    rewards, ends, feats = [], [], []
    for _ in range(steps):
        actions = rng.uniform(venv.single_action_space.low, venv.single_action_space.high, (envs, 3)).astype(np.float32)
        obs, reward, terminated, truncated, _ = venv.step(actions)
        rewards.append(reward)
        ends.append(terminated)
        feats.append(obs)
    f = np.concatenate(feats)
    return {"reward": np.concatenate(rewards), "ended": np.concatenate(ends).astype(np.float64), "z_mean": f[:, :32].mean(0),
            "z_std": f[:, :32].std(0), "h_mean": f[:, 32:].mean(0)}


def test_bfloat16_dream_has_the_float32_dreams_statistics():
    """Two fp32 dreams with different seeds differ by sampling noise; a bf16 dream differs from fp32 by no more."""
    a, b, low = _dream_statistics("float32", 0), _dream_statistics("float32", 1), _dream_statistics("bfloat16", 0)
    for key in ("reward", "ended"):
        noise = abs(a[key].mean() - b[key].mean())
        se = a[key].std() / np.sqrt(len(a[key]) / 20)  # steps within an env are correlated: ~20 steps per independent draw
        assert abs(low[key].mean() - a[key].mean()) <= max(3 * noise, 4 * se, 1e-3), key
    for key in ("z_mean", "z_std", "h_mean"):
        noise = np.abs(a[key] - b[key]).max()
        assert np.abs(low[key] - a[key]).max() <= max(3 * noise, 0.02), key


def test_bfloat16_step_is_close_to_float32_and_draws_the_same_random_numbers():
    model = gym_dream.resolve_model("carracing")
    state = model.initial_state(64, torch.Generator().manual_seed(0))
    action = torch.rand(64, 3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.inference_mode():
        ref = model.imagine(state, action, 1e-6, g1)  # near-zero temperature: the top component's mean
        low = model.imagine(state, action, 1e-6, g2, precision="bfloat16")
    assert torch.equal(g1.get_state(), g2.get_state())
    for key in ("h", "c"):
        assert torch.allclose(ref.state[key], low.state[key], atol=0.03), key
    assert low.state["z"].dtype == torch.float32 and low.reward.dtype == torch.float32


def test_precision_is_checked():
    with pytest.raises(ValueError, match="precision"):
        gym.make("Dream-CartPole-v0", precision="float16")
    from gym_dream.models import MDNRNN
    from gym_dream.preprocessing import Preprocessing

    obs = gym.spaces.Box(-1, 1, (4,), np.float32)
    members = MDNRNN(obs, gym.spaces.Discrete(2), Preprocessing("vector"), hidden=8, mixtures=2, head_hidden=4, members=3)
    assert members.precisions == ("float32",)
    with pytest.raises(ValueError, match="precision"):
        gym_dream.DreamVectorEnv(2, model=members, precision="bfloat16")


def test_rssm_bfloat16_step_is_close_to_float32_and_draws_the_same_random_numbers(small_rssm):
    model = small_rssm
    state = {"h": torch.randn(128, 32), "s": torch.randn(128, 8)}
    action = torch.rand(128, 1) * 2 - 1
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    with torch.inference_mode():
        ref = model.imagine(state, action, 1.0, g1)
        low = model.imagine(state, action, 1.0, g2, precision="bfloat16")
    assert torch.equal(g1.get_state(), g2.get_state())
    for key in ("h", "s"):
        assert torch.allclose(ref.state[key], low.state[key], atol=0.05), key
    assert torch.allclose(ref.reward, low.reward, atol=0.05)
    assert set(low.state) == set(ref.state) and low.state["h"].dtype == torch.float32


def test_bfloat16_weights_follow_the_weights(small_rssm):
    """The cached bf16 copies are made again after a weight changes (training between dreams)."""
    model = small_rssm
    state = {"h": torch.zeros(4, 32), "s": torch.zeros(4, 8)}
    action = torch.zeros(4, 1)
    with torch.inference_mode():
        before = model.imagine(state, action, 1e-6, torch.Generator().manual_seed(0), precision="bfloat16").reward
    with torch.no_grad():
        model.reward_head[-1].bias.add_(10.0)
    with torch.inference_mode():
        after = model.imagine(state, action, 1e-6, torch.Generator().manual_seed(0), precision="bfloat16").reward
    assert torch.allclose(after - before, torch.full_like(before, 10.0), atol=1e-3)
    with torch.no_grad():
        model.reward_head[0].weight.mul_(0.0)
    with torch.inference_mode():
        zeroed = model.imagine(state, action, 1e-6, torch.Generator().manual_seed(0), precision="bfloat16").reward
        ref = model.imagine(state, action, 1e-6, torch.Generator().manual_seed(0)).reward
    assert torch.allclose(zeroed, ref, atol=1e-3)
