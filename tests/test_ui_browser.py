"""End-to-end tests in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

The app runs in test mode (tiny random-weight models) on 127.0.0.1. No browser is downloaded:
Playwright launches the system Chromium via ``executable_path``. Screenshots, when
``SEMAT_SCREENSHOTS=dir`` is set, go to that folder (never into the repository).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers.app_server import REPO, start_app
from PIL import Image

playwright_sync = pytest.importorskip("playwright.sync_api")
from gradio_client import Client  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = os.environ.get("SEMAT_CHROMIUM", "/usr/bin/chromium")
EXAMPLES = REPO / "examples"
TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium not found at {CHROMIUM}; `make test` installs Debian's chromium package")
    s = start_app()
    print(f"\napp startup (test mode): {s.startup_s:.1f} s")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                    "--disable-background-networking", "--disable-component-update",
                                    "--no-first-run", "--disable-extensions"])
        yield b
        b.close()


@pytest.fixture
def page(server, browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1200}, accept_downloads=True)
    pg = ctx.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.goto(server.url)
    pg.wait_for_selector("#text-run")
    yield pg
    shots = os.environ.get("SEMAT_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(shots) / f"{os.environ.get('PYTEST_CURRENT_TEST', 'x').split(':')[-1].split()[0]}.png"),
                      full_page=True)
    ctx.close()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def _calls(client) -> dict:
    st = client.predict(api_name="/status")
    return {**st["inference_calls"], "semat_forwards": st["semat_forwards"],
            "detector_forwards": st["detector_forwards"]}


def _src(pg, selector: str) -> str:
    return pg.locator(f"{selector} img").first.get_attribute("src") or ""


def _wait_src(pg, selector: str, pattern: str, old: str | None = None) -> str:
    """Wait until the image in ``selector`` has a src matching ``pattern`` (and != old)."""
    pg.wait_for_function(
        """([sel, pat, old]) => { const i = document.querySelector(sel + ' img');
             return i && new RegExp(pat).test(i.src) && i.src !== old && i.complete && i.naturalWidth > 0; }""",
        arg=[selector, pattern, old or ""], timeout=TIMEOUT_MS)
    return _src(pg, selector)


def _upload(pg, elem: str, path: Path) -> None:
    pg.locator(f"#{elem} input[type=file]").set_input_files(str(path))


def _outputs_shown(pg, prefix: str, stem: str) -> dict[str, str]:
    return {name: _wait_src(pg, f"#{prefix}-{name}", rf"{stem}_{name}")
            for name in ("mask", "alpha", "composite")}


def _toast_text(pg) -> str:
    t = pg.locator('[data-testid="toast-body"]').first
    t.wait_for(state="visible", timeout=TIMEOUT_MS)
    return t.inner_text()


def _close_toasts(pg) -> None:
    for b in pg.locator('[data-testid="toast-close"]').all():
        try:
            b.click(timeout=2000)
        except Exception:
            pass


def _click_image(pg, selector: str, fx: float, fy: float) -> tuple[float, float]:
    """Click at fractions of the *displayed picture* (object-fit: contain); returns the expected
    pixel coordinates in the image's natural frame."""
    geo = pg.evaluate(
        """sel => { const i = document.querySelector(sel + ' img'); const r = i.getBoundingClientRect();
             return {x: r.x, y: r.y, w: r.width, h: r.height, nw: i.naturalWidth, nh: i.naturalHeight}; }""",
        selector)
    scale = min(geo["w"] / geo["nw"], geo["h"] / geo["nh"])
    dw, dh = geo["nw"] * scale, geo["nh"] * scale
    ox, oy = geo["x"] + (geo["w"] - dw) / 2, geo["y"] + (geo["h"] - dh) / 2
    pg.mouse.click(ox + fx * dw, oy + fy * dh)
    return fx * geo["nw"], fy * geo["nh"]


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", text)]


