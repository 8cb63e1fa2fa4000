"""Foreground colour estimation: take the old background's colour out of semi-transparent pixels.

A pixel with ``0 < alpha < 1`` shows ``I = alpha F + (1 - alpha) B``; composited onto a new
background with the raw image colour as ``F``, hair edges carry the old background along. The
estimators here recover ``F``:

* ``"ml"`` (default): pymatting's multi-level ``estimate_foreground_ml`` (Germer et al. 2020).
* ``"blur-fusion"``: the approximate fast estimator of Forte & Pitié (2021): two passes of
  box-blurred, alpha-weighted local means of F and B, then the compositing residual is put back
  into F in proportion to alpha. Cheaper per pixel on a whole frame, but it needs ~50 px of
  context around the band, so on the band it is no faster than ML, and on synthetic composites
  with a known F (``benchmarks/bench_foreground.py``) its error is about twice ML's (10.5 vs
  4.9 levels). An option, not the default.

Only the **unknown band** is computed: the pixels with ``0 < alpha < 1``, dilated by
:data:`BAND_DILATION` px, cut into row strips of runs of occupied tiles, each with ``margin`` px
(at least the estimator's reach) of context around it. Results: the exact input colour where
alpha is 1 and outside the band (alpha is 0 there, so it never shows); the estimate inside the
band. The strips run in parallel threads (the pymatting kernel releases the GIL).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

import numpy as np

from semat.compose.alpha import as_alpha
from semat.errors import InputError
from semat.validate import check_image

__all__ = [
    "BAND_DILATION", "DEFAULT_FOREGROUND_METHOD", "FOREGROUND_METHODS", "estimate_foreground",
    "foreground_colours", "pymatting_ml", "unknown_band",
]

FOREGROUND_METHODS = ("ml", "blur-fusion")
DEFAULT_FOREGROUND_METHOD = "ml"
DEFAULT_MARGIN = 16  # px of context around the band (more did not lower the error, see the benchmark)
BAND_DILATION = 3  # px around 0 < alpha < 1 whose colours are estimated too (resampling neighbours)
BLUR_FUSION_KERNELS = (90, 6)  # box sizes of the two blur-fusion passes (px)
_TILE_W = 32  # column granularity of the band's runs
_MIN_TILE_H = 64  # rows per strip (at least 4x the context, so context costs at most 1.5x)
_MAX_THREADS = 8
_EPS = 1e-5

Rect = tuple[int, int, int, int]  # y0, y1, x0, x1


def unknown_band(alpha: np.ndarray, dilation: int = BAND_DILATION) -> np.ndarray:
    """``bool HxW``: ``0 < alpha < 1`` grown by ``dilation`` px (a square neighbourhood)."""
    import cv2

    soft = ((alpha > 0.0) & (alpha < 1.0)).view(np.uint8)
    if dilation <= 0:
        return soft.astype(bool)
    kernel = np.ones((2 * dilation + 1, 2 * dilation + 1), np.uint8)
    return cv2.dilate(soft, kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def _band_rectangles(band: np.ndarray, context: int, tile_h: int | None = None) -> list[tuple[Rect, Rect]]:
    """(core, crop) pairs: cores are disjoint and cover every band pixel; crops add context."""
    h, w = band.shape
    tile_h = tile_h or max(_MIN_TILE_H, 4 * context)
    ny, nx = -(-h // tile_h), -(-w // _TILE_W)
    padded = np.zeros((ny * tile_h, nx * _TILE_W), bool)
    padded[:h, :w] = band
    occupied = padded.reshape(ny, tile_h, nx, _TILE_W).any(axis=(1, 3))
    gap_tiles = -(-2 * context // _TILE_W)  # closer runs would share most of their context: merge
    out: list[tuple[Rect, Rect]] = []
    for i in range(ny):
        cols = np.flatnonzero(occupied[i])
        if cols.size == 0:
            continue
        splits = np.flatnonzero(np.diff(cols) > gap_tiles + 1)
        starts = np.concatenate([[cols[0]], cols[splits + 1]])
        ends = np.concatenate([cols[splits], [cols[-1]]]) + 1
        y0, y1 = i * tile_h, min(h, (i + 1) * tile_h)
        for j0, j1 in zip(starts, ends):
            x0, x1 = int(j0) * _TILE_W, min(w, int(j1) * _TILE_W)
            sub = band[y0:y1, x0:x1]  # tighten the run to its band pixels
            rows, columns = np.flatnonzero(sub.any(1)), np.flatnonzero(sub.any(0))
            cy0, cy1, cx0, cx1 = y0 + rows[0], y0 + rows[-1] + 1, x0 + columns[0], x0 + columns[-1] + 1
            core = (int(cy0), int(cy1), int(cx0), int(cx1))
            crop = (max(0, core[0] - context), min(h, core[1] + context),
                    max(0, core[2] - context), min(w, core[3] + context))
            out.append((core, crop))
    return out


# ---------------------------------------------------------------------------------- estimators


_ML_MODULE = "pymatting.foreground.estimate_foreground_ml"
_ml_lock = threading.Lock()


def pymatting_ml() -> Callable[..., np.ndarray]:
    """pymatting's ``estimate_foreground_ml``, with only its own three numba kernels compiled.

    ``import pymatting`` runs the package's ``__init__``, which imports every estimator, and each
    of pymatting's 29 numba kernels has an explicit signature, so all of them are JIT-compiled at
    import: 468 s on a cold numba cache here (2 loaded cores), the cost a fresh Space container
    paid on its first matte. This loads the one module file the ML estimator lives in (it imports
    only numpy and numba), under its real name so that numba's cache entries are the same as a
    plain import's: 18.5 s cold in the same conditions. If pymatting is already imported, or its
    layout differs, the plain import is used. Thread-safe: concurrent callers wait for one load.
    """
    with _ml_lock:
        mod = sys.modules.get(_ML_MODULE)
        if mod is None:
            mod = _load_ml_module()
        return mod.estimate_foreground_ml


def _load_ml_module() -> ModuleType:
    spec = importlib.util.find_spec("pymatting")
    locations = list(spec.submodule_search_locations or []) if spec else []
    path = Path(locations[0]) / "foreground" / "estimate_foreground_ml.py" if locations else None
    if path is None or not path.is_file():  # pragma: no cover - another pymatting layout
        import pymatting.foreground.estimate_foreground_ml as plain

        return plain
    mspec = importlib.util.spec_from_file_location(_ML_MODULE, path)
    assert mspec is not None and mspec.loader is not None
    mod = importlib.util.module_from_spec(mspec)
    sys.modules[_ML_MODULE] = mod  # numba's cache re-imports the module by name when it loads
    try:
        mspec.loader.exec_module(mod)
    except BaseException:
        sys.modules.pop(_ML_MODULE, None)
        raise
    return mod


def _ml(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """pymatting's multi-level estimate; float32 in and out. Any size (1x1 is padded to 2x2:
    pymatting divides by log2 of the longer side)."""
    estimate_foreground_ml = pymatting_ml()

    h, w = alpha.shape
    if max(h, w) < 2:
        image = np.pad(image, ((0, 2 - h), (0, 2 - w), (0, 0)), mode="edge")
        alpha = np.pad(alpha, ((0, 2 - h), (0, 2 - w)), mode="edge")
    fg = estimate_foreground_ml(image, alpha)
    return np.asarray(fg, np.float32)[:h, :w]


def _fusion_pass(image: np.ndarray, fg: np.ndarray, bg: np.ndarray, alpha: np.ndarray,
                 size: int) -> tuple[np.ndarray, np.ndarray]:
    """One blur-fusion pass: local alpha-weighted means of F and B over a ``size`` box, then F
    corrected so that ``alpha F + (1 - alpha) B`` reproduces the image."""
    import cv2

    box = (size, size)
    a = alpha[..., None]
    mean_alpha = cv2.blur(alpha, box, borderType=cv2.BORDER_REPLICATE)[..., None]
    mean_fg = cv2.blur(fg * a, box, borderType=cv2.BORDER_REPLICATE) / (mean_alpha + _EPS)
    mean_bg = cv2.blur(bg * (1.0 - a), box, borderType=cv2.BORDER_REPLICATE) / (1.0 - mean_alpha + _EPS)
    residual = image - a * mean_fg - (1.0 - a) * mean_bg
    return np.clip(mean_fg + a * residual, 0.0, 1.0), mean_bg


def _blur_fusion(image: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Two fusion passes: a wide one from the image alone, a narrow one from its F and B."""
    wide, narrow = BLUR_FUSION_KERNELS
    fg, bg = _fusion_pass(image, image, image, alpha, wide)
    fg, _ = _fusion_pass(image, fg, bg, alpha, narrow)
    return fg


