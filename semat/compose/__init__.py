"""Compositing and exports: turn an image + alpha into the files and previews people want.

Everything here is CPU NumPy/OpenCV work on finished mattes, so changing a background never
touches a model. Conventions:

* ``image``: ``HxWx3`` ``uint8`` RGB; ``alpha``: ``HxW`` float in [0, 1] (values outside are
  clipped); outputs are ``uint8`` (RGB, or RGBA for the transparent background).
* Alpha is *straight* (not premultiplied): an RGBA pixel stores the estimated foreground colour
  and the alpha separately, as PNG expects.
* **Foreground colour estimation** (``foreground_estimation=True``, the default) replaces the
  image colours in semi-transparent pixels with pymatting's ``estimate_foreground_ml``
  estimate, so hair edges stop carrying the old background's colour onto the new one. Fully
  opaque pixels keep their exact original colours. Switch it off to blend the raw image.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from semat.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from semat.pipeline import MatteResult

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255), "black": (0, 0, 0), "green": (0, 177, 64), "greenscreen": (0, 177, 64),
    "blue": (0, 71, 187), "bluescreen": (0, 71, 187), "red": (220, 30, 30), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "yellow": (255, 221, 0), "magenta": (255, 0, 255), "cyan": (0, 255, 255),
}
BACKGROUND_KINDS = ("transparent", "checker", "color", "blur", "image")
DEFAULT_BLUR_FRACTION = 0.02  # Gaussian sigma as a fraction of the longer side


@dataclass(frozen=True)
class Background:
    """A compositing target. Build one with :func:`parse_background` or directly."""

    kind: str = "transparent"  # one of BACKGROUND_KINDS
    color: tuple[int, int, int] = (255, 255, 255)
    image_path: str | None = None  # for kind "image" when no array is passed to composite()
    blur_sigma: float | None = None  # pixels; None → DEFAULT_BLUR_FRACTION of the longer side
    checker_size: int = 16

    def __post_init__(self) -> None:
        if self.kind not in BACKGROUND_KINDS:
            raise InputError(f"unknown background kind {self.kind!r}; choose one of {', '.join(BACKGROUND_KINDS)}")

    @property
    def label(self) -> str:
        if self.kind == "color":
            return "#{:02x}{:02x}{:02x}".format(*self.color)
        if self.kind == "image":
            return f"image:{Path(self.image_path).name if self.image_path else 'array'}"
        return self.kind


def parse_colour(spec: str) -> tuple[int, int, int] | None:
    """``#RGB``, ``#RRGGBB``, ``R,G,B`` (0-255) or a name from :data:`NAMED_COLOURS`; else None."""
    s = spec.strip().lower()
    if s in NAMED_COLOURS:
        return NAMED_COLOURS[s]
    m = re.fullmatch(r"#?([0-9a-f]{6}|[0-9a-f]{3})", s)
    if m and (s.startswith("#") or len(s) == 6):
        h = m.group(1)
        if len(h) == 3:
            h = "".join(c * 2 for c in h)
        return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)
    m = re.fullmatch(r"\(?\s*(\d{1,3})\s*,\s*(\d{1,3})\s*,\s*(\d{1,3})\s*\)?", s)
    if m:
        rgb = tuple(int(v) for v in m.groups())
        if all(0 <= v <= 255 for v in rgb):
            return rgb  # type: ignore[return-value]
    return None


