import json
import logging
import pickle
from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import gym_dream
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.agents.controller import LinearController, squash
from trainers.evaluation.evaluate import evaluate, exploits_dream, markdown_table, write_report
from trainers.agents.stored_agent import PickleFormatWarning, load_agent
from trainers.agents.sb3 import DEFAULT_HPARAMS, SB3Config, SB3VecEnv, sb3_kwargs, train_sb3
from trainers.infra.training_log import read_log


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
    assert len(row["real_returns"]) == 3 and np.isclose(np.mean(row["real_returns"]), row["real"]["mean"], atol=0.01)
    assert sum(row["real_lengths"]) == row["real_steps"]


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
    # every dream evaluation is a row of the run's log, the last step evaluated once
    rows = read_log(tmp_path / algo, "dream_eval")
    steps = [row["step"] for row in rows]
    assert steps == [h["step"] for h in r["history"]] and steps == sorted(set(steps)) and steps[0] >= 128 and steps[-1] >= 256
    assert [row["dream_return_mean"] for row in rows] == pytest.approx([h["dream_return_mean"] for h in r["history"]])
    with pytest.warns(PickleFormatWarning, match="can run code"):  # loaded because it was named, and said so
        agent = load_agent(tmp_path / algo / "agent.zip")
    with pytest.raises(FileNotFoundError, match="neither a controller directory"):
        load_agent(tmp_path / algo)  # a directory holding agent.zip: never loaded implicitly
    stored = load_agent(tmp_path / algo / "best")  # the same agent as data (safetensors + JSON): no warning, no pickle
    obs = np.random.default_rng(0).normal(size=(8, *agent.observation_space.shape)).astype(np.float32)
    np.testing.assert_array_equal(stored.predict(obs)[0], agent.predict(obs, deterministic=True)[0])
    # the recipe that made it is stored next to it: the hyper-parameters in effect (defaults merged with the run's)
    recipe = json.loads((tmp_path / algo / "best" / "policy.json").read_text())["recipe"]
    assert recipe["algo"] == algo and recipe["timesteps"] == 256 and recipe["num_envs"] == 4 and recipe["dream_kwargs"] == {}
    assert all(recipe["hparams"][k] == v for k, v in hp.items()) and set(DEFAULT_HPARAMS[algo]) <= set(recipe["hparams"])
    assert json.loads((tmp_path / algo / "agent.json").read_text())["recipe"] == recipe
    row = evaluate(agent, "Dream-CartPole-v0", str(tiny_cartpole_model), episodes=2)
    md, js = write_report([row], tmp_path / "report")
    assert "| " in md.read_text() and json.loads(js.read_text())[0]["real"]["episodes"] == 2


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_sb3_training_resumes_where_it_stopped(algo, tiny_cartpole_model, tmp_path, monkeypatch, caplog):
    import trainers.evaluation.rollout as ev  # where train_sb3 reads its dream evaluations from

    hp = {"dqn": {"learning_starts": 20, "train_freq": 4, "gradient_steps": 2, "buffer_size": 1000},
          "ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1}}[algo]
    out = tmp_path / algo
    cfg = SB3Config(algo=algo, model=str(tiny_cartpole_model), out=str(out), timesteps=256, num_envs=4, eval_every=64, eval_episodes=2, hparams=hp)
    real, calls = ev.dream_episode_returns, []

    def killed_in_the_second_evaluation(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # stopped while evaluating at step 128: the checkpoint of step 64 is what is left
        return real(*args, **kwargs)

    monkeypatch.setattr(ev, "dream_episode_returns", killed_in_the_second_evaluation)
    with pytest.raises(KeyboardInterrupt):
        train_sb3(cfg)
    card = json.loads((out / "agent.json").read_text())
    assert card["trained_steps"] == 64 and not card["finished"]
    monkeypatch.setattr(ev, "dream_episode_returns", real)

    if algo == "dqn":  # the replay buffer of step 64 was kept next to its checkpoint (PPO has none)
        with np.load(out / "replay_buffer.npz") as kept:
            # 16 steps of 4 dreams, less the step whose evaluation made the checkpoint (stored after SB3's callbacks)
            assert int(kept["step"]) == 64 and int(kept["pos"]) == 15 and kept["data/observations"].shape[:2] == (15, 4)
    else:
        assert not (out / "replay_buffer.npz").exists()
    caplog.set_level(logging.INFO, logger="trainers")
    r = train_sb3(cfg)  # the same call again continues from step 64
    assert r["resumed_from"] == 64
    if algo == "dqn":  # with the buffer it had: no refill before the updates resume (a line of the trainers log)
        assert "resumed at step 64 with its replay buffer" in caplog.text
    steps = [row["step"] for row in read_log(out, "dream_eval")]
    assert steps == [h["step"] for h in r["history"]] == [64, 128, 192, 256]
    card = json.loads((out / "agent.json").read_text())
    assert card["trained_steps"] == 256 and card["finished"] and card["recipe"]["timesteps"] == 256
    assert json.loads((out / "best" / "policy.json").read_text())["dream_return"] == max(h["dream_return_mean"] for h in r["history"])

    again = train_sb3(cfg)  # finished: nothing is trained again
    assert again["resumed_from"] == 256 and [h["step"] for h in again["history"]] == steps
    more = train_sb3(replace(cfg, timesteps=320))  # a larger budget trains on from the finished run
    assert more["resumed_from"] == 256 and [h["step"] for h in more["history"]] == [*steps, 320]
    with pytest.raises(ValueError, match=r"other settings \(differing: recipe.hparams\).*another out="):
        train_sb3(replace(cfg, hparams={**hp, "learning_rate": 1e-4}))
    with pytest.raises(ValueError, match=r"other settings \(differing: tau\)"):
        train_sb3(replace(cfg, tau=1.5))


def test_sac_on_a_continuous_dream(pixel_model, tmp_path):
    r = train_sb3(SB3Config(algo="sac", env_id="Dream-CarRacing-v0", model=pixel_model, out=str(tmp_path / "sac"), timesteps=64, num_envs=2,
                            eval_every=10_000, eval_episodes=2, hparams={"learning_starts": 16, "batch_size": 16, "buffer_size": 200}))
    assert (tmp_path / "sac" / "last.zip").is_file()
    with np.load(tmp_path / "sac" / "replay_buffer.npz") as kept:  # all 32 steps of 2 dreams (the run ended: none left out)
        assert int(kept["step"]) == 64 and kept["data/actions"].shape == (32, 2, 3) and not kept["full"]


def test_an_agent_with_a_narrowed_action_box_acts_inside_it_wherever_it_runs(pixel_model, tmp_path):
    from trainers.evaluation.rollout import make_dream_vec
    from trainers.agents.sb3 import narrowed_action_box
    from trainers.agents.stored_agent import load_agent

    out = tmp_path / "sac"
    train_sb3(SB3Config(algo="sac", env_id="Dream-CarRacing-v0", model=pixel_model, out=str(out), timesteps=64, num_envs=2, eval_every=32,
                        eval_episodes=2, hparams={"learning_starts": 16, "batch_size": 16, "buffer_size": 200}, action_high=(1.0, 1.0, 0.1)))
    card = json.loads((out / "agent.json").read_text())
    assert card["recipe"]["action_high"] == [1.0, 1.0, 0.1] and "action_low" not in card["recipe"]
    agent = load_agent(out / "best")  # stored as data, with its box
    assert agent.action_space == gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 0.1], np.float32))
    venv = make_dream_vec("Dream-CarRacing-v0", 64, pixel_model, 1.0)
    obs, _ = venv.reset(seed=0)
    for deterministic in (True, False):
        actions, _ = agent.predict(obs + np.random.default_rng(1).normal(0, 3, obs.shape).astype(obs.dtype), deterministic=deterministic)
        assert venv.single_action_space.contains(actions[0]) and (actions[:, 2] <= 0.1 + 1e-6).all() and (actions[:, 2] >= 0).all()
    venv.close()
    # the same settings continue the run; another box is another run
    with pytest.raises(ValueError, match="recipe.action_high"):
        train_sb3(SB3Config(algo="sac", env_id="Dream-CarRacing-v0", model=pixel_model, out=str(out), timesteps=96, num_envs=2, eval_every=32,
                            eval_episodes=2, hparams={"learning_starts": 16, "batch_size": 16, "buffer_size": 200}, action_high=(1.0, 1.0, 0.2)))
    box = gym.spaces.Box(np.array([-1, 0, 0], np.float32), np.array([1, 1, 1], np.float32))
    assert narrowed_action_box(box) is box
    assert narrowed_action_box(box, low=[-0.5, 0, 0]).low.tolist() == [-0.5, 0, 0]
    for low, high, match in [(None, [1, 1], "has 2 values; this env's actions have 3 dimensions"), (None, [1, 1, 1.5], "must lie inside"),
                             ([-1, 0, 0.5], [1, 1, 0.5], "low < high in every dimension"), ([-2, 0, 0], None, "must lie inside")]:
        with pytest.raises(ValueError, match=match):
            narrowed_action_box(box, low, high)
    with pytest.raises(ValueError, match="narrow a Box action space"):
        narrowed_action_box(gym.spaces.Discrete(3), high=[1])


