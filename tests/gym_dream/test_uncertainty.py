"""Dynamics members, their disagreement, and the dream envs' uncertainty arguments (MOPO penalty, MOReL halt)."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import gym_dream
from gym_dream.models.members import MEMBER_CHOICES
from gym_dream.models import MDNRNN, RSSM
from gym_dream.preprocessing import Preprocessing


@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _init(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for name, b in model.named_buffers():
            if name.startswith("start_"):
                b.copy_(torch.randn(b.shape, generator=g))
    return model.eval().requires_grad_(False)


def _never_terminates(model):
    with torch.no_grad():
        model.termination_head[-1].weight.zero_()
        model.termination_head[-1].bias.fill_(-50.0)


QUANTILES = {"50": 0.05, "90": 0.1, "95": 0.12, "99": 0.15, "99.9": 0.2}


def cartpole_members(members=3, seed=0, quantiles=None, dropout=0.0):
    """A randomly initialised tiny CartPole MDN-RNN with ``members`` members and an uncertainty card."""
    env = gym.make("CartPole-v1")
    m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=16, mixtures=2, head_hidden=8,
               residual=True, bank_size=8, members=members, dropout=dropout)
    _init(m, seed)
    m.card = {"env": {"id": "CartPole-v1"},
              "uncertainty": {"members": members, "reward_min": -3.0, "heldout_disagreement": {"quantiles": dict(quantiles or QUANTILES)}}}
    return m


def swingup_rssm(members=2, seed=0):
    obs = spaces.Box(-np.inf, np.inf, (5,), np.float32)
    act = spaces.Box(-1.0, 1.0, (1,), np.float32)
    m = RSSM(obs, act, Preprocessing("vector"), deter=16, stoch=4, hidden=16, bank_size=4, members=members)
    _init(m, seed)
    m.card = {"uncertainty": {"members": members, "reward_min": 0.0, "heldout_disagreement": {"quantiles": dict(QUANTILES)}}}
    return m


def _copy_member0(model):
    """Make every member an exact copy of member 0."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 1 and p.shape[0] == model.members and not name.startswith(("vision.", "encoder.", "decoder.", "post_net.")):
                p.copy_(p[:1].expand_as(p))
        if "start_h" in dict(model.named_buffers()):  # an RSSM's start memories, one per member
            model.start_h.copy_(model.start_h[:, :1].expand_as(model.start_h))
    return model


