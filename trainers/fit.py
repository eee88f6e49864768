"""Fit a world model on a collected dataset and write a model directory: a VAE + MDN-RNN (``family``
mdnrnn, this module), PlaNet's RSSM (``family`` rssm, :mod:`trainers.fit_rssm`) or DreamerV3's world model
(``family`` dreamer, :mod:`trainers.fit_dreamer`).

MDN-RNN stages (each checkpointed per epoch, atomically, and resumed on re-run):

1. vision: a conv VAE on frames (pixel data) or the standardiser's statistics (vector data);
2. encode every observation to its latent mean and log-variance;
3. memory: the MDN-RNN with reward and termination heads, teacher-forced on sequence windows
   (for pixel data each batch samples z ~ N(mu, sigma), as in World Models);
4. the model directory: weights + card, with held-out metrics and a bank of real start latents.
   The weights of the epoch with the best held-out loss are kept. An existing model directory is
   replaced as a whole (:func:`trainers.checkpointing.save_model_dir`): a kill leaves the old model or the new.

Out-of-range arguments are refused when the :class:`FitConfig` is made (``trainers.presets.FIT_RANGES``).
"""

from __future__ import annotations

import copy
import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from gym_dream.models import MDNRNN
from gym_dream.models.members import clip_grad_norm_per_member
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict
from trainers.checkpointing import Stage, load_checkpoint, read_record, save_checkpoint, save_model_dir
from trainers.data import EpisodeDataset
from trainers.fit_vae import encode_all, fit_vae
from trainers.folder_lock import held
from trainers.sequences import data_card, windows
from trainers.training_log import TrainingLog
from trainers.presets import DREAMER_ONLY, FIT_RANGES, MDNRNN_ONLY, MDNRNN_PRESETS, RSSM_ONLY, VECTOR_DEFAULTS, check_ranges, preset

#: network sizes and budgets (trainers/presets.py; "tiny" is the one tiny preset)
PRESETS = MDNRNN_PRESETS


@dataclass(frozen=True)
class Fitter:
    """How ``gym-dream fit --family NAME`` fits a family: ``fit(cfg)`` writes ``cfg.out`` and returns its path; ``presets``
    are its named sizes and budgets (``--preset``; "default" at least)."""

    fit: Callable[[Any], Path]
    presets: dict[str, Any]


def _fit_rssm(cfg) -> Path:
    from trainers.fit_rssm import fit_rssm

    return fit_rssm(cfg)


def _fit_dreamer(cfg) -> Path:
    from trainers.fit_dreamer import fit_dreamer

    return fit_dreamer(cfg)


#: family (as written in model cards) -> its fitter; a new family adds itself with :func:`register_fitter`
FITTERS: dict[str, Fitter] = {}


def register_fitter(family: str, fit: Callable[[Any], Path], presets: dict[str, Any]) -> None:
    """Make ``gym-dream fit --family <family>`` run ``fit(cfg)`` (a :class:`FitConfig`), with the ``presets`` it accepts.
    The family's model class is registered in the runtime with :func:`gym_dream.models.register_family`."""
    if not callable(fit) or "default" not in presets:
        raise ValueError(f"register_fitter({family!r}): fit must be callable and presets must name a 'default' preset.")
    FITTERS[family] = Fitter(fit, dict(presets))


def _register_builtin_fitters() -> None:
    from trainers.presets import DREAMER_PRESETS, RSSM_PRESETS

    register_fitter("mdnrnn", fit_mdnrnn, PRESETS)
    register_fitter("rssm", _fit_rssm, {"default": None, **RSSM_PRESETS})
    register_fitter("dreamer", _fit_dreamer, DREAMER_PRESETS)


