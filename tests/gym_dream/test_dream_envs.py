import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

import gym_dream
from gym_dream.error import ModelNotFound

#: every id with a default model (Dream-Model-v0, the dream of the model you pass, is tested in test_model_dream.py)
DREAM_IDS = sorted(s.id for s in gym.registry.values() if s.id.startswith("Dream-") and s.kwargs.get("default_model"))
AVAILABLE = [i for i in DREAM_IDS if gym.spec(i).kwargs["default_model"] in gym_dream.available_models()]


def test_all_ids_registered():
    assert set(DREAM_IDS) >= {"Dream-CartPole-v0", "Dream-CarRacing-v0", "Dream-DoomTakeCover-v0", "Dream-CartpoleSwingup-v0",
                              "Dream-CheetahRun-v0", "Dream-WalkerWalk-v0"}
    for shipped in ("Dream-CartPole-v0", "Dream-CarRacing-v0", "Dream-DoomTakeCover-v0", "Dream-CartpoleSwingup-v0", "Dream-CheetahRun-v0",
                    "Dream-WalkerWalk-v0"):
        assert shipped in AVAILABLE, f"the bundled model of {shipped} must be available right after install"


#: registered ids whose default model is not installed here (gym-dream's own ids ship or name how to get one)
MISSING = [i for i in DREAM_IDS if i not in AVAILABLE]


@pytest.mark.parametrize("env_id", MISSING)
def test_ids_without_an_installed_model_name_the_fix(env_id):
    spec = gym.spec(env_id)
    fix = f"gym-dream collect --env-id {spec.kwargs['real_env_id']}.*gym-dream fit data/{spec.kwargs['default_model']}"
    with pytest.raises(ModelNotFound, match=fix):
        gym.make(env_id)
    with pytest.raises(ModelNotFound, match=fix):
        gym.make_vec(env_id, num_envs=2, vectorization_mode="vector_entry_point")


def _cases():
    return [pytest.param(i, None, id=i) for i in AVAILABLE] + [pytest.param("Dream-CarRacing-v0", "pixel_model", id="random-pixel-model")]


@pytest.mark.parametrize("env_id,fixture", _cases())
@pytest.mark.parametrize("tau", [0.5, 1.0, 1.5])
def test_gymnasium_and_sb3_check_env(env_id, fixture, tau, request):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    kwargs = {"model": request.getfixturevalue(fixture)} if fixture else {}
    model = kwargs.get("model") or gym_dream.resolve_model(gym.spec(env_id).kwargs["default_model"])
    for obs_type in ["latent"] + (["pixels"] if model.preprocessing.kind == "image" else []):
        env = gym.make(env_id, tau=tau, obs_type=obs_type, **kwargs)
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.parametrize("env_id", AVAILABLE)
def test_make_vec_of_every_id_with_an_installed_model(env_id):
    model = gym_dream.resolve_model(gym.spec(env_id).kwargs["default_model"])
    for obs_type in ["latent"] + (["pixels"] if model.preprocessing.kind == "image" else []):
        venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", obs_type=obs_type)
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (3, *venv.single_observation_space.shape) and venv.observation_space.contains(obs)
        obs, reward, terminated, truncated, _ = venv.step(venv.action_space.sample())
        assert obs.shape[0] == reward.shape[0] == terminated.shape[0] == truncated.shape[0] == 3 and np.isfinite(reward).all()
        venv.close()


def test_module_colon_id_form():
    env = gym.make("gym_dream:Dream-CartPole-v0")
    assert env.spec.max_episode_steps == 500


def _rollout(env, seed, steps=60):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [obs]
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        trace.append(np.append(obs.ravel()[:8], [r, term, info["termination_prob"]]))
        if term or trunc:
            obs, _ = env.reset()
    return trace


@pytest.mark.parametrize("fixture", ["vector_model", "pixel_model"])
def test_same_seed_same_dream_different_seed_different_dream(fixture, request):
    model = request.getfixturevalue(fixture)
    env_id = "Dream-CartPole-v0" if fixture == "vector_model" else "Dream-CarRacing-v0"
    a = _rollout(gym.make(env_id, model=model), 7)
    b = _rollout(gym.make(env_id, model=model), 7)
    c = _rollout(gym.make(env_id, model=model), 8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x[: len(y)], y[: len(x)]) for x, y in zip(a, c))


