"""The input contract: the only copies of the image, box, point, text and threshold checks.

The CLI, the app, the HTTP API, the pipeline, the predictors, the detector and compositing all
call these functions, so a box or a click is judged by the same rule wherever it comes from.
Every failure is an :class:`~semat.errors.InputError` subclass with a one-line message.

Rules
-----
* **Image**: an ``HxWx3`` ``uint8`` RGB array (SGHM and the loaders also accept ``HxW`` and
  ``HxWx4``, see :func:`as_rgb`), at least :data:`MIN_SIDE` px on each side and no more
  elongated than :data:`MAX_ASPECT`:1 (SEMat's working frame would squash it to nothing).
* **Box**: ``x1, y1, x2, y2`` in pixels of the image, finite, with ``x1 < x2`` and ``y1 < y2``
  (a reversed box is refused: it is usually ``x, y, w, h`` by mistake). A box that lies *partly*
  outside the image is **clipped** to it, with a notice; a box with no overlap is refused.
  Identical boxes are merged, with a notice, and at most ``max_boxes`` remain.
* **Point**: ``x, y`` with ``0 <= x <= W`` and ``0 <= y <= H`` (the same closed range as box
  corners) and label 1 (include) or 0 (exclude); at most :data:`MAX_POINTS`.
* **Threshold**: a finite number in ``[0, 1]``.
* **Text**: at least one non-blank character, at most :data:`MAX_TEXT_CHARS`.

Text forms (the UI fields, the API and the CLI's ``--box`` / ``--point``) are parsed by
:func:`parse_boxes` and :func:`parse_points`; numbers may use exponents (``1e1``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from semat.errors import BoxError, ImageInputError, PointError, PromptError, clip_text

__all__ = [
    "MAX_ASPECT", "MAX_POINTS", "MAX_TEXT_CHARS", "MIN_SIDE", "Box", "Point", "as_rgb", "check_boxes",
    "check_image", "check_points", "check_text", "check_threshold", "format_boxes", "format_points",
    "parse_boxes", "parse_points",
]

Box = tuple[float, float, float, float]
Point = tuple[float, float, int]

MIN_SIDE = 8  # px; smaller images cannot be matted meaningfully (and break foreground estimation)
MAX_ASPECT = 64.0  # longer side / shorter side; beyond it SEMat's 1024 frame leaves < 16 px
MAX_POINTS = 64
MAX_TEXT_CHARS = 500
DEFAULT_MAX_BOXES = 16


# ------------------------------------------------------------------------------------ images


def as_rgb(image: Any, *, name: str = "image") -> np.ndarray:
    """``HxW`` (grey), ``HxWx3`` or ``HxWx4`` ``uint8`` -> contiguous ``HxWx3`` RGB (alpha dropped),
    then :func:`check_image`."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        elif image.ndim == 3 and image.shape[2] == 4:
            image = image[:, :, :3]
    return check_image(image, name=name)