@dataclass
class FitConfig:
    data: str = "data/cartpole"
    """dataset folder written by `gym-dream collect` (ignored with minari)"""
    minari: str | None = None
    """fit on this local Minari dataset instead (an id such as "cartpole/expert-v0", read from MINARI_DATASETS_PATH; needs
    gym-dream[minari]): converted once into gym-dream shards in <out>.minari/ (reused on re-runs), its real env taken from the
    dataset's env spec"""
    out: str = "models/cartpole"
    """model directory to write (model.json + model.safetensors)"""
    family: str = "mdnrnn"
    """world-model family: mdnrnn (VAE + MDN-RNN, World Models) | rssm (PlaNet's RSSM) | dreamer (DreamerV3's world model:
    discrete latents, symlog, two-hot reward, KL balancing; one set of hyper-parameters for every env), from the same shards"""
    preset: str = "default"
    """network sizes and budgets: default | tiny (rssm also: cpu | planet; dreamer also: small; see trainers/presets.py); fields below
    override it"""
    z_dim: int | None = None
    """latent size of the VAE (pixel data; vector data uses the observation size)"""
    hidden: int | None = None
    """LSTM units (rssm: units of the MLPs around the GRU)"""
    mixtures: int | None = None
    """Gaussians in the MDN"""
    head_hidden: int | None = None
    """hidden units of the reward and termination heads"""
    residual: bool | None = None
    """predict z_{t+1} - z_t (default: on for vector data, off for pixels)"""
    vae_epochs: int | None = None
    """VAE passes over the training frames"""
    rnn_epochs: int | None = None
    """MDN-RNN epochs (one epoch = windows covering the training steps once)"""
    seq_len: int | None = None
    """training window length (transitions)"""
    rnn_batch: int | None = None
    """windows per MDN-RNN batch"""
    vae_batch: int | None = None
    """frames per VAE batch"""
    vae_frames: int | None = None
    """frames per VAE epoch: a fresh random subset of the training frames each epoch (default: all).
    Consecutive frames are nearly identical, so on a CPU a subset per epoch buys coverage cheaply"""
    vae_channels: tuple[int, ...] | None = None
    """conv channels of the VAE encoder (the decoder mirrors them)"""
    lr: float | None = None
    """Adam learning rate"""
    termination_weight: float | None = None
    """weight of the termination (death) loss; rare deaths need more (World Models' Doom used 10)"""
    end_weight: float | None = None
    """weight of each real end against each other step in the termination loss (BCE's pos_weight): the dream
    then ends wherever an end is at least 1 / (1 + end_weight) likely. For ends the frames barely show (CarRacing's
    exits from the playfield), which the head otherwise never predicts and the dream never punishes"""
    rnn_minutes: float | None = None
    """wall-time budget of this invocation's MDN-RNN (or RSSM) stage: stop after the epoch that passes it and
    write the model from the best epoch so far (re-running continues toward rnn_epochs)"""
    deter: int | None = None
    """rssm, dreamer: GRU units of the deterministic path"""
    stoch: int | None = None
    """rssm: size of the stochastic state; dreamer: number of categorical latent variables"""
    classes: int | None = None
    """dreamer: classes of each categorical latent variable"""
    updates: int | None = None
    """rssm, dreamer: updates in all (checkpointed every 100; asking for more continues)"""
    free_nats: float = 3.0
    """rssm: KL below this many nats is not penalised (dreamer: DreamerV3's 1 nat of free bits, fixed)"""
    overshooting: int = 0
    """rssm: latent overshooting distance D (0: off)"""
    grad_clip: float = 1000.0
    """rssm: gradient norm clip (dreamer: its preset's, fixed)"""
    val_fraction: float = 0.1
    """share of episodes held out"""
    bank_size: int = 1024
    """start latents kept for dream resets"""
    members: int = 1
    """dynamics members (LSTM + MDN + heads) sharing the encoder, batched in one tensor dimension; each trains on
    its own shuffle of the same windows in one batched pass, and the card records their held-out disagreement
    (what the dream envs' uncertainty_penalty / uncertainty_limit use). 1: a single model"""
    dropout: float = 0.0
    """with members > 1: 0 makes the members independent networks (an ensemble); p > 0 makes them fixed dropout
    masks (drop probability p) on the memory of one network, trained with a fresh mask per sequence"""
    max_episodes: int | None = None
    """use only the first N episodes of the dataset"""
    init: str | None = None
    """a model directory (same sizes) whose weights the fit starts from: after a further collection round
    the grown dataset is refitted from the previous model in fewer epochs"""
    seed: int = 0
    """seed for splits, initialisation and batches"""
    device: str = "cpu"
    """torch device for training"""
    half: bool = False
    """store the weights as float16"""
    checkpoint_dir: str | None = None
    """where per-epoch checkpoints go (default: <out>.checkpoints)"""
    threads: int | None = None
    """torch CPU threads (default: torch's choice)"""
    extra_card: dict[str, Any] = field(default_factory=dict)
    """extra fields merged into the model card"""

    def __post_init__(self):
        """Refuse out-of-range arguments now, before any work."""
        if self.family not in FITTERS:
            raise ValueError(f"fit --family must be one of {' | '.join(FITTERS)}, got {self.family!r}.")
        presets = FITTERS[self.family].presets
        if self.preset not in presets:
            raise ValueError(f"fit --preset {self.preset!r} is not a {self.family} preset; choose from {' | '.join(presets)}.")
        check_ranges(self, FIT_RANGES, "fit")
        owners = {**{k: "mdnrnn" for k in MDNRNN_ONLY}, **{k: "rssm" for k in RSSM_ONLY}, **{k: "dreamer" for k in DREAMER_ONLY},
                  "overshooting": "rssm"}  # deter, stoch, updates: rssm and dreamer
        other = {"mdnrnn": RSSM_ONLY + DREAMER_ONLY, "rssm": MDNRNN_ONLY + DREAMER_ONLY,
                 "dreamer": MDNRNN_ONLY + ("overshooting",)}.get(self.family, ())
        given = [k for k in other if getattr(self, k) not in (None, 0, 0.0)]
        if given:
            raise ValueError(f"fit --{given[0].replace('_', '-')} is an option of the other family; drop it, or pass --family "
                             f"{owners[given[0]]}.")

    def resolved(self, image: bool) -> dict[str, Any]:
        p = preset(PRESETS, self.preset, "fit")
        if not image and self.preset == "default":
            p.update(VECTOR_DEFAULTS)
        for k in p:
            v = getattr(self, k, None)
            if v is not None:
                p[k] = v
        p["residual"] = (not image) if self.residual is None else self.residual
        return p


