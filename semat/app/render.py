"""What a result becomes on the page and in the downloads.

Two kinds of output, never mixed up:

* **previews** (:func:`previews`, :func:`composite_preview`, :func:`mask_preview`): what the
  page shows, at most :data:`~semat.app.session.PREVIEW_SIDE` px long, computed at that size and
  quickly encoded (JPEG for opaque pictures, PNG level 1 for alpha and transparency). They are the
  only thing on the path to the first result, and a background change only redoes the
  composite preview.
* **full-size files** (:func:`download_files`): RGBA, alpha, composite and the layers ZIP at the
  working image's size, written after the preview is shown (the app's "Preparing downloads…"
  step) with the foreground estimated once per result. Their PNG content is what :func:`render`
  (the named API) writes for the same alpha.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from semat import compose
from semat.app import editor as L
from semat.app.services import SERVICES
from semat.app.session import TabSession, preview_of, shrink
from semat.app.zerogpu import on_zero_gpu
from semat.pipeline import MatteResult
from semat.settings import Settings


def test_mode() -> bool:
    return Settings.from_env().test_models


@functools.lru_cache(maxsize=1)
def _runtime_label() -> str:
    from semat.runtime import select_runtime

    try:
        return select_runtime().label
    except Exception as exc:
        return f"unavailable ({exc})"


def device_label(result_label: str | None = None) -> str:
    label = result_label or _runtime_label()
    return f"ZeroGPU · {label}" if on_zero_gpu() else label


# ----------------------------------------------------------------------- backgrounds


def ui_background(bg_mode: str | None, colour: str | None, bg_image: str | None,
                  blur: float | None) -> tuple[compose.Background, np.ndarray | None, list[str]]:
    """The UI's background controls → (Background, uploaded background array, notices)."""
    spec = L.background_spec(bg_mode, colour, blur)
    if spec != "image":
        return compose.parse_background(spec), None, []
    if not bg_image:
        return compose.parse_background("checker"), None, [
            "Upload a background image (or pick another background); showing a checkerboard."]
    from semat.io.images import load_image

    return compose.parse_background("image"), load_image(bg_image, name="background").rgb, []


def _bg_key(background: compose.Background, bg_image: np.ndarray | None) -> str:
    key = f"{background.kind}:{background.label}:{background.blur_sigma}"
    if bg_image is not None:
        import hashlib

        key += ":" + hashlib.sha1(np.ascontiguousarray(bg_image[::7, ::7]).tobytes()).hexdigest()[:12]
    return key


def _bg_name(background: compose.Background) -> str:
    label = background.kind if background.kind != "color" else background.label
    if background.kind == "blur" and background.blur_sigma:
        label = f"blur{background.blur_sigma:g}"
    return L.safe_stem(str(label).replace("#", "").replace(":", "-"))


# --------------------------------------------------------------------------- previews


def view_alpha(s: TabSession) -> np.ndarray:
    """Full-size alpha of what is shown: the union, or the selected object."""
    r = s.result
    assert r is not None
    objects = getattr(r, "objects", [])
    if s.view is not None and 0 <= s.view < len(objects):
        return objects[s.view].alpha
    return r.alpha


def preview_alpha(s: TabSession) -> np.ndarray:
    """:func:`view_alpha` at preview size (kept per view until the next result)."""
    if s.view not in s.preview_alphas:
        img = preview_of(s)
        s.preview_alphas[s.view] = shrink(view_alpha(s), size=(img.shape[1], img.shape[0]))
    return s.preview_alphas[s.view]


def _save_preview(path: Path, array: np.ndarray) -> str:
    from PIL import Image

    if array.ndim == 3 and array.shape[2] == 3:
        path = path.with_suffix(".jpg")
        Image.fromarray(array).save(path, "JPEG", quality=90)
    else:
        from semat.io.images import save_png

        save_png(path.with_suffix(".png"), array, compress_level=1)
        path = path.with_suffix(".png")
    return str(path)


def composite_preview(s: TabSession, background: compose.Background, bg_image: np.ndarray | None = None,
                      out_dir: Path | None = None) -> str:
    """The composite at preview size (the estimated foreground once the downloads step made it,
    the image's own colours before)."""
    img = preview_of(s)
    a = preview_alpha(s)
    bgi = None if bg_image is None else shrink(bg_image, max(img.shape[:2]) * 2)
    if background.kind == "blur" and background.blur_sigma:  # the same look as the full-size blur
        k = max(img.shape[:2]) / max(view_alpha(s).shape[:2])
        background = replace(background, blur_sigma=max(0.3, float(background.blur_sigma) * k))
    fg = s.preview_fg if s.preview_fg is not None else img
    out = blend_preview(img, a, background, bgi, fg)
    tag = "all" if s.view is None else f"obj{s.view + 1}"
    return _save_preview((out_dir or L.new_output_dir()) / f"{s.stem}_composite_{tag}_{_bg_name(background)}", out)


