"""What the CPU benchmark scripts share: the same-run matmul peak, the CPU's name and peak RSS.

Imported by the scripts as ``from harness import ...`` (they run as ``python benchmarks/<script>.py``,
which puts this folder first on ``sys.path``); torch is imported on first use, after a script
has set its thread count.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform
import resource
import time
from pathlib import Path
from typing import Any

__all__ = ["cpu_name", "matmul_gflops", "matmul_rates", "peak_rss_gb", "release_free_heap"]


def matmul_gflops(dtype: Any = "float32", n: int = 4096, repeats: int = 3) -> float:
    """Best GFLOP/s of ``repeats`` ``n``² matmuls in ``dtype`` (a torch dtype or its name), after one warm-up."""
    return matmul_rates(dtype, seconds=0.0, n=n, at_least=repeats)[1]


def matmul_rates(dtype: Any = "float32", seconds: float = 2.0, n: int = 4096,
                 at_least: int = 3) -> tuple[float, float]:
    """(sustained, burst) GFLOP/s of back-to-back ``n``² matmuls in ``dtype`` for ``seconds``
    (and at least ``at_least`` of them), after one warm-up.

    Sustained is the total work over the total time; burst is the fastest single product (what
    :func:`matmul_gflops` reports). On a shared machine whose bf16 units are contended the two
    differ by up to 3x within one minute (2-core AMX VM: 450-1,300 GFLOP/s burst), so a forward
    that takes seconds is compared with the rate the machine sustained around it."""
    import torch

    dt = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    torch.mm(a, b)
    best, total, count = float("inf"), 0.0, 0
    while total < seconds or count < at_least:
        t = time.perf_counter()
        torch.mm(a, b)
        dt_s = time.perf_counter() - t
        best, total, count = min(best, dt_s), total + dt_s, count + 1
    flop = 2 * n**3 / 1e9
    return flop * count / total, flop / best


def release_free_heap() -> bool:
    """Hand the heap's free pages back to the OS (glibc ``malloc_trim``); False where there is none."""
    try:
        return bool(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0))
    except (OSError, AttributeError):
        return False


def peak_rss_gb() -> float:
    """Peak resident memory of this process in GB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def cpu_name() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (else what ``platform`` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