def test_observation_and_info_contents(vector_model):
    env = gym.make("Dream-CartPole-v0", model=vector_model, render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == (vector_model.feature_dim,)
    obs, r, term, trunc, info = env.step(0)
    assert 0.0 <= info["termination_prob"] <= 1.0 and term == (info["termination_prob"] > 0.5)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3


def test_pixel_observations_and_render(pixel_model):
    env = gym.make("Dream-CarRacing-v0", model=pixel_model, obs_type="pixels", render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    np.testing.assert_array_equal(env.render(), obs)


def test_time_limit_sets_truncated_not_terminated(vector_model):
    env = gym.make("Dream-CartPole-v0", model=vector_model, max_episode_steps=5)
    env.reset(seed=0)
    with torch.no_grad():
        last = vector_model.termination_head[-1]
        last.bias.fill_(-50.0)
        last.weight.zero_()
    for t in range(5):
        _, _, term, trunc, _ = env.step(0)
    assert trunc and not term


# -- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize("tau,exc", [(0, ValueError), (-1.0, ValueError), (float("nan"), ValueError), (float("inf"), ValueError), ("1.0", TypeError), (True, TypeError)])
def test_bad_tau(tau, exc, vector_model):
    with pytest.raises(exc, match="tau"):
        gym.make("Dream-CartPole-v0", model=vector_model, tau=tau)
    with pytest.raises(exc, match="tau"):
        gym.make_vec("Dream-CartPole-v0", num_envs=2, vectorization_mode="vector_entry_point", model=vector_model, tau=tau)


def test_default_tau_is_the_cards(vector_model):
    """No tau: the card's dream_env.tau (what gym-dream calibrate writes), else 1.0; an explicit tau wins; a bad card
    tau is an error that names the card."""
    def taus(**kw):
        env = gym.make("Dream-CartPole-v0", model=vector_model, **kw)
        venv = gym.make_vec("Dream-CartPole-v0", num_envs=2, vectorization_mode="vector_entry_point", model=vector_model, **kw)
        return env.unwrapped.tau, venv.unwrapped.tau

    assert taus() == (1.0, 1.0) and taus(tau=None) == (1.0, 1.0)
    vector_model.card["dream_env"] = {"tau": 1.7}
    assert taus() == (1.7, 1.7) and taus(tau=1.2) == (1.2, 1.2)
    # the default really drives the dream: the same seed at the card's tau and at tau=1.7 explicitly
    a, b = (gym.make("Dream-CartPole-v0", model=vector_model, **kw) for kw in ({}, {"tau": 1.7}))
    oa, ob = a.reset(seed=3)[0], b.reset(seed=3)[0]
    for _ in range(5):
        oa, ob = a.step(1)[0], b.step(1)[0]
    np.testing.assert_array_equal(oa, ob)
    for bad in (-1, "hot", float("nan")):
        vector_model.card["dream_env"] = {"tau": bad}
        with pytest.raises(ValueError, match="dream_env.tau"):
            gym.make("Dream-CartPole-v0", model=vector_model)
        with pytest.raises(ValueError, match="dream_env.tau"):
            gym.make_vec("Dream-CartPole-v0", num_envs=2, vectorization_mode="vector_entry_point", model=vector_model)


@pytest.mark.parametrize("action", [np.array([0, 1]), 2, -1, 0.5, np.array([[1]])])
def test_bad_discrete_actions(action, vector_model):
    env = gym.make("Dream-CartPole-v0", model=vector_model)
    env.reset(seed=0)
    with pytest.raises((ValueError, TypeError), match="action|Action"):
        env.step(action)


@pytest.mark.parametrize("action", [np.zeros(2), np.zeros((1, 3)), np.array([2.0, 0.5, 0.5]), np.array([0.0, -0.5, 0.0]), np.array([np.nan, 0, 0])])
def test_bad_box_actions(action, pixel_model):
    env = gym.make("Dream-CarRacing-v0", model=pixel_model)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action|Action"):
        env.step(action)


def test_bad_obs_type_and_num_envs(vector_model):
    with pytest.raises(ValueError, match="obs_type must be one of"):
        gym.make("Dream-CartPole-v0", model=vector_model, obs_type="rgb")
    with pytest.raises(ValueError, match="needs a pixel model"):
        gym.make("Dream-CartPole-v0", model=vector_model, obs_type="pixels")
    for n in (0, -3, 1.5):
        with pytest.raises(ValueError, match="num_envs"):
            gym_dream.DreamVectorEnv(num_envs=n, model=vector_model)


def test_bad_vector_actions(vector_model):
    venv = gym.make_vec("Dream-CartPole-v0", num_envs=4, vectorization_mode="vector_entry_point", model=vector_model)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        venv.step(np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="out of range"):
        venv.step(np.array([0, 1, 2, 0]))


# -- the batched dream -----------------------------------------------------------------------------
def test_make_vec_uses_one_batched_env(vector_model):
    venv = gym.make_vec("Dream-CartPole-v0", num_envs=64, vectorization_mode="vector_entry_point", model=vector_model, tau=1.15)
    assert isinstance(venv.unwrapped, gym_dream.DreamVectorEnv)
    assert venv.unwrapped.max_episode_steps == 500
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (64, vector_model.feature_dim)
    assert venv.observation_space.contains(obs)


def _never_terminates(model):
    with torch.no_grad():
        model.termination_head[-1].bias.fill_(-50.0)
        model.termination_head[-1].weight.zero_()


def test_vector_matches_gymnasium_next_step_autoreset(vector_model):
    _never_terminates(vector_model)
    venv = gym_dream.DreamVectorEnv(num_envs=8, model=vector_model, max_episode_steps=3)
    obs, _ = venv.reset(seed=0)
    for t in range(3):
        obs, r, term, trunc, _ = venv.step(np.zeros(8, dtype=np.int64))
        assert trunc.all() == (t == 2) and not term.any()
    obs, r, term, trunc, _ = venv.step(np.zeros(8, dtype=np.int64))
    # the step after an ending restarts: zero reward, no flags, fresh memory (h = 0)
    assert np.all(r == 0) and not term.any() and not trunc.any()
    assert np.allclose(obs[:, vector_model.z_dim :], 0.0)


def test_vector_same_step_autoreset_gives_final_obs(vector_model):
    _never_terminates(vector_model)
    venv = gym_dream.DreamVectorEnv(num_envs=4, model=vector_model, max_episode_steps=2, autoreset_mode="SameStep")
    venv.reset(seed=0)
    venv.step(np.zeros(4, dtype=np.int64))
    obs, r, term, trunc, info = venv.step(np.zeros(4, dtype=np.int64))
    done = term | trunc
    assert done.all() and info["_final_obs"].all()
    assert np.allclose(obs[:, vector_model.z_dim :], 0.0)  # already restarted
    assert not np.allclose(info["final_obs"][:, vector_model.z_dim :], 0.0)


def test_vector_disabled_autoreset_and_reset_mask(vector_model):
    venv = gym_dream.DreamVectorEnv(num_envs=4, model=vector_model, autoreset_mode=AutoresetMode.DISABLED)
    venv.reset(seed=0)
    obs, *_ = venv.step(np.ones(4, dtype=np.int64))
    mask = np.array([True, False, True, False])
    obs2, _ = venv.reset(options={"reset_mask": mask})
    assert np.allclose(obs2[mask, vector_model.z_dim :], 0.0)
    np.testing.assert_array_equal(obs2[~mask], obs[~mask])


def test_vector_reset_from_state_broadcasts(vector_model):
    env = gym.make("Dream-CartPole-v0", model=vector_model)
    env.reset(seed=0)
    env.step(1)
    state = env.unwrapped.state
    venv = gym_dream.DreamVectorEnv(num_envs=5, model=vector_model)
    obs, _ = venv.reset(seed=1, options={"state": state})
    np.testing.assert_allclose(obs, np.repeat(vector_model.features(state).numpy(), 5, 0))
    with pytest.raises(ValueError, match="batch"):
        venv.reset(options={"state": {k: v.repeat(2, 1) if False else torch.cat([v, v, v]) for k, v in state.items()}})


def test_returned_arrays_do_not_alias_internal_buffers(vector_model):
    venv = gym_dream.DreamVectorEnv(num_envs=4, model=vector_model)
    obs, _ = venv.reset(seed=0)
    before = venv.unwrapped.model.features(venv.state).clone()
    obs[:] = 123.0
    assert torch.equal(venv.model.features(venv.state), before)
    obs2, r, term, trunc, info = venv.step(np.zeros(4, dtype=np.int64))
    snapshot = venv.model.features(venv.state).clone()
    for arr in (obs2, r, term, trunc, info["termination_prob"]):
        arr[...] = 0
    assert torch.equal(venv.model.features(venv.state), snapshot)


def test_vector_same_seed_same_dream(vector_model):
    def run(seed):
        venv = gym_dream.DreamVectorEnv(num_envs=16, model=vector_model, max_episode_steps=20)
        out = [venv.reset(seed=seed)[0]]
        rng = np.random.default_rng(0)
        for _ in range(50):
            out.append(venv.step(rng.integers(0, 2, 16))[0])
        return np.stack(out)

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3), run(4))


