"""Values that pass a type check and would break the dream later (issue 47, items 5 and 8): every number is checked
after the cast to float32, the dream's arithmetic, and what has a natural bound is bounded; bfloat16 on a CPU that
emulates it warns, and precision="auto" picks what is fast here."""

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

import gym_dream
from gym_dream import DreamEnv, DreamVectorEnv
from gym_dream.checkpoint import load_model, save_model
from gym_dream.envs import core, precision
from gym_dream.error import ModelCardMismatch, ModelFormatError, ModelMismatch, PerformanceWarning
from gym_dream.models import MDNRNN
from gym_dream.preprocessing import Preprocessing
from gym_dream.wrappers import DreamObservation


def cartpole_members(members=3):
    """A randomly initialised tiny CartPole MDN-RNN with members and an uncertainty card (as test_uncertainty's)."""
    env = gym.make("CartPole-v1")
    m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=16, mixtures=2, head_hidden=8,
               bank_size=8, members=members)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    m.card = {"env": {"id": "CartPole-v1"}, "uncertainty": {"members": members, "reward_min": -3.0,
                                                           "heldout_disagreement": {"quantiles": {"99": 0.15}}}}
    return m.eval().requires_grad_(False)


def _rewrite(directory, change):
    tensors = load_file(str(directory / "model.safetensors"))
    change(tensors)
    save_file(tensors, str(directory / "model.safetensors"))


# -- 5. finite after the cast, bounded where there is a bound -----------------------------------------------------


def test_float64_weights_beyond_float32_are_refused_at_load(vector_model, tmp_path):
    directory = save_model(vector_model, tmp_path / "m", {"env": {"id": "CartPole-v1"}})
    name = sorted(k for k, v in vector_model.state_dict().items() if v.is_floating_point())[3]

    def change(t):
        t[name] = t[name].double()
        t[name].view(-1)[0] = 1e39  # finite in float64, inf in float32

    _rewrite(directory, change)
    with pytest.raises(ModelFormatError, match=f"tensor '{name}' holds 1 NaN or infinite value.*beyond torch.float32's range"):
        load_model(directory)


def test_float64_weights_within_float32_still_load(vector_model, tmp_path):
    directory = save_model(vector_model, tmp_path / "m", {"env": {"id": "CartPole-v1"}})
    _rewrite(directory, lambda t: t.update({k: v.double() for k, v in t.items() if v.is_floating_point()}))
    loaded = load_model(directory)
    assert all(v.dtype == torch.float32 for v in loaded.state_dict().values() if v.is_floating_point())


@pytest.mark.parametrize("value", [0.0, -1.0, 1e-40])
@pytest.mark.parametrize("family", ["mdnrnn", "rssm"])
def test_a_standardiser_std_below_its_floor_is_refused_at_load(vector_model, small_rssm, tmp_path, value, family):
    """vision.std = 0 (MDN-RNN) or obs_std = 0 (RSSM) would make every observation inf: refused by load_model, so by
    gym.make and DreamObservation too."""
    model, name = (vector_model, "vision.std") if family == "mdnrnn" else (small_rssm, "obs_std")
    directory = save_model(model, tmp_path / "m", {"env": {"id": "CartPole-v1"}})

    def change(t):
        t[name] = t[name].clone()
        t[name][0] = value

    _rewrite(directory, change)
    with pytest.raises(ModelFormatError, match=f"tensor '{name}' .*standard deviation.* below 1e-06"):
        load_model(directory)
    if family == "mdnrnn":
        with pytest.raises(ModelFormatError, match="vision.std"):
            DreamObservation(gym.make("CartPole-v1"), model=str(directory))


@pytest.mark.parametrize("tau", [1e308, np.float64(1e308), 101.0, (1.0, 1e308), [0.5, 1e39], 1e-50])
def test_a_temperature_far_above_any_trained_range_is_an_error(vector_model, tau):
    for make in (lambda: DreamEnv(model=vector_model, tau=tau), lambda: DreamVectorEnv(2, model=vector_model, tau=tau),
                 lambda: gym.make("Dream-CartPole-v0", tau=tau)):
        with pytest.raises(ValueError, match="tau"):
            make()
    assert core.check_tau(100.0) == 100.0  # the bound itself is a temperature


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_a_float64_reset_state_beyond_float32_is_refused(vector_model, kind):
    env = DreamVectorEnv(2, model=vector_model)
    env.reset(seed=0)
    state = {k: v.double() for k, v in env.state.items()}
    state["h"][0, 0] = 1e300
    if kind == "numpy":
        state = {k: v.numpy() for k, v in state.items()}
    with pytest.raises(ValueError, match=r"options\[\"state\"\]\['h'\].*beyond torch.float32's range"):
        env.reset(options={"state": state})
    ok = {k: v.double() for k, v in env.state.items()}  # float64 within range is cast, as before
    obs, _ = env.reset(options={"state": ok})
    assert np.isfinite(obs).all()