def _warm_start(model: MDNRNN, init: str) -> None:
    """Copy every weight of the model at ``init`` into ``model`` (sizes must match; the bank of start latents is rebuilt)."""
    from gym_dream.store import resolve_model

    source = resolve_model(init)
    src, own = source.state_dict(), model.state_dict()
    mismatched = [k for k in own if k != "start_z" and (k not in src or src[k].shape != own[k].shape)]
    if mismatched and model.members > 1 and source.members == 1 and all(not k.startswith("vision.") for k in mismatched):
        # members from a single model: the shared encoder (and whatever else has the same shape) is copied, the
        # members keep their own fresh initialisation, so that they disagree where the data is thin
        model.load_state_dict({k: (src[k].to(own[k].dtype) if k not in mismatched and k != "start_z" else own[k]) for k in own})
        _log(f"starting from the encoder of {init}; the {model.members} members start fresh ({len(mismatched)} tensors)")
        return
    if mismatched:
        raise ValueError(f"Cannot start from {init}: its sizes differ from this fit's ({', '.join(mismatched[:4])}...); "
                         "fit with the same z_dim, hidden, mixtures, head_hidden and vae_channels, or drop init.")
    model.load_state_dict({k: (src[k].to(own[k].dtype) if k != "start_z" else own[k]) for k in own})
    _log(f"starting from the weights of {init}")


def _log(msg: str) -> None:
    print(msg, flush=True)


# -- the memory stage ----------------------------------------------------------------------------
def _loss_weights(p: dict[str, Any]) -> dict[str, float]:
    """The termination loss's weights of a resolved config (``end_weight`` is absent from cards written before it)."""
    return {"termination_weight": p["termination_weight"], "end_weight": p.get("end_weight", 1.0)}


def _rnn_batch(model: MDNRNN, ds: EpisodeDataset, mu: np.ndarray, logvar: np.ndarray, idx: tuple, sample: bool, g: torch.Generator, device: str,
               weights: dict[str, float] | None = None, termination_logit: bool = False) -> dict[str, torch.Tensor]:
    obs_idx, act_idx, mask = idx
    z = torch.as_tensor(mu[obs_idx], device=device)
    if sample:
        std = torch.exp(0.5 * torch.as_tensor(logvar[obs_idx], device=device))
        z = z + std * torch.randn(z.shape, generator=g, device=device)
    return model.sequence_loss(
        z,
        torch.as_tensor(ds.actions[act_idx], device=device),
        torch.as_tensor(ds.rewards[act_idx], device=device),
        torch.as_tensor(ds.terminated[act_idx], device=device),
        torch.as_tensor(mask, dtype=torch.float32, device=device),
        **(weights or {}),
        **({"termination_logit": True} if termination_logit else {}),
    )