# -- the models ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["mdnrnn", "rssm"])
def test_identical_members_disagree_by_zero_and_dream_alike(family):
    model = _copy_member0(cartpole_members(3) if family == "mdnrnn" else swingup_rssm(3))
    action = torch.tensor([0, 1, 1, 0]) if family == "mdnrnn" else torch.tensor([[0.3], [-0.5], [0.9], [0.0]])
    state = model.initial_state(4, torch.Generator().manual_seed(0))
    with torch.no_grad():
        nexts = []
        for member in [None, torch.tensor([1, 2, 0, 1]), "mean", "random"]:
            tr = model.imagine(state, action, 1.0, torch.Generator().manual_seed(5), member=member)
            assert bool((tr.disagreement == 0).all()) and bool((tr.reward_disagreement == 0).all())
            nexts.append(tr)
    # every choice follows the same member: the same next state (the mean of equal samples), reward and end
    key = "z" if family == "mdnrnn" else "s"
    for tr in nexts[1:3]:
        torch.testing.assert_close(tr.state[key], nexts[0].state[key], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(tr.reward, nexts[0].reward, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["mdnrnn", "rssm"])
def test_different_members_disagree_and_single_members_report_exactly_zero(family):
    multi = cartpole_members(3) if family == "mdnrnn" else swingup_rssm(3)
    single = cartpole_members(1) if family == "mdnrnn" else swingup_rssm(1)
    action = torch.tensor([0, 1]) if family == "mdnrnn" else torch.tensor([[0.3], [-0.5]])
    for model, positive in ((multi, True), (single, False)):
        state = model.initial_state(2, torch.Generator().manual_seed(0))
        with torch.no_grad():
            tr = model.imagine(state, action, 1.0, torch.Generator().manual_seed(1))
        assert tr.disagreement.shape == (2,) and tr.reward_disagreement.shape == (2,)
        if positive:
            assert bool((tr.disagreement > 1e-3).all())
        else:
            assert bool((tr.disagreement == 0).all()) and bool((tr.reward_disagreement == 0).all())
    # a single member's card and state dict are those of a model without members
    assert "members" not in single.hyperparameters() and multi.hyperparameters()["members"] == 3
    assert set(single.state_dict()) == set(multi.state_dict())


def test_dropout_members_are_masks_of_one_network():
    model = cartpole_members(4, dropout=0.25)
    single = cartpole_members(1)
    assert set(model.state_dict()) == set(single.state_dict()) | {"member_masks"}
    assert all(model.state_dict()[k].shape == v.shape for k, v in single.state_dict().items())
    assert model.hyperparameters()["dropout"] == 0.25 and model.member_masks.shape == (4, 16)
    state = model.initial_state(3, torch.Generator().manual_seed(0))
    assert state["h"].shape == (3, 16)  # the state of one network
    with torch.no_grad():
        tr = model.imagine(state, torch.tensor([0, 1, 0]), 1.0, torch.Generator().manual_seed(1), member="mean")
    assert tr.state["h"].shape == (3, 16) and bool((tr.disagreement > 0).all())
    assert model.features(tr.state).shape == (3, model.feature_dim)
    with pytest.raises(ValueError, match="members > 1"):
        cartpole_members(1, dropout=0.1)


def _synthetic(g, m, b=8, t=8):
    """x' = 0.9 x + 0.1 (2a - 1) + noise, started uniformly in [-1, 1]^2: the data never leaves [-1.2, 1.2]."""
    x = torch.rand(m, b, 2, generator=g) * 2 - 1
    a = torch.randint(0, 2, (m, b, t), generator=g)
    xs = [x]
    for i in range(t):
        xs.append(0.9 * xs[-1] + 0.1 * (2 * a[:, :, i, None] - 1) + 0.01 * torch.randn(m, b, 2, generator=g))
    return torch.stack(xs, 2), a


def test_fitted_ensemble_disagrees_more_far_from_the_data(one_thread):
    torch.manual_seed(0)
    members = 3
    model = MDNRNN(spaces.Box(-np.inf, np.inf, (2,), np.float32), spaces.Discrete(2), Preprocessing("vector"),
                   hidden=16, mixtures=2, head_hidden=8, residual=True, members=members)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    zeros = torch.zeros(members, 8, 8)
    for _ in range(150):  # every member its own batch, in one batched pass
        x, a = _synthetic(g, members)
        out = model.sequence_loss(x, a, zeros, zeros.bool(), torch.ones_like(zeros))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        def disagreement(x):
            return model.imagine(model.initial_state(0, obs=x), torch.zeros(len(x), dtype=torch.long), 1.0, g, member="mean").disagreement
        near = disagreement(torch.rand(256, 2, generator=g) * 2 - 1)
        far = disagreement(torch.full((64, 2), 8.0))
    assert float(far.min()) > 2.0 * float(near.max()), (float(near.max()), float(far.min()))


def test_member_losses_are_independent():
    """Each member's gradient is that of its own loss: a batch changed for member 2 only moves member 2."""
    model = cartpole_members(3).requires_grad_(True).train()
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 4, 6, 4, generator=g)
    a = torch.randint(0, 2, (3, 4, 5), generator=g)
    r, d, m = torch.randn(3, 4, 5, generator=g), torch.zeros(3, 4, 5, dtype=torch.bool), torch.ones(3, 4, 5)

    def grads(z):
        model.zero_grad()
        model.sequence_loss(z, a, r, d, m)["loss"].backward()
        return model.rnn.weight_hh_l0.grad.clone()

    z2 = z.clone()
    z2[2] += 1.0
    g1, g2 = grads(z), grads(z2)
    torch.testing.assert_close(g1[:2], g2[:2])
    assert not torch.allclose(g1[2], g2[2])


