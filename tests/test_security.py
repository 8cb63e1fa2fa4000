"""Security proof of issue 13 against the test-mode app, over raw HTTP (what any caller can send).

* No server path given in any parameter is ever read: a PNG that Gradio itself refuses to serve
  (``/gradio_api/file=`` answers 403, checked here) is passed as every string parameter of every
  endpoint and as the image's FileData path; no result carries its pixels and no message differs
  from the one for an absent path of the same length.
* Absent and unreadable paths get the same message (library and API).
* ``data:`` URLs sent inside the call are held to the byte cap (``SEMAT_MAX_UPLOAD``, set small
  here) and the pixel cap, with the cap's own message.

The bad-input table (``tests/test_bad_inputs.py``) covers the single-message rules per input class;
this file covers what a hostile caller could learn or read.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semat.errors import InputError

SECRET_RGB = (3, 251, 7)  # a colour chelsea.jpg and every test background lack
SECRET_SIZE = (37, 23)  # (w, h): a size no message may mention
MAX_UPLOAD = "100kb"
BOX = "60,40,400,290"
REPO = Path(__file__).resolve().parents[1]


def _paths(root: Path) -> dict[str, Path]:
    """Same-length paths with the same file name: an image, an absent file, and unreadable ones."""
    paths = {k: root / k / "photo.png" for k in ("sec", "abs", "dir", "fif", "u/f", "txt", "emp")}
    for k in ("sec", "abs", "dir", "fif", "txt", "emp", "u"):
        (root / k).mkdir(parents=True)
    Image.new("RGB", SECRET_SIZE, SECRET_RGB).save(paths["sec"])
    paths["dir"].mkdir()  # a folder named like an image
    os.mkfifo(paths["fif"])  # opening it must never block the server
    (root / "u" / "f").write_bytes(b"x")  # so u/f/photo.png lies under a regular file: ENOTDIR
    paths["txt"].write_text("not an image")
    paths["emp"].write_bytes(b"")
    if os.geteuid() != 0:  # root reads through any mode bits; elsewhere add a real EACCES case
        paths["prm"] = root / "prm" / "photo.png"
        paths["prm"].parent.mkdir()
        Image.new("RGB", SECRET_SIZE, SECRET_RGB).save(paths["prm"])
        paths["prm"].chmod(0)
    assert len({len(str(p)) for p in paths.values()}) == 1, {k: str(p) for k, p in paths.items()}
    return paths


def _normalise(message: str, paths: dict[str, Path]) -> str:
    """The message with any path (whole, or clipped by the message's echo limit) as <PATH>."""
    root = str(paths["sec"].parent.parent)
    message = re.sub(re.escape(root) + r"[^\s'\"]*", "<PATH>", message)
    kinds = "|".join(re.escape(str(p.relative_to(root))) for p in paths.values())
    return re.sub(rf"(?:{kinds})(?=[\s'\"]|$)", "<PATH>", message)  # the tail of an echo cut in the middle


# ------------------------------------------------------------------- library (no server)


def test_absent_and_unreadable_paths_read_the_same(tmp_path):
    from semat.io.images import load_image

    paths = _paths(tmp_path)
    messages = {}
    for kind, p in paths.items():
        if kind == "sec":
            continue
        with pytest.raises(InputError) as info:
            load_image(str(p))
        messages[kind] = _normalise(str(info.value), paths)
    assert len(set(messages.values())) == 1, messages


# ------------------------------------------------------------------------ the API, raw HTTP


class Api:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def call(self, api: str, data: list) -> tuple[str, object]:
        """('complete', outputs) or ('error', message), through /gradio_api/call (SSE)."""
        body = json.dumps({"data": data}).encode()
        req = urllib.request.Request(f"{self.url}/gradio_api/call/{api}", body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            event_id = json.loads(r.read())["event_id"]
        with urllib.request.urlopen(f"{self.url}/gradio_api/call/{api}/{event_id}", timeout=600) as r:
            stream = r.read().decode()
        event, payload = None, None
        for line in stream.splitlines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = line.split(":", 1)[1].strip()
        assert event in ("complete", "error"), stream[-2000:]
        value = json.loads(payload) if payload and payload != "null" else None
        if event == "error":
            return "error", value.get("error") if isinstance(value, dict) else str(value)
        return "complete", value

    def images(self, outputs: object) -> list[np.ndarray]:
        """Every PNG/JPEG among the outputs (ZIPs opened, their images read), fetched by URL."""
        import zipfile

        found: list[np.ndarray] = []
        for item in outputs if isinstance(outputs, list) else []:
            if not isinstance(item, dict) or not item.get("url"):
                continue
            status, data = self.get(urllib.parse.urlparse(item["url"]).path)
            assert status == 200, item
            if data[:2] == b"PK":
                with zipfile.ZipFile(io.BytesIO(data)) as zf:
                    found += [np.asarray(Image.open(io.BytesIO(zf.read(n))).convert("RGB"))
                              for n in zf.namelist() if n.endswith(".png")]
            else:
                found.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        return found


def _has_secret(images: list[np.ndarray]) -> bool:
    target = np.array(SECRET_RGB, np.int16)
    return any((np.abs(a.astype(np.int16) - target).max(axis=-1) <= 2).sum() > 20 for a in images)


def _upload(api: Api, path: Path) -> dict:
    """The ordinary way an image arrives: /gradio_api/upload, then its FileData."""
    boundary = "semat-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{path.name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + path.read_bytes() + \
        f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{api.url}/gradio_api/upload", body,
                                 {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        server_path = json.loads(r.read())[0]
    return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def _file_data(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def _data_url(png: bytes) -> dict:
    return {"path": None, "url": "data:image/png;base64," + base64.b64encode(png).decode(),
            "orig_name": "photo.png", "meta": {"_type": "gradio.FileData"}}


def _png_header_only(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")
    ihdr = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


# Every public endpoint with its arguments after the image; each string slot is attacked in turn.
ENDPOINTS = {
    "matte_text": (["cat", 0.0, 0.0, "sam2", "white", 1], [0, 3, 4]),
    "matte_prompts": ([BOX, "", "sam2", "white"], [0, 1, 2, 3]),
    "matte_human": (["white"], [0]),
    "detect": (["cat", 0.0, 0.0], [0]),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    from helpers.app_server import start_app

    pytest.importorskip("gradio_client")
    root = tmp_path_factory.mktemp("secrets")
    paths = _paths(root)
    server = start_app(extra_env={"SEMAT_MAX_UPLOAD": MAX_UPLOAD, "SEMAT_MAX_INPUT_MEGAPIXELS": "4"})
    try:
        yield Api(server.url), paths
    finally:
        server.stop()


@pytest.mark.slow
def test_gradio_itself_refuses_to_serve_the_secret(app):
    api, paths = app
    assert paths["sec"].is_file() and os.access(paths["sec"], os.R_OK)  # the server could read it
    for p in (paths["sec"], paths["abs"]):
        status, body = api.get("/gradio_api/file=" + str(p))
        assert status == 403, (status, body[:200])
    assert api.call("status", [])[0] == "complete"


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_no_string_parameter_reads_a_server_path(app, endpoint):
    api, paths = app
    args, slots = ENDPOINTS[endpoint]
    photo = _upload(api, REPO / "examples" / "chelsea.jpg")
    clean = api.call(endpoint, [photo, *args])
    assert clean[0] == "complete", clean  # the unattacked call works, so an error below is the path's
    for slot in slots:
        answers = {}
        for kind in ("sec", "abs", "dir", "fif"):
            attacked = list(args)
            attacked[slot] = str(paths[kind])
            event, value = api.call(endpoint, [photo, *attacked])
            if event == "complete":
                assert not _has_secret(api.images(value)), (endpoint, slot, kind)
                answers[kind] = ("complete", _normalise(json.dumps(value[-1] if isinstance(value, list) else value),
                                                        paths) if kind == "sec" else None)
            else:
                answers[kind] = ("error", _normalise(str(value), paths))
            text = json.dumps(value)
            assert "37×23" not in text and "37x23" not in text and "23×37" not in text, text[:500]
        events = {k: v[0] for k, v in answers.items()}
        assert len(set(events.values())) == 1, (endpoint, slot, answers)  # no oracle in success vs error
        if events["sec"] == "error":
            assert len({v[1] for v in answers.values()}) == 1, (endpoint, slot, answers)


@pytest.mark.slow
@pytest.mark.parametrize("as_string", [False, True])
def test_the_image_parameter_never_reads_a_server_path(app, as_string):
    """FileData (or a bare string) naming the secret, an absent and unreadable paths: refused by
    Gradio with the same message for each, whatever exists there."""
    api, paths = app
    messages = {}
    for kind in ("sec", "abs", "dir", "fif", "txt"):
        image = str(paths[kind]) if as_string else _file_data(str(paths[kind]))
        event, value = api.call("matte_prompts", [image, BOX, "", "sam2", "white"])
        assert event == "error", (kind, value)
        messages[kind] = _normalise(str(value), paths)
    assert len(set(messages.values())) == 1, messages
    assert api.call("status", [])[0] == "complete"


@pytest.mark.slow
def test_data_urls_over_the_caps_are_refused(app):
    api, _ = app
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)).save(buf, format="PNG")
    big = buf.getvalue()
    assert len(big) > 100 * 1024  # over SEMAT_MAX_UPLOAD=100kb, far under Gradio's own upload cap
    event, message = api.call("matte_human", [_data_url(big), "white"])
    assert event == "error" and "SEMAT_MAX_UPLOAD" in str(message) and "limit" in str(message), message

    event, message = api.call("matte_human", [_data_url(_png_header_only(15_000, 10_000)), "white"])  # 150 MP, 146 B
    assert event == "error" and "safety limit" in str(message) and "150 MP" in str(message), message

    small = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)).save(small, format="PNG")
    event, value = api.call("matte_human", [_data_url(small.getvalue()), "white"])
    assert event == "complete", value  # under both caps, the same route works
    assert api.call("status", [])[0] == "complete"


def test_data_url_file_applies_the_caps_before_decoding(tmp_path, monkeypatch):
    from semat.app.editor import data_url_file
    from semat.errors import ImageInputError

    monkeypatch.setenv("SEMAT_MAX_UPLOAD", MAX_UPLOAD)
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 20, 30)).save(buf, format="PNG")
    url = _data_url(buf.getvalue())["url"]
    path = Path(data_url_file(url, tmp_path, "photo.png"))
    assert path.read_bytes() == buf.getvalue() and path.is_relative_to(tmp_path)  # as sent, no re-encoding
    assert data_url_file(url, tmp_path, "photo.png") == str(path)  # the same image: the same file
    too_big = "data:image/png;base64," + "A" * (200 * 1024 * 4 // 3)
    with pytest.raises(ImageInputError, match="SEMAT_MAX_UPLOAD"):
        data_url_file(too_big, tmp_path)
    with pytest.raises(ImageInputError, match="safety limit"):
        data_url_file(_data_url(_png_header_only(15_000, 10_000))["url"], tmp_path)
    with pytest.raises(ImageInputError):
        data_url_file("data:text/plain;base64,aGVsbG8=", tmp_path)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["photo.png"]  # refusals write nothing