def test_json_hyper_parameters_name_schedules_and_classes_as_rl_zoo_does():
    import torch

    kw = sb3_kwargs({"learning_rate": "lin_1e-4", "clip_range": 0.2, "n_steps": 8,
                     "policy_kwargs": {"activation_fn": "GELU", "optimizer_class": "torch.optim.AdamW", "net_arch": [8]}})
    assert kw["learning_rate"](1.0) == pytest.approx(1e-4) and kw["learning_rate"](0.25) == pytest.approx(2.5e-5)
    assert kw["learning_rate"](0.0) == pytest.approx(0.0) and kw["clip_range"] == 0.2 and kw["n_steps"] == 8 and kw["policy"] == "MlpPolicy"
    assert kw["policy_kwargs"] == {"activation_fn": torch.nn.GELU, "optimizer_class": torch.optim.AdamW, "net_arch": [8]}
    assert sb3_kwargs({"policy_kwargs": {"activation_fn": "nn.Tanh"}})["policy_kwargs"]["activation_fn"] is torch.nn.Tanh
    assert sb3_kwargs({"policy_kwargs": {"activation_fn": "torch.nn.ReLU"}})["policy_kwargs"]["activation_fn"] is torch.nn.ReLU
    for bad, match in [({"learning_rate": "cos_1e-4"}, "written 'lin_<initial value>'"), ({"clip_range": "lin_x"}, "not a number"),
                       ({"policy_kwargs": {"activation_fn": "os.system"}}, "not a class of torch.nn"),
                       ({"policy_kwargs": {"activation_fn": "Geluu"}}, "name one, e.g. GELU"),
                       ({"policy_kwargs": {"optimizer_class": "torch.nn.Adam"}}, "not a class of torch.optim")]:
        with pytest.raises(ValueError, match=match):
            sb3_kwargs(bad)


