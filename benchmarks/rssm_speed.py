"""Speed of one pixel RSSM update (ELBO forward, backward, Adam step) on this machine: the reference path
(``RSSM.sequence_loss(reference=True)``: the loss as first written) against the fast path, measured in one run,
interleaved (old, new, old, new, ...) so that both see the same load on a shared machine.

    python benchmarks/rssm_speed.py                          # the cpu preset's sizes, 1 and 2 threads
    python benchmarks/rssm_speed.py --presets cpu cpu-pixels --threads 1 --repeats 5

Per preset and thread count: updates/s and images/s (frames through the encoder and the decoder per second)
by wall clock and by this process's CPU time (the machine is shared with other jobs: CPU time is the steadier
measure), and where one update's time goes (encoder, the recurrence over the chunk, decoder, loss terms,
backward, optimiser step) on the fast path. Writes results/rssm_speed.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path


import numpy as np
import torch
from gymnasium import spaces

from gym_dream.checkpoint import atomic_write_bytes
from gym_dream.models import RSSM
from gym_dream.preprocessing import Preprocessing
from trainers.fit.presets import RSSM_PRESETS
from trainers.infra.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]


def make(p: dict, device: str, seed: int = 0):
    torch.manual_seed(seed)
    model = RSSM(spaces.Box(0, 255, (64, 64, 3), np.uint8), spaces.Box(-1.0, 1.0, (1,), np.float32), Preprocessing("image", size=(64, 64)),
                 deter=p["deter"], stoch=p["stoch"], hidden=p["hidden"], cnn_channels=tuple(p.get("cnn_channels", (32, 64, 128, 256)))).to(device)
    b, t = p["batch"], p["chunk"]
    g = torch.Generator().manual_seed(seed)
    batch = (torch.randint(0, 256, (b, t + 1, 64, 64, 3), dtype=torch.uint8, generator=g).to(device),
             (torch.rand(b, t, 1, generator=g) * 2 - 1).to(device), torch.rand(b, t, generator=g).to(device),
             torch.zeros(b, t, dtype=torch.bool, device=device), torch.ones(b, t, device=device))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-4), batch


def update(model, opt, batch, reference: bool, g: torch.Generator, overshooting: int = 0) -> float:
    out = model.sequence_loss(*batch, overshooting=overshooting, generator=g, reference=reference)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1000.0)
    opt.step()
    return float(out["loss"].detach())


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


#: the conv widths every preset had before the cpu preset's were halved (PlaNet's)
PAPER_CNN = [32, 64, 128, 256]


def measure(p: dict, threads: int, repeats: int, device: str, overshooting: int) -> dict:
    """Three paths, interleaved: the reference loss at PlaNet's conv widths (the update as it was), the fast loss at
    PlaNet's widths (the code's speedup alone), the fast loss at the preset's widths (the new default)."""
    torch.set_num_threads(threads)
    paper = {**p, "cnn_channels": PAPER_CNN}
    paths = {"reference_paper_widths": (paper, True), "fast_paper_widths": (paper, False), "fast_preset_widths": (p, False)}
    runs = {}
    for name, (sizes, reference) in paths.items():
        model, opt, batch = make(sizes, device)
        g = torch.Generator(device).manual_seed(1)
        update(model, opt, batch, reference, g, overshooting)  # warm-up (allocations, oneDNN primitives)
        runs[name] = (model, opt, batch, g, reference)
    wall = {k: [] for k in runs}
    cpu = {k: [] for k in runs}
    for _ in range(repeats):
        for name, (model, opt, batch, g, reference) in runs.items():
            sync(device)
            w0, c0 = time.perf_counter(), time.process_time()
            update(model, opt, batch, reference, g, overshooting)
            sync(device)
            wall[name].append(time.perf_counter() - w0)
            cpu[name].append(time.process_time() - c0)
    images = p["batch"] * (p["chunk"] + 1)
    out = {"threads": threads, "images_per_update": images}
    for name in runs:
        w, c = float(np.median(wall[name])), float(np.median(cpu[name]))
        out[name] = {"wall_s": round(w, 3), "cpu_s": round(c, 3), "updates_per_s": round(1 / w, 3), "images_per_s": round(images / w, 1),
                     "updates_per_cpu_s": round(1 / c, 3), "images_per_cpu_s": round(images / c, 1),
                     "speedup_wall": round(wall_ref / w, 2) if (wall_ref := float(np.median(wall["reference_paper_widths"]))) else None,
                     "speedup_cpu": round(float(np.median(cpu["reference_paper_widths"])) / c, 2)}
    return out


