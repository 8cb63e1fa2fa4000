"""The files behind a canvas value: JPEG previews and greyscale mask PNGs written, by content,
to a folder gradio may serve, and the checked path of a file the user uploaded to the canvas."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Any

from semat.app.canvas_contract import CanvasValueError

__all__ = ["PREVIEW_MAX_SIDE", "mask_file", "preview_file", "uploaded_path"]

#: Longest side of the previews :func:`preview_file` writes.
PREVIEW_MAX_SIDE = 2048


def _cache_dir() -> Path:
    d = Path(tempfile.gettempdir()) / "semat-canvas"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write(data: bytes, suffix: str, directory: str | os.PathLike[str] | None) -> Path:
    d = Path(directory) if directory is not None else _cache_dir()
    path = d / f"{hashlib.sha1(data).hexdigest()[:20]}{suffix}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def _to_pil(image: Any):
    import numpy as np
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        return image
    if isinstance(image, (str, os.PathLike)):  # upright, like semat's image loader
        with Image.open(image) as im:
            return ImageOps.exif_transpose(im)
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float32) * (255.0 if a.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return Image.fromarray(a)


def _shrink(im, max_side: int):
    from PIL import Image

    w, h = im.size
    if max(w, h) > max_side:
        k = max_side / max(w, h)
        im = im.resize((max(1, round(w * k)), max(1, round(h * k))), Image.Resampling.LANCZOS, reducing_gap=3.0)
    return im


def preview_file(image: Any, max_side: int = PREVIEW_MAX_SIDE, directory: str | os.PathLike[str] | None = None,
                 quality: int = 85) -> Path:
    """A JPEG preview of ``image`` (PIL, array or path), at most ``max_side`` px on its long
    side, in a temp folder gradio may serve (named by content, so repeats are free)."""
    from PIL import Image

    im = _shrink(_to_pil(image), max_side)
    if im.mode != "RGB":
        if "A" in im.getbands():  # transparent pixels shown on white
            rgba = im.convert("RGBA")
            im = Image.new("RGB", im.size, (255, 255, 255))
            im.paste(rgba, mask=rgba.getchannel("A"))
        else:
            im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality, optimize=True)
    return _write(buf.getvalue(), ".jpg", directory)


def mask_file(mask: Any, max_side: int = 1024, directory: str | os.PathLike[str] | None = None) -> Path:
    """A greyscale PNG of ``mask`` (white = object; PIL, array in 0..1 or 0..255, or path) for
    the overlay, at most ``max_side`` px on its long side (the browser stretches it)."""
    im = _to_pil(mask)
    im = _shrink(im.convert("L") if im.mode != "L" else im, max_side)
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=False, compress_level=3)
    return _write(buf.getvalue(), ".png", directory)


def uploaded_path(evt: Any) -> Path:
    """The file of an ``upload`` event (``gr.EventData`` or its data dict), checked to be a file
    gradio itself saved in its upload folder (the path comes from the browser: never trust it)."""
    from gradio import utils as gr_utils

    data = getattr(evt, "_data", evt)
    raw = data.get("path") if isinstance(data, dict) else None
    if not isinstance(raw, str) or not raw:
        raise CanvasValueError("the upload event carries no file path")
    path = Path(raw).resolve()
    folder = Path(gr_utils.get_upload_folder()).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        raise CanvasValueError("that file was not uploaded through this app; drop or pick the image again")
    return path
