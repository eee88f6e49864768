"""The sample-efficient planner options (trainers/planning/icem.py): each ingredient does what it claims, and the CEM
planner's own output is pinned (the ``cem`` presets plan exactly as before the options were added)."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import gym_dream
from trainers.planning.cem import CEMConfig, CEMPlanner
from trainers.planning.icem import (ICEM_PRESETS, PLANNER_PRESETS, ICEMConfig, ICEMPlanner, make_planner, model_steps, mppi_weights,
                                    population, powerlaw_noise, shift)

ZERO = {"h": torch.zeros(1, 32), "s": torch.zeros(1, 8)}


def _recording(planner):
    """Record every (plans, scores) the planner scores."""
    calls, score = [], planner.returns

    def returns(state, plans):
        scores = score(state, plans)
        calls.append((plans.copy(), scores.copy()))
        return scores

    planner.returns = returns
    return calls


def _rows_in(rows: np.ndarray, plans: np.ndarray) -> bool:
    return all(any(np.array_equal(r, p) for p in plans) for r in rows)


def test_cem_planner_output_is_pinned(small_rssm):
    """CEM's actions for a fixed seed on a tiny model, as the planner gave them before iCEM's options existed
    (trainers/planner.py at commit 4313b31): the ``cem`` default stays bit-for-bit reproducible."""
    planner = CEMPlanner(small_rssm, "tiny", seed=3)
    actions = [float(planner.plan(ZERO)[0]) for _ in range(3)] + [float(planner.act(ZERO, 0.5)[0])]
    assert actions == [0.005084756761789322, 0.14533832669258118, -0.027361273765563965, -0.1686134785413742]
    assert make_planner(small_rssm, "cpu").__class__ is CEMPlanner


def test_every_option_off_plans_as_cem(small_rssm):
    cfg = CEMConfig(horizon=5, iterations=3, candidates=40, top_k=6)
    cem, icem = CEMPlanner(small_rssm, cfg, seed=7), ICEMPlanner(small_rssm, ICEMConfig(**cfg.__dict__), seed=7)
    for _ in range(3):
        assert np.array_equal(cem.plan(ZERO), icem.plan(ZERO))
    # a shrinking population draws white noise as CEM's sampler would for that many candidates
    mean, std = icem._init_dist()
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    icem.rng = a
    cem.rng, cem.cfg = b, CEMConfig(horizon=5, iterations=3, candidates=17, top_k=6)
    assert np.array_equal(icem._sample(mean, std, 17), cem._sample(mean, std))


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_coloured_noise_has_the_spectrum_slope_it_claims(beta):
    x = powerlaw_noise(np.random.default_rng(0), beta, (400, 256, 2))
    assert x.shape == (400, 256, 2)
    assert abs(x.std() - 1.0) < 0.03
    power = (np.abs(np.fft.rfft(x, axis=1)) ** 2).mean(axis=(0, 2))
    f = np.fft.rfftfreq(256)
    slope = np.polyfit(np.log(f[1:-1]), np.log(power[1:-1]), 1)[0]
    assert abs(slope + beta) < 0.1, slope


@pytest.mark.parametrize("h", [1, 2, 5, 12])
def test_coloured_noise_has_unit_variance_at_short_horizons(h):
    assert abs(powerlaw_noise(np.random.default_rng(0), 2.0, (20_000, h, 1)).std() - 1.0) < 0.03


def _lag1(plans: np.ndarray) -> float:
    return float(np.corrcoef(plans[:, :-1, 0].ravel(), plans[:, 1:, 0].ravel())[0, 1])


def test_the_planner_samples_coloured_noise(small_rssm):
    mean, std = np.zeros((32, 1)), np.full((32, 1), 0.2)
    smooth = ICEMPlanner(small_rssm, ICEMConfig(horizon=32, iterations=1, candidates=500, top_k=5, noise_beta=2.0), seed=0)
    white = ICEMPlanner(small_rssm, ICEMConfig(horizon=32, iterations=1, candidates=500, top_k=5), seed=0)
    assert _lag1(smooth._sample(mean, std)) > 0.6
    assert abs(_lag1(white._sample(mean, std))) < 0.05


def test_the_population_shrinks_per_iteration(small_rssm):
    cfg = ICEMConfig(horizon=3, iterations=5, candidates=100, top_k=10, population_decay=1.5)
    planner = ICEMPlanner(small_rssm, cfg, seed=0)
    calls = _recording(planner)
    planner.plan(ZERO)
    assert [len(p) for p, _ in calls] == [100, 66, 44, 29, 20] == [population(cfg, i) for i in range(5)]  # floor: 2 * top_k


def test_kept_elites_survive_into_the_next_iteration_and_decision(small_rssm):
    cfg = ICEMConfig(horizon=4, iterations=3, candidates=30, top_k=10, keep_elites=0.3)
    planner = ICEMPlanner(small_rssm, cfg, seed=0)
    calls = _recording(planner)
    planner.plan(ZERO)
    for (plans, scores), (following, _) in zip(calls, calls[1:]):
        best3 = plans[np.argsort(-scores, kind="stable")[:3]]
        assert len(following) == 30 + 3 and _rows_in(best3, following)
    last, last_scores = calls[-1]
    best3 = last[np.argsort(-last_scores, kind="stable")[:3]]
    planner.plan(ZERO)  # the next decision starts with them, one step on
    first = calls[3][0]
    assert len(first) == 33 and _rows_in(shift(best3, np.zeros(1), axis=1), first)
    planner.begin_episode()  # a new episode carries nothing over
    planner.plan(ZERO)
    assert len(calls[6][0]) == 30


def test_warm_start_shifts_the_previous_plan(small_rssm):
    planner = ICEMPlanner(small_rssm, ICEMConfig(horizon=6, iterations=2, candidates=40, top_k=5, warm_start=True), seed=0)
    centre, _ = planner.start()
    assert np.array_equal(centre, np.zeros((6, 1)))
    planner.plan(ZERO)
    mean, std = planner.start()
    assert np.array_equal(mean[:-1], planner.last_mean[1:]) and mean[-1, 0] == 0.0
    assert not np.allclose(mean, 0.0) and np.array_equal(std, np.ones((6, 1)))
    cold = ICEMPlanner(small_rssm, ICEMConfig(horizon=6, iterations=2, candidates=40, top_k=5), seed=0)
    cold.plan(ZERO)
    assert np.array_equal(cold.start()[0], centre)
    planner.begin_episode()
    assert np.array_equal(planner.start()[0], centre)


def test_execute_best_takes_the_best_sequence_seen(small_rssm):
    cfg = ICEMConfig(horizon=4, iterations=3, candidates=30, top_k=5, execute="best")
    planner = ICEMPlanner(small_rssm, cfg, seed=0)
    calls = _recording(planner)
    action = planner.plan(ZERO)
    plans = np.concatenate([p for p, _ in calls])
    scores = np.concatenate([s for _, s in calls])
    assert np.array_equal(action, plans[np.argmax(scores)][0])
    assert len(calls[-1][0]) == 30 + 1  # the last iteration also scores the mean plan it refined
    mean_planner = ICEMPlanner(small_rssm, dataclasses.replace(cfg, execute="mean"), seed=0)
    assert np.array_equal(mean_planner.plan(ZERO), mean_planner.last_mean[0].astype(np.float32))


def test_mppi_weights_every_candidate_exponentially(small_rssm):
    scores = np.array([0.0, 1.0, 2.0, 2.0])
    w = mppi_weights(scores, 0.5)
    expected = np.exp((scores - 2.0) / (0.5 * scores.std()))
    assert np.allclose(w, expected / expected.sum()) and np.isclose(w.sum(), 1.0)
    assert np.allclose(mppi_weights(np.ones(4), 0.5), 0.25)
    cfg = ICEMConfig(horizon=3, iterations=1, candidates=50, top_k=5, weighting="mppi", temperature=0.5)
    planner = ICEMPlanner(small_rssm, cfg, seed=0)
    calls = _recording(planner)
    planner.plan(ZERO)
    plans, scores = calls[0]
    w = mppi_weights(scores, 0.5)
    assert np.allclose(planner.last_mean, np.tensordot(w, plans.astype(np.float64), axes=1))
    top5 = plans[np.argsort(-scores)[:5]].mean(0)
    assert not np.allclose(planner.last_mean, top5)  # not CEM's equal-weight elites


def test_model_steps_is_what_a_decision_rolls(small_rssm):
    for name in ("icem", "icem-small", "mppi"):
        cfg = dataclasses.replace(ICEM_PRESETS[name], horizon=3)
        planner = ICEMPlanner(small_rssm, cfg, seed=0)
        planner.plan(ZERO)
        before = planner.model_steps
        planner.plan(ZERO)
        assert planner.model_steps - before == model_steps(cfg), name
    assert model_steps(PLANNER_PRESETS["planet"]) == 12 * 10 * 1000
    assert model_steps(PLANNER_PRESETS["cpu"]) == 15_000
    assert model_steps(PLANNER_PRESETS["icem"]) * 5 <= model_steps(PLANNER_PRESETS["cpu"])  # the bar: >= 5x fewer
    assert model_steps(PLANNER_PRESETS["icem-small"]) * 9 <= model_steps(PLANNER_PRESETS["cpu"])


def test_options_are_checked(small_rssm):
    for bad, match in [(dict(execute="first"), "execute"), (dict(weighting="softmax"), "weighting"), (dict(population_decay=0.5), "decay"),
                       (dict(keep_elites=1.5), "keep_elites"), (dict(temperature=0.0), "temperature")]:
        with pytest.raises(ValueError, match=match):
            ICEMPlanner(small_rssm, ICEMConfig(horizon=2, iterations=1, candidates=4, top_k=2, **bad))
    with pytest.raises(ValueError, match="choose from"):
        make_planner(small_rssm, "icem2")


def test_discrete_actions_plan_with_every_option_but_coloured_noise():
    model = gym_dream.resolve_model("cartpole")
    cfg = ICEMConfig(horizon=5, iterations=3, candidates=24, top_k=4, population_decay=1.25, keep_elites=0.5, warm_start=True,
                     execute="best", weighting="mppi")
    planner = ICEMPlanner(model, cfg, seed=0)
    with torch.inference_mode():
        state = model.initial_state(1, torch.Generator().manual_seed(0))
    for _ in range(2):
        action = planner.plan(state)
        assert gym.spaces.Discrete(2).contains(int(action))
    assert planner.last_mean.shape == (5, 2) and np.allclose(planner.last_mean.sum(-1), 1.0)
    with pytest.raises(ValueError, match="Box action space"):
        ICEMPlanner(model, dataclasses.replace(cfg, noise_beta=2.0))


def test_the_planet_loop_takes_a_planner_preset():
    from trainers.planning.planet_loop import PlaNetConfig

    assert PlaNetConfig(planner="mppi").planner == "mppi" and PlaNetConfig().planner is None  # None: the preset's CEM
    with pytest.raises(ValueError, match="--planner must be one of .*'icem'"):
        PlaNetConfig(planner="icem2")


def test_the_planet_loop_collects_with_the_planner_it_is_given(tmp_path):
    from trainers.planning.planet_loop import PlaNetConfig, run_planet

    cfg = PlaNetConfig(env_id="CartPole-v1", env_kwargs={}, out=str(tmp_path / "run"), preset="tiny", episodes=3, seed_episodes=2, eval_every=3,
                       eval_episodes=1, planner="mppi")
    assert run_planet(cfg)["episodes"] == 3
    assert json.loads((tmp_path / "run" / "model" / "model.json").read_text())["training"]["planner"] == "mppi"
