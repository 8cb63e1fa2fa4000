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

The code lives one concept a module, all re-exported here: :mod:`~semat.app.canvas_component`
(the component), :mod:`~semat.app.canvas_contract` (limits, types, checks),
:mod:`~semat.app.canvas_values` (building and changing values), :mod:`~semat.app.canvas_text`
(keyboard text both ways), :mod:`~semat.app.canvas_files` (previews, masks, uploads) and
:mod:`~semat.app.canvas_demo` (the demo app).
"""

from __future__ import annotations

import os

from semat.app.canvas_component import PromptCanvas
from semat.app.canvas_contract import (
    MAX_BOXES,
    MAX_LABEL,
    MAX_POINTS,
    MAX_SIDE,
    CanvasPrompt,
    CanvasValueError,
    parse_canvas_value,
    sanitize_canvas_value,
)
from semat.app.canvas_demo import demo
from semat.app.canvas_files import PREVIEW_MAX_SIDE, mask_file, preview_file, uploaded_path
from semat.app.canvas_text import CANVAS_TO_TEXT_JS, canvas_from_text, canvas_to_text
from semat.app.canvas_values import canvas_value, keep_best, updated, with_mask
from semat.settings import Settings
from semat.validate import parse_boxes, parse_points

__all__ = [
    "CANVAS_TO_TEXT_JS",
    "MAX_BOXES",
    "MAX_LABEL",
    "MAX_POINTS",
    "MAX_SIDE",
    "PREVIEW_MAX_SIDE",
    "CanvasPrompt",
    "CanvasValueError",
    "PromptCanvas",
    "canvas_from_text",
    "canvas_to_text",
    "canvas_value",
    "demo",
    "keep_best",
    "mask_file",
    "parse_boxes",
    "parse_canvas_value",
    "parse_points",
    "preview_file",
    "sanitize_canvas_value",
    "updated",
    "uploaded_path",
    "with_mask",
]


if __name__ == "__main__":  # python -m semat.app.canvas
    demo(matte_delay=Settings.from_env().canvas_demo_delay).launch(
        server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
