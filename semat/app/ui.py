"""The Gradio web app: text / boxes & clicks / auto-human matting with instant recompositing.

Layout: a model selector and a device badge on top, then three tabs. Each tab shows its
outputs side by side (coarse mask | alpha | composite), background controls that recomposite
from the cached alpha without touching a model, and downloads (RGBA PNG, alpha PNG, ZIP of
per-object layers). All images leave the server as lossless PNG files.

The app talks only to :mod:`semat.pipeline`, :mod:`semat.inference.sghm`, :mod:`semat.compose` and
:mod:`semat.io.images`; prompt editing, overlays and GPU budgets live in :mod:`semat.app.editor`.

Hugging Face ZeroGPU: model inference runs in module-level functions wrapped with
``@spaces.GPU(duration=<callable>)`` whose budget is computed from the request (megapixels x
boxes x variant, see :func:`semat.app.editor.gpu_duration`). Outside ZeroGPU the decorator is
a no-op, so the same code runs on CPU and plain CUDA.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semat.app import editor as L

log = logging.getLogger("semat.app.ui")

try:  # on ZeroGPU `spaces` must be imported before torch initialises CUDA (app.py imports it first)
    import spaces as _spaces
except ImportError:  # pragma: no cover - spaces is in requirements.txt, but the app runs without it
    _spaces = None

import gradio as gr  # noqa: E402  (after spaces, as ZeroGPU requires)

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"


def test_mode() -> bool:
    from semat.pipeline import tiny_models_requested  # the models' own switch, so banner and models agree

    return tiny_models_requested()


def on_zero_gpu() -> bool:
    if _spaces is None:
        return False
    try:
        from spaces.config import Config

        return bool(Config.zero_gpu)
    except Exception:  # pragma: no cover - defensive against spaces internals
        return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "true")


def _gpu(duration: Callable[..., int]) -> Callable[[Callable], Callable]:
    """``spaces.GPU(duration=...)`` when available (a no-op off ZeroGPU), else identity."""
    if _spaces is None:
        return lambda f: f
    return _spaces.GPU(duration=duration)


# ----------------------------------------------------------------------------- services


class Services:
    """The models behind the app, loaded lazily (or at import on ZeroGPU) and shared by all
    sessions, plus honest counters of inference calls (recompositing never increments them)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pipeline = None
        self._human = None
        self.calls = {"detect": 0, "matte": 0, "human": 0}
        self.variants_used: set[str] = set()
        self.progress_target: Callable[..., None] | None = None
        self.started = time.time()

    # -- loading
    def _forward_progress(self, *args) -> None:
        """Weights/pipeline progress (``(message)`` or ``(fraction, message)``) → the current request."""
        target = self.progress_target
        if target is not None:
            target(*args)

    def pipeline(self):
        with self._lock:
            if self._pipeline is None:
                from semat.pipeline import default_pipeline

                pipe = default_pipeline(progress=self._forward_progress)
                # keep every variant the user picked (switching back must not reload 1.3 GB)
                pipe.max_loaded_variants = int(os.environ.get("SEMAT_MAX_LOADED_VARIANTS", "3"))
                self._pipeline = pipe
            return self._pipeline

    def human(self):
        with self._lock:
            if self._human is None:
                from semat.inference.sghm import HumanPredictor, default_human_matter

                if test_mode():
                    self._human = default_human_matter()
                else:
                    self._human = HumanPredictor.from_pretrained(progress=self._forward_progress)
            return self._human

    def preload(self, variants: list[str]) -> None:
        """Load models now (ZeroGPU packs weights placed on the device at import time)."""
        pipe = self.pipeline()
        for v in variants:
            pipe.predictor(v)
            self.variants_used.add(v)
        pipe.detector()
        self.human()

    def loaded_variants(self) -> list[str]:
        return sorted(self.variants_used)

    # -- inference (each is one model call at this boundary)
    def detect(self, image: np.ndarray, text: str, box_threshold: float, text_threshold: float, progress=None):
        self.progress_target = progress
        try:
            return self.pipeline().detect(image, text, box_threshold, text_threshold)
        finally:
            self.progress_target = None

    def matte(self, image: np.ndarray, prompt, variant: str, selected: list[int] | None, progress=None):
        self.progress_target = progress
        try:
            result = self.pipeline().run(image, prompt, variant=variant, selected=selected, progress=progress)
        finally:
            self.progress_target = None
        return result

    def human_matte(self, image: np.ndarray, progress=None):
        self.progress_target = progress
        try:
            return self.human().predict(image)
        finally:
            self.progress_target = None

    def status(self) -> dict[str, Any]:
        return {
            "test_mode": test_mode(),
            "zero_gpu": on_zero_gpu(),
            "device": device_label(),
            "inference_calls": dict(self.calls),
            "semat_forwards": int(getattr(self._pipeline, "model_forwards", 0)),
            "detector_forwards": int(getattr(self._pipeline, "detector_forwards", 0)),
            "loaded_variants": self.loaded_variants(),
            "max_boxes": L.max_boxes(),
            "uptime_s": round(time.time() - self.started, 1),
        }


SERVICES = Services()


@functools.lru_cache(maxsize=1)
def _runtime_label() -> str:
    from semat.runtime import select_runtime

    try:
        return select_runtime().label
    except Exception as exc:  # a bad SEMAT_DEVICE/SEMAT_DTYPE shows up here, not as a crash
        return f"unavailable ({exc})"


