"""A Minari dataset names its real env as an EnvSpec, entry point and wrappers included: fitting from it never imports
them (gym.make(spec) would run the module a downloaded dataset names). The env is made by its id from this registry."""

import sys
from types import SimpleNamespace

import gymnasium as gym
import pytest
from gymnasium.envs.registration import EnvSpec, WrapperSpec

from gym_dream.error import DataFormatError
from trainers.data.minari import recover_env


@pytest.fixture
def payload(tmp_path, monkeypatch):
    marker = tmp_path / "ran"
    (tmp_path / "payloadmod.py").write_text(f"open({str(marker)!r}, 'w').write('x')\nEnv = None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop("payloadmod", None)


def _dataset(spec):
    cartpole = gym.make("CartPole-v1")
    return SimpleNamespace(id="crafted/cartpole-v0", env_spec=spec, observation_space=cartpole.observation_space,
                           action_space=cartpole.action_space)


def test_a_recorded_entry_point_or_wrapper_is_never_imported(payload):
    spec = EnvSpec(id="CartPole-v1", entry_point="payloadmod:Env",
                   additional_wrappers=(WrapperSpec("Evil", "payloadmod:Env", None),))
    out = recover_env(_dataset(spec))  # made as this registry's CartPole-v1
    assert "missing" not in out and out["env_id"] == "CartPole-v1" and not payload.exists()
    out = recover_env(_dataset(EnvSpec(id="EvilPole-v0", entry_point="payloadmod:Env")))
    assert "not registered here" in out["missing"] and not payload.exists()


def test_a_module_prefixed_id_is_refused(payload):
    with pytest.raises(DataFormatError, match="module:"):
        recover_env(_dataset(EnvSpec(id="payloadmod:CartPole-v1", entry_point="payloadmod:Env")))
    assert not payload.exists()
