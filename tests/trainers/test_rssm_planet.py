"""RSSM (PlaNet's model), the CEM planner and the PlaNet loop."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import gym_dream
from gym_dream.checkpoint import load_model, save_model
from gym_dream.error import ModelMismatch
from gym_dream.models import RSSM, Transition, WorldModel
from gym_dream.preprocessing import Preprocessing
from gym_dream.wrappers import ActionRepeat, DreamObservation
from trainers.data.dataset import EpisodeDataset
from trainers.fit.rssm import train_rssm
from trainers.planning.planet_loop import PlaNetConfig, run_planet
from trainers.planning.cem import CEMConfig, CEMPlanner


def _vector_rssm(**kw):
    env = gym.make("CartPole-v1")
    m = RSSM(env.observation_space, env.action_space, Preprocessing("vector"), deter=32, stoch=8, hidden=32, **kw)
    m.card = {"env": {"id": "CartPole-v1"}}
    return m


def _pixel_rssm():
    obs = gym.spaces.Box(0, 255, (64, 64, 3), np.uint8)
    act = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    return RSSM(obs, act, Preprocessing("image", size=(64, 64)), deter=16, stoch=4, hidden=16, cnn_channels=(4, 8, 8, 16))


def _batch(ds: EpisodeDataset, rng, batch=16, chunk=16):
    from trainers.fit.sequences import windows

    o, a, m = windows(ds, np.arange(len(ds)), chunk, rng)
    pick = rng.integers(0, len(o), size=batch)
    o, a, m = o[pick], a[pick], m[pick]
    return (torch.as_tensor(ds.obs[o]), torch.as_tensor(ds.actions[a]), torch.as_tensor(ds.rewards[a]),
            torch.as_tensor(ds.terminated[a]), torch.as_tensor(m, dtype=torch.float32))


def test_elbo_falls_on_real_cartpole_data(cartpole_data):
    ds = EpisodeDataset(cartpole_data)
    torch.manual_seed(0)
    model = _vector_rssm()
    model.fit_normalizer(torch.as_tensor(ds.obs))
    fixed = _batch(ds, np.random.default_rng(123), batch=64)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        before = model.sequence_loss(*fixed, free_nats=0.0, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, eps=1e-4)
    train_rssm(model, opt, ds, steps=150, batch=16, chunk=16, rng=np.random.default_rng(0), g=g, free_nats=0.0)
    with torch.no_grad():
        after = model.sequence_loss(*fixed, free_nats=0.0, generator=torch.Generator().manual_seed(1))
    assert float(after["loss"]) < 0.5 * float(before["loss"]), (before, after)
    assert float(after["reconstruction"]) < float(before["reconstruction"])
    assert float(after["termination_bce"]) < float(before["termination_bce"])


def test_latent_overshooting_adds_finite_multistep_kl_terms(cartpole_data):
    ds = EpisodeDataset(cartpole_data)
    model = _vector_rssm()
    batch = _batch(ds, np.random.default_rng(0), chunk=12)
    plain = model.sequence_loss(*batch, generator=torch.Generator().manual_seed(0))
    over = model.sequence_loss(*batch, overshooting=5, generator=torch.Generator().manual_seed(0))
    assert not any(k.startswith("overshooting") for k in plain)
    terms = {k: v for k, v in over.items() if k.startswith("overshooting_kl_")}
    assert sorted(terms) == [f"overshooting_kl_{d}" for d in range(2, 6)]
    assert all(torch.isfinite(v) and v >= 0 for v in terms.values())
    assert torch.isfinite(over["loss"]) and float(over["loss"]) > float(plain["loss"])
    over["loss"].backward()  # gradients flow through the open-loop priors
    assert model.prior_net[0].weight.grad is not None and torch.isfinite(model.prior_net[0].weight.grad).all()


def test_pixel_rssm_reduces_bit_depth_and_decodes_frames():
    model = _pixel_rssm()
    frames = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8)
    x = model.preprocess(frames)
    assert x.shape == (2, 3, 64, 64) and float(x.min()) >= -0.5 and float(x.max()) < 0.5
    assert torch.allclose((x + 0.5) * 32, ((x + 0.5) * 32).round())  # 5 bits per channel
    state = model.initial_state(2, obs=frames)
    assert model.decode(state).shape == (2, 64, 64, 3) and model.decode(state).dtype == torch.uint8
    obs = frames[:, None].repeat(1, 5, 1, 1, 1)
    out = model.sequence_loss(obs, torch.zeros(2, 4, 1), torch.zeros(2, 4), torch.zeros(2, 4, dtype=torch.bool), torch.ones(2, 4), overshooting=3)
    assert torch.isfinite(out["loss"])


def test_tau_scales_the_prior_standard_deviation():
    model = _vector_rssm().eval()
    state = model.initial_state(4096, torch.Generator().manual_seed(0))
    a = torch.zeros(4096, dtype=torch.long)
    with torch.no_grad():
        s1 = model.imagine(state, a, 1.0, torch.Generator().manual_seed(1)).state["s"]
        s2 = model.imagine(state, a, 2.0, torch.Generator().manual_seed(1)).state["s"]
        mean = model.prior(model.step_deter(state["h"], state["s"], model.encode_action(a)))[0]
    assert torch.allclose(s2 - mean, 2 * (s1 - mean), atol=1e-5)


def test_rssm_is_a_full_dream_env_model(tmp_path):
    model = _vector_rssm()
    save_model(model, tmp_path / "m", {"env": {"id": "CartPole-v1", "max_episode_steps": 500}})
    loaded = load_model(tmp_path / "m")
    assert loaded.family == "rssm" and loaded.hyperparameters() == model.hyperparameters()
    env = gym.make("Dream-CartPole-v0", model=str(tmp_path / "m"), tau=1.15)
    check_env(env.unwrapped, skip_render_check=True)
    venv = gym.make_vec("Dream-CartPole-v0", model=str(tmp_path / "m"), num_envs=32, vectorization_mode="vector_entry_point")
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (32, model.feature_dim)
    real = DreamObservation(gym.make("CartPole-v1"), str(tmp_path / "m"))
    obs, _ = real.reset(seed=0)
    assert obs.shape == (model.feature_dim,) and set(real.state) == {"h", "s"}


def test_dream_observation_checks_the_action_repeat(tmp_path):
    model = _vector_rssm()
    model.card = {"env": {"id": "CartPole-v1", "action_repeat": 2}}
    with pytest.raises(ModelMismatch, match="ActionRepeat"):
        DreamObservation(gym.make("CartPole-v1"), model)
    wrapped = DreamObservation(ActionRepeat(gym.make("CartPole-v1"), 2), model)
    wrapped.reset(seed=0)
    _, reward, *_ = wrapped.step(0)
    assert reward == 2.0  # two real steps, rewards summed


class LineWorld(WorldModel):
    """A known dream: x' = x + a, reward -|x' - 2|; the best plan walks to x = 2 and stays."""

    family = "line-world-test"

    def __init__(self):
        super().__init__(gym.spaces.Box(-10, 10, (1,), np.float32), gym.spaces.Box(-1, 1, (1,), np.float32), Preprocessing("vector"))
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def initial_state(self, batch, generator=None, obs=None):
        return {"x": torch.zeros(batch if obs is None else obs.shape[0], 1)}

    def imagine(self, state, action, tau, generator=None):
        x = state["x"] + action.reshape(-1, 1).float()
        r = -(x - 2.0).abs().squeeze(-1)
        return Transition({"x": x}, r, torch.zeros_like(r, dtype=torch.bool), torch.zeros_like(r))

    def features(self, state):
        return state["x"]

    def decode(self, state):
        return state["x"]

    def observe(self, state, action, obs):
        return {"x": obs.reshape(-1, 1).float()}

    def hyperparameters(self):
        return {}

    def sequence_loss(self, *batch, **kwargs):  # a dream written by hand: nothing to fit
        raise NotImplementedError

    @property
    def feature_dim(self):
        return 1


def test_planner_beats_random_action_sequences_on_a_known_reward():
    model = LineWorld()
    planner = CEMPlanner(model, CEMConfig(horizon=6, iterations=4, candidates=200, top_k=20), seed=0)
    rng = np.random.default_rng(0)

    def episode(act):
        state, total = model.initial_state(1), 0.0
        for _ in range(10):
            tr = model.imagine(state, torch.as_tensor(np.asarray(act(state), np.float32)).reshape(1, 1), 1.0)
            state, total = tr.state, total + float(tr.reward)
        return total

    planned = episode(lambda s: planner.plan(s))
    random = np.mean([episode(lambda s: rng.uniform(-1, 1, 1)) for _ in range(20)])
    optimum = -(1.0 + 0.0) - 0.0 * 8  # x: 1, 2, 2, ... -> rewards -1, 0, 0, ...
    assert planned > random + 5.0, (planned, random)
    assert planned > optimum - 1.0


def test_planner_works_with_the_mdnrnn_on_real_cartpole():
    """Any family: the shipped MDN-RNN, planning with Discrete actions from DreamObservation's state."""
    from trainers.evaluation.evaluate import RandomAgent
    from trainers.evaluation.rollout import real_episode_returns

    planner = CEMPlanner(gym_dream.resolve_model("cartpole"), CEMConfig(horizon=10, iterations=2, candidates=48, top_k=8), seed=0)
    planned, _ = real_episode_returns(planner, "CartPole-v1", "cartpole", episodes=2, seed=0)
    random, _ = real_episode_returns(RandomAgent(gym.spaces.Discrete(2)), "CartPole-v1", "cartpole", episodes=10, seed=0)
    assert planned.mean() > 2 * random.mean(), (planned, random)


