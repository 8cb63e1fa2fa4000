"""The Video tab: one clip, the object named by words, boxed on the first frame, or Auto human.

A run is two passes over the clip, the same pieces ``semat video`` uses:

1. **Matting.** :class:`~semat.pipeline.video.ObjectTracker` (words or boxes; SGHM for Auto
   human) steps through the frames in chunks; each chunk is one model call, on ZeroGPU one
   ``@spaces.GPU`` call whose requested duration (frames × objects × model, :func:`chunk_seconds`)
   stays under :data:`CHUNK_SECONDS`, and the tracker's state travels with the chunk (pickled,
   without its pipeline). Each chunk's alphas go to disk as uint16, so memory does not grow with
   the clip; between chunks the tab reports progress and Cancel stops the run.
2. **Encoding.** :func:`semat.io.video.matte_video` decodes the clip again and writes the H.264
   composite (checkerboard or a colour, audio kept), the alpha video and, when asked, the
   transparent VP9 WebM.

Without a GPU the clip is cut to ``SEMAT_VIDEO_MAX_FRAMES_CPU`` frames
(:attr:`Settings.video_max_frames_cpu`) and the status says so: with the released weights a CPU
frame costs seconds per object.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semat.app.services import SERVICES
from semat.app.zerogpu import (
    SECONDS_PER_OBJECT,
    check_quota,
    errors_as_values,
    gpu_function,
    on_zero_gpu,
    raised,
)
from semat.errors import InputError

__all__ = ["CHUNK_SECONDS", "MODES", "VideoState", "chunk_seconds", "first_frame", "matte_clip", "video_tab"]

MODES = ("Words", "Box", "Auto human")
BACKGROUNDS = ("Checkerboard", "Colour")
CHUNK_SECONDS = 60  # requested GPU seconds per ZeroGPU call (x1.5 billed stays under a visitor's quota)
CPU_CHUNK = 4  # frames per call without ZeroGPU (progress granularity only)

def chunk_seconds(n_frames: int, megapixels: float, n_objects: int, variant: str | None,
                  human: bool = False, words: bool = False) -> int:
    """Requested GPU seconds for ``n_frames``: 5 s start, per frame SEMat's per-object time scaled
    by the frame size above 1 MP (SGHM: 1 s + 1 s/MP), plus 3 s for a GroundingDINO re-detection."""
    per = 1 + max(0.0, megapixels) if human else \
        max(1, n_objects) * SECONDS_PER_OBJECT.get(variant or "hq-sam", 2.5) * max(1.0, megapixels) ** 0.5
    return math.ceil(5 + (3 if words else 0) + n_frames * per)


def _objects(tracker: Any) -> int:
    """Objects the next frames will matte: those followed now; before the first frame the boxes
    given, or for words the most a detection may bring (their number is not known yet)."""
    if tracker is None:
        return 1
    if tracker.index < 0:
        return tracker.max_objects if tracker.text else len(tracker.initial_boxes)
    return max(1, len(tracker.tracks))


def _frames_per_chunk(megapixels: float, tracker: Any) -> int:
    """Frames in the next call: :data:`CPU_CHUNK` off ZeroGPU; on ZeroGPU as many as fit in
    :data:`CHUNK_SECONDS` for :func:`_objects` (one frame while a first detection is to come)."""
    if not on_zero_gpu():
        return CPU_CHUNK
    if tracker is not None and tracker.index < 0 and tracker.text:
        return 1
    n = 1
    while n < 64 and _seconds(n + 1, megapixels, tracker) <= CHUNK_SECONDS:
        n += 1
    return n


def _seconds(n_frames: int, megapixels: float, tracker: Any) -> int:
    if tracker is None:
        return chunk_seconds(n_frames, megapixels, 1, None, human=True)
    return chunk_seconds(n_frames, megapixels, _objects(tracker), tracker.variant, words=bool(tracker.text))


def _chunk_duration(frames: list[np.ndarray], tracker: Any, variant: str | None = None) -> int:
    """The GPU seconds :func:`_gpu_chunk` asks for (ZeroGPU calls it with the call's arguments)."""
    mp = frames[0].shape[0] * frames[0].shape[1] / 1e6 if frames else 0.0
    return _seconds(len(frames), mp, tracker)


@gpu_function(_chunk_duration)
@errors_as_values
def _gpu_chunk(frames: list[np.ndarray], tracker: Any, variant: str | None = None) -> tuple[np.ndarray, Any]:
    """One model call: the uint16 alphas of ``frames`` (``[N,H,W]``) and the tracker after them
    (``tracker`` None: SGHM Auto human on each frame)."""
    pipe = SERVICES.pipeline()
    if tracker is None:
        alphas = [pipe.matte_human(f).alpha for f in frames]
    else:
        tracker.pipe = pipe
        alphas = [tracker.step(f).alpha for f in frames]
    out = np.round(np.clip(np.stack(alphas), 0.0, 1.0) * 65535.0).astype(np.uint16)
    return out, tracker


@dataclass
class VideoState:
    """What the tab shows after each chunk."""

    total: int  # frames to matte (0: not known)
    done: int = 0
    seconds: float = 0.0
    encoding: bool = False
    cut: bool = False  # the clip went past the CPU frame cap
    object_frames: int | None = None  # SEMat object-forwards so far (None: Auto human)
    notices: list[str] = field(default_factory=list)
    composite: str | None = None
    alpha: str | None = None
    webm: str | None = None
    summary: str = ""

    def status(self) -> str:
        notes = "".join(f"\n\nℹ️ {n}" for n in self.notices)  # ⚠ is for errors
        if self.summary:
            return f"✓ {self.summary}{notes}"
        if self.encoding:
            return f"⏳ Encoding {self.done} frame(s)...{notes}"
        if self.total <= self.done:  # the header gave no frame count, or the clip ran longer
            return f"⏳ Matting frame {self.done + 1}{notes}"
        eta = f", about {self.seconds / self.done * (self.total - self.done):.0f} s left" if self.done else ""
        return f"⏳ Matting frame {self.done + 1} of {self.total}{eta}{notes}"


def frame_cap(settings: Any) -> int | None:
    """The most frames one run mattes: ``SEMAT_VIDEO_MAX_FRAMES_CPU`` on a CPU, no cap on a GPU."""
    if on_zero_gpu():
        return None
    from semat.runtime import select_runtime

    return int(settings.video_max_frames_cpu) if select_runtime().device.type == "cpu" else None


def first_frame(path: str | None, settings: Any = None) -> tuple[np.ndarray | None, str]:
    """The clip's first frame (for typing a box in its pixels) and a line about the clip."""
    from semat.io.video import iter_frames, probe
    from semat.settings import Settings

    if not path:
        return None, "Upload a clip, then say what to follow."
    info = probe(path)
    frame = next(iter_frames(path, 1), None)
    if frame is None:
        raise InputError(f"{Path(path).name}: no video frame could be decoded")
    cap = frame_cap(settings or Settings.from_env())
    n = f"{info.frames} frames" if info.frames else "frames"
    tail = f"; without a GPU only the first {cap} are matted" if cap is not None and (info.frames or cap + 1) > cap \
        else ""
    return frame, (f"{info.width}×{info.height}, {n} at {float(info.fps):.3g} fps{tail}. Boxes are in these "
                   "pixels: x1,y1,x2,y2 (the first frame is shown).")


def _tracker(mode: str, words: str | None, box_text: str | None, hw: tuple[int, int], variant: str,
             box_threshold: float, text_threshold: float, notices: list[str]) -> Any:
    from semat.pipeline.video import ObjectTracker
    from semat.validate import check_boxes, check_text, check_threshold, parse_boxes

    if mode == MODES[2]:
        return None
    pipe = SERVICES.pipeline()
    if mode == MODES[0]:
        return ObjectTracker(pipe, text=check_text(words), variant=variant,
                             box_threshold=check_threshold(box_threshold, "box threshold"),
                             text_threshold=check_threshold(text_threshold, "text threshold"))
    boxes = parse_boxes(box_text or "")
    if not boxes:
        raise InputError("type the object's box on the first frame as x1,y1,x2,y2 (its pixels)")
    boxes = check_boxes(boxes, hw, max_boxes=pipe.max_boxes, notices=notices)
    return ObjectTracker(pipe, boxes=[tuple(b) for b in boxes], variant=variant)


def matte_clip(path: str | None, mode: str, words: str | None = None, box_text: str | None = None,
               background: str = "checker", webm: bool = False, variant: str | None = None,
               box_threshold: float = 0.35, text_threshold: float = 0.25, settings: Any = None,
               out_dir: Path | None = None) -> Iterator[VideoState]:
    """Matte the clip at ``path`` (module docstring), yielding the state before the first chunk,
    after each chunk and at the end (with the output paths)."""
    from semat import compose, registry
    from semat.app import editor as L
    from semat.io.video import iter_frames, matte_video, probe
    from semat.settings import Settings

    settings = settings or Settings.from_env()
    if not path:
        raise InputError("add a video first")
    if mode not in MODES:
        raise InputError(f"choose one of {', '.join(MODES)}")
    info = probe(path)  # one line for a file that is not a video
    bg = compose.parse_background(background)
    variant = registry.from_label(variant) if variant else registry.default("semat")
    notices: list[str] = []
    tracker = _tracker(mode, words, box_text, (info.height, info.width), variant, box_threshold, text_threshold,
                       notices)
    cap = frame_cap(settings)
    total = info.frames or 0
    if cap is not None:
        total = min(total or cap, cap)
    state = VideoState(total=total, notices=notices)
    out = out_dir or L.new_output_dir()
    work = out / "alphas"
    work.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem[:60] or "clip"
    t0 = time.perf_counter()
    chunks: list[Path] = []
    try:
        yield state
        for _ in _matte_chunks(iter_frames(path, None if cap is None else cap + 1), info, cap, tracker, variant,
                               work, chunks, state):
            state.seconds = time.perf_counter() - t0
            yield state
        if state.cut:
            notices.append(f"Without a GPU this Space mattes only the first {cap} frames "
                           "(SEMAT_VIDEO_MAX_FRAMES_CPU); the outputs stop there.")
        state.total, state.encoding = state.done, True
        yield state
        res = matte_video(path, out / f"{stem}_composite.mp4", _alpha_reader(chunks), bg,
                          webm=out / f"{stem}.webm" if webm else None, alpha_video=out / f"{stem}_alpha.mp4",
                          max_frames=state.done)
    finally:  # also when the run is cancelled between chunks
        shutil.rmtree(work, ignore_errors=True)
    notices.extend(res.notices)
    state.composite, state.alpha = str(res.output), str(res.alpha_video)
    state.webm = str(res.webm) if res.webm else None
    state.seconds = time.perf_counter() - t0
    objects = "" if state.object_frames is None else f", {state.object_frames} object-frames"
    state.summary = (f"{res.frames} frame(s) {res.width}×{res.height} matted in {state.seconds:.1f} s{objects} "
                     f"(audio: {res.audio}).")
    yield state


def _matte_chunks(frames_in: Iterator[np.ndarray], info: Any, cap: int | None, tracker: Any, variant: str,
                  work: Path, chunks: list[Path], state: VideoState) -> Iterator[None]:
    """Pass 1: the frames in model calls of :func:`_frames_per_chunk` frames (at most ``cap`` in
    all), the alphas into ``chunks``; yields after each call, with ``state`` brought up to date (on
    ZeroGPU each call gives back a new tracker)."""
    mp = info.width * info.height / 1e6
    frames: list[np.ndarray] = []
    with contextlib.closing(frames_in):  # type: ignore[type-var]
        for frame in frames_in:
            if cap is not None and state.done + len(frames) >= cap:
                state.cut = True  # a frame past the cap: the clip is longer
                break
            frames.append(frame)
            if len(frames) >= _frames_per_chunk(mp, tracker):
                tracker = _run_chunk(frames, tracker, variant, work, chunks, state)
                frames = []
                yield None
    if frames:
        _run_chunk(frames, tracker, variant, work, chunks, state)
        yield None


def _run_chunk(frames: list[np.ndarray], tracker: Any, variant: str, work: Path, chunks: list[Path],
               state: VideoState) -> Any:
    if on_zero_gpu():
        check_quota(_chunk_duration(frames, tracker, variant))
    alphas, tracker = raised(_gpu_chunk(frames, tracker, variant))
    path = work / f"chunk_{len(chunks):05d}.npy"
    np.save(path, alphas)
    chunks.append(path)
    state.done += len(frames)
    if tracker is not None:
        state.object_frames = tracker.stats["semat_objects"]
    return tracker


def _alpha_reader(chunks: list[Path]) -> Callable[[np.ndarray], np.ndarray]:
    """``alpha_fn`` for :func:`~semat.io.video.matte_video`: the stored alphas in frame order."""
    def gen() -> Iterator[np.ndarray]:
        for c in chunks:
            for a in np.load(c):
                yield a.astype(np.float32) / 65535.0

    it = gen()

    def alpha_fn(frame: np.ndarray) -> np.ndarray:
        alpha = next(it)
        if alpha.shape != frame.shape[:2]:
            raise InputError("the clip decoded differently the second time; try another file")
        return alpha
    return alpha_fn


def video_tab(settings: Any) -> None:
    """Build the Video tab's components and events (call inside ``gr.Tabs()``)."""
    import gradio as gr

    from semat.app import editor as L
    from semat.app.api import documented
    from semat.app.batch_tab import model_controls
    from semat.app.errors import to_gr_error

    cap = frame_cap(settings)
    with gr.Tab("Video", id="video", elem_id="tab-video"):
        note = f" Without a GPU only the first **{cap} frames** are matted." if cap is not None else ""
        gr.Markdown("Follow one object through a clip: name it, type its box on the first frame, or let **Auto "
                    "human** find the people. You get the composite (audio kept), the alpha video and, if "
                    f"ticked, a transparent WebM.{note}")
        with gr.Row():
            with gr.Column(scale=3):
                clip = documented(gr.Video(label="Clip", sources=["upload"], elem_id="video-input", height=300),
                                  "The clip (MP4, MOV or WebM); its audio is kept.")
                first = gr.Image(label="First frame (box coordinates are in its pixels)", type="numpy",
                                 interactive=False, elem_id="video-first-frame", height=240)
            with gr.Column(scale=2):
                mode = documented(gr.Radio(list(MODES), value=MODES[0], label="What to follow",
                                           elem_id="video-mode"), "One of: " + ", ".join(MODES) + ".")
                words = documented(gr.Textbox(label="Words", placeholder="e.g. dog, red car, person",
                                              elem_id="video-words"),
                                   'What to follow, found on the first frame, e.g. "person" (words mode).', "person")
                box = documented(gr.Textbox(label="Box on the first frame: x1,y1,x2,y2",
                                            placeholder="e.g. 120,40,380,300", interactive=False, elem_id="video-box"),
                                 '"x1, y1, x2, y2" in the first frame\'s pixels (box mode).', "120, 40, 380, 300")
                with gr.Row():
                    bg_mode = documented(gr.Radio(list(BACKGROUNDS), value=BACKGROUNDS[0],
                                                  label="Composite background", elem_id="video-bg-mode", scale=2),
                                         "One of: " + ", ".join(BACKGROUNDS) + ".")
                    colour = documented(gr.ColorPicker(value="#00b140", label="Colour", elem_id="video-bg-colour",
                                                       scale=1), "The background colour, #RRGGBB (colour mode).")
                want_webm = documented(gr.Checkbox(False, label="Also a transparent WebM (VP9 with alpha)",
                                                   elem_id="video-webm"), "Also write a transparent WebM.")
                model, box_thr, text_thr = model_controls("video")
                with gr.Row():
                    run = gr.Button("Matte clip ▶", variant="primary", elem_id="video-run")
                    cancel = gr.Button("Cancel", elem_id="video-cancel")
        status = gr.Markdown("Upload a clip, then say what to follow.", elem_id="video-status",
                             elem_classes=["semat-status"])
        preview = gr.Video(label="Composite (preview)", interactive=False, elem_id="video-preview")
        with gr.Row():
            comp_file = gr.File(label="Composite MP4 (H.264)", interactive=False, elem_id="video-dl-composite")
            alpha_file = gr.File(label="Alpha MP4", interactive=False, elem_id="video-dl-alpha")
            webm_file = gr.File(label="Transparent WebM", interactive=False, elem_id="video-dl-webm")

        def inline(exc: Exception) -> tuple[str, gr.Error]:
            err = to_gr_error(exc)
            return f"⚠ **{err.title or 'Error'}:** {err.message}", err

        def shown(path):
            try:
                return first_frame(path, settings)
            except Exception as exc:  # one message in the status line (and as a toast)
                text, _ = inline(exc)
                return None, text

        def start(path, mode_v, words_v, box_v, bg_v, colour_v, webm_v, model_v, bt, tt):
            try:
                background = L.background_spec(bg_v, colour_v)
                for st in matte_clip(path, mode_v, words_v, box_v, background, bool(webm_v), model_v, bt, tt,
                                     settings=settings):
                    if st.summary:
                        for n in st.notices:
                            gr.Info(n, duration=8)
                    yield st.status(), st.composite, st.composite, st.alpha, st.webm
            except Exception as exc:  # the status line says it, and API callers get the error
                text, err = inline(exc)
                yield text, None, None, None, None
                raise err from None

        clip.change(shown, [clip], [first, status], api_visibility="private", concurrency_id="compose",
                    concurrency_limit=2, show_progress="hidden")
        event = run.click(start, [clip, mode, words, box, bg_mode, colour, want_webm, model, box_thr, text_thr],
                          [status, preview, comp_file, alpha_file, webm_file], concurrency_id="models",
                          concurrency_limit=getattr(settings, "concurrency", 1), api_name="matte_video",
                          show_progress="minimal")
        cancel.click(lambda: "Cancelled.", None, [status], cancels=[event], api_visibility="private", queue=False)
        mode.change(lambda m: (gr.update(interactive=m == MODES[0]), gr.update(interactive=m == MODES[1])), [mode],
                    [words, box], api_visibility="private", queue=False, show_progress="hidden")
