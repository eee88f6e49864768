"""A dream whose temperature is drawn per episode from a range: tau=(low, high)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import gym_dream
from gym_dream.models.mdn import mixture_sample


def _mixture(batch=6, k=3, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, k, generator=g), torch.randn(batch, k, d, generator=g), 0.3 * torch.randn(batch, k, d, generator=g)


def test_mixture_rows_sample_at_their_own_temperature():
    """Row i of a per-row sample is row i of the sample at that row's temperature (the same random numbers)."""
    logits, mu, log_sigma = _mixture()
    taus = torch.tensor([0.3, 2.0, 0.3, 2.0, 1.0, 0.3])
    got = mixture_sample(logits, mu, log_sigma, taus, torch.Generator().manual_seed(5))
    for t in (0.3, 1.0, 2.0):
        rows = taus == t
        want = mixture_sample(logits, mu, log_sigma, t, torch.Generator().manual_seed(5))
        torch.testing.assert_close(got[rows], want[rows])


def test_members_sample_each_env_at_its_own_temperature():
    """Members drawing with common random numbers (the member dimension first) broadcast an env's temperature too."""
    logits, mu, log_sigma = (x.unsqueeze(0).repeat(2, *[1] * x.dim()) for x in _mixture())
    taus = torch.tensor([0.5, 1.5, 0.5, 1.5, 0.5, 1.5])
    got = mixture_sample(logits, mu, log_sigma, taus, torch.Generator().manual_seed(1), common_dims=1)
    for t in (0.5, 1.5):
        want = mixture_sample(logits, mu, log_sigma, t, torch.Generator().manual_seed(1), common_dims=1)
        torch.testing.assert_close(got[:, taus == t], want[:, taus == t])


@pytest.mark.parametrize("members", [1, 3])
def test_rssm_steps_each_env_at_its_own_temperature(members):
    from gym_dream.models import RSSM
    from gym_dream.preprocessing import Preprocessing

    torch.manual_seed(0)
    m = RSSM(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32), Preprocessing("vector"),
             deter=16, stoch=4, hidden=16, members=members).eval()
    state = m.initial_state(4, torch.Generator().manual_seed(0), obs=torch.randn(4, 5))
    action, taus = torch.zeros(4, 1), torch.tensor([0.5, 2.0, 0.5, 2.0])
    with torch.no_grad():
        got = m.imagine(state, action, taus, torch.Generator().manual_seed(3), member="mean")
        for t in (0.5, 2.0):
            want = m.imagine(state, action, t, torch.Generator().manual_seed(3), member="mean")
            torch.testing.assert_close(got.state["s"][taus == t], want.state["s"][taus == t])


def _trace(env, seed, steps=40):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    out, taus = [obs], [info.get("tau")]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append(np.append(np.ravel(obs)[:8], np.ravel(r)))
        taus.append(info.get("tau"))
        if np.ndim(term) == 0 and (term or trunc):
            obs, info = env.reset()
            taus.append(info.get("tau"))
    return out, taus


@pytest.mark.parametrize("fixture", ["vector_model", "pixel_model"])
@pytest.mark.parametrize("vector", [False, True])
def test_a_range_of_one_temperature_dreams_what_that_temperature_dreams(fixture, vector, request):
    """The temperatures have a generator of their own: tau=(t, t) is the dream of tau=t, step for step."""
    model = request.getfixturevalue(fixture)
    env_id = "Dream-CartPole-v0" if fixture == "vector_model" else "Dream-CarRacing-v0"
    make = (lambda tau: gym.make_vec(env_id, num_envs=4, vectorization_mode="vector_entry_point", model=model, tau=tau,
                                     max_episode_steps=15)) if vector else (lambda tau: gym.make(env_id, model=model, tau=tau, max_episode_steps=15))
    fixed, _ = _trace(make(1.3), 4)
    ranged, taus = _trace(make((1.3, 1.3)), 4)
    for a, b in zip(fixed, ranged):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert all(np.allclose(t, 1.3) for t in taus)