def test_test_mode_banner_and_device(page):
    assert "TEST MODE" in page.locator("#test-mode-banner").inner_text()
    assert re.search(r"CPU|CUDA|ZeroGPU", page.locator("#device-label").inner_text())


def test_text_prompt_run_and_recomposite_without_model_call(page, client, tmp_path):
    _upload(page, "text-image", EXAMPLES / "chelsea.jpg")
    _wait_src(page, "#text-image", r"chelsea_input")
    page.locator("#text-prompt textarea").fill("cat")
    page.locator("#text-run").click()
    srcs = _outputs_shown(page, "text", "chelsea")
    # the detection checklist and the overlay on the input show what was matted
    assert page.locator("#text-detections input[type=checkbox]:checked").count() >= 1
    assert "chelsea_detections" in _src(page, "#text-image")
    info = page.locator("#text-info").inner_text()
    assert "Device:" in info and "Timings:" in info and re.search(r"\d+\.\d\d s", info)

    # change the background: the composite changes, no model is called
    before = _calls(client)
    page.locator("#text-bg-mode").get_by_text("Colour", exact=True).click()
    new = _wait_src(page, "#text-composite", r"chelsea_composite", old=srcs["composite"])
    page.locator("#text-bg-mode").get_by_text("Blur", exact=True).click()
    _wait_src(page, "#text-composite", r"composite_blur", old=new)
    assert _calls(client) == before, "recompositing must not call a model"

    # download the RGBA PNG and check it has an alpha channel
    with page.expect_download() as dl:
        page.locator("#text-dl-rgba").click()
    path = tmp_path / dl.value.suggested_filename
    dl.value.save_as(path)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGBA"
        assert im.size == Image.open(EXAMPLES / "chelsea.jpg").size
        assert np.asarray(im)[..., 3].dtype == np.uint8


def test_detect_then_untick(page, client):
    _upload(page, "text-image", EXAMPLES / "coffee.jpg")
    _wait_src(page, "#text-image", r"coffee_input")
    page.locator("#text-prompt textarea").fill("cup")
    page.locator("#text-detect").click()
    shown = _wait_src(page, "#text-image", r"coffee_detections")
    boxes = page.locator("#text-detections input[type=checkbox]")
    boxes.first.wait_for()
    n = boxes.count()
    assert n >= 1 and page.locator("#text-detections input[type=checkbox]:checked").count() == n
    limit = client.predict(api_name="/status")["max_boxes"]
    if n > limit:  # too many ticked boxes: a friendly error, and the app keeps serving
        page.locator("#text-run").click()
        assert "Too many boxes" in _toast_text(page)
        _close_toasts(page)
    keep = min(2, n)
    for i in range(keep, n):  # untick all but the first `keep`; the overlay dims them
        boxes.nth(i).uncheck()
    shown = _wait_src(page, "#text-image", r"coffee_detections", old=shown) if n > keep else shown
    page.locator("#text-run").click()
    _outputs_shown(page, "text", "coffee")
    assert page.locator("#text-detections input[type=checkbox]:checked").count() == keep
    assert f"objects: {keep}" in page.locator("#text-info").inner_text()


