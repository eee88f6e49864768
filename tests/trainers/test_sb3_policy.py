"""SB3 agents stored as data (safetensors + JSON) act exactly like the agent they were saved from; no pickle."""

import json

import gymnasium as gym
import numpy as np
import pytest

from trainers.agents.sb3_policy import SB3Policy, resolve_class, save_policy


@pytest.mark.parametrize("algo, env_id", [("PPO", "CartPole-v1"), ("DQN", "CartPole-v1"), ("SAC", "Pendulum-v1")])
def test_a_stored_policy_acts_like_the_agent(algo, env_id, tmp_path):
    import stable_baselines3 as sb3

    env = gym.make(env_id)
    agent = getattr(sb3, algo)("MlpPolicy", env, seed=0, **({"n_steps": 64} if algo == "PPO" else {"learning_starts": 0}))
    agent.learn(128)
    save_policy(agent, tmp_path / "agent", {"tau": 1.0})
    card = json.loads((tmp_path / "agent" / "policy.json").read_text())
    assert card["algo"] == algo.lower() and card["tau"] == 1.0
    stored = SB3Policy.load(tmp_path / "agent")
    obs = np.stack([env.observation_space.sample() for _ in range(32)])
    np.testing.assert_allclose(stored.predict(obs)[0], agent.predict(obs, deterministic=True)[0], rtol=1e-6)
    assert stored.predict(obs[0])[0].shape == env.action_space.shape
    # what acting never uses (the value function, critics, target networks) is not stored
    from safetensors.torch import load_file

    stored_keys = set(load_file(str(tmp_path / "agent" / "policy.safetensors")))
    every_key = set(agent.policy.state_dict())
    assert card["left_out"] and stored_keys < every_key
    assert all(k.startswith(tuple(card["left_out"])) for k in every_key - stored_keys)
    assert not any(k.startswith(tuple(card["left_out"])) for k in stored_keys)


def test_a_stored_policy_whose_weights_do_not_fit_its_card_is_refused(tmp_path):
    import stable_baselines3 as sb3
    from safetensors.torch import load_file, save_file

    agent = sb3.DQN("MlpPolicy", gym.make("CartPole-v1"), seed=0)
    save_policy(agent, tmp_path / "agent")
    weights = load_file(str(tmp_path / "agent" / "policy.safetensors"))
    save_file({k: v for k, v in weights.items() if not k.endswith("q_net.0.weight")}, str(tmp_path / "agent" / "policy.safetensors"))
    with pytest.raises(ValueError, match=r"does not fit its card.*q_net.q_net.0.weight.*Save the agent again"):
        SB3Policy.load(tmp_path / "agent")


def test_a_stored_policy_names_only_torch_and_sb3_classes(tmp_path):
    with pytest.raises(ValueError, match="only name those"):
        resolve_class("os.system")
    with pytest.raises(ValueError, match="only name those"):
        resolve_class("subprocess.Popen")
    assert resolve_class("torch.nn.modules.activation.Tanh").__name__ == "Tanh"
