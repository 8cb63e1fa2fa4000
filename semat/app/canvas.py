"""PromptCanvas: the app's own prompt canvas, a ``gr.HTML`` subclass (gradio 6.31, no custom build).

The user drags boxes and clicks ± points on the picture; the browser draws every overlay (SVG) and
keeps the prompt in the component's value, so a click or a drag makes **no server round trip and
sends no image**. The prompt reaches Python only when an event takes the canvas as an input
(Matte / Detect). The front end is ``static/canvas.{html,css,js}`` next to this module.

Gestures
    drag = box (rubber band while dragging) · click (< 5 px of movement) = include point ·
    right-click, Shift+click, or a click in "− point" mode = exclude point · click a box's number
    chip or edge = select it (then drag inside to move, drag a corner handle to resize) · click a
    point = select it (drag to move) · Delete/Backspace removes the selection · Esc deselects ·
    Undo / Redo / Clear buttons, Ctrl+Z / Ctrl+Shift+Z (Ctrl+Y). A click inside a box that is not
    on its chip or edge adds a point, so include/exclude points inside boxes stay one click.
    Touch: one finger draws (``touch-action: none`` is set only on the picture itself, so the
    page still pinch-zooms outside it); a second finger cancels the gesture. A file dropped on
    the canvas, or picked with "Open image…", is uploaded and announced by an ``upload`` event;
    dropping nothing, or dragging over the picture, never touches the image.

Value (a JSON dict; coordinates always in ORIGINAL image pixels, whatever the preview's size)::

    {
      "image": {"src": URL | None, "file": FileData | None, "width": W, "height": H} | None,
      "boxes": [[x1, y1, x2, y2], [x1, y1, x2, y2, META], ...],   # x1 < x2, y1 < y2
      "points": [[x, y, 1 | 0], ...],                            # 1 include, 0 exclude
      "mask": {"src": URL | None, "file": FileData | None, "opacity": 0..1,
               "mode": "luminance" | "alpha" | "rgba"} | None,
      "selected": box index | None,
      "rev": int,                                                # local edit counter (see below)
    }

- ``image.src`` is the preview shown (``http(s)``, a same-origin ``/…`` path or a ``data:image``
  URL), at most about 2048 px on its long side; or ``image.file`` is a gradio ``FileData`` dict
  (what :func:`canvas_value` builds from a path: gradio serves it and fills in ``url``). ``W``×``H``
  is the ORIGINAL image size, the frame of every coordinate.
- ``META`` (optional): a label string, or ``{"label": str, "score": 0..1, "enabled": bool,
  "colour": int}`` for detections. ``enabled: false`` = unticked: drawn dashed and dimmed and
  not part of the prompt (:func:`parse_canvas_value` leaves it out). Boxes are numbered 1, 2, …
  in list order, coloured by ``colour`` or their index.
- ``mask`` is the coarse mask overlay: a greyscale image (white = object) tinted in the browser
  (``mode: "luminance"``, default; ``"alpha"`` uses the image's alpha; ``"rgba"`` draws a
  ready-made coloured overlay as is), at preview size, with an opacity slider and a toggle.
- ``rev`` counts the user's edits. A Python handler that returns the value it received with
  changes (:func:`with_mask`, :func:`updated`) keeps ``rev``; if the user edited meanwhile, the
  browser keeps its newer prompt and only takes the rest (mask, …). A value built fresh by
  :func:`canvas_value` has no ``rev`` and replaces the prompt.

Events (``canvas.<event>(fn, ...)``)
    ``change``: every value change, user or Python (gradio fires it in the browser). Attach only
    JS listeners (``fn=None, js=...``) to it: a Python listener would make every click a round trip.
    ``input``: each user edit. ``upload``: ``gr.EventData`` with ``path``, ``url``, ``name`` of a
    dropped or picked file, already uploaded (check it with :func:`uploaded_path`).
    ``select``: ``gr.SelectData`` with ``index`` (box), ``value`` and ``selected``, sent when the
    user picks (or, with Esc, unpicks) a box while a mask is shown, i.e. after a matte, so the app
    can show that object's alpha.

Wiring (keyboard text fields kept in sync both ways; :func:`demo` runs exactly this)::

    canvas = PromptCanvas(max_boxes=16)
    boxes_tb, points_tb = gr.Textbox(label="Boxes", lines=3), gr.Textbox(label="Points", lines=3)
    # canvas -> text: in the browser only, no request per click (a focused field is left alone)
    canvas.change(None, [canvas, boxes_tb, points_tb], [boxes_tb, points_tb], js=CANVAS_TO_TEXT_JS)
    # text -> canvas: when the user presses Enter or leaves a field (a light Python handler;
    # canvas_from_text raises PromptError with the line at fault: show it next to the field)
    for ev in (boxes_tb.submit, boxes_tb.blur, points_tb.submit, points_tb.blur):
        ev(canvas_from_text, [canvas, boxes_tb, points_tb], canvas)

    def on_upload(evt: gr.EventData):                 # a file dropped on / picked in the canvas
        path = uploaded_path(evt)                     # checked: gradio's own upload folder
        image = load_image(path)                      # the app's loader (EXIF, size cap, ...)
        return canvas_value(preview_file(image), image.shape[1], image.shape[0])
    canvas.upload(on_upload, None, canvas)

    def run_matte(value):
        boxes, points, size, *_ = parse_canvas_value(value)   # original pixels, ticked boxes
        ...
        return outputs..., with_mask(value, coarse_mask)      # keeps the user's later edits
    matte.click(run_matte, canvas, [..., canvas], show_progress="hidden")  # else gradio dims
                                                                           # the canvas to 20 %
    canvas.select(show_object, canvas, alpha_view)    # evt: gr.SelectData -> evt.index

The browser sends ``image``/``mask`` back as plain ``src`` URLs (no FileData), so sending the
prompt makes gradio copy or fetch no file. Arrow keys nudge the selection by one screen pixel
(Shift: ten).

Helpers: :func:`canvas_value`, :func:`parse_canvas_value` (-> :class:`CanvasPrompt`),
:func:`sanitize_canvas_value`, :func:`canvas_to_text`, :func:`canvas_from_text`, :func:`with_mask`,
:func:`updated`, :func:`keep_best`, :func:`preview_file`, :func:`mask_file`, :func:`uploaded_path`.
Bad values (non-finite or non-numeric numbers, too many boxes, labels other than 0/1, sizes
that are not positive, boxes outside the image) raise :class:`CanvasValueError`, a
``PromptError``/``ValueError`` whose message says what to fix; slightly-out coordinates (the
browser's rounding) are clamped and reversed corners are sorted.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import gradio.component_meta as _component_meta

from semat.errors import PromptError
from semat.settings import Settings
from semat.validate import parse_boxes, parse_points

__all__ = [
    "CANVAS_TO_TEXT_JS",
    "CanvasPrompt",
    "CanvasValueError",
    "PromptCanvas",
    "canvas_from_text",
    "canvas_to_text",
    "canvas_value",
    "demo",
    "keep_best",
    "mask_file",
    "parse_canvas_value",
    "preview_file",
    "sanitize_canvas_value",
    "updated",
    "uploaded_path",
    "with_mask",
]

#: Hard caps on what a value may hold (the app's own matting limit, ``max_boxes``, is lower).
MAX_BOXES = 256
MAX_POINTS = 256
MAX_LABEL = 80
MAX_SIDE = 65536
#: Longest side of the previews :func:`preview_file` writes.
PREVIEW_MAX_SIDE = 2048
_MAX_JSON = 32 * 1024 * 1024
_URL_PREFIXES = ("http://", "https://", "data:image/", "blob:", "/")

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


# ------------------------------------------------------------------------------ front end

_STATIC = "static"


@cache
def _asset(name: str) -> str:
    try:
        return resources.files("semat.app").joinpath(_STATIC, name).read_text(encoding="utf-8")
    except FileNotFoundError:  # an install built without package data
        raise RuntimeError(f"semat/app/{_STATIC}/{name} is missing from this install; the package must ship "
                           "semat/app/static/* (setuptools package-data)") from None


def _checked_template(text: str, name: str) -> str:
    # html_template/css_template are evaluated as a JS template literal + Handlebars
    for bad in ("`", "${", "{{", "\\"):
        if bad in text:
            raise RuntimeError(f"{name} must not contain {bad!r} (gradio evaluates it as a template)")
    return text


#: ``js=`` for ``canvas.change(None, [canvas, boxes_tb, points_tb], [boxes_tb, points_tb],
#: js=CANVAS_TO_TEXT_JS)``: the ticked boxes as "x1, y1, x2, y2" lines and the points as
#: "x, y, label" lines, computed in the browser. A field the user is typing in (it has the focus)
#: keeps its text: it is applied when they press Enter or leave it.
CANVAS_TO_TEXT_JS = """(v, b, p) => {
  const f = (n) => { n = Number(n); const r = Math.round(n); return Math.abs(n - r) < 1e-6 ? String(r) : n.toFixed(1); };
  if (typeof v === "string") { try { v = v ? JSON.parse(v) : null; } catch (e) { v = null; } }
  const boxes = v && Array.isArray(v.boxes) ? v.boxes : [], points = v && Array.isArray(v.points) ? v.points : [];
  const on = (x) => !(x.length > 4 && x[4] && typeof x[4] === "object" && x[4].enabled === false);
  const bt = boxes.filter(on).map((x) => x.slice(0, 4).map(f).join(", ")).join("\\n");
  const pt = points.map((x) => f(x[0]) + ", " + f(x[1]) + ", " + (x.length > 2 && !x[2] ? 0 : 1)).join("\\n");
  const a = document.activeElement, typing = a && /^(TEXTAREA|INPUT)$/.test(a.tagName) ? a.value : null;
  return [typeof b === "string" && b === typing ? b : bt, typeof p === "string" && p === typing ? p : pt];
}"""


def _no_pyi(*_args: Any, **_kwargs: Any) -> None:
    return None


# gradio's ComponentMeta writes a ``<module>.pyi`` stub next to the source of every Component
# subclass it creates; for PromptCanvas that would litter the package (and a read-only install),
# so the hook is switched off while the class is created.
_create_pyi = _component_meta.create_or_modify_pyi
_component_meta.create_or_modify_pyi = _no_pyi
try:

    class PromptCanvas(gr.HTML):
        """Boxes and ± points drawn on the picture, all in the browser (see the module docstring).

        Parameters: ``value`` (a canvas value, e.g. from :func:`canvas_value`); ``max_boxes``, the
        app's matting limit (the canvas warns above it, "keep best N" starts at it);
        ``max_picture_height``, the largest height in CSS px of the picture (default 70 % of the window); ``mask_colour``, the
        tint of the mask overlay; the usual ``label``, ``elem_id``, ``elem_classes``, ``visible``,
        ``render``, ``key``, ``scale``, ``min_width``.
        """

        def __init__(
            self,
            value: dict[str, Any] | None = None,
            *,
            max_boxes: int = 16,
            max_picture_height: int | None = None,
            mask_colour: str = "#ff2d87",
            label: str | None = None,
            elem_id: str | None = None,
            elem_classes: list[str] | str | None = None,
            visible: bool = True,
            render: bool = True,
            key: int | str | None = None,
            scale: int | None = None,
            min_width: int | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(
                value=value,
                label=label,
                html_template=_checked_template(_asset("canvas.html"), "canvas.html"),
                css_template=_checked_template(_asset("canvas.css"), "canvas.css"),
                js_on_load=_asset("canvas.js"),
                apply_default_css=False,
                elem_id=elem_id,
                elem_classes=elem_classes,
                visible=visible,
                render=render,
                key=key,
                scale=scale,
                min_width=min_width,
                max_boxes=int(max_boxes),
                max_picture_height=max_picture_height,
                mask_colour=str(mask_colour),
                hard_max_boxes=MAX_BOXES,
                hard_max_points=MAX_POINTS,
                **kwargs,
            )

        def preprocess(self, payload: Any) -> dict[str, Any]:  # type: ignore[override]
            """The browser's value, checked: :func:`sanitize_canvas_value` (a bad one is a gr.Error)."""
            try:
                return sanitize_canvas_value(payload)
            except CanvasValueError as e:
                raise gr.Error(str(e), print_exception=False) from None

        def postprocess(self, value: Any) -> dict[str, Any] | None:  # type: ignore[override]
            if value is None:
                return None
            if isinstance(value, str):  # an API caller or a Python handler may pass JSON text
                value = _loads(value)
            return value

        def api_info(self) -> dict[str, Any]:
            num = {"type": "number"}
            return {
                "type": "object",
                "description": "Prompt canvas value; coordinates in original image pixels",
                "properties": {
                    "image": {"anyOf": [{"type": "null"}, {"type": "object", "properties": {
                        "src": {"type": "string"}, "width": {"type": "integer"}, "height": {"type": "integer"}},
                        "required": ["width", "height"]}]},
                    "boxes": {"type": "array", "maxItems": MAX_BOXES, "description": "[x1, y1, x2, y2, meta?]",
                              "items": {"type": "array", "items": {"anyOf": [num, {"type": "string"},
                                                                              {"type": "object"}]},
                                        "minItems": 4, "maxItems": 5}},
                    "points": {"type": "array", "maxItems": MAX_POINTS, "description": "[x, y, 1 include | 0 exclude]",
                               "items": {"type": "array", "items": num, "minItems": 2, "maxItems": 3}},
                    "mask": {"anyOf": [{"type": "null"}, {"type": "object"}]},
                    "selected": {"anyOf": [{"type": "null"}, {"type": "integer"}]},
                },
            }

        def example_payload(self) -> Any:
            return {"image": {"src": None, "width": 640, "height": 480}, "boxes": [[110, 40, 518, 470]],
                    "points": [[320, 200, 1]], "mask": None, "selected": None}

        def example_value(self) -> Any:
            return self.example_payload()

