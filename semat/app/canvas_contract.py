"""The prompt canvas's value contract: its limits, its types and the checks on untrusted values.

Every value from the browser or an API client goes through :func:`sanitize_canvas_value`
(a checked, normalised copy, or one :class:`CanvasValueError` saying what to fix);
:func:`parse_canvas_value` reads the prompt out of it. The value's layout is documented in
:mod:`semat.app.canvas`.
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from semat.errors import PromptError

__all__ = [
    "MAX_BOXES", "MAX_LABEL", "MAX_POINTS", "MAX_SIDE", "URL_PREFIXES", "Box", "CanvasPrompt", "CanvasValueError",
    "fmt_coord", "load_json", "parse_canvas_value", "sanitize_canvas_value",
]

#: Hard caps on what a value may hold (the app's own matting limit, ``max_boxes``, is lower).
MAX_BOXES = 256
MAX_POINTS = 256
MAX_LABEL = 80
MAX_SIDE = 65536
_MAX_JSON = 32 * 1024 * 1024
#: What an image or mask ``src`` may start with (a ``/`` path is same-origin).
URL_PREFIXES = ("http://", "https://", "data:image/", "blob:", "/")

Box = tuple[float, float, float, float]
Point = tuple[float, float, int]


class CanvasValueError(PromptError):
    """The canvas value (from the browser or an API client) cannot be used; the message says why."""


class CanvasPrompt(NamedTuple):
    """The prompt in a canvas value: ticked boxes and all points, in original image pixels."""

    boxes: list[Box]
    points: list[Point]
    size: tuple[int, int] | None  #: (W, H) of the original image, None without an image
    box_index: list[int]  #: for each of ``boxes``, its index in ``value["boxes"]``
    labels: list[str]  #: label text of each of ``boxes`` ("" when none)
    scores: list[float | None]
    selected: int | None  #: index in ``value["boxes"]`` of the selected box


def fmt_coord(v: float) -> str:
    """A coordinate as the user reads it: whole pixels without decimals, else one decimal."""
    return str(round(v)) if abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def load_json(text: str) -> Any:
    """A value sent as JSON text (None for blank text), size-capped."""
    if len(text) > _MAX_JSON:
        raise CanvasValueError(f"the canvas value is too large ({len(text)} characters)")
    try:
        return json.loads(text) if text.strip() else None
    except ValueError as e:
        raise CanvasValueError(f"the canvas value is not valid JSON ({e})") from None


def _number(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise CanvasValueError(f"{what} must be a number, not {_show(v)}")
    f = float(v)
    if not math.isfinite(f):
        raise CanvasValueError(f"{what} must be a finite number, not {_show(v)}")
    return f


def _size(v: Any, what: str) -> int:
    f = _number(v, what)
    if f != int(f) or not 1 <= f <= MAX_SIDE:
        raise CanvasValueError(f"{what} must be a whole number of pixels from 1 to {MAX_SIDE}, not {_show(v)}")
    return int(f)


def _show(v: Any) -> str:
    s = repr(v)
    return s if len(s) <= 40 else s[:37] + "..."


def _url(v: Any, what: str) -> str | None:
    if v is None or v == "":
        return None
    if not isinstance(v, str) or not v.startswith(URL_PREFIXES) or v.lower().startswith("data:image/svg"):
        raise CanvasValueError(f"{what} must be an http(s), same-origin or data:image URL, not {_show(v)}")
    return v


def _file(v: Any, what: str) -> dict[str, Any] | None:
    if v is None:
        return None
    if not isinstance(v, dict) or not isinstance(v.get("path"), str):
        raise CanvasValueError(f"{what} must be a gradio FileData dict with a path")
    keep = {k: v[k] for k in ("path", "url", "size", "orig_name", "mime_type", "is_stream", "meta") if k in v}
    keep["meta"] = {"_type": "gradio.FileData"}
    return keep


def _meta(v: Any, n: int) -> dict[str, Any] | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = {"label": v}
    if not isinstance(v, dict):
        raise CanvasValueError(f"box {n}: the 5th item must be a label or a dict, not {_show(v)}")
    out: dict[str, Any] = {}
    label = v.get("label")
    if label not in (None, ""):
        out["label"] = str(label)[:MAX_LABEL]
    if v.get("score") is not None:
        out["score"] = min(1.0, max(0.0, _number(v["score"], f"box {n}: score")))
    if "enabled" in v and not v["enabled"]:
        out["enabled"] = False
    if v.get("colour") is not None:
        c = _number(v["colour"], f"box {n}: colour")
        out["colour"] = int(c) % 64
    return out or None


def _tolerance(side: int) -> float:
    return max(2.0, 0.01 * side)


def _clamp(v: float, lo: float, hi: float) -> float:
    return min(hi, max(lo, v))


def _clean_box(b: Any, n: int, w: int, h: int) -> list[Any]:
    if not isinstance(b, (list, tuple)) or len(b) not in (4, 5):
        raise CanvasValueError(f"box {n} must be [x1, y1, x2, y2] or [x1, y1, x2, y2, label], not {_show(b)}")
    x1, y1, x2, y2 = (_number(c, f"box {n}: {name}") for c, name in zip(b[:4], ("x1", "y1", "x2", "y2")))
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    tx, ty = _tolerance(w), _tolerance(h)
    if x1 < -tx or y1 < -ty or x2 > w + tx or y2 > h + ty:
        raise CanvasValueError(f"box {n} ({fmt_coord(x1)}, {fmt_coord(y1)}, {fmt_coord(x2)}, {fmt_coord(y2)}) does not fit "
                               f"the {w}×{h} image; coordinates are in original image pixels")
    x1, x2 = _clamp(x1, 0, w), _clamp(x2, 0, w)
    y1, y2 = _clamp(y1, 0, h), _clamp(y2, 0, h)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise CanvasValueError(f"box {n} ({fmt_coord(x1)}, {fmt_coord(y1)}, {fmt_coord(x2)}, {fmt_coord(y2)}) has no area; "
                               "drag across the object")
    out: list[Any] = [x1, y1, x2, y2]
    meta = _meta(b[4], n) if len(b) == 5 else None
    if meta:
        out.append(meta)
    return out


def _clean_point(p: Any, n: int, w: int, h: int) -> list[Any]:
    if not isinstance(p, (list, tuple)) or len(p) not in (2, 3):
        raise CanvasValueError(f"point {n} must be [x, y, label] with label 1 or 0, not {_show(p)}")
    x, y = _number(p[0], f"point {n}: x"), _number(p[1], f"point {n}: y")
    label = 1
    if len(p) == 3:
        lab = p[2]
        if isinstance(lab, bool):
            label = int(lab)
        elif isinstance(lab, (int, float)) and lab in (0, 1):
            label = int(lab)
        else:
            raise CanvasValueError(f"point {n}: label must be 1 (include) or 0 (exclude), not {_show(lab)}")
    if not (-_tolerance(w) <= x <= w + _tolerance(w) and -_tolerance(h) <= y <= h + _tolerance(h)):
        raise CanvasValueError(f"point {n} ({fmt_coord(x)}, {fmt_coord(y)}) lies outside the {w}×{h} image")
    return [_clamp(x, 0, w - 1), _clamp(y, 0, h - 1), label]


def sanitize_canvas_value(value: Any, *, max_boxes: int = MAX_BOXES, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """A checked, normalised copy of an untrusted canvas value (dict, JSON text or None).

    Raises :class:`CanvasValueError` for anything that is not a number where one is needed, NaN
    or infinity, more than ``max_boxes`` boxes or ``max_points`` points, a point label other than
    0/1, an image size that is not a positive whole number, or a box/point beyond the image
    (a 1 % margin is clamped). Corners are sorted; unknown keys are dropped.
    """
    if isinstance(value, str):
        value = load_json(value)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise CanvasValueError(f"the canvas value must be a JSON object, not {type(value).__name__}")
    out: dict[str, Any] = {"image": None, "boxes": [], "points": [], "mask": None, "selected": None}
    image = value.get("image")
    boxes, points = value.get("boxes") or [], value.get("points") or []
    for name, items, limit in (("boxes", boxes, max_boxes), ("points", points, max_points)):
        if not isinstance(items, (list, tuple)):
            raise CanvasValueError(f"{name} must be a list, not {type(items).__name__}")
        if len(items) > limit:
            raise CanvasValueError(f"too many {name} ({len(items)}; at most {limit}); remove some")
    if image is not None:
        if not isinstance(image, dict):
            raise CanvasValueError("image must be an object with width and height")
        w, h = _size(image.get("width"), "image width"), _size(image.get("height"), "image height")
        out["image"] = {"src": _url(image.get("src"), "image src"), "width": w, "height": h}
        f = _file(image.get("file"), "image file")
        if f:
            out["image"]["file"] = f
        out["boxes"] = [_clean_box(b, n, w, h) for n, b in enumerate(boxes, start=1)]
        out["points"] = [_clean_point(p, n, w, h) for n, p in enumerate(points, start=1)]
    elif boxes or points:
        raise CanvasValueError("there are boxes or points but no image; upload an image first")
    mask = value.get("mask")
    if mask is not None:
        if not isinstance(mask, dict):
            raise CanvasValueError("mask must be an object with src (or file) and opacity")
        m: dict[str, Any] = {"src": _url(mask.get("src"), "mask src")}
        f = _file(mask.get("file"), "mask file")
        if f:
            m["file"] = f
        op = mask.get("opacity", 0.5)
        m["opacity"] = _clamp(_number(op, "mask opacity"), 0.0, 1.0)
        mode = mask.get("mode", "luminance")
        if mode not in ("luminance", "alpha", "rgba"):
            raise CanvasValueError(f"mask mode must be luminance, alpha or rgba, not {_show(mode)}")
        m["mode"] = mode
        out["mask"] = m
    sel = value.get("selected")
    if isinstance(sel, int) and not isinstance(sel, bool) and 0 <= sel < len(out["boxes"]):
        out["selected"] = sel
    rev = value.get("rev")
    if isinstance(rev, int) and not isinstance(rev, bool) and 0 <= rev < 2**53:
        out["rev"] = rev
    return out


def parse_canvas_value(value: Any) -> CanvasPrompt:
    """The prompt in a canvas value: ticked boxes, all points, the image size (see :class:`CanvasPrompt`)."""
    v = sanitize_canvas_value(value)
    size = (v["image"]["width"], v["image"]["height"]) if v["image"] else None
    boxes, index, labels, scores = [], [], [], []
    for i, b in enumerate(v["boxes"]):
        meta = b[4] if len(b) > 4 else {}
        if meta.get("enabled", True) is False:
            continue
        boxes.append((b[0], b[1], b[2], b[3]))
        index.append(i)
        labels.append(meta.get("label", ""))
        scores.append(meta.get("score"))
    points = [(p[0], p[1], p[2]) for p in v["points"]]
    return CanvasPrompt(boxes, points, size, index, labels, scores, v["selected"])