# -- the envs: member choice ---------------------------------------------------------------------------
def _rewards_name_members(model):
    """Member m predicts reward 10 m for every transition, and no member ever ends an episode."""
    with torch.no_grad():
        model.reward_head[-1].weight.zero_()
        model.reward_head[-1].bias.copy_(10.0 * torch.arange(model.members, dtype=torch.float32)[:, None])
    _never_terminates(model)
    return model


def test_member_choices_behave_as_documented():
    model = _rewards_name_members(cartpole_members(3))
    steps, n = 12, 16
    seen = {}
    for member in MEMBER_CHOICES:
        venv = gym_dream.DreamVectorEnv(num_envs=n, model=model, member=member, max_episode_steps=6)
        venv.reset(seed=0)
        rows = np.stack([venv.step(np.zeros(n, dtype=np.int64))[1] for _ in range(steps)])  # (steps, n)
        seen[member] = rows
    mean = seen["mean"]
    assert np.all(mean[6] == 0.0) and np.all(np.delete(mean, 6, axis=0) == 10.0)  # the average of 0, 10, 20
    episode = seen["random_per_episode"]
    first, second = episode[:6], episode[7:]  # step 6 is the NEXT_STEP restart (reward 0)
    assert np.all(first == first[0]) and np.all(second == second[0])  # one member per episode
    assert set(np.unique(episode[:6])) == {0.0, 10.0, 20.0}  # ... drawn per env
    assert not np.array_equal(first[0], second[0])  # ... and drawn again at each reset
    step = np.delete(seen["random_per_step"], 6, axis=0)
    assert set(np.unique(step)) == {0.0, 10.0, 20.0}
    assert all(len(np.unique(step[:, i])) > 1 for i in range(n))  # a new member within the episode


def test_single_env_member_choices(one_thread):
    model = _rewards_name_members(cartpole_members(3))
    for member, check in [("mean", lambda r: set(r) == {10.0}), ("random_per_episode", lambda r: len(set(r)) == 1),
                          ("random_per_step", lambda r: len(set(r)) > 1)]:
        env = gym_dream.DreamEnv(model=model, member=member)
        env.reset(seed=3)
        rewards = [env.step(0)[1] for _ in range(20)]
        assert check(rewards), (member, rewards)


@pytest.mark.parametrize("family", ["mdnrnn", "mdnrnn-dropout", "rssm"])
@pytest.mark.parametrize("member", MEMBER_CHOICES)
def test_same_seed_same_dream_with_members(family, member):
    model = {"mdnrnn": lambda: cartpole_members(3), "mdnrnn-dropout": lambda: cartpole_members(3, dropout=0.2), "rssm": lambda: swingup_rssm(3)}[family]()
    kwargs = dict(num_envs=6, model=model, member=member, max_episode_steps=5, uncertainty_penalty=0.5)

    def run(seed):
        venv = gym_dream.DreamVectorEnv(**kwargs)
        venv.reset(seed=seed)
        venv.action_space.seed(0)
        out = []
        for _ in range(12):
            obs, r, term, trunc, info = venv.step(venv.action_space.sample())
            out.append(np.concatenate([obs.ravel(), r, info["disagreement"]]))
        return np.stack(out)

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


