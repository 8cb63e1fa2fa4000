"""A minimal app around the prompt canvas (``python -m semat.app.canvas``), for trying it by hand
and for the browser tests: a synthetic photo, Matte that echoes the prompt the server got and
overlays a stand-in mask, Detect that adds scored boxes, and the keyboard fields in sync."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import gradio as gr

from semat.app.canvas_component import PromptCanvas
from semat.app.canvas_contract import CanvasPrompt, parse_canvas_value, sanitize_canvas_value
from semat.app.canvas_files import preview_file, uploaded_path
from semat.app.canvas_text import CANVAS_TO_TEXT_JS, canvas_from_text
from semat.app.canvas_values import canvas_value, with_mask
from semat.errors import PromptError

__all__ = ["demo", "synthetic_photo"]


def synthetic_photo(width: int = 4000, height: int = 3000):
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
            preview[:] = [preview_file(synthetic_photo(width, height))]
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
