"""Notices where the eye is, in real headless Chromium (issue 12): a notice ("downscaled to …",
"matting the 16 highest-scoring") is written into the status line, and on a phone no notice
toast covers the result the page has scrolled to; on a desktop the toast still shows.

The app runs in test mode with ``SEMAT_MAX_MEGAPIXELS=0.1``, so every example photo is downscaled
on loading, with a notice.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import test_ui_browser as ui
from helpers.app_server import start_app
from test_ui_browser import CHROMIUM, EXAMPLES, status, thresholds, wait_status, watch_status
from test_ui_layout_browser import DESKTOP, PHONE, drag_box, rect

browser = ui.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOWNSCALED = r"ℹ️ chelsea\.jpg is 451×300 \(0\.1 MP\); downscaled to \d+×\d+"

#: records, from now on, every toast the page shows and its largest overlap with the result column
WATCH_TOASTS_JS = """() => { window.__toasts = {seen: 0, shown: 0, overlap: 0, texts: []};
  const tick = () => { const res = document.querySelector('#cut-results');
    document.querySelectorAll('.toast-body').forEach((t) => {
      if (!t.__counted) { t.__counted = true; window.__toasts.seen += 1; window.__toasts.texts.push(t.innerText); }
      const r = t.getBoundingClientRect(), visible = t.checkVisibility() && r.width > 0 && r.height > 0;
      if (!visible) return;
      window.__toasts.shown += 1;
      if (!res) return;
      const q = res.getBoundingClientRect();
      const w = Math.min(r.right, q.right) - Math.max(r.left, q.left), h = Math.min(r.bottom, q.bottom) - Math.max(r.top, q.top);
      if (w > 0 && h > 0) window.__toasts.overlap = Math.max(window.__toasts.overlap, w * h); }); };
  clearInterval(window.__toastTimer); window.__toastTimer = setInterval(tick, 50); }"""


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    s = start_app(extra_env={"SEMAT_MAX_MEGAPIXELS": "0.1"})
    yield s
    s.stop()


def _open(server, browser, context):
    ctx, pg, errors = ui.open_app(server, browser, **context)
    return ctx, pg, errors


def _open_downscaled(pg, path: Path) -> str:
    """Open a photo through the canvas's file input; wait for the "Loaded" line (the canvas shows
    the downscaled size, so :func:`test_ui_browser.open_image`'s wait for the file's size does not fit)."""
    watch_status(pg)
    pg.locator("#cut-canvas .pc-file-input").set_input_files(str(path))
    wait_status(pg, r"^Loaded ")
    pg.wait_for_function("() => { const i = document.querySelector('#cut-canvas .pc-img'); "
                         "return i && i.complete && i.naturalWidth > 0; }")
    return status(pg)


def _toasts(pg) -> dict:
    pg.wait_for_timeout(200)  # one more tick of the watcher
    return pg.evaluate("() => window.__toasts")


def test_phone_notice_is_in_the_status_line_and_no_toast_covers_the_result(server, browser):
    ctx, pg, errors = _open(server, browser, PHONE)
    try:
        thresholds(pg)  # the tiny test detector scores low
        pg.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
        pg.evaluate(WATCH_TOASTS_JS)
        watch_status(pg)
        pg.locator("#cut-examples").get_by_text("cat", exact=True).tap()
        done = wait_status(pg, r"Done\.")
        assert done.startswith("✓ Done."), done
        assert re.search(DOWNSCALED, done), done  # the example's loading notice, at its result
        assert "highest-scoring" in done, done  # the run's own notice (the box limit)
        r = rect(pg, "#cut-results")
        assert -2 <= r["top"] <= 200, r  # the page did scroll to the result
        seen = _toasts(pg)
        assert seen["seen"] >= 1, seen  # Gradio made the notice toasts …
        assert seen["overlap"] == 0 and seen["shown"] == 0, seen  # … and none covered the result
        # a photo of the user's own: its loading notice is in the "Loaded" line and in its first result
        pg.evaluate("() => window.scrollTo(0, 0)")
        loaded = _open_downscaled(pg, EXAMPLES / "chelsea.jpg")
        assert re.search(DOWNSCALED, loaded), loaded
        pg.locator("#cut-text input").fill("")
        drag_box(pg, 0.2, 0.2, 0.8, 0.8, touch=True)
        pg.evaluate(WATCH_TOASTS_JS)
        watch_status(pg)
        pg.click("#cut-run")
        done = wait_status(pg, r"Done\.")
        assert re.search(DOWNSCALED, done), done
        seen = _toasts(pg)
        assert seen["overlap"] == 0 and seen["shown"] == 0, seen
    finally:
        ctx.close()
    assert not errors, errors


def test_desktop_still_shows_the_notice_toast(server, browser):
    ctx, pg, errors = _open(server, browser, DESKTOP)
    try:
        pg.evaluate(WATCH_TOASTS_JS)
        loaded = _open_downscaled(pg, EXAMPLES / "chelsea.jpg")
        assert re.search(DOWNSCALED, loaded), loaded
        pg.wait_for_function("() => window.__toasts.shown > 0", timeout=10_000)
        assert any("downscaled to" in t for t in _toasts(pg)["texts"])
    finally:
        ctx.close()
    assert not errors, errors
