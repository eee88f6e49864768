"""`gym-dream export --runtime onnx`: the dream step as ONNX graphs, run by gym_dream_onnx (onnxruntime + numpy)."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode

pytest.importorskip("onnxruntime", reason="the onnx extra: pip install 'gym-dream[onnx]'")
pytest.importorskip("onnxscript", reason="the onnx extra: pip install 'gym-dream[onnx]'")

import gym_dream_onnx  # noqa: E402
from gym_dream.envs.dream_vector_env import DreamVectorEnv  # noqa: E402
from gym_dream.models import MDNRNN, RSSM, Dreamer  # noqa: E402
from gym_dream.preprocessing import Preprocessing  # noqa: E402
from gym_dream.spaces import space_from_dict  # noqa: E402
from gym_dream_onnx import OnnxDream, OnnxDreamEnv, OnnxDreamVectorEnv  # noqa: E402
from trainers.export.onnx import export_dream  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _seeded(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        for name in ("start_z", "start_h", "start_s"):
            if hasattr(model, name):
                getattr(model, name).copy_(torch.randn(getattr(model, name).shape, generator=g))
    return model.eval().requires_grad_(False)


def _tiny(kind: str):
    """The conftest fixtures' tiny models (vector_model, pixel_model, small_rssm), with a bank of several start states."""
    if kind == "mdnrnn":
        env = gym.make("CartPole-v1")
        m = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=16, mixtures=3, head_hidden=8, bank_size=8)
        m.card = {"env": {"id": "CartPole-v1"}, "dream_env": {"id": "Dream-TinyOnnx-v0", "tau": 1.1, "max_episode_steps": 40}}
    elif kind == "mdnrnn-pixels":
        obs = gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)
        act = space_from_dict({"type": "Box", "shape": [3], "dtype": "float32", "low": [-1.0, 0.0, 0.0], "high": 1.0})
        m = MDNRNN(obs, act, Preprocessing("image", size=(64, 64)), z_dim=8, hidden=16, mixtures=2, head_hidden=8,
                   vae_channels=(4, 8, 8, 16), bank_size=4)
        m.card = {"env": {"id": "CarRacing-v3"}}
    elif kind == "dreamer":
        m = Dreamer(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32), Preprocessing("vector"),
                    deter=16, stoch=4, classes=4, hidden=16, units=16, layers=1, bank_size=6)
        m.card = {"env": {"id": "Pendulum-v1"}}
    else:
        m = RSSM(gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32), Preprocessing("vector"),
                 deter=32, stoch=8, hidden=32, bank_size=6)
        m.card = {"env": {"id": "Pendulum-v1"}}
    return _seeded(m, 3)


KINDS = ("mdnrnn", "mdnrnn-pixels", "rssm", "dreamer")


#: the kinds whose export runs in the default suite; the others' (seconds per graph each) are `slow`
FAST_KINDS = ("mdnrnn", "rssm")


class _Exports(dict):
    """Each tiny model and its exported dream, exported on first use and once per module."""

    def __init__(self, tmp_path_factory):
        super().__init__()
        self.tmp = tmp_path_factory

    def __missing__(self, kind):
        model = _tiny(kind)
        self[kind] = (model, export_dream(model, self.tmp.mktemp(kind)))
        return self[kind]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return _Exports(tmp_path_factory)


def _actions(space, batch, rng):
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.start, space.start + space.n, size=batch).astype(np.int64)
    return rng.uniform(space.low, space.high, size=(batch, *space.shape)).astype(np.float32)


