import gymnasium as gym
import pytest

import gym_dream
from gym_dream.checkpoint import save_model
from gym_dream.error import ModelMismatch, ModelNotFound


def test_unknown_name_lists_models_and_suggests(monkeypatch, tmp_path, vector_model):
    monkeypatch.setenv("GYM_DREAM_HOME", str(tmp_path))
    save_model(vector_model, tmp_path / "models" / "my-cartpole", {"env": {"id": "CartPole-v1"}})
    with pytest.raises(ModelNotFound, match=r"Did you mean 'my-cartpole'.*Available models:.*my-cartpole"):
        gym.make("Dream-CartPole-v0", model="my-cartpol")


def test_user_store_name_resolves(monkeypatch, tmp_path, vector_model):
    monkeypatch.setenv("GYM_DREAM_HOME", str(tmp_path))
    save_model(vector_model, tmp_path / "models" / "mine", {"env": {"id": "CartPole-v1"}})
    assert "mine" in gym_dream.available_models()
    env = gym.make("Dream-CartPole-v0", model="mine")
    assert env.observation_space.shape == (vector_model.feature_dim,)


def test_directory_without_card(tmp_path):
    with pytest.raises(ModelNotFound, match="not a model directory"):
        gym_dream.resolve_model(tmp_path)


def test_id_without_default_model_says_how_to_train(monkeypatch, tmp_path):
    monkeypatch.setenv("GYM_DREAM_HOME", str(tmp_path))
    assert "pendulum" not in gym_dream.available_models()  # this id ships no model
    with pytest.raises(ModelNotFound, match="gym-dream collect --env-id Pendulum-v1.*gym-dream fit"):
        gym.make("Dream-Pendulum-v0")


def test_model_for_another_env_is_refused(pixel_model, vector_model):
    with pytest.raises(ModelMismatch, match="expects a model of CartPole-v1.*CarRacing-v3"):
        gym.make("Dream-CartPole-v0", model=pixel_model)
    vector_model.card = {"env": {"id": "CarRacing-v3"}}
    with pytest.raises(ModelMismatch, match="action space"):
        gym.make("Dream-CarRacing-v0", model=vector_model)


def test_bad_model_type():
    with pytest.raises(TypeError, match="model must be"):
        gym.make("Dream-CartPole-v0", model=42)


def test_bundled_package_directories_map_to_dashed_model_names(monkeypatch, tmp_path, vector_model):
    """A source checkout without package metadata still finds bundled models (dir doom_takecover -> model doom-takecover)."""
    from gym_dream import store

    bundled = tmp_path / "bundled"
    save_model(vector_model, bundled / "doom_takecover", {"env": {"id": "CartPole-v1"}})
    monkeypatch.setattr(store, "BUNDLED_DIR", bundled)
    names = {name for name, _, _ in store.packaged_model_sources()}
    assert "doom-takecover" in names and "doom_takecover" not in names
