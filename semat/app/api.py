"""The named HTTP API endpoints (``/matte_text``, ``/matte_prompts``, ``/matte_human``, ``/detect``,
``/status``), documented in the README. Each parses its arguments under the input contract and
calls the pipeline once; a background is a colour, ``transparent``, ``checker`` or ``blur[:σ]``,
never a server path.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from semat import compose, registry
from semat.app.errors import InputImage, friendly, user_error
from semat.app.handlers import checked_prompt
from semat.app.render import api_info, device_label, render
from semat.app.services import SERVICES
from semat.app.session import TabSession, load_into
from semat.app.zerogpu import gpu_detect, gpu_human, gpu_matte, on_zero_gpu
from semat.pipeline import MatteResult, Prompt
from semat.settings import Settings
from semat.validate import check_text, check_threshold


def _load(image: str | None) -> TabSession:
    if not image:
        raise user_error("Pass an image file (gradio_client.handle_file(path)).", "No image")
    s = TabSession()
    load_into(s, image)
    return s


def _background(background: str | None) -> compose.Background:
    """Parsed up front, so a typo fails before any model runs."""
    return compose.parse_background((background or "transparent").strip() or "transparent")


def _outputs(s: TabSession, result: MatteResult, bg: compose.Background, extra: dict[str, Any]):
    r = render(s, result, bg)
    return r.rgba, r.alpha, r.composite, r.zip, api_info(result, extra)


@friendly
def api_matte_text(image: str, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
                   model: str = "hq-sam", background: str = "transparent", max_objects: int = 0):
    """Text → boxes (GroundingDINO) → SEMat alpha for the best detections (all up to the box limit,
    or the best `max_objects`).

    Args:
        image: the photo (JPEG, PNG or WebP), e.g. handle_file(path or URL).
        text: what to cut out, e.g. "bus" or "person . dog" (several names: separate with " . ").
        box_threshold: lowest detection score kept, 0.01–0.95.
        text_threshold: lowest word-match score kept, 0.01–0.95.
        model: SEMat checkpoint: hq-sam, sam or sam2.
        background: the composite's background: transparent, checker, a colour (#00b140 or white) or blur[:σ].
        max_objects: matte only the best N detections (0: all, up to the box limit).
    """
    bg = _background(background)
    text = check_text(text)
    bt, tt = check_threshold(box_threshold, "box_threshold"), check_threshold(text_threshold, "text_threshold")
    variant = registry.from_label(model)
    s = _load(image)
    assert s.image is not None
    prompt = Prompt(text=text, box_threshold=bt, text_threshold=tt)
    result = gpu_matte(s.image, prompt, variant, max_objects=int(max_objects) if max_objects and max_objects > 0 else None)
    extra: dict[str, Any] = {"text": text, "detections_found": len(result.detections)}
    if not max_objects and len(result.selected) < len(result.detections):  # the box limit left some out
        extra["limit_notice"] = next((n for n in result.notices if n.startswith("found ")), "")
    return _outputs(s, result, bg, extra)


@friendly
def api_matte_prompts(image: str, boxes: str = "", points: str = "", model: str = "hq-sam",
                      background: str = "transparent"):
    """Boxes (`x1,y1,x2,y2` per line or a JSON list) and/or points (`x,y,label` per line) → SEMat alpha.

    Args:
        image: the photo (JPEG, PNG or WebP), e.g. handle_file(path or URL).
        boxes: one box per line, x1, y1, x2, y2 in the image's pixels, or a JSON list of boxes; "" for none.
        points: one click per line, x, y, 1 (keep) or 0 (exclude), in the image's pixels; "" for none.
        model: SEMat checkpoint: hq-sam, sam or sam2.
        background: the composite's background: transparent, checker, a colour (#00b140 or white) or blur[:σ].
    """
    bg = _background(background)
    variant = registry.from_label(model)
    s = _load(image)
    assert s.image is not None
    prompt = checked_prompt(s.image, boxes, points)
    if prompt.empty:
        raise user_error("Pass at least one box (x1,y1,x2,y2) or one positive point (x,y,1).", "No prompt")
    return _outputs(s, gpu_matte(s.image, prompt, variant), bg, {})


@friendly
def api_matte_human(image: str, background: str = "transparent"):
    """Automatic human matting (SGHM), no prompt.

    Args:
        image: a photo with people (JPEG, PNG or WebP), e.g. handle_file(path or URL).
        background: the composite's background: transparent, checker, a colour (#00b140 or white) or blur[:σ].
    """
    bg = _background(background)
    s = _load(image)
    assert s.image is not None
    return _outputs(s, gpu_human(s.image), bg, {})


@friendly
def api_detect(image: str, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25):
    """Text → boxes only (label, score, box), to review before /matte_prompts.

    Args:
        image: the photo (JPEG, PNG or WebP), e.g. handle_file(path or URL).
        text: what to find, e.g. "bus" or "person . dog".
        box_threshold: lowest detection score kept, 0.01–0.95.
        text_threshold: lowest word-match score kept, 0.01–0.95.
    """
    text = check_text(text)
    bt, tt = check_threshold(box_threshold, "box_threshold"), check_threshold(text_threshold, "text_threshold")
    s = _load(image)
    assert s.image is not None
    dets = gpu_detect(s.image, text, bt, tt)
    return {"detections": [{"box": [float(v) for v in d.box], "label": d.label, "score": float(d.score)}
                           for d in dets]}


def api_status():
    """Device, test mode, loaded models and inference-call counters (for health checks)."""
    return SERVICES.status(on_zero_gpu(), device_label())


#: The API page's example photo (Gradio's own test image: a bus with people in front of it).
EXAMPLE_IMAGE = "https://raw.githubusercontent.com/gradio-app/gradio/main/test/test_files/bus.png"


def documented(comp: Any, description: str, example: Any = None) -> Any:
    """A hidden API component whose parameter says what it takes (the API page shows it under the
    parameter) and whose example value (``example``, else its default) runs as pasted instead of
    Gradio's placeholder ("Hello!!")."""
    base = comp.api_info_as_input

    def api_info_as_input() -> dict[str, Any]:
        return {**base(), "additional_description": description}

    comp.api_info_as_input = api_info_as_input
    example = comp.value if example is None else example  # the default is a real value too
    if example is not None:
        if isinstance(comp, (gr.Image, gr.File)):
            from gradio_client import handle_file

            if isinstance(example, list):  # a multi-file input
                comp.example_payload = lambda: [handle_file(x) for x in example]
            else:
                comp.example_payload = lambda: handle_file(example)
        else:
            comp.example_payload = lambda: example
        comp.example_value = lambda: example
    return comp


