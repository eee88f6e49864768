import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.cli.commands import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("family", [None, "mdnrnn"])
def test_cli_end_to_end_on_tiny_preset(tmp_path, capsys, family):
    """The README's loop; ``fit`` without ``--family`` fits dreamer (the default), and the rest runs alike on both."""
    d, m = tmp_path / "data", tmp_path / "model"
    assert main(["collect", "--env-id", "CartPole-v1", "--out", str(d), "--steps", "800", "--workers", "1"]) == 0
    assert main(["fit", str(d), "--out", str(m), "--preset", "tiny", *(["--family", family] if family else [])]) == 0
    assert json.loads((m / "model.json").read_text())["family"] == (family or "dreamer")
    assert main(["train", "cmaes", "--model", str(m), "--out", str(tmp_path / "c"), "--generations", "1", "--popsize", "4", "--rollouts", "2", "--max-episode-steps", "20"]) == 0
    assert main(["train", "ppo", "--model", str(m), "--out", str(tmp_path / "p"), "--timesteps", "128", "--num-envs", "4", "--eval-every", "64", "--eval-episodes", "2",
          "--hparams", '{"n_steps": 16, "batch_size": 32, "n_epochs": 1}']) == 0
    assert main(["evaluate", str(tmp_path / "c" / "best"), "--model", str(m), "--episodes", "2", "--taus", "0.5", "1.0", "--report", str(tmp_path / "r")]) == 0
    assert main(["evaluate", str(tmp_path / "p" / "agent.zip"), "--model", str(m), "--episodes", "2"]) == 0
    assert main(["dream", "--model", str(m), "--out", str(tmp_path / "d.gif"), "--steps", "5"]) == 0
    assert main(["dream", "--model", str(m), "--out", str(tmp_path / "c.gif"), "--steps", "5", "--compare"]) == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert (tmp_path / "r.md").is_file() and (tmp_path / "d.gif").stat().st_size > 0 and (tmp_path / "c.gif").is_file()
    assert "Dream-CartPole-v0" in out and "real env CartPole-v1" in out


def test_features_gives_a_model_whose_controllers_read_the_cell_state_too(tiny_cartpole_model, tmp_path, capsys):
    """gym-dream features: the same weights seen as [z, c, h]; a controller searched in it scores through the same view
    on the real env; a second copy onto the same folder is refused with the fix, and an RSSM with the reason."""
    from trainers.agents.stored_agent import load_agent

    view = tmp_path / "zch"
    main(["features", str(tiny_cartpole_model), str(view), "--features", "zch"])
    assert f"wrote {view}" in capsys.readouterr().out
    main(["train", "cmaes", "--model", str(view), "--out", str(tmp_path / "c"), "--generations", "1", "--popsize", "4", "--rollouts", "2",
          "--max-episode-steps", "20"])
    controller = load_agent(tmp_path / "c" / "mean")
    hidden = json.loads((view / "model.json").read_text())["params"]["hidden"]
    assert controller.feature_dim == 4 + 2 * hidden  # CartPole's 4 numbers, the cell state and the output
    main(["evaluate", str(tmp_path / "c" / "mean"), "--model", str(view), "--episodes", "2", "--taus", "1.0"])
    assert "| mean | 1.0 |" in capsys.readouterr().out.split("controller in")[-1]  # its row: scored in the dream and the real env
    assert main(["features", str(tiny_cartpole_model), str(view), "--features", "zh"]) == 1
    assert "pass a new directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["features", str(tiny_cartpole_model), str(tmp_path / "x"), "--features", "c"])  # not a choice: argparse says which


