"""Decoding: a Pillow image or a NumPy array to an ``HxWx3`` ``uint8`` RGB array plus notices.

EXIF orientation, mode conversion (high-bit-depth gray rescaled, CMYK through its ICC profile),
transparency composited onto white, the first of several frames, and the megapixel cap; the
rules are listed in :mod:`semat.io.images`. Every failure is one :class:`ImageInputError`.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from semat.errors import ImageInputError, clip_text
from semat.io.limits import Limits, check_header, fit_size

__all__ = ["Decoded", "decode_array", "decode_pil", "open_image"]

#: What decoding gives: the RGB array, the (W, H) before any downscale, and the notices.
Decoded = tuple[np.ndarray, tuple[int, int], list[str]]

# What Pillow raises on broken or hostile files (its plugins can fail with any of these).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error,
                  ZeroDivisionError)


def decode_array(src: np.ndarray, label: str, limits: Limits) -> Decoded:
    """An array (HxW, HxWx1, HxWx3 or HxWx4; bool, integer or float) under the same limits."""
    a = _check_array_shape(src, label)
    check_header(a.shape[1], a.shape[0], label, limits)
    rgb, notices = _array_to_rgb(a, label)
    h, w = rgb.shape[:2]
    rgb, more = _cap(rgb, limits.max_megapixels, label)
    return rgb, (w, h), notices + more


def _bomb_message(label: str) -> str:
    return (f"{label} is refused as a possible decompression bomb: its header claims more pixels than "
            f"Pillow's limit ({2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP); resize it first")


def open_image(fp: IO[bytes], label: str, *, unidentified: str) -> Image.Image:
    """Pillow's lazy open: reads the header only."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise ImageInputError(_bomb_message(label)) from exc
    except UnidentifiedImageError:
        raise ImageInputError(unidentified) from None
    except _DECODE_ERRORS as exc:
        raise ImageInputError(f"{label} is not a readable image ({_short(exc)})") from exc


def _short(exc: BaseException) -> str:
    return clip_text(" ".join(str(exc).split()) or type(exc).__name__, 160)


def decode_pil(img: Image.Image, label: str, limits: Limits) -> Decoded:
    """Decode a lazily opened image (header checked first, then loaded, oriented and converted)."""
    max_megapixels = limits.max_megapixels
    notices: list[str] = []
    w0, h0 = img.size
    check_header(w0, h0, label, limits)  # before load(): nothing is decoded yet
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        notices.append(f"{label} has {frames} frames; using the first one")
    # Decode JPEGs at a reduced scale when they are far above the cap (much less memory).
    if max_megapixels is not None and img.format == "JPEG" and w0 * h0 > max_megapixels * 1e6:
        s = math.sqrt(max_megapixels * 1e6 / (w0 * h0))
        img.draft("RGB", (max(1, int(w0 * s)), max(1, int(h0 * s))))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img.load()
            oriented = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError as exc:
        raise ImageInputError(_bomb_message(label)) from exc
    except _DECODE_ERRORS as exc:
        raise ImageInputError(f"{label} is corrupt or truncated ({_short(exc)})") from exc
    if oriented is not None and oriented is not img:
        if oriented.size != img.size or _orientation(img) not in (None, 1):
            notices.append(f"{label}: EXIF orientation applied")
        img = oriented
    # Original size in the upright frame, before the JPEG draft reduction.
    orientation = _orientation_swaps(w0, h0, img.size)
    original_size = (h0, w0) if orientation else (w0, h0)
    rgb, more = _pil_to_rgb(img, label)
    notices += more
    rgb, more = _cap(rgb, max_megapixels, label, original_size)
    notices += more
    return rgb, original_size, notices


def _orientation(img: Image.Image) -> int | None:
    try:
        return img.getexif().get(0x0112)
    except Exception:  # malformed EXIF must not stop loading
        return None


def _orientation_swaps(w0: int, h0: int, size: tuple[int, int]) -> bool:
    """True when the upright image is the transposed stored image (EXIF 5..8)."""
    w, h = size
    if w0 == h0:
        return False
    return (w > h) != (w0 > h0)