def named_endpoints(settings: Settings) -> None:
    """Hidden components carrying the named endpoints (documented in the README and on the API page)."""
    names = list(registry.names("semat"))
    bg_doc = "transparent, checker, a colour (#00b140, white) or blur / blur:20."
    with gr.Column(visible=False):
        img = documented(InputImage(type="filepath", image_mode=None, label="image"),
                         "The photo: JPEG, PNG or WebP.", EXAMPLE_IMAGE)
        text = documented(gr.Textbox(label="text"), 'What to cut out, e.g. "bus" or "person . dog".', "bus")
        bthr = documented(gr.Number(0.35, label="box_threshold"), "Lowest detection score kept, 0.01–0.95.")
        tthr = documented(gr.Number(0.25, label="text_threshold"), "Lowest word-match score kept, 0.01–0.95.")
        # custom values reach the handler, which answers with the registry's one message
        model = documented(gr.Dropdown(names, value=names[0], label="model", allow_custom_value=True),
                           "SEMat checkpoint: " + ", ".join(names) + ".")
        bg = documented(gr.Textbox("transparent", label="background"), "The composite's background: " + bg_doc)
        max_objects = documented(gr.Number(0, precision=0, label="max_objects"),
                                 "Matte only the best N detections (0: all, up to the box limit).")
        boxes = documented(gr.Textbox(label="boxes"), 'One box per line, "x1, y1, x2, y2" in the image\'s pixels, '
                           'or a JSON list [[x1, y1, x2, y2], …]; "" for none.', "60, 60, 500, 700")
        points = documented(gr.Textbox(label="points"), 'One click per line, "x, y, 1" (keep) or "x, y, 0" '
                            '(exclude), in the image\'s pixels; "" for none.', "280, 380, 1")
        out = [gr.File(label="rgba_png"), gr.File(label="alpha_png"), gr.File(label="composite_png"),
               gr.File(label="layers_zip"), gr.JSON(label="info")]
        btn = gr.Button()
    ev = {"concurrency_limit": settings.concurrency, "concurrency_id": "models"}
    btn.click(api_matte_text, [img, text, bthr, tthr, model, bg, max_objects], out, api_name="matte_text", **ev)
    btn.click(api_matte_prompts, [img, boxes, points, model, bg], out, api_name="matte_prompts", **ev)
    btn.click(api_matte_human, [img, bg], out, api_name="matte_human", **ev)
    btn.click(api_detect, [img, text, bthr, tthr], [out[-1]], api_name="detect", **ev)
    btn.click(api_status, None, [out[-1]], api_name="status", queue=False)
