"""The prompt canvas inside the real app (test mode), on a 4000×3000 photo shown downscaled.

Mouse gestures (drag, move, resize, delete, ± points, undo/redo) and touch; each test asserts the
prompt the server received, in ORIGINAL pixels (test mode prints it in the info line; one test
also reads the layers ZIP's manifest). Also: a drag never clears the photo, editing makes no
request, the status line's stages, Cancel, and the time to the first result.
"""

from __future__ import annotations

import json
import re
import time
import zipfile

import pytest
import test_ui_browser as ui
from test_ui_browser import TIMEOUT_MS, keyboard, open_image, received, status, wait_status, watch_status

server, browser = ui.server, ui.browser  # the same fixtures (one app per test module)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

W, H = 4000, 3000


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from semat.app.canvas_demo import synthetic_photo

    path = tmp_path_factory.mktemp("photo") / "garden.jpg"
    synthetic_photo(W, H).save(path, "JPEG", quality=90)
    return path


@pytest.fixture
def page(server, browser, photo):
    ctx, pg, errors = ui.open_app(server, browser, viewport={"width": 1400, "height": 1000})
    open_image(pg, photo)
    yield pg
    ctx.close()
    assert not errors, errors


class Geo:
    """ORIGINAL image pixels → viewport coordinates of the canvas's picture."""

    def __init__(self, pg):
        pg.locator("#cut-canvas .pc-frame").scroll_into_view_if_needed()
        r = pg.evaluate("""() => { const r = document.querySelector('#cut-canvas .pc-svg').getBoundingClientRect();
                                    return {x: r.x, y: r.y, w: r.width, h: r.height}; }""")
        self.x, self.y, self.k = r["x"], r["y"], r["w"] / W
        assert r["w"] < W / 3, "the 4000 px photo is shown downscaled"
        self.tol = 2.5 / self.k  # 2.5 screen px, in original pixels

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        return self.x + x * self.k, self.y + y * self.k


def drag(pg, g: Geo, a, b, steps: int = 8) -> None:
    pg.mouse.move(*g(*a))
    pg.mouse.down()
    pg.mouse.move(*g(*b), steps=steps)
    pg.mouse.up()


def close(got, want, tol) -> bool:
    return len(got) == len(want) and all(len(a) == len(b) and all(abs(float(x) - float(y)) <= tol for x, y in
                                                                   zip(a, b)) for a, b in zip(got, want))


def matte(pg, until: str = r"matted in") -> tuple[str, float]:
    watch_status(pg)
    t0 = time.perf_counter()
    pg.click("#cut-run")
    text = wait_status(pg, until)
    return text, time.perf_counter() - t0


def test_mouse_gestures_reach_the_server_in_original_pixels(page, tmp_path):
    pg, g = page, Geo(page)
    drag(pg, g, (400, 300), (1600, 2550))            # box 1
    drag(pg, g, (2200, 600), (3200, 2250))           # box 2
    drag(pg, g, (3300, 2500), (3800, 2900))          # box 3
    pg.mouse.click(*g(2200, 1400))                   # select box 2 by its left edge ...
    drag(pg, g, (2700, 1400), (3000, 1550))          # ... and move it by (+300, +150)
    chip = pg.locator("#cut-canvas .pc-box[data-index='0'] .pc-chip").bounding_box()
    pg.mouse.click(chip["x"] + chip["width"] / 2, chip["y"] + chip["height"] / 2)
    drag(pg, g, (1600, 2550), (1800, 2700))          # resize box 1 by its corner
    pg.mouse.click(*g(3550, 2500))                   # select box 3, delete it
    pg.keyboard.press("Delete")
    pg.mouse.click(*g(2000, 200))                    # + point
    pg.mouse.click(*g(3000, 2800), button="right")   # − point
    pg.mouse.click(*g(1000, 1500))                   # + point inside box 1
    pg.click("#cut-canvas [data-act='undo']")        # undo it ...
    pg.click("#cut-canvas [data-act='undo']")
    pg.click("#cut-canvas [data-act='redo']")        # ... and redo one: the − point is back
    assert pg.locator("#cut-canvas .pc-img").evaluate("i => i.complete && i.naturalWidth > 0")
    want_boxes = [[400, 300, 1800, 2700], [2500, 750, 3500, 2400]]
    want_points = [[2000, 200, 1], [3000, 2800, 0]]
    matte(pg)
    got = received(pg)
    assert got["size"] == [W, H]
    assert close(got["boxes"], want_boxes, g.tol), got
    assert close(got["points"], want_points, g.tol), got
    assert got["detections"] == [] and got["text"] is None
    # the layers ZIP (full size) records the same prompt; it is written after the preview (test
    # mode's noise mattes make that the slowest case: the whole 12 MP frame is soft)
    pg.wait_for_function("() => !document.querySelector('#cut-dl-zip').disabled", timeout=480_000)
    with pg.expect_download() as dl:
        pg.click("#cut-dl-zip")
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
    assert manifest["image_size"] == {"width": W, "height": H}
    assert close(manifest["prompt"]["boxes"], want_boxes, g.tol)
    assert close(manifest["prompt"]["points"], want_points, g.tol)
    # after the matte the coarse mask is over the picture; the legend names the objects by their
    # canvas numbers and picks one (clicking a box does too: tests/test_ui_browser.py)
    pg.wait_for_function("() => getComputedStyle(document.querySelector('#cut-canvas .pc-mask')).display === 'block'")
    watch_status(pg)
    pg.locator("#cut-objects").get_by_text("#2 box 2").click()
    assert "box 2" in wait_status(pg, "Showing")