def parse_background(spec: str | Background) -> Background:
    """Parse ``transparent`` / ``checker`` / ``blur[:SIGMA]`` / a colour / an image path."""
    if isinstance(spec, Background):
        return spec
    s = str(spec).strip()
    low = s.lower()
    if low in ("transparent", "none", "alpha", "rgba", ""):
        return Background("transparent")
    if low in ("checker", "checkerboard", "checkers"):
        return Background("checker")
    if low == "image":  # the array comes separately (composite(..., bg_image=...))
        return Background("image")
    m = re.fullmatch(r"blur(?:[:=](\d+(?:\.\d+)?))?", low)
    if m:
        sigma = float(m.group(1)) if m.group(1) else None
        if sigma is not None and sigma <= 0:
            raise InputError("blur strength must be positive, e.g. blur:15")
        return Background("blur", blur_sigma=sigma)
    colour = parse_colour(s)
    if colour is not None:
        return Background("color", color=colour)
    path = Path(s).expanduser()
    if path.is_file():
        return Background("image", image_path=str(path))
    raise InputError(f"background {s!r} is not 'transparent', 'checker', 'blur', a colour (#RRGGBB, "
                     f"R,G,B or one of {', '.join(sorted(NAMED_COLOURS))}) or an existing image file")


# ------------------------------------------------------------------------------ validation


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise InputError(f"image must be HxWx3 uint8, got {image.shape} {image.dtype}")
    return image


def _check_alpha(alpha: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
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
    return np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)


def alpha_to_png8(alpha: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] → ``uint8`` 0..255 (rounded, clipped)."""
    a = np.clip(np.nan_to_num(np.asarray(alpha, dtype=np.float32)), 0.0, 1.0)
    return np.rint(a * 255.0).astype(np.uint8)


def alpha_to_png16(alpha: np.ndarray) -> np.ndarray:
    """Alpha in [0, 1] → ``uint16`` 0..65535 (rounded, clipped) for 16-bit PNGs."""
    a = np.clip(np.nan_to_num(np.asarray(alpha, dtype=np.float64)), 0.0, 1.0)
    return np.rint(a * 65535.0).astype(np.uint16)


# ------------------------------------------------------------------ foreground estimation


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, margin: int = 32) -> np.ndarray:
    """Foreground colours (``uint8 HxWx3``) with the old background's colour removed.

    Runs pymatting's multi-level ``estimate_foreground_ml`` on the bounding box of the visible
    part of the matte (plus ``margin``), keeps the exact input colour where alpha is 1, and the
    input colour outside that box (alpha is 0 there, so it never shows).
    """
    image = _check_image(image)
    a = _check_alpha(alpha, image.shape[:2])
    out = image.copy()
    soft = (a > 0.0) & (a < 1.0)
    if not soft.any():
        return out
    visible = np.argwhere(a > 0.0)
    (y0, x0), (y1, x1) = visible.min(0), visible.max(0) + 1
    h, w = a.shape
    y0, x0 = max(0, y0 - margin), max(0, x0 - margin)
    y1, x1 = min(h, y1 + margin), min(w, x1 + margin)
    from pymatting import estimate_foreground_ml

    crop = image[y0:y1, x0:x1].astype(np.float64) / 255.0
    fg = estimate_foreground_ml(crop, a[y0:y1, x0:x1].astype(np.float64))
    fg8 = np.clip(np.rint(np.asarray(fg) * 255.0), 0, 255).astype(np.uint8)
    region = out[y0:y1, x0:x1]
    keep = a[y0:y1, x0:x1] >= 1.0
    region[~keep] = fg8[~keep]
    return out


def rgba(image: np.ndarray, alpha: np.ndarray, foreground: np.ndarray | None = None) -> np.ndarray:
    """Straight-alpha RGBA ``uint8``: colours from ``foreground`` (or ``image``), alpha 0..255."""
    image = _check_image(image)
    a = _check_alpha(alpha, image.shape[:2])
    colours = image if foreground is None else _check_image(foreground)
    if colours.shape != image.shape:
        raise InputError(f"foreground has shape {colours.shape}, expected {image.shape}")
    return np.dstack([colours, alpha_to_png8(a)])


# ---------------------------------------------------------------------------- backgrounds


def checkerboard(h: int, w: int, cell: int = 16,
                 colours: tuple[tuple[int, int, int], tuple[int, int, int]] = ((204, 204, 204),
                                                                                (255, 255, 255))) -> np.ndarray:
    """A grey/white checkerboard ``uint8 HxWx3`` (the usual transparency preview)."""
    cell = max(1, int(cell))
    yy, xx = np.indices((h, w))
    odd = ((yy // cell + xx // cell) % 2).astype(bool)
    out = np.empty((h, w, 3), np.uint8)
    out[~odd] = colours[0]
    out[odd] = colours[1]
    return out


def fit_cover(bg: np.ndarray, w: int, h: int) -> np.ndarray:
    """Resize ``bg`` to cover ``w x h`` keeping its aspect, then centre-crop to exactly that size."""
    import cv2

    bg = _check_image(bg)
    bh, bw = bg.shape[:2]
    scale = max(w / bw, h / bh)
    nw, nh = max(w, int(np.ceil(bw * scale))), max(h, int(np.ceil(bh * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(bg, (nw, nh), interpolation=interp) if (nw, nh) != (bw, bh) else bg
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(resized[y0:y0 + h, x0:x0 + w])


def blurred(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian-blurred copy of ``image`` (sigma default: 2 % of the longer side)."""
    import cv2

    h, w = image.shape[:2]
    s = float(sigma) if sigma else max(1.0, DEFAULT_BLUR_FRACTION * max(h, w))
    return cv2.GaussianBlur(image, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)