def test_dueling_dqn_learns_value_and_advantages_apart_and_is_stored_as_data(tiny_cartpole_model, tmp_path):
    import torch

    from trainers.agents.dueling_dqn import DuelingDQNPolicy, DuelingHead

    head = DuelingHead(4, 3, [8, 6], torch.nn.ReLU)
    x = torch.randn(5, 4)
    q = head(x)  # Q = V + A - mean A: the mean over actions is the value stream, the differences the advantage stream's
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), head.value(head.trunk(x)))
    a = head.advantage(head.trunk(x))
    torch.testing.assert_close(q - q.mean(dim=1, keepdim=True), a - a.mean(dim=1, keepdim=True))
    with pytest.raises(ValueError, match="at least one layer"):
        DuelingHead(4, 3, [], torch.nn.ReLU)
    with pytest.raises(ValueError, match="not a policy of PPO: choose MlpPolicy"):
        sb3_kwargs({"policy": "DuelingMlpPolicy"}, "ppo")
    hp = {"policy": "DuelingMlpPolicy", "learning_starts": 20, "train_freq": 4, "gradient_steps": 2, "buffer_size": 500,
          "policy_kwargs": {"net_arch": [16, 8]}}
    out = tmp_path / "dueling"
    train_sb3(SB3Config(algo="dqn", model=str(tiny_cartpole_model), out=str(out), timesteps=96, num_envs=4, eval_every=48, eval_episodes=2, hparams=hp))
    with pytest.warns(PickleFormatWarning):
        zipped = load_agent(out / "agent.zip")
    assert isinstance(zipped.policy, DuelingDQNPolicy) and isinstance(zipped.policy.q_net_target.q_net, DuelingHead)
    card = json.loads((out / "best" / "policy.json").read_text())
    assert card["policy_class"] == "trainers.agents.dueling_dqn.DuelingDQNPolicy" and card["recipe"]["hparams"]["policy"] == "DuelingMlpPolicy"
    stored = load_agent(out / "best")  # without the target network (left out), acting as the zip does
    assert isinstance(stored.policy.q_net.q_net, DuelingHead)
    obs = np.random.default_rng(1).normal(size=(64, *stored.observation_space.shape)).astype(np.float32)
    np.testing.assert_array_equal(stored.predict(obs)[0], zipped.predict(obs, deterministic=True)[0])