def _steps_at_tau_2_stay_finite(num_envs: int, steps: int) -> None:
    venv = gym.make_vec("Dream-CartPole-v0", num_envs=num_envs, vectorization_mode="vector_entry_point", tau=2.0)
    obs, _ = venv.reset(seed=0)
    rng = np.random.default_rng(0)
    finite = np.isfinite(obs).all()
    for _ in range(steps):
        obs, r, term, trunc, _ = venv.step(rng.integers(0, 2, num_envs))
        finite &= np.isfinite(obs).all() and np.isfinite(r).all()
    assert finite


@pytest.mark.slow
def test_million_steps_at_tau_2_stay_finite():
    _steps_at_tau_2_stay_finite(1024, 1_000_000 // 1024 + 1)


def test_many_steps_at_tau_2_stay_finite():
    """The default suite's version of the million-step check: 128 envs for 150 steps, past several episode restarts."""
    _steps_at_tau_2_stay_finite(128, 150)


# -- the real env through the model ------------------------------------------------------------
def test_dream_observation_matches_dream_spaces(vector_model):
    dream = gym.make("Dream-CartPole-v0", model=vector_model)
    real = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), vector_model)
    assert real.observation_space == dream.observation_space and real.action_space == dream.action_space
    obs, _ = real.reset(seed=0)
    assert real.observation_space.contains(obs)
    obs, r, term, trunc, _ = real.step(1)
    assert r == 1.0 and real.state["h"].abs().sum() > 0
    # the observation is the model's filter of the real state: z is the standardised real observation
    np.testing.assert_allclose(obs[:4], ((real.unwrapped.state - vector_model.vision.mean.numpy()) / vector_model.vision.std.numpy()), rtol=1e-5, atol=1e-5)