def device_label(result_label: str | None = None) -> str:
    label = result_label or _runtime_label()
    return f"ZeroGPU · {label}" if on_zero_gpu() else label


# ------------------------------------------------------------------- GPU entry points
# Module-level, picklable arguments only (ZeroGPU forks a worker and pickles them).


def _mp(image: np.ndarray) -> float:
    return image.shape[0] * image.shape[1] / 1e6


def _dur_detect(image, text, box_threshold, text_threshold, progress=None) -> int:
    return L.gpu_duration(_mp(image), 0, None, detection=True)


def _dur_matte(image, prompt, variant, selected, progress=None) -> int:
    n = len(selected) if selected else max(1, len(getattr(prompt, "boxes", []) or []) or 1)
    return L.gpu_duration(_mp(image), n, variant)


def _dur_human(image, progress=None) -> int:
    return L.gpu_duration(_mp(image), 1, None, human=True)


@_gpu(_dur_detect)
def _gpu_detect(image, text, box_threshold, text_threshold, progress=None):
    return SERVICES.detect(image, text, box_threshold, text_threshold, progress=progress)


@_gpu(_dur_matte)
def _gpu_matte(image, prompt, variant, selected, progress=None):
    return SERVICES.matte(image, prompt, variant, selected, progress=progress)


@_gpu(_dur_human)
def _gpu_human(image, progress=None):
    return SERVICES.human_matte(image, progress=progress)


# Counted here, in the serving process (on ZeroGPU the functions above run in a worker).
def gpu_detect(image, text, box_threshold, text_threshold, progress=None):
    SERVICES.calls["detect"] += 1
    return _gpu_detect(image, text, box_threshold, text_threshold, progress=progress)


def gpu_matte(image, prompt, variant, selected, progress=None):
    SERVICES.calls["matte"] += 1
    result = _gpu_matte(image, prompt, variant, selected, progress=progress)
    SERVICES.variants_used.add(variant)
    return result


def gpu_human(image, progress=None):
    SERVICES.calls["human"] += 1
    return _gpu_human(image, progress=progress)


def _progress_cb(progress: gr.Progress | None) -> L.ProgressFn | None:
    """Adapt gr.Progress to the callbacks of weights (``cb(message)``) and the pipeline
    (``cb(fraction, message)``). None on ZeroGPU, where inference runs in another process."""
    if progress is None or on_zero_gpu():
        return None

    def cb(*args) -> None:
        fraction, message = (None, args[0]) if len(args) == 1 else (args[0], args[1])
        if isinstance(fraction, str):
            fraction, message = message if isinstance(message, (int, float)) else None, fraction
        try:
            progress(fraction, desc=str(message))
        except Exception:  # progress is cosmetic; never fail a run for it
            pass

    return cb


# ------------------------------------------------------------------------- sessions


@dataclass
class TabSession:
    """Per-browser-tab state of one app tab (kept in gr.State, dropped after an hour idle)."""

    image: np.ndarray | None = None
    name: str = "image"
    image_sha: str | None = None  # sha1 of the uploaded file the working image came from
    shown_sha: str | None = None  # sha1 of the file the input component shows (our rendering)
    editor: L.PromptEditor = field(default_factory=L.PromptEditor)
    detections: list = field(default_factory=list)
    detect_key: tuple | None = None
    result: Any = None
    foreground: np.ndarray | None = None
    alpha_sha: str | None = None
    stem: str = "image"

    def reset_outputs(self) -> None:
        self.result, self.foreground, self.alpha_sha = None, None, None


def _session(s: TabSession | None) -> TabSession:
    return s if isinstance(s, TabSession) else TabSession()


def _load_into(s: TabSession, path: str) -> list[str]:
    from semat.io.images import load_image, max_megapixels_from_env

    loaded = load_image(path, max_megapixels=max_megapixels_from_env(), name=_orig_name(path))
    s.image, s.name = loaded.rgb, loaded.name
    s.stem = L.safe_stem(loaded.name)
    s.image_sha = L.file_sha(path)
    s.shown_sha = s.image_sha
    s.detections, s.detect_key = [], None
    s.editor.corner = None
    s.reset_outputs()
    return list(loaded.notices)


def _orig_name(path: str) -> str:
    return Path(path).name


def _resolve_image(s: TabSession, path: str | None) -> tuple[np.ndarray, list[str]]:
    """The working image for what the input component shows now.

    The component shows either our own rendering of ``s.image`` (an overlay or the normalised
    upload) or a new file (an upload or an example the user clicked); only the latter is
    (re)loaded, so coordinates stay in the working frame.
    """
    if not path:
        raise gr.Error("Upload an image first (drag a photo onto the image box or click an example).",
                       title="No image")
    sha = L.file_sha(path)
    if s.image is not None and sha is not None and sha in (s.shown_sha, s.image_sha):
        return s.image, []
    notices = _load_into(s, path)
    return s.image, notices


def _show(s: TabSession, array: np.ndarray, tag: str) -> str:
    """Write ``array`` as the input component's new picture and remember its hash."""
    from semat.io.images import save_png

    path = L.new_output_dir() / f"{s.stem}_{tag}.png"
    save_png(path, array, compress_level=1)
    s.shown_sha = L.file_sha(path)
    return str(path)