def test_single_member_models_dream_the_same_under_every_choice():
    env_kwargs = [dict(member=m) for m in MEMBER_CHOICES]
    traces = []
    for kw in env_kwargs:
        env = gym.make("Dream-CartPole-v0", **kw)  # the shipped single-member model
        obs, _ = env.reset(seed=0)
        trace = [obs]
        for t in range(30):
            obs, r, term, trunc, info = env.step(t % 2)
            assert info["disagreement"] == 0.0 and info["reward_disagreement"] == 0.0
            trace.append(np.append(obs, [r, term]))
        traces.append(np.concatenate(trace))
    for t in traces[1:]:
        np.testing.assert_array_equal(t, traces[0])


# -- the envs: penalty and limit -----------------------------------------------------------------------
def _quantiles_of_plain_run(model, n=32, steps=10):
    venv = gym_dream.DreamVectorEnv(num_envs=n, model=model, member="random_per_step")
    venv.reset(seed=0)
    d = np.concatenate([venv.step(np.zeros(n, dtype=np.int64))[4]["disagreement"] for _ in range(steps)])
    return {q: float(np.quantile(d, float(q) / 100)) for q in QUANTILES}


def test_penalty_in_dream_env_is_reward_minus_lambda_disagreement():
    model = cartpole_members(3)
    _never_terminates(model)
    plain, penalised = gym_dream.DreamEnv(model=model), gym_dream.DreamEnv(model=model, uncertainty_penalty=2.5)
    plain.reset(seed=4)
    penalised.reset(seed=4)
    for t in range(25):
        o1, r1, *_, i1 = plain.step(t % 2)
        o2, r2, *_, i2 = penalised.step(t % 2)
        np.testing.assert_array_equal(o1, o2)  # the penalty changes rewards only
        assert i1["disagreement"] == i2["disagreement"] > 0
        assert r2 == pytest.approx(r1 - 2.5 * i1["disagreement"], rel=1e-6, abs=1e-6)


def test_limit_in_dream_env_halts_at_the_first_step_past_it():
    model = cartpole_members(3)
    _never_terminates(model)
    model.card["uncertainty"]["heldout_disagreement"]["quantiles"] = _quantiles_of_plain_run(model)
    halts = 0
    for seed in range(6):
        plain = gym_dream.DreamEnv(model=model)
        limited = gym_dream.DreamEnv(model=model, uncertainty_limit="q90")
        limit = limited.uncertainty_limit
        assert limit == model.card["uncertainty"]["heldout_disagreement"]["quantiles"]["90"]
        plain.reset(seed=seed)
        limited.reset(seed=seed)
        for t in range(40):
            o1, r1, term1, _, i1 = plain.step(t % 2)
            o2, r2, term2, _, i2 = limited.step(t % 2)
            np.testing.assert_array_equal(o1, o2)
            past = i1["disagreement"] > limit
            assert i2["uncertainty_halt"] == past and term2 == (term1 or past)
            assert r2 == (-3.0 if past else r1)  # the card's reward_min replaces the reward
            if past:
                halts += 1
                break
    assert halts >= 2  # q90 of a plain run is crossed within 40 steps by most episodes