def test_dream_observation_default_model_and_mismatch(pixel_model):
    real = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"))
    assert real.model is gym_dream.resolve_model("cartpole")
    with pytest.raises(gym_dream.error.ModelMismatch, match="action space"):
        gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), pixel_model)


def test_sampled_termination_ends_episodes_at_the_predicted_rate(vector_model):
    with torch.no_grad():  # a termination head that says p = sigmoid(-2) ~ 0.12 everywhere
        for p in vector_model.termination_head.parameters():
            p.zero_()
        vector_model.termination_head[-1].bias.fill_(-2.0)
    venv = gym_dream.DreamVectorEnv(4000, model=vector_model, termination="sample", autoreset_mode="Disabled")
    venv.reset(seed=0)
    _, _, terminated, _, info = venv.step(np.zeros(4000, np.int64))
    p = 1 / (1 + math.exp(2.0))
    assert abs(terminated.mean() - p) < 0.02 and np.allclose(info["termination_prob"], p, atol=1e-5)
    threshold = gym_dream.DreamVectorEnv(16, model=vector_model, autoreset_mode="Disabled")
    threshold.reset(seed=0)
    assert not threshold.step(np.zeros(16, np.int64))[2].any()  # p < 0.5: never ends by threshold
    vector_model.card = {"dream_env": {"termination": "sample"}}
    assert gym_dream.DreamEnv(model=vector_model).termination == "sample"  # the card's default
    with pytest.raises(ValueError, match="termination must be one of"):
        gym_dream.DreamEnv(model=vector_model, termination="never")


