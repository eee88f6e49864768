import json

import gymnasium as gym
import numpy as np
import pytest

import gym_dream
from trainers.cmaes import CMAESConfig, train_cmaes
from trainers.controller import LinearController, squash
from trainers.evaluate import evaluate, exploits_dream, load_agent, markdown_table, write_report
from trainers.sb3 import SB3Config, SB3VecEnv, train_sb3


def test_cmaes_trains_checkpoints_and_resumes(tiny_cartpole_model, tmp_path):
    cfg = CMAESConfig(model=str(tiny_cartpole_model), out=str(tmp_path / "c"), generations=2, popsize=6, rollouts=2, max_episode_steps=30)
    r = train_cmaes(cfg)
    assert r["generations"] == 2
    cfg.generations = 3
    train_cmaes(cfg)
    log = [json.loads(l) for l in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    assert [e["generation"] for e in log] == [1, 2, 3]  # resumed at generation 3, not restarted
    c = LinearController.load(tmp_path / "c" / "best")
    d = LinearController(c.feature_dim, c.action_space, c.params)
    d.save(tmp_path / "copy")
    np.testing.assert_array_equal(LinearController.load(tmp_path / "copy").params, c.params)
    row = evaluate(c, "Dream-CartPole-v0", str(tiny_cartpole_model), taus=(1.0, 1.5), episodes=3)
    assert row["real"]["episodes"] == 3 and set(row["dream"]) == {"1.0", "1.5"}


def test_squash_maps_into_box_bounds():
    space = gym.spaces.Box(np.array([-1.0, 0.0, 0.0, 1.0], np.float32), np.array([1.0, 1.0, 2.0, 3.0], np.float32))
    y = np.array([[-100.0, -100.0, 100.0, 100.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, -1.0, -100.0]])
    a = squash(y, space)
    assert all(space.contains(row) for row in a)
    # steering tanh; pedals ([0, high]) released at rest and when pushed negative; other bounds: affine sigmoid
    np.testing.assert_allclose(a[1], [0.0, 0.0, 0.0, 2.0])
    np.testing.assert_allclose(a[0], [-1.0, 0.0, 2.0, 3.0], atol=1e-6)
    np.testing.assert_allclose(a[2], [np.tanh(1.0), np.tanh(1.0), 0.0, 1.0], atol=1e-6)


def test_sb3_adapter_converts_to_same_step_resets(vector_model):
    for mode in ("SameStep", "Disabled"):
        venv = gym_dream.DreamVectorEnv(num_envs=4, model=vector_model, max_episode_steps=3, autoreset_mode=mode)
        env = SB3VecEnv(venv)
        env.seed(0)
        env.reset()
        for t in range(3):
            obs, r, dones, infos = env.step(np.zeros(4, dtype=np.int64))
        assert dones.all()
        for i in range(4):
            assert "terminal_observation" in infos[i]
            assert not np.allclose(infos[i]["terminal_observation"][vector_model.z_dim :], 0)
        assert np.allclose(obs[:, vector_model.z_dim :], 0)  # already the next episode's first obs
    with pytest.raises(ValueError, match="same-step"):
        SB3VecEnv(gym_dream.DreamVectorEnv(num_envs=2, model=vector_model))


@pytest.mark.parametrize("algo", ["ppo", "a2c", "dqn"])
def test_sb3_trains_in_dream_and_scores_on_real(algo, tiny_cartpole_model, tmp_path):
    hp = {"dqn": {"learning_starts": 50, "train_freq": 16, "gradient_steps": 4, "buffer_size": 1000}, "ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1}}.get(algo, {})
    r = train_sb3(SB3Config(algo=algo, model=str(tiny_cartpole_model), out=str(tmp_path / algo), timesteps=256, num_envs=4, eval_every=128, eval_episodes=4, hparams=hp))
    assert (tmp_path / algo / "agent.zip").is_file() and np.isfinite(r["best_dream_return"])
    agent = load_agent(tmp_path / algo / "agent.zip")
    row = evaluate(agent, "Dream-CartPole-v0", str(tiny_cartpole_model), episodes=2)
    md, js = write_report([row], tmp_path / "report")
    assert "| " in md.read_text() and json.loads(js.read_text())[0]["real"]["episodes"] == 2


def test_sac_on_a_continuous_dream(pixel_model, tmp_path):
    r = train_sb3(SB3Config(algo="sac", env_id="Dream-CarRacing-v0", model=pixel_model, out=str(tmp_path / "sac"), timesteps=64, num_envs=2,
                            eval_every=10_000, eval_episodes=2, hparams={"learning_starts": 16, "batch_size": 16, "buffer_size": 200}))
    assert (tmp_path / "sac" / "last.zip").is_file()


def test_exploit_flag():
    assert exploits_dream({"mean": 500, "std": 0, "episodes": 100}, {"mean": 20, "std": 5, "episodes": 100})
    assert not exploits_dream({"mean": 500, "std": 10, "episodes": 100}, {"mean": 498, "std": 5, "episodes": 100})
    assert "yes" in markdown_table([{"agent": "a", "dream": {"1.0": {"mean": 500, "std": 0, "episodes": 10}}, "real": {"mean": 10, "std": 1, "episodes": 10}, "real_seeds": [0, 9]}])


def test_real_env_cmaes_baseline_spends_its_real_step_budget(tmp_path):
    import json

    from trainers.cmaes import train_cmaes_real
    from trainers.controller import LinearController

    out = train_cmaes_real("CartPole-v1", "cartpole", tmp_path / "real", budget_steps=150, popsize=4, workers=1)
    log = [json.loads(x) for x in (tmp_path / "real" / "log.jsonl").read_text().splitlines()]
    assert out["real_steps"] >= 150 and log[-2]["real_steps"] < 150 if len(log) > 1 else True
    assert all(b["real_steps"] > a["real_steps"] for a, b in zip(log, log[1:]))
    LinearController.load(tmp_path / "real" / "mean")
    again = train_cmaes_real("CartPole-v1", "cartpole", tmp_path / "real", budget_steps=150, popsize=4, workers=1)
    assert again["generations"] == out["generations"]  # resumed: nothing left to spend


def test_cmaes_time_budget_runs_a_generation_per_call_and_resumes(tiny_cartpole_model, tmp_path):
    cfg = CMAESConfig(model=str(tiny_cartpole_model), out=str(tmp_path / "c"), generations=5, popsize=4, rollouts=2, max_episode_steps=20,
                      max_seconds=0.0)
    assert train_cmaes(cfg)["generations"] == 1  # the budget is spent after one generation
    assert train_cmaes(cfg)["generations"] == 2  # a re-run continues
    log = [json.loads(l) for l in (tmp_path / "c" / "log.jsonl").read_text().splitlines()]
    assert [e["generation"] for e in log] == [1, 2]
    assert log[1]["seconds"] >= log[0]["seconds"]  # training time summed over invocations
