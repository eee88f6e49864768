"""An off-policy agent's replay buffer, kept next to its checkpoint as plain arrays and loaded back only onto the
checkpoint of its own step."""

import numpy as np
import pytest

from trainers.agents.replay_buffer_file import load_replay_buffer, save_replay_buffer
from trainers.agents.sb3 import SB3Config, train_sb3


def _buffer_state(agent):
    b = agent.replay_buffer
    return {"pos": b.pos, "full": b.full, "observations": b.observations.copy(), "next": b.next_observations.copy(),
            "actions": b.actions.copy(), "rewards": b.rewards.copy(), "dones": b.dones.copy(), "timeouts": b.timeouts.copy()}


@pytest.mark.parametrize("buffer_size", [1000, 40])  # one buffer partly filled, one that wrapped around (full)
def test_a_kept_buffer_loads_back_onto_its_checkpoint_exactly(buffer_size, tiny_cartpole_model, tmp_path):
    from stable_baselines3 import DQN

    out = tmp_path / "dqn"
    train_sb3(SB3Config(algo="dqn", model=str(tiny_cartpole_model), out=str(out), timesteps=64, num_envs=4, eval_every=64,
                        eval_episodes=2, hparams={"learning_starts": 20, "train_freq": 4, "gradient_steps": 1, "buffer_size": buffer_size}))
    trained = DQN.load(out / "last.zip")
    assert load_replay_buffer(trained, out / "replay_buffer.npz") is None
    state = _buffer_state(trained)
    assert state["full"] == (buffer_size == 40) and (state["pos"] == 16 or state["full"])
    assert np.abs(state["observations"][: 10 if state["full"] else state["pos"]]).sum() > 0  # real transitions, not zeros

    # saved again and loaded into a fresh copy of the checkpoint: the same arrays, position and fill
    save_replay_buffer(trained, tmp_path / "again.npz")
    fresh = DQN.load(out / "last.zip")
    assert fresh.replay_buffer.pos == 0 and not fresh.replay_buffer.full
    assert load_replay_buffer(fresh, tmp_path / "again.npz") is None
    for k, v in _buffer_state(fresh).items():
        np.testing.assert_array_equal(v, state[k], err_msg=k)


def test_a_buffer_of_another_step_or_shape_is_not_loaded(tiny_cartpole_model, tmp_path):
    from stable_baselines3 import DQN

    out = tmp_path / "dqn"
    train_sb3(SB3Config(algo="dqn", model=str(tiny_cartpole_model), out=str(out), timesteps=64, num_envs=4, eval_every=64,
                        eval_episodes=2, hparams={"learning_starts": 20, "train_freq": 4, "gradient_steps": 1, "buffer_size": 1000}))
    agent = DQN.load(out / "last.zip")
    agent.num_timesteps = 128  # a checkpoint of a later step than the buffer's (a run stopped between the two writes)
    assert "holds the buffer of step 64, the checkpoint is of step 128" in load_replay_buffer(agent, out / "replay_buffer.npz")
    assert agent.replay_buffer.pos == 0 and np.abs(agent.replay_buffer.observations).sum() == 0
    smaller = DQN.load(out / "last.zip", buffer_size=500)
    assert "holds a buffer of 250 x 4 envs, the agent's is 125 x 4" in load_replay_buffer(smaller, out / "replay_buffer.npz")
    assert "no missing.npz" in load_replay_buffer(agent, tmp_path / "missing.npz")


def test_an_on_policy_agent_has_no_buffer_to_keep(tiny_cartpole_model, tmp_path):
    from stable_baselines3 import PPO

    out = tmp_path / "ppo"
    train_sb3(SB3Config(algo="ppo", model=str(tiny_cartpole_model), out=str(out), timesteps=64, num_envs=4, eval_every=64,
                        eval_episodes=2, hparams={"n_steps": 16, "batch_size": 32, "n_epochs": 1}))
    agent = PPO.load(out / "last.zip")
    assert not save_replay_buffer(agent, tmp_path / "b.npz") and not (tmp_path / "b.npz").exists()
    assert "no replay buffer" in load_replay_buffer(agent, tmp_path / "b.npz")