@torch.no_grad()
def evaluate_rnn(model: MDNRNN, ds: EpisodeDataset, mu: np.ndarray, logvar: np.ndarray, episodes: np.ndarray, seq_len: int, device: str, batch: int = 256,
                 weights: dict[str, float] | None = None) -> dict[str, float]:
    """Held-out one-step metrics (teacher-forced) over every transition of ``episodes``."""
    model.eval()
    obs_idx, act_idx, mask = windows(ds, episodes, seq_len, None)
    tot: dict[str, float] = {}
    n_total = float(mask.sum())
    correct = hits = ends = false_ends = 0.0
    for i in range(0, len(obs_idx), batch):
        sl = slice(i, i + batch)
        out = _rnn_batch(model, ds, mu, logvar, (obs_idx[sl], act_idx[sl], mask[sl]), False, None, device, weights, termination_logit=True)
        logit = out.pop("termination_logit")  # the head's logits from the same pass: termination accuracy at the dream's 0.5
        n = float(mask[sl].sum())
        for k, v in out.items():
            tot[k] = tot.get(k, 0.0) + float(v) * n
        pred = (logit > 0).cpu().numpy()
        true = ds.terminated[act_idx[sl]]
        correct += float(((pred == true) & mask[sl]).sum())
        hits += float((pred & true & mask[sl]).sum())
        ends += float((true & mask[sl]).sum())
        false_ends += float((pred & ~true & mask[sl]).sum())
    model.train()
    out = {k: v / max(n_total, 1.0) for k, v in tot.items()}
    out["termination_accuracy"] = correct / max(n_total, 1.0)
    # accuracy hides rare deaths: the share of real ends the dream would end at, and its false alarms
    out["termination_recall"] = hits / ends if ends else float("nan")
    out["termination_false_alarm_rate"] = false_ends / max(n_total - ends, 1.0)
    out["transitions"] = int(n_total)
    return out