@pytest.mark.parametrize("kw, match", [
    ({"uncertainty_penalty": 1e308}, "uncertainty_penalty must be a finite number within float32"),
    ({"uncertainty_penalty": 1e30}, "uncertainty_penalty must be >= 0 and at most 1e\\+06"),
    ({"uncertainty_penalty": np.float64(-1e308)}, "uncertainty_penalty"),
    ({"uncertainty_limit": "q99", "uncertainty_halt_reward": 1e308}, "uncertainty_halt_reward must be a finite number within float32"),
    ({"uncertainty_halt_reward": 1e308}, "uncertainty_halt_reward must be a finite number within float32"),
    ({"uncertainty_halt_reward": "x"}, "uncertainty_halt_reward must be a number"),
    ({"uncertainty_halt_reward": "x", "uncertainty_limit": "q99"}, "uncertainty_halt_reward must be a number"),
])
def test_uncertainty_values_are_checked_in_float32(kw, match):
    model = cartpole_members()
    for make in (lambda: DreamEnv(model=model, **kw), lambda: DreamVectorEnv(2, model=model, **kw)):
        with pytest.raises((ValueError, TypeError), match=match):
            make()


def test_the_largest_accepted_uncertainty_values_dream_finite_rewards():
    model = cartpole_members()
    env = DreamVectorEnv(4, model=model, uncertainty_penalty=1e6, uncertainty_limit="q99", uncertainty_halt_reward=-3e38)
    env.reset(seed=0)
    for _ in range(5):
        _, reward, *_ = env.step(env.action_space.sample())
        assert np.isfinite(reward).all()


def test_a_card_reward_min_beyond_float32_is_a_clear_error():
    model = cartpole_members()
    model.card = json.loads(json.dumps(model.card))
    model.card["uncertainty"]["reward_min"] = 1e308
    with pytest.raises(ValueError, match="card's uncertainty.reward_min.*Fix the card"):
        DreamEnv(model=model, uncertainty_limit="q99")


@pytest.mark.parametrize("how", ["shape", "missing", "unexpected", "params"])
def test_a_card_that_does_not_match_its_weights_is_a_model_format_error(vector_model, tmp_path, how):
    """README ("Trust"): a broken model fails with ModelFormatError; a card/weights disagreement is also a ModelMismatch."""
    directory = save_model(vector_model, tmp_path / "m", {"env": {"id": "CartPole-v1"}})
    card = json.loads((directory / "model.json").read_text())
    if how == "shape":
        card["params"]["hidden"] = 32
    elif how == "params":
        card["params"]["hidden"] = "many"
    (directory / "model.json").write_text(json.dumps(card))
    if how in ("missing", "unexpected"):
        _rewrite(directory, lambda t: t.pop(sorted(t)[0]) if how == "missing" else t.update(extra=torch.zeros(2)))
    with pytest.raises(ModelFormatError) as caught:
        load_model(directory)
    assert isinstance(caught.value, ModelMismatch) and isinstance(caught.value, ModelCardMismatch)
    assert ("does not match the weights" if how != "params" else "do not build") in str(caught.value)


# -- 8. bfloat16 where it is slow, and precision="auto" -----------------------------------------------------------


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16_dot", lambda: False)
    monkeypatch.setattr(precision, "_warned_bf16", False)


def test_bfloat16_on_a_cpu_without_bf16_dot_products_warns_once_naming_the_cost(vector_model, cpu_without_bf16):
    with pytest.warns(PerformanceWarning, match="emulated: about 6x fewer steps per second.*precision='auto'"):
        env = DreamVectorEnv(2, model=vector_model, precision="bfloat16")
    assert env.precision == "bfloat16"  # it still runs as asked
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        DreamEnv(model=vector_model, precision="bfloat16")  # once per process


def test_bfloat16_on_a_cpu_with_bf16_dot_products_does_not_warn(vector_model, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_bf16_dot", lambda: True)
    monkeypatch.setattr(precision, "_warned_bf16", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)
        assert DreamEnv(model=vector_model, precision="bfloat16").precision == "bfloat16"


@pytest.mark.parametrize("native", [False, True])
def test_precision_auto_picks_bfloat16_only_where_it_is_fast(vector_model, monkeypatch, native):
    monkeypatch.setattr(precision, "cpu_has_bf16_dot", lambda: native)
    monkeypatch.setattr(precision, "_warned_bf16", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerformanceWarning)  # auto never picks the slow path, so never warns
        env = DreamVectorEnv(2, model=vector_model, precision="auto")
        assert env.precision == ("bfloat16" if native else "float32")
        assert gym.make("Dream-CartPole-v0", precision="auto").unwrapped.precision in ("float32", "bfloat16")
        # a model without a bf16 step runs float32 everywhere
        assert DreamEnv(model=cartpole_members(), precision="auto").precision == "float32"
    env.reset(seed=0)
    assert np.isfinite(env.step(env.action_space.sample())[0]).all()


def test_precision_auto_agrees_with_the_cpu_here():
    flags = precision.cpu_flags()
    native = bool({"avx512_bf16", "amx_bf16", "bf16"} & flags) or torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert precision.cpu_has_bf16_dot() == native
    assert precision.cpu_capability() == {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_dot_products": native}
    assert gym_dream.DreamEnv(model="cartpole", precision="auto").precision == ("bfloat16" if native else "float32")


def test_precision_names_are_checked():
    with pytest.raises(ValueError, match="precision must be 'auto' or one of"):
        DreamEnv(model="cartpole", precision="bf16")
    with pytest.raises(ValueError, match="precision must be 'auto' or one of"):
        DreamEnv(model="cartpole", precision=["auto"])
