"""Minari in and out: tiny datasets made here with Minari's own API (no network), fitted on the tiny preset into
working dream ids; collect -> Minari -> fit keeps every transition; bad inputs fail with errors that name the fix."""

from __future__ import annotations

import json
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")

from minari.data_collector import EpisodeBuffer  # noqa: E402

import gym_dream  # noqa: E402,F401
from gym_dream.error import DataFormatError, DependencyNotInstalled  # noqa: E402
from trainers.cli.commands import main  # noqa: E402
from trainers.data.dataset import EpisodeDataset  # noqa: E402
from trainers.fit.dispatch import FitConfig, fit  # noqa: E402
from trainers.data.minari import minari_to_shards, shards_to_minari  # noqa: E402


@pytest.fixture(autouse=True)
def local_minari(tmp_path, monkeypatch):
    """Every dataset of a test in its own MINARI_DATASETS_PATH."""
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    return tmp_path / "minari"


def _episodes(env: gym.Env, n: int, seed: int = 0) -> list[EpisodeBuffer]:
    env.action_space.seed(seed)
    buffers = []
    for k in range(n):
        obs, _ = env.reset(seed=seed + k)
        o, a, r, te, tr = [obs], [], [], [], []
        while True:
            action = env.action_space.sample()
            obs, reward, terminated, truncated, _ = env.step(action)
            o.append(obs), a.append(action), r.append(reward), te.append(terminated), tr.append(truncated)
            if terminated or truncated:
                break
        buffers.append(EpisodeBuffer(observations=np.array(o), actions=np.array(a), rewards=np.array(r, np.float64),
                                     terminations=np.array(te), truncations=np.array(tr)))
    return buffers


