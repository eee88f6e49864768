import json

import numpy as np
import pytest
import torch

import gym_dream
from trainers.data.collect import CollectConfig, collect
from trainers.data.dataset import EpisodeDataset
from trainers.fit.dispatch import FitConfig, fit
from trainers.fit.vae import encode_all


def test_tiny_fit_writes_a_loadable_model(tiny_cartpole_model):
    card = json.loads((tiny_cartpole_model / "model.json").read_text())
    assert card["env"]["id"] == "CartPole-v1" and card["data"]["steps"] == 3000
    assert np.isfinite(card["training"]["heldout"]["mdnrnn"]["nll"])
    model = gym_dream.load_model(tiny_cartpole_model)
    assert model.start_z.shape[0] == 16


def test_mdnrnn_loss_falls_on_real_data(cartpole_data, tmp_path):
    fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", rnn_epochs=8))
    hist = json.loads(__import__("safetensors").safe_open(str(tmp_path / "m.checkpoints" / "rnn.safetensors"), "pt").metadata()["record"])["history"]
    assert hist[-1]["train_loss"] < hist[0]["train_loss"] - 0.5
    assert hist[-1]["val_loss"] < hist[0]["val_loss"]


def test_fit_resumes_from_checkpoint(cartpole_data, tmp_path):
    out = str(tmp_path / "m")
    fit(FitConfig(data=str(cartpole_data), out=out, family="mdnrnn", preset="tiny", rnn_epochs=2))
    gym_dream.load_model(out)
    # asking for more epochs continues from epoch 2 instead of starting over
    fit(FitConfig(data=str(cartpole_data), out=out, family="mdnrnn", preset="tiny", rnn_epochs=4))
    import safetensors

    rec = json.loads(safetensors.safe_open(str(tmp_path / "m.checkpoints" / "rnn.safetensors"), "pt").metadata()["record"])
    assert [h["epoch"] for h in rec["history"]] == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="other settings"):
        fit(FitConfig(data=str(cartpole_data), out=out, family="mdnrnn", preset="tiny", rnn_epochs=4, hidden=12))


