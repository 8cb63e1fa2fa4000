"""Gradio-free logic behind the web app: prompt editing, overlays, output files, background controls.

Everything here is plain Python/NumPy so it can be unit-tested without a browser or a server;
:mod:`semat.app.handlers` wires it to Gradio components. Coordinates are always in the *working frame*:
the image as :func:`semat.io.images.load_image` returned it (EXIF-rotated, possibly downscaled),
which is also the frame the app displays, so a click maps 1:1 onto model coordinates.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from semat.errors import PromptError
from semat.validate import format_boxes, format_points, parse_boxes, parse_points


def _fmt(v: float) -> str:
    return str(round(v)) if abs(v - round(v)) < 1e-6 else f"{v:.1f}"


def _sorted_box(v: list[float]) -> tuple[float, float, float, float]:
    """Two clicked corners in any order → x1 < x2, y1 < y2."""
    x1, y1, x2, y2 = v
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))

CLICK_MODES = ("Box corner", "Positive point", "Negative point")
BACKGROUND_MODES = ("Transparent", "Checkerboard", "Colour", "Image", "Blur")


@dataclass
class PromptEditor:
    """Boxes and points built from clicks, with undo. The text fields are the source of truth:
    every edit goes through :meth:`apply` so typed and clicked prompts stay in one place."""

    boxes_text: str = ""
    points_text: str = ""
    corner: tuple[float, float] | None = None
    history: list[tuple[str, str, tuple[float, float] | None]] = field(default_factory=list)

    def _push(self) -> None:
        self.history.append((self.boxes_text, self.points_text, self.corner))
        del self.history[:-100]

    def sync(self, boxes_text: str | None, points_text: str | None) -> None:
        """Adopt what is in the text fields now (the user may have typed there)."""
        boxes_text, points_text = boxes_text or "", points_text or ""
        if (boxes_text, points_text) != (self.boxes_text, self.points_text):
            self._push()
            self.boxes_text, self.points_text = boxes_text, points_text

    def click(self, x: float, y: float, mode: str) -> str:
        """Apply a click; returns a short status message."""
        if mode == CLICK_MODES[0]:
            self._push()
            if self.corner is None:
                self.corner = (float(x), float(y))
                return f"First corner at ({_fmt(x)}, {_fmt(y)}); click the opposite corner."
            (cx, cy), self.corner = self.corner, None
            box = _sorted_box([cx, cy, float(x), float(y)])
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                self.history.pop()
                self.corner = None
                raise PromptError("the two corners give a box with no area; click two opposite corners")
            boxes = [*parse_boxes(self.boxes_text), box]
            self.boxes_text = format_boxes(boxes)
            return f"Box {len(boxes)} added: {format_boxes([box])}."
        label = 1 if mode == CLICK_MODES[1] else 0
        self._push()
        points = [*parse_points(self.points_text), (float(x), float(y), label)]
        self.points_text = format_points(points)
        kind = "positive" if label else "negative"
        return f"{kind.capitalize()} point {len(points)} at ({_fmt(x)}, {_fmt(y)})."

    def undo(self) -> str:
        if not self.history:
            return "Nothing to undo."
        self.boxes_text, self.points_text, self.corner = self.history.pop()
        return "Undone."

    def clear(self) -> str:
        if self.boxes_text or self.points_text or self.corner:
            self._push()
        self.boxes_text, self.points_text, self.corner = "", "", None
        return "Cleared all boxes and points."

    def prompts(self) -> tuple[list[tuple[float, float, float, float]], list[tuple[float, float, int]]]:
        return parse_boxes(self.boxes_text), parse_points(self.points_text)


# ------------------------------------------------------------------------------- overlays

_BOX_COLOURS = [(0, 200, 255), (255, 170, 0), (170, 0, 255), (0, 220, 120), (255, 80, 160), (80, 120, 255)]


def draw_overlay(image: np.ndarray, boxes=(), points=(), labels: list[str] | None = None,
                 dimmed: set[int] | None = None, corner: tuple[float, float] | None = None) -> np.ndarray:
    """A copy of ``image`` with boxes (numbered, optional labels), points (green positive, red
    negative) and a pending first corner drawn on it."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    t = max(2, round(max(h, w) / 400))
    font = max(0.5, max(h, w) / 1200)
    dimmed = dimmed or set()
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        colour = (150, 150, 150) if i in dimmed else _BOX_COLOURS[i % len(_BOX_COLOURS)]
        p1, p2 = (round(x1), round(y1)), (round(x2), round(y2))
        cv2.rectangle(out, p1, p2, (0, 0, 0), t + 2, cv2.LINE_AA)
        cv2.rectangle(out, p1, p2, colour, t, cv2.LINE_AA)
        text = f"#{i + 1}" + (f" {labels[i]}" if labels and i < len(labels) and labels[i] else "")
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, max(1, t // 2))
        ty = max(th + base + 2, p1[1])
        cv2.rectangle(out, (p1[0], ty - th - base - 2), (p1[0] + tw + 4, ty), colour, -1)
        cv2.putText(out, text, (p1[0] + 2, ty - base), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0),
                    max(1, t // 2), cv2.LINE_AA)
    r = max(4, round(max(h, w) / 160))
    for x, y, lab in points:
        c = (round(x), round(y))
        cv2.circle(out, c, r + 2, (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(out, c, r, (0, 200, 0) if lab else (230, 0, 0), -1, cv2.LINE_AA)
    if corner is not None:
        c = (round(corner[0]), round(corner[1]))
        cv2.drawMarker(out, c, (0, 0, 0), cv2.MARKER_CROSS, 4 * r, t + 2)
        cv2.drawMarker(out, c, (255, 255, 0), cv2.MARKER_CROSS, 4 * r, t)
    return out


# ----------------------------------------------------------------------------- files

def outputs_root() -> Path:
    from semat.settings import Settings

    configured = Settings.from_env().output_dir
    root = Path(configured) if configured else Path(tempfile.gettempdir()) / "semat-space"
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_output_dir(ttl_s: float = 3600.0) -> Path:
    """A fresh folder for one request's files; folders older than ``ttl_s`` are removed."""
    root = outputs_root()
    now = time.time()
    for old in root.iterdir():
        try:
            if old.is_dir() and now - old.stat().st_mtime > ttl_s:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass
    d = root / uuid.uuid4().hex[:16]
    d.mkdir()
    return d


def file_sha(path: str | os.PathLike | None) -> str | None:
    if not path:
        return None
    try:
        h = hashlib.sha1()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()
    except OSError:
        return None


def safe_stem(name: str | None) -> str:
    stem = Path(name or "image").stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._") or "image"
    return stem[:60]


def background_spec(mode: str | None, colour: str | None = None, blur: float | None = None) -> str:
    """The :func:`semat.compose.parse_background` spec for the UI's background controls."""
    mode = (mode or "Transparent").strip().lower()
    if mode.startswith("transparent"):
        return "transparent"
    if mode.startswith("checker"):
        return "checker"
    if mode.startswith("colo"):
        return _colour_hex(colour)
    if mode.startswith("blur"):
        return f"blur:{float(blur)}" if blur and blur > 0 else "blur"
    if mode.startswith("image"):
        return "image"
    raise PromptError(f"unknown background {mode!r}; choose one of {', '.join(BACKGROUND_MODES)}")


def _colour_hex(colour: str | None) -> str:
    """Gradio's ColorPicker gives '#rrggbb' or 'rgba(r, g, b, a)'; return '#rrggbb'."""
    if not colour:
        return "#ffffff"
    c = colour.strip()
    m = re.fullmatch(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)(?:\s*,\s*[\d.]+)?\s*\)", c)
    if m:
        r, g, b = (max(0, min(255, round(float(v)))) for v in m.groups())
        return f"#{r:02x}{g:02x}{b:02x}"
    return c


def timings_markdown(timings: dict[str, float], device_label: str, extra: dict[str, Any] | None = None) -> str:
    """One line of per-stage timings, e.g. ``detect 0.12 s · semat 2.31 s · total 2.50 s``."""
    parts = [f"{k} {v:.2f} s" for k, v in timings.items() if isinstance(v, (int, float))]
    line = " · ".join(parts) if parts else "no timings"
    more = "".join(f" · {k}: {v}" for k, v in (extra or {}).items())
    return f"**Device:** {device_label} · **Timings:** {line}{more}"
