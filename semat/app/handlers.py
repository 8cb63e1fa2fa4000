"""The tabs' event handlers: short, typed, each session → service → render.

Every handler is wrapped by :func:`semat.app.errors.friendly`, so a failure reaches the user as
one message and the app keeps serving. Each user action makes exactly one GPU call.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from semat import registry
from semat.app import editor as L
from semat.app.errors import friendly, user_error
from semat.app.render import Rendered, recomposite_session, render, ui_background
from semat.app.session import TabSession, load_into, resolve_image, session, show
from semat.app.zerogpu import gpu_detect, gpu_human, gpu_matte
from semat.inference.detect import Detection
from semat.pipeline import MatteResult, Prompt
from semat.settings import Settings
from semat.validate import check_boxes, check_points, check_text, parse_boxes, parse_points

Outputs = tuple[Any, ...]


def notify(notices: list[str]) -> None:
    for n in notices:
        gr.Info(n, duration=8)


def _render(s: TabSession, result: MatteResult, bg: tuple, extra: dict[str, Any]) -> Rendered:
    background, bg_image, notices = ui_background(*bg)
    notify(notices + list(result.notices))
    return render(s, result, background, bg_image, extra)


def _info(variant: str, result: MatteResult, **more: Any) -> dict[str, Any]:
    return {"model": registry.label(variant), "objects": len(result.objects), **more}


@friendly
def recomposite(bg_mode, colour, bg_image, blur, image_path: str | None, alpha_path: str | None, s: Any):
    """Background controls changed: blend again from the cached alpha (no model call)."""
    s = session(s)
    background, bg_array, notices = ui_background(bg_mode, colour, bg_image, blur)
    for n in notices:
        gr.Warning(n)
    path = recomposite_session(s, background, bg_array, image_path, alpha_path)
    return (gr.update() if path is None else path), s


@friendly
def on_upload(path: str | None, s: Any):
    s = TabSession()
    if not path:
        return None, s
    notify(load_into(s, path))
    assert s.image is not None
    return show(s, s.image, "input"), s


# --------------------------------------------------------------------------------- text tab


def det_label(i: int, det: Detection) -> str:
    return f"#{i + 1} {det.label} ({det.score:.2f})"


def selected_indices(selected: list[str] | None, n: int) -> list[int]:
    out = set()
    for v in selected or []:
        try:
            k = int(str(v).split()[0].lstrip("#")) - 1
        except (ValueError, IndexError):
            continue
        if 0 <= k < n:
            out.add(k)
    return sorted(out)


def _det_overlay(s: TabSession, chosen: list[int]) -> str:
    dets = s.detections
    assert s.image is not None
    dimmed = {i for i in range(len(dets)) if i not in chosen}
    return show(s, L.draw_overlay(s.image, [tuple(d.box) for d in dets], (), [f"{d.label} {d.score:.2f}" for d in dets],
                                  dimmed), "detections")


def _checklist(s: TabSession, chosen: list[int]):
    choices = [det_label(i, d) for i, d in enumerate(s.detections)]
    return gr.update(choices=choices, value=[choices[i] for i in chosen])


@friendly
def text_detect(path, text, box_threshold, text_threshold, s):
    s = session(s)
    image, notices = resolve_image(s, path)
    notify(notices)
    text = check_text(text)
    s.detections = gpu_detect(image, text, float(box_threshold), float(text_threshold))
    s.detect_key = (s.image_sha, text, float(box_threshold), float(text_threshold))
    best = _best(s.detections, Settings.from_env().max_boxes)
    msg = (f"Found {len(s.detections)} object(s); the {len(best)} best are ticked. Untick any you don't want, "
           "then press **Matte**.")
    return _det_overlay(s, best), _checklist(s, best), msg, s


def _best(dets: list[Detection], k: int) -> list[int]:
    from semat.pipeline import top_scoring

    return top_scoring(dets, range(len(dets)), k)


@friendly
def text_selection(selected, s):
    s = session(s)
    if s.image is None or not s.detections:
        return gr.update(), s
    return _det_overlay(s, selected_indices(selected, len(s.detections))), s


@friendly
def text_matte(path, text, box_threshold, text_threshold, variant_label, selected, bg_mode, colour, bg_image,
               blur, s):
    s = session(s)
    image, notices = resolve_image(s, path)
    notify(notices)
    text = check_text(text)
    variant = registry.from_label(variant_label)
    prompt = Prompt(text=text, box_threshold=float(box_threshold), text_threshold=float(text_threshold))
    chosen = None
    if s.detect_key == (s.image_sha, text, float(box_threshold), float(text_threshold)):
        chosen = selected_indices(selected, len(s.detections))  # reviewed: matte those, no second detection
        if not chosen:
            raise user_error("All detected boxes are unticked. Tick at least one box, then press Matte.",
                             "Nothing selected")
        prompt.detections = list(s.detections)
    result = gpu_matte(image, prompt, variant, chosen)
    s.detections = list(result.detections)
    s.detect_key = (s.image_sha, text, float(box_threshold), float(text_threshold))
    r = _render(s, result, (bg_mode, colour, bg_image, blur), _info(variant, result))
    return (_det_overlay(s, result.selected), _checklist(s, result.selected), *r.files, s)


# -------------------------------------------------------------------------------- boxes tab


def _editor_outputs(s: TabSession, msg: str) -> Outputs:
    boxes, points = s.editor.prompts()
    assert s.image is not None
    overlay = show(s, L.draw_overlay(s.image, boxes, points, None, None, s.editor.corner), "prompts")
    return overlay, s.editor.boxes_text, s.editor.points_text, msg, s


@friendly
def boxes_upload(path, s):
    shown, s = on_upload(path, s)
    return shown, "", "", "Click two opposite corners to draw a box; switch the mode to add points.", s


@friendly
def boxes_click(path, mode, boxes_text, points_text, s, evt: gr.SelectData):
    s = session(s)
    _, notices = resolve_image(s, path)
    notify(notices)
    s.editor.sync(boxes_text, points_text)
    msg = s.editor.click(float(evt.index[0]), float(evt.index[1]), mode or L.CLICK_MODES[0])
    return _editor_outputs(s, msg)


@friendly
def boxes_undo(path, boxes_text, points_text, s):
    s = session(s)
    resolve_image(s, path)
    s.editor.sync(boxes_text, points_text)
    return _editor_outputs(s, s.editor.undo())


@friendly
def boxes_clear(path, boxes_text, points_text, s):
    s = session(s)
    resolve_image(s, path)
    s.editor.sync(boxes_text, points_text)
    return _editor_outputs(s, s.editor.clear())


def checked_prompt(image: np.ndarray, boxes_text: str | None, points_text: str | None) -> Prompt:
    """The typed/clicked prompt under the input contract (same rules as the API and the CLI)."""
    hw = image.shape[:2]
    boxes, points = parse_boxes(boxes_text), parse_points(points_text)
    check_boxes(boxes, hw, max_boxes=Settings.from_env().max_boxes, allow_empty=True)  # fail before the GPU call
    check_points(points, hw)
    return Prompt(boxes=boxes, points=points)  # the pipeline clips (with a notice) and merges duplicates


@friendly
def boxes_apply(path, boxes_text, points_text, s):
    s = session(s)
    image, _ = resolve_image(s, path)
    s.editor.sync(boxes_text, points_text)
    p = checked_prompt(image, boxes_text, points_text)
    return _editor_outputs(s, f"{len(p.boxes)} box(es), {len(p.points)} point(s).")


@friendly
def boxes_matte(path, variant_label, boxes_text, points_text, bg_mode, colour, bg_image, blur, s):
    s = session(s)
    image, notices = resolve_image(s, path)
    notify(notices)
    s.editor.sync(boxes_text, points_text)
    prompt = checked_prompt(image, s.editor.boxes_text, s.editor.points_text)
    if prompt.empty:
        raise user_error("Draw a box (click two opposite corners on the image), add a positive point, or type "
                         "x1, y1, x2, y2 in the Boxes field, then run again.", "No prompt")
    if s.editor.corner is not None:
        gr.Warning("A box with only its first corner was ignored; click the opposite corner to finish it.")
    variant = registry.from_label(variant_label)
    result = gpu_matte(image, prompt, variant)
    r = _render(s, result, (bg_mode, colour, bg_image, blur), _info(variant, result))
    overlay = _editor_outputs(s, "")[0]
    return (overlay, *r.files, s)


# -------------------------------------------------------------------------------- human tab


@friendly
def human_run(path, bg_mode, colour, bg_image, blur, s):
    s = session(s)
    image, notices = resolve_image(s, path)
    notify(notices)
    result = gpu_human(image)
    r = _render(s, result, (bg_mode, colour, bg_image, blur), {"model": registry.label("sghm")})
    return (*r.files, s)


# ------------------------------------------------------------------ examples (cached lazily)


@friendly
def example_text(path, text):
    """An example row of the Text tab with the default model and thresholds (cached on first
    click for every visitor, so the gallery costs no GPU afterwards)."""
    s = TabSession()
    load_into(s, path)
    assert s.image is not None
    variant = registry.default("semat")
    result = gpu_matte(s.image, Prompt(text=check_text(text)), variant)
    return _render(s, result, ("Checkerboard", None, None, None), _info(variant, result, **{"cached example": "yes"})).files


@friendly
def example_human(path):
    s = TabSession()
    load_into(s, path)
    assert s.image is not None
    result = gpu_human(s.image)
    return _render(s, result, ("Checkerboard", None, None, None),
                   {"model": registry.label("sghm"), "cached example": "yes"}).files