def _good_state(model, batch=1):
    return {k: v.clone() for k, v in model.initial_state(batch, torch.Generator().manual_seed(0)).items()}


def _damaged(model, how):
    s = _good_state(model)
    if how == "not a dict":
        return [s["z"]]
    if how == "missing key":
        s.pop("c")
    elif how == "extra key":
        s["q"] = s["z"]
    elif how == "wrong shape":
        s["h"] = s["h"][:, :-1]
    elif how == "no batch dim":
        s["z"] = s["z"][0]
    elif how == "int dtype":
        s["z"] = s["z"].long()
    elif how == "nan":
        s["h"][0, 0] = float("nan")
    elif how == "inf":
        s["z"][0, -1] = float("inf")
    elif how == "not a tensor":
        s["z"] = "z"
    elif how == "batch 0":
        s = {k: v[:0] for k, v in s.items()}
    elif how == "mixed batch":
        s["z"] = s["z"].repeat(2, 1)
    return s


BAD_STATES = ["not a dict", "missing key", "extra key", "wrong shape", "no batch dim", "int dtype", "nan", "inf", "not a tensor",
              "batch 0", "mixed batch"]


@pytest.mark.parametrize("how", BAD_STATES)
@pytest.mark.parametrize("vector", [False, True], ids=["DreamEnv", "DreamVectorEnv"])
def test_malformed_reset_states_are_refused_clearly(vector_model, how, vector):
    """Issue 21 item 11: AttributeError, a leaked StopIteration, KeyError or a silent NaN, before."""
    env = gym_dream.DreamVectorEnv(num_envs=3, model=vector_model) if vector else gym_dream.DreamEnv(model=vector_model)
    env.reset(seed=0)
    before = {k: v.clone() for k, v in env.state.items()}
    with pytest.raises((TypeError, ValueError), match=r'options\["state"\]'):
        env.reset(options={"state": _damaged(vector_model, how)})
    assert all(torch.equal(before[k], env.state[k]) for k in before)  # a refused state changes nothing
    with pytest.raises(TypeError, match="must be None or a dict"):
        env.reset(options=["state"])
    obs, _ = env.reset(options={"state": _good_state(vector_model)})  # a good one still works, numpy arrays too
    env.reset(options={"state": {k: v.numpy() for k, v in _good_state(vector_model).items()}})
    if vector:
        env.reset(options={"state": _good_state(vector_model, 3)})
        with pytest.raises(ValueError, match="expected 1 or 3"):
            env.reset(options={"state": _good_state(vector_model, 2)})


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_clear_error_everywhere(vector_model):
    from gym_dream.error import DeviceNotAvailable

    makers = [
        lambda: gym.make("Dream-CartPole-v0", device="cuda"),
        lambda: gym_dream.DreamEnv(model=vector_model, device="cuda"),
        lambda: gym_dream.DreamVectorEnv(num_envs=2, model=vector_model, device="cuda:0"),
        lambda: gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), model=vector_model, device="cuda"),
        lambda: gym_dream.load_model(gym_dream.store.find_model_dir("cartpole"), device="cuda"),
    ]
    for make in makers:
        with pytest.raises(DeviceNotAvailable, match="no usable cuda device.*Pass device='cpu'"):
            make()


def test_vector_step_before_reset_is_gymnasiums_reset_needed(vector_model):
    with pytest.raises(gym.error.ResetNeeded):
        gym_dream.DreamVectorEnv(num_envs=2, model=vector_model).step(np.zeros(2, np.int64))


def test_dream_observation_passes_a_checked_action_to_the_real_env(vector_model):
    env = gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), model=vector_model)
    env.reset(seed=0)
    env.step(np.float32(1.0))  # an integer-valued float is a valid Discrete action; CartPole's own assert got 1.0 before
    with pytest.raises(ValueError, match="out of range"):
        env.step(2)
