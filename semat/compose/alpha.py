"""Alpha mattes in the compose package: the one alpha check and the 8/16-bit PNG conversions."""

from __future__ import annotations

import numpy as np

from semat.errors import InputError

__all__ = ["alpha_to_png8", "alpha_to_png16", "as_alpha"]


def as_alpha(alpha: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """``HxW`` (or ``HxWx1``) alpha of the image's size as ``float32`` in [0, 1].

    ``uint8`` is read as 0..255, ``uint16`` as 0..65535, ``bool`` as 0/1; floats are clipped to
    [0, 1] with NaN read as 0 (infinities clip to the nearest end).
    """
    a = np.asarray(alpha)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.shape != tuple(hw):
        raise InputError(f"alpha has shape {a.shape}, expected {tuple(hw)} to match the image")
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if a.dtype == np.bool_:
        return a.astype(np.float32)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise InputError(f"alpha must be numbers in [0, 1], got dtype {a.dtype}")
    out = a.astype(np.float32)  # a copy: the caller's array is never changed
    if out.size and 0.0 <= float(out.min()) and float(out.max()) <= 1.0:  # NaN fails this test too
        return out
    np.nan_to_num(out, copy=False)
    return np.clip(out, 0.0, 1.0, out=out)


def alpha_to_png8(alpha: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] → ``uint8`` 0..255 (rounded, clipped)."""
    a = np.clip(np.nan_to_num(np.asarray(alpha, dtype=np.float32)), 0.0, 1.0)
    return np.rint(a * 255.0).astype(np.uint8)


def alpha_to_png16(alpha: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] → ``uint16`` 0..65535 (rounded, clipped) for 16-bit PNGs."""
    a = np.clip(np.nan_to_num(np.asarray(alpha, dtype=np.float64)), 0.0, 1.0)
    return np.rint(a * 65535.0).astype(np.uint16)