def background_array(background: Background | str, image: np.ndarray,
                     bg_image: np.ndarray | None = None) -> np.ndarray | None:
    """The ``HxWx3`` background for ``image``'s size (None for transparent)."""
    bg = parse_background(background)
    h, w = image.shape[:2]
    if bg.kind == "transparent":
        return None
    if bg.kind == "checker":
        return checkerboard(h, w, bg.checker_size)
    if bg.kind == "color":
        return np.broadcast_to(np.array(bg.color, np.uint8), (h, w, 3)).copy()
    if bg.kind == "blur":
        return blurred(image, bg.blur_sigma)
    if bg_image is None:
        if not bg.image_path:
            raise InputError("an image background needs a background image")
        from semat.io.images import load_image

        bg_image = load_image(bg.image_path).rgb
    else:
        from semat.io.images import load_image

        bg_image = load_image(bg_image, max_megapixels=None, name="background").rgb
    return fit_cover(bg_image, w, h)


def composite(image: np.ndarray, alpha: np.ndarray, background: Background | str = "transparent",
              foreground_estimation: bool = True, bg_image: np.ndarray | None = None,
              foreground: np.ndarray | None = None) -> np.ndarray:
    """Blend the matted object onto ``background``.

    Returns ``HxWx4`` RGBA for ``transparent``, else ``HxWx3`` RGB. ``foreground`` (a result of
    :func:`estimate_foreground`) skips the estimation, so a UI can recomposite cheaply.
    """
    image = _check_image(image)
    a = _check_alpha(alpha, image.shape[:2])
    if foreground is not None:
        fg = _check_image(foreground)
    elif foreground_estimation:
        fg = estimate_foreground(image, a)
    else:
        fg = image
    bg = background_array(background, image, bg_image)
    if bg is None:
        return rgba(image, a, fg)
    a3 = a[..., None]
    out = fg.astype(np.float32) * a3 + bg.astype(np.float32) * (1.0 - a3)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------- exports


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def manifest(result: MatteResult, extra: dict | None = None) -> dict:
    """The ``manifest.json`` content for ``result`` (prompt, boxes, scores, model, timings)."""
    h, w = result.image.shape[:2]
    prompt = result.prompt
    data: dict[str, Any] = {
        "format": "semat-matte-zip/1",
        "image_size": {"width": int(w), "height": int(h)},
        "prompt": {
            "text": prompt.text,
            "boxes": [list(map(float, b)) for b in prompt.boxes],
            "points": [list(p) for p in prompt.points],
        },
        "thresholds": {"box_threshold": prompt.box_threshold, "text_threshold": prompt.text_threshold},
        "model": {"variant": result.variant, "checkpoint_sha256": result.checkpoint_sha256,
                  "device": result.device_label, "detector": getattr(result, "detector", None)},
        "objects": [],
        "timings_s": {k: round(float(v), 4) for k, v in result.timings.items()},
        "notices": list(result.notices),
    }
    for i, obj in enumerate(result.objects):
        data["objects"].append({
            "index": i, "label": obj.label, "score": None if obj.score is None else float(obj.score),
            "source": obj.source, "box": [float(v) for v in obj.box],
            "points": [list(p) for p in getattr(obj, "points", ())],
            "files": {"rgba": f"object_{i}.png", "alpha": f"alpha_{i}.png"},
        })
    data["files"] = {"union_rgba": "union.png", "union_alpha": "union_alpha.png",
                     "union_alpha_16bit": "union_alpha16.png"}
    if extra:
        data.update(_jsonable(extra))
    return _jsonable(data)