def test_boxes_and_clicks_with_undo_and_clear(page, client):
    page.get_by_role("tab", name="Boxes & clicks").click()
    _upload(page, "boxes-image", EXAMPLES / "coffee.jpg")
    shown = _wait_src(page, "#boxes-image", r"coffee_input")
    w, h = Image.open(EXAMPLES / "coffee.jpg").size

    # draw a box with two clicks (opposite corners)
    x1, y1 = _click_image(page, "#boxes-image", 0.2, 0.15)
    shown = _wait_src(page, "#boxes-image", r"coffee_prompts", old=shown)
    x2, y2 = _click_image(page, "#boxes-image", 0.8, 0.9)
    page.wait_for_function("() => document.querySelector('#boxes-boxes textarea').value.trim() !== ''")
    box = _numbers(page.locator("#boxes-boxes textarea").input_value())
    assert box == pytest.approx([x1, y1, x2, y2], abs=max(w, h) * 0.02)

    # a positive point, undo it, add it again
    page.locator("#boxes-mode").get_by_text("Positive point", exact=True).click()
    px, py = _click_image(page, "#boxes-image", 0.5, 0.5)
    page.wait_for_function("() => document.querySelector('#boxes-points textarea').value.trim() !== ''")
    assert _numbers(page.locator("#boxes-points textarea").input_value()) == pytest.approx([px, py, 1], abs=max(w, h) * 0.02)
    page.locator("#boxes-undo").click()
    page.wait_for_function("() => document.querySelector('#boxes-points textarea').value.trim() === ''")
    assert page.locator("#boxes-boxes textarea").input_value().strip() != ""
    _click_image(page, "#boxes-image", 0.5, 0.5)
    page.wait_for_function("() => document.querySelector('#boxes-points textarea').value.trim() !== ''")

    before = _calls(client)
    page.locator("#boxes-run").click()
    _outputs_shown(page, "boxes", "coffee")
    after = _calls(client)
    assert after["matte"] == before["matte"] + 1

    # clear everything, then use the keyboard alternative: type a box, press Enter, run
    page.locator("#boxes-clear").click()
    page.wait_for_function("() => document.querySelector('#boxes-boxes textarea').value.trim() === ''")
    assert page.locator("#boxes-points textarea").input_value().strip() == ""
    old_alpha = _src(page, "#boxes-alpha")
    field = page.locator("#boxes-boxes textarea")
    field.fill(f"{w // 4}, {h // 4}, {w // 2}, {h // 2}")
    field.press("Enter")
    page.locator("#boxes-run").click()
    _wait_src(page, "#boxes-alpha", r"coffee_alpha", old=old_alpha)
    assert "1 object" in page.locator("#boxes-info").inner_text() or "objects: 1" in page.locator("#boxes-info").inner_text()


def test_auto_human_tab(page, client):
    page.get_by_role("tab", name="Auto human").click()
    _upload(page, "human-image", EXAMPLES / "astronaut.jpg")
    before = _calls(client)
    page.locator("#human-run").click()
    srcs = _outputs_shown(page, "human", "astronaut")
    assert _calls(client)["human"] == before["human"] + 1
    assert "SGHM" in page.locator("#human-info").inner_text()
    # background colour change recomposites without a model call
    mid = _calls(client)
    page.locator("#human-bg-mode").get_by_text("Transparent", exact=True).click()
    _wait_src(page, "#human-composite", r"composite_transparent", old=srcs["composite"])
    assert _calls(client) == mid


def test_bad_upload_shows_error_and_next_action_works(page, tmp_path):
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"definitely not a PNG")
    _upload(page, "text-image", bad)
    msg = _toast_text(page)
    assert "holiday.png" in msg and "Upload a JPEG" in msg
    _close_toasts(page)
    # the next action still works
    _upload(page, "text-image", EXAMPLES / "chelsea.jpg")
    _wait_src(page, "#text-image", r"chelsea_input")
    page.locator("#text-prompt textarea").fill("cat")
    page.locator("#text-run").click()
    _outputs_shown(page, "text", "chelsea")


def test_empty_prompt_error_says_next_step(page):
    page.get_by_role("tab", name="Boxes & clicks").click()
    _upload(page, "boxes-image", EXAMPLES / "chelsea.jpg")
    _wait_src(page, "#boxes-image", r"chelsea_input")
    page.locator("#boxes-run").click()
    assert "Draw a box" in _toast_text(page)


def test_cached_example_then_background_change(page, client):
    """Clicking an example shows its (lazily cached) outputs; the background controls then
    recomposite from the alpha on screen without any model call."""
    page.locator("#text-examples").get_by_text("cat", exact=True).click()
    srcs = _outputs_shown(page, "text", "chelsea")
    before = _calls(client)
    page.locator("#text-bg-mode").get_by_text("Colour", exact=True).click()
    _wait_src(page, "#text-composite", r"composite_00b140", old=srcs["composite"])
    assert _calls(client) == before
