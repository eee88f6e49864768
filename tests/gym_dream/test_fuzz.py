"""Fuzz the public constructors and step/reset inputs with random kinds, shapes, dtypes and NaN: the only
exceptions allowed are gym-dream's documented ones (gym_dream.error.*, ValueError / TypeError for bad
public input) and Gymnasium's (gymnasium.error.*). A seeded generator (hypothesis is not a dependency);
a failure prints the seed and the inputs to replay it.

Numbers include float64 and large magnitudes (1e39, 1e300, 1e308: finite in float64, inf in float32, the dream's
arithmetic), on every public argument of gym.make, DreamEnv, DreamVectorEnv and DreamObservation, in model cards and in
weights: an input is refused, or what the env returns (observations, rewards) is finite."""

import random

import gymnasium as gym
import numpy as np
import pytest
import torch

import gym_dream
from gym_dream import DreamEnv, DreamVectorEnv
from gym_dream.error import GymDreamError
from gym_dream.wrappers import DreamObservation

ALLOWED = (GymDreamError, gym.error.Error, ValueError, TypeError)
DREAM_IDS = sorted(k for k in gym.registry if k.startswith("Dream-"))


def _value(rng: random.Random, depth: int = 0):
    """A value of a random kind: numbers (NaN, inf, huge), strings, containers, arrays, tensors, objects."""
    kind = rng.randrange(15 if depth < 2 else 11)
    if kind == 14 or kind == 10 and depth >= 2:
        return _large(rng)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 2, 3, 7, -5, 10**6, 2**63, -(2**70)])
    if kind == 3:
        return rng.choice([0.0, 0.5, 1.0, 1.15, -1.0, 1e39, float("nan"), float("inf"), -float("inf"), 1e-300])
    if kind == 4:
        return rng.choice(["", "cpu", "cuda", "cuda:3", "mps", "meta", "latent", "pixels", "threshold", "sample", "rgb_array",
                           "human", "cartpole", "no-such-model", "Dream-CartPole-v0", "next_step", "same_step", "\x00", "ü" * 3,
                           "auto", "bfloat16", "float32", "random_per_step", "random_per_episode", "mean", "q99", "q50", "q1e308"])
    if kind == 5:
        shape = tuple(rng.randrange(0, 4) for _ in range(rng.randrange(0, 3)))
        dtype = rng.choice([np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex64])
        arr = np.random.default_rng(rng.randrange(2**32)).normal(size=shape) * rng.choice([1, 10, 1e6])
        if rng.random() < 0.3 and arr.size:
            arr.flat[0] = rng.choice([np.nan, np.inf])
        with np.errstate(all="ignore"):
            return arr.astype(dtype)
    if kind == 6:
        return torch.randn(tuple(rng.randrange(0, 4) for _ in range(rng.randrange(0, 3))))
    if kind == 7:
        return object()
    if kind == 8:
        return np.float32(rng.choice([1.0, np.nan, -2.0]))
    if kind == 9:
        return rng.choice([np.int64(1), np.uint8(200), np.int32(-1)])
    if kind == 10:
        return [_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if kind == 11:
        return tuple(_value(rng, depth + 1) for _ in range(rng.randrange(0, 3)))
    if kind == 12:
        keys = rng.sample(["z", "h", "c", "s", "x", "state", "reset_mask", "low"], rng.randrange(0, 4))
        return {k: _value(rng, depth + 1) for k in keys}
    return {"z": _value(rng, depth + 1), "h": _value(rng, depth + 1), "c": _value(rng, depth + 1)}


#: finite in float64 but not in float32 (or near its limit), and tiny ones that are 0 in float32
LARGE = [1e39, -1e39, 1e300, 1e308, -1e308, 3.4e38, 3.5e38, 1e30, 1e-50, 1e-46, 101.0, 1e6, 1e7]


def _large(rng: random.Random):
    """A large-magnitude number as Python float, numpy float64 or float32, a 0-d or 1-d float64 array, or a pair."""
    x = rng.choice(LARGE)
    how = rng.randrange(6)
    if how == 0:
        return x
    if how == 1:
        return np.float64(x)
    if how == 2:
        with np.errstate(all="ignore"):
            return np.float32(x)
    if how == 3:
        return np.array(x)
    if how == 4:
        return np.full(rng.randrange(1, 5), x)
    return (rng.choice([0.5, 1.0, x]), x)


def _finite(result, note: str):
    """What a successful reset or step returned holds only finite observations and rewards."""
    if result is None:
        return result
    for part in result[:2] if isinstance(result, tuple) else ():
        arr = np.asarray(part)
        if np.issubdtype(arr.dtype, np.number) and not np.isfinite(arr).all():
            pytest.fail(f"{note}: returned non-finite values {arr.reshape(-1)[:8]}")
    return result


def _state_like(rng: random.Random, model, batch: int):
    """A start state, damaged in a random way (wrong key, shape, dtype, device kind, NaN) or not at all."""
    state = {k: v.clone() for k, v in model.initial_state(batch, torch.Generator().manual_seed(0)).items()}
    how = rng.randrange(9)
    key = rng.choice(sorted(state))
    if how == 0:
        state.pop(key)
    elif how == 1:
        state["extra"] = state[key].clone()
    elif how == 2:
        state[key] = state[key][..., :-1]
    elif how == 3:
        state[key] = state[key].to(rng.choice([torch.int64, torch.float64, torch.bool, torch.float16]))
    elif how == 4:
        state[key] = state[key].clone().fill_(rng.choice([float("nan"), float("inf")]))
    elif how == 5:
        state[key] = state[key].numpy()
    elif how == 6:
        state = {k: v[:0] for k, v in state.items()}
    elif how == 7:
        state[key] = state[key].double()
        state[key].view(-1)[0] = rng.choice(LARGE)
    return state


def _short(kw: dict) -> str:
    return repr({k: (f"<{type(v).__name__}>" if isinstance(v, torch.nn.Module) else v) for k, v in kw.items()})


def _call(fn, note: str):
    try:
        return fn()
    except ALLOWED:
        return None
    except Exception as e:  # noqa: BLE001  (the point: anything else is a bug)
        pytest.fail(f"{note}: {type(e).__name__}: {e}")


def _kwargs(rng: random.Random, names: list[str], good: dict) -> dict:
    """Good or default values, with zero to two arguments replaced by random ones."""
    kw = {name: good[name] for name in names if name in good and rng.random() < 0.7}
    for name in rng.sample(names, rng.choice([0, 1, 1, 2])):
        kw[name] = _value(rng)
    if rng.random() < 0.05:
        kw["no_such_argument"] = 1
    return kw


def _exercise(rng: random.Random, env, note: str, model, vector: bool) -> None:
    n = env.num_envs if vector else 1
    for t in range(6):
        r = rng.random()
        if r < 0.25:
            options = rng.choice([None, {}, {"state": _state_like(rng, model, rng.choice([1, n, n + 1]))}, {"state": _value(rng)},
                                  {"reset_mask": _value(rng)}, _value(rng)])
            seed = rng.choice([None, 0, 1, -1, 2**70, 1.5, "x", [0, 1]])
            what = f"{note} reset(seed={seed!r}, options={options!r})"
            _finite(_call(lambda: env.reset(seed=seed, options=options), what), what)
        elif r < 0.6:
            action = env.action_space.sample()
            _finite(_call(lambda: env.step(action), f"{note} step({action!r})"), f"{note} step({action!r})")
        else:
            action = _value(rng)
            _finite(_call(lambda: env.step(action), f"{note} step({action!r})"), f"{note} step({action!r})")


SEEDS = range(8)

#: every public argument DreamEnv takes (DreamVectorEnv: these and its own), and those gym.make passes on
DREAM_ARGS = ["model", "tau", "obs_type", "device", "render_mode", "termination", "member", "precision", "uncertainty_penalty",
              "uncertainty_limit", "uncertainty_halt_reward", "default_model", "real_env_id"]
MAKE_ARGS = ["tau", "obs_type", "device", "render_mode", "termination", "member", "precision", "uncertainty_penalty",
             "uncertainty_limit", "uncertainty_halt_reward", "max_episode_steps"]


def _members_model():
    """A tiny CartPole MDN-RNN with 3 members and an uncertainty card (so the uncertainty arguments are live)."""
    from gym_dream.models import MDNRNN
    from gym_dream.preprocessing import Preprocessing

    env = gym.make("CartPole-v1")
    m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=8, mixtures=2, head_hidden=4, bank_size=4,
               members=3)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    m.card = {"env": {"id": "CartPole-v1"}, "uncertainty": {"members": 3, "reward_min": -1.0,
                                                           "heldout_disagreement": {"quantiles": {"50": 0.05, "99": 0.15}}}}
    return m.eval().requires_grad_(False)


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_dream_env_and_vector_env(seed, vector_model, pixel_model):
    rng = random.Random(seed)
    members = _members_model()
    for trial in range(25):
        model = rng.choice([vector_model, pixel_model, vector_model, members])
        good = {"model": model, "tau": 1.0, "obs_type": "latent", "device": "cpu", "num_envs": 3, "termination": "sample"}
        if model is members:
            good.update(uncertainty_penalty=0.5, uncertainty_limit="q99", member="random_per_step")
        if rng.random() < 0.5:
            kw = _kwargs(rng, DREAM_ARGS, good)
            kw.setdefault("model", model)
            note = f"seed {seed} trial {trial}: DreamEnv(**{_short(kw)})"
            env = _call(lambda: DreamEnv(**kw), note)
            vector = False
        else:
            kw = _kwargs(rng, ["num_envs", "max_episode_steps", "autoreset_mode", *DREAM_ARGS], good)
            kw.setdefault("model", model)
            note = f"seed {seed} trial {trial}: DreamVectorEnv(**{_short(kw)})"
            env = _call(lambda: DreamVectorEnv(**kw), note)
            vector = True
        if env is not None:
            _call(lambda: env.step(env.action_space.sample()), f"{note} step before reset")
            _finite(_call(lambda: env.reset(seed=rng.randrange(100)), f"{note} reset"), f"{note} reset")
            _exercise(rng, env, note, env.model, vector)
            _call(env.render, f"{note} render")


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_gym_make_of_every_dream_id_and_dream_observation(seed, vector_model):
    rng = random.Random(100 + seed)
    for trial in range(6):
        env_id = rng.choice(DREAM_IDS)
        kw = _kwargs(rng, MAKE_ARGS, {"tau": 1.2, "obs_type": "latent"})
        if not isinstance(kw.get("render_mode"), (str, type(None))):
            kw["render_mode"] = rng.choice(["rgb_array", "human", None])  # gym.make itself calls render_mode.endswith()
        if env_id == "Dream-CartPole-v0" and rng.random() < 0.5:
            kw["model"] = rng.choice([vector_model, "cartpole", _value(rng), "no-such-model", ""])
        note = f"seed {seed} trial {trial}: gym.make({env_id!r}, **{_short(kw)})"
        env = _call(lambda: gym.make(env_id, **kw), note)
        if env is not None:
            _finite(_call(lambda: env.reset(seed=0), f"{note} reset"), f"{note} reset")
            _exercise(rng, env, note, env.unwrapped.model, False)
        model = rng.choice([None, vector_model, "cartpole", _value(rng)])
        dkw = _kwargs(rng, ["obs_type", "device"], {"obs_type": "latent", "device": "cpu"})
        note = f"seed {seed} trial {trial}: DreamObservation(CartPole-v1, model={_short({0: model})[4:-1]}, **{dkw!r})"
        wrapped = _call(lambda: DreamObservation(gym.make("CartPole-v1"), model=model, **dkw), note)
        if wrapped is not None:
            _call(lambda: wrapped.step(0), f"{note} step before reset")
            _finite(_call(lambda: wrapped.reset(seed=rng.randrange(100)), f"{note} reset"), f"{note} reset")
            for _ in range(4):
                action = rng.choice([_value(rng), wrapped.action_space.sample()])
                if _finite(_call(lambda: wrapped.step(action), f"{note} step({action!r})"), f"{note} step({action!r})") is None:
                    _call(lambda: wrapped.reset(seed=1), f"{note} reset")


