"""The tabs' event handlers: short, typed, each session → service → render.

Every user action is one chain (wired in :mod:`semat.app.layout`): a light ``begin`` step (the
status line says what runs, the buttons turn busy), the model step (exactly one GPU call, then
only previews), and a background step that writes the full-size downloads. Failures never
raise: :func:`semat.app.steps.inline` turns them into a message in the status line that stays until the next
action, and gives the buttons back. Notices (downscaled photo, clipped box, …) are toasts and are
also written into the status line ("✓ Done. … ℹ️ …"), where the eye is; on a phone the page hides
the notice toasts, which would cover the result (:data:`semat.app.layout.PHONE_TOASTS_HEAD`).
"""

from __future__ import annotations

import time
from typing import Any

import gradio as gr
import numpy as np

from semat import registry
from semat.app import canvas as C
from semat.app import progress as P
from semat.app.errors import user_error
from semat.app.render import download_files, info_markdown, mask_preview, previews, ui_background
from semat.app.session import (
    TabSession,
    check_run,
    load_into,
    preview_of,
    resolve_image,
    session,
    working_image,
)
from semat.app.steps import OFF, ON, SHOW, SKIP, error_text, inline
from semat.app.zerogpu import gpu_detect, gpu_human, gpu_matte
from semat.inference.detect import Detection
from semat.pipeline import MatteResult, Prompt
from semat.settings import Settings
from semat.validate import check_boxes, check_points, check_text, parse_boxes, parse_points

N_DOWNLOADS = 4  # RGBA, alpha, composite, ZIP


def notify(notices: list[str]) -> str:
    """Each notice as a toast; returns the status line's copy of them (:func:`progress.notice_text`)."""
    for n in notices:
        gr.Info(n, duration=8)
    return P.notice_text(notices)


def no_downloads() -> tuple:
    return tuple(gr.update(value=None, interactive=False) for _ in range(N_DOWNLOADS))


def cleared_results() -> tuple:
    """(result column, alpha, composite, objects, 4 downloads, info) of a tab with no result yet."""
    return (gr.update(visible=False), None, None, gr.update(choices=[], value=None, visible=False), *no_downloads(), "")


# ---------------------------------------------------------------------- cut-out: image


def _shown(s: TabSession) -> dict[str, Any]:
    img = working_image(s)
    s.preview_src = str(C.preview_file(preview_of(s)))
    return C.canvas_value(s.preview_src, img.shape[1], img.shape[0])


@inline(14, 1)
def cut_upload(s, evt: gr.EventData):
    """A photo dropped on (or opened in) the canvas: the working image, shown as a preview."""
    s = TabSession()
    s.notices = load_into(s, str(C.uploaded_path(evt)))  # repeated with this image's first result
    said = notify(s.notices)
    return (_shown(s), f"Loaded **{s.name}** ({s.image.shape[1]}×{s.image.shape[0]}).{said} Drag a box, click "
            "the object, or type what to cut out and press **Detect** or **Matte**.", s, "", "", *cleared_results())


@inline(14, 1)
def cut_example(path, s):
    """An example row: its photo on the canvas (the text prompt is set by the row itself)."""
    s = TabSession()
    if not path:
        raise user_error("That example's photo is missing.", "No example")
    s.notices = load_into(s, path)  # said with the result the example's Matte brings
    return _shown(s), f"Example loaded; matting…{notify(s.notices)}", s, "", "", *cleared_results()


@inline(2, 1)
def cut_from_text(value, boxes_text, points_text):
    """Enter in (or leaving) the Boxes/Points fields: the typed prompt onto the canvas (a bad line
    is reported in the status line at once)."""
    new = C.canvas_from_text(value, boxes_text, points_text)
    return new, (SKIP if new == C.sanitize_canvas_value(value) else "Typed boxes and points applied.")


# ------------------------------------------------------------------ cut-out: the prompt


