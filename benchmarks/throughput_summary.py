"""What a run of benchmarks/throughput.py concludes from its rows: the ratios and the targets (each a ratio or a latency
against a reference measured in the same run), the CPU's nominal peak, and the figure written beside the JSON."""

from __future__ import annotations

import os
from pathlib import Path

from throughput_rows import MEMBER_FORMS  # benchmarks/ is on the path


def nominal_peak() -> dict:
    """Nominal fp32 peak: cores x clock x 32 FLOP/cycle (two 256-bit FMA pipes, i.e. one 512-bit FMA per cycle on
    AMD Zen 4; AVX-512 BF16 dot products do twice that)."""
    mhz = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz"):
                mhz = float(line.split(":")[1])
                break
    except OSError:
        pass
    cores = os.cpu_count() or 1
    if mhz is None:
        return {}
    fp32 = cores * mhz * 1e6 * 32 / 1e9
    return {"cores": cores, "mhz": mhz, "fp32_gflop_per_s": fp32, "bf16_gflop_per_s": 2 * fp32,
            "per_core_fp32_gflop_per_s": fp32 / cores}


def _arithmetic_targets(pair, nominal: dict) -> dict:
    """The shipped dream against the real env and the bare model step, and its arithmetic rate against the GEMM peaks."""
    targets = {}
    for what in ("fp32", "bfloat16"):
        p = pair(f"shipped CarRacing x1024 ({what}) vs real CarRacing-v3")
        targets[f"shipped CarRacing x1024 / real CarRacing-v3 ({what}; target >= 2000x)"] = p and p["ratio_a_over_b"]
        p = pair(f"bare model.imagine x1024 vs DreamVectorEnv x1024, shipped CarRacing ({what})")
        targets[f"env overhead over the bare model step ({what}; target <= 0.15)"] = p and p["ratio_a_over_b"] - 1.0
    for what, peak in (("fp32", "GEMM 2048^3 fp32"), ("bfloat16", "GEMM 2048^3 bf16")):
        p = pair(f"bare model.imagine x1024 ({what}) vs {peak} (measured peak)")
        if p:
            targets[f"dream step ({what}) arithmetic rate / measured {what} GEMM peak, same threads, same run (target >= 0.70)"] = \
                p["a"]["gflop_per_s"] / p["b"]["gflop_per_s"]
            if nominal:
                per = nominal["per_core_fp32_gflop_per_s"] * p["threads"] * (2 if what == "bfloat16" else 1)
                targets[f"dream step ({what}) arithmetic rate / nominal {what} peak of {p['threads']} core(s)"] = p["a"]["gflop_per_s"] / per
            if what == "bfloat16":
                p32 = pair("bare model.imagine x1024 (fp32) vs GEMM 2048^3 fp32 (measured peak)")
                if p32:
                    targets["dream step (bfloat16) arithmetic rate / measured fp32 GEMM peak (target >= 0.70 of the fp32 peak)"] = \
                        p["a"]["gflop_per_s"] / p32["b"]["gflop_per_s"]
    return targets


def _latency_targets(by: dict, rows: list[dict], ratios: dict) -> dict:
    """The planner's and CMA-ES's latencies, DreamObservation's added time, ``precision="auto"`` and the GPU rows
    (the bfloat16/float32 ratio goes into ``ratios``)."""
    targets = {}
    for preset, target in (("planet", "0.3"), ("cpu", "0.03")):
        p = by.get(f"pair:planner:{preset}|planner:{preset}:bfloat16")
        if p:
            for k, what in (("a", "fp32"), ("b", "bfloat16")):
                targets[f"CEM-MPC decision, {preset} preset, {what} (target <= {target} s), seconds"] = p[k]["ms_per_call"] / 1000
                targets[f"CEM-MPC decision, {preset} preset, {what}: arithmetic rate, GFLOP/s"] = p[k]["gflop_per_s"]
    for spec, name in (("cmaes:float32", "one CMA-ES generation, fp32 (target <= 8 s)"), ("cmaes:bfloat16", "one CMA-ES generation, bfloat16 (target <= 8 s)")):
        if spec in by:
            targets[name + ", seconds"] = by[spec]["latency_s"]
    if "dreamobs:CarRacing-v3" in by:
        targets["DreamObservation added ms per real CarRacing step (target <= 1 ms)"] = by["dreamobs:CarRacing-v3"]["added_ms_per_step"]
    p = by.get("precision:shipped:1024")
    if p:
        targets[f"precision='auto' steps/s / float32's, shipped CarRacing x1024 (CPU {p['torch_cpu_capability']}, bf16 dot products "
                f"{p['bf16_dot_products']}: auto runs {p['auto_runs']}; target >= 0.9)"] = p["auto_over_float32"]
        ratios["precision='bfloat16' steps/s / float32's, shipped CarRacing x1024"] = p["bfloat16_over_float32"]
    for spec in ("gpu:16384", "gpu:65536"):
        r = next((r for r in rows if r["spec"] == spec), None)
        if r is not None:
            targets[f"GPU dream steps per second at {spec.split(':')[1]} envs (target >= 1e7)"] = r.get("steps_per_s", r.get("not_measured", r.get("error")))
    return targets