def save_rgba_png(path: str | os.PathLike, image: np.ndarray, alpha: np.ndarray,
                  foreground_estimation: bool = True) -> Path:
    """Write the cut-out as an RGBA PNG (straight alpha, estimated foreground colours)."""
    from semat.io.images import save_png

    fg = estimate_foreground(image, alpha) if foreground_estimation else None
    return save_png(path, rgba(image, alpha, fg))


def save_alpha_png(path: str | os.PathLike, alpha: np.ndarray, bits: int = 8) -> Path:
    """Write the alpha matte as an 8-bit or 16-bit grayscale PNG."""
    from semat.io.images import save_png

    if bits not in (8, 16):
        raise InputError(f"alpha PNGs are 8 or 16 bit, not {bits}")
    return save_png(path, alpha_to_png8(alpha) if bits == 8 else alpha_to_png16(alpha))


def write_zip(result: MatteResult, path: str | os.PathLike, manifest_extra: dict | None = None,
              foreground_estimation: bool = True, sixteen_bit: bool = False,
              foreground: np.ndarray | None = None) -> Path:
    """Write a ZIP: ``object_k.png`` (RGBA) + ``alpha_k.png`` per object, ``union.png`` (RGBA),
    ``union_alpha.png`` (8-bit), ``union_alpha16.png`` (16-bit) and ``manifest.json``.

    ``sixteen_bit=True`` also stores per-object 16-bit alphas (``alpha16_k.png``).
    ``foreground``: an :func:`estimate_foreground` result for the union alpha, already computed
    (a single object's matte equals the union, so it is reused there too).
    """
    from semat.io.images import encode_png

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = _check_image(result.image)
    data = manifest(result, manifest_extra)
    data["foreground_estimation"] = bool(foreground_estimation)
    tmp = path.with_name(path.name + ".part")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            union_fg = None
            if foreground_estimation:
                union_fg = foreground if foreground is not None else estimate_foreground(image, result.alpha)
            single = len(result.objects) == 1 and np.array_equal(result.objects[0].alpha, result.alpha)
            for i, obj in enumerate(result.objects):
                fg = None
                if foreground_estimation:
                    fg = union_fg if single else estimate_foreground(image, obj.alpha)
                zf.writestr(f"object_{i}.png", encode_png(rgba(image, obj.alpha, fg)))
                zf.writestr(f"alpha_{i}.png", encode_png(alpha_to_png8(obj.alpha)))
                if sixteen_bit:
                    zf.writestr(f"alpha16_{i}.png", encode_png(alpha_to_png16(obj.alpha)))
                    data["objects"][i]["files"]["alpha16"] = f"alpha16_{i}.png"
            zf.writestr("union.png", encode_png(rgba(image, result.alpha, union_fg)))
            zf.writestr("union_alpha.png", encode_png(alpha_to_png8(result.alpha)))
            zf.writestr("union_alpha16.png", encode_png(alpha_to_png16(result.alpha)))
            zf.writestr("manifest.json", json.dumps(data, indent=2))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return path
