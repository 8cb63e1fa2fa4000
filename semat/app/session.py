"""Per-browser-tab state: the working image, its preview, the last result and its files.

The page never shows the working image itself: it shows a preview (at most
:data:`PREVIEW_SIDE` px on the long side) and every overlay is drawn by the browser. Full-size
files are written only for the download buttons (:mod:`semat.app.render`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semat.app import editor as L
from semat.errors import ImageInputError
from semat.inference.detect import Detection
from semat.pipeline import MatteResult

#: Longest side of everything the page shows (canvas picture, alpha, composite).
PREVIEW_SIDE = 2048


@dataclass
class Shown:
    """Image + alpha rebuilt from what the page shows (kept for callers of the old API)."""

    image: np.ndarray
    alpha: np.ndarray


@dataclass
class TabSession:
    """State of one app tab in one browser tab (kept in gr.State, dropped after an hour idle)."""

    image: np.ndarray | None = None
    name: str = "image"
    image_sha: str | None = None  # sha1 of the uploaded file the working image came from
    shown_sha: str | None = None  # sha1 of the file the input component shows (our rendering)
    detections: list[Detection] = field(default_factory=list)
    detect_key: tuple | None = None
    result: MatteResult | Shown | None = None
    foreground: np.ndarray | None = None  # full-size estimate (downloads); None until asked for
    alpha_sha: str | None = None
    stem: str = "image"
    preview: np.ndarray | None = None  # the image at preview size (what the page shows)
    preview_src: str | None = None  # the JPEG the canvas shows
    preview_fg: np.ndarray | None = None  # foreground at preview size (None: the image's colours)
    preview_alphas: dict[int | None, np.ndarray] = field(default_factory=dict)  # per view, at preview size
    view: int | None = None  # the object shown (index into result.objects); None = the union
    box_objects: dict[int, int] = field(default_factory=dict)  # canvas box index -> object index
    files: dict[tuple, str] = field(default_factory=dict)  # (kind, view, background) -> full-size file
    token: int = 0  # bumped by every new result, so a late background job can tell it is stale
    last_seconds: float | None = None  # time of the last Matte, for the status line's estimate
    notices: list[str] = field(default_factory=list)  # the result's notices (a fresh image: its loading's)
    run: int = 0  # bumped by every Matte/Detect press (the run's first, light step)
    cancelled_run: int = -1  # the run Cancel was pressed in

    def reset_outputs(self) -> None:
        self.result, self.foreground, self.alpha_sha = None, None, None
        self.preview_fg, self.view, self.box_objects, self.files = None, None, {}, {}
        self.preview_alphas = {}
        self.token += 1

    def cancelled(self, run: int) -> bool:
        """Whether Cancel was pressed in ``run`` (a value of :attr:`run` taken when a step began)."""
        return self.cancelled_run == run


class Cancelled(Exception):
    """Raised in a run step whose run was cancelled, before it changes the tab's state."""


def check_run(s: TabSession, run: int) -> None:
    """Raise :class:`Cancelled` if Cancel was pressed in ``run`` (a step calls it before it mutates ``s``)."""
    if s.cancelled(run):
        raise Cancelled


def session(s: Any) -> TabSession:
    return s if isinstance(s, TabSession) else TabSession()


def load_into(s: TabSession, path: str) -> list[str]:
    from semat.io.images import load_image, max_megapixels_from_env

    loaded = load_image(path, max_megapixels=max_megapixels_from_env(), name=Path(path).name)
    s.image, s.name = loaded.rgb, loaded.name
    s.stem = L.safe_stem(loaded.name)
    s.image_sha = L.file_sha(path)
    s.shown_sha = s.image_sha
    s.detections, s.detect_key = [], None
    s.preview, s.preview_src = None, None
    s.reset_outputs()
    return list(loaded.notices)


def preview_of(s: TabSession) -> np.ndarray:
    """The working image at preview size (made once per image)."""
    assert s.image is not None
    if s.preview is None:
        s.preview = shrink(s.image, PREVIEW_SIDE)
    return s.preview


def shrink(a: np.ndarray, max_side: int = PREVIEW_SIDE, size: tuple[int, int] | None = None) -> np.ndarray:
    """``a`` (HxW or HxWxC) resized by area averaging to ``size`` (W, H) or to fit ``max_side``."""
    import cv2

    h, w = a.shape[:2]
    if size is None:
        k = min(1.0, max_side / max(h, w))
        size = (max(1, round(w * k)), max(1, round(h * k)))
    if size == (w, h):
        return a
    return cv2.resize(a, size, interpolation=cv2.INTER_AREA)


def resolve_image(s: TabSession, path: str | None) -> tuple[np.ndarray, list[str]]:
    """The working image for what an input component shows now (Auto human's gr.Image).

    The component shows either our own rendering of ``s.image`` or a new file (an upload or an
    example the user clicked); only the latter is (re)loaded.
    """
    if not path:
        raise ImageInputError("Upload an image first (drag a photo onto the image box or click an example)")
    sha = L.file_sha(path)
    if s.image is not None and sha is not None and sha in (s.shown_sha, s.image_sha):
        return s.image, []
    notices = load_into(s, path)
    assert s.image is not None
    return s.image, notices


def working_image(s: TabSession) -> np.ndarray:
    """The image the canvas shows (its prompt is in this image's pixels)."""
    if s.image is None:
        raise ImageInputError("Upload an image first: drop a photo on the canvas, use “Open image…”, or click "
                              "an example")
    return s.image


def show(s: TabSession, array: np.ndarray, tag: str) -> str:
    """Write ``array`` as a PNG the page shows and remember its hash."""
    from semat.io.images import save_png

    path = L.new_output_dir() / f"{s.stem}_{tag}.png"
    save_png(path, array, compress_level=1)
    s.shown_sha = L.file_sha(path)
    return str(path)