def _notify(notices: list[str]) -> None:
    for n in notices:
        gr.Info(n, duration=8)


def friendly(fn: Callable) -> Callable:
    """Turn expected failures into one gr.Error that says what to do next; the app keeps serving."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as exc:
            raise _to_gr_error(exc) from exc

    return wrapper


def _expected(message: str, title: str) -> gr.Error:
    """A gr.Error for an expected user-side problem (no server traceback in the log)."""
    return gr.Error(message, title=title, print_exception=False)


def _to_gr_error(exc: BaseException) -> gr.Error:
    from semat.io.images import ImageInputError
    from semat.weights.hub import WeightsUnavailable

    name = type(exc).__name__
    msg = str(exc).strip() or name
    if isinstance(exc, ImageInputError):
        return _expected(f"{msg}. Upload a JPEG, PNG or WebP photo instead.", title="Can't read this image")
    if isinstance(exc, WeightsUnavailable):
        return _expected(f"{msg} The app keeps running: try another tab/model, or place the file and "
                        "run again.", title="Model weights missing")
    if name == "NoDetectionError":
        return _expected(msg, title="Nothing found")
    if isinstance(exc, L.PromptError) or name == "BoxError":
        return _expected(msg[:1].upper() + msg[1:], title="Check the prompt")
    if isinstance(exc, ValueError):
        return _expected(msg, title="Can't run this request")
    if isinstance(exc, MemoryError) or "out of memory" in msg.lower():
        return _expected("Ran out of memory for this image. Try a smaller image or fewer boxes.",
                        title="Out of memory")
    log.error("unexpected error in the app:\n%s", "".join(traceback.format_exception(exc)))
    return gr.Error(f"Unexpected error ({name}: {msg[:200]}). Try again; if it persists, try a smaller "
                    "image or another model.", title="Something went wrong")


# ------------------------------------------------------------------------ outputs


@dataclass
class Rendered:
    mask: str | None
    alpha: str | None
    composite: str | None
    rgba: str | None
    alpha_dl: str | None
    zip: str | None
    info: str


def _composite_path(s: TabSession, bg_mode, colour, bg_image, blur, out_dir: Path | None = None) -> str:
    from semat import compose
    from semat.io.images import save_png

    r = s.result
    if s.foreground is None:
        s.foreground = compose.estimate_foreground(r.image, r.alpha)
    spec = L.background_spec(bg_mode, colour, blur)
    if spec == "image":
        if not bg_image:
            spec, bg = "checker", None
            gr.Warning("Upload a background image (or pick another background); showing a checkerboard.")
        else:
            from semat.io.images import load_image

            bg = load_image(bg_image, name="background").rgb
            spec = compose.Background("image")
    else:
        bg = None
    out = compose.composite(r.image, r.alpha, spec, bg_image=bg, foreground=s.foreground)
    out_dir = out_dir or L.new_output_dir()
    label = spec if isinstance(spec, str) else "image"
    path = out_dir / f"{s.stem}_composite_{L.safe_stem(label.replace('#', '').replace(':', '-'))}.png"
    save_png(path, out, compress_level=1)
    return str(path)


def _render(s: TabSession, result, bg_mode, colour, bg_image, blur, extra_info: dict | None = None) -> Rendered:
    """Write the result's files and previews; remember the result for recompositing."""
    from semat import compose
    from semat.io.images import save_png

    s.result, s.foreground = result, None
    d = L.new_output_dir()
    stem = s.stem
    t0 = time.perf_counter()
    mask_path = save_png(d / f"{stem}_mask.png", (np.asarray(result.mask) > 0).astype(np.uint8) * 255)
    alpha_path = compose.save_alpha_png(d / f"{stem}_alpha.png", result.alpha)
    s.alpha_sha = L.file_sha(alpha_path)
    s.foreground = compose.estimate_foreground(result.image, result.alpha)
    rgba_path = save_png(d / f"{stem}_rgba.png", compose.rgba(result.image, result.alpha, s.foreground))
    zip_path = compose.write_zip(result, d / f"{stem}_layers.zip", foreground=s.foreground,
                                 manifest_extra={"app": "semat-space", "test_mode": test_mode()})
    comp = _composite_path(s, bg_mode, colour, bg_image, blur, d)
    timings = dict(getattr(result, "timings", {}) or {})
    timings["export"] = time.perf_counter() - t0
    info = L.timings_markdown(timings, device_label(getattr(result, "device_label", None)), extra_info)
    if test_mode():
        info += f"\n\n`test mode` inference calls so far: {json.dumps(SERVICES.calls)}"
    return Rendered(str(mask_path), str(alpha_path), comp, str(rgba_path), str(alpha_path), str(zip_path), info)


@dataclass
class _Shown:
    """Image + alpha rebuilt from what the page shows (e.g. a cached example's outputs)."""

    image: np.ndarray
    alpha: np.ndarray