def canvas_prompt(value: Any, s: TabSession, text: str | None, bt: float, tt: float
                  ) -> tuple[Prompt, list[int] | None, dict[int, int] | None]:
    """The canvas (plus the text prompt) as one pipeline prompt, in working-image pixels.

    Ticked boxes that carry a detection score are the reviewed detections (matted as they are,
    no second detection); other ticked boxes are drawn boxes; every point is sent. Returns the
    prompt, the ``selected`` detections and, when the canvas already shows every box the run
    will matte, which canvas box becomes which object (else None: the reply redraws the boxes).
    """
    img = working_image(s)
    p = C.parse_canvas_value(value)
    if p.size != (img.shape[1], img.shape[0]):
        raise user_error("The picture on the canvas is not the one this tab remembers (the page was idle too "
                         "long?). Open the image again.", "Image changed")
    v = C.sanitize_canvas_value(value)
    has_dets = any(len(b) > 4 and b[4].get("score") is not None for b in v["boxes"])
    text = (text or "").strip() or None
    key = (s.image_sha, text, float(bt), float(tt))
    det = [k for k in range(len(p.boxes)) if p.scores[k] is not None]
    drawn = [k for k in range(len(p.boxes)) if p.scores[k] is None]
    limit = Settings.from_env().max_boxes
    if has_dets and (text is None or s.detect_key == key):
        if not det and not drawn and not p.points:
            raise user_error("Every detected box is unticked. Tick at least one (or press “Keep best”), draw a "
                             "box, or click the object, then press Matte.", "Nothing selected")
        if len(det) + len(drawn) > limit:
            raise user_error(f"Too many boxes ticked ({len(det) + len(drawn)}; the limit is {limit}). Press "
                             f"“Keep best” or untick some, then press Matte.", "Too many boxes")
        dets = [Detection(p.boxes[k], p.labels[k] or "object", float(p.scores[k])) for k in det]
        prompt = Prompt(boxes=[p.boxes[k] for k in drawn], points=p.points, detections=dets)
        order = [p.box_index[k] for k in det] + [p.box_index[k] for k in drawn]
        return prompt, (list(range(len(dets))) if dets else None), {c: o for o, c in enumerate(order)}
    boxes = [p.boxes[k] for k in drawn]
    if len(boxes) > limit:
        raise user_error(f"Too many boxes ({len(boxes)}; the limit is {limit}). Delete some, then press Matte.",
                         "Too many boxes")
    prompt = Prompt(text=text, boxes=boxes, points=p.points, box_threshold=float(bt), text_threshold=float(tt))
    if prompt.empty:
        raise user_error("Drag a box around the object, click on it, or type what to cut out, then press "
                         "Matte.", "No prompt")
    if text:
        return prompt, None, None
    return prompt, None, {p.box_index[k]: o for o, k in enumerate(drawn)}


def _drawn_boxes(value: Any) -> tuple[list[list[Any]], list[list[Any]]]:
    v = C.sanitize_canvas_value(value)
    return ([b for b in v["boxes"] if not (len(b) > 4 and b[4].get("score") is not None)], v["points"])


def _with_detections(s: TabSession, value: Any, dets: list[Detection], ticked: list[int] | None,
                     mask: np.ndarray | None = None) -> dict[str, Any]:
    """A fresh canvas value: the detections (labelled, scored; ``ticked`` or the best up to the
    box limit), then the boxes the user drew, and their points."""
    img = working_image(s)
    drawn, points = _drawn_boxes(value)
    src = C.sanitize_canvas_value(value)["image"]["src"] or s.preview_src
    boxes = [list(d.box) for d in dets] + [b[:4] for b in drawn]
    labels = [d.label for d in dets] + [(b[4].get("label") if len(b) > 4 else None) for b in drawn]
    scores: list[float | None] = [float(d.score) for d in dets] + [None] * len(drawn)
    enabled = None if ticked is None else [i in ticked for i in range(len(dets))] + [True] * len(drawn)
    best = Settings.from_env().max_boxes if ticked is None else None
    v = C.canvas_value(src, img.shape[1], img.shape[0], boxes, points, labels=labels, scores=scores,
                       enabled=enabled, best=best)
    return v if mask is None else C.with_mask(v, mask)


@inline(6, 1, enable=(3, 4), disable=(5,))
def cut_detect(value, boxes_text, points_text, text, box_threshold, text_threshold, s):
    s = session(s)
    image = working_image(s)
    value = C.canvas_from_text(value, boxes_text, points_text)  # typed but not applied yet
    text = check_text(text)
    run = s.run
    dets = gpu_detect(image, text, float(box_threshold), float(text_threshold))
    check_run(s, run)
    s.detections, s.detect_key = list(dets), (s.image_sha, text, float(box_threshold), float(text_threshold))
    limit = Settings.from_env().max_boxes
    new = _with_detections(s, value, s.detections, None)
    ticked = len(C.parse_canvas_value(new).boxes)
    msg = (f"Found {len(dets)} “{text}”; the {min(ticked, limit)} best are ticked. Untick, move, delete or add "
           "boxes, then press **Matte**.")
    return new, msg, s, ON, ON, OFF


