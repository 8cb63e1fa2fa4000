"""Alpha-matting error metrics: MSE, SAD, MAD, Grad, Conn (and IoU), in two reference conventions.

Two evaluation codes are in use for the models this package ships, and they disagree on scale,
normalisation and one detail of Conn, so every function here takes a ``convention``:

``"semat"`` (default) — the SEMat evaluator (``data/evaluate.py`` ``compute_*`` functions as
    called by ``AdobeCompositionEvaluator``). Values are returned exactly as that code returns them:

    * MSE, MAD: plain means over the region on the [0,1] scale (papers usually print ×1e3);
    * SAD, Grad, Conn: sums over the region divided by 1000;
    * Grad: no min-max normalisation;
    * Conn: the "largest component" of each threshold's intersection is taken from a bincount that
      *includes* label 0, so when the intersection's background outnumbers its largest foreground
      component, the background is used. This quirk is reproduced on purpose (it changes numbers).

``"sghm"`` — SGHM's ``utils/evaluate.py`` classes as called by ``test_image.py``:

    * MAD, MSE: means ×1e3; SAD is not part of this convention;
    * Grad: prediction and ground truth are each min-max normalised to [0,1] first, magnitudes in
      float32;
    * Conn: the largest *foreground* component (the conventional DIM definition);
    * IoU of the 0.5-thresholded mattes, in percent.

Both conventions use a σ=1.4 first-derivative-of-Gaussian pair (9×9) with replicated borders for
Grad, thresholds ``np.arange(0, 1.1, 0.1)``, θ=0.15 and 4-connectivity for Conn.

Inputs: 2-D arrays (H×W, or H×W×1). ``uint8`` is read as 0..255, ``uint16`` as 0..65535, ``bool``
as 0/1 and floats as alpha in [0,1]. The optional ``trimap`` restricts every metric to its unknown
region (``trimap == 128`` for 8-bit trimaps, or a boolean mask of the pixels to score); ``None``
scores the whole image, which is what both reference evaluators do. The SGHM code has no trimap;
with a trimap its metrics are restricted the same way (means over the region, sums over the region).

The SEMat *evaluator* additionally works at the 1024-resized resolution and rounds the prediction to
8 bits; that preparation lives in :mod:`semat.evaluation.runner`, not here.

Implementation notes: Grad uses separable ``cv2.sepFilter2D`` (the 9×9 kernel is an outer product),
which equals ``scipy.ndimage.convolve(mode='nearest')`` / ``cv2.filter2D`` up to float rounding;
Conn labels each threshold's intersection once with ``cv2.connectedComponentsWithStats`` (whose
labels follow raster order, like scikit-image's, so ties are broken the same way) and tracks each
pixel's round-down level as an index array.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np

CONVENTIONS = ("semat", "sghm")
METRIC_KEYS = {"semat": ("MSE", "SAD", "MAD", "Grad", "Conn"),
               "sghm": ("MAD", "MSE", "Grad", "Conn", "IoU")}
UNITS = {
    "semat": {"MSE": "mean squared error on [0,1] (x1e3 in paper tables)", "SAD": "sum of |error| / 1000",
              "MAD": "mean |error| on [0,1]", "Grad": "sum / 1000", "Conn": "sum / 1000"},
    "sghm": {"MAD": "mean |error| x 1e3", "MSE": "mean squared error x 1e3", "Grad": "sum / 1000",
             "Conn": "sum / 1000", "IoU": "percent"},
}

_SIGMA = 1.4
_CONN_THETA = 0.15
# The very same float steps the reference codes use (0.30000000000000004 and friends).
_CONN_THRESHOLDS = np.arange(0, 1 + 0.1, 0.1)


# --------------------------------------------------------------------------------------------- inputs
def as_alpha(x: Any, name: str = "alpha") -> np.ndarray:
    """Return ``x`` as a float64 H×W array on the [0,1] scale (see the module doc for dtypes)."""
    a = np.asarray(x)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (H x W) array, got shape {a.shape}")
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if a.dtype == np.uint8:
        return a / 255.0
    if a.dtype == np.uint16:
        return a / 65535.0
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name} has dtype {a.dtype}; use uint8 (0..255), uint16 (0..65535) or float in [0, 1]")
    a = a.astype(np.float64, copy=False)
    lo, hi = float(np.min(a)), float(np.max(a))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name} float values must lie in [0, 1] (got {lo:g}..{hi:g}); "
                         "pass 0..255 data as uint8")
    return a


def region_mask(trimap: Any, shape: tuple[int, int]) -> np.ndarray | None:
    """The scored region: None (whole image), or a boolean mask from a trimap / boolean array."""
    if trimap is None:
        return None
    t = np.asarray(trimap)
    if t.ndim == 3 and t.shape[-1] == 1:
        t = t[..., 0]
    if t.shape != tuple(shape):
        raise ValueError(f"trimap has shape {t.shape} but the alphas have shape {tuple(shape)}")
    if t.dtype == np.bool_:
        return t
    if np.issubdtype(t.dtype, np.floating) and t.size and float(np.nanmax(t)) <= 1.0:
        return np.abs(t * 255.0 - 128.0) < 0.5  # a trimap that was divided by 255
    return t == 128


def _pair(pred: Any, gt: Any) -> tuple[np.ndarray, np.ndarray]:
    p, g = as_alpha(pred, "prediction"), as_alpha(gt, "ground truth")
    if p.shape != g.shape:
        raise ValueError(f"prediction has shape {p.shape} but ground truth has shape {g.shape}")
    return p, g


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown metrics convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")


def _region_sum(x: np.ndarray, region: np.ndarray | None) -> float:
    return float(np.sum(x if region is None else x[region]))


def _region_size(shape: tuple[int, ...], region: np.ndarray | None) -> int:
    return int(np.prod(shape)) if region is None else int(np.count_nonzero(region))


def _region_mean(err: np.ndarray, region: np.ndarray | None, convention: str) -> float:
    """Mean of a per-pixel error over the region: semat sum / (n + 1e-8); sghm ``np.mean`` ×1e3."""
    if convention == "semat":
        return _region_sum(err, region) / (_region_size(err.shape, region) + 1e-8)
    return float(np.mean(err if region is None else err[region])) * 1e3


# -------------------------------------------------------------------------------------- simple errors
def mse(pred: Any, gt: Any, mask: Any = None, convention: str = "semat") -> float:
    """Mean squared error over the region (semat: raw mean; sghm: ×1e3)."""
    _check_convention(convention)
    p, g = _pair(pred, gt)
    return _mse(p, g, region_mask(mask, p.shape), convention)


def _mse(p: np.ndarray, g: np.ndarray, region: np.ndarray | None, convention: str) -> float:
    return _region_mean(np.square(p - g), region, convention)


def sad(pred: Any, gt: Any, mask: Any = None) -> float:
    """Sum of absolute differences over the region, divided by 1000 (SEMat convention only)."""
    p, g = _pair(pred, gt)
    return _region_sum(np.abs(p - g), region_mask(mask, p.shape)) / 1000


def mad(pred: Any, gt: Any, mask: Any = None, convention: str = "semat") -> float:
    """Mean absolute difference over the region (semat: raw mean; sghm: ×1e3)."""
    _check_convention(convention)
    p, g = _pair(pred, gt)
    return _mad(p, g, region_mask(mask, p.shape), convention)


def _mad(p: np.ndarray, g: np.ndarray, region: np.ndarray | None, convention: str) -> float:
    return _region_mean(np.abs(p - g), region, convention)


def iou(pred: Any, gt: Any, mask: Any = None) -> float:
    """IoU of ``pred > 0.5`` and ``gt > 0.5`` in percent (SGHM's MetricIOU)."""
    p, g = _pair(pred, gt)
    return _iou(p, g, region_mask(mask, p.shape))


def _iou(p: np.ndarray, g: np.ndarray, region: np.ndarray | None) -> float:
    pb, gb = p > 0.5, g > 0.5
    if region is not None:
        pb, gb = pb & region, gb & region
    inter = np.count_nonzero(pb & gb)
    union = np.count_nonzero(pb | gb)
    return inter / (union + 1e-8) * 100.0


# ----------------------------------------------------------------------------------------------- Grad
def _gauss_1d(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised 1-D Gaussian and Gaussian-derivative taps; their outer product is the 2-D kernel."""
    half = math.ceil(sigma * math.sqrt(-2 * math.log(math.sqrt(2 * math.pi) * sigma * 0.01)))
    x = np.arange(-half, half + 1, dtype=np.float64)
    gauss = np.exp(-x**2 / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))
    dgauss = -x * gauss / sigma**2
    # The 2-D kernel G(i)·G'(j) divided by its L2 norm equals (G/|G|) ⊗ (G'/|G'|).
    return gauss / np.linalg.norm(gauss), dgauss / np.linalg.norm(dgauss)


_GAUSS, _DGAUSS = _gauss_1d(_SIGMA)


def gauss_gradient_magnitude(img: np.ndarray) -> np.ndarray:
    """|∇(img)| with the σ=1.4 Gaussian-derivative pair, replicated borders (float64)."""
    img = np.ascontiguousarray(img, dtype=np.float64)
    border = cv2.BORDER_REPLICATE
    gx = cv2.sepFilter2D(img, cv2.CV_64F, _DGAUSS, _GAUSS, borderType=border)
    gy = cv2.sepFilter2D(img, cv2.CV_64F, _GAUSS, _DGAUSS, borderType=border)
    return cv2.magnitude(gx, gy)


def _minmax(a: np.ndarray) -> np.ndarray:
    """cv2.normalize(..., 1, 0, NORM_MINMAX): a constant image becomes all zeros."""
    lo, hi = float(a.min()), float(a.max())
    rng = hi - lo
    scale = 1.0 / rng if rng > np.finfo(np.float64).eps else 0.0
    return (a - lo) * scale


def grad(pred: Any, gt: Any, mask: Any = None, convention: str = "semat") -> float:
    """Gradient error: Σ (|∇p| − |∇g|)² over the region, ÷1000."""
    _check_convention(convention)
    p, g = _pair(pred, gt)
    return _grad(p, g, region_mask(mask, p.shape), convention)


def _grad(p: np.ndarray, g: np.ndarray, region: np.ndarray | None, convention: str) -> float:
    if convention == "semat":
        diff = gauss_gradient_magnitude(p) - gauss_gradient_magnitude(g)
        return _region_sum(np.square(diff), region) / 1000
    mp = gauss_gradient_magnitude(_minmax(p)).astype(np.float32)
    mg = gauss_gradient_magnitude(_minmax(g)).astype(np.float32)
    sq = np.square(mg - mp)  # float32 sum, as the reference
    return float(np.sum(sq if region is None else sq[region])) / 1000


# ----------------------------------------------------------------------------------------------- Conn
def _round_down_map(p: np.ndarray, g: np.ndarray, background_quirk: bool) -> np.ndarray:
    """Each pixel's round-down level l: the last threshold before it leaves the largest component.

    The intersections ``min(p, g) >= t`` shrink as t grows, so each one is labelled only inside the
    bounding box of the previous one; pixels outside that box are background of the intersection.
    """
    steps = _CONN_THRESHOLDS
    both = np.minimum(p, g)  # (p >= t) & (g >= t)  ==  min(p, g) >= t
    total = both.size
    level = np.full(both.shape, len(steps) - 1, dtype=np.int8)  # never assigned -> l = 1
    unset = np.ones(both.shape, dtype=bool)
    y0, y1, x0, x1 = 0, both.shape[0], 0, both.shape[1]
    for i in range(1, len(steps)):
        inter = both[y0:y1, x0:x1] >= steps[i]
        rows = np.flatnonzero(inter.any(axis=1))
        if rows.size == 0:
            # Empty intersection: one label (0) covering everything. The quirk selects it, so
            # nothing changes now or at any higher threshold; otherwise Ω is empty.
            if not background_quirk:
                np.copyto(level, i - 1, where=unset)
            break
        cols = np.flatnonzero(inter.any(axis=0))
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        inter = np.ascontiguousarray(inter[r0:r1, c0:c1])
        y0, y1, x0, x1 = y0 + r0, y0 + r1, x0 + c0, x0 + c1
        box = (slice(y0, y1), slice(x0, x1))
        n, labels = cv2.connectedComponents(inter.view(np.uint8), connectivity=4, ltype=cv2.CV_32S)
        counts = np.bincount(labels.ravel(), minlength=n)
        best = 1 + int(np.argmax(counts[1:]))
        background = total - (inter.size - int(counts[0]))
        if background_quirk and background >= counts[best]:
            # Ω is the intersection's background: exactly the intersection's pixels leave. At any
            # higher threshold the background only grows and the largest component only shrinks,
            # so Ω stays the background and the pixels still unset (all background) never leave.
            np.copyto(level[box], i - 1, where=unset[box] & inter)
            break
        else:
            omega = labels == best
            box_unset = unset[box] & omega
            np.copyto(level, i - 1, where=unset)  # everything still unset leaves ...
            unset[:] = False
            level_box = level[box]
            np.copyto(level_box, len(steps) - 1, where=box_unset)  # ... except Ω, which stays unset
            unset[box] = box_unset
        if not unset.any():
            break
    return steps[level]


def conn(pred: Any, gt: Any, mask: Any = None, convention: str = "semat") -> float:
    """Connectivity error Σ |φ_p − φ_g| over the region, ÷1000 (see the module doc for the quirk)."""
    _check_convention(convention)
    p, g = _pair(pred, gt)
    return _conn(p, g, region_mask(mask, p.shape), convention)


def _conn(p: np.ndarray, g: np.ndarray, region: np.ndarray | None, convention: str) -> float:
    lmap = _round_down_map(p, g, background_quirk=(convention == "semat"))
    # φ = 1 − d·[d ≥ θ] with d = alpha − l, so |φ_p − φ_g| = |d_g·[d_g ≥ θ] − d_p·[d_p ≥ θ]|.
    dp = np.subtract(p, lmap)
    np.copyto(dp, 0.0, where=dp < _CONN_THETA)
    dg = np.subtract(g, lmap, out=lmap)
    np.copyto(dg, 0.0, where=dg < _CONN_THETA)
    dg -= dp
    np.abs(dg, out=dg)
    return _region_sum(dg, region) / 1000


# -------------------------------------------------------------------------------------------- all/mean
def compute_all(pred: Any, gt: Any, trimap: Any = None, convention: str = "semat") -> dict[str, float]:
    """All metrics of ``convention`` for one pair: semat -> MSE, SAD, MAD, Grad, Conn;
    sghm -> MAD, MSE, Grad, Conn, IoU (units in :data:`UNITS`)."""
    _check_convention(convention)
    p, g = _pair(pred, gt)
    region = region_mask(trimap, p.shape)
    if convention == "semat":
        absdiff = np.abs(p - g)
        return {"MSE": _region_mean(np.square(absdiff), region, "semat"),
                "SAD": _region_sum(absdiff, region) / 1000,
                "MAD": _region_mean(absdiff, region, "semat"),
                "Grad": _grad(p, g, region, "semat"),
                "Conn": _conn(p, g, region, "semat")}
    return {"MAD": _mad(p, g, region, "sghm"),
            "MSE": _mse(p, g, region, "sghm"),
            "Grad": _grad(p, g, region, "sghm"),
            "Conn": _conn(p, g, region, "sghm"),
            "IoU": _iou(p, g, region)}


def mean_metrics(rows: Iterable[Mapping[str, Any]], keys: Iterable[str] | None = None) -> dict[str, float]:
    """Arithmetic mean per metric over per-image dicts, as both reference evaluators aggregate.

    Missing, None or NaN entries are left out of that metric's mean; a metric with no values is NaN.
    ``keys`` defaults to every key seen whose values are numbers.
    """
    rows = list(rows)
    if keys is None:
        seen: dict[str, None] = {}
        for r in rows:
            for k, v in r.items():
                if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
                    seen[k] = None
        keys = list(seen)
    out: dict[str, float] = {}
    for k in keys:
        vals = [float(r[k]) for r in rows if r.get(k) is not None and not _isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def _isnan(v: Any) -> bool:
    try:
        return math.isnan(float(v))
    except (TypeError, ValueError):
        return True


def paper_units(metrics: Mapping[str, float], convention: str = "semat") -> dict[str, float]:
    """Values as matting papers print them: MSE and MAD ×1e3, SAD/Grad/Conn already in thousands.

    For the sghm convention the values already are in those units and are returned unchanged.
    """
    _check_convention(convention)
    out = dict(metrics)
    if convention == "semat":
        for k in ("MSE", "MAD"):
            if k in out and out[k] is not None:
                out[k] = out[k] * 1e3
    return out