@friendly
def recomposite(bg_mode, colour, bg_image, blur, image_path, alpha_path, s: TabSession | None):
    """Background controls changed: blend again from the cached alpha (no model call).

    Uses the session's result when the alpha on screen is the one it produced; otherwise (a
    cached example's outputs) rebuilds image + alpha from the files shown.
    """
    s = _session(s)
    if not alpha_path:
        return gr.update(), s
    alpha_sha = L.file_sha(alpha_path)
    if s.result is None or s.alpha_sha != alpha_sha:
        from semat.io.images import read_png

        if not image_path:
            return gr.update(), s
        image, _ = _resolve_image(s, image_path)
        alpha = read_png(alpha_path)
        if alpha.ndim == 3:
            alpha = alpha[..., 0]
        if alpha.shape != image.shape[:2]:
            return gr.update(), s
        s.result = _Shown(image, alpha.astype(np.float32) / (65535.0 if alpha.dtype == np.uint16 else 255.0))
        s.foreground, s.alpha_sha = None, alpha_sha
    return _composite_path(s, bg_mode, colour, bg_image, blur), s


# --------------------------------------------------------------------- text tab


def _det_label(i: int, det) -> str:
    return f"#{i + 1} {det.label} ({det.score:.2f})"


def _selected_indices(selected: list[str] | None, n: int) -> list[int]:
    out = []
    for v in selected or []:
        try:
            k = int(str(v).split()[0].lstrip("#")) - 1
        except (ValueError, IndexError):
            continue
        if 0 <= k < n and k not in out:
            out.append(k)
    return sorted(out)


def _top_scoring(s: TabSession, idx: list[int], k: int) -> list[int]:
    """The ``k`` highest-scoring of the detections ``idx``, back in detection order."""
    return sorted(sorted(idx, key=lambda i: -float(s.detections[i].score))[:k])


def _det_overlay(s: TabSession, selected_idx: list[int]) -> str:
    dets = s.detections
    boxes = [tuple(d.box) for d in dets]
    labels = [f"{d.label} {d.score:.2f}" for d in dets]
    dimmed = {i for i in range(len(dets)) if i not in selected_idx}
    return _show(s, L.draw_overlay(s.image, boxes, (), labels, dimmed), "detections")


def _check_text(text: str | None) -> str:
    text = (text or "").strip()
    if not text:
        raise gr.Error("Type what to cut out, e.g. \"cat\" or \"glass of water\", then run again. "
                       "(Or use the Boxes & clicks tab.)", title="No text prompt")
    return text


@friendly
def on_upload(path, s):
    s = TabSession()
    if not path:
        return None, s
    notices = _load_into(s, path)
    _notify(notices)
    return _show(s, s.image, "input"), s


@friendly
def text_detect(path, text, box_threshold, text_threshold, s, progress=gr.Progress()):  # noqa: B008
    s = _session(s)
    image, notices = _resolve_image(s, path)
    _notify(notices)
    text = _check_text(text)
    _run_detection(s, image, text, box_threshold, text_threshold, progress)
    idx = list(range(len(s.detections)))
    msg = f"Found {len(s.detections)} object(s). Untick any you don't want, then press **Matte**."
    return (_det_overlay(s, idx), gr.update(choices=[_det_label(i, d) for i, d in enumerate(s.detections)],
                                            value=[_det_label(i, d) for i, d in enumerate(s.detections)]),
            msg, s)


def _run_detection(s: TabSession, image, text, box_threshold, text_threshold, progress) -> None:
    if progress is not None:
        progress(None, desc="Detecting boxes (GroundingDINO)…")
    dets = gpu_detect(image, text, float(box_threshold), float(text_threshold), progress=_progress_cb(progress))
    s.detections = list(dets)
    s.detect_key = (s.image_sha, text, float(box_threshold), float(text_threshold))


@friendly
def text_selection(selected, s):
    s = _session(s)
    if s.image is None or not s.detections:
        return gr.update(), s
    return _det_overlay(s, _selected_indices(selected, len(s.detections))), s


@friendly
def text_matte(path, text, box_threshold, text_threshold, variant_label, selected, bg_mode, colour, bg_image,
               blur, s, progress=gr.Progress()):  # noqa: B008
    s = _session(s)
    image, notices = _resolve_image(s, path)
    _notify(notices)
    text = _check_text(text)
    variant = L.variant_of(variant_label)
    key = (s.image_sha, text, float(box_threshold), float(text_threshold))
    fresh = s.detect_key != key
    if fresh:
        _run_detection(s, image, text, box_threshold, text_threshold, progress)
        idx = list(range(len(s.detections)))
        if len(idx) > L.max_boxes():
            idx = _top_scoring(s, idx, L.max_boxes())
            gr.Warning(f"Found {len(s.detections)} boxes; matting the {L.max_boxes()} highest-scoring ones. "
                       "Raise the box threshold or untick boxes to choose others.")
    else:
        idx = _selected_indices(selected, len(s.detections))
        if not idx:
            raise gr.Error("All detected boxes are unticked. Tick at least one box, then press Matte.",
                           title="Nothing selected")
    if len(idx) > L.max_boxes():
        raise gr.Error(f"Too many boxes ({len(idx)}; the limit is {L.max_boxes()}). Untick some boxes or raise "
                       "the box threshold, then run again.", title="Too many boxes")
    from semat.pipeline import Prompt

    prompt = Prompt(text=text, box_threshold=float(box_threshold), text_threshold=float(text_threshold))
    if progress is not None:
        progress(None, desc=f"Matting {len(idx)} object(s) with {L.VARIANT_LABELS[variant]}…")
    result = gpu_matte(image, prompt, variant, idx, progress=_progress_cb(progress))
    r = _render(s, result, bg_mode, colour, bg_image, blur, {"model": L.VARIANT_LABELS[variant],
                                                             "objects": len(result.objects)})
    choices = [_det_label(i, d) for i, d in enumerate(s.detections)]
    overlay = _det_overlay(s, idx)
    return (overlay, gr.update(choices=choices, value=[choices[i] for i in idx]), r.mask, r.alpha, r.composite,
            r.rgba, r.alpha_dl, r.zip, r.info, s)


