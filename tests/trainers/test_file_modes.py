"""Every file the trainers write follows the umask, as the model files do (tests/gym_dream/test_security.py): a
controller, an SB3 policy, a training checkpoint or a log rewritten with a new column is readable by whoever may read
the folder it is in. safetensors' own save_file makes its files owner-only (0600), which other users of a shared work
folder (a Ray cluster's /shared, a team's model directory) could not load."""

import os

import gymnasium as gym
import pytest
from torch import nn

from trainers.infra.checkpoints import load_checkpoint, save_checkpoint
from trainers.agents.controller import LinearController
from trainers.agents.sb3_policy import SB3Policy, save_policy
from trainers.infra.training_log import TrainingLog


def _modes(folder):
    return {p.name: oct(p.stat().st_mode & 0o777) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_what_the_trainers_write_follows_the_umask(tmp_path, umask, mode):
    import stable_baselines3 as sb3

    agent = sb3.DQN("MlpPolicy", gym.make("CartPole-v1"), seed=0)
    net = nn.Linear(3, 2)
    old = os.umask(umask)
    try:
        LinearController(4, gym.spaces.Discrete(2)).save(tmp_path / "controller")
        save_policy(agent, tmp_path / "policy")
        save_checkpoint(tmp_path / "ckpt" / "fit.safetensors", {"net": net}, {}, {"epoch": 1})
        with TrainingLog(tmp_path / "log", "fit", tensorboard=False) as log:
            log.write(1, loss=1.0)
            log.write(2, loss=0.5, acc=0.9)  # a new column: the file is rewritten
    finally:
        os.umask(old)
    written = _modes(tmp_path)
    assert set(written) == {"controller.json", "controller.safetensors", "policy.json", "policy.safetensors", "fit.safetensors",
                            "fit_log.csv"}
    assert written == dict.fromkeys(written, oct(mode))
    # and each still loads
    assert LinearController.load(tmp_path / "controller").num_params == LinearController(4, gym.spaces.Discrete(2)).num_params
    assert SB3Policy.load(tmp_path / "policy").predict(gym.make("CartPole-v1").observation_space.sample())[0] in (0, 1)
    again = nn.Linear(3, 2)
    assert load_checkpoint(tmp_path / "ckpt" / "fit.safetensors", {"net": again}, {}) == {"epoch": 1}
    assert (again.weight == net.weight).all()