def summarise(rows: list[dict], nominal: dict, pairs: dict[str, str]) -> dict:
    """The ratios and the targets of a run's rows (``pairs``: target name -> the spec of its paired row)."""
    by = {r["spec"]: r for r in rows if "error" not in r and "not_measured" not in r}
    rate = lambda spec: by[spec]["steps_per_s"] if spec in by and "steps_per_s" in by[spec] else None
    pair = lambda name: by.get(pairs[name])
    ratios = {}
    for name, a, b in (("DreamVectorEnv x1024 (CarRacing-shaped) / real CarRacing-v3", "vector:pixel:1024", "real:CarRacing-v3"),
                       ("DreamVectorEnv x1024 / Python loop over 1024 DreamEnvs", "vector:pixel:1024", "loop:pixel:1024"),
                       ("DreamVectorEnv x1024 (CartPole) / real CartPole-v1", "vector:cartpole:1024", "real:CartPole-v1"),
                       ("DreamVectorEnv x1024 (shipped CarRacing) / real CarRacing-v3, separate rows", "vector:shipped:1024", "real:CarRacing-v3"),
                       ("DreamVectorEnv x1024 shipped: 1 torch thread / 2 torch threads", "vector:shipped:1024", "vector:shipped:1024:t2")):
        if rate(a) and rate(b):
            ratios[name] = rate(a) / rate(b)
    targets = _arithmetic_targets(pair, nominal)
    for f in list(MEMBER_FORMS)[1:]:
        p = pair(f"DreamVectorEnv x1024 (CarRacing-shaped), 1 member vs {f}")
        targets[f"dream step cost, {f} / 1 member (target <= 1.5x)"] = p and p["ratio_a_over_b"]
        t, t1 = by.get(f"train:{f}"), by.get("train:1 member")
        if t and t1:
            ratios[f"training batch cost, {f} / 1 member"] = t["ms_per_call"] / t1["ms_per_call"]
    targets.update(_latency_targets(by, rows, ratios))
    return {"ratios": ratios, "targets": targets}


def plot(rows: list[dict], summary: dict, path: Path) -> None:
    """The figure beside the JSON: steps per second, latencies and the targets (nothing where matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rate_rows = [(r["label"], r["spec"], r["steps_per_s"]) for r in rows
                 if "steps_per_s" in r and not r["spec"].startswith(("train", "planner", "cmaes", "dreamobs", "gemm"))]
    for r in rows:  # the two sides of each paired row, timed alternately
        if "ratio_a_over_b" in r and not r["a"]["spec"].startswith(("gemm", "planner")):
            for k in "ab":
                if not r[k]["spec"].startswith(("real", "gemm")):
                    rate_rows.append((f"{r[k]['spec']} (paired row)", r[k]["spec"], r[k]["steps_per_s"]))
    other = [r for r in rows if r["spec"].startswith(("cmaes", "dreamobs", "gpu", "train"))]
    for r in rows:  # the planner's paired rows: each side's seconds per decision
        if r["spec"].startswith("pair:planner") and "a" in r:
            for k in "ab":
                other.append({"label": f"CEM-MPC decision {r[k]['spec']}", "spec": r[k]["spec"], "latency_s": r[k]["ms_per_call"] / 1000})
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(22, 8), gridspec_kw={"width_ratios": [3, 2, 2]})
    ax.barh([x[0] for x in rate_rows], [x[2] for x in rate_rows],
            color=["#888" if x[1].startswith(("real", "loop")) else "#37a" if x[1].startswith("bare") else "#3a7" for x in rate_rows])
    ax.set_xscale("log")
    ax.set_xlabel("steps per second (log scale)")
    ax.invert_yaxis()
    ax.set_title("Dream vs real env throughput, one run, shared 2-core CPU")
    labels, values, texts = [], [], []
    for r in other:
        labels.append(r["label"])
        if "not_measured" in r or "error" in r:
            values.append(0.0)
            texts.append(r.get("not_measured") or r["error"][:40])
        elif "added_ms_per_step" in r:
            values.append(r["added_ms_per_step"] / 1000)
            texts.append(f"{r['added_ms_per_step']:.2f} ms added")
        elif "latency_s" in r:
            values.append(r["latency_s"])
            texts.append(f"{r['latency_s']:.3g} s")
        else:
            values.append(r["ms_per_call"] / 1000)
            texts.append(f"{r['ms_per_call']:.1f} ms")
    bx.barh(labels, [max(v, 1e-4) for v in values], color="#a73")
    for y, t in enumerate(texts):
        bx.text(1.2e-4, y, t, va="center", fontsize=8)
    bx.set_xscale("log")
    bx.set_xlabel("seconds per call (log scale)")
    bx.invert_yaxis()
    bx.set_title("Latencies (same run)")
    for axis in (ax, bx):
        axis.tick_params(axis="y", labelsize=7)
    cx.axis("off")
    lines = [f"{k}:\n    {('n/a' if v is None else v if isinstance(v, str) else f'{v:,.3g}')}" for k, v in summary["targets"].items()]
    cx.text(0, 1, "Targets (issue 22), measured in this run\n\n" + "\n".join(lines), va="top", fontsize=7, family="monospace", wrap=True)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
