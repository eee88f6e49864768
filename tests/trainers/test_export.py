"""`gym-dream export`: model -> pip-installable environment package, found through the entry-point group."""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import gym_dream
from gym_dream.envs.registry import register_dream_envs
from gym_dream.error import ModelFormatError, ModelMismatch
from gym_dream.versions import compatible_range, satisfies
from trainers.cli.commands import main as cli
from trainers.export.package import ExportConfig, export

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def site(tmp_path):
    """A directory on sys.path standing in for site-packages: a wheel unzipped here is installed."""
    d = tmp_path / "site"
    d.mkdir()
    sys.path.insert(0, str(d))

    def install(wheel: Path) -> None:
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(d)
        register_dream_envs()

    yield install
    sys.path.remove(str(d))
    for env_id in [k for k in gym.registry if k.startswith("Dream-")]:
        gym.registry.pop(env_id, None)
    register_dream_envs()


def _export(model_dir, out, env_id="Dream-TinyPole-v0", name="dream-tinypole", **kw) -> Path:
    return export(ExportConfig(model_dir=str(model_dir), env_id=env_id, name=name, out=str(out), **kw))["wheel"]


def test_version_ranges():
    assert satisfies("0.1.0", ">=0.1,<0.2") and satisfies("0.1.7.dev1", ">=0.1,<0.2")
    assert not satisfies("0.2.0", ">=0.1,<0.2") and not satisfies("0.0.9", ">=0.1,<0.2")
    assert satisfies("1.4.2", "~=1.4") and not satisfies("2.0", "~=1.4")
    assert compatible_range("0.1.0") == ">=0.1,<0.2" and compatible_range("1.3.0") == ">=1.3,<2"
    with pytest.raises(ValueError, match="write e.g."):
        satisfies("0.1", "0.1+")


def test_export_writes_project_and_valid_reproducible_wheel(tiny_cartpole_model, tmp_path):
    w1 = _export(tiny_cartpole_model, tmp_path / "a")
    w2 = _export(tiny_cartpole_model, tmp_path / "b")
    assert w1.name == "dream_tinypole-0.1.0-py3-none-any.whl"
    assert w1.read_bytes() == w2.read_bytes(), "same model, same wheel bytes"
    project = tmp_path / "a" / "dream-tinypole"
    assert (project / "pyproject.toml").is_file() and (project / "src" / "dream_tinypole" / "model.safetensors").is_file()
    readme = (project / "README.md").read_text()
    assert 'gym.make("Dream-TinyPole-v0"' in readme and "## Data" in readme and "## Training" in readme
    with zipfile.ZipFile(w1) as zf:
        names = set(zf.namelist())
        assert {"dream_tinypole/model.json", "dream_tinypole/model.safetensors", "dream_tinypole/__init__.py"} <= names
        assert not any(n.endswith((".pkl", ".pt", ".pth", ".bin")) for n in names), "data only: safetensors + JSON"
        info = "dream_tinypole-0.1.0.dist-info"
        meta = zf.read(f"{info}/METADATA").decode()
        assert "Requires-Dist: gym-dream>=0.1,<0.2" in meta and meta.count("Requires-Dist") == 1
        assert zf.read(f"{info}/entry_points.txt").decode() == "[gym_dream.models]\ndream-tinypole = dream_tinypole\n"
        for line in zf.read(f"{info}/RECORD").decode().splitlines():
            path, digest, size = line.split(",")
            if path.endswith("RECORD"):
                continue
            data = zf.read(path)
            assert int(size) == len(data)
            assert digest == "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    card = json.loads((project / "src" / "dream_tinypole" / "model.json").read_text())
    assert card["dream_env"] == {"id": "Dream-TinyPole-v0", "max_episode_steps": 500}
    assert card["requires_gym_dream"] == ">=0.1,<0.2"


def test_installed_package_registers_its_id(tiny_cartpole_model, tmp_path, site):
    with pytest.raises(gym.error.NameNotFound):
        gym.make("Dream-TinyPole-v0")
    site(_export(tiny_cartpole_model, tmp_path, half=True))
    env = gym.make("Dream-TinyPole-v0", tau=1.2)
    assert env.spec.max_episode_steps == 500
    check_env(env.unwrapped, skip_render_check=True)
    envs = gym.make_vec("Dream-TinyPole-v0", num_envs=16, vectorization_mode="vector_entry_point")
    assert isinstance(envs.unwrapped, gym_dream.DreamVectorEnv)
    obs, _ = envs.reset(seed=0)
    obs, reward, *_ = envs.step(envs.action_space.sample())
    assert obs.shape[0] == 16 and reward.shape == (16,)
    assert "dream-tinypole" in gym_dream.available_models()
    assert gym_dream.resolve_model("dream-tinypole").card["weights"]["dtype"] == "float16"


def test_two_packages_claiming_one_id_is_an_error_naming_both(tiny_cartpole_model, tmp_path, site):
    site(_export(tiny_cartpole_model, tmp_path / "a", name="dream-one"))
    site(_export(tiny_cartpole_model, tmp_path / "b", name="dream-two"))
    with pytest.raises(ModelMismatch, match="dream-one.*dream-two|dream-two.*dream-one"):
        gym.make("Dream-TinyPole-v0")
    with pytest.raises(ModelMismatch, match="Several installed packages"):
        gym.make_vec("Dream-TinyPole-v0", num_envs=2, vectorization_mode="vector_entry_point")


