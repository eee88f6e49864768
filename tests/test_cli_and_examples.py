import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_cli_end_to_end_on_tiny_preset(tmp_path, capsys):
    d, m = tmp_path / "data", tmp_path / "model"
    main(["collect", "--env-id", "CartPole-v1", "--out", str(d), "--steps", "800", "--workers", "1"])
    main(["fit", str(d), "--out", str(m), "--preset", "tiny"])
    main(["train", "cmaes", "--model", str(m), "--out", str(tmp_path / "c"), "--generations", "1", "--popsize", "4", "--rollouts", "2", "--max-episode-steps", "20"])
    main(["train", "ppo", "--model", str(m), "--out", str(tmp_path / "p"), "--timesteps", "128", "--num-envs", "4", "--eval-every", "64", "--eval-episodes", "2",
          "--hparams", '{"n_steps": 16, "batch_size": 32, "n_epochs": 1}'])
    main(["evaluate", str(tmp_path / "c" / "best"), "--model", str(m), "--episodes", "2", "--taus", "0.5", "1.0", "--report", str(tmp_path / "r")])
    main(["evaluate", str(tmp_path / "p" / "agent.zip"), "--model", str(m), "--episodes", "2"])
    main(["dream", "--model", str(m), "--out", str(tmp_path / "d.gif"), "--steps", "5"])
    main(["dream", "--model", str(m), "--out", str(tmp_path / "c.gif"), "--steps", "5", "--compare"])
    main(["list"])
    out = capsys.readouterr().out
    assert (tmp_path / "r.md").is_file() and (tmp_path / "d.gif").stat().st_size > 0 and (tmp_path / "c.gif").is_file()
    assert "Dream-CartPole-v0" in out and "real env CartPole-v1" in out


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
    args = [sys.executable, str(ROOT / "benchmarks" / "dream_check.py"), str(tiny_cartpole_model), "--taus", "1.0",
            "--episodes", "8", "--real-episodes", "3", "--workers", "1", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0"}
    r = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    table = json.loads(out.read_text())
    assert table["real"]["episodes"] == 3 and table["real"]["mean"] > 0
    assert set(table["dream"]) == {"1.0/threshold", "1.0/sample"}
    assert all(row["episodes"] == 8 and row["mean"] > 0 for row in table["dream"].values())


def _world_models():
    import importlib.util

    spec = importlib.util.spec_from_file_location("world_models", ROOT / "benchmarks" / "world_models.py")
    wm = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = wm  # dataclasses look their module up while the file executes
    spec.loader.exec_module(wm)
    return wm


def test_world_models_evaluates_the_controller_the_dream_prefers(tiny_cartpole_model, tmp_path):
    """The evaluate stage scores CMA-ES's 'best' or 'mean' controller, whichever the dream rates higher."""
    import shutil
    from dataclasses import replace

    import numpy as np

    import gym_dream
    from trainers.controller import LinearController

    wm = _world_models()
    e = replace(wm.EXPERIMENTS["doom"], name="cartpole", real_id="CartPole-v1", dream_id="Dream-CartPole-v0", taus=(1.0,), main_tau=1.0,
                episodes=2, sweep_episodes=2, random_episodes=2)
    shutil.copytree(tiny_cartpole_model, tmp_path / "model")
    m = gym_dream.resolve_model(str(tmp_path / "model"))
    always_left = LinearController(m.feature_dim, m.action_space)  # argmax of zeros: action 0 on every step
    leaning = np.zeros(always_left.num_params, np.float32)
    leaning[m.feature_dim + 2] = leaning[m.feature_dim + 3] = 1.0  # push right when the pole falls right
    always_left.save(tmp_path / "cmaes-tau1.0" / "best")
    LinearController(m.feature_dim, m.action_space, leaning).save(tmp_path / "cmaes-tau1.0" / "mean")
    kind, scores = wm.pick_controller(e, tmp_path, 1.0, episodes=16)
    assert set(scores) == {"best", "mean"} and scores["best"] != scores["mean"]
    assert kind == max(scores, key=scores.get)
    wm.stage_evaluate(e, tmp_path, workers=1)
    row = json.loads((tmp_path / "eval-tau1.0.json").read_text())
    chosen = row["selection_dream_returns"]
    assert set(chosen) == {"best", "mean"} and row["controller"] == max(chosen, key=chosen.get) and row["real"]["episodes"] == 2


def test_world_models_adopts_a_shipped_model_and_goes_on_with_the_next_round(tiny_cartpole_model, tmp_path):
    """On a machine without the earlier rounds' work folder, ``adopt`` turns the shipped model and its kept controller
    into round K+1 (K = the rounds in its card); ``iterate`` then collects that round into a fresh dataset, and the
    real steps, rounds and fits behind the model keep counting the adopted ones."""
    import shutil
    from dataclasses import replace

    import gym_dream
    from trainers.controller import LinearController

    wm = _world_models()
    e = replace(wm.EXPERIMENTS["carracing"], name="cartpole", real_id="CartPole-v1", dream_id="Dream-CartPole-v0", taus=(1.0,),
                main_tau=1.0, collect=dict(workers=1, seed=5), iterate=dict(rounds=1, steps=60, sigma=0.1, theta=0.15, check_episodes=1))
    shipped, results, work = tmp_path / "shipped", tmp_path / "results", tmp_path / "work"
    shutil.copytree(tiny_cartpole_model, shipped)
    card = json.loads((shipped / "model.json").read_text())
    earlier = [{"controller": "mean", "selection_dream_returns": {"mean": 10.0}, "tau": 1.0, "steps_before": 100, "target_steps": 150}]
    card["data"]["collection_rounds"] = earlier
    card["training"]["fits_seconds"] = [3.0, card["training"]["seconds"]]
    (shipped / "model.json").write_text(json.dumps(card))
    with pytest.raises(SystemExit, match="run the ship stage"):
        wm.stage_adopt(e, work, shipped=shipped, results=results)
    m = gym_dream.resolve_model(str(shipped))
    LinearController(m.feature_dim, m.action_space).save(results / "cartpole_cmaes_tau1.0")
    wm.stage_adopt(e, work, shipped=shipped, results=results)
    assert [p.name for p in wm._rounds(work)] == ["round-2"]  # numbered after the card's round 1
    info = json.loads((work / "round-2" / "round.json").read_text())
    assert info["adopted"] and info["steps_before"] == 0 and info["target_steps"] == 60 and "mean" in info["selection_dream_returns"]
    assert (work / "round-2" / "cmaes-tau1.0" / "mean" / "controller.json").is_file()
    assert wm._real_steps(work, card) == 2 * card["data"]["steps"]  # the fresh dataset's, plus the adopted model's
    assert [r["target_steps"] for r in wm._all_rounds(work)] == [150, 60]
    wm.stage_adopt(e, work, shipped=shipped, results=results)  # idempotent: already adopted
    wm.stage_iterate(e, work, workers=1)
    info = json.loads((work / "round-2" / "round.json").read_text())
    assert info["real_check"]["episodes"] == 1
    from trainers.data import count_episodes

    assert count_episodes(work / "data")[1] >= 60  # the round's data start a fresh dataset
    occupied = tmp_path / "occupied"
    (occupied / "data").mkdir(parents=True)
    with pytest.raises(SystemExit, match="fresh work folder"):  # never mixes with data a user collected
        wm.stage_adopt(e, occupied, shipped=shipped, results=results)


def test_world_models_seeds_per_tau_and_a_choice_on_real_validation_tracks(tiny_cartpole_model, tmp_path):
    """With several CMA-ES seeds per tau, each tau's row scores the controller the dream rates highest over all runs;
    ``select`` validates each run's pick on real tracks disjoint from the test seeds and scores the winner on the test seeds."""
    import shutil
    from dataclasses import replace

    import numpy as np

    import gym_dream
    from trainers.controller import LinearController

    wm = _world_models()
    e = replace(wm.EXPERIMENTS["carracing"], name="cartpole", real_id="CartPole-v1", dream_id="Dream-CartPole-v0", taus=(1.0,),
                main_tau=1.0, episodes=2, sweep_episodes=2, noise_row={}, cmaes_seeds=(0, 3), select=dict(episodes=2, seed=50))
    shutil.copytree(tiny_cartpole_model, tmp_path / "model")
    m = gym_dream.resolve_model(str(tmp_path / "model"))
    always_left = LinearController(m.feature_dim, m.action_space)
    leaning = np.zeros(always_left.num_params, np.float32)
    leaning[m.feature_dim + 2] = leaning[m.feature_dim + 3] = 1.0
    for kind in ("best", "mean"):
        always_left.save(tmp_path / "cmaes-tau1.0" / kind)
        LinearController(m.feature_dim, m.action_space, leaning).save(tmp_path / "cmaes-tau1.0-seed3" / kind)
    assert wm._controller_dir(tmp_path, 1.0, "seed3/mean") == tmp_path / "cmaes-tau1.0-seed3" / "mean"
    assert wm._controller_dir(tmp_path, 1.0, "mean") == tmp_path / "cmaes-tau1.0" / "mean"
    chosen, scores = wm.pick_controller(e, tmp_path, 1.0, episodes=16)
    assert set(scores) == {"best", "mean", "seed3/best", "seed3/mean"} and chosen == max(scores, key=scores.get)
    wm.stage_evaluate(e, tmp_path, workers=1)
    row = json.loads((tmp_path / "eval-tau1.0.json").read_text())
    assert row["controller"] in scores and "2 seeds" in row["agent"]
    with pytest.raises(SystemExit, match="overlaps the test seeds"):
        wm.stage_select(replace(e, select=dict(episodes=2, seed=1)), tmp_path, workers=1)
    wm.stage_select(e, tmp_path, workers=1)
    state = json.loads((tmp_path / "select.json").read_text())
    assert [c["controller"] for c in state["candidates"]] == ["best", "seed3/best"]  # one per run: its dream pick (a tie: the first)
    assert all(c["real"]["episodes"] == 2 == len(c["real_returns"]) for c in state["candidates"])
    always, lean = state["candidates"]
    assert lean["real"]["mean"] > always["real"]["mean"]  # pushing with the pole beats always pushing left
    selected = json.loads((tmp_path / "eval-selected.json").read_text())
    assert selected["selection"]["chosen"] == lean and selected["selection"]["seeds"] == [50, 51]
    assert selected["controller"] == "seed3/best" and selected["real"]["episodes"] == 2 and selected["real_seeds"] == [0, 1]
    assert selected["selection"]["real_steps"] == sum(c["real_steps"] for c in state["candidates"])
    wm.stage_select(e, tmp_path, workers=1)  # resumable: nothing more to do
    assert json.loads((tmp_path / "select.json").read_text()) == state
    note = wm._selection_note(e, tmp_path, selected)
    assert note.startswith("(***)") and note.count("| tau 1.0,") == 2


def test_world_models_select_among_the_taus_of_the_sweep_then_test_on_fresh_tracks(tiny_cartpole_model, tmp_path):
    """The protocol fixed before CarRacing's round 7: each tau's evaluated row is a candidate, validated on the tracks
    the sweep already drove (its episodes are reused, not driven again); the winner drives fresh test tracks."""
    import shutil
    from dataclasses import replace

    import numpy as np

    import gym_dream
    from trainers.controller import LinearController

    wm = _world_models()
    protocol = dict(episodes=2, seed=0, test_seed=40, candidates="taus")
    e = replace(wm.EXPERIMENTS["carracing"], name="cartpole", real_id="CartPole-v1", dream_id="Dream-CartPole-v0", taus=(0.5, 1.0),
                main_tau=1.0, episodes=2, sweep_episodes=2, noise_row={}, cmaes_seeds=(0,), select=protocol)
    shutil.copytree(tiny_cartpole_model, tmp_path / "model")
    m = gym_dream.resolve_model(str(tmp_path / "model"))
    leaning = np.zeros(m.feature_dim * 2 + 2, np.float32)
    leaning[m.feature_dim + 2] = leaning[m.feature_dim + 3] = 1.0
    for kind in ("best", "mean"):
        LinearController(m.feature_dim, m.action_space).save(tmp_path / "cmaes-tau0.5" / kind)  # always left
        LinearController(m.feature_dim, m.action_space, leaning).save(tmp_path / "cmaes-tau1.0" / kind)
    with pytest.raises(SystemExit, match="run the evaluate stage first"):
        wm.stage_select(e, tmp_path, workers=1)
    with pytest.raises(SystemExit, match="overlaps the test seeds 40..41"):
        wm.stage_select(replace(e, select={**protocol, "seed": 41}), tmp_path, workers=1)
    with pytest.raises(SystemExit, match="choose 'runs'"):
        wm.stage_select(replace(e, select={**protocol, "candidates": "all"}), tmp_path, workers=1)
    wm.stage_evaluate(e, tmp_path, workers=1)
    rows = {t: json.loads((tmp_path / f"eval-tau{t}.json").read_text()) for t in (0.5, 1.0)}
    wm.stage_select(e, tmp_path, workers=1)
    state = json.loads((tmp_path / "select.json").read_text())
    assert [(c["tau"], c["from_row"]) for c in state["candidates"]] == [(0.5, "eval-tau0.5.json"), (1.0, "eval-tau1.0.json")]
    for c in state["candidates"]:
        assert c["real_returns"] == rows[c["tau"]]["real_returns"] and c["real_steps"] == rows[c["tau"]]["real_steps"]
    selected = json.loads((tmp_path / "eval-selected.json").read_text())
    assert selected["selection"]["chosen"]["tau"] == 1.0 and selected["selection"]["kind"] == "taus"
    assert selected["real_seeds"] == [40, 41] and "test tracks seeds 40-41" in selected["agent"]
    # validation seeds the rows did not drive are driven for the choice
    other = tmp_path / "other"
    shutil.copytree(tmp_path, other, ignore=shutil.ignore_patterns("select.json", "eval-selected.json"))
    wm.stage_select(replace(e, select={**protocol, "seed": 10}), other, workers=1)
    again = json.loads((other / "select.json").read_text())["candidates"]
    assert all("from_row" not in c and c["real"]["episodes"] == 2 and c["real_steps"] > 0 for c in again)


def test_reward_check_splits_the_reward_error_by_kind_of_step(tiny_cartpole_model, cartpole_data, tmp_path):
    from trainers.data import count_episodes

    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0"}

    def check(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "reward_check.py"), str(tiny_cartpole_model), str(cartpole_data), *extra],
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
    import importlib.util

    spec = importlib.util.spec_from_file_location("carracing_episodes", ROOT / "benchmarks" / "carracing_episodes.py")
    ce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ce)
    assert ce.outcome(True, -99.9) == "left the playfield" and ce.outcome(True, 3.2) == "lap" and ce.outcome(False, -0.1) == "time limit"
    rows = [{"return": r, "outcome": o, "tiles": t, "track_tiles": 300, "off_road_steps": off}
            for r, o, t, off in [(900.0, "lap", 300, 0), (20.0, "left the playfield", 45, 200), (40.0, "left the playfield", 55, 150)]]
    s = ce.summarize(rows)
    assert s["outcomes"]["left the playfield"] == {"episodes": 2, "mean_return": 30.0, "mean_tile_fraction": 50 / 300}
    assert s["outcomes"]["time limit"]["episodes"] == 0 and s["episodes_off_road"] == 2 and s["mean"] == 320.0
    # the real track, the shipped model and controller, cut to 25 steps: still at the start line, on the road
    got = ce.run_episodes(str(ROOT / "results" / "carracing_cmaes_tau1.15"), "carracing", [3], max_steps=25)
    assert len(got) == 1 and got[0]["outcome"] == "time limit" and got[0]["steps"] == 25 and got[0]["seed"] == 3
    assert 0 < got[0]["tiles"] < got[0]["track_tiles"] and got[0]["off_road_steps"] == 0
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "carracing_episodes.py"), "x", "--model", "carracing", "--seeds", "5", "5"],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode != 0 and "--seeds 5 5 is empty" in r.stderr


def test_dream_ends_counts_where_the_dream_ends_a_controllers_episodes(tiny_cartpole_model, tmp_path):
    """CartPole's dream ends episodes (the pole falls): the share ended, the returns at the ends, the CLI's JSON."""
    import gym_dream
    from trainers.controller import LinearController

    m = gym_dream.resolve_model(str(tiny_cartpole_model))
    LinearController(m.feature_dim, m.action_space).save(tmp_path / "left")  # always pushes left: the pole falls
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GYM_DREAM_PROGRESS": "0"}
    script = str(ROOT / "benchmarks" / "dream_ends.py")
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
