"""``gym-dream fit --family mdnrnn``: World Models' VAE (or a standardiser for vectors) and MDN-RNN, stage by stage.

1. vision: a conv VAE on frames (pixel data) or the standardiser's statistics (vector data);
2. encode every observation to its latent mean and log-variance;
3. memory: the MDN-RNN with reward and termination heads, teacher-forced on sequence windows
   (for pixel data each batch samples z ~ N(mu, sigma), as in World Models);
4. the model directory: weights + card, with held-out metrics and a bank of real start latents.
   The weights of the epoch with the best held-out loss are kept. An existing model directory is
   replaced as a whole (:func:`trainers.infra.checkpoints.save_model_dir`): a kill leaves the old model or the new.

Each stage is checkpointed per epoch, atomically, and resumed on re-run. :mod:`trainers.fit.dispatch` holds the options
(:class:`~trainers.fit.dispatch.FitConfig`) and the dispatch by family.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any
import numpy as np
import torch
from gym_dream.models import MDNRNN
from gym_dream.models.members import clip_grad_norm_per_member
from gym_dream.preprocessing import Preprocessing
from gym_dream.spaces import space_from_dict
from trainers.infra.checkpoints import Stage, load_checkpoint, read_record, save_checkpoint, save_model_dir
from trainers.data.dataset import EpisodeDataset
from trainers.fit.vae import encode_all, fit_vae
from trainers.infra.folder_lock import held
from trainers.fit.sequences import HeldOut, data_card, log_data, windows
from trainers.infra.training_log import TrainingLog
from trainers.fit.dispatch import FitConfig

logger = logging.getLogger(__name__)


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
        logger.info(f"starting from the encoder of {init}; the {model.members} members start fresh ({len(mismatched)} tensors)")
        return
    if mismatched:
        raise ValueError(f"Cannot start from {init}: its sizes differ from this fit's ({', '.join(mismatched[:4])}...); "
                         "fit with the same z_dim, hidden, mixtures, head_hidden and vae_channels, or drop init.")
    model.load_state_dict({k: (src[k].to(own[k].dtype) if k != "start_z" else own[k]) for k in own})
    logger.info(f"starting from the weights of {init}")


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
    held_out = HeldOut()
    for i in range(0, len(obs_idx), batch):
        sl = slice(i, i + batch)
        out = _rnn_batch(model, ds, mu, logvar, (obs_idx[sl], act_idx[sl], mask[sl]), False, None, device, weights, termination_logit=True)
        logit = out.pop("termination_logit")  # the head's logits from the same pass: termination accuracy at the dream's 0.5
        held_out.add(out, (logit > 0).cpu().numpy(), ds.terminated[act_idx[sl]], mask[sl])
    model.train()
    return held_out.metrics()


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
                logger.info(f"MDN-RNN stopped after epoch {epoch} of {p['rnn_epochs']} (rnn_minutes={cfg.rnn_minutes}); re-run to continue")
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
                logger.info(
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


def _model(cfg: FitConfig, meta: dict[str, Any], prep: Preprocessing, p: dict[str, Any]) -> MDNRNN:
    """The untrained model of a resolved config ``p`` (started from ``cfg.init``'s weights when given)."""
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
    return model


def _run_hash(cfg: FitConfig, ds: EpisodeDataset, p: dict[str, Any]) -> str:
    """What a checkpoint must match to be resumed: the data, the seed, the sizes. Budgets (epochs) are not part of a
    run's identity: asking for more epochs continues the run."""
    ident = {"data_episodes": len(ds), "data_steps": ds.steps, "seed": cfg.seed, "val_fraction": cfg.val_fraction, "init": cfg.init,
             **{k: v for k, v in p.items() if not k.endswith("_epochs")}, **({"members": cfg.members} if cfg.members != 1 else {}),
             **({"dropout": cfg.dropout} if cfg.dropout else {})}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _fit_vision(model: MDNRNN, ds: EpisodeDataset, train_eps, val_eps, p: dict[str, Any], cfg: FitConfig, checkpoint: Path,
                chash: str, image: bool) -> dict[str, float]:
    """The vision stage: the VAE on frames (its held-out metrics), or the standardiser of vector observations."""
    if image:
        opt = torch.optim.Adam(model.vision.parameters(), lr=p["lr"])
        return fit_vae(model, ds, train_eps, val_eps, p, cfg, Stage(checkpoint, chash, {"vision": model.vision}, {"adam": opt}), opt)
    train_obs = np.concatenate([ds.obs[ds.obs_start[e] : ds.obs_start[e] + ds.lengths[e] + 1] for e in train_eps])
    model.vision.fit(torch.as_tensor(train_obs, device=cfg.device))
    return {}


def _set_start_bank(model: MDNRNN, ds: EpisodeDataset, mu: np.ndarray, train_eps, cfg: FitConfig) -> None:
    """The bank of real start latents: encoded first observations of training episodes."""
    firsts = mu[ds.obs_start[train_eps]]
    rng = np.random.default_rng(cfg.seed)
    model.start_z = torch.as_tensor(firsts[rng.permutation(len(firsts))[: cfg.bank_size]], device=cfg.device)


def fit_mdnrnn(cfg: FitConfig) -> Path:
    """``gym-dream fit`` (``--family mdnrnn``): the VAE (or standardiser) and the MDN-RNN, stage by stage."""
    start = time.time()
    torch.manual_seed(cfg.seed)
    ds = EpisodeDataset(cfg.data, max_episodes=cfg.max_episodes)
    meta = ds.meta
    prep = Preprocessing.from_dict(meta["preprocessing"])
    image = prep.kind == "image"
    p = cfg.resolved(image)
    model = _model(cfg, meta, prep, p)
    train_eps, val_eps = ds.split(cfg.val_fraction, cfg.seed)
    ckpt_dir = Path(cfg.checkpoint_dir or f"{cfg.out}.checkpoints")
    with held(ckpt_dir, "fit"):  # one process per fit: a second copy would interleave its checkpoints
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        chash = _run_hash(cfg, ds, p)
        log_data(ds, train_eps, val_eps)

        vae_ckpt = ckpt_dir / "vae.safetensors"  # absent when the VAE is not trained (vae_epochs 0: e.g. an init's encoder kept)
        vae_metrics = _fit_vision(model, ds, train_eps, val_eps, p, cfg, vae_ckpt, chash, image)
        mu, logvar = encode_all(model, ds, cfg.device)

        rnn_params = [q for n, q in model.named_parameters() if not n.startswith("vision.")]
        opt = torch.optim.Adam(rnn_params, lr=p["lr"])
        stage = Stage(ckpt_dir / "rnn.safetensors", chash, {"model": model}, {"adam": opt})
        record = fit_rnn(model, ds, mu, logvar, train_eps, val_eps, p, cfg, stage, opt, sample=image)
        heldout = evaluate_rnn(model, ds, mu, logvar, val_eps, p["seq_len"], cfg.device, weights=_loss_weights(p)) if len(val_eps) else {}

        _set_start_bank(model, ds, mu, train_eps, cfg)
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
        logger.info(f"wrote {out} in {seconds:.0f} s")
        return out
