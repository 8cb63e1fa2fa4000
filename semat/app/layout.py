"""The page: header, model selector, three tabs, hidden API components and their wiring.

The only layout code; every callback lives in :mod:`semat.app.handlers` / :mod:`semat.app.api`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from semat import registry
from semat.app import editor as L
from semat.app.api import api_detect, api_matte_human, api_matte_prompts, api_matte_text, api_status
from semat.app.handlers import (
    boxes_apply,
    boxes_clear,
    boxes_click,
    boxes_matte,
    boxes_undo,
    boxes_upload,
    example_human,
    example_text,
    human_run,
    on_upload,
    recomposite,
    text_detect,
    text_matte,
    text_selection,
)
from semat.app.render import device_label, test_mode
from semat.app.zerogpu import on_zero_gpu
from semat.settings import Settings

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def InputImage(**kwargs) -> gr.Image:
    """A ``gr.Image`` whose unreadable uploads end in one friendly gr.Error (not a bare "Error").

    Wraps the instance's ``preprocess`` (a subclass would make Gradio write a ``.pyi`` stub
    next to this module at import).
    """
    img = gr.Image(**kwargs)
    original = img.preprocess

    def preprocess(payload):
        try:
            return original(payload)
        except gr.Error:
            raise
        except Exception as exc:
            name = getattr(payload, "orig_name", None) or "The file"
            raise gr.Error(f"{name} is not an image file we can read ({type(exc).__name__}). Upload a JPEG, PNG "
                           "or WebP photo instead.", title="Can't read this image", print_exception=False) from exc

    img.preprocess = preprocess  # type: ignore[method-assign]
    return img


CSS = """
.semat-testmode {background:#fff3cd;border:2px solid #d39e00;border-radius:8px;padding:6px 12px;
  color:#5c4400;font-weight:600}
.semat-outputs img {background-image: linear-gradient(45deg,#ccc 25%,transparent 25%),
  linear-gradient(-45deg,#ccc 25%,transparent 25%),linear-gradient(45deg,transparent 75%,#ccc 75%),
  linear-gradient(-45deg,transparent 75%,#ccc 75%);background-size:16px 16px;
  background-position:0 0,0 8px,8px -8px,-8px 0}
"""


def _examples() -> dict[str, list]:
    """Example rows per tab (image path + prompt), only for files that are present."""
    ex = EXAMPLES_DIR
    def have(*names):
        return all((ex / n).is_file() for n in names)
    text, boxes, human = [], [], []
    if have("chelsea.jpg"):
        text.append([str(ex / "chelsea.jpg"), "cat"])
    if have("coffee.jpg"):
        text.append([str(ex / "coffee.jpg"), "coffee cup"])
    if have("astronaut.jpg"):
        text.append([str(ex / "astronaut.jpg"), "person"])
        human.append([str(ex / "astronaut.jpg")])
    for name in ("chelsea.jpg", "coffee.jpg", "astronaut.jpg"):
        if have(name):
            boxes.append([str(ex / name)])
    return {"text": text, "boxes": boxes, "human": human}


@dataclass
class OutputPanel:
    mask: gr.Image
    alpha: gr.Image
    composite: gr.Image
    bg_mode: gr.Radio
    colour: gr.ColorPicker
    bg_image: gr.Image
    blur: gr.Slider
    rgba: gr.DownloadButton
    alpha_dl: gr.DownloadButton
    zip: gr.DownloadButton
    info: gr.Markdown

    @property
    def files(self) -> list:
        return [self.mask, self.alpha, self.composite, self.rgba, self.alpha_dl, self.zip, self.info]

    @property
    def images(self) -> list:
        return [self.mask, self.alpha, self.composite]

    @property
    def bg(self) -> list:
        return [self.bg_mode, self.colour, self.bg_image, self.blur]


def _output_panel(prefix: str) -> OutputPanel:
    with gr.Row(elem_classes=["semat-outputs"]):
        mask = gr.Image(label="Coarse mask", format="png", type="filepath", interactive=False,
                        elem_id=f"{prefix}-mask", buttons=["download", "fullscreen"])
        alpha = gr.Image(label="Alpha matte", format="png", type="filepath", interactive=False,
                         elem_id=f"{prefix}-alpha", buttons=["download", "fullscreen"])
        composite = gr.Image(label="Composite", format="png", type="filepath", interactive=False,
                             image_mode="RGBA", elem_id=f"{prefix}-composite", buttons=["download", "fullscreen"])
    with gr.Row():
        bg_mode = gr.Radio(list(L.BACKGROUND_MODES), value="Checkerboard", label="Background",
                           elem_id=f"{prefix}-bg-mode", scale=3)
        colour = gr.ColorPicker(value="#00b140", label="Colour", elem_id=f"{prefix}-bg-colour", scale=1)
        blur = gr.Slider(1, 60, value=12, step=1, label="Blur strength (σ px)", elem_id=f"{prefix}-bg-blur",
                         scale=2)
        bg_image = InputImage(label="Background image", type="filepath", sources=["upload", "clipboard"],
                            height=120, elem_id=f"{prefix}-bg-image", scale=2)
    with gr.Row():
        rgba = gr.DownloadButton("⬇ RGBA PNG", value=None, elem_id=f"{prefix}-dl-rgba", interactive=True)
        alpha_dl = gr.DownloadButton("⬇ Alpha PNG", value=None, elem_id=f"{prefix}-dl-alpha")
        zip_dl = gr.DownloadButton("⬇ Layers ZIP", value=None, elem_id=f"{prefix}-dl-zip")
    info = gr.Markdown("", elem_id=f"{prefix}-info")
    return OutputPanel(mask, alpha, composite, bg_mode, colour, bg_image, blur, rgba, alpha_dl, zip_dl, info)


def _wire_recomposite(panel: OutputPanel, image: gr.Image, state: gr.State) -> None:
    inputs = [*panel.bg, image, panel.alpha, state]
    for comp in (panel.bg_mode, panel.colour, panel.blur):
        comp.input(recomposite, inputs, [panel.composite, state], show_progress="minimal",
                   api_visibility="private", concurrency_limit=4, concurrency_id="compose")
    panel.bg_image.upload(recomposite, inputs, [panel.composite, state], api_visibility="private",
                          concurrency_limit=4, concurrency_id="compose")


def header_markdown() -> str:
    return ("# ✂️ SEMat Space — natural image matting\n"
            "Cut out any object by **words**, **boxes & clicks**, or let **Auto human** find people. "
            "Outputs: coarse mask, alpha matte, composite; downloads are lossless PNG/ZIP. "
            "Changing the background never re-runs a model.")




MODEL_EVENTS: dict[str, Any] = {"concurrency_id": "models", "api_visibility": "private"}
LIGHT = {"concurrency_limit": 8, "concurrency_id": "prompts", "api_visibility": "private", "show_progress": "hidden"}


def _model_events(settings: Settings, **kw: Any) -> dict[str, Any]:
    return {**MODEL_EVENTS, "concurrency_limit": settings.concurrency, **kw}


def _text_tab(variant: gr.Radio, examples: list, settings: Settings) -> None:
    state = gr.State(None, time_to_live=3600)
    with gr.Row():
        with gr.Column(scale=3):
            img = InputImage(label="Image", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard"], elem_id="text-image", height=420)
        with gr.Column(scale=2):
            text = gr.Textbox(label="What to cut out", placeholder="e.g. cat, coffee cup, person", elem_id="text-prompt")
            with gr.Accordion("Thresholds", open=False):
                box_thr = gr.Slider(0.05, 0.95, value=0.35, step=0.01, label="Box threshold", elem_id="text-box-thr")
                text_thr = gr.Slider(0.05, 0.95, value=0.25, step=0.01, label="Text threshold",
                                     elem_id="text-text-thr")
            with gr.Row():
                detect = gr.Button("1 · Detect", elem_id="text-detect")
                run = gr.Button("2 · Matte ▶", variant="primary", elem_id="text-run")
            sel = gr.CheckboxGroup([], value=[], label="Detected boxes (untick to skip)", elem_id="text-detections")
            msg = gr.Markdown("", elem_id="text-status")
    out = _output_panel("text")
    if examples:
        gr.Examples(examples, inputs=[img, text], outputs=out.files, fn=example_text, cache_examples=True,
                    cache_mode="lazy", label="Examples (results cached)", examples_per_page=6, elem_id="text-examples")
    img.upload(on_upload, [img, state], [img, state], **LIGHT)
    detect.click(text_detect, [img, text, box_thr, text_thr, state], [img, sel, msg, state],
                 **_model_events(settings, show_progress_on=[sel]))
    sel.input(text_selection, [sel, state], [img, state], **LIGHT)
    inputs = [img, text, box_thr, text_thr, variant, sel, *out.bg, state]
    outputs = [img, sel, *out.files, state]
    for trigger in (run.click, text.submit):
        trigger(text_matte, inputs, outputs, **_model_events(settings, show_progress_on=out.images))
    _wire_recomposite(out, img, state)


def _boxes_tab(variant: gr.Radio, examples: list, settings: Settings) -> None:
    state = gr.State(None, time_to_live=3600)
    with gr.Row():
        with gr.Column(scale=3):
            img = InputImage(label="Image — click to add prompts", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard"], elem_id="boxes-image", height=420)
        with gr.Column(scale=2):
            mode = gr.Radio(list(L.CLICK_MODES), value=L.CLICK_MODES[0], label="A click adds", elem_id="boxes-mode")
            with gr.Row():
                undo = gr.Button("↶ Undo", size="sm", elem_id="boxes-undo")
                clear = gr.Button("✕ Clear", size="sm", elem_id="boxes-clear")
            boxes = gr.Textbox(label="Boxes: x1, y1, x2, y2 (one per line; Enter to apply)", lines=2,
                               elem_id="boxes-boxes")
            points = gr.Textbox(label="Points: x, y, label (1 = keep, 0 = exclude)", lines=2, elem_id="boxes-points")
            run = gr.Button("Matte ▶", variant="primary", elem_id="boxes-run")
            msg = gr.Markdown("Click two opposite corners to draw a box; switch the mode to add points.",
                              elem_id="boxes-status")
    out = _output_panel("boxes")
    if examples:
        gr.Examples(examples, inputs=[img], label="Examples", examples_per_page=6, elem_id="boxes-examples")
    edit_out = [img, boxes, points, msg, state]
    img.upload(boxes_upload, [img, state], edit_out, **LIGHT)
    img.select(boxes_click, [img, mode, boxes, points, state], edit_out, **LIGHT)
    undo.click(boxes_undo, [img, boxes, points, state], edit_out, **LIGHT)
    clear.click(boxes_clear, [img, boxes, points, state], edit_out, **LIGHT)
    for field in (boxes, points):
        field.submit(boxes_apply, [img, boxes, points, state], edit_out, **LIGHT)
    run.click(boxes_matte, [img, variant, boxes, points, *out.bg, state], [img, *out.files, state],
              **_model_events(settings, show_progress_on=out.images))
    _wire_recomposite(out, img, state)


def _human_tab(examples: list, settings: Settings) -> None:
    state = gr.State(None, time_to_live=3600)
    with gr.Row():
        with gr.Column(scale=3):
            img = InputImage(label="Image with people", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard"], elem_id="human-image", height=420)
        with gr.Column(scale=2):
            gr.Markdown("SGHM finds and mattes every person — no prompt needed.")
            run = gr.Button("Matte people ▶", variant="primary", elem_id="human-run")
    out = _output_panel("human")
    if examples:
        gr.Examples(examples, inputs=[img], outputs=out.files, fn=example_human, cache_examples=True,
                    cache_mode="lazy", label="Examples (results cached)", examples_per_page=6, elem_id="human-examples")
    run.click(human_run, [img, *out.bg, state], [*out.files, state],
              **_model_events(settings, show_progress_on=out.images))
    _wire_recomposite(out, img, state)


def _api(settings: Settings) -> None:
    """Hidden components carrying the named endpoints (documented in the README)."""
    semat_names = list(registry.names("semat"))
    with gr.Column(visible=False):
        img = InputImage(type="filepath", image_mode=None, label="image")
        text = gr.Textbox(label="text")
        bthr = gr.Number(0.35, label="box_threshold")
        tthr = gr.Number(0.25, label="text_threshold")
        model = gr.Dropdown(semat_names, value=semat_names[0], label="model")
        bg = gr.Textbox("transparent", label="background")
        max_objects = gr.Number(0, precision=0, label="max_objects")
        boxes = gr.Textbox(label="boxes")
        points = gr.Textbox(label="points")
        out = [gr.File(label="rgba_png"), gr.File(label="alpha_png"), gr.File(label="composite_png"),
               gr.File(label="layers_zip"), gr.JSON(label="info")]
        btn = gr.Button()
    ev = {"concurrency_limit": settings.concurrency, "concurrency_id": "models"}
    btn.click(api_matte_text, [img, text, bthr, tthr, model, bg, max_objects], out, api_name="matte_text", **ev)
    btn.click(api_matte_prompts, [img, boxes, points, model, bg], out, api_name="matte_prompts", **ev)
    btn.click(api_matte_human, [img, bg], out, api_name="matte_human", **ev)
    btn.click(api_detect, [img, text, bthr, tthr], [out[-1]], api_name="detect", **ev)
    btn.click(api_status, None, [out[-1]], api_name="status", queue=False)


def build_demo() -> gr.Blocks:
    """Build the whole app (call ``.queue(...).launch(...)`` or use :func:`launch`)."""
    settings = Settings.from_env()
    gpu_note = "ZeroGPU" if on_zero_gpu() else ""
    ex = _examples()
    with gr.Blocks(title="SEMat Space — natural image matting", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(header_markdown())
        if test_mode():
            gr.Markdown("⚠️ **TEST MODE** (`SEMAT_TEST_MODELS=tiny`): tiny random-weight models — outputs are "
                        "meaningless; for tests and UI development only.", elem_classes=["semat-testmode"],
                        elem_id="test-mode-banner")
        with gr.Row():
            variant = gr.Radio([registry.label(v) for v in registry.names("semat")],
                               value=registry.label(registry.default("semat")),
                               label="Model (SEMat checkpoint, for Text and Boxes tabs)", elem_id="variant", scale=3)
            gr.Markdown(f"**Device:** {device_label()} {gpu_note}\n\nModels load on first use and stay cached.",
                        elem_id="device-label")
        with gr.Tabs():
            with gr.Tab("Text prompt", id="text"):
                _text_tab(variant, ex["text"], settings)
            with gr.Tab("Boxes & clicks", id="boxes"):
                _boxes_tab(variant, ex["boxes"], settings)
            with gr.Tab("Auto human", id="human"):
                _human_tab(ex["human"], settings)
        _api(settings)
    return demo


def queue_settings(settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings.from_env()
    return {"max_size": s.queue_size, "default_concurrency_limit": 1}


def launch(demo: gr.Blocks | None = None, **kwargs: Any) -> None:
    """Queue with a bounded size and launch (host/port from GRADIO_SERVER_NAME/PORT or kwargs)."""
    s = Settings.from_env()
    demo = demo or build_demo()
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("show_error", True)
    kwargs.setdefault("max_file_size", s.max_upload)
    kwargs.setdefault("state_session_capacity", s.session_capacity)
    demo.queue(**queue_settings(s)).launch(**kwargs)