finally:
    _component_meta.create_or_modify_pyi = _create_pyi


# ------------------------------------------------------------------------------ validation

def _loads(text: str) -> Any:
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
    if not isinstance(v, str) or not v.startswith(_URL_PREFIXES) or v.lower().startswith("data:image/svg"):
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
        raise CanvasValueError(f"box {n} ({_fmt(x1)}, {_fmt(y1)}, {_fmt(x2)}, {_fmt(y2)}) does not fit "
                               f"the {w}×{h} image; coordinates are in original image pixels")
    x1, x2 = _clamp(x1, 0, w), _clamp(x2, 0, w)
    y1, y2 = _clamp(y1, 0, h), _clamp(y2, 0, h)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise CanvasValueError(f"box {n} ({_fmt(x1)}, {_fmt(y1)}, {_fmt(x2)}, {_fmt(y2)}) has no area; "
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
        raise CanvasValueError(f"point {n} ({_fmt(x)}, {_fmt(y)}) lies outside the {w}×{h} image")
    return [_clamp(x, 0, w - 1), _clamp(y, 0, h - 1), label]


def sanitize_canvas_value(value: Any, *, max_boxes: int = MAX_BOXES, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """A checked, normalised copy of an untrusted canvas value (dict, JSON text or None).

    Raises :class:`CanvasValueError` for anything that is not a number where one is needed, NaN
    or infinity, more than ``max_boxes`` boxes or ``max_points`` points, a point label other than
    0/1, an image size that is not a positive whole number, or a box/point beyond the image
    (a 1 % margin is clamped). Corners are sorted; unknown keys are dropped.
    """
    if isinstance(value, str):
        value = _loads(value)
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


# ------------------------------------------------------------------------- building values

def _is_url(s: str) -> bool:
    if s.startswith("/"):  # a same-origin URL gradio made, or else a file path
        return "/gradio_api/" in s and not Path(s).is_file()
    return s.startswith(_URL_PREFIXES)


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


# ------------------------------------------------------------------------- keyboard text

def _fmt(v: float) -> str:
    return str(round(v)) if abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def canvas_to_text(value: Any) -> tuple[str, str]:
    """The prompt as the keyboard fields show it: ticked boxes as ``x1, y1, x2, y2`` lines and
    points as ``x, y, label`` lines (the same text :data:`CANVAS_TO_TEXT_JS` writes)."""
    p = parse_canvas_value(value)
    return ("\n".join(", ".join(_fmt(c) for c in b) for b in p.boxes),
            "\n".join(f"{_fmt(x)}, {_fmt(y)}, {int(lab)}" for x, y, lab in p.points))


def canvas_from_text(value: Any, boxes_text: str | None, points_text: str | None) -> dict[str, Any]:
    """``value`` with its prompt replaced by the typed one (``parse_boxes``/``parse_points``
    formats). Typed boxes take the places of the ticked boxes in order, keeping their labels;
    unticked boxes stay as they are. Returns ``value`` itself (checked) when nothing changed."""
    v = sanitize_canvas_value(value)
    boxes, points = parse_boxes(boxes_text), parse_points(points_text)
    if (boxes or points) and v["image"] is None:
        raise CanvasValueError("upload an image first; boxes and points are in its pixels")
    if canvas_to_text(v) == (_text_boxes(boxes), _text_points(points)):
        return v
    typed = iter(boxes)
    new: list[list[Any]] = []
    for b in v["boxes"]:
        meta = b[4] if len(b) > 4 else None
        if meta and meta.get("enabled") is False:
            new.append(b)
            continue
        nb = next(typed, None)
        if nb is not None:
            new.append([*nb, meta] if meta else list(nb))
    new.extend(list(b) for b in typed)
    v["boxes"] = new
    v["points"] = [list(p) for p in points]
    v["selected"] = None
    v.pop("rev", None)
    return sanitize_canvas_value(v)


def _text_boxes(boxes: Iterable[Sequence[float]]) -> str:
    return "\n".join(", ".join(_fmt(c) for c in b) for b in boxes)


def _text_points(points: Iterable[Sequence[float]]) -> str:
    return "\n".join(f"{_fmt(p[0])}, {_fmt(p[1])}, {int(p[2])}" for p in points)


# --------------------------------------------------------------------------- image files

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


# ------------------------------------------------------------------------------------ demo

def _synthetic_photo(width: int = 4000, height: int = 3000):
    """A photo-like test picture: a gradient 'sky', a 'ground' and three objects."""
    import numpy as np
    from PIL import Image, ImageDraw

    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    r = (90 + 120 * y + 20 * x).astype(np.uint8)
    g = (140 + 60 * y - 30 * x).clip(0, 255).astype(np.uint8)
    b = (220 - 120 * y).clip(0, 255).astype(np.uint8)
    im = Image.fromarray(np.dstack([np.broadcast_to(c, (height, width)) for c in (r, g, b)]))
    d = ImageDraw.Draw(im)
    d.rectangle([0, int(height * 0.7), width, height], fill=(96, 140, 70))
    d.ellipse([int(width * 0.1), int(height * 0.3), int(width * 0.4), int(height * 0.85)], fill=(230, 150, 40))
    d.rectangle([int(width * 0.55), int(height * 0.2), int(width * 0.8), int(height * 0.75)], fill=(60, 60, 160))
    d.ellipse([int(width * 0.82), int(height * 0.05), int(width * 0.95), int(height * 0.22)], fill=(255, 240, 120))
    return im


def _demo_mask(prompt: CanvasPrompt):
    """A stand-in 'coarse mask': an ellipse inside each ticked box, at 1/4 of the original size."""
    from PIL import Image, ImageDraw

    assert prompt.size is not None
    w, h = prompt.size
    k = min(1.0, 1024 / max(w, h))
    im = Image.new("L", (max(1, round(w * k)), max(1, round(h * k))), 0)
    d = ImageDraw.Draw(im)
    for x1, y1, x2, y2 in prompt.boxes:
        d.ellipse([x1 * k, y1 * k, x2 * k, y2 * k], fill=255)
    for x, y, lab in prompt.points:
        r = 0.02 * max(w, h) * k
        d.ellipse([x * k - r, y * k - r, x * k + r, y * k + r], fill=255 if lab else 0)
    return im


def demo(width: int = 4000, height: int = 3000, matte_delay: float = 0.0) -> gr.Blocks:
    """A minimal app around the canvas: load a synthetic ``width``×``height`` photo (shown
    downscaled), draw, **Matte** echoes the prompt the server received into a JSON panel and
    overlays a stand-in mask (after ``matte_delay`` seconds, to test edits made meanwhile);
    **Detect** puts three labelled, scored boxes on it; Boxes/Points text fields are kept in
    sync both ways."""

    preview: list[Path] = []  # made on first use, then reused

    def load_photo() -> dict[str, Any]:
        if not preview or not preview[0].is_file():
            preview[:] = [preview_file(_synthetic_photo(width, height))]
        return canvas_value(preview[0], width, height)

    def load_upload(evt: gr.EventData) -> dict[str, Any]:
        from PIL import Image, ImageOps

        try:
            with Image.open(uploaded_path(evt)) as im:
                im = ImageOps.exif_transpose(im)
                return canvas_value(preview_file(im), im.width, im.height)
        except OSError as e:
            raise gr.Error(f"That file is not an image we can read ({e}).", print_exception=False) from None

    def matte(value: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, Any]]:
        p = parse_canvas_value(value)
        if p.size is None:
            raise gr.Error("Load an image first.", print_exception=False)
        if not p.boxes and not p.points:
            raise gr.Error("Draw a box or click a point first.", print_exception=False)
        if matte_delay > 0:
            import time

            time.sleep(matte_delay)
        received = {"size": list(p.size), "boxes": [list(b) for b in p.boxes],
                    "points": [list(q) for q in p.points], "box_index": p.box_index, "labels": p.labels}
        return received, json.dumps(received), with_mask(value, _demo_mask(p), opacity=0.45)

    def detect(value: dict[str, Any]) -> dict[str, Any]:
        v = sanitize_canvas_value(value)
        if v["image"] is None:
            raise gr.Error("Load an image first.", print_exception=False)
        w, h = v["image"]["width"], v["image"]["height"]
        found = [((0.1, 0.3, 0.4, 0.85), "ball", 0.91), ((0.55, 0.2, 0.8, 0.75), "box", 0.84),
                 ((0.82, 0.05, 0.95, 0.22), "sun", 0.55)]
        img = v["image"]
        src = img.get("src") or (img.get("file") or {}).get("path")
        return canvas_value(src, w, h, [[a * w, b * h, c * w, d * h] for (a, b, c, d), _, _ in found],
                            labels=[n for _, n, _ in found], scores=[s for _, _, s in found], best=2)

    def on_select(value: dict[str, Any], evt: gr.SelectData) -> str:
        return json.dumps({"selected": evt.index, "picked": bool(evt.selected), "box": evt.value})

    def from_text(value: dict[str, Any], boxes_text: str, points_text: str) -> Any:
        try:
            return canvas_from_text(value, boxes_text, points_text), ""
        except PromptError as e:
            return gr.update(), f"⚠ {e}"

    with gr.Blocks(title="PromptCanvas demo") as app:
        gr.Markdown("### PromptCanvas demo: drag boxes, click ± points, then Matte")
        canvas = PromptCanvas(elem_id="canvas", max_boxes=16)
        with gr.Row():
            load_btn = gr.Button("Load test photo", elem_id="load")
            detect_btn = gr.Button("Detect", elem_id="detect")
            matte_btn = gr.Button("Matte", variant="primary", elem_id="matte")
        with gr.Row():
            boxes_tb = gr.Textbox(label="Boxes (x1, y1, x2, y2 per line)", lines=3, elem_id="boxes")
            points_tb = gr.Textbox(label="Points (x, y, 1|0 per line)", lines=3, elem_id="points")
        note = gr.Markdown(elem_id="note")
        received = gr.JSON(label="Prompt received by the server", elem_id="received")
        received_text = gr.Textbox(label="Prompt received (JSON text)", elem_id="received-json",
                                   interactive=False, max_lines=3)
        picked = gr.Textbox(label="Selected object (select event)", elem_id="picked", interactive=False)

        canvas.change(None, [canvas, boxes_tb, points_tb], [boxes_tb, points_tb], js=CANVAS_TO_TEXT_JS)
        for ev in (boxes_tb.submit, boxes_tb.blur, points_tb.submit, points_tb.blur):
            ev(from_text, [canvas, boxes_tb, points_tb], [canvas, note])
        canvas.upload(load_upload, None, canvas)
        canvas.select(on_select, canvas, picked)
        load_btn.click(load_photo, None, canvas)
        detect_btn.click(detect, canvas, canvas)
        # show_progress="hidden": gradio would dim the canvas (an output here) to 20 % while it runs
        matte_btn.click(matte, canvas, [received, received_text, canvas], show_progress="hidden")
    return app


if __name__ == "__main__":  # python -m semat.app.canvas
    demo(matte_delay=Settings.from_env().canvas_demo_delay).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
