"""Input hygiene and PNG output, shared by the CLI, the pipeline and the web app.

:func:`load_image` turns whatever a user hands over (a path, raw bytes, a PIL image, a NumPy
array) into one predictable thing: an ``HxWx3`` ``uint8`` RGB array plus notices the UI can
show. :func:`load_image_data_url` does the same for a ``data:image/...;base64,`` URL, with the
same limits (``load_image`` itself takes paths, never URLs: which kinds of input a caller
accepts from where is the caller's decision, and a string is never silently a URL). The rules:

The work is split by concept: :mod:`semat.io.limits` (the caps and how they are read),
:mod:`semat.io.decode` (Pillow image or array to RGB) and :mod:`semat.io.png` (PNG output);
this module is the entry point and re-exports their public names.

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
import io
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from semat.errors import ImageInputError, clip_text
from semat.io.decode import decode_array, decode_pil, open_image
from semat.io.limits import (
    DEFAULT_MAX_MEGAPIXELS,
    FROM_SETTINGS,
    MAX_INPUT_MEGAPIXELS,
    Default,
    Limits,
    check_bytes,
    fit_size,
    max_bytes_from_env,
    max_input_megapixels_from_env,
    max_megapixels_from_env,
    parse_size,
    resolve_limits,
)
from semat.io.png import encode_png, read_png, save_png, to_pil

__all__ = [
    "DEFAULT_MAX_MEGAPIXELS", "FROM_SETTINGS", "MAX_INPUT_MEGAPIXELS", "ImageInputError", "LoadedImage",
    "encode_png", "fit_size", "is_data_url", "load_image", "load_image_data_url", "max_bytes_from_env",
    "max_input_megapixels_from_env", "max_megapixels_from_env", "parse_size", "read_png", "save_png",
    "to_pil", "unreadable_message",
]


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


def _from_pil(img: Image.Image, label: str, limits: Limits) -> LoadedImage:
    return LoadedImage(*decode_pil(img, label, limits), label)


def unreadable_message(label: str) -> str:
    """The one message for any file that cannot be opened as an image (whatever the reason, so it
    never tells whether a path exists)."""
    return f"{clip_text(label)} cannot be read as an image (no such file, not readable, or not an image file)"


def load_image(src: Any, max_megapixels: float | Default | None = FROM_SETTINGS,
               name: str | None = None, *, max_bytes: int | Default | None = FROM_SETTINGS) -> LoadedImage:
    """Load and normalise ``src`` (path, bytes, PIL image or array) to RGB ``uint8``.

    ``max_megapixels``: downscale above this many megapixels (default ``SEMAT_MAX_MEGAPIXELS``;
    None: never). ``max_bytes``: refuse encoded input (a file, bytes) larger than this (default
    ``SEMAT_MAX_UPLOAD``; None: no cap). The pixel and shape limits always apply.
    """
    limits = resolve_limits(max_megapixels, max_bytes)
    if isinstance(src, np.ndarray):
        label = clip_text(name or "image")
        return LoadedImage(*decode_array(src, label, limits), label)
    if isinstance(src, Image.Image):
        default = Path(src.filename).name if isinstance(getattr(src, "filename", None), str) and src.filename \
            else "image"
        return _from_pil(src, clip_text(name or default), limits)
    if isinstance(src, (bytes, bytearray, memoryview)):
        label = clip_text(name or "image")
        size = memoryview(src).nbytes
        if size == 0:
            raise ImageInputError(f"{label} is empty (0 bytes)")
        check_bytes(size, label, limits)
        img = open_image(io.BytesIO(bytes(src)), label,
                           unidentified=f"{label} is not an image file (unknown or unsupported format)")
        return _from_pil(img, label, limits)
    if isinstance(src, (str, os.PathLike)):
        return _load_path(src, name, limits)
    raise ImageInputError(f"unsupported image input of type {type(src).__name__}")


def _load_path(src: str | os.PathLike, name: str | None, limits: Limits) -> LoadedImage:
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
        img = open_image(f, label, unidentified=unreadable)
        check_bytes(st.st_size, label, limits)  # only for files known to be images (no oracle)
        return _from_pil(img, label, limits)


def is_data_url(value: object) -> bool:
    """True for a string that starts like a ``data:`` URL (case-insensitive)."""
    return isinstance(value, str) and value[:5].lower() == "data:"


def load_image_data_url(url: str, max_megapixels: float | Default | None = FROM_SETTINGS,
                        name: str | None = None, *,
                        max_bytes: int | Default | None = FROM_SETTINGS) -> LoadedImage:
    """Decode a ``data:image/<type>[;...];base64,<payload>`` URL with :func:`load_image`'s limits.

    The byte cap is checked on the payload's length *before* base64 decoding, so an oversized
    URL costs nothing; other media types and non-base64 URLs are refused.
    """
    limits = resolve_limits(max_megapixels, max_bytes)
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
        check_bytes(decoded_max, label, limits)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        try:  # line breaks inside the payload are common in hand-made URLs
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError):
            raise ImageInputError(f"{label}: the data: URL's payload is not valid base64") from None
    return load_image(data, limits.max_megapixels, label, max_bytes=limits.max_bytes)
