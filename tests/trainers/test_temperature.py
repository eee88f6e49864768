import json
import shutil

import gymnasium as gym
import pytest

import gym_dream
from trainers.cli.commands import main as cli_main
from trainers.agents.cmaes import CMAESConfig, train_cmaes
from trainers.agents.sb3 import SB3Config, train_sb3
from trainers.evaluation.calibrate import CalibrateConfig, NoMatchingTau, calibrate_tau, write_tau


@pytest.fixture
def model_dir(tiny_cartpole_model, tmp_path):
    d = tmp_path / "model"
    shutil.copytree(tiny_cartpole_model, d)
    return d


def test_calibrate_picks_the_tau_closest_to_real_random_play_and_writes_the_default(model_dir):
    cal = calibrate_tau(CalibrateConfig(model=str(model_dir), taus=(0.5, 1.0, 3.0), episodes=4, dream_episodes=8, seed=7))
    real = cal["real"]["mean"]
    gaps = {float(t): abs(s["mean"] - real) for t, s in cal["dream"].items()}
    assert set(gaps) == {0.5, 1.0, 3.0} and cal["tau"] == min(gaps, key=gaps.get)
    assert cal["real"]["episodes"] == 4 and cal["real_seeds"] == [7, 10] and all(s["episodes"] == 8 for s in cal["dream"].values())
    # the same measurement again is the same (seeded real and dream episodes)
    assert calibrate_tau(CalibrateConfig(model=str(model_dir), taus=(0.5, 1.0, 3.0), episodes=4, dream_episodes=8, seed=7)) == cal

    before = json.loads((model_dir / "model.json").read_text())
    assert cal["matched"] == (abs(cal["gap"]) <= 3 * cal["gap_se"]) and cal["gap_se"] > 0
    assert cal["gap"] == pytest.approx(cal["dream"][str(cal["tau"])]["mean"] - real)
    with pytest.raises(NoMatchingTau, match="Widen --taus"):  # a dream that differs in more than its randomness: no default
        write_tau(model_dir, {**cal, "matched": False})
    assert "tau" not in (json.loads((model_dir / "model.json").read_text()).get("dream_env") or {})
    cal = {**cal, "matched": True}
    write_tau(model_dir, {**cal, "tau": 2.5})  # a chosen value, to see it flow everywhere
    card = json.loads((model_dir / "model.json").read_text())
    assert card.pop("dream_env") == {**before.pop("dream_env", {}), "tau": 2.5, "tau_calibration": {k: v for k, v in cal.items() if k != "tau"}}
    assert card == before  # nothing else in the card changes
    assert gym.make("Dream-CartPole-v0", model=str(model_dir)).unwrapped.tau == 2.5
    assert gym_dream.resolve_model(str(model_dir)).card["dream_env"]["tau"] == 2.5


def test_trainers_without_a_tau_train_at_the_cards_and_record_it(model_dir, tmp_path):
    card = json.loads((model_dir / "model.json").read_text())
    card.setdefault("dream_env", {})["tau"] = 1.25
    (model_dir / "model.json").write_text(json.dumps(card))
    train_sb3(SB3Config(algo="ppo", model=str(model_dir), out=str(tmp_path / "ppo"), timesteps=128, num_envs=4, eval_every=128,
                        eval_episodes=2, hparams={"n_steps": 32, "batch_size": 64, "n_epochs": 1}))
    assert json.loads((tmp_path / "ppo" / "agent.json").read_text())["tau"] == 1.25
    assert json.loads((tmp_path / "ppo" / "best" / "policy.json").read_text())["tau"] == 1.25
    train_cmaes(CMAESConfig(model=str(model_dir), out=str(tmp_path / "cmaes"), generations=1, popsize=4, rollouts=1, max_episode_steps=10))
    assert json.loads((tmp_path / "cmaes" / "best" / "controller.json").read_text())["tau"] == 1.25


def test_calibrate_command_and_bad_taus(model_dir, capsys, monkeypatch):
    import trainers.evaluation.calibrate as temperature

    argv = ["calibrate", str(model_dir), "--taus", "0.8", "1.6", "--episodes", "3", "--dream-episodes", "4", "--write", str(model_dir)]
    monkeypatch.setattr(temperature, "MATCH_SE", 0.0)  # nothing matches: the table, then a refusal that names the fix
    assert cli_main(argv) == 1
    captured = capsys.readouterr()
    assert "random play, real" in captured.out and "<- closest" in captured.out and "NO MATCH" in captured.out
    assert "Widen --taus" in captured.err and "tau" not in (json.loads((model_dir / "model.json").read_text()).get("dream_env") or {})
    monkeypatch.setattr(temperature, "MATCH_SE", float("inf"))  # the closest always matches: written
    assert cli_main(argv) in (0, None)
    assert "wrote dream_env.tau" in capsys.readouterr().out
    assert json.loads((model_dir / "model.json").read_text())["dream_env"]["tau"] in (0.8, 1.6)
    with pytest.raises(ValueError, match="--taus"):
        calibrate_tau(CalibrateConfig(model=str(model_dir), taus=(1.0, -2.0), episodes=1, dream_episodes=1))


def test_calibrate_under_sampled_termination_records_it_and_writes_it_with_the_tau(model_dir, monkeypatch):
    import trainers.evaluation.calibrate as temperature

    seen = []
    real_dream = temperature.dream_episodes
    monkeypatch.setattr(temperature, "dream_episodes", lambda *a, **k: seen.append(k["termination"]) or real_dream(*a, **k))
    cfg = dict(model=str(model_dir), taus=(0.5, 1.0), episodes=3, dream_episodes=8, seed=7)
    sampled = calibrate_tau(CalibrateConfig(**cfg, termination="sample"))
    assert seen == ["sample", "sample"] and sampled["termination"] == "sample"
    assert "termination=sample" in temperature.calibration_table(sampled)
    plain = calibrate_tau(CalibrateConfig(**cfg))
    assert seen[2:] == [None, None] and "termination" not in plain and plain["real"] == sampled["real"]
    write_tau(model_dir, {**sampled, "matched": True})
    env = json.loads((model_dir / "model.json").read_text())["dream_env"]
    assert env["termination"] == "sample" and env["tau"] == sampled["tau"]
    assert gym.make("Dream-CartPole-v0", model=str(model_dir)).unwrapped.termination == "sample"
    with pytest.raises(ValueError, match="--termination must be one of threshold, sample"):
        calibrate_tau(CalibrateConfig(**cfg, termination="always"))