def _step_all(venv, n, steps):
    out = []
    for t in range(steps):
        out.append(venv.step(np.full(n, t % 2, dtype=np.int64)))
    return out


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP, AutoresetMode.DISABLED])
def test_penalty_and_limit_in_vector_env_every_autoreset_mode(mode):
    model = cartpole_members(3)
    _never_terminates(model)
    model.card["uncertainty"]["heldout_disagreement"]["quantiles"] = _quantiles_of_plain_run(model)
    n, lam, halt = 16, 1.5, 7.0
    plain = gym_dream.DreamVectorEnv(num_envs=n, model=model, autoreset_mode=mode, max_episode_steps=8)
    limited = gym_dream.DreamVectorEnv(num_envs=n, model=model, autoreset_mode=mode, max_episode_steps=8, uncertainty_penalty=lam,
                                       uncertainty_limit="q95", uncertainty_halt_reward=halt)
    limit = limited.uncertainty_limit
    plain.reset(seed=2)
    limited.reset(seed=2)
    diverged = np.zeros(n, dtype=bool)  # after an env halts, its restart draws differ from the plain env's
    restarting = np.zeros(n, dtype=bool)
    halts = 0
    for t in range(30):
        a = np.full(n, t % 2, dtype=np.int64)
        if mode == AutoresetMode.DISABLED and t % 8 == 0 and t:
            plain.reset(options={"reset_mask": np.ones(n, dtype=bool)})
            limited.reset(options={"reset_mask": np.ones(n, dtype=bool)})
        o1, r1, te1, tr1, i1 = plain.step(a)
        o2, r2, te2, tr2, i2 = limited.step(a)
        d = i2["disagreement"]
        past = d > limit
        if mode == AutoresetMode.NEXT_STEP:
            assert not np.any(i2["uncertainty_halt"] & restarting)  # a restarting step reports 0 and never halts
            assert np.all(d[restarting] == 0.0) and np.all(r2[restarting] == 0.0)
            past &= ~restarting
        np.testing.assert_array_equal(i2["uncertainty_halt"], past)
        assert np.all(te2[past]) and np.all(r2[past] == halt) and not np.any(tr2[past])
        same = ~diverged
        if same.any():
            np.testing.assert_array_equal(d[same], i1["disagreement"][same])
            keep = same & ~past
            np.testing.assert_allclose(r2[keep], r1[keep] - lam * d[keep], rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(te2[keep], te1[keep])
        if mode == AutoresetMode.SAME_STEP:
            np.testing.assert_array_equal(i2.get("_final_obs", np.zeros(n, bool)), te2 | tr2)
        halts += int(past.sum())
        if past.any():
            diverged[:] = True  # a halt restarts an env the plain one keeps: the shared generator's draws differ from here
        restarting = (te2 | tr2) if mode == AutoresetMode.NEXT_STEP else np.zeros(n, dtype=bool)
    assert halts > 0


# -- the envs: checks and errors -----------------------------------------------------------------------
@pytest.mark.parametrize("member", MEMBER_CHOICES)
def test_check_env_with_uncertainty_on(member):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    for model in (cartpole_members(3), cartpole_members(3, dropout=0.2), swingup_rssm(2)):
        env = gym_dream.DreamEnv(model=model, member=member, uncertainty_penalty=1.0, uncertainty_limit="q99")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)
    env = gym.make("Dream-CartPole-v0", model=cartpole_members(3), member=member, uncertainty_penalty=0.5, uncertainty_limit=0.1)
    check_env(env.unwrapped, skip_render_check=True)


def test_errors_name_the_fix():
    single = cartpole_members(1)
    with pytest.raises(ValueError, match="members=1.*--members 5"):
        gym_dream.DreamEnv(model=single, uncertainty_penalty=1.0)
    with pytest.raises(ValueError, match="members=1"):
        gym.make_vec("Dream-CartPole-v0", num_envs=2, vectorization_mode="vector_entry_point", uncertainty_limit="q99")
    multi = cartpole_members(3)
    with pytest.raises(ValueError, match="'q50', 'q90', 'q95', 'q99', 'q99.9'"):
        gym_dream.DreamEnv(model=multi, uncertainty_limit="q97")
    with pytest.raises(ValueError, match="member must be one of"):
        gym_dream.DreamEnv(model=multi, member="best")
    with pytest.raises(ValueError, match=">= 0"):
        gym_dream.DreamVectorEnv(num_envs=2, model=multi, uncertainty_penalty=-1.0)
    with pytest.raises(ValueError, match="> 0"):
        gym_dream.DreamEnv(model=multi, uncertainty_limit=0.0)
    multi.card["uncertainty"].pop("reward_min")
    with pytest.raises(ValueError, match="uncertainty_halt_reward="):
        gym_dream.DreamEnv(model=multi, uncertainty_limit=0.1)
    multi.card = {}
    with pytest.raises(ValueError, match="pass a number"):
        gym_dream.DreamEnv(model=multi, uncertainty_limit="q99", uncertainty_halt_reward=0.0)
    with pytest.raises(ValueError, match="members must be an integer"):
        cartpole_members(0)


