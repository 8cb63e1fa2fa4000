"""The named HTTP API endpoints (``/matte_text``, ``/matte_prompts``, ``/matte_human``, ``/detect``,
``/status``), documented in the README. Each parses its arguments under the input contract and
calls the pipeline once; a background is a colour, ``transparent``, ``checker`` or ``blur[:σ]``,
never a server path.
"""

from __future__ import annotations

from typing import Any

from semat import compose, registry
from semat.app.errors import friendly, user_error
from semat.app.handlers import checked_prompt
from semat.app.render import api_info, device_label, render
from semat.app.services import SERVICES
from semat.app.session import TabSession, load_into
from semat.app.zerogpu import gpu_detect, gpu_human, gpu_matte, on_zero_gpu
from semat.pipeline import MatteResult, Prompt
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
    return r.rgba, r.alpha_dl, r.composite, r.zip, api_info(result, extra)


@friendly
def api_matte_text(image: str, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
                   model: str = "hq-sam", background: str = "transparent", max_objects: int = 0):
    """Text → boxes (GroundingDINO) → SEMat alpha for the best detections (all up to the box limit,
    or the best `max_objects`)."""
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
    """Boxes (`x1,y1,x2,y2` per line or a JSON list) and/or points (`x,y,label` per line) → SEMat alpha."""
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
    """Automatic human matting (SGHM), no prompt."""
    bg = _background(background)
    s = _load(image)
    assert s.image is not None
    return _outputs(s, gpu_human(s.image), bg, {})


@friendly
def api_detect(image: str, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25):
    """Text → boxes only (label, score, box), to review before /matte_prompts."""
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