def fit_rnn(model: MDNRNN, ds: EpisodeDataset, mu, logvar, train_eps, val_eps, p: dict, cfg: FitConfig, stage: Stage, opt, sample: bool) -> dict[str, Any]:
    # clip the memory and the heads separately: the MDN's likelihood gradients grow as its variances
    # shrink, and one shared norm would starve the reward and termination heads
    groups = [
        [q for n, q in model.named_parameters() if n.startswith(("rnn.", "mdn."))],
        [q for n, q in model.named_parameters() if n.startswith(("reward_head.", "termination_head."))],
    ]
    record = stage.resume()
    g = torch.Generator(cfg.device).manual_seed(cfg.seed + 7 + record["epoch"])
    best_state = None
    if record.get("best") is not None and (stage.path.parent / "rnn_best.safetensors").is_file():
        best_holder = copy.deepcopy(model)
        load_checkpoint(stage.path.parent / "rnn_best.safetensors", {"model": best_holder}, {})
        best_state = best_holder.state_dict()
    stage_start, first_epoch = time.time(), record["epoch"]
    with TrainingLog(stage.path.parent, "mdnrnn", resume_from=record["epoch"]) as log:  # <checkpoints>/mdnrnn_log.csv, tb/mdnrnn
        for epoch in range(record["epoch"], p["rnn_epochs"]):
            # at least one epoch per invocation, so a resumed run always makes progress
            if cfg.rnn_minutes is not None and epoch > first_epoch and time.time() - stage_start > 60 * cfg.rnn_minutes:
                _log(f"MDN-RNN stopped after epoch {epoch} of {p['rnn_epochs']} (rnn_minutes={cfg.rnn_minutes}); re-run to continue")
                break
            epoch_start = time.time()
            rng = np.random.default_rng([cfg.seed, 2, epoch])
            obs_idx, act_idx, mask = windows(ds, train_eps, p["seq_len"], rng)
            order = rng.permutation(len(obs_idx))
            if model.members > 1:  # every member its own shuffle of the same windows, (M, windows)
                order = np.stack([order] + [rng.permutation(len(obs_idx)) for _ in range(model.members - 1)])
            tot, nb = {}, 0
            for i in range(0, order.shape[-1], p["rnn_batch"]):
                sl = order[..., i : i + p["rnn_batch"]]
                out = _rnn_batch(model, ds, mu, logvar, (obs_idx[sl], act_idx[sl], mask[sl]), sample, g, cfg.device, _loss_weights(p))
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                for group in groups:
                    clip_grad_norm_per_member(group, 1.0, model.weight_members)
                opt.step()
                for k, v in out.items():
                    tot[k] = tot.get(k, 0.0) + float(v.detach())
                nb += 1
            train = {k: v / nb for k, v in tot.items()}
            val = evaluate_rnn(model, ds, mu, logvar, val_eps, p["seq_len"], cfg.device, weights=_loss_weights(p)) if len(val_eps) else {"loss": train["loss"]}
            record["history"].append({"epoch": epoch + 1, **{f"train_{k}": v for k, v in train.items()}, **{f"val_{k}": v for k, v in val.items()}})
            record["epoch"] = epoch + 1
            record["seconds"] = record.get("seconds", 0.0) + time.time() - epoch_start
            if record.get("best") is None or val["loss"] < record["best"]["val_loss"]:
                record["best"] = {"epoch": epoch + 1, "val_loss": val["loss"]}
                best_state = copy.deepcopy(model.state_dict())
                save_checkpoint(stage.path.parent / "rnn_best.safetensors", {"model": model}, {}, {"epoch": epoch + 1})
            stage.save(record)
            log.write(epoch + 1, **{f"train/{k}": v for k, v in train.items()}, **{f"heldout/{k}": v for k, v in val.items()},
                      seconds=record["seconds"])
            if (epoch + 1) % max(1, p["rnn_epochs"] // 20) == 0 or epoch + 1 == p["rnn_epochs"]:
                _log(
                    f"MDN-RNN epoch {epoch + 1}/{p['rnn_epochs']}: train loss {train['loss']:.3f} (nll {train['nll']:.3f}) "
                    f"held-out loss {val['loss']:.3f} (nll {val.get('nll', float('nan')):.3f}, reward mse {val.get('reward_mse', float('nan')):.4f}, "
                    f"termination acc {val.get('termination_accuracy', float('nan')):.4f}, recall {val.get('termination_recall', float('nan')):.3f})"
                )
    if best_state is not None:
        model.load_state_dict(best_state)
    return record


DISAGREEMENT_QUANTILES = ("50", "90", "95", "99", "99.9")


@torch.no_grad()
def heldout_disagreement(model: MDNRNN, ds: EpisodeDataset, mu: np.ndarray, episodes: np.ndarray, device: str, batch: int = 16) -> dict[str, Any]:
    """The card's ``uncertainty`` section: the members and the distribution of the disagreement ``imagine``
    reports over every held-out real transition, each episode teacher-forced from its first step."""
    out: dict[str, Any] = {"members": model.members, "reward_min": float(ds.rewards.min()), "reward_max": float(ds.rewards.max())}
    if model.members == 1 or not len(episodes):
        return out
    model.eval()
    obs_idx, act_idx, mask = windows(ds, episodes, int(ds.lengths[episodes].max()), None)
    values = []
    for i in range(0, len(obs_idx), batch):
        sl = slice(i, i + batch)
        d = model.sequence_disagreement(torch.as_tensor(mu[obs_idx[sl]], device=device), torch.as_tensor(ds.actions[act_idx[sl]], device=device))
        values.append(d.cpu().numpy()[mask[sl]])
    model.train()
    v = np.concatenate(values).astype(np.float64)
    out["definition"] = "mean over latent dims of the members' std (ddof 0) of the predicted next-latent mean (tau 1)"
    out["heldout_disagreement"] = {
        "transitions": int(v.size), "episodes": int(len(episodes)), "mean": float(v.mean()), "max": float(v.max()),
        "quantiles": {q: float(np.quantile(v, float(q) / 100.0)) for q in DISAGREEMENT_QUANTILES},
    }
    return out


def fit(cfg: FitConfig) -> Path:
    """Fit ``cfg.family`` (its :data:`FITTERS` entry) on ``cfg.data`` (or ``cfg.minari``) and write the model directory;
    returns its path."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.minari:
        from dataclasses import replace

        from trainers.minari_data import minari_to_shards

        cfg = replace(cfg, data=str(minari_to_shards(cfg.minari, f"{cfg.out}.minari")), minari=None)
    return FITTERS[cfg.family].fit(cfg)


def fit_mdnrnn(cfg: FitConfig) -> Path:
    """``gym-dream fit`` (``--family mdnrnn``): the VAE (or standardiser) and the MDN-RNN, stage by stage."""
    start = time.time()
    torch.manual_seed(cfg.seed)
    ds = EpisodeDataset(cfg.data, max_episodes=cfg.max_episodes)
    meta = ds.meta
    prep = Preprocessing.from_dict(meta["preprocessing"])
    image = prep.kind == "image"
    p = cfg.resolved(image)
    model = MDNRNN(
        space_from_dict(meta["observation_space"]),
        space_from_dict(meta["action_space"]),
        prep,
        z_dim=p["z_dim"],
        hidden=p["hidden"],
        mixtures=p["mixtures"],
        head_hidden=p["head_hidden"],
        residual=p["residual"],
        vae_channels=tuple(p["vae_channels"]),
        bank_size=1,
        members=cfg.members,
        dropout=cfg.dropout,
    ).to(cfg.device)
    if cfg.init:
        _warm_start(model, cfg.init)
    train_eps, val_eps = ds.split(cfg.val_fraction, cfg.seed)
    ckpt_dir = Path(cfg.checkpoint_dir or f"{cfg.out}.checkpoints")
    with held(ckpt_dir, "fit"):  # one process per fit: a second copy would interleave its checkpoints
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        # budgets (epochs) are not part of a run's identity: asking for more epochs continues the run
        ident = {"data_episodes": len(ds), "data_steps": ds.steps, "seed": cfg.seed, "val_fraction": cfg.val_fraction, "init": cfg.init,
                 **{k: v for k, v in p.items() if not k.endswith("_epochs")}, **({"members": cfg.members} if cfg.members != 1 else {}),
                 **({"dropout": cfg.dropout} if cfg.dropout else {})}
        chash = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]
        _log(f"data: {len(ds)} episodes, {ds.steps} steps of {meta['env_id']} ({len(train_eps)} train / {len(val_eps)} held-out episodes)")

        vae_metrics: dict[str, float] = {}
        vae_ckpt = ckpt_dir / "vae.safetensors"  # absent when the VAE is not trained (vae_epochs 0: e.g. an init's encoder kept)
        if image:
            opt = torch.optim.Adam(model.vision.parameters(), lr=p["lr"])
            vae_metrics = fit_vae(model, ds, train_eps, val_eps, p, cfg, Stage(vae_ckpt, chash, {"vision": model.vision}, {"adam": opt}), opt)
        else:
            train_obs = np.concatenate([ds.obs[ds.obs_start[e] : ds.obs_start[e] + ds.lengths[e] + 1] for e in train_eps])
            model.vision.fit(torch.as_tensor(train_obs, device=cfg.device))
        mu, logvar = encode_all(model, ds, cfg.device)

        rnn_params = [q for n, q in model.named_parameters() if not n.startswith("vision.")]
        opt = torch.optim.Adam(rnn_params, lr=p["lr"])
        stage = Stage(ckpt_dir / "rnn.safetensors", chash, {"model": model}, {"adam": opt})
        record = fit_rnn(model, ds, mu, logvar, train_eps, val_eps, p, cfg, stage, opt, sample=image)
        heldout = evaluate_rnn(model, ds, mu, logvar, val_eps, p["seq_len"], cfg.device, weights=_loss_weights(p)) if len(val_eps) else {}

        # the bank of real start latents: encoded first observations of training episodes
        firsts = mu[ds.obs_start[train_eps]]
        rng = np.random.default_rng(cfg.seed)
        bank = firsts[rng.permutation(len(firsts))[: cfg.bank_size]]
        model.start_z = torch.as_tensor(bank, device=cfg.device)
        uncertainty = heldout_disagreement(model, ds, mu, val_eps, cfg.device)
        seconds = time.time() - start
        card = {
            **data_card(ds, train_eps, val_eps),
            "training": {
                "preset": cfg.preset, "hyperparameters": p, "seed": cfg.seed, "seconds": round(seconds, 1),  # this invocation
                "epoch_seconds": {"vae": round(read_record(vae_ckpt).get("seconds", 0.0), 1) if vae_ckpt.is_file() else 0.0,
                                  "mdnrnn": round(record.get("seconds", 0.0), 1)},  # summed over resumed invocations
                "device": cfg.device, "torch": torch.__version__, "cpu_threads": torch.get_num_threads(),
                "machine": platform.machine(), "best_epoch": (record.get("best") or {}).get("epoch"),
                "heldout": {"mdnrnn": heldout, "vae": vae_metrics},
            },
            "scores": {},
            "uncertainty": uncertainty,
            **cfg.extra_card,
        }
        out = save_model_dir(model.cpu(), cfg.out, card, half=cfg.half)
        _log(f"wrote {out} in {seconds:.0f} s")
        return out


_register_builtin_fitters()