@functools.lru_cache(maxsize=4)
def _checker(h: int, w: int, cell: int, colours: tuple | None = None) -> np.ndarray:
    out = compose.checkerboard(h, w, cell) if colours is None else compose.checkerboard(h, w, cell, colours)
    out.setflags(write=False)
    return out


def blend_preview(image: np.ndarray, alpha: np.ndarray, background: compose.Background,
                  bg_image: np.ndarray | None, foreground: np.ndarray) -> np.ndarray:
    """``composite()`` for the screen: one vectorised blend (cv2) of the whole preview instead of
    the exact per-pixel path the files use (a preview may differ from the file by a rounding).
    Always opaque (a JPEG): a transparent background is shown on a dark checker pattern."""
    import cv2

    h, w = image.shape[:2]
    if background.kind == "transparent":  # on a dark pattern, unlike the light Checkerboard background
        bg = _checker(h, w, 12, ((43, 46, 51), (59, 63, 70)))
    elif background.kind == "checker":
        bg = _checker(h, w, background.checker_size)
    else:
        bg = compose.background_array(background, image, bg_image)
    a = np.ascontiguousarray(alpha, dtype=np.float32)
    return cv2.blendLinear(np.ascontiguousarray(foreground), np.ascontiguousarray(bg), a, 1.0 - a)


def previews(s: TabSession, background: compose.Background, bg_image: np.ndarray | None = None,
             with_mask: bool = False) -> tuple[str | None, str, str]:
    """(mask, alpha, composite) previews of the current view (mask only when asked)."""
    d = L.new_output_dir()
    img = preview_of(s)
    size = (img.shape[1], img.shape[0])
    tag = "all" if s.view is None else f"obj{s.view + 1}"
    alpha = compose.alpha_to_png8(preview_alpha(s))
    alpha_path = _save_preview(d / f"{s.stem}_alpha_{tag}", alpha)
    mask_path = None
    if with_mask:
        assert s.result is not None
        mask_path = _save_preview(d / f"{s.stem}_mask_{tag}", shrink(
            (np.asarray(s.result.mask) > 0).astype(np.uint8) * 255, size=size))
    return mask_path, alpha_path, composite_preview(s, background, bg_image, d)


def mask_preview(result: MatteResult, max_side: int = 1024) -> np.ndarray:
    """The union's coarse mask, small, for the canvas overlay (white = object)."""
    return shrink((np.asarray(result.mask) > 0).astype(np.uint8) * 255, max_side)


# --------------------------------------------------------------------- full-size files


def full_foreground(s: TabSession) -> np.ndarray:
    """The foreground of the union at full size (estimated once per result; reused per object,
    like the ZIP does). Also refreshes the preview-size foreground."""
    r = s.result
    assert r is not None
    if s.foreground is None:
        s.foreground = compose.estimate_foreground(r.image, r.alpha)
        s.preview_fg = shrink(s.foreground, size=(preview_of(s).shape[1], preview_of(s).shape[0]))
    return s.foreground


def download_files(s: TabSession, background: compose.Background, bg_image: np.ndarray | None = None
                   ) -> dict[str, str]:
    """Full-size RGBA, alpha, composite (on ``background``) and layers ZIP of the current view."""
    from semat.io.images import save_png

    r = s.result
    assert r is not None and isinstance(r, MatteResult)
    view = s.view if s.view is not None and 0 <= s.view < len(r.objects) else None
    tag = "" if view is None else f"_object{view + 1}"
    stem = s.stem + tag
    out: dict[str, str] = {}
    fg = full_foreground(s)
    alpha = r.alpha if view is None else r.objects[view].alpha
    keys = {"rgba": ("rgba", view), "alpha": ("alpha", view), "zip": ("zip", None),
            "composite": ("composite", view, _bg_key(background, bg_image))}
    d = L.new_output_dir() if any(k not in s.files for k in keys.values()) else None
    for name, key in keys.items():
        path = s.files.get(key)
        if path is None or not Path(path).is_file():
            assert d is not None
            if name == "rgba":
                path = str(save_png(d / f"{stem}_rgba.png", compose.rgba(r.image, alpha, fg)))
            elif name == "alpha":
                path = str(compose.save_alpha_png(d / f"{stem}_alpha.png", alpha))
            elif name == "zip":
                path = str(compose.write_zip(r, d / f"{s.stem}_layers.zip", foreground=fg,
                                             manifest_extra={"app": "semat-space", "test_mode": test_mode()}))
            else:
                comp = compose.composite(r.image, alpha, background, bg_image=bg_image, foreground=fg)
                path = str(save_png(d / f"{stem}_composite_{_bg_name(background)}.png", comp, compress_level=1))
            s.files[key] = path
        out[name] = path
    return out