def _json_value(rng: random.Random, depth: int = 0):
    kind = rng.randrange(8 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return rng.choice([0, 1, -1, 3, 10**9, -(2**70)])
    if kind == 3:
        return rng.choice([0.0, -1.5, 1e308, 2.5, *LARGE])
    if kind == 4:
        return rng.choice(["", "Box", "Discrete", "float32", "int32", "image", "vector", "mdnrnn", "rssm", "dreamer", "inf", "x\ny"])
    if kind == 5:
        return rng.choice([[], [4], [0], [-1, 2], ["a"]])
    if kind == 6:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(0, 3))]
    return {rng.choice(["type", "n", "shape", "dtype", "low", "high", "kind", "size", "key", "tau", "reward_min", "quantiles", "99",
                        "termination"]): _json_value(rng, depth + 1)
            for _ in range(rng.randrange(0, 4))}


@pytest.mark.parametrize("seed", range(4))
def test_fuzz_model_cards(seed, vector_model, tmp_path):
    """A damaged card (any field, any JSON value) fails load_model with gym-dream's own error, naming it."""
    import json

    from gym_dream.checkpoint import load_model, save_model

    rng = random.Random(500 + seed)
    directory = save_model(vector_model, tmp_path / "m", {"env": {"id": "CartPole-v1"}})
    good = json.loads((directory / "model.json").read_text())
    for trial in range(150):
        card = json.loads(json.dumps(good))
        for _ in range(rng.choice([1, 1, 2])):
            section = rng.choice(["observation_space", "action_space", "preprocessing", "params", "family", "format_version",
                                  "env", "dream_env", "requires_gym_dream", "weights", "uncertainty"])
            if isinstance(card.get(section), dict) and card[section] and rng.random() < 0.7:
                key = rng.choice(sorted(card[section]))
                if rng.random() < 0.3:
                    card[section].pop(key)
                else:
                    card[section][key] = _json_value(rng)
            else:
                card[section] = _json_value(rng)
        (directory / "model.json").write_text(json.dumps(card))
        try:
            load_model(directory)
        except GymDreamError:
            continue
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"seed {seed} trial {trial}: card {card!r}: {type(e).__name__}: {e}")
        # a card that loads makes a dream whose defaults (dream_env.tau, termination...) are checked, or refused clearly
        note = f"seed {seed} trial {trial}: card {card!r}: DreamVectorEnv"
        env = _call(lambda: DreamVectorEnv(2, model=str(directory), uncertainty_limit=rng.choice([None, "q99"])), note)
        if env is not None:
            _finite(_call(lambda: env.reset(seed=0), f"{note} reset"), f"{note} reset")
            for _ in range(3):
                _finite(_call(lambda: env.step(env.action_space.sample()), f"{note} step"), f"{note} step")