def test_rl_zoo_carracing_ppo_recipe_trains_stores_and_acts_the_same(pixel_model, tmp_path):
    """rl-zoo's CarRacing PPO (gSDE, GELU, a linear learning-rate decay, frame skip 2 as the action hold), from JSON."""
    hp = {"n_steps": 8, "batch_size": 16, "n_epochs": 1, "learning_rate": "lin_1e-4", "use_sde": True, "sde_sample_freq": 4,
          "policy_kwargs": {"log_std_init": -2, "ortho_init": False, "activation_fn": "GELU", "net_arch": {"pi": [16], "vf": [16]}}}
    out = tmp_path / "ppo"
    train_sb3(SB3Config(algo="ppo", env_id="Dream-CarRacing-v0", model=pixel_model, out=str(out), timesteps=32, num_envs=2,
                        eval_every=10_000, eval_episodes=1, hparams=hp, action_hold=2))
    card = json.loads((out / "best" / "policy.json").read_text())
    assert card["recipe"]["hparams"]["learning_rate"] == "lin_1e-4" and card["constructor"]["activation_fn"]["class"].endswith("GELU")
    assert card["constructor"]["use_sde"] is True and card["action_hold"] == 2
    with pytest.warns(PickleFormatWarning):
        zipped = load_agent(out / "agent.zip")
    stored = load_agent(out / "best")
    obs = np.random.default_rng(0).normal(size=(6, *stored.observation_space.shape)).astype(np.float32)
    np.testing.assert_allclose(stored.predict(obs)[0], zipped.predict(obs, deterministic=True)[0], rtol=0, atol=1e-6)
    from multiprocessing.reduction import ForkingPickler  # how a parallel real evaluation sends the agent to its workers

    import torch.multiprocessing  # noqa: F401  (registers torch's reductions, as the process pools do)

    sent = pickle.loads(ForkingPickler.dumps(stored))  # gSDE's exploration matrices once made this fail
    np.testing.assert_allclose(sent.predict(obs)[0], stored.predict(obs)[0], rtol=0, atol=0)


def test_exploit_flag():
    assert exploits_dream({"mean": 500, "std": 0, "episodes": 100}, {"mean": 20, "std": 5, "episodes": 100})
    assert not exploits_dream({"mean": 500, "std": 10, "episodes": 100}, {"mean": 498, "std": 5, "episodes": 100})
    assert "yes" in markdown_table([{"agent": "a", "dream": {"1.0": {"mean": 500, "std": 0, "episodes": 10}}, "real": {"mean": 10, "std": 1, "episodes": 10}, "real_seeds": [0, 9]}])


def test_real_env_cmaes_baseline_spends_its_real_step_budget(tmp_path):
    import json

    from trainers.agents.cmaes import train_cmaes_real
    from trainers.agents.controller import LinearController

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


def test_ou_noise_has_its_stationary_spread_and_stays_in_bounds():
    from trainers.data.noise import OUNoise

    wide = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)
    noise = OUNoise(wide, num_envs=4, sigma=0.1, theta=0.15, seed=0)
    values = np.stack([noise.add(np.zeros((4, 2), np.float32)) for _ in range(20_000)])[1000:]
    assert abs(values.std() - 0.1 / np.sqrt(0.15 * (2 - 0.15))) < 0.02 and abs(values.mean()) < 0.03
    pedals = gym.spaces.Box(np.array([-1.0, 0.0, 0.0], np.float32), np.ones(3, np.float32))
    loud = OUNoise(pedals, num_envs=2, sigma=2.0, seed=1)
    out = np.stack([loud.add(np.zeros((2, 3), np.float32)) for _ in range(50)])
    assert out.min(axis=(0, 1)).tolist() == [-1.0, 0.0, 0.0] and out.max() == 1.0
    with pytest.raises(ValueError, match="Box"):
        OUNoise(gym.spaces.Discrete(2), 1)