def test_vae_loss_falls_on_real_frames(tmp_path, monkeypatch):
    pytest.importorskip("Box2D")
    collect(CollectConfig(env_id="CarRacing-v3", out=str(tmp_path / "c"), steps=240, workers=1, max_episode_steps=60))
    out = fit(FitConfig(data=str(tmp_path / "c"), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", vae_epochs=4, rnn_epochs=1, val_fraction=0.25))
    import safetensors

    rec = json.loads(safetensors.safe_open(str(tmp_path / "m.checkpoints" / "vae.safetensors"), "pt").metadata()["record"])
    losses = [h["val_loss"] for h in rec["history"]]
    assert losses[-1] < losses[0]
    model = gym_dream.load_model(out)
    ds = EpisodeDataset(tmp_path / "c")
    mu, logvar = encode_all(model, ds, "cpu")  # frames read file by file
    assert ds._obs is None and mu.shape == (ds.observations, model.z_dim) and np.isfinite(mu).all()
    assert ds.obs.shape[0] == ds.observations  # every frame in memory now: encoding from it gives the same latents
    loaded_mu, loaded_logvar = encode_all(model, ds, "cpu")
    np.testing.assert_array_equal(loaded_mu, mu), np.testing.assert_array_equal(loaded_logvar, logvar)
    # a refit that keeps the VAE never holds every frame (10,000 VizDoom episodes are 44 GB of them)
    monkeypatch.setattr(EpisodeDataset, "obs", property(lambda self: pytest.fail("a fit with the VAE kept read every frame")))
    # members on the encoder of a pixel model, the VAE kept as it is (vae_epochs 0: no VAE checkpoint is ever written)
    members = fit(FitConfig(data=str(tmp_path / "c"), out=str(tmp_path / "m3"), family="mdnrnn", preset="tiny", vae_epochs=0, rnn_epochs=1,
                            val_fraction=0.25, members=3, init=str(out)))
    assert gym_dream.load_model(members).members == 3 and json.loads((members / "model.json").read_text())["uncertainty"]["members"] == 3


def test_training_windows_cover_episode_ends_as_often_as_the_middle():
    """A termination head learns from the last transition of each episode: windows must not skip it."""
    import numpy as np

    from trainers.fit.sequences import windows

    class _DS:  # 50 episodes of 200 steps
        lengths = np.full(50, 200)
        act_start = np.arange(50) * 200
        obs_start = act_start + np.arange(50)

    rng = np.random.default_rng(0)
    last = mid = 0
    for _ in range(20):
        _, act_idx, mask = windows(_DS, np.arange(50), 64, rng)
        steps = (act_idx - _DS.act_start[act_idx // 200])[mask]
        last += int((steps == 199).sum())
        mid += int((steps == 100).sum())
    assert last > 0.5 * mid, (last, mid)


def _rnn_record(checkpoints):
    import safetensors

    return json.loads(safetensors.safe_open(str(checkpoints / "rnn.safetensors"), "pt").metadata()["record"])


def test_rnn_time_budget_writes_a_model_and_the_next_run_continues(cartpole_data, tmp_path):
    out = str(tmp_path / "m")
    fit(FitConfig(data=str(cartpole_data), out=out, family="mdnrnn", preset="tiny", rnn_epochs=4, rnn_minutes=0.0))
    assert [h["epoch"] for h in _rnn_record(tmp_path / "m.checkpoints")["history"]] == [1]  # at least one epoch, then stop
    gym_dream.load_model(out)  # a usable model from the best epoch so far
    fit(FitConfig(data=str(cartpole_data), out=out, family="mdnrnn", preset="tiny", rnn_epochs=4))
    assert [h["epoch"] for h in _rnn_record(tmp_path / "m.checkpoints")["history"]] == [1, 2, 3, 4]


def test_termination_weight_reaches_the_loss_and_the_card(cartpole_data, tmp_path):
    out = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", rnn_epochs=1, termination_weight=10.0))
    card = gym_dream.load_model(out).card
    assert card["training"]["hyperparameters"]["termination_weight"] == 10.0
    h = card["training"]["heldout"]["mdnrnn"]
    assert h["loss"] == pytest.approx(h["nll"] + h["reward_mse"] + 10.0 * h["termination_bce"], rel=1e-4)
    # rare ends are reported on their own: recall on real ends and false alarms elsewhere
    assert 0.0 <= h["termination_recall"] <= 1.0 and 0.0 <= h["termination_false_alarm_rate"] <= 1.0


def test_end_weight_weighs_real_ends_only_and_moves_the_heads_threshold(tiny_cartpole_model):
    """``end_weight`` is BCE's pos_weight: steps that did not end cost the same, each real end costs ``end_weight``
    times more (so the head's optimum moves above 0.5 wherever an end is at least 1 / (1 + end_weight) likely)."""
    torch.manual_seed(0)
    model = gym_dream.load_model(tiny_cartpole_model).float()
    b, t = 3, 5
    z = torch.randn(b, t + 1, model.z_dim)
    actions = torch.randint(0, 2, (b, t))
    rewards, mask = torch.ones(b, t), torch.ones(b, t)
    never = torch.zeros(b, t, dtype=torch.bool)
    ends = never.clone()
    ends[0, -1] = ends[2, 1] = True
    loss = lambda term, w: model.sequence_loss(z, actions, rewards, term, mask, end_weight=w)["termination_bce"]
    with torch.no_grad():
        assert loss(never, 20.0) == pytest.approx(float(loss(never, 1.0)))
    with torch.no_grad():
        _, logits = model.heads(z[:, 1:], model.rnn(torch.cat([z[:, :-1], model.encode_action(actions.reshape(-1)).reshape(b, t, -1)], -1))[0])
        per = torch.nn.functional.binary_cross_entropy_with_logits(logits, ends.float(), reduction="none")
        expect = (per * (1 + 19 * ends.float())).mean()
        assert float(loss(ends, 20.0)) == pytest.approx(float(expect), rel=1e-5)
        assert float(loss(ends, 1.0)) == pytest.approx(float(per.mean()), rel=1e-5)


def test_end_weight_reaches_the_fit_and_the_card(cartpole_data, tmp_path):
    out = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", rnn_epochs=1, end_weight=20.0))
    card = gym_dream.load_model(out).card
    assert card["training"]["hyperparameters"]["end_weight"] == 20.0
    ends = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m1"), family="mdnrnn", preset="tiny", rnn_epochs=1))
    h20, h1 = card["training"]["heldout"]["mdnrnn"], gym_dream.load_model(ends).card["training"]["heldout"]["mdnrnn"]
    # the same seed and data: only the weight on the ends differs, and CartPole ends every episode, so the bce differs
    assert h20["termination_bce"] != pytest.approx(h1["termination_bce"])


def test_fit_can_start_from_a_previous_model(cartpole_data, tiny_cartpole_model, tmp_path):
    """A further collection round refits from the last model: with no epochs the weights are the old ones."""
    out = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m"), family="mdnrnn", preset="tiny", rnn_epochs=0, bank_size=16, init=str(tiny_cartpole_model)))
    old, new = gym_dream.load_model(tiny_cartpole_model).state_dict(), gym_dream.load_model(out).state_dict()
    for k in old:
        if k != "start_z":
            torch.testing.assert_close(new[k], old[k], msg=k)
    with pytest.raises(ValueError, match="sizes differ"):
        fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m2"), family="mdnrnn", preset="tiny", hidden=24, rnn_epochs=0, init=str(tiny_cartpole_model)))


# -- arguments refused at config time -----------------------------------------------------------------
@pytest.mark.parametrize("field, value, flag", [
    ("bank_size", 0, "bank_size"), ("bank_size", -3, "bank_size"), ("seq_len", 0, "seq_len"), ("rnn_batch", 0, "rnn_batch"),
    ("vae_batch", 0, "vae_batch"), ("val_fraction", 1.0, "val_fraction"), ("val_fraction", -0.1, "val_fraction"),
    ("val_fraction", float("nan"), "val_fraction"), ("rnn_epochs", -1, "rnn_epochs"), ("lr", 0.0, "lr"), ("z_dim", 0, "z_dim"),
    ("mixtures", 0, "mixtures"), ("vae_frames", 0, "vae_frames"), ("max_episodes", 0, "max_episodes"), ("family", "gru", "family"),
    ("preset", "huge", "preset"), ("updates", -1, "updates"), ("free_nats", -1.0, "free_nats"),
])
def test_out_of_range_fit_arguments_are_refused_before_any_work(field, value, flag, tmp_path):
    with pytest.raises(ValueError, match=flag) as e:
        FitConfig(data=str(tmp_path / "no-data-needed"), out=str(tmp_path / "m"), **{field: value})
    assert "--" + flag.replace("_", "-") in str(e.value)  # names the option, and the range it takes
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()


def test_an_option_of_the_other_family_is_refused(tmp_path):
    with pytest.raises(ValueError, match="--deter is an option of rssm and dreamer, not of mdnrnn: pass --family rssm"):
        FitConfig(out=str(tmp_path / "m"), family="mdnrnn", deter=32)
    with pytest.raises(ValueError, match="--vae-epochs is an option of mdnrnn, not of rssm: pass --family mdnrnn"):
        FitConfig(out=str(tmp_path / "m"), family="rssm", vae_epochs=3)
    FitConfig(out=str(tmp_path / "m"), family="rssm", deter=32, hidden=16)  # hidden, lr, seq_len, rnn_batch: both families


def test_the_default_family_is_dreamer_and_an_mdnrnn_option_without_a_family_names_the_fix(tmp_path, capsys):
    """``gym-dream fit`` fits dreamer when no family is named; an MDN-RNN option given without ``--family`` is refused
    with the flag that makes it an MDN-RNN fit, before any work; with ``--family mdnrnn`` it is taken."""
    from trainers.cli.commands import main

    assert FitConfig(out=str(tmp_path / "m")).family == "dreamer"
    for args, flag in ((["--vae-epochs", "3"], "--vae-epochs"), (["--init", str(tmp_path)], "--init"),
                       (["--members", "5"], "--members")):
        assert main(["fit", str(tmp_path), "--out", str(tmp_path / "m"), *args]) == 2
        err = capsys.readouterr().err
        assert f"{flag} is an option of mdnrnn" in err and "not of dreamer (the default family): pass --family mdnrnn" in err
        assert not (tmp_path / "m").exists() and not (tmp_path / "m.checkpoints").exists()
    FitConfig(out=str(tmp_path / "m"), family="mdnrnn", vae_epochs=3, members=5)
    FitConfig(out=str(tmp_path / "m"), family="rssm", members=5)  # members: mdnrnn and rssm


def test_fit_bank_size_zero_names_the_fix_on_the_command_line(tmp_path, capsys):
    from trainers.cli.commands import main

    assert main(["fit", str(tmp_path), "--out", str(tmp_path / "m"), "--bank-size", "0"]) == 2
    assert "--bank-size must be an integer >= 1" in capsys.readouterr().err and not (tmp_path / "m").exists()


# -- the model directory is replaced as a whole ---------------------------------------------------------
def _files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_a_crash_while_writing_a_refit_leaves_the_old_model_whole(cartpole_data, tiny_cartpole_model, tmp_path, monkeypatch):
    import gym_dream.checkpoint
    import shutil

    out = tmp_path / "m"
    shutil.copytree(tiny_cartpole_model, out)
    (out / "agents").mkdir()
    (out / "agents" / "note.txt").write_text("mine")
    before = _files(out)
    real_write = gym_dream.checkpoint.atomic_write_bytes

    def crash_at_the_card(path, data, durable=True):
        if path.name == "model.json":
            raise KeyboardInterrupt("killed between the weights and the card")
        real_write(path, data, durable)

    monkeypatch.setattr(gym_dream.checkpoint, "atomic_write_bytes", crash_at_the_card)
    with pytest.raises(KeyboardInterrupt):
        fit(FitConfig(data=str(cartpole_data), out=str(out), family="mdnrnn", preset="tiny", rnn_epochs=1, seed=5, checkpoint_dir=str(tmp_path / "ck")))
    assert _files(out) == before  # the old weights with the old card
    gym_dream.load_model(out)
    monkeypatch.setattr(gym_dream.checkpoint, "atomic_write_bytes", real_write)
    fit(FitConfig(data=str(cartpole_data), out=str(out), family="mdnrnn", preset="tiny", rnn_epochs=1, seed=5, checkpoint_dir=str(tmp_path / "ck")))
    assert _files(out)["model.safetensors"] != before["model.safetensors"] and gym_dream.load_model(out).card["training"]["seed"] == 5
    assert (out / "agents" / "note.txt").read_text() == "mine"  # what the user put in the directory is kept
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.")] == []  # no temporary directory left


_WRITER = """
import sys, torch
from gym_dream.checkpoint import load_model
from trainers.infra.checkpoints import save_model_dir
a, b = load_model(sys.argv[1]), load_model(sys.argv[1])
with torch.no_grad():
    for p in b.parameters():
        p.add_(1.0)
print("ready", flush=True)
i = 0
while True:
    m = (a, b)[i % 2]
    save_model_dir(m, sys.argv[2], {**m.card, "which": "ab"[i % 2]})
    i += 1
"""


def test_a_refit_killed_at_a_random_moment_leaves_a_whole_model(tiny_cartpole_model, tmp_path):
    """kill -9 a process that keeps replacing one model directory with two different models: whenever it dies,
    the directory holds one of them, its weights with its own card."""
    import random
    import signal
    import subprocess
    import sys
    import time

    a = gym_dream.load_model(tiny_cartpole_model).state_dict()
    out = tmp_path / "m"
    rng = random.Random(0)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tiny_cartpole_model), str(out)], stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        model = gym_dream.load_model(out)  # never a weights/card mismatch
        name = next(n for n, _ in model.named_parameters())
        want = a[name] if model.card["which"] == "a" else a[name] + 1.0
        torch.testing.assert_close(model.state_dict()[name], want)


# -- the RSSM family from the same shards ----------------------------------------------------------------
def test_fit_family_rssm_from_collected_shards_makes_a_dream(cartpole_data, tmp_path):
    import gymnasium as gym

    from trainers.cli.commands import main

    out = tmp_path / "rssm"
    assert main(["fit", str(cartpole_data), "--out", str(out), "--family", "rssm", "--preset", "tiny", "--bank-size", "8"]) == 0
    model = gym_dream.load_model(out)
    card = model.card
    assert model.family == "rssm" and model.start_h.shape[0] == 8 and card["training"]["family"] == "rssm"
    assert card["env"]["id"] == "CartPole-v1" and card["data"]["steps"] == 3000 and np.isfinite(card["training"]["heldout"]["rssm"]["loss"])
    env = gym.make("Dream-CartPole-v0", model=str(out), tau=1.0)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (model.feature_dim,)
    env.step(0)
    # resumable like the MDN-RNN fit: asking for more updates continues from the checkpoint
    import safetensors

    record = lambda: json.loads(safetensors.safe_open(str(tmp_path / "rssm.checkpoints" / "rssm.safetensors"), "pt").metadata()["record"])
    assert [h["updates"] for h in record()["history"]] == [30]
    main(["fit", str(cartpole_data), "--out", str(out), "--family", "rssm", "--preset", "tiny", "--bank-size", "8", "--updates", "130"])
    assert [h["updates"] for h in record()["history"]] == [30, 130]
    import csv

    rows = list(csv.DictReader(open(tmp_path / "rssm.checkpoints" / "rssm_log.csv")))  # one row per update block, resumed in place
    assert [int(r["step"]) for r in rows] == [30, 130] and all(np.isfinite(float(r["train_loss"])) for r in rows) and "val_kl" in rows[0]


def test_members_can_start_from_a_single_models_encoder(cartpole_data, tiny_cartpole_model, tmp_path):
    """An ensemble refit from a shipped single model keeps its encoder; the members start fresh, so they can disagree."""
    import torch

    import gym_dream
    from trainers.fit.dispatch import FitConfig, fit

    out = fit(FitConfig(data=str(cartpole_data), out=str(tmp_path / "m3"), family="mdnrnn", preset="tiny", bank_size=16, members=3,
                        init=str(tiny_cartpole_model), vae_epochs=0))
    one, three = gym_dream.resolve_model(str(tiny_cartpole_model)), gym_dream.resolve_model(str(out))
    assert three.members == 3
    shared = [k for k in one.state_dict() if k.startswith("vision.")]
    assert shared and all(torch.equal(one.state_dict()[k], three.state_dict()[k]) for k in shared)
