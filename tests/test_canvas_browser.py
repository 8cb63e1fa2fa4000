"""PromptCanvas in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

The standalone demo (:func:`semat.app.canvas.demo`, ``python -m semat.app.canvas``) runs in a
subprocess on 127.0.0.1: a synthetic 4000×3000 photo shown downscaled, the canvas, Boxes/Points
text fields and a Matte button that echoes the prompt the server received. Every assertion on
coordinates is in ORIGINAL image pixels. Screenshots, when ``SEMAT_SCREENSHOTS=dir`` is set, go
to that folder (never into the repository).
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.app_server import REPO, free_port
from PIL import Image

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("SEMAT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-extensions"]
TIMEOUT_MS = 60_000
W, H = 4000, 3000
TOL = 8.0  # original px; one CSS px on screen is about 4.3 original px at 1280 px wide
DELAY_S = 1.0  # the demo's Matte takes this long, so a test can edit while it runs


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium package")
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="semat-canvas-test-"))
    env = dict(os.environ, GRADIO_SERVER_NAME="127.0.0.1", GRADIO_SERVER_PORT=str(port),
               GRADIO_ANALYTICS_ENABLED="False", SEMAT_CANVAS_DEMO_DELAY=str(DELAY_S), GRADIO_TEMP_DIR=str(work / "gradio"), PYTHONUNBUFFERED="1",
               TMPDIR=str(work), PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    log_path = work / "demo.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "semat.app.canvas"], cwd=work, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    t0 = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"demo exited with {proc.returncode}:\n{log_path.read_text(errors='replace')[-4000:]}")
            if time.monotonic() - t0 > 120:
                pytest.fail(f"demo did not answer in 120 s:\n{log_path.read_text(errors='replace')[-4000:]}")
            try:
                with urllib.request.urlopen(url + "config", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.3)
        print(f"\ncanvas demo startup: {time.monotonic() - t0:.1f} s")
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def _open(browser, url: str, **ctx_args):
    ctx = browser.new_context(**ctx_args)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(url)
    pg.wait_for_selector("#canvas .pc-root")
    pg.click("#load")
    pg.wait_for_function(
        """() => { const s = document.querySelector('#canvas .pc-svg'), i = document.querySelector('#canvas .pc-img');
             return s && s.getAttribute('viewBox') === '0 0 4000 3000' && i.complete && i.naturalWidth > 0; }""")
    return ctx, pg, errors


@pytest.fixture
def desktop(server, browser):
    ctx, pg, errors = _open(browser, server, viewport={"width": 1280, "height": 1000})
    yield pg
    assert not errors, errors
    ctx.close()


@pytest.fixture
def phone(server, browser):
    ctx, pg, errors = _open(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=3,
                            is_mobile=True, has_touch=True)
    yield pg
    assert not errors, errors
    ctx.close()


class Geo:
    """Maps ORIGINAL image pixels to viewport coordinates of the canvas's picture."""

    def __init__(self, pg):
        pg.locator("#canvas .pc-frame").scroll_into_view_if_needed()
        r = pg.evaluate("""() => { const r = document.querySelector('#canvas .pc-svg').getBoundingClientRect();
                                    return {x: r.x, y: r.y, w: r.width, h: r.height}; }""")
        self.x, self.y, self.k = r["x"], r["y"], r["w"] / W
        assert r["w"] < W / 2, "the 4000 px photo should be shown downscaled"
        assert abs(r["h"] / r["w"] - H / W) < 0.01

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        return self.x + x * self.k, self.y + y * self.k


def _drag(pg, g: Geo, a: tuple[float, float], b: tuple[float, float], steps: int = 8) -> None:
    pg.mouse.move(*g(*a))
    pg.mouse.down()
    pg.mouse.move(*g(*b), steps=steps)
    pg.mouse.up()


def _rubber_visible_mid_drag(pg, g: Geo, a, b) -> bool:
    pg.mouse.move(*g(*a))
    pg.mouse.down()
    pg.mouse.move(*g(*b), steps=6)
    seen = pg.evaluate("() => !!document.querySelector('#canvas .pc-rubber')")
    pg.mouse.up()
    return seen


