import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import gym_dream
from gym_dream.checkpoint import load_model, save_model
from gym_dream.error import ModelFormatError, ModelMismatch


def _rollout(model_or_dir, seed, steps=30):
    env = gym.make("Dream-CartPole-v0", model=model_or_dir, tau=1.0)
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for t in range(steps):
        obs, r, term, trunc, _ = env.step(t % 2)
        out.append(obs)
        if term:
            obs, _ = env.reset()
    return np.stack(out)


@pytest.mark.parametrize("fixture", ["vector_model", "pixel_model"])
def test_save_load_reproduces_every_tensor(fixture, request, tmp_path):
    model = request.getfixturevalue(fixture)
    save_model(model, tmp_path / "m", {"env": {"id": model.card["env"]["id"]}})
    loaded = load_model(tmp_path / "m")
    a, b = model.state_dict(), loaded.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_save_load_gives_the_same_dream(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m", {"env": {"id": "CartPole-v1"}})
    np.testing.assert_array_equal(_rollout(vector_model, 3), _rollout(str(tmp_path / "m"), 3))


def test_half_precision_weights_load_as_float32(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m", {"env": {"id": "CartPole-v1"}}, half=True)
    loaded = load_model(tmp_path / "m")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert json.loads((tmp_path / "m" / "model.json").read_text())["weights"]["dtype"] == "float16"


def test_truncated_weights_raise_a_clear_error(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    w.write_bytes(w.read_bytes()[: len(w.read_bytes()) // 2])
    with pytest.raises(ModelFormatError, match="truncated or corrupted"):
        load_model(tmp_path / "m")


def test_corrupted_weights_header_raises(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m")
    w = tmp_path / "m" / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[8:40] = b"\x00" * 32
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError):
        load_model(tmp_path / "m")


def test_card_that_does_not_match_weights(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m")
    card_path = tmp_path / "m" / "model.json"
    card = json.loads(card_path.read_text())
    card["params"]["hidden"] = 32
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelMismatch, match="does not match the weights.*shape"):
        load_model(tmp_path / "m")


def test_unknown_format_version(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m")
    card_path = tmp_path / "m" / "model.json"
    card = json.loads(card_path.read_text())
    card["format_version"] = 99
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelFormatError, match="format version 99.*reads format version 1"):
        load_model(tmp_path / "m")


def test_not_json_and_missing_files(vector_model, tmp_path):
    save_model(vector_model, tmp_path / "m")
    (tmp_path / "m" / "model.json").write_text("{not json")
    with pytest.raises(ModelFormatError, match="not valid JSON"):
        load_model(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="missing"):
        load_model(tmp_path / "nothing")


def test_loading_never_unpickles(vector_model, tmp_path, monkeypatch):
    import pickle

    def boom(*a, **k):
        raise AssertionError("pickle used")

    monkeypatch.setattr(pickle, "load", boom)
    monkeypatch.setattr(pickle, "loads", boom)
    monkeypatch.setattr(torch, "load", boom)
    save_model(vector_model, tmp_path / "m")
    load_model(tmp_path / "m")
