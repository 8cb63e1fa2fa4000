"""Choose the compute device and dtype once, from user intent and what the machine has.

``dtype="auto"`` (the default everywhere) means bfloat16 where the hardware multiplies bf16
natively and float32 elsewhere:

* CUDA: bf16 when the GPU supports it (``torch.cuda.is_bf16_supported()``; Ampere and newer);
* CPU: bf16 when the CPU has AMX-bf16 tiles or AVX512-BF16 instructions (detected through
  ``torch.cpu.get_capabilities()``); there oneDNN's bf16 matmul runs about 3-4x the fp32 rate
  with AMX and about 2.3x with AVX512-BF16 alone (same-run 4096² products on 2-core Xeon and
  EPYC machines; ``benchmarks/bench_semat.py``). Without them bf16 is emulated and slower.

An explicit dtype (argument or ``SEMAT_DTYPE``) always wins. Every model family (SEMat, SGHM,
the text detectors) runs the chosen dtype: each was measured faster in bf16 on both native-bf16
CPU kinds (2 cores, same-run bf16 / fp32 time: SEMat 0.26-0.38 on an AMX Xeon and 0.41-0.58 on an
AVX512-BF16 EPYC without AMX; SGHM 0.40-0.53 on the Xeon, 0.49-0.57 on the EPYC; the detectors, weights cast once +
autocast, 0.66-0.69 and 0.60-0.69 at 800 and 640 px). SEMat and SGHM are held to the reference's
own bf16 deviation on the golden fixtures (tests/test_dtype.py, tests/test_sghm_parity.py); the
detectors have no golden fixture.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from dataclasses import dataclass

import torch

from semat.errors import InputError, ModelError
from semat.settings import Settings

__all__ = ["AUTO", "Runtime", "cpu_bf16_feature", "native_bf16", "parse_dtype", "select_runtime",
           "tune_cpu_allocator"]

AUTO = "auto"
_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


def cpu_bf16_feature() -> str | None:
    """The CPU's native bf16 matmul feature (``"AMX-bf16"`` or ``"AVX512-BF16"``), or None."""
    try:
        caps = torch.cpu.get_capabilities()
    except (AttributeError, RuntimeError):  # older torch / unknown architecture
        return None
    if caps.get("amx_bf16") and caps.get("amx_tile"):
        return "AMX-bf16"
    if caps.get("avx512_bf16"):
        return "AVX512-BF16"
    return None


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` multiplies bfloat16 natively (so bf16 is faster than fp32 there)."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if dev.type == "cpu":
        return cpu_bf16_feature() is not None
    return False


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype
    auto: bool = False  # the dtype was chosen by ``auto`` (not asked for explicitly)

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def label(self) -> str:
        """e.g. ``"CPU, bfloat16 (auto: AMX-bf16)"``, ``"CUDA (NVIDIA H200), bfloat16 (auto)"``,
        ``"CPU, float32"`` (explicit)."""
        name = "CPU"
        if self.device.type == "cuda":
            name = f"CUDA ({torch.cuda.get_device_name(self.device)})"
        elif self.device.type != "cpu":
            name = self.device.type.upper()
        why = ""
        if self.auto:
            feature = cpu_bf16_feature() if self.device.type == "cpu" else None
            if self.dtype == torch.bfloat16 and feature:
                why = f" (auto: {feature})"
            elif self.device.type == "cpu" and self.dtype == torch.float32 and native_bf16(self.device):
                why = " (auto: this model stays fp32 on CPU)"
            elif self.device.type == "cpu" and self.dtype == torch.float32:
                why = " (auto: no native bf16)"
            else:
                why = " (auto)"
        return f"{name}, {self.dtype_name}{why}"


_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Stop glibc from returning every large freed block to the OS (CPU inference only).

    A SEMat forward allocates and frees multi-GB activations; by default glibc serves blocks over
    32 MB with mmap and unmaps them on free, which costs ~2 M page faults per forward (about 1.5 s
    of a 10 s SAM2 forward on 2 cores). Serving them from the heap and never trimming keeps the
    process at its high-water mark instead, which it reaches again on the next image anyway.
    It also caps glibc at two malloc arenas: the app serves requests from a pool of threads, each
    new thread got its own arena with its own kept high-water mark, and the soak's RSS kept
    climbing (+200 MB over 1,000 requests; with two arenas it levels off, +4 MB in the last 200).
    Linux/glibc only; ``SEMAT_MALLOC_TUNE=0`` turns it off. Returns whether it was applied.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux") or not Settings.from_env().malloc_tune:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
        ok = ok and libc.mallopt(m_arena_max, 2) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    _ALLOCATOR_TUNED = ok
    return ok


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    """A dtype name (``float32``/``fp32``, ``bfloat16``/``bf16``, ``float16``/``fp16``) -> dtype.
    ``auto`` is resolved by :func:`select_runtime`, not here."""
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[name.strip().lower()]
    except KeyError:
        raise InputError(f"unknown dtype {name!r}; choose auto, float32, bfloat16 or float16") from None


def _is_auto(dtype: str | torch.dtype | None) -> bool:
    return dtype is None or (isinstance(dtype, str) and dtype.strip().lower() in ("", AUTO))


def select_runtime(device: str = "auto", dtype: str | torch.dtype | None = AUTO) -> Runtime:
    """Resolve ``device`` ('auto'|'cpu'|'cuda'|'cuda:N') and ``dtype`` ('auto'|None|a dtype name).

    ``SEMAT_DEVICE`` / ``SEMAT_DTYPE`` override 'auto' / None. A dtype that stays 'auto' becomes
    bfloat16 where :func:`native_bf16` holds for the device, float32 elsewhere.
    """
    settings = Settings.from_env()
    device = settings.device if device == "auto" else device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"unknown device {str(device)[:40]!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        tune_cpu_allocator()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was requested but no CUDA device is available; use --device cpu")
    if _is_auto(dtype):
        dtype = settings.dtype.strip() or AUTO
    if _is_auto(dtype):
        return Runtime(dev, torch.bfloat16 if native_bf16(dev) else torch.float32, auto=True)
    dt = parse_dtype(dtype)  # type: ignore[arg-type]
    if dt == torch.float16 and dev.type == "cpu":
        raise InputError("float16 is not supported on CPU; use bfloat16 or float32")
    return Runtime(dev, dt)
