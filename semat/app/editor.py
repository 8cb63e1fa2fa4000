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

def gradio_cache_dir() -> Path:
    """Gradio's cache, the folder it serves files from and copies every returned file into
    (``gradio.utils.get_upload_folder``, read here without importing gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def outputs_root() -> Path:
    """The app's result files: ``SEMAT_UI_OUTPUT_DIR``, else a folder inside Gradio's cache. A file
    returned from inside that cache is served where it is; from anywhere else Gradio stores a
    second copy of it (each 12 MP result written twice: 99 MB)."""
    from semat.settings import Settings

    configured = Settings.from_env().output_dir
    root = Path(configured) if configured else gradio_cache_dir() / "semat-space"
    root.mkdir(parents=True, exist_ok=True)
    return root


def new_output_dir(ttl_s: float = 3600.0, max_bytes: int | None = None, grace_s: float = 10.0) -> Path:
    """A fresh folder for one request's files. First the output folder is trimmed: request folders
    older than ``ttl_s`` go, then the oldest until the rest fits in ``max_bytes``
    (``SEMAT_UI_OUTPUT_MAX_MB``), sparing those written in the last ``grace_s`` seconds, whose
    files a browser may still be fetching."""
    from semat.settings import Settings

    root = outputs_root()
    if max_bytes is None:
        max_bytes = int(Settings.from_env().output_max_mb * 1e6)
    trim_outputs(root, ttl_s, max_bytes, grace_s)
    d = root / uuid.uuid4().hex[:16]
    d.mkdir()
    return d


def trim_outputs(root: Path, ttl_s: float, max_bytes: int, grace_s: float = 10.0) -> int:
    """Delete whole request folders under ``root``: older than ``ttl_s``, then oldest first while
    the total exceeds ``max_bytes`` (never one younger than ``grace_s``). Returns bytes freed."""
    now = time.time()
    folders: list[tuple[float, int, Path]] = []
    for entry in os.scandir(root):
        try:
            if not entry.is_dir(follow_symlinks=False):
                continue
            size, newest = 0, entry.stat(follow_symlinks=False).st_mtime
            for f in os.scandir(entry.path):
                st = f.stat(follow_symlinks=False)
                size += st.st_size
                newest = max(newest, st.st_mtime)
            folders.append((newest, size, Path(entry.path)))
        except OSError:
            continue
    folders.sort()
    total = sum(size for _, size, _ in folders)
    freed = 0
    for mtime, size, path in folders:
        age = now - mtime
        if age <= ttl_s and (total <= max_bytes or age < grace_s):
            continue
        shutil.rmtree(path, ignore_errors=True)
        total -= size
        freed += size
    return freed


def data_url_file(url: str, cache_dir: str | os.PathLike, name: str | None = None) -> str:
    """An image sent as a ``data:`` URL inside the call, written as sent to a file in Gradio's cache,
    once the app's limits pass: the byte cap (``SEMAT_MAX_UPLOAD``, on the base64 length before
    decoding) and the pixel cap (from the header, before the pixels are decoded). Left to Gradio,
    such an image is fully decoded and re-encoded as WebP first, with neither limit, and the
    smaller re-encoding then passed the byte cap (issue 13 M1). Raises ``ImageInputError``."""
    import base64
    import mimetypes

    from semat.io.images import load_image_data_url

    label = safe_stem(name) if name else "image"
    load_image_data_url(url, name=name or label)  # every limit, with its own message
    header, payload = url[5:url.find(",")], url[url.find(",") + 1:]
    data = base64.b64decode("".join(payload.split()))
    media = header.split(";")[0].strip().lower()
    ext = {"image/jpeg": ".jpg"}.get(media) or mimetypes.guess_extension(media) or ".img"
    d = Path(cache_dir) / hashlib.sha256(data).hexdigest()[:32]
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{label}{ext}"
    if not path.is_file():
        tmp = path.with_name(f".{uuid.uuid4().hex}{ext}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return str(path)


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