def _matte(pg) -> dict:
    old = pg.input_value("#received-json textarea")
    t0 = time.perf_counter()
    pg.click("#matte")
    pg.wait_for_function("old => { const t = document.querySelector('#received-json textarea');"
                         " return t && t.value && t.value !== old; }", arg=old)
    print(f"Matte round trip: {time.perf_counter() - t0:.2f} s")
    return json.loads(pg.input_value("#received-json textarea"))


def _close(got, want, tol: float = TOL) -> bool:
    return len(got) == len(want) and all(
        len(a) == len(b) and all(abs(float(x) - float(y)) <= tol for x, y in zip(a, b)) for a, b in zip(got, want))


def _text_rows(pg, elem: str) -> list[list[float]]:
    text = pg.input_value(f"#{elem} textarea")
    return [[float(v) for v in line.split(",")] for line in text.splitlines() if line.strip()]


def _shoot(pg, name: str) -> None:
    shots = os.environ.get("SEMAT_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        pg.locator("#canvas").screenshot(path=str(Path(shots) / f"{name}.png"))


def _image_state(pg) -> dict:
    return pg.evaluate("""() => { const i = document.querySelector('#canvas .pc-img');
        return {src: i.src, ok: i.complete && i.naturalWidth > 0,
                shown: getComputedStyle(document.querySelector('#canvas .pc-frame')).display !== 'none',
                vb: document.querySelector('#canvas .pc-svg').getAttribute('viewBox')}; }""")


def test_mouse_draw_move_resize_delete_points_undo_redo(desktop):
    pg = desktop
    g = Geo(pg)
    t0 = time.perf_counter()
    assert _rubber_visible_mid_drag(pg, g, (400, 300), (1600, 2550)), "no rubber band while dragging"
    _drag(pg, g, (2200, 600), (3200, 2250))           # box 2
    _drag(pg, g, (3300, 2500), (3800, 2900))          # box 3
    assert pg.locator("#canvas .pc-box").count() == 3
    # select box 2 by its left edge, then drag from inside: moves it by (+300, +150)
    pg.mouse.click(*g(2200, 1400))
    assert pg.locator("#canvas .pc-box.pc-sel").get_attribute("data-index") == "1"
    _drag(pg, g, (2700, 1400), (3000, 1550))
    # select box 1 by its number chip, then drag its bottom-right corner to (1800, 2700)
    chip = pg.locator("#canvas .pc-box[data-index='0'] .pc-chip").bounding_box()
    pg.mouse.click(chip["x"] + chip["width"] / 2, chip["y"] + chip["height"] / 2)
    assert pg.locator("#canvas .pc-box.pc-sel").get_attribute("data-index") == "0"
    _drag(pg, g, (1600, 2550), (1800, 2700))
    # select box 3 by its top edge and delete it with the Delete key; Ctrl+Z brings it back,
    # Ctrl+Shift+Z removes it again
    pg.mouse.click(*g(3550, 2500))
    assert pg.locator("#canvas .pc-box.pc-sel").get_attribute("data-index") == "2"
    pg.keyboard.press("Delete")
    assert pg.locator("#canvas .pc-box").count() == 2
    pg.keyboard.press("Control+z")
    assert pg.locator("#canvas .pc-box").count() == 3
    pg.keyboard.press("Control+Shift+z")
    assert pg.locator("#canvas .pc-box").count() == 2
    # left click: include point; right click: exclude point (no context menu)
    pg.mouse.click(*g(2000, 200))
    pg.mouse.click(*g(3000, 2800), button="right")
    pg.mouse.click(*g(1000, 1500))                    # inside box 1 (selected): still a point
    assert pg.locator("#canvas .pc-point").count() == 3
    # Undo button removes the last point, Redo button restores it; a second undo stays undone
    pg.click("#canvas [data-act='undo']")
    pg.click("#canvas [data-act='undo']")
    assert pg.locator("#canvas .pc-point").count() == 1
    pg.click("#canvas [data-act='redo']")
    assert pg.locator("#canvas .pc-point").count() == 2
    print(f"mouse gestures: {time.perf_counter() - t0:.2f} s")

    want_boxes = [[400, 300, 1800, 2700], [2500, 750, 3500, 2400]]
    want_points = [[2000, 200, 1], [3000, 2800, 0]]
    # the keyboard fields follow the canvas (in the browser, no request)
    assert _close(_text_rows(pg, "boxes"), want_boxes)
    assert _close(_text_rows(pg, "points"), want_points)
    got = _matte(pg)
    assert got["size"] == [W, H]
    assert _close(got["boxes"], want_boxes), got
    assert _close(got["points"], want_points), got
    # after the matte: the coarse mask is overlaid, with an opacity slider and a toggle
    pg.wait_for_function("() => getComputedStyle(document.querySelector('#canvas .pc-mask')).display === 'block'")
    assert abs(float(pg.evaluate("() => getComputedStyle(document.querySelector('#canvas .pc-mask')).opacity")) - 0.45) < 0.02
    pg.locator("#canvas .pc-mask-opacity").fill("80")
    assert abs(float(pg.evaluate("() => getComputedStyle(document.querySelector('#canvas .pc-mask')).opacity")) - 0.8) < 0.02
    _shoot(pg, "canvas_desktop")
    pg.locator("#canvas .pc-mask-toggle").uncheck()
    assert pg.evaluate("() => getComputedStyle(document.querySelector('#canvas .pc-mask')).display") == "none"
    pg.locator("#canvas .pc-mask-toggle").check()
    # clicking an object after a matte selects it: a 'select' event with its index reaches Python
    chip = pg.locator("#canvas .pc-box[data-index='1'] .pc-chip").bounding_box()
    pg.mouse.click(chip["x"] + chip["width"] / 2, chip["y"] + chip["height"] / 2)
    pg.wait_for_function("() => document.querySelector('#picked textarea').value.includes('selected')")
    picked = json.loads(pg.input_value("#picked textarea"))
    assert picked["selected"] == 1 and picked["picked"] is True
    assert _close([picked["box"][:4]], [want_boxes[1]])


def test_typed_prompt_reaches_canvas_and_matte(desktop):
    pg = desktop
    pg.fill("#boxes textarea", "100, 200, 1100, 1700\n2000, 100, 3900, 2900")
    pg.fill("#points textarea", "500, 500, 1")
    pg.locator("#points textarea").press("Tab")      # leaving the field applies it
    pg.wait_for_function("() => document.querySelectorAll('#canvas .pc-box').length === 2"
                         " && document.querySelectorAll('#canvas .pc-point').length === 1")
    _drag(pg, Geo(pg), (1200, 2000), (1800, 2800))   # a drawn box joins the typed ones
    got = _matte(pg)
    assert _close(got["boxes"], [[100, 200, 1100, 1700], [2000, 100, 3900, 2900], [1200, 2000, 1800, 2800]])
    assert _close(got["points"], [[500, 500, 1]], tol=0)


def test_canvas_edits_make_no_request(desktop, server):
    pg = desktop
    g = Geo(pg)
    requests: list[str] = []

    def on_request(req) -> None:
        if req.url.startswith(server) and "/heartbeat" not in req.url:
            requests.append(f"{req.method} {req.url}")

    pg.on("request", on_request)
    _drag(pg, g, (500, 500), (1500, 1500))
    _drag(pg, g, (2000, 500), (3000, 1500))
    pg.mouse.click(*g(1000, 2000))
    pg.mouse.click(*g(2500, 2500), button="right")
    pg.mouse.click(*g(500, 1000))                    # select box 1 by its edge
    _drag(pg, g, (1000, 1000), (1100, 1100))         # move it
    _drag(pg, g, (1600, 1600), (1700, 1700))         # resize it
    pg.keyboard.press("Shift+ArrowRight")            # nudge it by 10 screen px
    pg.keyboard.press("Delete")
    pg.keyboard.press("Control+z")
    pg.click("#canvas [data-mode='neg']")
    pg.mouse.click(*g(3500, 2000))
    pg.click("#canvas [data-act='none']")
    pg.click("#canvas [data-act='all']")
    pg.click("#canvas [data-act='undo']")            # back to all unticked...
    pg.click("#canvas [data-act='redo']")            # ...and ticked again
    pg.wait_for_timeout(1500)
    assert pg.locator("#canvas .pc-box").count() == 2
    assert pg.locator("#canvas .pc-point").count() == 3
    assert _text_rows(pg, "boxes"), "the text fields should follow the canvas"
    assert requests == [], requests
    _matte(pg)                                       # ...and Matte does send the prompt
    assert any("/queue/join" in r or "/run/" in r or "/call/" in r for r in requests), requests


def test_drag_release_and_empty_drop_keep_the_image(desktop):
    pg = desktop
    g = Geo(pg)
    before = _image_state(pg)
    assert before["ok"]
    # a drag that starts on the picture and is released far outside the component
    pg.mouse.move(*g(2000, 1500))
    pg.mouse.down()
    pg.mouse.move(g(2000, 1500)[0], 980, steps=10)
    pg.mouse.move(5, 5, steps=10)
    pg.mouse.up()
    assert _image_state(pg) == before
    # the browser's own drag of the <img> never starts
    prevented = pg.evaluate("""() => { const i = document.querySelector('#canvas .pc-img');
        const e = new DragEvent('dragstart', {bubbles: true, cancelable: true, dataTransfer: new DataTransfer()});
        i.dispatchEvent(e); return e.defaultPrevented && i.draggable === false; }""")
    assert prevented
    # a drop of nothing (no file), and a drop of a non-image file, keep the picture
    for files in ("[]", "[new File(['hello'], 'notes.txt', {type: 'text/plain'})]"):
        pg.evaluate(f"""() => {{ const dt = new DataTransfer(); for (const f of {files}) dt.items.add(f);
            const s = document.querySelector('#canvas .pc-stage');
            s.dispatchEvent(new DragEvent('dragover', {{bubbles: true, cancelable: true, dataTransfer: dt}}));
            s.dispatchEvent(new DragEvent('drop', {{bubbles: true, cancelable: true, dataTransfer: dt}})); }}""")
        pg.wait_for_timeout(300)
        assert _image_state(pg) == before
    assert "image is unchanged" in pg.inner_text("#canvas .pc-status") or "kept" in pg.inner_text("#canvas .pc-status")
    # dropping an image file replaces the picture (uploaded, then loaded by Python)
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 30, 30)).save(buf, "PNG")
    b64 = base64.b64encode(buf.getvalue()).decode()
    pg.evaluate("""b64 => { const bin = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer(); dt.items.add(new File([bin], 'red.png', {type: 'image/png'}));
        document.querySelector('#canvas .pc-stage').dispatchEvent(
            new DragEvent('drop', {bubbles: true, cancelable: true, dataTransfer: dt})); }""", b64)
    pg.wait_for_function("""() => { const i = document.querySelector('#canvas .pc-img');
        return document.querySelector('#canvas .pc-svg').getAttribute('viewBox') === '0 0 640 480'
            && i.complete && i.naturalWidth === 640; }""")
    after = _image_state(pg)
    assert after["ok"] and after["src"] != before["src"]


