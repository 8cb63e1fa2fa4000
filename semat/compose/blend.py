"""Blending: the straight-alpha RGBA cut-out and the composite onto a background."""

from __future__ import annotations

import numpy as np

from semat.compose.alpha import alpha_to_png8, as_alpha
from semat.compose.background import Background, background_array
from semat.compose.foreground import estimate_foreground
from semat.errors import InputError
from semat.validate import check_image

__all__ = ["composite", "rgba"]


def _colours(image: np.ndarray, foreground: np.ndarray) -> np.ndarray:
    fg = check_image(foreground, name="foreground")
    if fg.shape != image.shape:
        raise InputError(f"foreground has shape {fg.shape}, expected {image.shape}")
    return fg


def rgba(image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """Straight-alpha RGBA ``uint8``: colours from ``foreground`` (or ``image``), alpha 0..255."""
    image = check_image(image)
    a = as_alpha(alpha, image.shape[:2])
    colours = image if foreground is None else _colours(image, foreground)
    return np.dstack([colours, alpha_to_png8(a)])


def composite(image: np.ndarray, alpha: np.ndarray, background: Background | str = "transparent",
              foreground_estimation: bool = True, bg_image: np.ndarray | None = None,
              foreground: np.ndarray | None = None) -> np.ndarray:
    """Blend the matted object onto ``background``.

    Returns ``HxWx4`` RGBA for ``transparent``, else ``HxWx3`` RGB. ``foreground`` (a result of
    :func:`~semat.compose.foreground.estimate_foreground`) skips the estimation, so a UI can
    recomposite cheaply. A string ``background`` is parsed with paths off (see
    :func:`~semat.compose.background.parse_background`); an image background comes as
    ``bg_image``.
    """
    image = check_image(image)
    a = as_alpha(alpha, image.shape[:2])
    bg = background_array(background, image, bg_image)  # a bad background fails before the estimate
    if foreground is not None:
        fg = _colours(image, foreground)
    elif foreground_estimation:
        fg = estimate_foreground(image, a)
    else:
        fg = image
    if bg is None:
        return rgba(image, a, fg)
    return _blend(fg, bg, a)


def _blend(fg: np.ndarray, bg: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``rint(fg a + bg (1 - a))`` in float32, computed only where 0 < a < 1: elsewhere it is
    exactly ``fg`` (a = 1) or ``bg`` (a = 0), so the result is the same as the whole-frame blend."""
    out = np.array(bg, dtype=np.uint8, order="C", copy=True)
    np.copyto(out, fg, where=(a >= 1.0)[..., None])
    idx = np.flatnonzero((a > 0.0) & (a < 1.0))
    if idx.size:
        a1 = a.reshape(-1)[idx][:, None]
        mixed = (np.ascontiguousarray(fg).reshape(-1, 3)[idx].astype(np.float32) * a1
                 + np.ascontiguousarray(bg).reshape(-1, 3)[idx].astype(np.float32) * (1.0 - a1))
        out.reshape(-1, 3)[idx] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    return out
