"""The vision stage of ``fit`` (MDN-RNN family): World Models' conv VAE trained on frames, then every
observation encoded to its latent mean and log-variance. Checkpointed per epoch and resumed (a
:class:`~trainers.infra.checkpoints.Stage`); the weights of the last epoch are kept."""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from gym_dream.models import MDNRNN
from trainers.infra.checkpoints import Stage
from trainers.data.dataset import EpisodeDataset
from trainers.infra.progress import progress
from trainers.infra.training_log import TrainingLog

logger = logging.getLogger(__name__)


def fit_vae(model: MDNRNN, ds: EpisodeDataset, train_eps: np.ndarray, val_eps: np.ndarray, p: dict, cfg, stage: Stage, opt) -> dict[str, float]:
    vae = model.vision
    frames_of = lambda eps: np.concatenate([np.arange(ds.obs_start[e], ds.obs_start[e] + ds.lengths[e] + 1) for e in eps])
    train_idx, val_idx = frames_of(train_eps), frames_of(val_eps)
    record = stage.resume()
    g = torch.Generator(cfg.device).manual_seed(cfg.seed)
    rng = np.random.default_rng([cfg.seed, 1, record["epoch"]])
    val_sub = np.sort(val_idx[np.random.default_rng(cfg.seed).permutation(len(val_idx))[:2048]])
    # the held-out frames alone: when the VAE is kept (no epochs left), the dataset's frames are never all read
    val_frames = ds.observations_at(val_sub) if len(val_sub) else None

    def val_loss() -> dict[str, float]:
        vae.eval()
        tot = {"loss": 0.0, "reconstruction": 0.0, "kl": 0.0}
        with torch.no_grad():
            for i in range(0, len(val_sub), 512):
                x = torch.as_tensor(val_frames[i : i + 512], device=cfg.device)
                out = vae.loss(x, generator=g)
                for k in tot:
                    tot[k] += float(out[k]) * len(x)
        vae.train()
        return {k: v / max(len(val_sub), 1) for k, v in tot.items()}

    with TrainingLog(stage.path.parent, "vae", resume_from=record["epoch"]) as log:  # <checkpoints>/vae_log.csv, tb/vae
        for epoch in range(record["epoch"], p["vae_epochs"]):
            epoch_start = time.time()
            perm = rng.permutation(train_idx)[: cfg.vae_frames or None]
            bar = progress(total=len(perm), desc=f"VAE epoch {epoch + 1}/{p['vae_epochs']}", unit="img")
            run = 0.0
            for i in range(0, len(perm), p["vae_batch"]):
                x = torch.as_tensor(ds.obs[np.sort(perm[i : i + p["vae_batch"]])], device=cfg.device)
                out = vae.loss(x, generator=g)
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()
                loss = float(out["loss"].detach())
                run = 0.98 * run + 0.02 * loss if i else loss
                bar.update(len(x))
                bar.set_postfix(loss=f"{run:.1f}")
            bar.close()
            v = val_loss()
            record["history"].append({"epoch": epoch + 1, "train_loss": run, **{f"val_{k}": x for k, x in v.items()}})
            record["epoch"] = epoch + 1
            record["seconds"] = record.get("seconds", 0.0) + time.time() - epoch_start
            stage.save(record)
            log.write(epoch + 1, **{"train/loss": run, **{f"heldout/{k}": x for k, x in v.items()}}, seconds=record["seconds"])
            logger.info(f"VAE epoch {epoch + 1}/{p['vae_epochs']}: train loss {run:.2f}  held-out loss {v['loss']:.2f} (reconstruction {v['reconstruction']:.2f}, KL {v['kl']:.2f})")
    return val_loss() if len(val_sub) else {}


@torch.no_grad()
def encode_all(model: MDNRNN, ds: EpisodeDataset, device: str, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Every observation's latent mean and log-variance, in order. Reads the frames file by file when they are not in
    memory already (``ds.observation_chunks``), so a dataset whose frames would not fit in memory can be encoded."""
    model.eval()
    mu_all = logvar_all = None
    bar = progress(total=ds.observations, desc="encoding every observation", unit="img")  # minutes for a million frames on a CPU
    for start, chunk in ds.observation_chunks():
        for i in range(0, len(chunk), batch):
            mu, logvar = model.vision.encode(torch.as_tensor(chunk[i : i + batch], device=device))
            if mu_all is None:
                mu_all = np.empty((ds.observations, mu.shape[1]), np.float32)
                logvar_all = np.empty_like(mu_all)
            mu_all[start + i : start + i + len(mu)] = mu.float().cpu().numpy()
            logvar_all[start + i : start + i + len(mu)] = logvar.float().cpu().numpy()
            bar.update(len(mu))
    bar.close()
    model.train()
    return mu_all, logvar_all