def test_cli_help_is_usable(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "collect" in out and "examples" in out
    with pytest.raises(SystemExit):
        main(["train", "cmaes", "--help"])
    out = capsys.readouterr().out
    assert "--popsize" in out and "candidates per generation" in out


EXAMPLES = {
    "sb3_in_dream.py": ["--timesteps", "256", "--episodes", "1"],
    "cmaes_controller.py": ["--generations", "1", "--popsize", "4", "--rollouts", "2", "--episodes", "1"],
    "tau_sweep.py": ["--taus", "0.5", "1.5", "--generations", "1", "--popsize", "4", "--rollouts", "2", "--episodes", "1"],
    "render_dream.py": ["--steps", "5"],
}


@pytest.mark.parametrize("script", sorted(EXAMPLES))
def test_examples_run_on_tiny_model(script, tiny_cartpole_model, tmp_path):
    args = [sys.executable, str(ROOT / "examples" / script), "--model", str(tiny_cartpole_model), *EXAMPLES[script]]
    if script == "render_dream.py":
        args += ["--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0", "SDL_VIDEODRIVER": "dummy"}
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def test_dream_check_compares_random_play_in_dream_and_real(tiny_cartpole_model, tmp_path):
    out = tmp_path / "check.json"
    args = [sys.executable, str(ROOT / "benchmarks" / "ad_hoc" / "dream_check.py"), str(tiny_cartpole_model), "--taus", "1.0",
            "--episodes", "8", "--real-episodes", "3", "--workers", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0"}
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    table = json.loads(out.read_text())
    assert table["real"]["episodes"] == 3 and table["real"]["mean"] > 0
    assert set(table["dream"]) == {"1.0/threshold", "1.0/sample"}
    assert all(row["episodes"] == 8 and row["mean"] > 0 for row in table["dream"].values())


def test_reward_check_splits_the_reward_error_by_kind_of_step(tiny_cartpole_model, cartpole_data, tmp_path):
    from trainers.data.dataset import count_episodes

    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0"}

    def check(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ad_hoc" / "reward_check.py"), str(tiny_cartpole_model), str(cartpole_data), *extra],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    episodes, steps = count_episodes(cartpole_data)
    r = check("--out", str(tmp_path / "none.json"))  # CartPole pays +1 every step: nothing is a penalty
    assert r.returncode == 0, r.stderr[-3000:]
    none = json.loads((tmp_path / "none.json").read_text())
    assert none["episodes"] == episodes and none["steps"] == steps and none["penalties"] == []
    assert none["mse_from_penalties"] == 0 and abs(none["reward_mse"] - none["mse_from_other_steps"]) < 1e-9
    r = check("--penalty", "1.5", "--from-episode", "3", "--out", str(tmp_path / "all.json"))  # every step is one
    assert r.returncode == 0, r.stderr[-3000:]
    every = json.loads((tmp_path / "all.json").read_text())
    assert every["episodes"] == episodes - 3 and len(every["penalties"]) == every["steps"] < steps
    assert abs(every["reward_mse"] - every["mse_from_penalties"]) < 1e-9 and every["worst_other_steps"] == []
    r = check("--from-episode", "100000")
    assert r.returncode != 0 and "No episodes from index 100000" in r.stderr


def test_carracing_episodes_names_how_each_episode_ended(tmp_path):
    from benchmarks.ad_hoc import carracing_episodes as ce

    assert ce.outcome(True, -99.9) == "left the playfield" and ce.outcome(True, 3.2) == "lap" and ce.outcome(False, -0.1) == "time limit"
    rows = [{"return": r, "outcome": o, "tiles": t, "track_tiles": 300, "off_road_steps": off}
            for r, o, t, off in [(900.0, "lap", 300, 0), (20.0, "left the playfield", 45, 200), (40.0, "left the playfield", 55, 150)]]
    s = ce.summarize(rows)
    assert s["outcomes"]["left the playfield"] == {"episodes": 2, "mean_return": 30.0, "mean_tile_fraction": 50 / 300}
    assert s["outcomes"]["time limit"]["episodes"] == 0 and s["episodes_off_road"] == 2 and s["mean"] == 320.0
    # the real track, the shipped model and controller, cut to 25 steps: still at the start line, on the road
    got = ce.run_episodes(str(ROOT / "gym_dream" / "bundled" / "carracing" / "agents" / "cmaes-tau1.15"), "carracing", [3], max_steps=25)
    assert len(got) == 1 and got[0]["outcome"] == "time limit" and got[0]["steps"] == 25 and got[0]["seed"] == 3
    assert 0 < got[0]["tiles"] < got[0]["track_tiles"] and got[0]["off_road_steps"] == 0
    # any stored agent, not only a controller: the shipped PPO policy (it holds each action 2 steps, as trained)
    got = ce.run_episodes(str(ROOT / "gym_dream" / "bundled" / "carracing" / "agents" / "ppo-tau1.7"), "carracing", [3], max_steps=25)
    assert got[0]["steps"] == 25 and got[0]["outcome"] == "time limit" and got[0]["tiles"] > 0
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ad_hoc" / "carracing_episodes.py"), "x", "--model", "carracing", "--seeds", "5", "5"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode != 0 and "--seeds 5 5 is empty" in r.stderr


def test_dream_ends_counts_where_the_dream_ends_a_controllers_episodes(tiny_cartpole_model, tmp_path):
    """CartPole's dream ends episodes (the pole falls): the share ended, the returns at the ends, the CLI's JSON."""
    import gym_dream
    from trainers.agents.controller import LinearController

    m = gym_dream.resolve_model(str(tiny_cartpole_model))
    LinearController(m.feature_dim, m.action_space).save(tmp_path / "left")  # always pushes left: the pole falls
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0"}
    script = str(ROOT / "benchmarks" / "ad_hoc" / "dream_ends.py")
    r = subprocess.run([sys.executable, script, "--models", str(tiny_cartpole_model), "--controllers", str(tmp_path / "left"),
                        "--env-id", "Dream-CartPole-v0", "--taus", "1.0", "--episodes", "8", "--horizon", "200", "--out", str(tmp_path / "ends.json")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (row,) = json.loads((tmp_path / "ends.json").read_text())["rows"]
    assert row["episodes"] == 8 and row["horizon"] == 200 and 0.0 <= row["ended"] <= 1.0
    assert len(row["returns_at_ends"]) == len(row["end_step_rewards"]) == round(8 * row["ended"])
    if row["ended"]:
        assert 1 <= row["mean_end_step"] <= 200
    r = subprocess.run([sys.executable, script, "--models", str(tiny_cartpole_model), "--controllers", str(tmp_path / "none"),
                        "--env-id", "Dream-CartPole-v0"], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "no controller at" in r.stderr


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("args, code, match", [
    (["collect", "--env-id", "NoSuchEnv-v0", "--out", "{tmp}/d"], 2, "Cannot make the real env 'NoSuchEnv-v0'"),
    (["collect", "--steps", "-5", "--out", "{tmp}/d"], 2, "--steps must be an integer >= 1"),
    (["export", "{tmp}", "--env-id", "CartPole-v1", "--name", "dream-x", "--out", "{tmp}/o"], 2, "must start with 'Dream-'"),
    (["dream", "--model", "no-such-model", "--out", "{tmp}/x.gif"], 2, "No world model named 'no-such-model'"),
    (["fit", "{tmp}/nothing-here", "--out", "{tmp}/m"], 1, "nothing-here"),
])
def test_user_errors_print_one_line_and_exit_non_zero(tmp_path, capsys, args, code, match):
    """Issue 21 item 12: a 12-29 line traceback for every user error, before."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert main(args) == code
    err = _one_line_error(capsys)
    assert err.startswith(f"gym-dream {args[0]}: error: ") and match in err and "--debug" in err
    assert not (tmp_path / "d").exists()  # a refused collect leaves no folder behind
    with pytest.raises(Exception, match=match.replace("(", r"\(").replace("[", r"\[")):
        main([*args, "--debug"])  # --debug: the traceback


def test_a_truncated_shard_fails_fit_and_collect_in_one_line_naming_it(tmp_path, capsys):
    from trainers.data.dataset import shard_paths

    data = tmp_path / "d"
    assert main(["collect", "--env-id", "CartPole-v1", "--out", str(data), "--steps", "300", "--workers", "1", "--shard-steps", "100"]) == 0
    shard = shard_paths(data)[0]
    shard.write_bytes(shard.read_bytes()[:100])
    capsys.readouterr()
    for args in (["fit", str(data), "--out", str(tmp_path / "m"), "--preset", "tiny"],
                 ["collect", "--env-id", "CartPole-v1", "--out", str(data), "--steps", "600"]):
        assert main(args) == 1
        err = _one_line_error(capsys)
        assert shard.name in err and "truncated or damaged" in err and "mv " in err


def test_a_bug_still_shows_its_traceback(monkeypatch):
    """Only errors a user can act on are shortened: a ValueError from inside a library is a bug's traceback."""
    import numpy as np

    import trainers.cli.commands as cli

    monkeypatch.setattr(cli, "_cmd_list", lambda ns: np.zeros(2).reshape(3))
    with pytest.raises(ValueError, match="reshape"):
        cli.main(["list"])
    monkeypatch.setattr(cli, "_cmd_list", lambda ns: {}["missing"])
    with pytest.raises(KeyError):
        cli.main(["list"])


def test_dream_temperature_scores_the_candidates_vote_and_ships_it(tiny_cartpole_model, tmp_path):
    from gym_dream.agents import model_agents
    from trainers.agents.stored_agent import load_agent

    model = tmp_path / "model"
    shutil.copytree(tiny_cartpole_model, model)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    args = [sys.executable, str(ROOT / "benchmarks" / "dream_temperature.py"), "--dream-id", "Dream-CartPole-v0", "--model", str(model),
            "--algos", "ppo", "--taus", "1.0", "--agent-seeds", "0", "1", "--timesteps", "256", "--eval-every", "128", "--eval-episodes", "2",
            "--hparams", '{"ppo": {"n_steps": 16, "batch_size": 32, "n_epochs": 1}}', "--calibration-taus", "1.0",
            "--calibration-episodes", "2", "--calibration-dream-episodes", "4", "--dream-episodes", "4", "--episodes", "2",
            "--final-episodes", "3", "--jobs", "1", "--workers", "1", "--ensembles", "calibrated", "all",
            "--ship", "ppo", "--ship-rule", "ensemble-calibrated", "--ship-to", str(model), "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    table = json.loads((tmp_path / "out.json").read_text())
    votes = {e["pool"]: e for e in table["ensembles"]}
    assert set(votes) == {"calibrated", "all"} and len(votes["all"]["members"]) == 2
    assert votes["all"]["real"]["episodes"] == 3 and votes["all"]["validation"]["episodes"] == 2
    assert votes["all"]["real"] == votes["calibrated"]["real"]  # the same agents in both pools: scored once
    assert "Ensembles" in (tmp_path / "out.md").read_text()
    shipped = model_agents(str(model))["ppo-vote-tau1.0"]
    assert shipped["members"] == 2 and shipped["real"] == votes["calibrated"]["real"]
    assert len(load_agent(model / "agents" / "ppo-vote-tau1.0").members) == 2


def test_action_profile_reports_how_an_agent_uses_each_action_and_caps_one():
    import numpy as np

    from benchmarks.ad_hoc import action_profile as ap
    from gym_dream.agents import agent_path
    from trainers.agents.stored_agent import load_agent

    agent = load_agent(agent_path("cmaes-tau1.15", "carracing"))
    row = ap.profile(agent, "Dream-CarRacing-v0", 1.15, envs=4, steps=5, seed=0)
    assert row["steps"] == 20 and len(row["mean"]) == 3 and all(0 <= f <= 1 for f in row["near_low"] + row["near_high"])
    capped = ap.Capped(agent, 1, 0.25)
    obs = np.random.default_rng(0).normal(size=(8, agent.feature_dim)).astype(np.float32)
    full, _ = agent.predict(obs)
    got, _ = capped.predict(obs)
    np.testing.assert_array_equal(got[:, [0, 2]], full[:, [0, 2]])
    assert (got[:, 1] == np.minimum(full[:, 1], 0.25)).all() and (full[:, 1] > 0.25).any()
    with pytest.raises(SystemExit, match="continuous"):
        ap.profile(agent, "Dream-CartPole-v0", 1.0, envs=2, steps=1, seed=0)


def _real_report(folder, name, seeds, returns):
    """A report as ``gym-dream evaluate --report`` writes it, with only the fields the comparisons read."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps([{"agent": name, "real_seeds": seeds, "real_returns": returns}]))
    return path


def test_paired_compares_two_reports_episode_by_episode(tmp_path):
    import trainers.evaluation.pooling as pd

    report = functools.partial(_real_report, tmp_path)
    a, b = report("a", [5, 7], [10.0, 30.0, 20.0]), report("b", [5, 7], [4.0, 20.0, 18.0])
    r = pd.paired(a, b)  # differences 6, 10, 2: mean 6, std (ddof 1) 4, standard error 4 / sqrt(3)
    assert r["difference"] == 6.0 and r["standard_error"] == round(4 / 3**0.5, 1) and r["episodes"] == 3
    with pytest.raises(ValueError, match="same episodes"):
        pd.paired(a, report("c", [6, 8], [1.0, 2.0, 3.0]))


def test_paired_pools_several_pairs_and_counts_each_episode_once(tmp_path):
    import trainers.evaluation.pooling as pd

    report = functools.partial(_real_report, tmp_path)
    a, b = report("a", [5, 7], [10.0, 30.0, 20.0]), report("b", [5, 7], [4.0, 20.0, 18.0])
    a2, b2 = report("a2", [9, 10], [1.0, 8.0]), report("b2", [9, 10], [3.0, 0.0])
    r = pd.paired(a, b, a2, b2)  # differences 6, 10, 2, -2, 8: mean 4.8, std (ddof 1) sqrt(92.8 / 4), over sqrt(5)
    assert r["pairs"] == 2 and r["episodes"] == 5 and r["difference"] == 4.8
    assert r["standard_error"] == round((92.8 / 4) ** 0.5 / 5**0.5, 1) and r["mean_a"] == round(69 / 5, 1)
    with pytest.raises(ValueError, match="counts once"):
        pd.paired(a, b, a, b)
    with pytest.raises(ValueError, match="in pairs"):
        pd.paired(a, b, a2)


def test_pooled_counts_each_episode_of_one_agents_reports_once(tmp_path):
    import trainers.evaluation.pooling as pl

    report = functools.partial(_real_report, tmp_path)
    a, b = report("a", [0, 1], [10.0, 30.0]), report("b", [10, 11], [20.0, 40.0])
    r = pl.pooled([b, a])  # 10, 30, 20, 40: mean 25, std (ddof 1) sqrt(500 / 3), standard error that / 2
    assert r["mean"] == 25.0 and r["standard_error"] == round((500 / 3) ** 0.5 / 2, 1) and r["episodes"] == 4
    assert r["seeds"] == [(0, 1), (10, 11)]
    with pytest.raises(ValueError, match="overlap"):
        pl.pooled([a, report("c", [1, 2], [1.0, 2.0])])


def test_round_dream_check_puts_agents_side_by_side_in_several_dreams(tiny_cartpole_model, tmp_path):
    import math

    import gym_dream
    from trainers.agents.controller import LinearController

    m = gym_dream.resolve_model(str(tiny_cartpole_model))
    LinearController(m.feature_dim, m.action_space).save(tmp_path / "c", {"model": str(tiny_cartpole_model)})
    out = tmp_path / "check.json"
    args = [sys.executable, str(ROOT / "benchmarks" / "ad_hoc" / "round_dream_check.py"), "--env-id", "Dream-CartPole-v0", "--models",
            str(tiny_cartpole_model), str(tiny_cartpole_model), "--agents", str(tmp_path / "c"), "--tau", "1.0", "--episodes", "4",
            "--out", str(out)]
    r = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["agent"] for row in rows] == ["random", str(tmp_path / "c")] * 2
    assert rows[0] == rows[2] and rows[1] == rows[3]  # the same model twice: the same dreams, episode for episode
    assert all(row["episodes"] == 4 and math.isfinite(row["mean"]) and row["model"] == str(tiny_cartpole_model) for row in rows)


def test_dataset_profile_splits_a_dataset_by_episode(cartpole_data, tmp_path):
    from trainers.data.dataset import EpisodeDataset

    out = tmp_path / "profile.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ad_hoc" / "dataset_profile.py"), str(cartpole_data), "--parts", ":5", "5:",
                        "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    first, rest = json.loads(out.read_text())["rows"]
    ds = EpisodeDataset(cartpole_data)
    assert first["episodes"] == [0, 5] and rest["episodes"] == [5, len(ds)]
    assert first["steps"] + rest["steps"] == ds.steps and first["steps"] == sum(ds.lengths[:5])
    assert sum(first["action_shares"]) == pytest.approx(1.0) and len(first["action_shares"]) == 2


def test_dream_rank_orders_agents_by_dream_return_and_votes_the_best(tiny_cartpole_model, tmp_path):
    import numpy as np

    import gym_dream
    from trainers.agents.controller import LinearController
    from trainers.evaluation.rollout import dream_episode_returns
    from trainers.agents.stored_agent import load_agent

    m = gym_dream.resolve_model(str(tiny_cartpole_model))
    rng = np.random.default_rng(0)
    agents = []
    for k in range(3):
        c = LinearController(m.feature_dim, m.action_space, rng.normal(size=LinearController(m.feature_dim, m.action_space).num_params))
        agents.append(str(c.save(tmp_path / f"c{k}", {"model": str(tiny_cartpole_model)})))
    script = str(ROOT / "benchmarks" / "ad_hoc" / "dream_rank.py")
    common = ["--dream-id", "Dream-CartPole-v0", "--model", str(tiny_cartpole_model), "--tau", "1.0", "--episodes", "6", "--seed", "3"]
    r = subprocess.run([sys.executable, script, *agents, *common, "--keep", "2", "--ensemble", str(tmp_path / "vote"),
                        "--out", str(tmp_path / "rank")], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "rank.json").read_text())
    means = {a: dream_episode_returns(load_agent(a), "Dream-CartPole-v0", str(tiny_cartpole_model), 1.0, 6, seed=3).mean() for a in agents}
    ranked = [row["agent"] for row in report["ranked"]]
    assert sorted(ranked) == sorted(agents) and ranked == sorted(agents, key=lambda a: -means[a])
    assert [row["dream_mean"] for row in report["ranked"]] == pytest.approx([means[a] for a in ranked])
    assert report["kept"] == ranked[:2] and len(load_agent(tmp_path / "vote").members) == 2
    r = subprocess.run([sys.executable, script, *agents, *common, "--keep", "2", "--out", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode != 0 and "--keep and --ensemble go together" in r.stderr


def test_sac_update_cost_times_gradient_steps_on_the_dreams_own_transitions(tmp_path, monkeypatch, capsys):
    from benchmarks.ad_hoc import sac_update_cost as bench

    assert bench.update_cost("Dream-CarRacing-v0", [8], 2, steps=3, repeats=1, batch_size=32) > 0  # milliseconds (no timing asserted)
    monkeypatch.setattr(bench, "SHAPES", [([8], 2)])
    monkeypatch.setattr("sys.argv", ["sac_update_cost.py", "--steps", "2", "--repeats", "1", "--out", str(tmp_path / "cost")])
    bench.main()
    report = json.loads((tmp_path / "cost.json").read_text())
    assert report["rows"][0]["net_arch"] == [8] and report["rows"][0]["ms_per_gradient_step"] > 0
    assert report["command"].startswith("python benchmarks/ad_hoc/sac_update_cost.py") and "| 8 | 2 |" in (tmp_path / "cost.md").read_text()
