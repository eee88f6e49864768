"""TrainingLog: a CSV row per write (header once, flushed, resumable) and TensorBoard when installed."""

from __future__ import annotations

import csv
import math

import pytest

from gym_dream.error import DataFormatError
from trainers.infra.training_log import TrainingLog, read_log


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_rows_are_flushed_as_written_with_one_header(tmp_path):
    with TrainingLog(tmp_path, "fit") as log:
        log.write(1, loss=2.5, acc=0.5)
        rows = _rows(tmp_path / "fit_log.csv")  # readable while the log is open: flushed per row
        assert rows == [["step", "wall_time", "loss", "acc"], ["1", rows[1][1], "2.5", "0.5"]]
        log.write(2, loss=float("nan"))          # a missing scalar is an empty cell, NaN is kept
    assert [r["step"] for r in read_log(tmp_path, "fit")] == [1.0, 2.0]
    second = read_log(tmp_path, "fit")[1]
    assert math.isnan(second["loss"]) and "acc" not in second


def test_a_resumed_run_appends_and_drops_rows_past_its_checkpoint(tmp_path):
    with TrainingLog(tmp_path, "fit") as log:
        for step in (1, 2, 3):
            log.write(step, loss=float(step))
    with open(tmp_path / "fit_log.csv", "a") as f:
        f.write("4,17000,4.")  # killed in the middle of a row
    with TrainingLog(tmp_path, "fit", resume_from=2) as log:  # the checkpoint holds step 2
        log.write(3, loss=30.0)
    rows = _rows(tmp_path / "fit_log.csv")
    assert [r[0] for r in rows] == ["step", "1", "2", "3"] and rows[-1][2] == "30.0"


def test_a_new_scalar_extends_the_header(tmp_path):
    with TrainingLog(tmp_path, "cma") as log:
        log.write(1, best=1.0)
        log.write(2, best=2.0, mean=1.5)
    rows = _rows(tmp_path / "cma_log.csv")
    assert rows[0] == ["step", "wall_time", "best", "mean"]
    assert rows[1][2:] == ["1.0", ""] and rows[2][2:] == ["2.0", "1.5"]


def test_bad_input_is_refused(tmp_path):
    with pytest.raises(ValueError, match="plain file-name"):
        TrainingLog(tmp_path, "a/b")
    with TrainingLog(tmp_path, "x") as log:
        with pytest.raises(TypeError, match="not a number"):
            log.write(1, loss="high")
    (tmp_path / "other_log.csv").write_text("epoch,loss\n1,2\n")
    with pytest.raises(DataFormatError, match="not a training log"):
        TrainingLog(tmp_path, "other")


def test_tensorboard_off_writes_no_event_files(tmp_path):
    with TrainingLog(tmp_path, "fit", tensorboard=False) as log:
        log.write(1, loss=1.0)
        assert log.tensorboard_dir is None
    assert not (tmp_path / "tb").exists()


def test_tensorboard_event_files_when_installed(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TrainingLog(tmp_path, "fit") as log:
        log.write(1, loss=3.0)
        log.write(2, loss=2.0)
    acc = EventAccumulator(str(tmp_path / "tb" / "fit"))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("loss")] == [(1, 3.0), (2, 2.0)]


def test_the_fits_and_cmaes_log_a_row_per_epoch_and_generation(cartpole_data, tmp_path):
    from trainers.agents.cmaes import CMAESConfig, train_cmaes
    from trainers.fit.dispatch import FitConfig, fit

    out = tmp_path / "m"
    fit(FitConfig(data=str(cartpole_data), out=str(out), family="mdnrnn", preset="tiny", rnn_epochs=2, bank_size=4))
    rows = read_log(tmp_path / "m.checkpoints", "mdnrnn")
    assert [r["step"] for r in rows] == [1.0, 2.0] and {"train/loss", "heldout/loss", "heldout/termination_accuracy"} <= set(rows[0])
    fit(FitConfig(data=str(cartpole_data), out=str(out), family="mdnrnn", preset="tiny", rnn_epochs=3, bank_size=4))  # asking for more continues
    assert [r["step"] for r in read_log(tmp_path / "m.checkpoints", "mdnrnn")] == [1.0, 2.0, 3.0]

    cfg = dict(model=str(out), out=str(tmp_path / "cma"), popsize=4, rollouts=1, max_episode_steps=20, seed=0)
    train_cmaes(CMAESConfig(generations=2, **cfg))
    train_cmaes(CMAESConfig(generations=3, **cfg))  # resumed
    rows = read_log(tmp_path / "cma", "cmaes")
    assert [r["step"] for r in rows] == [1.0, 2.0, 3.0] and {"mean_fitness", "best_fitness", "sigma"} <= set(rows[0])


def test_the_vae_fit_logs_each_epoch(tmp_path):
    from trainers.data.collect import CollectConfig, collect
    from trainers.fit.dispatch import FitConfig, fit

    collect(CollectConfig(env_id="CarRacing-v3", out=str(tmp_path / "c"), steps=60, max_episode_steps=30, workers=1, seed=0))
    fit(FitConfig(data=str(tmp_path / "c"), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", vae_epochs=2, rnn_epochs=1, vae_frames=16, bank_size=2))
    rows = read_log(tmp_path / "m.checkpoints", "vae")
    assert [r["step"] for r in rows] == [1.0, 2.0] and {"train/loss", "heldout/reconstruction", "heldout/kl"} <= set(rows[0])


def test_each_collection_round_gets_one_row(tmp_path):
    from trainers.experiment.stages.rounds import _log_round
    from trainers.experiment.workdir import WorkDir

    work = WorkDir(tmp_path)
    _log_round(work, 1, 40.0, {"steps_before": 100, "real_check": {"mean": 30.0, "std": 2.0}})
    _log_round(work, 2, 45.0, {"steps_before": 200})
    _log_round(work, 2, 46.0, {"steps_before": 200, "real_check": {"mean": 35.0, "std": 1.0}})  # a re-run of round 2
    rows = read_log(tmp_path, "rounds")
    assert [(r["step"], r["dream_return"], r["real_return"]) for r in rows] == [(1.0, 40.0, 30.0), (2.0, 46.0, 35.0)]