def _pil_to_rgb(img: Image.Image, label: str) -> tuple[np.ndarray, list[str]]:
    notices: list[str] = []
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img, dtype=np.uint8).copy(), notices
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        gray = _gray_to_uint8(np.asarray(img), mode)
        notices.append(f"{label}: {_mode_name(mode)} grayscale converted to 8-bit RGB")
        return np.repeat(gray[..., None], 3, axis=2), notices
    if mode == "CMYK":
        notices.append(f"{label}: CMYK converted to RGB")
        return np.asarray(_cmyk_to_rgb(img), dtype=np.uint8).copy(), notices
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        arr = np.asarray(rgba, dtype=np.float32)
        a = arr[..., 3:4] / 255.0
        if float(a.min()) < 1.0:
            notices.append(f"{label}: transparent areas composited onto white")
        out = arr[..., :3] * a + 255.0 * (1.0 - a)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), notices
    if mode in ("1", "L", "P"):
        return np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), notices
    notices.append(f"{label}: {mode} converted to RGB")
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy(), notices


def _mode_name(mode: str) -> str:
    return {"I": "32-bit", "F": "floating-point"}.get(mode, "16-bit")


def _gray_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Rescale a high-bit-depth gray image to 8 bits without clipping.

    16-bit modes map 0..65535 → 0..255. ``I`` (32-bit int) is treated as 8-bit when it fits in
    0..255, as 16-bit when it fits in 0..65535, else min-max scaled. ``F`` is treated as 0..1
    when it fits, 0..255 when it fits, else min-max scaled.
    """
    a = arr.astype(np.float64)
    if not np.isfinite(a).all():
        a = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        scaled = a * (255.0 / 65535.0)
    elif mode == "F" and lo >= 0 and hi <= 1.0:
        scaled = a * 255.0
    elif lo >= 0 and hi <= 255:
        scaled = a
    elif mode == "I" and lo >= 0 and hi <= 65535:
        scaled = a * (255.0 / 65535.0)
    else:
        scaled = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            dst = ImageCms.createProfile("sRGB")
            out = ImageCms.profileToProfile(img, src, dst, outputMode="RGB")
            if out is not None:
                return out
        except Exception:  # broken profile: fall back to the plain formula
            pass
    return img.convert("RGB")


def _check_array_shape(arr: np.ndarray, label: str) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageInputError(f"{label}: expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageInputError(f"{label} has no pixels (shape {a.shape})")
    return a


def _array_to_rgb(arr: np.ndarray, label: str) -> tuple[np.ndarray, list[str]]:
    notices: list[str] = []
    a = _check_array_shape(arr, label)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == np.uint16:
        u8 = np.clip(np.rint(a.astype(np.float64) * (255.0 / 65535.0)), 0, 255).astype(np.uint8)
        notices.append(f"{label}: 16-bit values converted to 8-bit")
    elif np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64))
        scale = 255.0 if f.size and float(f.max()) <= 1.0 else 1.0
        u8 = np.clip(np.rint(f * scale), 0, 255).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.integer):
        u8 = _gray_to_uint8(a, "I")
    else:
        raise ImageInputError(f"{label}: unsupported array dtype {a.dtype}")
    if u8.ndim == 2:
        return np.repeat(u8[..., None], 3, axis=2), notices
    if u8.shape[2] == 4:
        alpha = u8[..., 3:4].astype(np.float32) / 255.0
        if float(alpha.min()) < 1.0:
            notices.append(f"{label}: transparent areas composited onto white")
        out = u8[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(out + 0.5, 0, 255).astype(np.uint8), notices
    return np.ascontiguousarray(u8), notices


def _cap(rgb: np.ndarray, max_megapixels: float | None, label: str,
         original_size: tuple[int, int] | None = None) -> tuple[np.ndarray, list[str]]:
    h, w = rgb.shape[:2]
    ow, oh = original_size or (w, h)
    if max_megapixels is None:
        return rgb, []
    nw, nh = fit_size(ow, oh, max_megapixels)
    if (nw, nh) == (ow, oh) and (w, h) == (ow, oh):
        return rgb, []
    if (w, h) != (nw, nh):
        import cv2

        rgb = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA)
    notice = (f"{label} is {ow}×{oh} ({ow * oh / 1e6:.1f} MP); downscaled to {nw}×{nh} "
              f"({nw * nh / 1e6:.1f} MP) to stay under the {max_megapixels:g} MP limit "
              "(SEMAT_MAX_MEGAPIXELS)")
    return np.ascontiguousarray(rgb), [notice]