def _legend(s: TabSession, result: MatteResult) -> Any:
    """The objects' legend (the union first); canvas box numbers where an object has a box."""
    inverse = {o: c for c, o in s.box_objects.items()}
    choices = [("All objects", "all")]
    for j, o in enumerate(result.objects):
        num = f"#{inverse[j] + 1} " if j in inverse else ""
        score = f" {o.score:.2f}" if o.score is not None else ""
        choices.append((f"{num}{o.label}{score}", str(j)))
    return gr.update(choices=choices, value="all", visible=len(result.objects) > 1)


@inline(15, 1, enable=(3, 4), disable=(5,))
def cut_matte(value, boxes_text, points_text, text, box_threshold, text_threshold, variant_label, bg_mode, colour,
              bg_image, blur, s):
    """Matte what the canvas holds (one GPU call), then show previews only. Boxes or points typed
    in the text fields and not applied yet (Matte clicked straight after typing) are applied first."""
    t0 = time.perf_counter()
    s = session(s)
    run = s.run
    image = working_image(s)
    value = C.canvas_from_text(value, boxes_text, points_text)
    background, bg_array, bg_notices = ui_background(bg_mode, colour, bg_image, blur)  # fails before the GPU
    prompt, selected, mapping = canvas_prompt(value, s, text, box_threshold, text_threshold)
    variant = registry.from_label(variant_label)
    stages = P.RunProgress(variant, image.shape[0] * image.shape[1] / 1e6)
    result = yield from P.streamed(lambda cb: gpu_matte(image, prompt, variant, selected, progress=cb),
                                   lambda text: (SKIP, text, *[SKIP] * 13), stages,
                                   stop=lambda: s.cancelled(run))
    check_run(s, run)  # a Cancel while the model ran: the tab keeps what it shows
    stages.finish(n_objects=sum(not o.cached for o in result.objects))
    loaded = s.notices if s.result is None else []  # a fresh image: its loading's notices too
    said = notify(bg_notices + list(result.notices))
    s.reset_outputs()
    s.result, s.notices = result, [*loaded, *result.notices]  # the background's: from its controls, each time
    if mapping is None:  # the reply draws the run's detections (ticked = matted) and the user's boxes
        s.detections = list(result.detections)
        s.detect_key = (s.image_sha, prompt.text, float(box_threshold), float(text_threshold))
        new = _with_detections(s, value, s.detections, list(result.selected), mask_preview(result))
        n_det = len(result.detections)
        order = list(result.selected) + [n_det + k for k in range(len(prompt.boxes))]
        s.box_objects = {c: o for o, c in enumerate(order)}
    else:
        new = C.with_mask(value, mask_preview(result))
        s.box_objects = mapping
    _, alpha, comp = previews(s, background, bg_array)
    shown = time.perf_counter() - t0
    s.last_seconds = shown
    n = len(result.objects)
    info = info_markdown(result, {"model": registry.label(variant), "objects": n}, shown)
    msg = (f"✓ {n} object{'s' if n != 1 else ''} matted in {shown:.1f} s. **Preparing full-size downloads…**"
           f"{P.downloads_eta(stages.mp)}{P.notice_text(loaded)}{said}")
    yield (new, msg, s, ON, ON, OFF, SHOW, alpha, comp, _legend(s, result), *no_downloads(), info)


def prepare_downloads(bg_mode, colour, bg_image, blur, s):
    """After the previews: the full-size files of what is shown, and the composite preview again
    with the estimated foreground. Stale (a newer result arrived) or nothing to do: no change."""
    s = session(s)
    token = s.token
    if not isinstance(s.result, MatteResult):
        return (*[SKIP] * N_DOWNLOADS, SKIP, SKIP)
    try:
        t0 = time.perf_counter()
        background, bg_array, bg_notices = ui_background(bg_mode, colour, bg_image, blur)
        had_fg = s.preview_fg is not None
        files = download_files(s, background, bg_array)
        comp = SKIP if had_fg else previews(s, background, bg_array)[2]
    except Exception as exc:
        return (*[SKIP] * N_DOWNLOADS, SKIP, error_text(exc))
    seconds = time.perf_counter() - t0
    if not had_fg:  # the foreground estimate and the files were made now: that is the stage's time
        P.record_downloads(seconds, s.result.image.shape[0] * s.result.image.shape[1] / 1e6)
    if token != s.token:
        return (*[SKIP] * N_DOWNLOADS, SKIP, SKIP)
    dl = [gr.update(value=files[k], interactive=True) for k in ("rgba", "alpha", "composite", "zip")]
    what = "all objects" if s.view is None else f"object {s.view + 1}"
    return (*dl, comp, f"✓ **Done.** Downloads of {what} are ready (full size, made in {seconds:.1f} s)."
            f"{P.notice_text(P.repeated([*s.notices, *bg_notices]))}")


