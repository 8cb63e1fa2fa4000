"""The limits on input images, read from :class:`semat.settings.Settings` at call time.

Three kinds: the **bytes** of encoded input (``SEMAT_MAX_UPLOAD``, a Gradio size string, see
:func:`parse_size`), the **pixels** named in a header (``SEMAT_MAX_INPUT_MEGAPIXELS``: larger
images are refused before decoding) with the shape rules of :func:`semat.validate.check_size`,
and the **megapixel cap** that decoded images are downscaled to (``SEMAT_MAX_MEGAPIXELS``,
see :func:`fit_size`). :func:`resolve_limits` turns a caller's arguments into one :class:`Limits`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from semat.errors import ImageInputError, InputError, clip_text
from semat.settings import Settings
from semat.validate import check_size

__all__ = [
    "DEFAULT_MAX_MEGAPIXELS", "FROM_SETTINGS", "MAX_INPUT_MEGAPIXELS", "Default", "Limits", "check_bytes",
    "check_header", "fit_size", "max_bytes_from_env", "max_input_megapixels_from_env", "max_megapixels_from_env",
    "parse_size", "resolve_limits",
]


class Default(enum.Enum):
    FROM_SETTINGS = "from settings"


#: Default of ``max_megapixels`` / ``max_bytes``: the current ``SEMAT_*`` setting, read per call.
FROM_SETTINGS = Default.FROM_SETTINGS

#: Built-in defaults (the environment is read per call, never at import).
DEFAULT_MAX_MEGAPIXELS: float = Settings().max_megapixels
MAX_INPUT_MEGAPIXELS: float = Settings().max_input_megapixels

_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


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
class Limits:
    """The limits one call applies (None: no cap)."""

    max_megapixels: float | None
    max_bytes: int | None
    max_input_megapixels: float


def resolve_limits(max_megapixels: float | Default | None, max_bytes: int | Default | None) -> Limits:
    """The caps for one call: :data:`FROM_SETTINGS` reads the setting, None means no cap."""
    settings = Settings.from_env()
    mp = settings.max_megapixels if max_megapixels is FROM_SETTINGS else max_megapixels
    if mp is not None and (isinstance(mp, bool) or not isinstance(mp, (int, float)) or not math.isfinite(mp)
                           or mp <= 0):
        raise InputError(f"max_megapixels must be a positive number, got {clip_text(mp)}")
    nb = parse_size(settings.max_upload) if max_bytes is FROM_SETTINGS else max_bytes
    if nb is not None and (isinstance(nb, bool) or not isinstance(nb, int) or nb <= 0):
        raise InputError(f"max_bytes must be a positive whole number, got {clip_text(nb)}")
    return Limits(None if mp is None else float(mp), nb, settings.max_input_megapixels)


def check_bytes(size: int, label: str, limits: Limits) -> None:
    if limits.max_bytes is not None and size > limits.max_bytes:
        raise ImageInputError(f"{label} is {_fmt_bytes(size)}, above the {_fmt_bytes(limits.max_bytes)} limit for "
                              "images (SEMAT_MAX_UPLOAD); send a smaller file")


def check_header(w: int, h: int, label: str, limits: Limits) -> None:
    """The pixel cap and the size rules, on a size read from the header (before decoding)."""
    if w <= 0 or h <= 0:
        raise ImageInputError(f"{label} has no pixels ({w}×{h})")
    limit = limits.max_input_megapixels
    if w * h > limit * 1e6:
        raise ImageInputError(
            f"{label} is {w}×{h} px ({w * h / 1e6:.0f} MP), above the {limit:g} MP safety limit for input "
            "images (a possible decompression bomb); resize it first or raise SEMAT_MAX_INPUT_MEGAPIXELS")
    check_size(w, h, name=label)


def fit_size(w: int, h: int, max_megapixels: float) -> tuple[int, int]:
    """Largest (w, h) with the same aspect whose pixel count is at most ``max_megapixels``."""
    if w * h <= max_megapixels * 1e6:
        return w, h
    s = math.sqrt(max_megapixels * 1e6 / (w * h))
    nw, nh = max(1, int(w * s)), max(1, int(h * s))
    return nw, nh