# --------------------------------------------------------------------- boxes tab


def _prompt_overlay(s: TabSession) -> str:
    boxes, points = s.editor.prompts()
    return _show(s, L.draw_overlay(s.image, boxes, points, None, None, s.editor.corner), "prompts")


def _editor_outputs(s: TabSession, msg: str):
    return _prompt_overlay(s), s.editor.boxes_text, s.editor.points_text, msg, s


@friendly
def boxes_upload(path, s):
    shown, s = on_upload(path, s)
    return shown, "", "", "Click two opposite corners to draw a box; switch the mode to add points.", s


@friendly
def boxes_click(path, mode, boxes_text, points_text, s, evt: gr.SelectData):
    s = _session(s)
    _, notices = _resolve_image(s, path)
    _notify(notices)
    s.editor.sync(boxes_text, points_text)
    x, y = evt.index[0], evt.index[1]
    msg = s.editor.click(float(x), float(y), mode or L.CLICK_MODES[0])
    return _editor_outputs(s, msg)


@friendly
def boxes_undo(path, boxes_text, points_text, s):
    s = _session(s)
    _resolve_image(s, path)
    s.editor.sync(boxes_text, points_text)
    msg = s.editor.undo()
    return _editor_outputs(s, msg)


@friendly
def boxes_clear(path, boxes_text, points_text, s):
    s = _session(s)
    _resolve_image(s, path)
    s.editor.sync(boxes_text, points_text)
    msg = s.editor.clear()
    return _editor_outputs(s, msg)


@friendly
def boxes_apply(path, boxes_text, points_text, s):
    s = _session(s)
    image, _ = _resolve_image(s, path)
    s.editor.sync(boxes_text, points_text)
    boxes, points = s.editor.prompts()
    L.check_prompt_fits(boxes, points, (image.shape[1], image.shape[0]))
    return _editor_outputs(s, f"{len(boxes)} box(es), {len(points)} point(s).")


@friendly
def boxes_matte(path, variant_label, boxes_text, points_text, bg_mode, colour, bg_image, blur, s,
                progress=gr.Progress()):  # noqa: B008
    s = _session(s)
    image, notices = _resolve_image(s, path)
    _notify(notices)
    s.editor.sync(boxes_text, points_text)
    boxes, points = s.editor.prompts()
    if not boxes and not points:
        raise gr.Error("Draw a box (click two opposite corners on the image), add a positive point, or type "
                       "x1, y1, x2, y2 in the Boxes field, then run again.", title="No prompt")
    L.check_prompt_fits(boxes, points, (image.shape[1], image.shape[0]))
    if s.editor.corner is not None:
        gr.Warning("A box with only its first corner was ignored; click the opposite corner to finish it.")
    variant = L.variant_of(variant_label)
    from semat.pipeline import Prompt

    prompt = Prompt(boxes=[tuple(b) for b in boxes], points=[tuple(p) for p in points])
    if progress is not None:
        progress(None, desc=f"Matting with {L.VARIANT_LABELS[variant]}…")
    result = gpu_matte(image, prompt, variant, None, progress=_progress_cb(progress))
    r = _render(s, result, bg_mode, colour, bg_image, blur, {"model": L.VARIANT_LABELS[variant],
                                                             "objects": len(result.objects)})
    return (_prompt_overlay(s), r.mask, r.alpha, r.composite, r.rgba, r.alpha_dl, r.zip, r.info, s)


# --------------------------------------------------------------------- human tab


def _human_result(image: np.ndarray, hr):
    """Wrap SGHM's output as a pipeline MatteResult so exports and recompositing are shared."""
    from semat.pipeline import MatteResult, ObjectResult, Prompt

    alpha = np.clip(np.asarray(hr.alpha, np.float32), 0.0, 1.0)
    visible = np.argwhere(alpha > 0.01)
    if visible.size:
        (y0, x0), (y1, x1) = visible.min(0), visible.max(0) + 1
        box = (float(x0), float(y0), float(x1), float(y1))
    else:
        box = (0.0, 0.0, float(image.shape[1]), float(image.shape[0]))
    mask = np.asarray(hr.segment) > 0.5
    obj = ObjectResult(box=box, label="person", score=None, source="auto", mask=mask, alpha=alpha)
    return MatteResult(image=image, objects=[obj], alpha=alpha, mask=mask, variant="sghm",
                       checkpoint_sha256=None, timings=dict(hr.timings), notices=[], prompt=Prompt(),
                       device_label=SERVICES.human().runtime.label)


@friendly
def human_run(path, bg_mode, colour, bg_image, blur, s, progress=gr.Progress()):  # noqa: B008
    s = _session(s)
    image, notices = _resolve_image(s, path)
    _notify(notices)
    if progress is not None:
        progress(None, desc="Matting people (SGHM)…")
    hr = gpu_human(image, progress=_progress_cb(progress))
    result = _human_result(image, hr)
    r = _render(s, result, bg_mode, colour, bg_image, blur, {"model": "SGHM"})
    return r.mask, r.alpha, r.composite, r.rgba, r.alpha_dl, r.zip, r.info, s


