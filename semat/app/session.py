"""Per-browser-tab state and the working image behind what the input component shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semat.app import editor as L
from semat.errors import ImageInputError
from semat.inference.detect import Detection
from semat.pipeline import MatteResult


@dataclass
class Shown:
    """Image + alpha rebuilt from what the page shows (e.g. a cached example's outputs)."""

    image: np.ndarray
    alpha: np.ndarray


@dataclass
class TabSession:
    """State of one app tab in one browser tab (kept in gr.State, dropped after an hour idle)."""

    image: np.ndarray | None = None
    name: str = "image"
    image_sha: str | None = None  # sha1 of the uploaded file the working image came from
    shown_sha: str | None = None  # sha1 of the file the input component shows (our rendering)
    editor: L.PromptEditor = field(default_factory=L.PromptEditor)
    detections: list[Detection] = field(default_factory=list)
    detect_key: tuple | None = None
    result: MatteResult | Shown | None = None
    foreground: np.ndarray | None = None
    alpha_sha: str | None = None
    stem: str = "image"

    def reset_outputs(self) -> None:
        self.result, self.foreground, self.alpha_sha = None, None, None


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
    s.editor.corner = None
    s.reset_outputs()
    return list(loaded.notices)


def resolve_image(s: TabSession, path: str | None) -> tuple[np.ndarray, list[str]]:
    """The working image for what the input component shows now.

    The component shows either our own rendering of ``s.image`` (an overlay or the normalised
    upload) or a new file (an upload or an example the user clicked); only the latter is
    (re)loaded, so coordinates stay in the working frame.
    """
    if not path:
        raise ImageInputError("Upload an image first (drag a photo onto the image box or click an example)")
    sha = L.file_sha(path)
    if s.image is not None and sha is not None and sha in (s.shown_sha, s.image_sha):
        return s.image, []
    notices = load_into(s, path)
    assert s.image is not None
    return s.image, notices


def show(s: TabSession, array: np.ndarray, tag: str) -> str:
    """Write ``array`` as the input component's new picture and remember its hash."""
    from semat.io.images import save_png

    path = L.new_output_dir() / f"{s.stem}_{tag}.png"
    save_png(path, array, compress_level=1)
    s.shown_sha = L.file_sha(path)
    return str(path)
