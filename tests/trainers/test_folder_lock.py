"""One writer per folder: a second copy of a long job (a duplicated terminal, a scheduler's retry) is refused with the
fix instead of resuming the same run and interleaving its checkpoints with the first's."""

import subprocess
import sys

import pytest

from gym_dream.error import DatasetBusy, FolderBusy
from trainers.infra.folder_lock import hold_folder


def _another_process_holds(folder, job):
    """A separate process that holds ``folder``'s lock until it is killed (a lock of this process would be the same holder)."""
    code = ("import sys, time; from trainers.infra.folder_lock import hold_folder; h = hold_folder(sys.argv[1], sys.argv[2]); "
            "print('held', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder), job], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("job", ["train cmaes", "train ppo", "fit", "planet"])
def test_a_second_writer_is_refused_and_the_lock_dies_with_its_holder(tmp_path, job):
    proc = _another_process_holds(tmp_path / "run", job)
    try:
        with pytest.raises(FolderBusy, match=f"Another gym-dream {job} is writing to .*run: let it finish"):
            hold_folder(tmp_path / "run", job)
    finally:
        proc.kill()
        proc.wait()
    hold_folder(tmp_path / "run", job).close()  # killed (as by kill -9): no stale lock is left behind


def test_cmaes_and_sb3_runs_are_held_while_they_train(tiny_cartpole_model, tmp_path):
    from trainers.agents.cmaes import CMAESConfig, train_cmaes
    from trainers.agents.sb3 import SB3Config, train_sb3

    cmaes = tmp_path / "cmaes"
    proc = _another_process_holds(cmaes, "train cmaes")
    try:
        with pytest.raises(FolderBusy, match="Another gym-dream train cmaes is writing to"):
            train_cmaes(CMAESConfig(model=str(tiny_cartpole_model), out=str(cmaes), generations=1, popsize=4, rollouts=1))
        assert not (cmaes / "mean").exists()  # the refused copy wrote nothing
    finally:
        proc.kill()
        proc.wait()
    assert train_cmaes(CMAESConfig(model=str(tiny_cartpole_model), out=str(cmaes), generations=1, popsize=4, rollouts=1))["generations"] == 1

    ppo = tmp_path / "ppo"
    proc = _another_process_holds(ppo, "train ppo")
    try:
        with pytest.raises(FolderBusy, match="Another gym-dream train ppo is writing to"):
            train_sb3(SB3Config(algo="ppo", model=str(tiny_cartpole_model), out=str(ppo), timesteps=64, num_envs=2, eval_every=64,
                                eval_episodes=1, hparams={"n_steps": 32, "batch_size": 32, "n_epochs": 1}))
        assert not (ppo / "agent.json").exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_fit_is_held_while_it_trains(cartpole_data, tmp_path):
    from trainers.fit.dispatch import FitConfig, fit

    out = tmp_path / "m"
    proc = _another_process_holds(tmp_path / "m.checkpoints", "fit")
    try:
        with pytest.raises(FolderBusy, match="Another gym-dream fit is writing to"):
            fit(FitConfig(data=str(cartpole_data), out=str(out), family="mdnrnn", preset="tiny", rnn_epochs=1))
        assert not out.exists()
    finally:
        proc.kill()
        proc.wait()


def test_a_busy_dataset_is_a_busy_folder():
    assert issubclass(DatasetBusy, FolderBusy)


def test_a_planet_loop_is_held_while_it_runs(tmp_path):
    from trainers.planning.planet_loop import PlaNetConfig, run_planet

    proc = _another_process_holds(tmp_path / "loop", "planet")
    try:
        with pytest.raises(FolderBusy, match="Another gym-dream planet is writing to"):
            run_planet(PlaNetConfig(env_id="Pendulum-v1", env_kwargs={}, out=str(tmp_path / "loop"), preset="tiny", episodes=2, seed_episodes=1))
        assert not (tmp_path / "loop" / "data").exists()
    finally:
        proc.kill()
        proc.wait()