def breakdown(p: dict, threads: int, device: str) -> dict:
    """CPU seconds of one fast-path update by part: encoder and decoder alone (forward + backward), the rest."""
    torch.set_num_threads(threads)
    model, opt, batch = make(p, device)
    g = torch.Generator(device).manual_seed(1)
    update(model, opt, batch, False, g)
    parts = {}
    obs = batch[0]
    b, t = p["batch"], p["chunk"]
    x = model.preprocess(obs.reshape(b * (t + 1), *obs.shape[2:]), g, dequantize=True)
    c0 = time.process_time()
    e = model.encoder(x)
    e.sum().backward()
    parts["encoder_fwd_bwd"] = time.process_time() - c0
    f = torch.randn(b * (t + 1), model.feature_dim, requires_grad=True)
    c0 = time.process_time()
    model.decoder(f).pow(2).sum().backward()
    parts["decoder_fwd_bwd"] = time.process_time() - c0
    c0 = time.process_time()
    update(model, opt, batch, False, g)
    parts["whole_update"] = time.process_time() - c0
    parts["recurrence_losses_adam"] = parts["whole_update"] - parts["encoder_fwd_bwd"] - parts["decoder_fwd_bwd"]
    return {k: round(v, 3) for k, v in parts.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["cpu"], choices=sorted(RSSM_PRESETS))
    ap.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--overshooting", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", default=str(ROOT / "results" / "rssm_speed"))
    a = ap.parse_args()
    rows = []
    for name in a.presets:
        p = RSSM_PRESETS[name]
        for th in a.threads:
            r = {"preset": name, "sizes": {k: p.get(k, v) for k, v in (("deter", 200), ("stoch", 30), ("hidden", 200), ("cnn_channels", [32, 64, 128, 256]),
                                                                          ("batch", None), ("chunk", None))},
                 **measure(p, th, a.repeats, a.device, a.overshooting), "fast_parts_cpu_s": breakdown(p, th, a.device)}
            rows.append(r)
            print(json.dumps(r), flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(), "torch": torch.__version__, "device": a.device, "load_average_1min_at_end": load,
            "command": "python benchmarks/rssm_speed.py " + " ".join(sys.argv[1:]), "repeats": a.repeats, "overshooting": a.overshooting}
    lines = ["# Pixel RSSM update speed: the reference path against the fast path, one run", "",
             f"`{meta['command']}` on {meta['machine']}, {meta['cpus']} CPU cores (shared with other jobs; 1-min load average "
             f"{load:.1f} at the end), torch {torch.__version__}, device {a.device}; median of {a.repeats} interleaved updates each.", "",
             "| sizes (deter/stoch/hidden, batch x chunk) | threads | path | conv widths | updates/s (wall) | images/s (wall) | updates per CPU-s | images per CPU-s | speedup wall / CPU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r["sizes"]
        desc = f"{r['preset']} ({s['deter']}/{s['stoch']}/{s['hidden']}, {s['batch']} x {s['chunk']})"
        for path, widths in (("reference_paper_widths", PAPER_CNN), ("fast_paper_widths", PAPER_CNN), ("fast_preset_widths", s["cnn_channels"])):
            q = r[path]
            sp = "" if path.startswith("reference") else f"**{q['speedup_wall']}x / {q['speedup_cpu']}x**"
            lines.append(f"| {desc} | {r['threads']} | {path.split('_')[0]} | {'-'.join(map(str, widths))} | {q['updates_per_s']:.3f} | {q['images_per_s']:.0f} | "
                         f"{q['updates_per_cpu_s']:.3f} | {q['images_per_cpu_s']:.0f} | {sp} |")
    lines += ["", "Fast path, CPU seconds by part of one update (encoder and decoder timed alone, forward + backward; the rest is the "
              "recurrence over the chunk, the loss terms, their backward and Adam):", ""]
    for r in rows:
        lines.append(f"- {r['preset']}, {r['threads']} thread(s): {r['fast_parts_cpu_s']}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(Path(a.out + ".json"), (json.dumps({"meta": meta, "rows": rows, "provenance": provenance()}, indent=2) + "\n").encode())
    atomic_write_bytes(Path(a.out + ".md"), ("\n".join(lines) + "\n").encode())
    print("\n".join(lines))


if __name__ == "__main__":
    main()