def test_planet_loop_runs_checkpoints_and_resumes(tmp_path):
    cfg = PlaNetConfig(env_id="CartPole-v1", env_kwargs={}, out=str(tmp_path / "run"), preset="tiny", episodes=4, seed_episodes=2, eval_every=2, eval_episodes=1)
    first = run_planet(cfg)
    assert first["episodes"] == 4 and first["updates"] == 2 * 3
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [e["episodes"] for e in log] == [3, 4] and "eval_return_mean" in log[-1]
    data_before = sorted(p.name for p in (tmp_path / "run" / "data").glob("shard-*"))
    cfg.episodes = 5
    second = run_planet(cfg)
    assert second["updates"] == 3 * 3  # continued from the checkpoint, not restarted
    assert set(data_before) <= {p.name for p in (tmp_path / "run" / "data").glob("shard-*")}  # replay data kept
    assert len(EpisodeDataset(tmp_path / "run" / "data")) == 5
    import csv

    rows = list(csv.DictReader(open(tmp_path / "run" / "planet_log.csv")))  # one row per loop episode, across the resume
    assert [int(r["step"]) for r in rows] == [3, 4, 5] and [float(r["real_return"]) for r in rows] == [e["collect_return"] for e in log] + [
        json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])["collect_return"]]
    assert rows[1]["eval_return_mean"] != "" and float(rows[2]["real_steps"]) == EpisodeDataset(tmp_path / "run" / "data").steps
    env = gym.make("Dream-CartPole-v0", model=str(tmp_path / "run" / "model"))
    env.reset(seed=0)
    env.step(0)


def test_dmc_pixels_and_state_through_shimmy():
    pytest.importorskip("dm_control")
    from trainers.data.real_envs import make_real_env

    env = make_real_env("dm_control/cartpole-swingup-v0", obs="pixels")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    env = make_real_env("dm_control/cartpole-swingup-v0", obs="state")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32
    steps = 0
    while True:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        steps += 1
        if term or trunc:
            break
    assert steps == 125  # 1000 physics steps at action repeat 8
