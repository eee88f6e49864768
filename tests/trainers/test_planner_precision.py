"""The CEM planner's precision option: float32 stays the default and exact; bfloat16 plans through the model's bf16 step."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from trainers.planner import CEMConfig, CEMPlanner


def _rssm():
    from gym_dream.models import RSSM
    from gym_dream.preprocessing import Preprocessing

    torch.manual_seed(0)
    return RSSM(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32), Preprocessing("vector"),
                deter=32, stoch=8, hidden=32).eval()


def test_bfloat16_planner_scores_plans_close_to_float32():
    model = _rssm()
    cfg = CEMConfig(horizon=5, iterations=1, candidates=64, top_k=8)
    exact = CEMPlanner(model, cfg, seed=1)
    low = CEMPlanner(model, CEMConfig(**{**cfg.__dict__, "precision": "bfloat16"}), seed=1)
    state = {"h": torch.zeros(1, 32), "s": torch.zeros(1, 8)}
    plans = exact._sample(*exact._init_dist())
    a, b = exact.returns(state, plans), low.returns(state, plans)
    assert np.allclose(a, b, atol=0.05 * max(1.0, np.abs(a).max()))
    action = low.plan(state)
    assert action.shape == (1,) and -1.0 <= float(action[0]) <= 1.0


def test_planner_precision_is_checked():
    with pytest.raises(ValueError, match="precision"):
        CEMPlanner(_rssm(), CEMConfig(horizon=2, iterations=1, candidates=4, top_k=2, precision="float16"))
