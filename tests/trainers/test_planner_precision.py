"""The CEM planner's precision option: float32 stays the default and exact; bfloat16 plans through the model's bf16 step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainers.planning.cem import CEMConfig, CEMPlanner


def test_bfloat16_planner_scores_plans_close_to_float32(small_rssm):
    model = small_rssm
    cfg = CEMConfig(horizon=5, iterations=1, candidates=64, top_k=8)
    exact = CEMPlanner(model, cfg, seed=1)
    low = CEMPlanner(model, CEMConfig(**{**cfg.__dict__, "precision": "bfloat16"}), seed=1)
    state = {"h": torch.zeros(1, 32), "s": torch.zeros(1, 8)}
    plans = exact._sample(*exact._init_dist())
    a, b = exact.returns(state, plans), low.returns(state, plans)
    assert np.allclose(a, b, atol=0.05 * max(1.0, np.abs(a).max()))
    action = low.plan(state)
    assert action.shape == (1,) and -1.0 <= float(action[0]) <= 1.0


def test_planner_precision_is_checked(small_rssm):
    with pytest.raises(ValueError, match="precision"):
        CEMPlanner(small_rssm, CEMConfig(horizon=2, iterations=1, candidates=4, top_k=2, precision="float16"))
