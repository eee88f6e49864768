"""The dreamer family (DreamerV3's world model): the protocol and env tests every family passes, its two-hot reward,
KL balancing with free bits, temperature over categorical latents, and `gym-dream fit --family dreamer`."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import gym_dream
from gym_dream.checkpoint import load_model, save_model
from gym_dream.models import FAMILIES, Dreamer
from gym_dream.models.dreamer import symexp, symlog, symlog_bins, twohot, twohot_mean
from gym_dream.models.dreamer_loss import DYN_SCALE, FREE_BITS, REP_SCALE, kl_balance
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict

TINY = dict(deter=16, stoch=4, classes=5, hidden=16, units=16, layers=1)


def _randomise(model: Dreamer, seed: int) -> Dreamer:
    """Random weights (the reward head too, so dreams have rewards) and a bank of random start states."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.1)
        model.start_h.copy_(torch.tanh(torch.randn(model.start_h.shape, generator=g)))
        idx = torch.randint(model.classes, (model.start_z.shape[0], model.stoch), generator=g)
        model.start_z.copy_(torch.nn.functional.one_hot(idx, model.classes).float().flatten(1))
    return model.eval().requires_grad_(False)


@pytest.fixture
def dreamer_vector():
    env = gym.make("CartPole-v1")
    torch.manual_seed(0)
    m = Dreamer(env.observation_space, env.action_space, Preprocessing("vector"), bank_size=8, **TINY)
    m.card = {"env": {"id": "CartPole-v1"}}
    return _randomise(m, 0)


