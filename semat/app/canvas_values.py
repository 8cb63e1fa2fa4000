"""Making and changing canvas values in Python: :func:`canvas_value` builds one (a picture, its
original size, boxes with detection metadata, points, a mask overlay); :func:`updated`,
:func:`with_mask` and :func:`keep_best` change one while keeping the user's ``rev``."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from semat.app.canvas_contract import URL_PREFIXES, sanitize_canvas_value
from semat.app.canvas_files import mask_file, preview_file

__all__ = ["canvas_value", "keep_best", "updated", "with_mask"]


def _is_url(s: str) -> bool:
    if s.startswith("/"):  # a same-origin URL gradio made, or else a file path
        return "/gradio_api/" in s and not Path(s).is_file()
    return s.startswith(URL_PREFIXES)


def _file_data(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such file: {p}")
    return {"path": str(p), "orig_name": p.name, "meta": {"_type": "gradio.FileData"}}


def _image_ref(src: Any, *, mask: bool = False) -> dict[str, Any]:
    if isinstance(src, str) and _is_url(src):
        return {"src": src}
    if isinstance(src, (str, os.PathLike)):
        return {"src": None, "file": _file_data(src)}
    return {"src": None, "file": _file_data(mask_file(src) if mask else preview_file(src))}


def canvas_value(
    preview_src: Any = None,
    width: int | None = None,
    height: int | None = None,
    boxes: Iterable[Sequence[Any]] = (),
    points: Iterable[Sequence[Any]] = (),
    *,
    labels: Sequence[str | None] | None = None,
    scores: Sequence[float | None] | None = None,
    enabled: Sequence[bool] | None = None,
    best: int | None = None,
    mask: Any = None,
    mask_opacity: float = 0.5,
    mask_mode: str = "luminance",
    selected: int | None = None,
) -> dict[str, Any]:
    """A canvas value (checked like browser input).

    ``preview_src``: the picture to show: a URL (``http(s)``, ``/…``, ``data:image``), a path to
    an image file (served by gradio), or a PIL image / NumPy array (written with
    :func:`preview_file`). ``width``×``height``: the ORIGINAL image size, the frame of ``boxes``
    (``[x1, y1, x2, y2]``) and ``points`` (``[x, y, 1|0]``); for an array or PIL image they default
    to its size. ``labels``/``scores``/``enabled``: per-box detection metadata; ``best=N`` ticks
    only the N best-scored boxes. ``mask``: the coarse mask overlay (URL, path, or array / PIL
    image: white = object), drawn at ``mask_opacity``.
    """
    if preview_src is None:
        image = None
    else:
        if width is None or height is None:
            size = _image_size(preview_src)
            width = size[0] if width is None else width
            height = size[1] if height is None else height
        image = {**_image_ref(preview_src), "width": width, "height": height}
    out_boxes: list[list[Any]] = []
    for i, b in enumerate(boxes):
        meta: dict[str, Any] = {}
        if labels is not None and i < len(labels) and labels[i]:
            meta["label"] = labels[i]
        if scores is not None and i < len(scores) and scores[i] is not None:
            meta["score"] = float(scores[i])  # type: ignore[arg-type]
        if enabled is not None and i < len(enabled) and not enabled[i]:
            meta["enabled"] = False
        out_boxes.append([*list(b)[:4], meta] if meta else list(b)[:4])
    value: dict[str, Any] = {"image": image, "boxes": out_boxes, "points": [list(p) for p in points],
                             "mask": None, "selected": selected}
    if mask is not None:
        value["mask"] = {**_image_ref(mask, mask=True), "opacity": mask_opacity, "mode": mask_mode}
    value = sanitize_canvas_value(value)
    return keep_best(value, best) if best is not None else value


def _image_size(src: Any) -> tuple[int, int]:
    from PIL import Image

    if hasattr(src, "shape"):
        return int(src.shape[1]), int(src.shape[0])
    if isinstance(src, Image.Image):
        return src.size
    if isinstance(src, (str, os.PathLike)) and Path(src).is_file():
        with Image.open(src) as im:  # the upright size (EXIF orientation applied)
            w, h = im.size
            return (h, w) if im.getexif().get(0x0112, 1) in (5, 6, 7, 8) else (w, h)
    raise ValueError("width and height (the original image size) are required for a URL preview")


def updated(value: Any, **changes: Any) -> dict[str, Any]:
    """A checked copy of ``value`` with top-level keys replaced (``rev`` is kept)."""
    v = sanitize_canvas_value(value)
    v.update(changes)
    return sanitize_canvas_value(v)


def with_mask(value: Any, mask: Any, opacity: float | None = None, mode: str = "luminance") -> dict[str, Any]:
    """``value`` with the coarse-mask overlay set (``mask=None`` removes it); keeps ``rev``."""
    v = sanitize_canvas_value(value)
    if mask is None:
        v["mask"] = None
    else:
        old = v["mask"] or {}
        v["mask"] = {**_image_ref(mask, mask=True), "mode": mode,
                     "opacity": old.get("opacity", 0.5) if opacity is None else opacity}
    return sanitize_canvas_value(v)


def keep_best(value: Any, n: int) -> dict[str, Any]:
    """Tick only the ``n`` best-scored boxes (boxes without a score rank first, in order)."""
    v = sanitize_canvas_value(value)
    rank = sorted(range(len(v["boxes"])), key=lambda i: (-_score(v["boxes"][i]), i))
    keep = set(rank[:max(0, int(n))])
    for i, b in enumerate(v["boxes"]):
        meta = dict(b[4]) if len(b) > 4 else {}
        meta.pop("enabled", None)
        if i not in keep:
            meta["enabled"] = False
        v["boxes"][i] = [*b[:4], meta] if meta else b[:4]
    return v


def _score(b: list[Any]) -> float:
    s = b[4].get("score") if len(b) > 4 else None
    return math.inf if s is None else float(s)