def _show_view(s: TabSession, view: int | None, bg: tuple) -> tuple:
    """(objects, alpha, composite, 4 downloads, status) for another object (or the union)."""
    if not isinstance(s.result, MatteResult):
        return (SKIP, SKIP, SKIP, *no_downloads(), "Press **Matte** first; then click an object to see it alone.")
    s.view = view
    background, bg_array, _ = ui_background(*bg)
    _, alpha, comp = previews(s, background, bg_array)
    name = "all objects" if view is None else s.result.objects[view].label
    return ("all" if view is None else str(view), alpha, comp, *no_downloads(),
            f"Showing **{name}**. **Preparing its downloads…**")


@inline(8, 7)
def cut_select(s, bg_mode, colour, bg_image, blur, evt: gr.SelectData):
    """A box clicked on the canvas after a matte: that object alone (Esc: the union again)."""
    s = session(s)
    obj = s.box_objects.get(int(evt.index)) if evt.selected else None
    if evt.selected and obj is None:
        return (*[SKIP] * 7, f"Box #{int(evt.index) + 1} was not part of the last Matte; press **Matte** to "
                "include it.")
    return _show_view(s, obj, (bg_mode, colour, bg_image, blur))


@inline(8, 7)
def cut_pick(choice, s, bg_mode, colour, bg_image, blur):
    """A legend entry picked: that object alone, or all objects."""
    s = session(s)
    view = None if choice in (None, "", "all") else int(choice)
    return _show_view(s, view, (bg_mode, colour, bg_image, blur))


def variant_changed(variant_label, s):
    """Another SEMat checkpoint picked: say what it changes (nothing until the next Matte)."""
    s = session(s)
    if isinstance(s.result, MatteResult) and s.result.variant != registry.from_label(variant_label):
        return (f"Model changed to **{variant_label}**; the result shown is from "
                f"{registry.label(s.result.variant)}. Press **Matte** to redo it.")
    return f"Model changed to **{variant_label}**; it is used from the next Matte."


# ------------------------------------------------------------------------ backgrounds


def recomposite_as(mode: str | None):
    """A background control changed: switch the mode to it (``mode``; None: the radio itself)
    and redo the composite preview (no model call); the composite download is redone after."""

    @inline(4, 3)
    def handler(bg_mode, colour, bg_image, blur, s):
        s = session(s)
        bg_mode = mode or bg_mode
        if not isinstance(s.result, MatteResult):
            return bg_mode, SKIP, SKIP, ""
        background, bg_array, notices = ui_background(bg_mode, colour, bg_image, blur)
        for n in notices:
            gr.Warning(n)
        from semat.app.render import composite_preview

        comp = composite_preview(s, background, bg_array)
        return bg_mode, comp, gr.update(interactive=False), P.notice_text(notices)

    handler.__name__ = f"recomposite_{(mode or 'mode').lower()}"
    return handler


# ------------------------------------------------------------------------ auto human


@inline(13, 0, enable=(2,), disable=(3,))
def human_run(path, bg_mode, colour, bg_image, blur, s):
    t0 = time.perf_counter()
    s = session(s)
    image, notices = resolve_image(s, path)
    notify(notices)
    background, bg_array, bg_notices = ui_background(bg_mode, colour, bg_image, blur)
    run = s.run
    result = gpu_human(image)
    check_run(s, run)
    notify(bg_notices + list(result.notices))
    s.reset_outputs()
    s.result, s.notices = result, [*notices, *result.notices]
    mask, alpha, comp = previews(s, background, bg_array, with_mask=True)
    shown = time.perf_counter() - t0
    s.last_seconds = shown
    info = info_markdown(result, {"model": registry.label("sghm")}, shown)
    empty = any(n.lower().startswith("no person") for n in result.notices)
    msg = ("⚠ **No person found** in this photo." if empty
           else f"✓ Matted in {shown:.1f} s. **Preparing full-size downloads…**")
    msg += P.notice_text(P.repeated([*s.notices, *bg_notices]))
    return (msg, s, ON, OFF, SHOW, mask, alpha, comp, *no_downloads(), info)


# ------------------------------------------------------------------- the keyboard path


def checked_prompt(image: np.ndarray, boxes_text: str | None, points_text: str | None) -> Prompt:
    """The typed prompt under the input contract (same rules as the API and the CLI)."""
    hw = image.shape[:2]
    boxes, points = parse_boxes(boxes_text), parse_points(points_text)
    check_boxes(boxes, hw, max_boxes=Settings.from_env().max_boxes, allow_empty=True)  # fail before the GPU call
    check_points(points, hw)
    return Prompt(boxes=boxes, points=points)  # the pipeline clips (with a notice) and merges duplicates