def test_each_episode_draws_its_temperature_and_the_dream_uses_it(vector_model, monkeypatch):
    seen = []
    imagine = type(vector_model).imagine

    def spy(self, state, action, tau, *args, **kwargs):
        seen.append(tau.clone() if isinstance(tau, torch.Tensor) else tau)
        return imagine(self, state, action, tau, *args, **kwargs)

    monkeypatch.setattr(type(vector_model), "imagine", spy)
    env = gym.make("Dream-CartPole-v0", model=vector_model, tau=(0.5, 2.0), max_episode_steps=3)
    episode_taus = []
    for episode in range(6):
        _, info = env.reset(seed=0 if episode == 0 else None)
        episode_taus.append(info["tau"])
        for _ in range(3):
            _, _, term, trunc, step_info = env.step(0)
            assert step_info["tau"] == info["tau"] and float(seen[-1][0]) == pytest.approx(info["tau"])
            if term or trunc:
                break
    assert all(0.5 <= t <= 2.0 for t in episode_taus) and len(set(episode_taus)) == 6


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_vector_envs_draw_a_temperature_at_each_of_their_resets(vector_model, mode):
    """Per env, info["tau"] is the temperature of the episode its observation belongs to: it changes exactly when the
    env starts a new episode (autoreset in either mode, or a reset_mask), and each step is imagined at it."""
    seen = []
    imagine = type(vector_model).imagine
    vector_model.imagine = lambda state, action, tau, *a, **k: (seen.append(tau.clone()), imagine(vector_model, state, action, tau, *a, **k))[1]
    n = 6
    venv = gym_dream.DreamVectorEnv(num_envs=n, model=vector_model, tau=(0.7, 1.6), max_episode_steps=4, autoreset_mode=mode)
    _, info = venv.reset(seed=1)
    taus = info["tau"]
    assert info["_tau"].all() and ((0.7 <= taus) & (taus <= 1.6)).all() and len(set(taus)) == n
    rng = np.random.default_rng(0)
    new_episode = np.zeros(n, bool)
    for t in range(14):
        if mode == AutoresetMode.DISABLED and t % 4 == 0 and t:
            mask = rng.random(n) < 0.5
            _, info = venv.reset(options={"reset_mask": mask})
            assert (info["tau"][mask] != taus[mask]).all() and (info["tau"][~mask] == taus[~mask]).all()
            taus = info["tau"]
        _, _, term, trunc, info = venv.step(rng.integers(0, 2, n))
        np.testing.assert_allclose(seen[-1].numpy(), taus, rtol=1e-6)  # the step ran at the episodes' temperatures
        if mode == AutoresetMode.NEXT_STEP:
            restarted = new_episode
            new_episode = term | trunc
        elif mode == AutoresetMode.SAME_STEP:
            restarted = term | trunc
        else:
            restarted = np.zeros(n, bool)
        assert (info["tau"][restarted] != taus[restarted]).all() and (info["tau"][~restarted] == taus[~restarted]).all()
        assert ((0.7 <= info["tau"]) & (info["tau"] <= 1.6)).all()
        taus = info["tau"]


def test_same_seed_same_temperatures_and_dream(pixel_model):
    def run(seed):
        venv = gym.make_vec("Dream-CarRacing-v0", num_envs=5, vectorization_mode="vector_entry_point", model=pixel_model,
                            tau=(1.0, 1.7), max_episode_steps=6)
        return _trace(venv, seed, steps=20)

    (a, ta), (b, tb), (c, tc) = run(2), run(2), run(3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and all(np.array_equal(x, y) for x, y in zip(ta, tb))
    assert not np.array_equal(ta[0], tc[0])


@pytest.mark.parametrize("tau,exc,match", [((1.5, 1.0), ValueError, "low <= high"), ((1.0,), ValueError, "two"),
                                           ((1.0, 1.2, 1.4), ValueError, "two"), ((0.0, 1.0), ValueError, "> 0"),
                                           ((1.0, float("nan")), ValueError, "> 0"), (("1", 2.0), TypeError, "range"),
                                           ([], ValueError, "two")])
def test_bad_tau_ranges_name_the_fix(tau, exc, match, vector_model):
    with pytest.raises(exc, match=match):
        gym.make("Dream-CartPole-v0", model=vector_model, tau=tau)
    with pytest.raises(exc, match=match):
        gym.make_vec("Dream-CartPole-v0", num_envs=2, vectorization_mode="vector_entry_point", model=vector_model, tau=tau)


def test_checkers_pass_with_a_tau_range(pixel_model):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for tau in ((1.0, 1.7), [0.5, 0.5]):
        env = gym.make("Dream-CarRacing-v0", model=pixel_model, tau=tau)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)
        assert env.unwrapped.tau == tuple(float(t) for t in tau)


@pytest.mark.parametrize("fixture", ["pixel_model", "small_rssm"])
def test_the_bfloat16_dream_takes_a_range_too(fixture, request):
    model = request.getfixturevalue(fixture)
    if fixture == "small_rssm":
        model.card = {}
    make = lambda tau: gym_dream.DreamVectorEnv(num_envs=3, model=model, tau=tau, precision="bfloat16", max_episode_steps=5)
    fixed, _ = _trace(make(0.8), 1, steps=12)
    ranged, taus = _trace(make((0.8, 0.8)), 1, steps=12)
    for a, b in zip(fixed, ranged):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    _, taus = _trace(make((0.5, 1.5)), 1, steps=12)
    assert all(((0.5 <= t) & (t <= 1.5)).all() for t in taus)