def _touch(cdp, kind: str, x: float = 0, y: float = 0) -> None:
    pts = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1, "radiusX": 2, "radiusY": 2, "force": 1}]
    cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": pts})


def test_phone_touch_draws_box_and_taps_point(phone):
    pg = phone
    assert pg.evaluate("() => matchMedia('(pointer: coarse)').matches")
    g = Geo(pg)
    # touch-action: none only on the picture; the rest of the page still pans and pinch-zooms
    styles = pg.evaluate("""() => ['.pc-frame', '.pc-stage', '.pc-root', '.pc-toolbar'].map(
        s => getComputedStyle(document.querySelector('#canvas ' + s)).touchAction)""")
    assert styles[0] == "none" and all(s != "none" for s in styles[1:]), styles
    cdp = pg.context.new_cdp_session(pg)
    t0 = time.perf_counter()
    x0, y0 = g(800, 700)
    x1, y1 = g(2600, 2400)
    _touch(cdp, "touchStart", x0, y0)
    for i in range(1, 11):
        _touch(cdp, "touchMove", x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
    _touch(cdp, "touchEnd")
    pg.touchscreen.tap(*g(3400, 600))
    pg.tap("#canvas [data-mode='neg']")             # the mode button serves touch screens
    pg.touchscreen.tap(*g(3400, 2700))
    print(f"touch gestures: {time.perf_counter() - t0:.2f} s")
    assert pg.locator("#canvas .pc-box").count() == 1
    assert pg.locator("#canvas .pc-point").count() == 2
    tol = W / (390 - 16) * 1.5                     # ~1.5 CSS px at this width
    got = _matte(pg)
    assert _close(got["boxes"], [[800, 700, 2600, 2400]], tol), got
    assert _close(got["points"], [[3400, 600, 1], [3400, 2700, 0]], tol), got
    pg.wait_for_function("() => getComputedStyle(document.querySelector('#canvas .pc-mask')).display === 'block'")
    _shoot(pg, "canvas_phone")


def test_detections_are_editable_and_tick_controls_choose_the_prompt(desktop):
    pg = desktop
    pg.click("#detect")
    pg.wait_for_function("() => document.querySelectorAll('#canvas .pc-box').length === 3")
    # the default is the best boxes up to the limit asked for (2 here); the third is dimmed
    assert pg.locator("#canvas .pc-box.pc-off").count() == 1
    assert pg.locator("#canvas .pc-box[data-index='2']").get_attribute("class").count("pc-off") == 1
    labels = pg.locator("#canvas .pc-item-text").all_inner_texts()
    assert labels == ["ball 0.91", "box 0.84", "sun 0.55"]
    assert pg.locator("#canvas .pc-box[data-index='0'] .pc-chip-text").text_content() == "1 ball 0.91"
    want = [[400, 900, 1600, 2550], [2200, 600, 3200, 2250], [3280, 150, 3800, 660]]
    got = _matte(pg)
    assert _close(got["boxes"], want[:2], 1) and got["labels"] == ["ball", "box"] and got["box_index"] == [0, 1]
    pg.click("#canvas [data-act='all']")
    assert _close(_matte(pg)["boxes"], want, 1)
    pg.locator("#canvas .pc-bestn").fill("1")
    pg.click("#canvas [data-act='best']")
    assert _close(_matte(pg)["boxes"], want[:1], 1)
    pg.locator("#canvas .pc-tick[data-index='2']").check()      # tick one more by hand
    pg.click("#canvas [data-act='none']")
    pg.locator("#canvas .pc-tick[data-index='1']").check()
    # a detection can be moved like a drawn box, and keeps its label
    g = Geo(pg)
    pg.mouse.click(*g(2200, 1400))                              # its edge selects it
    _drag(pg, g, (2700, 1400), (2600, 1400))
    got = _matte(pg)
    assert _close(got["boxes"], [[2100, 600, 3100, 2250]]) and got["labels"] == ["box"] and got["box_index"] == [1]
    # Undo goes back step by step (move, 2 ticks, none, best, all), past the detection to the
    # empty canvas
    for _ in range(7):
        pg.click("#canvas [data-act='undo']")
    assert pg.locator("#canvas .pc-box").count() == 0
    assert pg.locator("#canvas [data-act='undo']").is_disabled()


def test_edits_made_while_matte_runs_are_kept(desktop):
    pg = desktop
    g = Geo(pg)
    _drag(pg, g, (400, 300), (1600, 2550))
    old = pg.input_value("#received-json textarea")
    pg.click("#matte")
    _drag(pg, g, (2200, 600), (3200, 2250))                    # while the server works (1 s)
    pg.mouse.click(*g(3500, 2800))
    pg.wait_for_function("old => document.querySelector('#received-json textarea').value !== old", arg=old)
    pg.wait_for_function("() => getComputedStyle(document.querySelector('#canvas .pc-mask')).display === 'block'")
    assert json.loads(pg.input_value("#received-json textarea"))["boxes"] == [[400, 300, 1600, 2550]]
    # the reply (computed from the one-box prompt) brought the mask but did not undo the new edits
    assert pg.locator("#canvas .pc-box").count() == 2
    assert pg.locator("#canvas .pc-point").count() == 1
    got = _matte(pg)
    assert _close(got["boxes"], [[400, 300, 1600, 2550], [2200, 600, 3200, 2250]])
    assert _close(got["points"], [[3500, 2800, 1]])


def test_api_takes_the_canvas_value_as_json(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    value = {"image": {"src": None, "width": 4000, "height": 3000}, "boxes": [[3200, 2250, 2200, 600, "box"]],
             "points": [[10, 20, 0]], "mask": None, "selected": None}
    received, text, _ = client.predict(value, api_name="/matte")
    assert json.loads(text) == received
    assert received["boxes"] == [[2200, 600, 3200, 2250]] and received["points"] == [[10, 20, 0]]
    with pytest.raises(Exception, match=r"finite|number"):
        client.predict({**value, "boxes": [[0, 0, "NaN", 5]]}, api_name="/matte")