# ---------------------------------------------------------------- named API (one shot)


@dataclass
class Rendered:
    """The full-size files of one result (paths) and its timings line."""

    alpha: str
    composite: str | None
    rgba: str
    zip: str
    info: str


def composite_path(s: TabSession, background: compose.Background, bg_image: np.ndarray | None = None,
                   out_dir: Path | None = None) -> str:
    """Blend the session's result onto ``background`` at full size and write it as a PNG."""
    from semat.io.images import save_png

    r = s.result
    assert r is not None
    if s.foreground is None:
        s.foreground = compose.estimate_foreground(r.image, r.alpha)
    out = compose.composite(r.image, r.alpha, background, bg_image=bg_image, foreground=s.foreground)
    out_dir = out_dir or L.new_output_dir()
    path = out_dir / f"{s.stem}_composite_{_bg_name(background)}.png"
    save_png(path, out, compress_level=1)
    return str(path)


def render(s: TabSession, result: MatteResult, background: compose.Background, bg_image: np.ndarray | None = None,
           extra_info: dict[str, Any] | None = None) -> Rendered:
    """Write every full-size file of a result at once (the named API endpoints)."""
    from semat.io.images import save_png

    s.result, s.foreground = result, None
    d = L.new_output_dir()
    stem = s.stem
    t0 = time.perf_counter()
    alpha_path = compose.save_alpha_png(d / f"{stem}_alpha.png", result.alpha)
    s.alpha_sha = L.file_sha(alpha_path)
    s.foreground = compose.estimate_foreground(result.image, result.alpha)
    rgba_path = save_png(d / f"{stem}_rgba.png", compose.rgba(result.image, result.alpha, s.foreground))
    zip_path = compose.write_zip(result, d / f"{stem}_layers.zip", foreground=s.foreground,
                                 manifest_extra={"app": "semat-space", "test_mode": test_mode()})
    comp = composite_path(s, background, bg_image, d)
    timings = dict(result.timings or {})
    timings["export"] = time.perf_counter() - t0
    info = L.timings_markdown(timings, device_label(result.device_label), extra_info)
    return Rendered(str(alpha_path), comp, str(rgba_path), str(zip_path), info)


def info_markdown(result: MatteResult, extra: dict[str, Any], shown_s: float | None = None) -> str:
    """Device and per-stage timings of a run; ``total`` is the pipeline's own time (model and
    detection), ``first result`` the wait from the click to the previews."""
    timings = {k: v for k, v in (result.timings or {}).items() if k != "total"}
    if "total" in (result.timings or {}):
        timings["pipeline total"] = result.timings["total"]
    if shown_s is not None:
        timings["to previews"] = shown_s
    info = L.timings_markdown(timings, device_label(result.device_label), extra)
    info += ("\n\n*pipeline total*: the server's model step (hashing, detection, SEMat, union)"
             + ("; *to previews*: from the click's arrival to the previews" if shown_s is not None else "")
             + "; the full-size downloads are made after the previews.")
    if test_mode():  # what the server received, in working-image pixels (the browser tests read it)
        p = result.prompt
        received = {"boxes": [[round(float(v), 1) for v in b] for b in p.boxes],
                    "points": [[round(float(x), 1), round(float(y), 1), int(lab)] for x, y, lab in p.points],
                    "detections": [[*(round(float(v), 1) for v in d.box), d.label] for d in p.detections],
                    "text": p.text, "size": [int(result.image.shape[1]), int(result.image.shape[0])]}
        info += (f"\n\n`test mode` inference calls so far: {json.dumps(SERVICES.calls)} · prompt received: "
                 f"`{json.dumps(received)}`")
    return info


def api_info(result: MatteResult, extra: dict[str, Any]) -> dict[str, Any]:
    """The info JSON of the named API endpoints."""
    return {
        "objects": [{"box": [float(v) for v in o.box], "label": o.label,
                     "score": None if o.score is None else float(o.score), "source": o.source}
                    for o in result.objects],
        "variant": result.variant,
        "device": device_label(result.device_label),
        "timings_s": {k: round(float(v), 4) for k, v in (result.timings or {}).items()},
        "notices": list(result.notices or []),
        "test_mode": test_mode(),
        **extra,
    }
