"""PNG output: 8-bit gray/RGB/RGBA and 16-bit gray arrays to PNG bytes or files, and back."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from semat.errors import InputError

__all__ = ["encode_png", "read_png", "save_png", "to_pil"]


def to_pil(array: np.ndarray) -> Image.Image:
    """PIL image for an 8-bit gray/RGB/RGBA or 16-bit gray array (validated)."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.dtype == np.uint16:
        if a.ndim != 2:
            raise InputError(f"16-bit PNGs must be single-channel (HxW), got shape {a.shape}")
        return Image.fromarray(np.ascontiguousarray(a))  # mode I;16
    if a.dtype != np.uint8:
        raise InputError(f"PNG arrays must be uint8 or uint16, got {a.dtype}")
    if a.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(a))
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(a))
    raise InputError(f"PNG arrays must be HxW, HxWx3 or HxWx4, got shape {a.shape}")


def encode_png(array: np.ndarray, compress_level: int = 6) -> bytes:
    """PNG bytes of an 8-bit gray/RGB/RGBA or 16-bit gray array."""
    buf = io.BytesIO()
    to_pil(array).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def save_png(path: str | os.PathLike, array: np.ndarray, compress_level: int = 6) -> Path:
    """Write ``array`` as PNG: uint8 HxW (gray), HxWx3 (RGB), HxWx4 (RGBA), uint16 HxW (16-bit gray)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(array, compress_level))
    return path


def read_png(path_or_bytes: str | os.PathLike | bytes) -> np.ndarray:
    """Read a PNG back with its bit depth (uint16 for 16-bit gray), for tests and round-trips."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    with Image.open(src) as img:
        if img.mode.startswith("I;16"):
            return np.asarray(img).astype(np.uint16)
        if img.mode == "I":
            return np.asarray(img).astype(np.uint16)
        return np.asarray(img).copy()