def _create(dataset_id: str, buffers, env=None, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari's reminders to name an author, a code link...
        return minari.create_dataset_from_buffers(dataset_id, buffers, env=env, **kwargs)


def _card(model_dir) -> dict:
    return json.loads((model_dir / "model.json").read_text())


def _check_dream(dream_id: str, model_dir, real_id: str) -> None:
    env = gym.make(dream_id, model=str(model_dir))
    obs, _ = env.reset(seed=0)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and np.isfinite(reward)
    real = gym_dream.wrappers.DreamObservation(gym.make(real_id), model=str(model_dir))
    obs, _ = real.reset(seed=0)
    assert real.observation_space.contains(obs) and real.observation_space == env.observation_space


@pytest.mark.parametrize("real_id,dream_id,family", [
    ("CartPole-v1", "Dream-CartPole-v0", "mdnrnn"),     # vector observations, discrete actions
    ("Pendulum-v1", "Dream-Pendulum-v0", "mdnrnn"),     # vector observations, continuous actions
    ("Pendulum-v1", "Dream-Pendulum-v0", "rssm"),       # the other family, from the same kind of dataset
    ("Pendulum-v1", "Dream-Pendulum-v0", "dreamer"),    # DreamerV3's world model, the same way
])
def test_a_vector_dataset_fits_into_a_working_dream_id(real_id, dream_id, family, tmp_path):
    env = gym.make(real_id, max_episode_steps=40)
    _create("test/vector-v0", _episodes(env, 6), env=env, algorithm_name="random")
    out = fit(FitConfig(minari="test/vector-v0", out=str(tmp_path / "m"), family=family, preset="tiny", bank_size=4))
    card = _card(out)
    assert card["env"]["id"] == real_id and card["env"]["max_episode_steps"] == 40 and "missing" not in card["env"]
    assert card["data"]["source"]["minari"] == "test/vector-v0" and card["data"]["policies"] == ["minari:random"]
    assert card["data"]["steps"] == minari.load_dataset("test/vector-v0").total_steps
    _check_dream(dream_id, out, real_id)


def test_an_image_dataset_fits_into_a_working_dream_id(tmp_path):
    env = gym.make("CarRacing-v3", max_episode_steps=12)
    _create("test/racing-v0", _episodes(env, 2), env=env)
    out = fit(FitConfig(minari="test/racing-v0", out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", vae_epochs=1, rnn_epochs=1, bank_size=2))
    ds = EpisodeDataset(tmp_path / "m.minari")
    assert ds.obs.shape[1:] == (64, 64, 3) and ds.obs.dtype == np.uint8  # the recipe's preprocessing, applied once
    assert _card(out)["env"]["id"] == "CarRacing-v3"
    _check_dream("Dream-CarRacing-v0", out, "CarRacing-v3")


def test_terminations_and_truncations_stay_apart(tmp_path):
    env = gym.make("CartPole-v1")
    space = env.observation_space

    def episode(n, terminated, truncated):
        te, tr = np.zeros(n, bool), np.zeros(n, bool)
        te[-1], tr[-1] = terminated, truncated
        return EpisodeBuffer(observations=np.zeros((n + 1, 4), np.float32) + np.arange(n + 1, dtype=np.float32)[:, None] / 100,
                             actions=np.zeros(n, np.int64), rewards=np.ones(n), terminations=te, truncations=tr)

    # a death, a time limit, both flags on one step (a real end), and neither (a buffer cut off)
    _create("test/ends-v0", [episode(5, True, False), episode(6, False, True), episode(7, True, True), episode(8, False, False)],
            env=env, observation_space=space)
    ds = EpisodeDataset(minari_to_shards("test/ends-v0", tmp_path / "d"))
    last = ds.act_start + ds.lengths - 1
    assert ds.terminated[last].tolist() == [True, False, True, False]
    assert ds.truncated[last].tolist() == [False, True, False, True]
    assert ds.terminated.sum() == 2 and ds.truncated.sum() == 2  # no other step ends an episode


def test_collect_to_minari_to_fit_round_trips_every_transition(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["collect", "--env-id", "CartPole-v1", "--out", str(data), "--steps", "300", "--workers", "1",
                 "--minari", "test/collected-v0"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["minari"]
    dataset = minari.load_dataset("test/collected-v0")
    assert dataset.env_spec.id == "CartPole-v1" and dataset.total_steps == 300
    assert main(["fit", "--minari", "test/collected-v0", "--out", str(tmp_path / "m"), "--family", "mdnrnn", "--preset", "tiny",
                 "--bank-size", "4"]) == 0
    before, after = EpisodeDataset(data), EpisodeDataset(tmp_path / "m.minari")
    for k in ("lengths", "obs", "actions", "rewards", "terminated", "truncated"):
        a, b = getattr(before, k), getattr(after, k)
        assert a.dtype == b.dtype and np.array_equal(a, b), k
    assert {k: after.meta[k] for k in ("env_id", "preprocessing", "policies")} == {k: before.meta[k] for k in ("env_id", "preprocessing", "policies")}
    gym.make("Dream-CartPole-v0", model=str(tmp_path / "m")).reset(seed=0)
    # collecting again (the target is reached) rewrites the same Minari dataset; a re-fit reuses the converted shards
    assert main(["collect", "--env-id", "CartPole-v1", "--out", str(data), "--steps", "300", "--workers", "1", "--minari", "test/collected-v0"]) == 0
    assert minari.load_dataset("test/collected-v0").total_steps == 300


def test_an_image_dataset_round_trips_losslessly(tmp_path):
    from trainers.data.collect import CollectConfig, collect

    collect(CollectConfig(env_id="CarRacing-v3", out=str(tmp_path / "c"), steps=20, max_episode_steps=10, workers=1, seed=0))
    shards_to_minari(tmp_path / "c", "test/frames-v0")
    before, after = EpisodeDataset(tmp_path / "c"), EpisodeDataset(minari_to_shards("test/frames-v0", tmp_path / "back"))
    assert np.array_equal(before.obs, after.obs) and np.array_equal(before.actions, after.actions)
    assert after.meta["env_id"] == "CarRacing-v3" and after.meta["observation_space"] == before.meta["observation_space"]


def test_a_dataset_whose_env_cannot_be_made_still_fits_and_dream_observation_says_what_is_missing(tmp_path):
    env = gym.make("CartPole-v1", max_episode_steps=30)
    _create("test/nospec-v0", _episodes(env, 4), env=None, observation_space=env.observation_space, action_space=env.action_space)
    # an env from a package that is installed while the dataset is made, and gone when it is fitted
    (tmp_path / "gone_pkg.py").write_text("from gymnasium.envs.classic_control.cartpole import CartPoleEnv as Env\n")
    sys.path.insert(0, str(tmp_path))
    gym.register("GoneEnv-v0", entry_point="gone_pkg:Env", max_episode_steps=30)
    try:
        _create("test/gone-v0", _episodes(gym.make("GoneEnv-v0"), 4), env="GoneEnv-v0")
    finally:
        del gym.registry["GoneEnv-v0"]
        sys.path.remove(str(tmp_path))
        sys.modules.pop("gone_pkg", None)
    for did, says in (("test/nospec-v0", "records no env spec"), ("test/gone-v0", "'GoneEnv-v0'")):
        out = fit(FitConfig(minari=did, out=str(tmp_path / did.split("/")[1]), family="mdnrnn", preset="tiny", rnn_epochs=1, bank_size=2))
        card = _card(out)
        assert says in card["env"]["missing"]
        dream = gym_dream.DreamEnv(model=str(out))  # the dream itself needs no real env
        dream.reset(seed=0)
        dream.step(dream.action_space.sample())
        with pytest.warns(UserWarning, match=says):
            gym_dream.wrappers.DreamObservation(gym.make("CartPole-v1"), model=str(out)).reset(seed=0)
        with pytest.warns(UserWarning), pytest.raises(gym_dream.error.ModelMismatch, match="real env is unknown"):
            gym_dream.wrappers.DreamObservation(gym.make("Pendulum-v1"), model=str(out))
    assert card["env"]["id"] == "GoneEnv-v0"


def test_bad_datasets_and_ids_give_errors_that_name_the_fix(tmp_path):
    cartpole = gym.make("CartPole-v1", max_episode_steps=20)
    # an env spec that does not match the data: Pendulum recorded for CartPole episodes
    _create("test/wrong-v0", _episodes(cartpole, 2), env="Pendulum-v1", observation_space=cartpole.observation_space,
            action_space=cartpole.action_space)
    with pytest.raises(DataFormatError, match="recorded env spec is wrong.*env=None"):
        minari_to_shards("test/wrong-v0", tmp_path / "w")
    _create("test/empty-v0", [], env=cartpole)
    with pytest.raises(DataFormatError, match="holds no steps"):
        fit(FitConfig(minari="test/empty-v0", out=str(tmp_path / "e"), family="mdnrnn", preset="tiny"))
    with pytest.raises(FileNotFoundError, match="Local datasets: test/empty-v0, test/wrong-v0. Download it first with `minari download test/absent-v0`"):
        minari_to_shards("test/absent-v0", tmp_path / "a")
    with pytest.raises(ValueError, match="no dots"):
        shards_to_minari(tmp_path / "x", "test/eps0.25-v0")
    assert not list((tmp_path / "minari" / "test").glob("eps0.25*"))  # no folder of a bad id left behind
    # a Minari dataset id that another folder wrote is not overwritten
    from trainers.data.collect import CollectConfig, collect

    collect(CollectConfig(env_id="CartPole-v1", out=str(tmp_path / "c"), steps=30, workers=1))
    with pytest.raises(FileExistsError, match="minari delete test/empty-v0"):
        shards_to_minari(tmp_path / "c", "test/empty-v0")
    # the command line: one dataset, not none and not both
    assert main(["fit", "--out", str(tmp_path / "m")]) == 2
    assert main(["fit", str(tmp_path / "c"), "--minari", "test/empty-v0", "--out", str(tmp_path / "m")]) == 2


def test_without_minari_the_error_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_minari(name, *args, **kwargs):
        if name == "minari" or name.startswith("minari."):
            raise ImportError("No module named 'minari'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_minari)
    with pytest.raises(DependencyNotInstalled, match=r'pip install "gym-dream\[minari\]"'):
        minari_to_shards("test/any-v0", "unused")


def test_frames_of_an_env_gym_dream_does_not_know_are_resized_and_fit(tmp_path):
    obs_space = gym.spaces.Box(0, 255, (32, 40, 3), np.uint8)
    action_space = gym.spaces.Discrete(3)
    rng = np.random.default_rng(0)
    buffers = [EpisodeBuffer(observations=rng.integers(0, 256, (n + 1, 32, 40, 3), dtype=np.uint8), actions=rng.integers(0, 3, n),
                             rewards=rng.random(n), terminations=np.arange(n) == n - 1, truncations=np.zeros(n, bool)) for n in (6, 9)]
    _create("test/frames-v0", buffers, env=None, observation_space=obs_space, action_space=action_space, jpeg_encoding=False)
    out = fit(FitConfig(minari="test/frames-v0", out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", vae_epochs=1, rnn_epochs=1, bank_size=2))
    assert EpisodeDataset(tmp_path / "m.minari").obs.shape[1:] == (64, 64, 3)
    card = _card(out)
    assert card["env"]["id"] is None and "records no env spec" in card["env"]["missing"]
    dream = gym_dream.DreamEnv(model=str(out), obs_type="pixels")
    obs, _ = dream.reset(seed=0)
    assert obs.shape == (64, 64, 3) and dream.step(1)[0].dtype == np.uint8


def test_a_dataset_recorded_with_minaris_data_collector_fits(tmp_path):
    pytest.importorskip("jax")  # minari.DataCollector needs minari[create] (jax): heavy, so not in gym-dream[dev]
    env = minari.DataCollector(gym.make("CartPole-v1", max_episode_steps=30), record_infos=False)
    env.action_space.seed(0)
    for k in range(4):
        env.reset(seed=k)
        while True:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env.create_dataset("test/collector-v0", algorithm_name="random")
    out = fit(FitConfig(minari="test/collector-v0", out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", rnn_epochs=1, bank_size=2))
    assert _card(out)["env"]["id"] == "CartPole-v1" and _card(out)["data"]["steps"] == minari.load_dataset("test/collector-v0").total_steps
    _check_dream("Dream-CartPole-v0", out, "CartPole-v1")