def test_defaults_keep_todays_dream_and_info():
    env = gym.make("Dream-CartPole-v0")
    assert env.unwrapped.uncertainty_penalty == 0.0 and env.unwrapped.uncertainty_limit is None
    env.reset(seed=0)
    *_, info = env.step(0)
    assert info["disagreement"] == 0.0 and "uncertainty_halt" not in info


# -- fitting members --------------------------------------------------------------------------------------
def test_fit_with_members_writes_the_heldout_disagreement_and_the_env_reads_it(cartpole_data, tmp_path, one_thread):
    from trainers.fit.dispatch import FitConfig, fit

    out = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m2"), family="mdnrnn", preset="tiny", rnn_epochs=2, bank_size=8, members=2))
    card = json.loads((out / "model.json").read_text())
    assert card["params"]["members"] == 2
    unc = card["uncertainty"]
    q = [unc["heldout_disagreement"]["quantiles"][k] for k in ("50", "90", "95", "99", "99.9")]
    assert unc["members"] == 2 and all(a <= b for a, b in zip(q, q[1:])) and q[0] > 0
    assert unc["heldout_disagreement"]["transitions"] == card["training"]["heldout"]["mdnrnn"]["transitions"]
    assert unc["reward_min"] == 1.0  # CartPole pays 1 per step
    assert "ensemble_nll" in card["training"]["heldout"]["mdnrnn"]
    venv = gym.make_vec("Dream-CartPole-v0", num_envs=4, vectorization_mode="vector_entry_point", model=str(out), uncertainty_limit="q99")
    assert venv.unwrapped.uncertainty_limit == q[3]
    venv.reset(seed=0)
    *_, info = venv.step(np.zeros(4, dtype=np.int64))
    assert info["disagreement"].shape == (4,) and np.all(info["disagreement"] > 0)


def test_rssm_sequence_disagreement_is_what_imagine_reports_while_filtering():
    model = swingup_rssm(3)
    g = torch.Generator().manual_seed(0)
    obs, actions = torch.randn(2, 6, 5, generator=g), torch.rand(2, 5, 1, generator=g) * 2 - 1
    seq = model.sequence_disagreement(obs, actions)
    state = model.initial_state(0, obs=obs[:, 0])
    with torch.no_grad():
        for t in range(5):
            tr = model.imagine(state, actions[:, t], 1.0, torch.Generator().manual_seed(t), member="mean")
            torch.testing.assert_close(tr.disagreement, seq[:, t])
            state = model.observe(state, actions[:, t], obs[:, t + 1])
    assert bool((swingup_rssm(1).sequence_disagreement(obs, actions) == 0).all())


def test_reset_from_a_members_state_in_single_and_vector_envs():
    model = cartpole_members(3)
    env = gym_dream.DreamEnv(model=model, member="random_per_step")
    env.reset(seed=0)
    env.step(1)
    state = env.unwrapped.state
    assert state["h"].shape == (1, 3, 16)  # every member's memory
    obs, _ = env.reset(options={"state": state})
    np.testing.assert_allclose(obs, model.features(state)[0].numpy())
    venv = gym_dream.DreamVectorEnv(num_envs=4, model=model)
    obs, _ = venv.reset(seed=1, options={"state": state})
    np.testing.assert_allclose(obs, np.repeat(model.features(state).numpy(), 4, 0))
    *_, info = venv.step(np.zeros(4, dtype=np.int64))
    assert np.allclose(info["disagreement"], info["disagreement"][0])  # the same state and action: the same disagreement