def test_package_claiming_a_shipped_id_conflicts_instead_of_overriding(tiny_cartpole_model, tmp_path, site):
    site(_export(tiny_cartpole_model, tmp_path, env_id="Dream-CartPole-v0", name="dream-impostor"))
    with pytest.raises(ModelMismatch, match="gym-dream.*dream-impostor|dream-impostor.*gym-dream"):
        gym.make("Dream-CartPole-v0")


def _edit_card(wheel: Path, out: Path, **fields) -> Path:
    """A copy of ``wheel`` whose model card has ``fields`` changed (RECORD is not re-hashed: unzipped only)."""
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("model.json"):
                card = json.loads(data)
                card.update(fields)
                data = json.dumps(card).encode()
            dst.writestr(item, data)
    return out


def test_incompatible_package_fails_at_make_naming_both_versions(tiny_cartpole_model, tmp_path, site):
    wheel = _export(tiny_cartpole_model, tmp_path)
    site(_edit_card(wheel, tmp_path / "future.whl", requires_gym_dream=">=0.7,<0.8", format_version=7))
    with pytest.raises(ModelFormatError, match=r"version 7.*gym-dream 0\.1\.0.*format version 1"):
        gym.make("Dream-TinyPole-v0")


def test_newer_gym_dream_range_fails_at_make_naming_both(tiny_cartpole_model, tmp_path, site):
    wheel = _export(tiny_cartpole_model, tmp_path)
    site(_edit_card(wheel, tmp_path / "newer.whl", requires_gym_dream=">=0.3,<0.4"))
    with pytest.raises(ModelFormatError, match=r"made for gym-dream >=0\.3,<0\.4.*gym-dream 0\.1\.0 is installed"):
        gym.make("Dream-TinyPole-v0")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"env_id": "MyGame"}, "must start with 'Dream-'"),
        ({"name": "dream mygame"}, "valid package name"),
        ({"name": "gym-dream"}, "shadow"),
        ({"version": "one"}, "numeric"),
    ],
)
def test_export_rejects_bad_input_with_the_fix(tiny_cartpole_model, tmp_path, kw, match):
    args = {"env_id": "Dream-TinyPole-v0", "name": "dream-tinypole", **kw}
    with pytest.raises(ValueError, match=match):
        _export(tiny_cartpole_model, tmp_path, **args)


def test_export_refuses_a_broken_model(tiny_cartpole_model, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_cartpole_model, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelFormatError):
        _export(broken, tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.whl"))


def test_cli_export(tiny_cartpole_model, tmp_path, capsys):
    assert cli(["export", str(tiny_cartpole_model), "--env-id", "Dream-TinyPole-v0", "--name", "dream-tinypole", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "pip install" in out and (tmp_path / "dream_tinypole-0.1.0-py3-none-any.whl").is_file()


def test_shipped_model_goes_through_the_same_mechanism():
    card = json.loads((ROOT / "gym_dream" / "bundled" / "cartpole" / "model.json").read_text())
    assert card["dream_env"]["id"] == "Dream-CartPole-v0" and card["requires_gym_dream"]
    assert "cartpole" in (ROOT / "pyproject.toml").read_text().split('[project.entry-points."gym_dream.models"]')[1]


WHEELHOUSE = os.environ.get("GYM_DREAM_WHEELHOUSE")


@pytest.mark.skipif(not WHEELHOUSE, reason="needs local wheels of the runtime's dependencies: run `make test` (it builds .wheelhouse)")
def test_wheel_installs_into_a_fresh_offline_venv(tiny_cartpole_model, tmp_path):
    """The acceptance path: fresh venv, only local wheels, no network; make, check_env, vector dream, uninstall."""
    wheelhouse = Path(WHEELHOUSE)
    assert wheelhouse.is_dir(), f"GYM_DREAM_WHEELHOUSE={wheelhouse} does not exist; run `make wheelhouse`"
    wheel = _export(tiny_cartpole_model, tmp_path / "dist", env_id="Dream-TinyPole-v0", name="dream-tinypole")
    src = tmp_path / "gym-dream-src"  # build gym-dream from a copy, so the checkout gets no build files
    src.mkdir()
    for part in ("gym_dream", "trainers"):
        shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
    for part in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / part, src / part)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PYTHONPATH", None)
    pip = [str(py), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse), "--find-links", str(wheel.parent)]
    subprocess.run(pip + [str(src)], check=True, env=env, cwd=tmp_path)
    subprocess.run(pip + [str(wheel)], check=True, env=env, cwd=tmp_path)
    script = """
import gymnasium as gym, gym_dream
from gymnasium.utils.env_checker import check_env
env = gym.make("Dream-TinyPole-v0", tau=1.15)
check_env(env.unwrapped, skip_render_check=True)
envs = gym.make_vec("Dream-TinyPole-v0", num_envs=64, vectorization_mode="vector_entry_point")
envs.reset(seed=0)
for _ in range(20):
    obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
assert obs.shape[0] == 64
print("OK", type(envs.unwrapped).__name__, gym_dream.__file__)
"""
    run = subprocess.run([str(py), "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "OK DreamVectorEnv" in run.stdout and str(venv) in run.stdout
    subprocess.run([str(py), "-m", "pip", "uninstall", "-y", "-q", "dream-tinypole"], check=True, env=env, cwd=tmp_path)
    gone = subprocess.run([str(py), "-c", "import gymnasium as gym, gym_dream; gym.make('Dream-TinyPole-v0')"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert gone.returncode != 0 and "Dream-TinyPole" in gone.stderr and "doesn't exist" in gone.stderr
