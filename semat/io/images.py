"""Input hygiene and PNG output, shared by the CLI, the pipeline and the web app.

:func:`load_image` turns whatever a user hands over (a path, raw bytes, a PIL image, a NumPy
array) into one predictable thing: an ``HxWx3`` ``uint8`` RGB array plus notices the UI can
show. :func:`load_image_data_url` does the same for a ``data:image/...;base64,`` URL, with the
same limits (``load_image`` itself takes paths, never URLs: which kinds of input a caller
accepts from where is the caller's decision, and a string is never silently a URL). The rules:

* **Limits, before decoding**, read at call time from :class:`semat.settings.Settings`:

  - **bytes**: encoded input (a file, bytes, a data: URL) above ``max_bytes`` (default
    ``SEMAT_MAX_UPLOAD``, a Gradio size string such as ``50mb``, see :func:`parse_size`) is
    refused, so the app's upload cap also covers images that arrive another way (a ``data:``
    URL inside an API call, a file path);
  - **pixels**: the size is read from the file's header (Pillow opens lazily) and images above
    ``SEMAT_MAX_INPUT_MEGAPIXELS`` are refused without being decoded; Pillow's own
    ``DecompressionBombError`` ends the same way;
  - **shape**: :func:`semat.validate.check_size` (at least ``MIN_SIDE`` px a side, at most
    ``MAX_ASPECT``:1), on the header too, so a 1×1 or a 1×10000 image is refused with one
    message on every path (path, bytes, PIL image, array).

* **EXIF orientation** is applied (phone photos come out upright), then the tag is dropped.
* **Modes**: ``1``/``L``/``P`` → RGB; ``I;16*``/``I``/``F`` (16-bit, 32-bit and float gray)
  are *rescaled* to 8 bits (65535 → 255, never clipped; see :func:`_gray_to_uint8`); 16-bit
  RGB(A) PNGs are reduced to 8 bits by Pillow; ``CMYK`` goes through the embedded ICC profile
  when there is one (else Pillow's formula); any other mode through ``convert("RGB")``.
* **Transparency** (``RGBA``/``LA``/``PA``/``P`` with a transparent colour) is composited onto
  **white**, the way image viewers show such files, and a notice says so. Keeping the hidden
  RGB under alpha=0 would feed arbitrary (often black) colours to the matting model.
* **Multi-frame** files (GIF, APNG, TIFF pages) use the first frame, with a notice.
* **Megapixel cap**: images above ``max_megapixels`` (default ``SEMAT_MAX_MEGAPIXELS``, 12 MP)
  are downscaled (area-averaging, aspect kept; JPEGs are decoded at reduced scale first) and a
  notice names the old and new size.
* **Bad files** raise :class:`ImageInputError` with one line that names the input (clipped to
  :data:`semat.errors.MAX_ECHO` characters). For a **path**, every reason it cannot be opened
  as an image (absent, a folder or other non-file, unreadable, empty, not an image format)
  gives the *same* message, ``<name> cannot be read as an image ...``, so messages never tell
  a caller whether some server path exists; once the file is known to be an image, messages
  are specific (truncated, too large, ...).
"""

from __future__ import annotations

import base64
import binascii
import enum
import io
import math
import os
import stat
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from semat.errors import ImageInputError, InputError, clip_text
from semat.settings import Settings
from semat.validate import check_size

__all__ = [
    "DEFAULT_MAX_MEGAPIXELS", "FROM_SETTINGS", "MAX_INPUT_MEGAPIXELS", "ImageInputError", "LoadedImage",
    "encode_png", "fit_size", "is_data_url", "load_image", "load_image_data_url", "max_bytes_from_env",
    "max_input_megapixels_from_env", "max_megapixels_from_env", "parse_size", "read_png", "save_png",
    "to_pil",
]


class _Default(enum.Enum):
    FROM_SETTINGS = "from settings"


#: Default of ``max_megapixels`` / ``max_bytes``: the current ``SEMAT_*`` setting, read per call.
FROM_SETTINGS = _Default.FROM_SETTINGS

#: Built-in defaults (the environment is read per call, never at import).
DEFAULT_MAX_MEGAPIXELS: float = Settings().max_megapixels
MAX_INPUT_MEGAPIXELS: float = Settings().max_input_megapixels

# What Pillow raises on broken or hostile files (its plugins can fail with any of these).
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, struct.error,
                  ZeroDivisionError)

_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


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


# ---------------------------------------------------------------------------------- settings