def test_pixel_model_with_members_passes_check_env():
    obs = spaces.Box(0, 255, (96, 96, 3), np.uint8)
    act = spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.array([1.0, 1.0, 1.0], np.float32))
    model = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), z_dim=8, hidden=16, mixtures=2, head_hidden=8,
                   vae_channels=(4, 8, 8, 16), bank_size=4, members=2)
    _init(model, 1)
    model.card = {"env": {"id": "CarRacing-v3"}, "uncertainty": {"reward_min": -100.0, "heldout_disagreement": {"quantiles": dict(QUANTILES)}}}
    for obs_type in ("latent", "pixels"):
        env = gym.make("Dream-CarRacing-v0", model=model, obs_type=obs_type, uncertainty_penalty=0.1, uncertainty_limit="q99.9")
        check_env(env.unwrapped, skip_render_check=True)


def test_rssm_fit_with_members_writes_the_heldout_disagreement(cartpole_data, tmp_path, one_thread):
    from trainers.fit.dispatch import FitConfig, fit

    out = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "r2"), family="rssm", preset="tiny", bank_size=8, members=2))
    card = json.loads((out / "model.json").read_text())
    assert card["params"]["members"] == 2 and card["uncertainty"]["members"] == 2
    q = [card["uncertainty"]["heldout_disagreement"]["quantiles"][k] for k in ("50", "90", "95", "99", "99.9")]
    assert all(a <= b for a, b in zip(q, q[1:])) and q[0] > 0
    env = gym.make("Dream-CartPole-v0", model=str(out), uncertainty_limit="q99", uncertainty_penalty=0.5)
    assert env.unwrapped.uncertainty_limit == q[3] and env.unwrapped.uncertainty_halt_reward == 1.0
    env.reset(seed=0)
    *_, info = env.step(0)
    assert info["disagreement"] > 0


def test_dream_observation_shows_the_real_env_through_a_members_model():
    model = cartpole_members(3)
    real = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), model=model)
    dream = gym_dream.DreamEnv(model=model)
    assert real.observation_space == dream.observation_space  # features [z, h of member 0]: the same size as one member's
    obs, _ = real.reset(seed=0)
    assert obs.shape == (model.feature_dim,)
    obs, *_ = real.step(1)
    assert obs.shape == (model.feature_dim,) and np.isfinite(obs).all()


def test_single_member_imagine_is_the_original_formula_bit_for_bit():
    """The shipped CartPole model steps exactly as the MDN-RNN did before members existed."""
    from gym_dream.models.mdn import mixture_sample

    model = gym_dream.resolve_model("cartpole")
    assert model.members == 1 and "members" not in model.card["params"] and model.residual
    state = model.initial_state(16, torch.Generator().manual_seed(0))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    ref = {k: v.clone() for k, v in state.items()}
    with torch.no_grad():
        for t in range(20):
            a = torch.tensor([t % 2] * 8 + [1 - t % 2] * 8)
            tr = model.imagine(state, a, 1.15, g1)
            x = torch.cat([ref["z"], torch.nn.functional.one_hot(a, 2).float()], -1)
            rnn = model.rnn
            h, c = torch.lstm_cell(x, (ref["h"], ref["c"]), rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
            out = model.mdn.linear(h)
            k, d = model.mixtures, model.z_dim
            logits, mu = out[..., :k], out[..., k : k + k * d].unflatten(-1, (k, d)) + ref["z"].unsqueeze(-2)
            log_sigma = out[..., k + k * d :].unflatten(-1, (k, d)).clamp(-7.0, 2.0)
            z = mixture_sample(logits, mu, log_sigma, 1.15, g2)
            reward = model.reward_head(torch.cat([z, h], -1)).squeeze(-1)
            for key, v in (("z", z), ("h", h), ("c", c)):
                assert torch.equal(tr.state[key], v)
            assert torch.equal(tr.reward, reward) and bool((tr.disagreement == 0).all())
            state, ref = tr.state, {"z": z, "h": h, "c": c}
