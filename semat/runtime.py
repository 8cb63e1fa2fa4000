"""Choose the compute device and dtype once, from user intent and what the machine has."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from dataclasses import dataclass

import torch

from semat.errors import InputError, ModelError

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
           "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    dtype: torch.dtype

    @property
    def label(self) -> str:
        name = "CPU"
        if self.device.type == "cuda":
            name = f"CUDA ({torch.cuda.get_device_name(self.device)})"
        return f"{name}, {str(self.dtype).removeprefix('torch.')}"


_ALLOCATOR_TUNED = False


def tune_cpu_allocator() -> bool:
    """Stop glibc from returning every large freed block to the OS (CPU inference only).

    A SEMat forward allocates and frees multi-GB activations; by default glibc serves blocks over
    32 MB with mmap and unmaps them on free, which costs ~2 M page faults per forward (about 1.5 s
    of a 10 s SAM2 forward on 2 cores). Serving them from the heap and never trimming keeps the
    process at its high-water mark instead, which it reaches again on the next image anyway.
    Linux/glibc only; ``SEMAT_MALLOC_TUNE=0`` turns it off. Returns whether it was applied.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("SEMAT_MALLOC_TUNE", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**31 - 1) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    _ALLOCATOR_TUNED = ok
    return ok


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[name.lower()]
    except KeyError:
        raise InputError(f"unknown dtype {name!r}; choose float32, bfloat16 or float16") from None


def select_runtime(device: str = "auto", dtype: str | torch.dtype | None = None) -> Runtime:
    """Resolve ``device`` ('auto'|'cpu'|'cuda'|'cuda:N') and ``dtype`` (None: float32).

    The environment variables ``SEMAT_DEVICE`` / ``SEMAT_DTYPE`` supply defaults when the
    arguments are 'auto' / None.
    """
    device = os.environ.get("SEMAT_DEVICE", device) if device == "auto" else device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ModelError("CUDA was requested but no CUDA device is available; use --device cpu")
    if dtype is None:
        dtype = os.environ.get("SEMAT_DTYPE", "float32")
    dt = parse_dtype(dtype)
    if dt == torch.float16 and dev.type == "cpu":
        raise InputError("float16 is not supported on CPU; use bfloat16 or float32")
    return Runtime(dev, dt)