# --------------------------------------------------------------------- examples (cached lazily)


@friendly
def example_text(path, text):
    """An example row of the Text tab, run with the default model and thresholds (cached on
    first click for every visitor, so the gallery costs no GPU afterwards)."""
    s = TabSession()
    _load_into(s, path)
    text = _check_text(text)
    _run_detection(s, s.image, text, 0.35, 0.25, None)
    idx = _top_scoring(s, list(range(len(s.detections))), L.max_boxes())
    from semat.pipeline import Prompt

    result = gpu_matte(s.image, Prompt(text=text), "hq-sam", idx)
    r = _render(s, result, "Checkerboard", None, None, None, {"model": L.VARIANT_LABELS["hq-sam"],
                                                              "objects": len(result.objects), "cached example": "yes"})
    return r.mask, r.alpha, r.composite, r.rgba, r.alpha_dl, r.zip, r.info


@friendly
def example_human(path):
    s = TabSession()
    _load_into(s, path)
    result = _human_result(s.image, gpu_human(s.image))
    r = _render(s, result, "Checkerboard", None, None, None, {"model": "SGHM", "cached example": "yes"})
    return r.mask, r.alpha, r.composite, r.rgba, r.alpha_dl, r.zip, r.info


# --------------------------------------------------------------------- API endpoints


def _api_load(image: str | None) -> TabSession:
    if not image:
        raise gr.Error("Pass an image file (gradio_client.handle_file(path)).", title="No image")
    s = TabSession()
    _load_into(s, image)
    return s


def _api_background(background: str | None):
    """Parse the API's background spec up front, so a typo fails before any model runs."""
    from semat import compose

    spec = (background or "transparent").strip() or "transparent"
    return compose.parse_background(spec)  # ValueError listing the accepted forms


def _api_outputs(s: TabSession, result, bg, extra: dict):
    from semat import compose

    mode = {"transparent": "Transparent", "checker": "Checkerboard", "color": "Colour", "blur": "Blur",
            "image": "Image"}[bg.kind]
    r = _render(s, result, mode, compose.Background(bg.kind, bg.color).label if bg.kind == "color" else None,
                bg.image_path, bg.blur_sigma)
    info = {
        "objects": [{"box": [float(v) for v in o.box], "label": o.label,
                     "score": None if o.score is None else float(o.score), "source": o.source}
                    for o in result.objects],
        "variant": result.variant,
        "device": device_label(getattr(result, "device_label", None)),
        "timings_s": {k: round(float(v), 4) for k, v in (result.timings or {}).items()},
        "notices": list(getattr(result, "notices", []) or []),
        "test_mode": test_mode(),
        **extra,
    }
    return r.rgba, r.alpha_dl, r.composite, r.zip, info


@friendly
def api_matte_text(image: str, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25,
                   model: str = "hq-sam", background: str = "transparent", max_objects: int = 0):
    """Text → boxes (GroundingDINO) → SEMat alpha for every detection (or the best `max_objects`)."""
    bg = _api_background(background)
    s = _api_load(image)
    text = _check_text(text)
    variant = L.variant_of(model)
    _run_detection(s, s.image, text, box_threshold, text_threshold, None)
    idx = list(range(len(s.detections)))
    if max_objects and max_objects > 0:
        idx = _top_scoring(s, idx, int(max_objects))
    extra: dict[str, Any] = {"text": text, "detections_found": len(s.detections)}
    if len(idx) > L.max_boxes():  # like the UI: keep the best ones and say so
        idx = _top_scoring(s, idx, L.max_boxes())
        extra["limit_notice"] = (f"found {len(s.detections)} boxes; matted the {L.max_boxes()} highest-scoring "
                                 "(raise box_threshold or pass max_objects to choose)")
    from semat.pipeline import Prompt

    prompt = Prompt(text=text, box_threshold=float(box_threshold), text_threshold=float(text_threshold))
    result = gpu_matte(s.image, prompt, variant, idx)
    return _api_outputs(s, result, bg, extra)


@friendly
def api_matte_prompts(image: str, boxes: str = "", points: str = "", model: str = "hq-sam",
                      background: str = "transparent"):
    """Boxes (`x1,y1,x2,y2` per line or JSON list) and/or points (`x,y,label` per line) → SEMat alpha."""
    bg = _api_background(background)
    s = _api_load(image)
    b, p = L.parse_boxes(boxes), L.parse_points(points)
    if not b and not p:
        raise gr.Error("Pass at least one box (x1,y1,x2,y2) or one positive point (x,y,1).", title="No prompt")
    L.check_prompt_fits(b, p, (s.image.shape[1], s.image.shape[0]))
    variant = L.variant_of(model)
    from semat.pipeline import Prompt

    result = gpu_matte(s.image, Prompt(boxes=b, points=p), variant, None)
    return _api_outputs(s, result, bg, {})


@friendly
def api_matte_human(image: str, background: str = "transparent"):
    """Automatic human matting (SGHM), no prompt."""
    bg = _api_background(background)
    s = _api_load(image)
    result = _human_result(s.image, gpu_human(s.image))
    return _api_outputs(s, result, bg, {})


