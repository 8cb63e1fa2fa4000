"""Gradio-free helpers behind the web app: output folders, file hashes and names, the background
controls' spec and the timings line. Plain Python, unit-tested without a browser or a server;
prompt drawing lives in the browser (:mod:`semat.app.canvas`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from semat.errors import PromptError

BACKGROUND_MODES = ("Transparent", "Checkerboard", "Colour", "Image", "Blur")


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