def check_image(image: Any, *, name: str = "image") -> np.ndarray:
    """An ``HxWx3`` ``uint8`` RGB array within the size rules; returned C-contiguous."""
    if not isinstance(image, np.ndarray):
        raise ImageInputError(f"{name}: expected an RGB uint8 array (HxWx3), got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ImageInputError(f"{name}: expected an RGB uint8 array (HxWx3), got shape {tuple(image.shape)}")
    if image.dtype != np.uint8:
        raise ImageInputError(f"{name}: expected an RGB uint8 array (HxWx3), got dtype {image.dtype}")
    check_size(image.shape[1], image.shape[0], name=name)
    return np.ascontiguousarray(image)


def check_size(width: int, height: int, *, name: str = "image") -> None:
    """The size rules alone (also used on an image header before decoding)."""
    if min(width, height) < MIN_SIDE:
        raise ImageInputError(f"{name} is {width}x{height} px; images need at least {MIN_SIDE} px on each "
                              "side")
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageInputError(f"{name} is {width}x{height} px, more elongated than {MAX_ASPECT:g}:1; "
                              "crop it closer to the object")


# ------------------------------------------------------------------------------------- boxes


def _fmt(v: float) -> str:
    return str(round(v)) if math.isfinite(v) and abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def _fmt_box(box: Iterable[float]) -> str:
    return "[" + ", ".join(_fmt(float(v)) for v in box) + "]"


def check_boxes(boxes: Any, image_hw: tuple[int, int], *, max_boxes: int | None = DEFAULT_MAX_BOXES,
                notices: list[str] | None = None, allow_empty: bool = False,
                dedupe: bool = True) -> np.ndarray:
    """Boxes (``[N,4]`` array-like, or one box) checked against an ``(H, W)`` image.

    Returns float64 ``[N,4]``: partly-outside boxes clipped, duplicates merged (a notice for each
    into ``notices`` when given). Raises :class:`BoxError`.
    """
    h, w = image_hw
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise BoxError("boxes must be numbers x1, y1, x2, y2") from None
    if arr.size == 0 and allow_empty:
        return np.zeros((0, 4), np.float64)
    if arr.ndim == 1 and arr.size == 4:
        arr = arr[None]
    if arr.ndim != 2 or arr.shape[1] != 4 or arr.shape[0] == 0:
        raise BoxError(f"boxes must be x1, y1, x2, y2 each (shape [N,4]), got shape {list(arr.shape)}")
    out: list[np.ndarray] = []
    seen: set[tuple[float, ...]] = set()
    dupes = 0
    for i, box in enumerate(arr, start=1):
        x1, y1, x2, y2 = (float(v) for v in box)
        label = f"box {i} {_fmt_box(box)}"
        if not np.isfinite(box).all():
            raise BoxError(f"{label} has a non-finite coordinate")
        if x2 < x1 or y2 < y1:
            raise BoxError(f"{label} is reversed: expected x1 < x2 and y1 < y2 (x1, y1, x2, y2)")
        if x2 == x1 or y2 == y1:
            raise BoxError(f"{label} has zero area")
        cx1, cy1, cx2, cy2 = max(x1, 0.0), max(y1, 0.0), min(x2, float(w)), min(y2, float(h))
        if cx2 - cx1 <= 0 or cy2 - cy1 <= 0:
            raise BoxError(f"{label} lies outside the {w}x{h} image")
        if (cx1, cy1, cx2, cy2) != (x1, y1, x2, y2) and notices is not None:
            notices.append(f"{label} reaches past the {w}x{h} image; clipped to "
                           f"{_fmt_box((cx1, cy1, cx2, cy2))}")
        key = tuple(round(v, 3) for v in (cx1, cy1, cx2, cy2))
        if dedupe and key in seen:
            dupes += 1
            continue
        seen.add(key)
        out.append(np.array([cx1, cy1, cx2, cy2], np.float64))
    if dupes and notices is not None:
        notices.append(f"{dupes} duplicate box(es) ignored")
    if max_boxes is not None and len(out) > max_boxes:
        raise BoxError(f"too many boxes ({len(out)}; the limit is {max_boxes}); remove some and run again")
    return np.stack(out)


# ------------------------------------------------------------------------------------ points


def check_points(points: Any, image_hw: tuple[int, int], *, max_points: int = MAX_POINTS) -> list[Point]:
    """Points ``(x, y)`` or ``(x, y, label)`` (label 1 include / 0 exclude; default 1) inside the image."""
    h, w = image_hw
    out: list[Point] = []
    for i, p in enumerate(points or [], start=1):
        try:
            vals = list(p)
        except TypeError:
            raise PointError(f"point {i} must be x, y or x, y, label, got {clip_text(p)}") from None
        if len(vals) not in (2, 3):
            raise PointError(f"point {i} must be x, y or x, y, label, got {clip_text(p)}")
        try:
            x, y = float(vals[0]), float(vals[1])
            lab_f = float(vals[2]) if len(vals) == 3 else 1.0
        except (TypeError, ValueError):
            raise PointError(f"point {i} ({clip_text(p)}): x, y and label must be numbers") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise PointError(f"point {i} has a non-finite coordinate")
        if lab_f not in (0.0, 1.0):
            raise PointError(f"point {i}: label must be 1 (include) or 0 (exclude), got {clip_text(vals[2])}")
        if not (0 <= x <= w and 0 <= y <= h):
            raise PointError(f"point {i} ({_fmt(x)}, {_fmt(y)}) lies outside the {w}x{h} image")
        out.append((x, y, int(lab_f)))
    if len(out) > max_points:
        raise PointError(f"too many points ({len(out)}; the limit is {max_points})")
    return out


# ---------------------------------------------------------------------------- text, thresholds


def check_threshold(value: Any, name: str = "threshold") -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PromptError(f"{name} must be a number between 0 and 1, got {clip_text(value)}") from None
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise PromptError(f"{name} must be between 0 and 1, got {clip_text(value)}")
    return v


def check_text(text: Any) -> str:
    """A text prompt: stripped, non-empty, at most :data:`MAX_TEXT_CHARS` characters."""
    s = text.strip() if isinstance(text, str) else ""
    if not s:
        raise PromptError('type what to cut out, e.g. "cat" or "glass of water"')
    if len(s) > MAX_TEXT_CHARS:
        raise PromptError(f"the text prompt has {len(s)} characters; the limit is {MAX_TEXT_CHARS}")
    return s


# ---------------------------------------------------------------------------------- text forms


def _numbers(chunk: str, what: str, n: int | tuple[int, ...]) -> list[float]:
    parts = [p for p in re.split(r"[,\s]+", chunk.strip().strip("[]()")) if p]
    counts = (n,) if isinstance(n, int) else n
    if len(parts) not in counts:
        raise PromptError(f"{what} ({clip_text(chunk.strip())}) needs {' or '.join(map(str, counts))} numbers")
    out = []
    for p in parts:
        try:
            out.append(float(p))
        except ValueError:
            raise PromptError(f"{what} ({clip_text(chunk.strip())}): {clip_text(p, 20)} is not a number") from None
    return out


def parse_boxes(text: str | None) -> list[Box]:
    """Boxes from text: one ``x1, y1, x2, y2`` per line (or ``;``-separated), or a JSON list
    ``[[x1, y1, x2, y2], ...]``. Only the syntax is checked here; :func:`check_boxes` judges them."""
    if text is None or not str(text).strip():
        return []
    s = str(text).strip()
    if s.startswith("["):
        try:
            data = json.loads(s)
        except ValueError:
            raise PromptError("boxes: not valid JSON; use [[x1, y1, x2, y2], ...] or one x1, y1, x2, y2 "
                              "per line") from None
        if data and not isinstance(data[0], list):
            data = [data]
        boxes = []
        for i, b in enumerate(data, start=1):
            if not isinstance(b, list) or len(b) != 4 or not all(isinstance(v, (int, float)) for v in b):
                raise PromptError(f"box {i} ({clip_text(b)}) needs 4 numbers: x1, y1, x2, y2")
            boxes.append(tuple(float(v) for v in b[:4]))
        return boxes  # type: ignore[return-value]
    lines = [ln for ln in re.split(r"[;\n]+", s) if ln.strip()]
    return [tuple(_numbers(ln, f"box {i}", 4)) for i, ln in enumerate(lines, start=1)]  # type: ignore[misc]


_LABELS = {"1": 1, "+": 1, "pos": 1, "positive": 1, "1.0": 1, "0": 0, "-": 0, "neg": 0, "negative": 0, "0.0": 0}


def parse_points(text: str | None) -> list[Point]:
    """Points from text: one ``x, y[, label]`` per line (label ``1``/``+`` include, ``0``/``-``
    exclude; omitted = include)."""
    if text is None or not str(text).strip():
        return []
    points = []
    lines = [ln for ln in re.split(r"[;\n]+", str(text).strip()) if ln.strip()]
    for i, line in enumerate(lines, start=1):
        parts = [p for p in re.split(r"[,\s]+", line.strip().strip("[]()")) if p]
        label = 1
        if len(parts) == 3:
            if parts[2].lower() not in _LABELS:
                raise PromptError(f"point {i} ({clip_text(line.strip())}): label must be 1 (include) or 0 "
                                  "(exclude)")
            label = _LABELS[parts[2].lower()]
            parts = parts[:2]
        x, y = _numbers(" ".join(parts), f"point {i}", 2)
        points.append((x, y, label))
    return points


def format_boxes(boxes: Sequence[Sequence[float]]) -> str:
    return "\n".join(", ".join(_fmt(float(v)) for v in b[:4]) for b in boxes)


def format_points(points: Sequence[Sequence[float]]) -> str:
    return "\n".join(f"{_fmt(float(x))}, {_fmt(float(y))}, {int(lab)}" for x, y, lab in points)
