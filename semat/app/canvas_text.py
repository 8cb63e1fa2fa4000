"""The canvas prompt as keyboard text, both ways: boxes as ``x1, y1, x2, y2`` lines, points as
``x, y, label`` lines. :data:`CANVAS_TO_TEXT_JS` writes the same text in the browser."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from semat.app.canvas_contract import CanvasValueError, fmt_coord, parse_canvas_value, sanitize_canvas_value
from semat.validate import parse_boxes, parse_points

__all__ = ["CANVAS_TO_TEXT_JS", "canvas_from_text", "canvas_to_text"]

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


def canvas_to_text(value: Any) -> tuple[str, str]:
    """The prompt as the keyboard fields show it: ticked boxes as ``x1, y1, x2, y2`` lines and
    points as ``x, y, label`` lines (the same text :data:`CANVAS_TO_TEXT_JS` writes)."""
    p = parse_canvas_value(value)
    return ("\n".join(", ".join(fmt_coord(c) for c in b) for b in p.boxes),
            "\n".join(f"{fmt_coord(x)}, {fmt_coord(y)}, {int(lab)}" for x, y, lab in p.points))


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
    return "\n".join(", ".join(fmt_coord(c) for c in b) for b in boxes)


def _text_points(points: Iterable[Sequence[float]]) -> str:
    return "\n".join(f"{fmt_coord(p[0])}, {fmt_coord(p[1])}, {int(p[2])}" for p in points)