@friendly
def api_detect(image: str, text: str, box_threshold: float = 0.35, text_threshold: float = 0.25):
    """Text → boxes only (label, score, box), to review before /matte_prompts."""
    s = _api_load(image)
    text = _check_text(text)
    _run_detection(s, s.image, text, box_threshold, text_threshold, None)
    return {"detections": [{"box": [float(v) for v in d.box], "label": d.label, "score": float(d.score)}
                           for d in s.detections]}


def api_status():
    """Device, test mode, loaded models and inference-call counters (for health checks)."""
    return SERVICES.status()


# ------------------------------------------------------------------------ layout


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


def build_demo() -> gr.Blocks:
    """Build the whole app (call ``.queue(...).launch(...)`` or use :func:`launch`)."""
    gpu_note = "ZeroGPU" if on_zero_gpu() else ""
    with gr.Blocks(title="SEMat Space — natural image matting", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(header_markdown())
        if test_mode():
            gr.Markdown("⚠️ **TEST MODE** (`SEMAT_TEST_MODELS=tiny`): tiny random-weight models — outputs are "
                        "meaningless; for tests and UI development only.", elem_classes=["semat-testmode"],
                        elem_id="test-mode-banner")
        with gr.Row():
            variant = gr.Radio([L.VARIANT_LABELS[v] for v in ("hq-sam", "sam", "sam2")], value="SEMat HQ-SAM",
                               label="Model (SEMat checkpoint, for Text and Boxes tabs)", elem_id="variant", scale=3)
            gr.Markdown(f"**Device:** {device_label()} {gpu_note}\n\nModels load on first use and stay cached.",
                        elem_id="device-label")
        ex = _examples()
        with gr.Tabs():
            # ---------------------------------------------------------------- text
            with gr.Tab("Text prompt", id="text"):
                t_state = gr.State(None, time_to_live=3600)
                with gr.Row():
                    with gr.Column(scale=3):
                        t_img = InputImage(label="Image", type="filepath", image_mode=None, format="png",
                                         sources=["upload", "clipboard"], elem_id="text-image", height=420)
                    with gr.Column(scale=2):
                        t_text = gr.Textbox(label="What to cut out", placeholder="e.g. cat, coffee cup, person",
                                            elem_id="text-prompt")
                        with gr.Accordion("Thresholds", open=False):
                            t_box_thr = gr.Slider(0.05, 0.95, value=0.35, step=0.01, label="Box threshold",
                                                  elem_id="text-box-thr")
                            t_text_thr = gr.Slider(0.05, 0.95, value=0.25, step=0.01, label="Text threshold",
                                                   elem_id="text-text-thr")
                        with gr.Row():
                            t_detect = gr.Button("1 · Detect", elem_id="text-detect")
                            t_run = gr.Button("2 · Matte ▶", variant="primary", elem_id="text-run")
                        t_sel = gr.CheckboxGroup([], value=[], label="Detected boxes (untick to skip)",
                                                 elem_id="text-detections")
                        t_msg = gr.Markdown("", elem_id="text-status")
                t_out = _output_panel("text")
                if ex["text"]:
                    gr.Examples(ex["text"], inputs=[t_img, t_text], outputs=t_out.files, fn=example_text,
                                cache_examples=True, cache_mode="lazy", label="Examples (results cached)",
                                examples_per_page=6, elem_id="text-examples")
            # ---------------------------------------------------------------- boxes
            with gr.Tab("Boxes & clicks", id="boxes"):
                b_state = gr.State(None, time_to_live=3600)
                with gr.Row():
                    with gr.Column(scale=3):
                        b_img = InputImage(label="Image — click to add prompts", type="filepath", image_mode=None,
                                         format="png", sources=["upload", "clipboard"], elem_id="boxes-image",
                                         height=420)
                    with gr.Column(scale=2):
                        b_mode = gr.Radio(list(L.CLICK_MODES), value=L.CLICK_MODES[0], label="A click adds",
                                          elem_id="boxes-mode")
                        with gr.Row():
                            b_undo = gr.Button("↶ Undo", size="sm", elem_id="boxes-undo")
                            b_clear = gr.Button("✕ Clear", size="sm", elem_id="boxes-clear")
                        b_boxes = gr.Textbox(label="Boxes: x1, y1, x2, y2 (one per line; Enter to apply)",
                                             lines=2, elem_id="boxes-boxes")
                        b_points = gr.Textbox(label="Points: x, y, label (1 = keep, 0 = exclude)", lines=2,
                                              elem_id="boxes-points")
                        b_run = gr.Button("Matte ▶", variant="primary", elem_id="boxes-run")
                        b_msg = gr.Markdown("Click two opposite corners to draw a box; switch the mode to add "
                                            "points.", elem_id="boxes-status")
                b_out = _output_panel("boxes")
                if ex["boxes"]:
                    gr.Examples(ex["boxes"], inputs=[b_img], label="Examples", examples_per_page=6,
                                elem_id="boxes-examples")
            # ---------------------------------------------------------------- human
            with gr.Tab("Auto human", id="human"):
                h_state = gr.State(None, time_to_live=3600)
                with gr.Row():
                    with gr.Column(scale=3):
                        h_img = InputImage(label="Image with people", type="filepath", image_mode=None,
                                         format="png", sources=["upload", "clipboard"], elem_id="human-image",
                                         height=420)
                    with gr.Column(scale=2):
                        gr.Markdown("SGHM finds and mattes every person — no prompt needed.")
                        h_run = gr.Button("Matte people ▶", variant="primary", elem_id="human-run")
                h_out = _output_panel("human")
                if ex["human"]:
                    gr.Examples(ex["human"], inputs=[h_img], outputs=h_out.files, fn=example_human,
                                cache_examples=True, cache_mode="lazy", label="Examples (results cached)",
                                examples_per_page=6, elem_id="human-examples")

        # ------------------------------------------------------------------- API-only components
        with gr.Column(visible=False):
            a_img = InputImage(type="filepath", image_mode=None, label="image")
            a_text = gr.Textbox(label="text")
            a_bthr = gr.Number(0.35, label="box_threshold")
            a_tthr = gr.Number(0.25, label="text_threshold")
            a_model = gr.Dropdown(["hq-sam", "sam", "sam2"], value="hq-sam", label="model")
            a_bg = gr.Textbox("transparent", label="background")
            a_max = gr.Number(0, precision=0, label="max_objects")
            a_boxes = gr.Textbox(label="boxes")
            a_points = gr.Textbox(label="points")
            o_rgba = gr.File(label="rgba_png")
            o_alpha = gr.File(label="alpha_png")
            o_comp = gr.File(label="composite_png")
            o_zip = gr.File(label="layers_zip")
            o_info = gr.JSON(label="info")
            a_btn = gr.Button()

        model_events = {"concurrency_limit": int(os.environ.get("SEMAT_CONCURRENCY", "1")),
                        "concurrency_id": "models"}
        light = {"concurrency_limit": 8, "concurrency_id": "prompts", "api_visibility": "private",
                 "show_progress": "hidden"}

        # text tab
        t_img.upload(on_upload, [t_img, t_state], [t_img, t_state], **light)
        t_detect.click(text_detect, [t_img, t_text, t_box_thr, t_text_thr, t_state], [t_img, t_sel, t_msg, t_state],
                       api_visibility="private", show_progress_on=[t_sel], **model_events)
        t_sel.input(text_selection, [t_sel, t_state], [t_img, t_state], **light)
        text_inputs = [t_img, t_text, t_box_thr, t_text_thr, variant, t_sel, *t_out.bg, t_state]
        text_outputs = [t_img, t_sel, *t_out.files, t_state]
        t_run.click(text_matte, text_inputs, text_outputs, api_visibility="private",
                    show_progress_on=t_out.images, **model_events)
        t_text.submit(text_matte, text_inputs, text_outputs, api_visibility="private",
                      show_progress_on=t_out.images, **model_events)
        _wire_recomposite(t_out, t_img, t_state)

        # boxes tab
        b_img.upload(boxes_upload, [b_img, b_state], [b_img, b_boxes, b_points, b_msg, b_state], **light)
        edit_out = [b_img, b_boxes, b_points, b_msg, b_state]
        b_img.select(boxes_click, [b_img, b_mode, b_boxes, b_points, b_state], edit_out, **light)
        b_undo.click(boxes_undo, [b_img, b_boxes, b_points, b_state], edit_out, **light)
        b_clear.click(boxes_clear, [b_img, b_boxes, b_points, b_state], edit_out, **light)
        b_boxes.submit(boxes_apply, [b_img, b_boxes, b_points, b_state], edit_out, **light)
        b_points.submit(boxes_apply, [b_img, b_boxes, b_points, b_state], edit_out, **light)
        b_run.click(boxes_matte, [b_img, variant, b_boxes, b_points, *b_out.bg, b_state],
                    [b_img, *b_out.files, b_state], api_visibility="private", show_progress_on=b_out.images,
                    **model_events)
        _wire_recomposite(b_out, b_img, b_state)

        # human tab
        h_run.click(human_run, [h_img, *h_out.bg, h_state], [*h_out.files, h_state], api_visibility="private",
                    show_progress_on=h_out.images, **model_events)
        _wire_recomposite(h_out, h_img, h_state)

        # named API endpoints (documented in the README)
        api_out = [o_rgba, o_alpha, o_comp, o_zip, o_info]
        a_btn.click(api_matte_text, [a_img, a_text, a_bthr, a_tthr, a_model, a_bg, a_max], api_out,
                    api_name="matte_text", **model_events)
        a_btn.click(api_matte_prompts, [a_img, a_boxes, a_points, a_model, a_bg], api_out,
                    api_name="matte_prompts", **model_events)
        a_btn.click(api_matte_human, [a_img, a_bg], api_out, api_name="matte_human", **model_events)
        a_btn.click(api_detect, [a_img, a_text, a_bthr, a_tthr], [o_info], api_name="detect", **model_events)
        a_btn.click(api_status, None, [o_info], api_name="status", queue=False)
    return demo


def queue_settings() -> dict[str, Any]:
    return {"max_size": int(os.environ.get("SEMAT_QUEUE_SIZE", "32")), "default_concurrency_limit": 1}


def launch(demo: gr.Blocks | None = None, **kwargs) -> None:
    """Queue with a bounded size and launch (host/port from GRADIO_SERVER_NAME/PORT or kwargs)."""
    demo = demo or build_demo()
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("show_error", True)
    kwargs.setdefault("max_file_size", os.environ.get("SEMAT_MAX_UPLOAD", "50mb"))
    kwargs.setdefault("state_session_capacity", int(os.environ.get("SEMAT_SESSION_CAPACITY", "200")))
    demo.queue(**queue_settings()).launch(**kwargs)
