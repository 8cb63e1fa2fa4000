"""The page: header, the Cut out tab (prompt canvas) and the Auto human tab, hidden API components.

The only layout code; every callback lives in :mod:`semat.app.handlers` / :mod:`semat.app.api`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from semat import registry
from semat.app import editor as L
from semat.app import handlers as H
from semat.app import steps as S
from semat.app.api import named_endpoints
from semat.app.batch_tab import batch_tab
from semat.app.canvas import CANVAS_TO_TEXT_JS, PromptCanvas
from semat.app.errors import InputImage
from semat.app.render import device_label, test_mode
from semat.app.video_tab import video_tab
from semat.app.zerogpu import on_zero_gpu
from semat.settings import Settings

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


CSS = """
.semat-testmode {background:#fff3cd;border:2px solid #d39e00;border-radius:8px;padding:6px 12px;
  color:#5c4400;font-weight:600}
/* Transparent is shown on a dark pattern, so it never looks like the Checkerboard background */
.semat-composite img {background-color:#3b3f46;background-image:
  linear-gradient(45deg,#2b2e33 25%,transparent 25%),linear-gradient(-45deg,#2b2e33 25%,transparent 25%),
  linear-gradient(45deg,transparent 75%,#2b2e33 75%),linear-gradient(-45deg,transparent 75%,#2b2e33 75%);
  background-size:12px 12px;background-position:0 0,0 6px,6px -6px,-6px 0}
.semat-status {min-height:3em}
.semat-status p {margin:0}
/* a compact header: the canvas, the prompt, the button and the examples fit above the fold */
#semat-header h1 {font-size:1.45rem;margin:0 0 2px}
#semat-header p, .semat-note p {margin:0}
#semat-header p {font-size:var(--text-sm)}
.semat-note {font-size:var(--text-sm);color:var(--body-text-color-subdued)}
#semat-subheader {gap:8px;align-items:center}
.semat-testmode {padding:0 8px !important;font-size:var(--text-sm)}
.semat-testmode p {margin:0}
#semat-subheader > div {padding:2px 8px}
.semat-promptbar {align-items:flex-end}
.semat-buttons {flex-wrap:nowrap !important;gap:6px}
.semat-buttons button {white-space:nowrap}
.semat-downloads {gap:6px}
.semat-objects .wrap {max-height:5.6em;overflow-y:auto}
/* a phone: a smaller title, the test-mode and device lines one under the other */
@media (max-width: 640px) {#semat-header h1 {font-size:1.15rem}
  #semat-subheader {flex-direction:column;align-items:stretch}}
.semat-downloads button {white-space:nowrap}
/* examples as a strip of thumbnail chips (photo + prompt) instead of a tall table */
:is(#cut-examples,#human-examples) thead {display:none}
:is(#cut-examples,#human-examples) tbody {display:flex;flex-wrap:wrap;gap:6px}
:is(#cut-examples,#human-examples) tr {display:flex;align-items:center;gap:6px;border:1px solid var(--border-color-primary);
  border-radius:var(--radius-md);padding:2px 8px 2px 2px;cursor:pointer}
:is(#cut-examples,#human-examples) td {padding:0 !important;border:none !important}
:is(#cut-examples,#human-examples) td img, :is(#cut-examples,#human-examples) td .container {width:44px !important;height:44px !important;object-fit:cover}
/* a drag on a gr.Image never starts the browser's own drag (it would drop nothing and clear it) */
.semat-input img {-webkit-user-drag:none;user-select:none}
"""

#: Enter in the Boxes/Points fields applies them (leaving the field does), Shift+Enter adds a line
FIELDS_JS = """() => { document.addEventListener('keydown', (e) => {
  const t = e.target; if (e.key !== 'Enter' || e.shiftKey || !t || t.tagName !== 'TEXTAREA') return;
  if (!t.closest('#cut-boxes, #cut-points')) return;
  e.preventDefault(); e.stopPropagation(); t.blur(); }, true); }"""

#: after a photo loads: the canvas's busy chip goes, and (with a mouse) the prompt field takes the
#: focus, so typing "cat" + Enter needs no click; a phone keeps its keyboard closed
#: Gradio's API page asks ``/gradio_api/mcp/schema`` whether an MCP server runs; this app runs none
#: (gradio's ``mcp`` extra is not installed), so the page is told "no" here, before any request
#: leaves the browser (it was a 404 in every visit's network log), and shows the Python snippets.
NO_MCP_HEAD = """<script>(() => { const f = window.fetch.bind(window);
  window.fetch = (input, init) => { const u = typeof input === 'string' ? input : (input && input.url) || '';
    if (/\\/gradio_api\\/mcp\\/schema(?:[?#]|$)/.test(String(u))) {
      return Promise.resolve(new Response('{"detail": "This app runs no MCP server."}',
        {status: 404, headers: {'content-type': 'application/json'}})); }
    return f(input, init); }; })();</script>"""

#: A phone shows the result full-screen once the page scrolls to it, so a notice toast (Gradio's
#: ``.toast-body.info``/``.warning`` in a fixed ``.toast-wrap``) would cover its top for 8 s. Every
#: notice is also in the status line, so at phone width those toasts are not shown; error toasts
#: (an upload refused before any handler runs) still are. In ``head``: the toasts are outside
#: what ``css=`` reaches once Gradio scopes it.
PHONE_TOASTS_HEAD = """<style>@media (max-width: 640px) {
  .toast-item:has(> .toast-body.info), .toast-item:has(> .toast-body.warning),
  .toast-body.info, .toast-body.warning {display:none !important}}</style>"""

#: everything ``launch`` puts in the page's <head>
HEAD = NO_MCP_HEAD + PHONE_TOASTS_HEAD

CLEAR_CANVAS_BUSY_JS = """() => { document.querySelectorAll('.pc-busy').forEach((b) => { b.hidden = true; });
  const st = document.querySelector('#cut-status'); if (st) st.style.minHeight = '';
  if (matchMedia('(pointer: fine)').matches) {
    const t = document.querySelector('#cut-text textarea, #cut-text input'); if (t) t.focus(); } }"""


#: a user edit on the canvas makes the status line's last word stale: a notice goes, a result's
#: "✓ … Done" says that Matte updates it (an error stays until the next action: this is one)
STALE_STATUS_JS = """(st) => { const t = (st || '').trim(), el = document.querySelector('#cut-status');
  // the line keeps its height while the user draws: the canvas under the finger never moves
  if (el) el.style.minHeight = Math.max(el.offsetHeight, parseFloat(el.style.minHeight) || 0) + 'px';
  if (/^✓/.test(t)) return 'Prompt changed: press **Matte** to update the cut-out.';
  if (/^(Found |Typed boxes|Loaded |Cancelled|Example loaded|Showing |Box #|Model changed|⚠)/.test(t)) return '';
  return st; }"""


def reveal_js(prefix: str) -> str:
    """After a run: bring the result and its downloads into view if they are not (a phone, where
    the columns stack), or the status line when the run failed."""
    return f"""() => {{ const res = document.querySelector('#{prefix}-results'),
      dl = document.querySelector('#{prefix}-downloads');
      const shown = res && res.offsetParent !== null;
      const target = shown ? res : document.querySelector('#{prefix}-status');
      if (!target) return;
      const a = target.getBoundingClientRect(), b = (shown && dl ? dl : target).getBoundingClientRect();
      if (a.top >= 0 && b.bottom <= window.innerHeight) return;
      target.scrollIntoView({{block: 'start', behavior: 'instant'}}); }}"""


def _examples() -> dict[str, list]:
    """Example rows per tab (image path + prompt), only for files that are present."""
    ex = EXAMPLES_DIR
    rows = [("chelsea.jpg", "cat"), ("coffee.jpg", "coffee cup"), ("astronaut.jpg", "person")]
    cut = [[str(ex / n), t] for n, t in rows if (ex / n).is_file()]
    human = [[str(ex / "astronaut.jpg")]] if (ex / "astronaut.jpg").is_file() else []
    return {"cut": cut, "human": human}


@dataclass
class OutputPanel:
    box: gr.Column
    objects: gr.Radio
    mask: gr.Image | None
    alpha: gr.Image
    composite: gr.Image
    bg_mode: gr.Radio
    colour: gr.ColorPicker
    bg_image: gr.Image
    blur: gr.Slider
    rgba: gr.DownloadButton
    alpha_dl: gr.DownloadButton
    composite_dl: gr.DownloadButton
    zip: gr.DownloadButton
    info: gr.Markdown

    @property
    def downloads(self) -> list:
        return [self.rgba, self.alpha_dl, self.composite_dl, self.zip]

    @property
    def bg(self) -> list:
        return [self.bg_mode, self.colour, self.bg_image, self.blur]

    @property
    def results(self) -> list:
        """(box, alpha, composite, objects, 4 downloads, info): what a new image clears."""
        return [self.box, self.alpha, self.composite, self.objects, *self.downloads, self.info]


def _output_panel(prefix: str, with_mask: bool = False) -> OutputPanel:
    """The result column: previews, their downloads right under them, then the background.
    Hidden until there is a result (a first visit sees the canvas and the examples)."""
    with gr.Column(visible=False, elem_id=f"{prefix}-results", elem_classes=["semat-results"]) as box:
        img = {"type": "filepath", "interactive": False, "buttons": ["fullscreen"], "height": 250,
               "min_width": 120}
        with gr.Row(equal_height=True):
            mask = gr.Image(label="Coarse mask (preview)", elem_id=f"{prefix}-mask", **img) if with_mask else None
            alpha = gr.Image(label="Alpha matte (preview)", elem_id=f"{prefix}-alpha", **img)
            composite = gr.Image(label="Composite (preview)", image_mode="RGBA", elem_id=f"{prefix}-composite",
                                 elem_classes=["semat-composite"], **img)
        with gr.Row(elem_id=f"{prefix}-downloads", elem_classes=["semat-downloads"]):
            dl = {"value": None, "interactive": False, "size": "sm", "min_width": 70}
            rgba = gr.DownloadButton("RGBA PNG", elem_id=f"{prefix}-dl-rgba", variant="primary", **dl)
            alpha_dl = gr.DownloadButton("Alpha PNG", elem_id=f"{prefix}-dl-alpha", **dl)
            composite_dl = gr.DownloadButton("Composite", elem_id=f"{prefix}-dl-composite", **dl)
            zip_dl = gr.DownloadButton("Layers ZIP", elem_id=f"{prefix}-dl-zip", **dl)
        gr.Markdown("Downloads are full size and lossless; the panels above are previews.",
                    elem_classes=["semat-note"])
        objects = gr.Radio([], value=None, label="Show (click an object on the picture, or pick it here)",
                           elem_id=f"{prefix}-objects", visible=False, elem_classes=["semat-objects"])
        bg_mode = gr.Radio(list(L.BACKGROUND_MODES), value="Checkerboard", label="Background",
                           elem_id=f"{prefix}-bg-mode")
        with gr.Row(equal_height=True):
            colour = gr.ColorPicker(value="#00b140", label="Colour", elem_id=f"{prefix}-bg-colour", min_width=80,
                                    scale=1)
            blur = gr.Slider(1, 60, value=12, step=1, label="Blur strength (σ px)", elem_id=f"{prefix}-bg-blur",
                             min_width=140, scale=2)
            bg_image = InputImage(label="Background image", type="filepath", sources=["upload", "clipboard"],
                                  height=90, elem_id=f"{prefix}-bg-image", scale=2, min_width=120,
                                  elem_classes=["semat-input"])
        info = gr.Markdown("", elem_id=f"{prefix}-info", elem_classes=["semat-note"])
    return OutputPanel(box, objects, mask, alpha, composite, bg_mode, colour, bg_image, blur, rgba, alpha_dl,
                       composite_dl, zip_dl, info)


def header_markdown() -> str:
    return ("# ✂️ SEMat Space — natural image matting\n"
            "Cut out any object: drag a box on it, click it, or type what it is. **Auto human** finds people "
            "by itself. Downloads are lossless, at full size; changing the background never re-runs a model.")


MODEL_EVENTS: dict[str, Any] = {"concurrency_id": "models", "api_visibility": "private", "show_progress": "hidden"}
LIGHT = {"concurrency_limit": 8, "concurrency_id": "prompts", "api_visibility": "private", "show_progress": "hidden"}
QUICK = {"queue": False, "api_visibility": "private", "show_progress": "hidden"}
COMPOSE = {"concurrency_limit": 2, "concurrency_id": "compose", "api_visibility": "private", "show_progress": "hidden"}


def _model_events(settings: Settings, **kw: Any) -> dict[str, Any]:
    return {**MODEL_EVENTS, "concurrency_limit": settings.concurrency, **kw}


def _wire_backgrounds(panel: OutputPanel, state: gr.State, status: gr.Markdown) -> list:
    """The background controls as one control: touching one switches the mode to it; the last
    value always wins; the composite download follows after the preview."""
    inputs = [*panel.bg, state]
    outputs = [panel.bg_mode, panel.composite, panel.composite_dl, status]
    follow = [*panel.downloads, panel.composite, status]
    events = []
    for trigger, mode in ((panel.bg_mode.input, None), (panel.colour.change, "Colour"),
                          (panel.blur.change, "Blur"), (panel.bg_image.upload, "Image")):
        ev = trigger(H.recomposite_as(mode), inputs, outputs, trigger_mode="always_last", **COMPOSE)
        events.append(ev.then(H.prepare_downloads, inputs, follow, **COMPOSE))
    return events


def _cut_tab(examples: list, settings: Settings) -> None:
    state = gr.State(None, time_to_live=3600)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):  # the prompt bar, its status line, the canvas
            with gr.Row(equal_height=True, elem_classes=["semat-promptbar"]):
                text = gr.Textbox(label="What to cut out", elem_id="cut-text",
                                  placeholder="e.g. cat, coffee cup, person (or drag a box / click the object)", max_lines=1,
                                  scale=3, min_width=200)
                with gr.Column(scale=2, min_width=240), gr.Row(elem_classes=["semat-buttons"]):
                    detect = gr.Button("Detect", elem_id="cut-detect", min_width=70)
                    run = gr.Button("Matte ▶", variant="primary", elem_id="cut-run", min_width=90)
                    cancel = gr.Button("Cancel", elem_id="cut-cancel", interactive=False, min_width=70)
            status = gr.Markdown("Drop a photo on the canvas (or use “Open image…”), or click an example.",
                                 elem_id="cut-status", elem_classes=["semat-status"])
            canvas = PromptCanvas(max_boxes=settings.max_boxes, elem_id="cut-canvas", max_picture_height=560)
        with gr.Column(scale=2, min_width=300):  # examples, then the result and its downloads
            ex_img = gr.Image(type="filepath", visible=False, elem_id="cut-example-image")
            ex = gr.Examples(examples, inputs=[ex_img, text], label="Examples (photo + what to cut out)",
                             elem_id="cut-examples", examples_per_page=6) if examples else None
            out = _output_panel("cut")
            with gr.Accordion("Boxes and points as text (keyboard)", open=False, elem_id="cut-keyboard"):
                boxes_tb = gr.Textbox(label="Boxes: x1, y1, x2, y2 per line (Enter applies)", lines=2,
                                      elem_id="cut-boxes")
                points_tb = gr.Textbox(label="Points: x, y, 1 (keep) or 0 (exclude) per line", lines=2,
                                       elem_id="cut-points")
            with gr.Accordion("Model and thresholds", open=False, elem_id="cut-model"):
                variant = gr.Radio([registry.label(v) for v in registry.names("semat")],
                                   value=registry.label(registry.default("semat")), label="SEMat checkpoint",
                                   elem_id="variant")
                box_thr = gr.Slider(0.01, 0.95, value=0.35, step=0.01, label="Box threshold (text prompts only)",
                                    elem_id="cut-box-thr")
                text_thr = gr.Slider(0.01, 0.95, value=0.25, step=0.01, label="Text threshold (text prompts only)",
                                     elem_id="cut-text-thr")
    results = out.results
    buttons = [status, run, detect, cancel]
    follow = [*out.downloads, out.composite, status]

    loaded = [canvas, status, state, boxes_tb, points_tb, *results]  # a new photo: the old prompt text goes
    canvas.upload(H.cut_upload, [state], loaded, **LIGHT).then(
        None, js=CLEAR_CANVAS_BUSY_JS)
    canvas.change(None, [canvas, boxes_tb, points_tb], [boxes_tb, points_tb], js=CANVAS_TO_TEXT_JS)
    canvas.input(None, [status], [status], js=STALE_STATUS_JS)
    variant.input(H.variant_changed, [variant, state], [status], **QUICK)
    for ev in (boxes_tb.submit, boxes_tb.blur, points_tb.submit, points_tb.blur):
        ev(H.cut_from_text, [canvas, boxes_tb, points_tb], [canvas, status], **LIGHT)

    matte_in = [canvas, boxes_tb, points_tb, text, box_thr, text_thr, variant, *out.bg, state]
    matte_out = [canvas, status, state, run, detect, cancel, out.box, out.alpha, out.composite, out.objects,
                 *out.downloads, out.info]
    runs = []
    stop = S.Stop(buttons, "Cancelled. The canvas keeps your boxes and points.", S.ON, S.ON, S.OFF)

    def matte_chain(begun):
        m = begun.then(stop.guard(H.cut_matte, matte_out), matte_in, matte_out, **_model_events(settings))
        m.then(None, js=reveal_js("cut"))
        runs.extend([m, m.then(stop.guard(H.prepare_downloads, follow), [*out.bg, state], follow, **COMPOSE)])

    for trigger in (run.click, text.submit):
        matte_chain(trigger(S.begin("Matting"), [state], buttons, **QUICK))
    if ex is not None:
        shown = ex.load_input_event.then(H.cut_example, [ex_img, state], loaded, **LIGHT)
        matte_chain(shown.then(S.begin("Matting"), [state], buttons, **QUICK))
    detect_out = [canvas, status, state, run, detect, cancel]
    d = detect.click(S.begin("Detecting"), [state], buttons, **QUICK).then(
        stop.guard(H.cut_detect, detect_out), [canvas, boxes_tb, points_tb, text, box_thr, text_thr, state],
        detect_out, **_model_events(settings))
    pick_out = [out.objects, out.alpha, out.composite, *out.downloads, status]
    for ev in (canvas.select(H.cut_select, [state, *out.bg], pick_out, **COMPOSE),
               out.objects.input(H.cut_pick, [out.objects, state, *out.bg], pick_out, **COMPOSE)):
        runs.append(ev.then(H.prepare_downloads, [*out.bg, state], follow, **COMPOSE))
    runs += _wire_backgrounds(out, state, status)
    cancel.click(stop.press, [state], buttons, cancels=[d, *runs], **QUICK)


def _human_tab(examples: list, settings: Settings) -> None:
    state = gr.State(None, time_to_live=3600)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3, min_width=320):
            with gr.Row(equal_height=True, elem_classes=["semat-promptbar"]):
                gr.Markdown("SGHM finds and mattes every person — no prompt needed.")
                with gr.Column(min_width=240), gr.Row(elem_classes=["semat-buttons"]):
                    run = gr.Button("Matte people ▶", variant="primary", elem_id="human-run", min_width=120)
                    cancel = gr.Button("Cancel", elem_id="human-cancel", interactive=False, min_width=70)
            status = gr.Markdown("Upload a photo with people, or click the example.", elem_id="human-status",
                                 elem_classes=["semat-status"])
            img = InputImage(label="Image with people", type="filepath", image_mode=None, format="png",
                             sources=["upload", "clipboard"], elem_id="human-image", height=420,
                             elem_classes=["semat-input"])
        with gr.Column(scale=2, min_width=300):
            ex = gr.Examples(examples, inputs=[img], label="Examples", elem_id="human-examples") if examples else None
            out = _output_panel("human", with_mask=True)
    assert out.mask is not None
    buttons = [status, run, cancel]
    outputs = [status, state, run, cancel, out.box, out.mask, out.alpha, out.composite, *out.downloads, out.info]
    follow = [*out.downloads, out.composite, status]
    runs = []
    stop = S.Stop(buttons, "Cancelled.", S.ON, S.OFF)
    begin = S.begin("Matting people", buttons=1)
    firsts = [run.click(begin, [state], buttons, **QUICK)]
    if ex is not None:
        firsts.append(ex.load_input_event.then(begin, [state], buttons, **QUICK))
    for first in firsts:
        m = first.then(stop.guard(H.human_run, outputs), [img, *out.bg, state], outputs, **_model_events(settings))
        m.then(None, js=reveal_js("human"))
        runs += [m, m.then(stop.guard(H.prepare_downloads, follow), [*out.bg, state], follow, **COMPOSE)]
    runs += _wire_backgrounds(out, state, status)
    cancel.click(stop.press, [state], buttons, cancels=runs, **QUICK)


def build_demo() -> gr.Blocks:
    """Build the whole app (call ``.queue(...).launch(...)`` or use :func:`launch`)."""
    settings = Settings.from_env()
    gpu_note = "ZeroGPU" if on_zero_gpu() else ""
    ex = _examples()
    with gr.Blocks(title="SEMat Space — natural image matting", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(header_markdown(), elem_id="semat-header")
        with gr.Row(equal_height=True, elem_id="semat-subheader"):
            if test_mode():
                gr.Markdown("⚠️ **TEST MODE** (`SEMAT_TEST_MODELS=tiny`): random-weight models, "
                            "meaningless outputs.", elem_classes=["semat-testmode"], elem_id="test-mode-banner")
            gr.Markdown(f"**Device:** {device_label()} {gpu_note} · models load on first use and stay cached.",
                        elem_id="device-label", elem_classes=["semat-note"])
        with gr.Tabs():
            with gr.Tab("Cut out", id="cut"):
                _cut_tab(ex["cut"], settings)
            with gr.Tab("Auto human", id="human"):
                _human_tab(ex["human"], settings)
            batch_tab(settings)  # its own gr.Tab("Batch"): many photos, words or Auto human, one ZIP
            video_tab(settings)  # its own gr.Tab("Video"): one clip by words, a box or Auto human
        named_endpoints(settings)
    return demo


def queue_settings(settings: Settings | None = None) -> dict[str, Any]:
    s = settings or Settings.from_env()
    return {"max_size": s.queue_size, "default_concurrency_limit": 1}


def launch(demo: gr.Blocks | None = None, **kwargs: Any) -> None:
    """Queue with a bounded size and launch (host/port from GRADIO_SERVER_NAME/PORT or kwargs)."""
    s = Settings.from_env()
    demo = demo or build_demo()
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("js", FIELDS_JS)
    kwargs.setdefault("head", HEAD)
    kwargs.setdefault("show_error", True)
    kwargs.setdefault("max_file_size", s.max_upload)
    kwargs.setdefault("state_session_capacity", s.session_capacity)
    demo.queue(**queue_settings(s)).launch(**kwargs)
