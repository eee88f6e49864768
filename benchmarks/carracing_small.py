"""CarRacing-v3 end to end at small scale: collect (brownian policy, 2 workers) -> VAE -> MDN-RNN -> model,
then a picture of held-out real frames next to their VAE reconstructions.

    python benchmarks/carracing_small.py                 # ~5 minutes on 2 CPU cores
    python benchmarks/carracing_small.py --steps 20000 --vae-epochs 10   # bigger

Writes results/carracing_small.{json,md} and results/carracing_vae_reconstructions.png. Re-running
resumes collection and fitting.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch


import gym_dream
from trainers.data.collect import CollectConfig, collect
from trainers.data.dataset import EpisodeDataset
from trainers.fit.dispatch import FitConfig, fit
from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "results"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--vae-epochs", type=int, default=6)
    p.add_argument("--rnn-epochs", type=int, default=10)
    p.add_argument("--work", default=str(ROOT / "runs" / "carracing-small"))
    a = p.parse_args()
    work = Path(a.work)
    t0 = time.time()
    c = collect(CollectConfig(env_id="CarRacing-v3", out=str(work / "data"), steps=a.steps, workers=2, seed=0))
    collect_s = time.time() - t0
    t0 = time.time()
    model_dir = fit(FitConfig(data=str(work / "data"), out=str(work / "model"), family="mdnrnn", vae_epochs=a.vae_epochs, rnn_epochs=a.rnn_epochs, seq_len=100, rnn_batch=16))
    fit_s = time.time() - t0
    card = json.loads((model_dir / "model.json").read_text())
    model = gym_dream.load_model(model_dir)

    # held-out frames (the fit's own split) next to their reconstructions
    ds = EpisodeDataset(work / "data")
    from trainers.fit.dispatch import FitConfig as _F  # same split as the fit

    _, val = ds.split(_F().val_fraction, 0)
    rng = np.random.default_rng(0)
    eps = val if len(val) else np.arange(len(ds))
    idx = np.array([ds.obs_start[e] + rng.integers(0, ds.lengths[e] + 1) for e in rng.choice(eps, 8)])
    frames = torch.as_tensor(ds.obs[idx])
    with torch.no_grad():
        mu, _ = model.vision.encode(frames)
        recon = (model.vision.decode(mu) * 255).round().clamp(0, 255).to(torch.uint8).numpy()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 8, figsize=(16, 4.4))
    for i in range(8):
        axes[0, i].imshow(ds.obs[idx[i]])
        axes[1, i].imshow(recon[i])
        for r in (0, 1):
            axes[r, i].axis("off")
    axes[0, 0].set_title("real (64x64)", loc="left")
    axes[1, 0].set_title("VAE reconstruction", loc="left")
    fig.suptitle(f"CarRacing-v3 held-out frames vs VAE (z={model.z_dim}) after {a.vae_epochs} epochs on {c['steps']} frames")
    fig.tight_layout()
    RESULTS.mkdir(exist_ok=True)
    fig.savefig(RESULTS / "carracing_vae_reconstructions.png", dpi=80)
    h = card["training"]["heldout"]
    res = {"command": "python benchmarks/carracing_small.py", "real_steps": c["steps"], "episodes": c["episodes"],
           "collect_seconds": round(collect_s, 1), "fit_seconds": round(fit_s, 1), "heldout": h}
    (RESULTS / "carracing_small.json").write_text(json.dumps({**res, "provenance": provenance()}, indent=2) + "\n")
    md = [
        "# CarRacing-v3, small end-to-end run", "", f"Reproduce: `{res['command']}` (2-core CPU, no GPU; numbers below from that run).", "",
        f"- data: {c['steps']} real steps ({c['episodes']} episodes), brownian random policy, 2 workers; this run's collection took {collect_s:.0f} s",
        f"- fit: {fit_s:.0f} s (VAE {a.vae_epochs} epochs, MDN-RNN {a.rnn_epochs} epochs)",
        f"- held-out VAE: reconstruction {h['vae'].get('reconstruction', float('nan')):.1f} (sum of squared errors per 64x64x3 frame in [0,1]), KL {h['vae'].get('kl', float('nan')):.1f}",
        f"- held-out MDN-RNN: NLL per latent dim {h['mdnrnn']['nll']:.3f}, reward MSE {h['mdnrnn']['reward_mse']:.4f}, termination accuracy {h['mdnrnn']['termination_accuracy']:.4f}",
        "", "![real vs reconstruction](carracing_vae_reconstructions.png)", "",
        "This is the pipeline at smoke scale, not the CarRacing experiment (see the CarRacing issue).",
    ]
    (RESULTS / "carracing_small.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
