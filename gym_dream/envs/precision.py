"""Which arithmetic a dream runs in: ``precision="float32" | "bfloat16" | "auto"``, and whether this machine multiplies
bfloat16 natively (the answer behind ``"auto"``, and behind the warning for ``"bfloat16"`` where it is emulated)."""

from __future__ import annotations

import warnings
from typing import Any

import torch

from gym_dream.error import PerformanceWarning
from gym_dream.models import WorldModel


def cpu_has_bf16_dot() -> bool:
    """Whether this CPU multiplies bfloat16 natively (x86 AVX-512 BF16 or AMX; an ARM CPU with the BF16 extension).
    ``torch.backends.cpu.get_cpu_capability()`` names only the vector width ("AVX2", "AVX512", "SVE256"...), not the
    bf16 instructions, so torch's own CPU probes answer on x86, and the kernel's CPU flags elsewhere."""
    probes = [getattr(getattr(torch, "cpu", None), name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(probe is not None and probe() for probe in probes):
        return True
    return "bf16" in cpu_flags() or "amx_bf16" in cpu_flags() or "avx512_bf16" in cpu_flags()


_CPU_FLAGS: set[str] | None = None


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (``flags`` on x86, ``Features`` on ARM); empty where it cannot be read."""
    global _CPU_FLAGS
    if _CPU_FLAGS is None:
        flags: set[str] = set()
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key.strip() in ("flags", "Features"):
                        flags.update(value.split())
                        break
        except OSError:
            pass
        _CPU_FLAGS = flags
    return _CPU_FLAGS


def cpu_capability() -> dict[str, Any]:
    """What a benchmark records next to its precision rows: torch's CPU capability and the bf16 answer behind ``"auto"``."""
    return {"torch_cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_dot_products": cpu_has_bf16_dot()}


#: bf16 on a CPU without bf16 dot products (measured, benchmarks/throughput.py, AMD EPYC with AVX2 only, shipped
#: CarRacing x1024): 17k steps/s against 98k in float32 with 2 threads, 9k against 58k with one
BF16_EMULATED_COST = "about 6x fewer steps per second than float32 (measured on an AVX2-only AMD EPYC: 17k vs 98k steps/s at 1024 envs)"
_warned_bf16 = False


def check_precision(precision: Any, model: WorldModel) -> str:
    """``"float32"`` (default: the model as trained), another name from ``model.precisions`` (``"bfloat16"``: the
    single-member model's matrix products in bf16, faster on CPUs with bf16 dot products, AVX-512 BF16 or AMX, and on
    GPUs), or ``"auto"``: ``"bfloat16"`` where the model has it and the device multiplies it natively (a CUDA device,
    or a CPU for which :func:`cpu_has_bf16_dot` is true), else ``"float32"``. Returns the name that runs.

    ``"bfloat16"`` on a CPU without bf16 dot products is emulated and slow: it runs, with a
    :class:`~gym_dream.error.PerformanceWarning` (once per process) naming the measured cost."""
    global _warned_bf16
    device = torch.device(getattr(model, "device", "cpu"))
    if precision == "auto":
        fast = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16_dot())
        return "bfloat16" if fast and "bfloat16" in model.precisions else "float32"
    if not isinstance(precision, str) or precision not in model.precisions:
        raise ValueError(f"precision must be 'auto' or one of {model.precisions} for this model, got {precision!r}.")
    if precision == "bfloat16" and device.type == "cpu" and not cpu_has_bf16_dot() and not _warned_bf16:
        _warned_bf16 = True
        warnings.warn(f"precision='bfloat16' on this CPU (torch capability {torch.backends.cpu.get_cpu_capability()}, no AVX-512 BF16 "
                      f"or AMX) is emulated: {BF16_EMULATED_COST}. Pass precision='auto' (float32 here) or 'float32'.",
                      PerformanceWarning, stacklevel=3)
    return precision
