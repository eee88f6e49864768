"""The two runtimes of an exported dream side by side, in one run: install size and steps per second, written to
results/onnx_runtime.json.

    python benchmarks/onnx_runtime.py                                  # ~1-2 minutes on 2 CPU cores
    python benchmarks/onnx_runtime.py --wheelhouse .wheelhouse         # also installs the ONNX package in a fresh venv

* Install size: what ``pip install`` of an exported package brings, measured as the installed files of its dependency
  closure (each distribution's RECORD, summed, in this venv): gym-dream + torch for ``--runtime torch``, gym-dream-onnx
  + onnxruntime for ``--runtime onnx``. With ``--wheelhouse`` the ONNX package is also installed into a fresh venv from
  local wheels only, and that venv's site-packages measured with ``du`` (the acceptance path of
  tests/trainers/test_onnx_export.py).
* Steps per second: the shipped CartPole model (an MDN-RNN, 256 LSTM units), its dream as ``DreamVectorEnv`` (torch,
  float32) and exported (``trainers/export/onnx.py``) as ``OnnxDreamVectorEnv`` (onnxruntime), at 1 and 1024 envs,
  random actions, the same threads for both (``--threads``: torch's and onnxruntime's intra-op threads).

The CPU is shared with other jobs (2 cores): the rows are short, timed alternately, and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _closure(requirements: list[str]) -> dict[str, int]:
    """Installed bytes of each distribution in the closure of ``requirements`` (markers and extras ignored)."""
    sizes: dict[str, int] = {}
    todo = [re.split(r"[ ;<>=!~\[(]", r, maxsplit=1)[0] for r in requirements]
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in sizes:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sizes[name] = 0
            continue
        sizes[name] = sum(f.size or 0 for f in dist.files or [])
        for req in dist.requires or []:
            if "extra ==" not in req:
                todo.append(re.split(r"[ ;<>=!~\[(]", req, maxsplit=1)[0])
    return sizes


def _fresh_venv_size(wheelhouse: Path, wheel: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheelhouse),
                        "--find-links", str(wheel.parent), str(wheel)], check=True, env=env)
        site = next(venv.glob("lib/python*/site-packages"))
        return int(subprocess.run(["du", "-sb", str(site)], capture_output=True, text=True, check=True).stdout.split()[0])


def _rate(envs, seconds: float) -> float:
    envs.reset(seed=0)
    rng = np.random.default_rng(0)
    actions = [rng.integers(0, 2, size=envs.num_envs) for _ in range(64)]
    for a in actions[:3]:
        envs.step(a)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        envs.step(actions[steps % 64])
        steps += 1
    return steps * envs.num_envs / (time.perf_counter() - start)


def _cpu() -> dict:
    lines = Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in flags if f.startswith(("avx", "amx", "fma", "sse4"))]}


def _script_name() -> str:
    script = Path(sys.argv[0]).resolve()
    return script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else sys.argv[0]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=4.0, help="timed seconds per row")
    p.add_argument("--threads", type=int, default=1, help="torch and onnxruntime intra-op threads (1: the fastest setting on this shared 2-core CPU, as benchmarks/throughput.py found)")
    p.add_argument("--wheelhouse", default=None, help="local wheels (make wheelhouse): also measure a fresh venv's install")
    p.add_argument("--out", default=str(ROOT / "results" / "onnx_runtime.json"))
    args = p.parse_args()
    started = time.time()

    import onnxruntime
    import torch

    import gym_dream
    from gym_dream.envs.dream_vector_env import DreamVectorEnv
    from gym_dream_onnx import OnnxDream, OnnxDreamVectorEnv
    from trainers.export.package import ExportConfig, export
    from trainers.export.onnx import RUNTIME_DEPENDENCIES

    torch.set_num_threads(args.threads)
    model = gym_dream.resolve_model("cartpole")
    work = Path(tempfile.mkdtemp(prefix="onnx-bench-"))
    t = time.time()
    exported = export(ExportConfig(model_dir=str(model.source), env_id="Dream-BenchPole-v0", name="dream-benchpole", out=str(work),
                                   runtime="onnx"))
    export_seconds = time.time() - t
    dream_dir = exported["project"] / "src" / "dream_benchpole" / "dream"
    dream = OnnxDream(dream_dir, threads=args.threads)

    torch_closure = _closure(["gym-dream"])
    onnx_closure = _closure(list(RUNTIME_DEPENDENCIES))
    onnx_closure["gym-dream-onnx"] = sum(f.stat().st_size for f in (ROOT / "gym_dream_onnx").glob("*.py"))
    package = exported["wheel"].stat().st_size
    rows = []
    for n in (1, 1024):
        for _ in range(2):  # alternate the runtimes twice: the CPU is shared
            for name, make in (("torch", lambda n=n: DreamVectorEnv(num_envs=n, model=model, tau=1.0)),
                               ("onnx", lambda n=n: OnnxDreamVectorEnv(num_envs=n, model=dream, tau=1.0))):
                rows.append({"runtime": name, "num_envs": n, "steps_per_s": _rate(make(), args.seconds / 2)})
    rates = {}
    for r in rows:
        rates.setdefault(f"{r['runtime']} x{r['num_envs']}", []).append(r["steps_per_s"])
    result = {
        "command": "python " + " ".join([_script_name(), *sys.argv[1:]]),
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip() or None,
        "machine": {"cpu": _cpu(), "python": platform.python_version(), "torch": torch.__version__,
                    "onnxruntime": onnxruntime.__version__, "threads": args.threads},
        "note": "2-core CPU shared with other jobs while this ran: rows are short (seconds) and timed alternately; "
                "steps/s is the better of two alternating measurements, so compare ratios within this run only",
        "model": "shipped cartpole (MDN-RNN, LSTM 256, z 4, 5 mixtures), random actions, tau 1.0",
        "export_seconds": round(export_seconds, 1),
        "install_bytes": {
            "torch_runtime_closure": sum(torch_closure.values()), "onnx_runtime_closure": sum(onnx_closure.values()),
            "torch_runtime_by_distribution": dict(sorted(torch_closure.items(), key=lambda kv: -kv[1])),
            "onnx_runtime_by_distribution": dict(sorted(onnx_closure.items(), key=lambda kv: -kv[1])),
            "exported_onnx_wheel": package,
        },
        "steps_per_s": {k: round(max(v), 1) for k, v in rates.items()},
    }
    result["onnx_over_torch"] = {n: round(result["steps_per_s"][f"onnx x{n}"] / result["steps_per_s"][f"torch x{n}"], 2) for n in (1, 1024)}
    if args.wheelhouse:
        result["install_bytes"]["onnx_fresh_venv_site_packages_du"] = _fresh_venv_size(Path(args.wheelhouse), exported["wheel"])
    result["wall_seconds"] = round(time.time() - started, 1)
    shutil.rmtree(work, ignore_errors=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("steps_per_s", "onnx_over_torch", "wall_seconds")}, indent=2))
    print({k: v for k, v in result["install_bytes"].items() if not k.endswith("distribution")})


if __name__ == "__main__":
    main()