@pytest.mark.parametrize("seed", range(3))
def test_fuzz_weights_of_large_magnitude(seed, vector_model, small_rssm, tmp_path):
    """Weights stored as float64 of any magnitude, or a standardiser's std of any value: load_model refuses them with
    gym-dream's own error, or every weight it loads is finite in float32 and every std at least its floor."""
    from safetensors.torch import load_file, save_file

    from gym_dream.checkpoint import load_model, save_model

    rng = random.Random(900 + seed)
    for trial in range(30):
        model = rng.choice([vector_model, small_rssm])
        directory = save_model(model, tmp_path / f"m{trial}", {"env": {"id": "CartPole-v1"}})
        tensors = load_file(str(directory / "model.safetensors"))
        floors = model.positive_weights()
        names = sorted(k for k, v in tensors.items() if v.is_floating_point())
        for name in rng.sample(names, rng.choice([1, 2])) + ([rng.choice(sorted(floors))] if floors and rng.random() < 0.5 else []):
            t = tensors[name].double() if rng.random() < 0.7 else tensors[name].clone()
            value = rng.choice([*LARGE, 0.0, -1.0, 1e-7, float("nan"), float("-inf")])
            with np.errstate(all="ignore"):  # as a float32 file would store it: 1e300 is inf there
                t.view(-1)[rng.randrange(t.numel())] = value if t.dtype == torch.float64 else float(np.float32(value))
            tensors[name] = t
        save_file(tensors, str(directory / "model.safetensors"))
        note = f"seed {seed} trial {trial}"
        loaded = _call(lambda: load_model(directory), note)
        if loaded is not None:
            for k, v in loaded.state_dict().items():
                assert v.dtype != torch.float64, f"{note}: {k} kept float64"
                if v.is_floating_point():
                    assert torch.isfinite(v).all(), f"{note}: {k} loaded non-finite"
                if k in floors:
                    assert float(v.min()) >= floors[k], f"{note}: {k} loaded below its floor"