def max_megapixels_from_env() -> float:
    """The current ``SEMAT_MAX_MEGAPIXELS`` (read at call time, for long-running apps)."""
    return Settings.from_env().max_megapixels


def max_input_megapixels_from_env() -> float:
    """The current ``SEMAT_MAX_INPUT_MEGAPIXELS``: larger images are refused before decoding."""
    return Settings.from_env().max_input_megapixels


def parse_size(size: str | int, what: str = "SEMAT_MAX_UPLOAD") -> int:
    """Bytes of a Gradio size string (``"50mb"``, ``"1 gb"``, ``"200kb"``, ``"123b"``; units are
    powers of 1024, case and spaces ignored) or an int, the way Gradio's ``max_file_size`` reads it."""
    if isinstance(size, bool):
        raise InputError(f"{what}={size!r} is not a size like 50mb")
    if isinstance(size, int):
        if size < 0:
            raise InputError(f"{what}={size} must not be negative")
        return size
    text = str(size).replace(" ", "")
    digits = len(text) - len(text.lstrip("0123456789"))
    unit = text[digits:].upper()
    if digits == 0 or unit not in _SIZE_UNITS:
        raise InputError(f"{what}={clip_text(size, 40)} is not a size like 50mb (a whole number, then b, kb, mb, "
                         "gb or tb)")
    return int(text[:digits]) * _SIZE_UNITS[unit]


def max_bytes_from_env() -> int:
    """The current byte cap for encoded images: ``SEMAT_MAX_UPLOAD`` (default ``50mb``)."""
    return parse_size(Settings.from_env().max_upload)