def test_touch_at_phone_size(server, browser, photo):
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=3, is_mobile=True,
                              has_touch=True)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    try:
        pg.goto(server.url)
        pg.wait_for_selector("#cut-canvas .pc-root")
        open_image(pg, photo)
        g = Geo(pg)
        cdp = pg.context.new_cdp_session(pg)

        def touch(kind, x=0.0, y=0.0):
            pts = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1, "radiusX": 2, "radiusY": 2, "force": 1}]
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": pts})

        (x0, y0), (x1, y1) = g(800, 700), g(2600, 2400)
        touch("touchStart", x0, y0)
        for i in range(1, 11):
            touch("touchMove", x0 + (x1 - x0) * i / 10, y0 + (y1 - y0) * i / 10)
        touch("touchEnd")
        pg.touchscreen.tap(*g(3400, 600))
        pg.tap("#cut-canvas [data-mode='neg']")
        pg.touchscreen.tap(*g(3400, 2700))
        pg.locator("#cut-run").scroll_into_view_if_needed()
        try:
            matte(pg)
        except Exception:
            pg.screenshot(path="/tmp/semat-dev/shots/phone_fail.png", full_page=True)
            print(status(pg), pg.evaluate("() => window.__status"))
            raise
        got = received(pg)
        tol = 1.5 / g.k
        assert close(got["boxes"], [[800, 700, 2600, 2400]], tol), got
        assert close(got["points"], [[3400, 600, 1], [3400, 2700, 0]], tol), got
    finally:
        ctx.close()


def test_a_drag_never_clears_the_photo_and_editing_makes_no_request(page, server):
    keyboard(page)  # the text fields follow the canvas (checked at the end)
    pg, g = page, Geo(page)
    src = pg.locator("#cut-canvas .pc-img").get_attribute("src")
    requests: list[str] = []
    pg.on("request", lambda r: requests.append(f"{r.method} {r.url}")
          if r.url.startswith(server.url) and "/heartbeat" not in r.url else None)
    pg.mouse.move(*g(2000, 1500))                    # a drag released far outside the canvas
    pg.mouse.down()
    pg.mouse.move(900, 990, steps=10)
    pg.mouse.move(5, 5, steps=10)
    pg.mouse.up()
    drag(pg, g, (500, 500), (1500, 1500))
    pg.mouse.click(*g(2500, 2500))
    pg.mouse.click(*g(3000, 2600), button="right")
    pg.mouse.click(*g(500, 1000))                    # select box 1 by its edge, nudge, delete, undo
    pg.keyboard.press("Shift+ArrowRight")
    pg.keyboard.press("Delete")
    pg.keyboard.press("Control+z")
    pg.wait_for_timeout(1500)
    assert requests == [], requests
    assert pg.locator("#cut-canvas .pc-img").get_attribute("src") == src
    assert pg.locator("#cut-canvas .pc-img").evaluate("i => i.complete && i.naturalWidth > 0")
    assert pg.locator("#cut-canvas .pc-box").count() >= 1
    assert pg.input_value("#cut-boxes textarea").strip(), "the text fields follow the canvas, in the browser"


def test_status_line_stages_busy_button_and_first_result_time(page):
    pg, g = page, Geo(page)
    drag(pg, g, (450, 350), (1650, 2600))  # not matted before (the pipeline caches objects)
    watch_status(pg)
    t0 = time.perf_counter()
    pg.click("#cut-run")
    pg.wait_for_function("() => document.querySelector('#cut-run').disabled", timeout=5000)  # busy: no double submit
    wait_status(pg, r"matted in")
    first = time.perf_counter() - t0
    seen = pg.evaluate("() => window.__status['#cut-status']")
    stages = [next(i for i, t in enumerate(seen) if re.search(p, t))
              for p in (r"^Matting…", r"matted in .*Preparing full-size downloads")]
    assert stages == sorted(stages), seen
    assert not pg.locator("#cut-run").is_disabled(), "the button is back once the preview is shown"
    assert pg.locator("#cut-dl-rgba").is_disabled(), "downloads come on when their files are written"
    assert pg.locator("#cut-alpha img").evaluate("i => Math.max(i.naturalWidth, i.naturalHeight)") <= 2048
    info = pg.locator("#cut-info").inner_text()
    model = sum(float(v) for v in re.findall(r"(?:semat|load_model|detect) (\d+\.\d+) s", info))
    print(f"\n12 MP: first result on screen {first:.2f} s (model {model:.2f} s, ratio {first / max(model, 1e-3):.2f})")
    assert pg.locator("#cut-alpha .progress-bar, #cut-composite .progress-bar").count() == 0


def test_cancel_gives_the_buttons_back(page):
    pg, g = page, Geo(page)
    for i in range(8):  # enough objects that the model step outlasts the click on Cancel
        drag(pg, g, (100 + 450 * i, 300), (500 + 450 * i, 2500))
    watch_status(pg)
    pg.click("#cut-run")
    pg.wait_for_function("() => !document.querySelector('#cut-cancel').disabled")
    pg.click("#cut-cancel")
    wait_status(pg, "Cancelled")
    assert not pg.locator("#cut-run").is_disabled() and pg.locator("#cut-cancel").is_disabled()
    # A stage sent just before Cancel landed may still arrive after it; the stopped run then says
    # "Cancelled" again at once (within its 0.2 s poll), and no later stage or result follows.
    pg.wait_for_timeout(1000)
    pg.wait_for_function("() => document.querySelector('#cut-status').innerText.includes('Cancelled')",
                         timeout=3000)
    pg.wait_for_timeout(2500)  # longer than one object takes in test mode
    assert "Cancelled" in status(pg), pg.evaluate("() => window.__status['#cut-status']")
    assert pg.locator("#cut-canvas .pc-box").count() == 8, "the prompt is kept"