@pytest.mark.parametrize("kind", [k if k in FAST_KINDS else pytest.param(k, marks=pytest.mark.slow) for k in KINDS])
@pytest.mark.parametrize("batch", [1, 5])
def test_exported_dream_is_the_torch_dream_for_the_same_noise(exported, kind, batch):
    model, directory = exported[kind]
    dream = OnnxDream(directory)
    rng = np.random.default_rng(7)
    index = dream.draw_index(rng, batch)
    state, features = dream.initial_state(index)
    with torch.no_grad():
        ts = model.start_state(torch.from_numpy(index))
    np.testing.assert_allclose(features, model.features(ts).numpy(), atol=1e-6)
    tau = rng.uniform(0.5, 1.5, size=batch).astype(np.float32)
    for _ in range(6):
        action = _actions(dream.action_space, batch, rng)
        noise = dream.draw_noise(rng, batch)
        out = dream.imagine(state, action, tau, noise)
        with torch.no_grad():
            tr = model.imagine(ts, torch.from_numpy(action), torch.from_numpy(tau), noise={k: torch.from_numpy(v) for k, v in noise.items()})
        for k in ts:
            np.testing.assert_allclose(out["state"][k], tr.state[k].numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out["reward"], tr.reward.numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(out["termination_prob"], tr.termination_prob.numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["features"], model.features(tr.state).numpy(), rtol=1e-4, atol=1e-4)
        state, ts = out["state"], tr.state  # each runtime goes on from its own state: the error must not grow
    with torch.no_grad():
        want = model.decode(ts).numpy()
    got = dream.decode(state)
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype == np.uint8:  # frames: a rounding step may land one level apart
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    else:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", ["mdnrnn", "rssm", "dreamer"])
def test_noise_path_is_the_generator_path_bit_for_bit(kind):
    """imagine(noise=...) with the numbers the generator would draw is the generator's step, bit for bit."""
    model = _tiny(kind)
    for tau in (1.0, torch.tensor([0.5, 1.0, 1.7])):
        g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
        s1 = model.initial_state(3, g1)
        s2 = model.start_state(torch.randint(model.bank_size, (3,), generator=g2))
        for _ in range(4):
            a = torch.tensor([0, 1, 1]) if kind == "mdnrnn" else torch.full((3, 1), 0.3)  # CartPole's or Pendulum's actions
            t1 = model.imagine(s1, a, tau, g1)
            t2 = model.imagine(s2, a, tau, noise=model.draw_noise(3, g2))
            for k in t1.state:
                assert torch.equal(t1.state[k], t2.state[k])
            assert torch.equal(t1.reward, t2.reward) and torch.equal(t1.termination_prob, t2.termination_prob)
            s1, s2 = t1.state, t2.state


def test_export_refuses_what_it_cannot_export(tmp_path):
    from gym_dream.models import WorldModel

    with pytest.raises(NotImplementedError, match="no exportable dream yet"):  # a family without the exportable step
        WorldModel.noise_spec(_tiny("rssm"))
    env = gym.make("CartPole-v1")
    ensemble = MDNRNN(env.observation_space, env.action_space, Preprocessing("vector"), hidden=8, mixtures=2, head_hidden=4, members=3)
    with pytest.raises(ValueError, match="single-member"):
        export_dream(ensemble, tmp_path)
    with pytest.raises(ValueError, match="noise="):
        ensemble.imagine(ensemble.initial_state(2), torch.tensor([0, 1]), 1.0, noise={"uniform": torch.rand(2, 2), "normal": torch.randn(2, 4)})


def test_onnx_envs_pass_the_env_contract(exported):
    _, vector_dir = exported["mdnrnn"]
    env = OnnxDreamEnv(model=vector_dir)
    assert env.tau == 1.1, "the card's dream_env.tau is the default"
    check_env(env, skip_render_check=True)
    with pytest.raises(ValueError, match="tau"):
        OnnxDreamEnv(model=vector_dir, tau=0.0)
    with pytest.raises(ValueError, match="pixel model"):
        OnnxDreamEnv(model=vector_dir, obs_type="pixels")
    with pytest.raises(ValueError, match="(?i)action out of range"):
        env.reset(seed=0)
        env.step(2)


@pytest.mark.slow
def test_onnx_pixel_env_passes_the_env_contract(exported):
    _, pixel_dir = exported["mdnrnn-pixels"]
    pixels = OnnxDreamEnv(model=pixel_dir, obs_type="pixels", render_mode="rgb_array")
    check_env(pixels)
    obs, _ = pixels.reset(seed=0)
    assert obs.dtype == np.uint8 and obs.shape == (64, 64, 3) and pixels.render().shape == (64, 64, 3)


def _rollout(envs, seed, steps=12):
    obs, _ = envs.reset(seed=seed)
    out = [obs]
    rng = np.random.default_rng(1)
    for _ in range(steps):
        obs, reward, terminated, truncated, info = envs.step(_actions(envs.single_action_space, envs.num_envs, rng))
        out += [obs, reward, terminated, truncated]
    return out


@pytest.mark.parametrize("mode", list(AutoresetMode))
def test_onnx_vector_env_through_make_vec_in_every_autoreset_mode(exported, mode):
    _, directory = exported["mdnrnn"]
    env_id = "Dream-OnnxContract-v0"
    gym.register(id=env_id, entry_point="gym_dream_onnx.env:OnnxDreamEnv", vector_entry_point="gym_dream_onnx.vector_env:OnnxDreamVectorEnv",
                 max_episode_steps=5, kwargs={"model": str(directory)})
    try:
        envs = gym.make_vec(env_id, num_envs=6, vectorization_mode="vector_entry_point", autoreset_mode=mode)
        assert isinstance(envs.unwrapped, OnnxDreamVectorEnv) and envs.metadata["autoreset_mode"] == mode
        a, b, c = _rollout(envs, 3), _rollout(envs, 3), _rollout(envs, 4)
        assert all(np.array_equal(x, y) for x, y in zip(a, b)), "same seed, same dream"
        assert not all(np.array_equal(x, y) for x, y in zip(a, c))
        truncated = np.array(a[4::4])
        if mode == AutoresetMode.DISABLED:
            envs.reset(options={"reset_mask": np.ones(6, bool)})
        else:
            assert truncated.any(), "the horizon (max_episode_steps=5) truncates"
        single = gym.make(env_id)
        assert single.spec.max_episode_steps == 5 and isinstance(single.unwrapped, OnnxDreamEnv)
    finally:
        gym.registry.pop(env_id, None)


def test_onnx_dream_has_the_torch_dreams_statistics_for_a_seed(exported):
    """Different random streams (numpy vs torch generators), the same dream: the batch means agree within 5 standard errors."""
    model, directory = exported["rssm"]
    n = 512
    torch_envs = DreamVectorEnv(num_envs=n, model=model, tau=1.0)
    onnx_envs = OnnxDreamVectorEnv(num_envs=n, model=directory, tau=1.0)
    for envs in (torch_envs, onnx_envs):
        envs.reset(seed=0)
    action = np.full((n, 1), 0.5, np.float32)
    for _ in range(10):
        (ot, rt, *_), (oo, ro, *_) = torch_envs.step(action), onnx_envs.step(action)
    for a, b in ((ot, oo), (rt[:, None], ro[:, None])):
        se = np.sqrt(a.var(0) / n + b.var(0) / n) + 1e-6
        assert np.all(np.abs(a.mean(0) - b.mean(0)) < 5 * se)


def test_a_manifest_of_another_version_is_refused(exported, tmp_path):
    _, directory = exported["mdnrnn"]
    copy = tmp_path / "dream"
    shutil.copytree(directory, copy)
    manifest = json.loads((copy / "dream.json").read_text())
    (copy / "dream.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(gym_dream_onnx.DreamFormatError, match="format version 99"):
        OnnxDream(copy)
    with pytest.raises(FileNotFoundError, match="runtime onnx"):
        OnnxDreamEnv(model=tmp_path / "nothing-here")


def test_runtime_dependencies_are_the_runtime_pyproject_s():
    from trainers.export.onnx import RUNTIME_DEPENDENCIES

    text = (ROOT / "gym_dream_onnx" / "pyproject.toml").read_text()
    deps = json.loads(text.split("dependencies = ")[1].splitlines()[0])
    assert tuple(deps) == RUNTIME_DEPENDENCIES and not any("torch" in d for d in deps)


_NO_TORCH_SCRIPT = """
import sys
sys.modules["torch"] = None  # import torch fails, as in an environment without it
import gymnasium as gym, numpy as np, gym_dream_onnx
envs = gym.make_vec("Dream-TinyOnnxPole-v0", num_envs=64, vectorization_mode="vector_entry_point")
envs.reset(seed=0)
for _ in range(20):
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
env = gym.make("Dream-TinyOnnxPole-v0")
env.reset(seed=0)
env.step(0)
assert "torch" not in [m.split(".")[0] for m in sys.modules if sys.modules[m] is not None]
print("OK", type(envs.unwrapped).__name__, obs.shape, env.spec.max_episode_steps, gym_dream_onnx.__file__)
"""


def test_cli_exports_a_torch_free_wheel(tiny_cartpole_model, tmp_path, capsys):
    from trainers.cli.commands import main as cli

    out = tmp_path / "dist"
    assert cli(["export", str(tiny_cartpole_model), "--env-id", "Dream-TinyOnnxPole-v0", "--name", "dream-tinyonnxpole",
                "--out", str(out), "--runtime", "onnx"]) == 0
    printed = capsys.readouterr().out
    assert "gym_dream_onnx" in printed and "--find-links" in printed
    wheel, runtime = out / "dream_tinyonnxpole-0.1.0-py3-none-any.whl", out / "gym_dream_onnx-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta = zf.read("dream_tinyonnxpole-0.1.0.dist-info/METADATA").decode()
        assert [line for line in meta.splitlines() if line.startswith("Requires-Dist")] == ["Requires-Dist: gym-dream-onnx>=0.1,<0.2"]
        assert zf.read("dream_tinyonnxpole-0.1.0.dist-info/entry_points.txt").decode() == \
            "[gym_dream_onnx.models]\ndream-tinyonnxpole = dream_tinyonnxpole\n"
    assert {f"dream_tinyonnxpole/dream/{g}.onnx" for g in ("initial_state", "imagine", "decode")} <= names
    assert not any(n.endswith((".safetensors", ".pt", ".pkl")) for n in names), "the graphs hold the weights"
    site = tmp_path / "site"  # both wheels unzipped: an install without pip
    for w in (wheel, runtime):
        with zipfile.ZipFile(w) as zf:
            zf.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", _NO_TORCH_SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "OK OnnxDreamVectorEnv (64, " in run.stdout and str(site) in run.stdout
    with pytest.raises(ValueError, match="--half"):
        cli_args = ["export", str(tiny_cartpole_model), "--env-id", "Dream-TinyOnnxPole-v0", "--name", "dream-x", "--out", str(out)]
        from trainers.export.package import ExportConfig, export

        export(ExportConfig(model_dir=cli_args[1], env_id=cli_args[3], name="dream-x", out=str(out), runtime="onnx", half=True))
    with pytest.raises(ValueError, match="--runtime must be one of"):
        from trainers.export.package import ExportConfig, export

        export(ExportConfig(model_dir=str(tiny_cartpole_model), env_id="Dream-X-v0", name="dream-x", out=str(out), runtime="tf"))


WHEELHOUSE = os.environ.get("GYM_DREAM_WHEELHOUSE")


@pytest.mark.skipif(not WHEELHOUSE, reason="needs local wheels of the runtimes' dependencies: run `make test` (it builds .wheelhouse)")
def test_onnx_wheel_installs_into_a_fresh_offline_venv_without_torch(tiny_cartpole_model, tmp_path):
    """The acceptance path: a fresh venv, only local wheels, no network, no torch; gym.make and make_vec step the dream."""
    from trainers.export.package import ExportConfig, export

    wheelhouse = Path(WHEELHOUSE)
    assert wheelhouse.is_dir(), f"GYM_DREAM_WHEELHOUSE={wheelhouse} does not exist; run `make wheelhouse`"
    dist = tmp_path / "dist"
    wheel = export(ExportConfig(model_dir=str(tiny_cartpole_model), env_id="Dream-TinyOnnxPole-v0", name="dream-tinyonnxpole",
                                out=str(dist), runtime="onnx"))["wheel"]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse), "--find-links", str(dist), str(wheel)],
                   check=True, env=env, cwd=tmp_path)
    no_torch = subprocess.run([str(py), "-c", "import torch"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert no_torch.returncode != 0 and "No module named 'torch'" in no_torch.stderr
    run = subprocess.run([str(py), "-c", _NO_TORCH_SCRIPT], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "OK OnnxDreamVectorEnv (64, " in run.stdout and str(venv) in run.stdout
