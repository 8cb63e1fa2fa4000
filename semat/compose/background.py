"""Compositing targets: :class:`Background`, the background spec parser, colours, checkerboard,
blur and image backgrounds.

Safety rules (reliability review H1, H2, L3):

* A background **image** is an array the caller passes (an upload). A string is read as a server
  path only with ``parse_background(spec, allow_path=True)``, which the CLI uses (its user owns
  the machine). Without it, every string that is not a known form gets one and the same message,
  whatever exists on disk, and the filesystem is never touched.
* The blur strength is bounded: ``0 < sigma <= MAX_BLUR_SIGMA`` px and finite. Large sigmas are
  computed on a downscaled copy (:func:`blurred`), so the cost no longer grows with sigma.
* Colours are three integers 0..255; background arrays follow :func:`semat.validate.check_image`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semat.errors import InputError, clip_text
from semat.validate import check_image

__all__ = [
    "BACKGROUND_KINDS", "DEFAULT_BLUR_FRACTION", "EXACT_BLUR_MAX_SIGMA", "MAX_BLUR_SIGMA", "NAMED_COLOURS",
    "Background", "background_array", "blurred", "checkerboard", "fit_cover", "parse_background", "parse_colour",
]

NAMED_COLOURS: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255), "black": (0, 0, 0), "green": (0, 177, 64), "greenscreen": (0, 177, 64),
    "blue": (0, 71, 187), "bluescreen": (0, 71, 187), "red": (220, 30, 30), "gray": (128, 128, 128),
    "grey": (128, 128, 128), "yellow": (255, 221, 0), "magenta": (255, 0, 255), "cyan": (0, 255, 255),
}
BACKGROUND_KINDS = ("transparent", "checker", "color", "blur", "image")
DEFAULT_BLUR_FRACTION = 0.02  # Gaussian sigma as a fraction of the longer side (capped at MAX_BLUR_SIGMA)
MAX_BLUR_SIGMA = 200.0  # px; beyond this a blur looks the same and only costs time (H2)
EXACT_BLUR_MAX_SIGMA = 8.0  # px; up to here cv2.GaussianBlur runs at full size (unchanged output)
MAX_CHECKER_CELL = 4096  # px

_FORMS = ("'transparent', 'checker', 'blur' or 'blur:SIGMA' (SIGMA in px, more than 0 and at most "
          f"{MAX_BLUR_SIGMA:g}), a colour (#RRGGBB, R,G,B with values 0-255, or one of "
          f"{', '.join(sorted(NAMED_COLOURS))})")
# One message for every refused string when paths are off: it never depends on the filesystem.
REFUSED_BACKGROUND = f"background must be {_FORMS}, or an uploaded image"


def _check_sigma(value: Any) -> float:
    try:
        sigma = float(value)
    except (TypeError, ValueError):
        raise InputError(f"blur strength must be a number of pixels, e.g. blur:15; got {clip_text(value, 40)}") \
            from None
    if not math.isfinite(sigma) or not 0.0 < sigma <= MAX_BLUR_SIGMA:
        raise InputError(f"blur strength must be more than 0 and at most {MAX_BLUR_SIGMA:g} px, e.g. blur:15; "
                         f"got {clip_text(value, 40)}")
    return sigma


def _check_colour(value: Any) -> tuple[int, int, int]:
    try:
        rgb = tuple(value)
        ok = len(rgb) == 3 and all(float(v) == int(v) and 0 <= int(v) <= 255 for v in rgb)
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise InputError(f"a background colour is three integers 0-255, got {clip_text(value, 40)}")
    return tuple(int(v) for v in rgb)  # type: ignore[return-value]


@dataclass(frozen=True)
class Background:
    """A compositing target. Build one with :func:`parse_background` or directly (the same
    bounds apply either way)."""

    kind: str = "transparent"  # one of BACKGROUND_KINDS
    color: tuple[int, int, int] = (255, 255, 255)
    image_path: str | None = None  # for kind "image" when no array is passed to composite()
    blur_sigma: float | None = None  # pixels; None → DEFAULT_BLUR_FRACTION of the longer side
    checker_size: int = 16

    def __post_init__(self) -> None:
        if self.kind not in BACKGROUND_KINDS:
            raise InputError(f"unknown background kind {clip_text(self.kind, 40)}; choose one of "
                             f"{', '.join(BACKGROUND_KINDS)}")
        object.__setattr__(self, "color", _check_colour(self.color))
        if self.blur_sigma is not None:
            object.__setattr__(self, "blur_sigma", _check_sigma(self.blur_sigma))
        if not isinstance(self.checker_size, (int, np.integer)) or not 1 <= self.checker_size <= MAX_CHECKER_CELL:
            raise InputError(f"checker_size must be an integer from 1 to {MAX_CHECKER_CELL} px")
        if self.image_path is not None and not isinstance(self.image_path, str):
            object.__setattr__(self, "image_path", str(self.image_path))

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


def parse_background(spec: str | Background | None, allow_path: bool = False) -> Background:
    """Parse ``transparent`` / ``checker`` / ``blur[:SIGMA]`` / a colour / ``image``.

    ``image`` means "an array passed separately" (``composite(..., bg_image=...)``). A string
    naming an image **file** is accepted only with ``allow_path=True`` (command line use); without
    it any other string is refused with :data:`REFUSED_BACKGROUND`, the same text whatever the
    string and whatever exists on disk.
    """
    if isinstance(spec, Background):
        return spec
    if spec is None:
        return Background("transparent")
    if not isinstance(spec, (str, Path)):
        raise InputError(REFUSED_BACKGROUND)
    s = str(spec).strip()
    low = s.lower()
    if low in ("transparent", "none", "alpha", "rgba", ""):
        return Background("transparent")
    if low in ("checker", "checkerboard", "checkers"):
        return Background("checker")
    if low == "image":  # the array comes separately (composite(..., bg_image=...))
        return Background("image")
    m = re.fullmatch(r"blur(?:\s*[:=]\s*(\S*))?", low)
    if m:
        return Background("blur", blur_sigma=None if m.group(1) is None else _check_sigma(m.group(1)))
    colour = parse_colour(s)
    if colour is not None:
        return Background("color", color=colour)
    m = re.fullmatch(r"\(?\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*\)?", low)
    if m:  # R,G,B with a value above 255
        raise InputError(f"background colour R,G,B needs values 0-255, got {clip_text(s, 40)}")
    if not allow_path:
        raise InputError(REFUSED_BACKGROUND)
    try:
        path = Path(s).expanduser()
        is_file = path.is_file()
    except (OSError, ValueError):  # name too long, embedded NUL, ...
        is_file = False
    if is_file:
        return Background("image", image_path=str(path))
    raise InputError(f"background {clip_text(s)!r} is not {_FORMS} or an existing image file")


# ------------------------------------------------------------------------------ drawing


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

    bg = check_image(bg, name="background")
    bh, bw = bg.shape[:2]
    scale = max(w / bw, h / bh)
    nw, nh = max(w, int(np.ceil(bw * scale))), max(h, int(np.ceil(bh * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(bg, (nw, nh), interpolation=interp) if (nw, nh) != (bw, bh) else bg
    y0, x0 = (nh - h) // 2, (nw - w) // 2
    return np.ascontiguousarray(resized[y0:y0 + h, x0:x0 + w])


def default_blur_sigma(h: int, w: int) -> float:
    """:data:`DEFAULT_BLUR_FRACTION` of the longer side, at least 1 px, at most the bound."""
    return min(MAX_BLUR_SIGMA, max(1.0, DEFAULT_BLUR_FRACTION * max(h, w)))


def blurred(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Gaussian-blurred copy of ``image`` (sigma default: 2 % of the longer side).

    Up to :data:`EXACT_BLUR_MAX_SIGMA` this is ``cv2.GaussianBlur`` at full size. Above it the
    image is area-downscaled by ``f = sigma // 4``, blurred there with the sigma that gives the same
    total spread, and scaled back up (within about 1 level of the full-size blur; the full-size
    one costs time linear in sigma: 26 s at sigma 80 on 12 MP).
    """
    import cv2

    image = check_image(image)
    h, w = image.shape[:2]
    s = _check_sigma(sigma) if sigma else default_blur_sigma(h, w)
    if s <= EXACT_BLUR_MAX_SIGMA:
        return cv2.GaussianBlur(image, (0, 0), sigmaX=s, sigmaY=s, borderType=cv2.BORDER_REFLECT)
    f = int(s // 4)
    sw, sh = max(1, math.ceil(w / f)), max(1, math.ceil(h / f))
    small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    # variance already spent (original px²): the f-px box of the downscale + the bilinear upscale
    spent = (f * f - 1) / 12.0 + f * f / 6.0
    s_small = math.sqrt(max(s * s - spent, 0.25 * f * f)) / f
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=s_small, sigmaY=s_small, borderType=cv2.BORDER_REFLECT)
    small8 = np.clip(small + 0.5, 0, 255).astype(np.uint8)
    return cv2.resize(small8, (w, h), interpolation=cv2.INTER_LINEAR)


def background_array(background: Background | str, image: np.ndarray,
                     bg_image: np.ndarray | None = None) -> np.ndarray | None:
    """The ``HxWx3`` background for ``image``'s size (None for transparent).

    A string ``background`` is parsed with paths off; pass a :class:`Background` made by
    ``parse_background(spec, allow_path=True)`` to use an image file.
    """
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
    from semat.io.images import load_image

    if bg_image is None:
        if not bg.image_path:
            raise InputError("an image background needs a background image")
        rgb = load_image(bg.image_path, name="background").rgb
    else:
        rgb = load_image(bg_image, max_megapixels=None, name="background").rgb
    return fit_cover(check_image(rgb, name="background"), w, h)