@pytest.fixture
def dreamer_pixel():
    obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
    act = space_from_dict({"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0, 0.0, 0.0], "high": 1.0})
    torch.manual_seed(1)
    m = Dreamer(obs, act, Preprocessing("image", size=(64, 64)), cnn_channels=(4, 8, 8, 16), bank_size=4, **TINY)
    m.card = {"env": {"id": "CarRacing-v3"}}
    return _randomise(m, 1)


def _rollout(env, seed, steps=40):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        trace.append(np.append(obs.ravel()[:64], [r, term, info["termination_prob"]]))
        if term or trunc:
            obs, _ = env.reset()
    return trace


# -- the protocol and the envs -----------------------------------------------------------------------------
def test_dreamer_is_a_registered_family():
    assert FAMILIES["dreamer"] is Dreamer


@pytest.mark.parametrize("tau", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("fixture,env_id", [("dreamer_vector", "Dream-CartPole-v0"), ("dreamer_pixel", "Dream-CarRacing-v0")])
def test_gymnasium_and_sb3_check_env(fixture, env_id, tau, request):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    model = request.getfixturevalue(fixture)
    for obs_type in ["latent"] + (["pixels"] if model.pixels else []):
        env = gym.make(env_id, model=model, tau=tau, obs_type=obs_type)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)


def test_features_are_h_and_one_hot_latents(dreamer_vector):
    env = gym.make("Dream-CartPole-v0", model=dreamer_vector, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, r, term, trunc, info = env.step(1)
        assert term == (info["termination_prob"] > 0.5)
    z = obs[dreamer_vector.deter:].reshape(dreamer_vector.stoch, dreamer_vector.classes)
    assert obs.shape == (dreamer_vector.feature_dim,) == (16 + 4 * 5,)
    np.testing.assert_array_equal(z.sum(1), np.ones(4))
    assert set(np.unique(z)) <= {0.0, 1.0}
    assert env.render().dtype == np.uint8


def test_pixel_dream_renders_its_frames(dreamer_pixel):
    env = gym.make("Dream-CarRacing-v0", model=dreamer_pixel, obs_type="pixels", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    obs, *_ = env.step(np.array([0.1, 0.5, 0.0], np.float32))
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    np.testing.assert_array_equal(env.render(), obs)


def _never_ends(model):
    with torch.no_grad():
        model.continue_head[-1].weight.zero_()
        model.continue_head[-1].bias.fill_(50.0)


def _bank_features(model):
    return torch.cat([model.start_h, model.start_z], dim=-1).numpy()


def _is_a_start(rows, model):
    bank = _bank_features(model)
    return all(np.isclose(bank, row, atol=1e-6).all(1).any() for row in rows)


def test_make_vec_next_step_autoreset(dreamer_vector):
    _never_ends(dreamer_vector)
    venv = gym.make_vec("Dream-CartPole-v0", num_envs=6, vectorization_mode="vector_entry_point", model=dreamer_vector, max_episode_steps=3)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (6, dreamer_vector.feature_dim) and venv.observation_space.contains(obs) and _is_a_start(obs, dreamer_vector)
    for t in range(3):
        obs, r, term, trunc, _ = venv.step(np.ones(6, dtype=np.int64))
        assert trunc.all() == (t == 2) and not term.any() and np.isfinite(r).all()
    obs, r, term, trunc, _ = venv.step(np.ones(6, dtype=np.int64))
    assert np.all(r == 0) and not (term | trunc).any() and _is_a_start(obs, dreamer_vector)


def test_make_vec_same_step_autoreset(dreamer_vector):
    _never_ends(dreamer_vector)
    venv = gym_dream.DreamVectorEnv(num_envs=4, model=dreamer_vector, max_episode_steps=2, autoreset_mode="SameStep")
    venv.reset(seed=0)
    venv.step(np.zeros(4, dtype=np.int64))
    obs, r, term, trunc, info = venv.step(np.zeros(4, dtype=np.int64))
    assert (term | trunc).all() and info["_final_obs"].all()
    assert _is_a_start(obs, dreamer_vector) and not _is_a_start(info["final_obs"], dreamer_vector)


def test_make_vec_disabled_autoreset_and_reset_mask(dreamer_vector):
    venv = gym_dream.DreamVectorEnv(num_envs=4, model=dreamer_vector, autoreset_mode=AutoresetMode.DISABLED)
    venv.reset(seed=0)
    obs, *_ = venv.step(np.ones(4, dtype=np.int64))
    mask = np.array([True, False, True, False])
    obs2, _ = venv.reset(options={"reset_mask": mask})
    assert _is_a_start(obs2[mask], dreamer_vector)
    np.testing.assert_array_equal(obs2[~mask], obs[~mask])


@pytest.mark.parametrize("fixture,env_id", [("dreamer_vector", "Dream-CartPole-v0"), ("dreamer_pixel", "Dream-CarRacing-v0")])
def test_same_seed_same_dream_different_seed_different_dream(fixture, env_id, request):
    model = request.getfixturevalue(fixture)
    a = _rollout(gym.make(env_id, model=model), 7)
    b = _rollout(gym.make(env_id, model=model), 7)
    c = _rollout(gym.make(env_id, model=model), 8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x[: len(y)], y[: len(x)]) for x, y in zip(a, c))


def test_the_global_rng_is_never_drawn(dreamer_vector):
    state = torch.get_rng_state()
    venv = gym_dream.DreamVectorEnv(num_envs=3, model=dreamer_vector, tau=(0.5, 2.0))
    venv.reset(seed=0)
    for _ in range(5):
        venv.step(np.zeros(3, dtype=np.int64))
    assert torch.equal(torch.get_rng_state(), state)


def test_save_load_round_trip_gives_the_same_dream(dreamer_vector, dreamer_pixel, tmp_path):
    for name, model, env_id in (("v", dreamer_vector, "Dream-CartPole-v0"), ("p", dreamer_pixel, "Dream-CarRacing-v0")):
        save_model(model, tmp_path / name, model.card)
        loaded = load_model(tmp_path / name)
        assert loaded.family == "dreamer" and loaded.hyperparameters() == model.hyperparameters()
        assert json.loads((tmp_path / name / "model.json").read_text())["family"] == "dreamer"
        for k, v in model.state_dict().items():
            assert torch.equal(v, loaded.state_dict()[k]), k
        a = _rollout(gym.make(env_id, model=model), 3, steps=10)
        b = _rollout(gym.make(env_id, model=str(tmp_path / name)), 3, steps=10)
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_fp16_shipping_loads_as_float32_and_dreams_close(dreamer_vector, tmp_path):
    save_model(dreamer_vector, tmp_path / "m", dreamer_vector.card, half=True)
    assert json.loads((tmp_path / "m" / "model.json").read_text())["weights"]["dtype"] == "float16"
    loaded = load_model(tmp_path / "m")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    torch.testing.assert_close(loaded.reward_bins, dreamer_vector.reward_bins, rtol=0, atol=0)  # rebuilt, never stored in fp16
    state = dreamer_vector.initial_state(5, torch.Generator().manual_seed(0))
    action = torch.tensor([0, 1, 1, 0, 1])
    with torch.no_grad():
        a = dreamer_vector.imagine(state, action, 1e-3, torch.Generator().manual_seed(1))
        b = loaded.imagine(state, action, 1e-3, torch.Generator().manual_seed(1))
    torch.testing.assert_close(b.reward, a.reward, atol=2e-2, rtol=2e-2)
    torch.testing.assert_close(b.termination_prob, a.termination_prob, atol=2e-2, rtol=0)
    assert (a.state["z"] == b.state["z"]).float().mean() > 0.9


def test_one_member_only_and_its_disagreement_is_zero(dreamer_vector):
    with pytest.raises(ValueError, match="one dynamics member.*--family rssm or mdnrnn"):
        Dreamer(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), Preprocessing("vector"), members=3, **TINY)
    state = dreamer_vector.initial_state(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        for member in (None, "mean", "random", torch.tensor([0, 0])):
            tr = dreamer_vector.imagine(state, torch.tensor([0, 1]), 1.0, torch.Generator().manual_seed(0), member=member)
            assert bool((tr.disagreement == 0).all()) and bool((tr.reward_disagreement == 0).all())
        with pytest.raises(ValueError, match="member indices"):
            dreamer_vector.imagine(state, torch.tensor([0, 1]), 1.0, None, member=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="several dynamics members"):
        gym.make("Dream-CartPole-v0", model=dreamer_vector, uncertainty_penalty=1.0)


def test_tau_sharpens_and_flattens_the_categoricals(dreamer_vector):
    state = dreamer_vector.initial_state(1, torch.Generator().manual_seed(0))
    state = {k: v.expand(4000, -1) for k, v in state.items()}
    action = torch.zeros(4000, dtype=torch.long)
    with torch.no_grad():
        h = dreamer_vector.step_deter(state["h"][:1], state["z"][:1], dreamer_vector.encode_action(action[:1]))
        probs = dreamer_vector.prior_logp(h)[0].exp()  # (stoch, classes), unimixed

        def freq(tau, seed=0):
            z = dreamer_vector.imagine(state, action, tau, torch.Generator().manual_seed(seed)).state["z"]
            return z.reshape(-1, dreamer_vector.stoch, dreamer_vector.classes).mean(0)

        torch.testing.assert_close(freq(1.0), probs, atol=0.03, rtol=0)  # tau 1: the model as trained
        sharp = probs ** 2 / (probs ** 2).sum(-1, keepdim=True)
        torch.testing.assert_close(freq(0.5), sharp, atol=0.03, rtol=0)  # p ** (1 / tau), renormalised
        mode = torch.nn.functional.one_hot(probs.argmax(-1), dreamer_vector.classes).float()
        torch.testing.assert_close(freq(1e-4, 1), mode, atol=0, rtol=0)
        torch.testing.assert_close(freq(1e4), torch.full_like(probs, 1 / dreamer_vector.classes), atol=0.03, rtol=0)
        per_env = torch.tensor([1e-4] * 2000 + [1e4] * 2000)  # one temperature per env
        z = dreamer_vector.imagine(state, action, per_env, torch.Generator().manual_seed(2)).state["z"]
        z = z.reshape(-1, dreamer_vector.stoch, dreamer_vector.classes)
        assert torch.equal(z[:2000].mean(0), mode) and not torch.equal(z[2000:].mean(0), mode)


def test_block_gru_groups_read_only_their_own_slice_of_h():
    from gym_dream.models.dreamer import NormGRU

    cell = NormGRU(inp=5, deter=8, blocks=2)
    h = torch.randn(3, 8, requires_grad=True)
    out = cell(torch.randn(3, 5), h)
    jac = torch.autograd.grad(out[:, :4].sum(), h)[0]
    assert jac[:, 4:].abs().max() == 0 and jac[:, :4].abs().max() > 0
    with pytest.raises(ValueError, match="divide deter"):
        NormGRU(inp=5, deter=8, blocks=3)
    m = Dreamer(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Discrete(2), Preprocessing("vector"), **{**TINY, "blocks": 4})
    tr = m.imagine(m.initial_state(2), torch.tensor([0, 1]), 1.0, torch.Generator().manual_seed(0))
    assert tr.state["h"].shape == (2, 16) and torch.isfinite(m.features(tr.state)).all()


# -- the two-hot reward --------------------------------------------------------------------------------------
def test_two_hot_round_trip():
    bins = symlog_bins(255)
    assert bins.shape == (255,) and bins[0] == -20 and bins[-1] == 20 and bins[127] == 0
    assert torch.equal(bins, -bins.flip(0))
    # values on bins: all weight on that bin, and decoding gives the value back
    on = bins[::7]
    enc = twohot(on, bins)
    assert torch.equal(enc.argmax(-1), torch.arange(0, 255, 7)) and torch.equal(enc.max(-1).values, torch.ones(len(on)))
    torch.testing.assert_close(twohot_mean(enc, bins), on, atol=0, rtol=0)
    rewards = symexp(bins[100:155])  # rewards whose symlog is a bin (-1e3 .. 1e3)
    torch.testing.assert_close(symexp(twohot_mean(twohot(symlog(rewards), bins), bins)), rewards, atol=1e-6, rtol=1e-5)
    # between bins: two neighbours, weights by closeness, the same value back
    x = torch.tensor([-1234.5, -3.3, -0.01, 0.0, 0.2, 1.0, 7.7, 1e5])
    enc = twohot(symlog(x), bins)
    assert torch.all((enc > 0).sum(-1) <= 2) and torch.allclose(enc.sum(-1), torch.ones(len(x)))
    torch.testing.assert_close(symexp(twohot_mean(enc, bins)), x, atol=1e-6, rtol=1e-5)
    # outside the range: all weight on the end bin
    assert twohot(torch.tensor([25.0, -25.0]), bins)[:, [-1, 0]].diagonal().eq(1).all()


def test_an_untrained_reward_head_predicts_exactly_zero():
    env = gym.make("CartPole-v1")
    m = Dreamer(env.observation_space, env.action_space, Preprocessing("vector"), bank_size=4, **TINY)
    state = m.initial_state(0, obs=torch.randn(6, 4))
    with torch.no_grad():
        tr = m.imagine(state, torch.ones(6, dtype=torch.long), 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(tr.reward, torch.zeros(6))


# -- KL balancing and free bits ------------------------------------------------------------------------------
def test_kl_balance_sends_dyn_to_the_prior_and_rep_to_the_posterior():
    g = torch.Generator().manual_seed(0)
    post = torch.randn(3, 4, 5, generator=g).mul(3).log_softmax(-1).requires_grad_()
    prior = torch.randn(3, 4, 5, generator=g).mul(3).log_softmax(-1).requires_grad_()
    dyn, rep, kl = kl_balance(post, prior)
    assert torch.all(kl > FREE_BITS)  # above the free bits: both terms are the KL
    torch.testing.assert_close(dyn, kl)
    torch.testing.assert_close(rep, kl)
    d_post, d_prior = torch.autograd.grad(dyn.sum(), [post, prior], allow_unused=True)
    assert d_post is None and d_prior.abs().sum() > 0
    r_post, r_prior = torch.autograd.grad(rep.sum(), [post, prior], allow_unused=True)
    assert r_prior is None and r_post.abs().sum() > 0
    # below the free bits (close distributions): constant, no gradient to either
    near = (post.detach() + 0.01 * torch.randn(3, 4, 5, generator=g)).log_softmax(-1).requires_grad_()
    dyn, rep, kl = kl_balance(post, near)
    assert torch.all(kl < FREE_BITS) and torch.all(dyn == FREE_BITS) and torch.all(rep == FREE_BITS)
    grads = torch.autograd.grad((DYN_SCALE * dyn + REP_SCALE * rep).sum(), [post, near])
    assert all(gr.abs().max() == 0 for gr in grads)


def test_sequence_loss_on_a_tiny_model():
    env = gym.make("CartPole-v1")
    torch.manual_seed(0)
    m = Dreamer(env.observation_space, env.action_space, Preprocessing("vector"), **TINY)
    b, t = 3, 6
    g = torch.Generator().manual_seed(0)
    obs, actions = torch.randn(b, t + 1, 4, generator=g), torch.randint(0, 2, (b, t), generator=g)
    rewards, terminated = torch.ones(b, t), torch.zeros(b, t, dtype=torch.bool)
    terminated[0, -1] = True
    out = m.sequence_loss(obs, actions, rewards, terminated, torch.ones(b, t), torch.Generator().manual_seed(1))
    expect = out["reconstruction"] + out["reward_loss"] + out["continue_loss"] + 0.5 * out["dyn"] + 0.1 * out["rep"]
    torch.testing.assert_close(out["loss"], expect)
    assert out["dyn"] >= FREE_BITS and out["rep"] >= FREE_BITS and torch.isclose(out["reward_mse"], torch.tensor(1.0))  # reward 0 at start
    # the dyn term trains the prior network only; the rep term reaches the posterior network, never the prior's
    prior_params, post_params = list(m.prior_net.parameters()), list(m.post_net.parameters())
    m2 = Dreamer(env.observation_space, env.action_space, Preprocessing("vector"), **TINY)
    m2.load_state_dict(m.state_dict())
    with torch.no_grad():  # a prior far from the posterior: both terms above the free bits
        m2.prior_net[-1].bias.copy_(torch.linspace(-8, 8, m2.stoch * m2.classes))
    out = m2.sequence_loss(obs, actions, rewards, terminated, torch.ones(b, t), torch.Generator().manual_seed(1))
    assert out["dyn"] > FREE_BITS
    rep_prior = torch.autograd.grad(out["rep"], list(m2.prior_net.parameters()), allow_unused=True, retain_graph=True)
    assert all(gr is None or gr.abs().max() == 0 for gr in rep_prior)
    dyn_prior = torch.autograd.grad(out["dyn"], list(m2.prior_net.parameters()), retain_graph=True)
    assert sum(float(gr.abs().sum()) for gr in dyn_prior) > 0
    rep_post = torch.autograd.grad(out["rep"], list(m2.post_net.parameters()))
    assert sum(float(gr.abs().sum()) for gr in rep_post) > 0
    assert len(prior_params) == len(post_params)


def test_pixel_loss_trains_the_conv_decoder(dreamer_pixel):
    model = dreamer_pixel.train().requires_grad_(True)
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (2, 4, 64, 64, 3), generator=g, dtype=torch.uint8)
    actions = torch.rand(2, 3, 3, generator=g)
    batch = (obs, actions, torch.randn(2, 3, generator=g), torch.zeros(2, 3, dtype=torch.bool), torch.ones(2, 3))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = model.sequence_loss(*batch, generator=torch.Generator().manual_seed(0))["reconstruction"].item()
    for _ in range(5):
        out = model.sequence_loss(*batch, generator=torch.Generator().manual_seed(0))
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert torch.isfinite(out["loss"]) and out["reconstruction"].item() < first


# -- fitting ---------------------------------------------------------------------------------------------------
def test_tiny_fit_from_the_command_line_writes_a_loadable_model_and_resumes(cartpole_data, tmp_path, capsys):
    from trainers.cli.commands import main

    out = tmp_path / "dreamer"
    args = ["fit", str(cartpole_data), "--out", str(out), "--family", "dreamer", "--preset", "tiny", "--bank-size", "8", "--threads", "1"]
    assert main(args) == 0
    card = json.loads((out / "model.json").read_text())
    assert card["family"] == "dreamer" and card["training"]["family"] == "dreamer" and card["params"]["bank_size"] == 8
    held = card["training"]["heldout"]["dreamer"]
    for key in ("reward_mse", "termination_accuracy", "termination_recall", "kl", "loss"):
        assert key in held
    assert np.isfinite(held["reward_mse"]) and 0 <= held["termination_accuracy"] <= 1 and held["transitions"] > 0
    model = gym_dream.resolve_model(str(out))
    assert isinstance(model, Dreamer) and model.start_z.sum(1).eq(model.stoch).all()
    venv = gym.make_vec("Dream-CartPole-v0", num_envs=3, vectorization_mode="vector_entry_point", model=str(out))
    venv.reset(seed=0)
    assert np.isfinite(venv.step(np.ones(3, dtype=np.int64))[1]).all()
    real = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), model=str(out))
    assert real.observation_space.contains(real.reset(seed=0)[0])
    capsys.readouterr()
    assert main(args + ["--updates", "60"]) == 0  # asking for more continues the run
    assert "resuming dreamer.safetensors" in capsys.readouterr().err  # the command's log: stderr
    assert json.loads((out / "model.json").read_text())["training"]["updates"] == 60


def test_fit_options_of_other_families_are_refused(tmp_path):
    from trainers.fit.dispatch import FitConfig

    with pytest.raises(ValueError, match="--vae-epochs is an option of mdnrnn, not of dreamer.*--family mdnrnn"):
        FitConfig(out=str(tmp_path / "m"), family="dreamer", vae_epochs=3)
    with pytest.raises(ValueError, match="--classes is an option of dreamer, not of rssm.*--family dreamer"):
        FitConfig(out=str(tmp_path / "m"), family="rssm", classes=8)
    with pytest.raises(ValueError, match="not a dreamer preset; choose from default | small | tiny"):
        FitConfig(out=str(tmp_path / "m"), family="dreamer", preset="planet")
    FitConfig(out=str(tmp_path / "m"), family="dreamer", preset="small", deter=32, stoch=8, classes=8, updates=10)