def test_agent_with_action_noise_is_reproducible_per_episode_seed(pixel_model):
    """The controller-plus-noise policy of the collection rounds, scored like any agent: the evaluation loops
    restart its noise from each episode's seed, so the same seed gives the same dream episodes, and the
    noise changes what the agent does."""
    from trainers.evaluation.rollout import dream_episode_returns
    from trainers.data.noise import WithActionNoise

    space = gym.make("Dream-CarRacing-v0", model=pixel_model).action_space
    rng = np.random.default_rng(0)
    agent = LinearController(pixel_model.feature_dim, space, rng.normal(0, 0.5, size=3 * (pixel_model.feature_dim + 1)))
    noisy = WithActionNoise(agent, space, sigma=0.3)
    kwargs = dict(dream_id="Dream-CarRacing-v0", model=pixel_model, tau=1.0, episodes=4, seed=7, horizon=30)
    first, again = dream_episode_returns(noisy, **kwargs), dream_episode_returns(noisy, **kwargs)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, dream_episode_returns(agent, **kwargs))
    features = np.zeros(pixel_model.feature_dim, np.float32)
    noisy.begin_episode(3)
    single = [noisy.predict(features)[0] for _ in range(5)]
    noisy.begin_episode(3)
    batch = [noisy.predict(features[None])[0] for _ in range(5)]
    np.testing.assert_array_equal(np.stack(single), np.concatenate(batch))  # one obs or a batch of one: same stream
    assert space.contains(single[-1]) and not np.allclose(single[0], single[-1])


def test_write_report_keeps_dots_in_the_name(tmp_path):
    row = {"agent": "a", "dream": {"1.0": {"mean": 1.0, "std": 0.0, "episodes": 1}}, "real": {"mean": 1.0, "std": 0.0, "episodes": 1},
           "real_seeds": [0, 0]}
    md, js = write_report([row], tmp_path / "carracing_tau1.0_100ep")
    assert (md.name, js.name) == ("carracing_tau1.0_100ep.md", "carracing_tau1.0_100ep.json")
    assert write_report([row], tmp_path / "r.md")[1].name == "r.json"


def test_a_truncated_controller_card_names_the_file_and_the_fix(tmp_path):
    from gym_dream.error import DataFormatError
    from trainers.agents.controller import LinearController

    LinearController(4, gym.spaces.Discrete(2)).save(tmp_path / "c")
    card = tmp_path / "c" / "controller.json"
    card.write_text(card.read_text()[:30])
    with pytest.raises(DataFormatError, match=r"controller.json \(the CMA-ES controller card\) is not valid JSON.*move it aside"):
        LinearController.load(tmp_path / "c")


def test_the_dream_arguments_reach_the_dream_an_agent_trains_in(tiny_cartpole_model, tmp_path):
    """dream_kwargs (e.g. the uncertainty penalty) go to the dream of CMA-ES and of SB3; a one-member model refuses them."""
    from trainers.agents.cmaes import CMAESConfig, train_cmaes

    kwargs = {"uncertainty_penalty": 1.0}
    with pytest.raises(ValueError, match="uncertainty_penalty"):
        train_cmaes(CMAESConfig(model=str(tiny_cartpole_model), out=str(tmp_path / "c"), generations=1, popsize=4, rollouts=1, dream_kwargs=kwargs))
    with pytest.raises(ValueError, match="uncertainty_penalty"):
        train_sb3(SB3Config(algo="ppo", model=str(tiny_cartpole_model), out=str(tmp_path / "p"), timesteps=64, num_envs=2, dream_kwargs=kwargs))


def test_every_shipped_agent_loads_by_name_and_acts_in_its_models_spaces():
    """Agents ship with their model as data (controllers, SB3 policies): found by name, loaded without pickle."""
    import gym_dream
    from gym_dream.agents import find_agent, model_agents

    seen = 0
    for name in gym_dream.available_models():
        model = gym_dream.resolve_model(name)
        for agent_name in model_agents(name):
            agent = load_agent(find_agent(agent_name, name))
            action, _ = agent.predict(np.zeros(model.feature_dim, np.float32))
            assert model.action_space.contains(np.asarray(action, dtype=model.action_space.dtype)), (name, agent_name, action)
            seen += 1
    assert seen >= 7  # CarRacing's five controllers, Doom's controller and PPO


def test_spearman_ranks_with_ties_and_refuses_constants():
    from trainers.evaluation.evaluate import rankdata, spearman

    np.testing.assert_array_equal(rankdata(np.array([3.0, 1.0, 3.0, 2.0])), [2.5, 0.0, 2.5, 1.0])
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [161, 161, 200, 161]) == pytest.approx(np.corrcoef([0, 1, 2, 3], [1, 1, 3, 1])[0, 1])
    assert spearman([1, 1, 1], [1, 2, 3]) is None and spearman([1, 2], [2, 1]) is None