_ESTIMATORS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], int]] = {
    # name: (function, px of context its result at a pixel depends on, at least)
    "ml": (_ml, 0),
    "blur-fusion": (_blur_fusion, sum(k // 2 + 1 for k in BLUR_FUSION_KERNELS)),
}


def _method(method: str | None) -> str:
    m = DEFAULT_FOREGROUND_METHOD if method is None else str(method).strip().lower().replace("_", "-")
    if m not in _ESTIMATORS:
        raise InputError(f"foreground method must be one of {', '.join(FOREGROUND_METHODS)}")
    return m


# -------------------------------------------------------------------------------------- driver


def foreground_colours(image: np.ndarray, alpha: np.ndarray, method: str | None = None,
                       margin: int = DEFAULT_MARGIN,
                       band_only: bool = True) -> np.ndarray:
    """The estimation itself, without the image size rules (any ``HxW`` down to 1x1).

    ``image``: ``uint8 HxWx3``; ``alpha``: as :func:`~semat.compose.alpha.as_alpha` reads it.
    ``band_only=False`` runs the estimator on the whole frame and writes it wherever alpha < 1
    (the reference the band restriction is tested against).
    """
    func, reach = _ESTIMATORS[_method(method)]
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"image: expected an HxWx3 uint8 array, got shape {image.shape} dtype {image.dtype}")
    alpha = as_alpha(alpha, image.shape[:2])
    out = image.copy()
    soft = (alpha > 0.0) & (alpha < 1.0)
    if not soft.any():
        return out
    if band_only:
        band = unknown_band(alpha)
        jobs = _band_rectangles(band, max(int(margin), reach))
    else:
        band = alpha < 1.0
        h, w = alpha.shape
        jobs = [((0, h, 0, w), (0, h, 0, w))]

    def run(job: tuple[Rect, Rect]) -> None:
        (y0, y1, x0, x1), (cy0, cy1, cx0, cx1) = job
        crop = image[cy0:cy1, cx0:cx1].astype(np.float32) / np.float32(255.0)
        fg = func(crop, np.ascontiguousarray(alpha[cy0:cy1, cx0:cx1], np.float32))
        fg8 = np.clip(np.rint(fg[y0 - cy0:y1 - cy0, x0 - cx0:x1 - cx0] * 255.0), 0, 255).astype(np.uint8)
        where = band[y0:y1, x0:x1] & (alpha[y0:y1, x0:x1] < 1.0)
        out[y0:y1, x0:x1][where] = fg8[where]

    threads = min(len(jobs), os.cpu_count() or 1, _MAX_THREADS)
    if threads <= 1:
        for job in jobs:
            run(job)
    else:
        with ThreadPoolExecutor(threads, thread_name_prefix="semat-fg") as pool:
            list(pool.map(run, jobs))
    return out


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, margin: int = DEFAULT_MARGIN,
                        method: str | None = None) -> np.ndarray:
    """Foreground colours (``uint8 HxWx3``) with the old background's colour removed.

    ``method``: one of :data:`FOREGROUND_METHODS` (default :data:`DEFAULT_FOREGROUND_METHOD`).
    Only the unknown band of the matte is computed, with at least ``margin`` px of context; the
    exact input colour is kept where alpha is 1 and outside the band. An all-0 or all-1 matte
    returns a copy of the image at once.
    """
    return foreground_colours(check_image(image), alpha, method, margin)
