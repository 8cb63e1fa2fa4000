"""Choose the compute device and dtype once, from user intent and what the machine has."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

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


def parse_dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return _DTYPES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}; choose float32, bfloat16 or float16") from None


def select_runtime(device: str = "auto", dtype: str | torch.dtype | None = None) -> Runtime:
    """Resolve ``device`` ('auto'|'cpu'|'cuda'|'cuda:N') and ``dtype`` (None: float32).

    The environment variables ``SEMAT_DEVICE`` / ``SEMAT_DTYPE`` supply defaults when the
    arguments are 'auto' / None.
    """
    device = os.environ.get("SEMAT_DEVICE", device) if device == "auto" else device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no CUDA device is available; use --device cpu")
    if dtype is None:
        dtype = os.environ.get("SEMAT_DTYPE", "float32")
    dt = parse_dtype(dtype)
    if dt == torch.float16 and dev.type == "cpu":
        raise ValueError("float16 is not supported on CPU; use bfloat16 or float32")
    return Runtime(dev, dt)
