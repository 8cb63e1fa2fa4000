"""Input hygiene and PNG output, shared by the CLI, the pipeline and the web app.

:func:`load_image` turns whatever a user hands over (a path, raw bytes, a PIL image, a NumPy
array) into one predictable thing: an ``HxWx3`` ``uint8`` RGB array plus notices the UI can
show. The rules:

* **EXIF orientation** is applied (phone photos come out upright), then the tag is dropped.
* **Modes**: ``1``/``L``/``P`` → RGB; ``I;16*``/``I``/``F`` (16-bit, 32-bit and float gray)
  are *rescaled* to 8 bits (65535 → 255, never clipped; see :func:`_gray_to_uint8`); 16-bit
  RGB(A) PNGs are reduced to 8 bits by Pillow; ``CMYK`` goes through the embedded ICC profile
  when there is one (else Pillow's formula); any other mode through ``convert("RGB")``.
* **Transparency** (``RGBA``/``LA``/``PA``/``P`` with a transparent colour) is composited onto
  **white**, the way image viewers show such files, and a notice says so. Keeping the hidden
  RGB under alpha=0 would feed arbitrary (often black) colours to the matting model.
* **Multi-frame** files (GIF, APNG, TIFF pages) use the first frame, with a notice.
* **Decompression-bomb guard**: the pixel count is read from the header *before* decoding.
  Files above :data:`MAX_INPUT_MEGAPIXELS` (``SEMAT_MAX_INPUT_MEGAPIXELS``, default 178.9 MP,
  Pillow's own hard limit) are refused with :class:`ImageInputError`; Pillow's
  ``DecompressionBombError`` ends the same way.
* **Megapixel cap**: images above ``max_megapixels`` (default :data:`DEFAULT_MAX_MEGAPIXELS`,
  ``SEMAT_MAX_MEGAPIXELS``, 12 MP) are downscaled (area-averaging, aspect kept; JPEGs are
  decoded at reduced scale first) and a notice names the old and new size.
* **Bad files** (missing, empty, not an image, truncated/corrupt) raise
  :class:`ImageInputError` with one line that names the file.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from semat.errors import ImageInputError, InputError


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(f"{name}={raw!r} must be a positive number")
    return value


DEFAULT_MAX_MEGAPIXELS: float = _env_float("SEMAT_MAX_MEGAPIXELS", 12.0)
#: Hard limit checked on the header before any decoding (decompression-bomb guard).
MAX_INPUT_MEGAPIXELS: float = _env_float("SEMAT_MAX_INPUT_MEGAPIXELS", 2 * 89_478_485 / 1e6)

@dataclass
class LoadedImage:
    """A normalised input image."""

    rgb: np.ndarray  # HxWx3 uint8 (after orientation and downscale)
    original_size: tuple[int, int]  # (W, H) after EXIF orientation, before any downscale
    notices: list[str] = field(default_factory=list)
    name: str = "image"

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) of :attr:`rgb`."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[0])

    @property
    def downscaled(self) -> bool:
        return self.size != self.original_size


def max_megapixels_from_env() -> float:
    """The current ``SEMAT_MAX_MEGAPIXELS`` (read at call time, for long-running apps)."""
    return _env_float("SEMAT_MAX_MEGAPIXELS", DEFAULT_MAX_MEGAPIXELS)


def load_image(src: Any, max_megapixels: float | None = DEFAULT_MAX_MEGAPIXELS,
               name: str | None = None) -> LoadedImage:
    """Load and normalise ``src`` (path, bytes, PIL image or array) to RGB ``uint8``.

    ``max_megapixels=None`` disables the downscale (the bomb guard still applies).
    """
    if max_megapixels is not None and (not math.isfinite(max_megapixels) or max_megapixels <= 0):
        raise InputError(f"max_megapixels must be a positive number, got {max_megapixels!r}")
    if isinstance(src, np.ndarray):
        label = name or "image"
        rgb, notices = _array_to_rgb(src, label)
        h, w = rgb.shape[:2]
        _check_bomb(w, h, label)
        rgb, more = _cap(rgb, max_megapixels, label)
        return LoadedImage(rgb, (w, h), notices + more, label)
    if isinstance(src, Image.Image):
        return _from_pil(src, name or (Path(src.filename).name if getattr(src, "filename", "") else "image"),
                         max_megapixels)
    if isinstance(src, (bytes, bytearray, memoryview)):
        label = name or "image"
        if len(src) == 0:
            raise ImageInputError(f"{label} is empty (0 bytes)")
        return _open_and_load(io.BytesIO(bytes(src)), label, max_megapixels)
    if isinstance(src, (str, os.PathLike)):
        path = Path(src).expanduser()
        label = name or path.name or str(path)
        if not path.exists():
            raise ImageInputError(f"{label}: no such file ({path})")
        if path.is_dir():
            raise ImageInputError(f"{label} is a folder, not an image file")
        if path.stat().st_size == 0:
            raise ImageInputError(f"{label} is empty (0 bytes)")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ImageInputError(f"{label} cannot be read ({exc.strerror or exc})") from exc
        return _open_and_load(io.BytesIO(data), label, max_megapixels)
    raise ImageInputError(f"unsupported image input of type {type(src).__name__}")


def _check_bomb(w: int, h: int, label: str) -> None:
    limit = _env_float("SEMAT_MAX_INPUT_MEGAPIXELS", MAX_INPUT_MEGAPIXELS)
    if w <= 0 or h <= 0:
        raise ImageInputError(f"{label} has no pixels ({w}×{h})")
    if w * h > limit * 1e6:
        raise ImageInputError(
            f"{label} is {w}×{h} ({w * h / 1e6:.0f} MP), above the {limit:.0f} MP safety limit "
            "(possible decompression bomb); resize it first or raise SEMAT_MAX_INPUT_MEGAPIXELS")


def _open_and_load(fp: io.BytesIO, label: str, max_megapixels: float | None) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except Image.DecompressionBombError as exc:
        raise ImageInputError(f"{label} is refused as a possible decompression bomb ({exc})") from exc
    except UnidentifiedImageError as exc:
        raise ImageInputError(f"{label} is not an image file (unknown or unsupported format)") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageInputError(f"{label} is not a readable image ({_short(exc)})") from exc
    return _from_pil(img, label, max_megapixels)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _from_pil(img: Image.Image, label: str, max_megapixels: float | None) -> LoadedImage:
    notices: list[str] = []
    w0, h0 = img.size
    _check_bomb(w0, h0, label)
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
        raise ImageInputError(f"{label} is refused as a possible decompression bomb ({exc})") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
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
    return LoadedImage(rgb, original_size, notices, label)


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


def _array_to_rgb(arr: np.ndarray, label: str) -> tuple[np.ndarray, list[str]]:
    notices: list[str] = []
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageInputError(f"{label}: expected an HxW, HxWx3 or HxWx4 array, got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ImageInputError(f"{label} has no pixels (shape {a.shape})")
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


def fit_size(w: int, h: int, max_megapixels: float) -> tuple[int, int]:
    """Largest (w, h) with the same aspect whose pixel count is at most ``max_megapixels``."""
    if w * h <= max_megapixels * 1e6:
        return w, h
    s = math.sqrt(max_megapixels * 1e6 / (w * h))
    nw, nh = max(1, int(w * s)), max(1, int(h * s))
    return nw, nh


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


# ----------------------------------------------------------------------------------- output


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