def _fmt_bytes(n: int) -> str:
    for unit, scale in (("GB", 1024 ** 3), ("MB", 1024 ** 2), ("kB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


@dataclass(frozen=True)
class _Limits:
    max_megapixels: float | None
    max_bytes: int | None
    max_input_megapixels: float


def _limits(max_megapixels: float | _Default | None, max_bytes: int | _Default | None) -> _Limits:
    settings = Settings.from_env()
    mp = settings.max_megapixels if max_megapixels is FROM_SETTINGS else max_megapixels
    if mp is not None and (isinstance(mp, bool) or not isinstance(mp, (int, float)) or not math.isfinite(mp)
                           or mp <= 0):
        raise InputError(f"max_megapixels must be a positive number, got {clip_text(mp)}")
    nb = parse_size(settings.max_upload) if max_bytes is FROM_SETTINGS else max_bytes
    if nb is not None and (isinstance(nb, bool) or not isinstance(nb, int) or nb <= 0):
        raise InputError(f"max_bytes must be a positive whole number, got {clip_text(nb)}")
    return _Limits(None if mp is None else float(mp), nb, settings.max_input_megapixels)


# ----------------------------------------------------------------------------------- loading


def unreadable_message(label: str) -> str:
    """The one message for any file that cannot be opened as an image (whatever the reason, so it
    never tells whether a path exists)."""
    return f"{clip_text(label)} cannot be read as an image (no such file, not readable, or not an image file)"


def load_image(src: Any, max_megapixels: float | _Default | None = FROM_SETTINGS,
               name: str | None = None, *, max_bytes: int | _Default | None = FROM_SETTINGS) -> LoadedImage:
    """Load and normalise ``src`` (path, bytes, PIL image or array) to RGB ``uint8``.

    ``max_megapixels``: downscale above this many megapixels (default ``SEMAT_MAX_MEGAPIXELS``;
    None: never). ``max_bytes``: refuse encoded input (a file, bytes) larger than this (default
    ``SEMAT_MAX_UPLOAD``; None: no cap). The pixel and shape limits always apply.
    """
    limits = _limits(max_megapixels, max_bytes)
    if isinstance(src, np.ndarray):
        label = clip_text(name or "image")
        a = _check_array_shape(src, label)
        _check_header(a.shape[1], a.shape[0], label, limits)
        rgb, notices = _array_to_rgb(a, label)
        h, w = rgb.shape[:2]
        rgb, more = _cap(rgb, limits.max_megapixels, label)
        return LoadedImage(rgb, (w, h), notices + more, label)
    if isinstance(src, Image.Image):
        default = Path(src.filename).name if isinstance(getattr(src, "filename", None), str) and src.filename \
            else "image"
        return _from_pil(src, clip_text(name or default), limits)
    if isinstance(src, (bytes, bytearray, memoryview)):
        label = clip_text(name or "image")
        size = memoryview(src).nbytes
        if size == 0:
            raise ImageInputError(f"{label} is empty (0 bytes)")
        _check_bytes(size, label, limits)
        img = _open(io.BytesIO(bytes(src)), label,
                    unidentified=f"{label} is not an image file (unknown or unsupported format)")
        return _from_pil(img, label, limits)
    if isinstance(src, (str, os.PathLike)):
        return _load_path(src, name, limits)
    raise ImageInputError(f"unsupported image input of type {type(src).__name__}")


def _load_path(src: str | os.PathLike, name: str | None, limits: _Limits) -> LoadedImage:
    text = os.fspath(src)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if is_data_url(text):
        raise ImageInputError(f"{clip_text(name or text)} is a data: URL, not a file path; send it as an "
                              "upload (or decode it with load_image_data_url)")
    path = Path(text).expanduser()
    label = clip_text(name or path.name or text)
    unreadable = unreadable_message(label)
    try:  # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of hanging
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (OSError, ValueError):  # absent, no permission, name too long, NUL byte, ...
        raise ImageInputError(unreadable) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            raise ImageInputError(unreadable)
        f = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with f:
        img = _open(f, label, unidentified=unreadable)
        _check_bytes(st.st_size, label, limits)  # only for files known to be images (no oracle)
        return _from_pil(img, label, limits)


def is_data_url(value: object) -> bool:
    """True for a string that starts like a ``data:`` URL (case-insensitive)."""
    return isinstance(value, str) and value[:5].lower() == "data:"


def load_image_data_url(url: str, max_megapixels: float | _Default | None = FROM_SETTINGS,
                        name: str | None = None, *,
                        max_bytes: int | _Default | None = FROM_SETTINGS) -> LoadedImage:
    """Decode a ``data:image/<type>[;...];base64,<payload>`` URL with :func:`load_image`'s limits.

    The byte cap is checked on the payload's length *before* base64 decoding, so an oversized
    URL costs nothing; other media types and non-base64 URLs are refused.
    """
    limits = _limits(max_megapixels, max_bytes)
    label = clip_text(name or "image")
    if not is_data_url(url):
        raise ImageInputError(f"{label}: expected a data:image/...;base64,... URL, got {clip_text(url, 40)}")
    comma = url.find(",", 0, 1024)
    header = url[5:comma] if comma >= 0 else ""
    params = [p.strip().lower() for p in header.split(";")]
    if comma < 0 or params[-1] != "base64":
        raise ImageInputError(f"{label}: only base64 data: URLs are accepted (data:image/png;base64,...)")
    if params[0] and not params[0].startswith("image/"):
        raise ImageInputError(f"{label} is a data: URL of {clip_text(params[0], 40)}, not an image")
    payload = url[comma + 1:]
    decoded_max = len(payload) * 3 // 4
    if limits.max_bytes is not None and decoded_max - 2 > limits.max_bytes:
        _check_bytes(decoded_max, label, limits)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        try:  # line breaks inside the payload are common in hand-made URLs
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ImageInputError(f"{label}: the data: URL's payload is not valid base64") from None
    return load_image(data, limits.max_megapixels, label, max_bytes=limits.max_bytes)


# ------------------------------------------------------------------------------------ limits


def _check_bytes(size: int, label: str, limits: _Limits) -> None:
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise ImageInputError(f"{label} is {_fmt_bytes(size)}, above the {_fmt_bytes(limits.max_bytes)} limit for "
                              "images (SEMAT_MAX_UPLOAD); send a smaller file")


def _check_header(w: int, h: int, label: str, limits: _Limits) -> None:
    """The pixel cap and the size rules, on a size read from the header (before decoding)."""
    if w <= 0 or h <= 0:
        raise ImageInputError(f"{label} has no pixels ({w}×{h})")
    limit = limits.max_input_megapixels
    if w * h > limit * 1e6:
        raise ImageInputError(
            f"{label} is {w}×{h} px ({w * h / 1e6:.0f} MP), above the {limit:g} MP safety limit for input "
            "images (a possible decompression bomb); resize it first or raise SEMAT_MAX_INPUT_MEGAPIXELS")
    check_size(w, h, name=label)


def _bomb_message(label: str) -> str:
    return (f"{label} is refused as a possible decompression bomb: its header claims more pixels than "
            f"Pillow's limit ({2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP); resize it first")


def _open(fp: IO[bytes], label: str, *, unidentified: str) -> Image.Image:
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


def _from_pil(img: Image.Image, label: str, limits: _Limits) -> LoadedImage:
    max_megapixels = limits.max_megapixels
    notices: list[str] = []
    w0, h0 = img.size
    _check_header(w0, h0, label, limits)  # before load(): nothing is decoded yet
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
