"""The page for a first visit, after a run and on a phone, in real headless Chromium (issues 11, 12).

The app runs in test mode with ``SEMAT_CANVAS_DEMO_DELAY`` set, so every matted object takes a
little while: the status line's per-object stages can be watched. Checked here: what is above the
fold at 1280×800, the downloads in view after a run without scrolling, a phone scrolling to the
result after an example and after a run, the status line's "Matting object i of n…" with an
ETA, stale status texts clearing, the model selector only where it applies, the timings line's
wording, detection labels at phone size, and the API page with no failed request.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
import test_ui_browser as ui
from helpers.app_server import start_app
from test_ui_browser import (
    CHROMIUM,
    EXAMPLES,
    matte,
    open_image,
    status,
    thresholds,
    wait_status,
    watch_status,
)

browser = ui.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DELAY_S = 0.7  # per matted object
DESKTOP = {"viewport": {"width": 1280, "height": 800}}
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True, "has_touch": True}


@pytest.fixture(scope="module")
def server():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    s = start_app(extra_env={"SEMAT_CANVAS_DEMO_DELAY": str(DELAY_S)})
    yield s
    s.stop()


def _shot(pg, name: str) -> None:
    shots = os.environ.get("SEMAT_SCREENSHOTS")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(Path(shots) / f"{name}.png"))


@pytest.fixture
def desktop(server, browser):
    ctx, pg, errors = ui.open_app(server, browser, **DESKTOP)
    yield pg
    ctx.close()
    assert not errors, errors


@pytest.fixture
def phone(server, browser):
    ctx, pg, errors = ui.open_app(server, browser, **PHONE)
    yield pg
    ctx.close()
    assert not errors, errors


def rect(pg, selector: str) -> dict:
    return pg.evaluate("""sel => { const r = document.querySelector(sel).getBoundingClientRect();
                                   return {top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                                           height: r.height, vh: innerHeight, y: scrollY}; }""", selector)


def in_view(pg, selector: str) -> bool:
    r = rect(pg, selector)
    return r["top"] >= 0 and r["bottom"] <= r["vh"]


def drag_box(pg, x0: float, y0: float, x1: float, y1: float, touch: bool = False) -> None:
    """A box in fractions of the picture, by mouse or by one finger."""
    r = rect(pg, "#cut-canvas .pc-svg")
    w, h = r["right"] - r["left"], r["bottom"] - r["top"]
    a, b = (r["left"] + x0 * w, r["top"] + y0 * h), (r["left"] + x1 * w, r["top"] + y1 * h)
    if not touch:
        pg.mouse.move(*a)
        pg.mouse.down()
        pg.mouse.move(*b, steps=8)
        pg.mouse.up()
        return
    cdp = pg.context.new_cdp_session(pg)

    def t(kind, x=0.0, y=0.0):
        pts = [] if kind == "touchEnd" else [{"x": x, "y": y, "id": 1, "radiusX": 2, "radiusY": 2, "force": 1}]
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": pts})

    t("touchStart", *a)
    for i in range(1, 9):
        t("touchMove", a[0] + (b[0] - a[0]) * i / 8, a[1] + (b[1] - a[1]) * i / 8)
    t("touchEnd")


def click_at(pg, fx: float, fy: float) -> None:
    """A right-click at fractions of the picture (scrolled into view first): an exclude point,
    always an edit (a left click on a box's edge would select it instead)."""
    pg.locator("#cut-canvas .pc-svg").scroll_into_view_if_needed()
    r = rect(pg, "#cut-canvas .pc-svg")
    pg.mouse.click(r["left"] + fx * (r["right"] - r["left"]), r["top"] + fy * (r["bottom"] - r["top"]),
                   button="right")


def test_desktop_first_visit_fold_and_downloads_in_view_after_a_run(desktop):
    pg = desktop
    # above the fold: the canvas, the prompt, the button and the examples
    for sel in ("#cut-text", "#cut-run", "#cut-examples"):
        assert in_view(pg, sel), (sel, rect(pg, sel))
    assert rect(pg, "#cut-canvas .pc-stage")["top"] < 500, "the canvas starts high on the page"
    assert pg.locator("#cut-examples img").count() >= 3, "the examples are thumbnails"
    assert pg.locator("#cut-results").count() == 0, "no empty result panels on a first visit"
    open_image(pg, EXAMPLES / "chelsea.jpg")
    assert pg.evaluate("() => !!document.activeElement.closest('#cut-text')"), "typing goes to the prompt"
    drag_box(pg, 0.1, 0.1, 0.9, 0.9)
    watch_status(pg)
    pg.click("#cut-run")
    wait_status(pg, r"Done\.")
    _shot(pg, "layout_desktop_after_run")
    assert pg.evaluate("() => window.scrollY") == 0, "nothing scrolled"
    for sel in ("#cut-dl-rgba", "#cut-dl-zip", "#cut-composite", "#cut-status", "#cut-run"):
        assert in_view(pg, sel), (sel, rect(pg, sel))
    assert in_view(pg, "#cut-canvas .pc-toolbar")
    # the timings line says what its total covers
    info = pg.locator("#cut-info").inner_text()
    assert re.search(r"pipeline total \d+\.\d\d s", info) and "pipeline total: the server's model step" in info
    assert "to previews" in info


def test_phone_scrolls_to_the_result_after_an_example_and_after_a_run(phone):
    pg = phone
    thresholds(pg)  # the tiny test detector scores low
    pg.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")
    watch_status(pg)
    pg.locator("#cut-examples").get_by_text("cat", exact=True).tap()
    wait_status(pg, r"Done\.")
    pg.wait_for_timeout(300)
    _shot(pg, "layout_phone_after_example")
    assert in_view(pg, "#cut-dl-rgba"), rect(pg, "#cut-dl-rgba")
    r = rect(pg, "#cut-results")
    assert -2 <= r["top"] <= 200, r
    # detection labels on the canvas are readable at phone size: at least 13 px type
    pg.locator("#cut-canvas").scroll_into_view_if_needed()
    heights = pg.evaluate("""() => [...document.querySelectorAll('#cut-canvas .pc-chip-text')]
                               .map(t => t.getBoundingClientRect().height)""")
    assert heights and min(heights) >= 13, heights
    # a run of the user's own box: the page comes back to the result again
    pg.evaluate("() => window.scrollTo(0, 0)")
    pg.locator("#cut-text input").fill("")
    pg.tap("#cut-canvas [data-act='clear']")
    drag_box(pg, 0.2, 0.2, 0.8, 0.8, touch=True)
    watch_status(pg)
    pg.click("#cut-run")
    wait_status(pg, r"Done\.")
    pg.wait_for_timeout(300)
    _shot(pg, "layout_phone_after_run")
    assert in_view(pg, "#cut-dl-rgba"), rect(pg, "#cut-dl-rgba")


def assert_stages_in_order(seen: list[str]) -> None:
    """The status lines of a three-object Matte went through every stage, in order."""
    stages = [next((i for i, t in enumerate(seen) if re.search(p, t)), None)
              for p in (r"^Matting object 1 of 3…", r"^Matting object 2 of 3…", r"^Matting object 3 of 3…",
                        r"matted in .*Preparing full-size downloads", r"Done\.")]
    assert None not in stages and stages == sorted(stages), seen


def _three_objects(pg, inset: float) -> list[str]:
    if not pg.locator("#cut-canvas [data-act='clear']").is_disabled():
        pg.click("#cut-canvas [data-act='clear']")
    for k in range(3):
        drag_box(pg, 0.04 + 0.32 * k + inset, 0.2 + inset, 0.3 + 0.32 * k - inset, 0.8 - inset)
    watch_status(pg)
    pg.click("#cut-run")
    pg.wait_for_function("() => document.querySelector('#cut-run').disabled", timeout=5000)
    wait_status(pg, r"Done\.")
    return pg.evaluate("() => window.__status['#cut-status']")


def test_status_line_names_each_object_with_an_eta(desktop):
    pg = desktop
    open_image(pg, EXAMPLES / "coffee.jpg")
    for inset in (0.0, 0.02):  # the second run has the first's measured times: an ETA from object 1 on
        seen = _three_objects(pg, inset)
        assert_stages_in_order(seen)
    etas = [t for t in seen if re.search(r"^Matting object \d of 3…\s*About \d+ s left\.", t)]
    assert len(etas) == 3, seen
    first = int(re.search(r"About (\d+) s", etas[0]).group(1))
    assert 1 <= first <= 30, etas  # three objects at 0.7 s each, plus the downloads


def test_stale_status_clears_and_the_model_selector_only_where_it_applies(desktop):
    pg = desktop
    open_image(pg, EXAMPLES / "coffee.jpg")
    thresholds(pg)
    pg.locator("#cut-text input").fill("cup")
    watch_status(pg)
    pg.click("#cut-detect")
    wait_status(pg, "Found")
    click_at(pg, 0.01, 0.99)  # an edit: a point
    pg.wait_for_function("() => !/Found/.test(document.querySelector('#cut-status').innerText)")
    # the canvas's own note ("Undone.") goes with the next edit
    pg.click("#cut-canvas [data-act='undo']")
    assert pg.inner_text("#cut-canvas .pc-status") == "Undone."
    click_at(pg, 0.2, 0.9)
    assert "Undone" not in pg.inner_text("#cut-canvas .pc-status")
    pg.click("#cut-canvas [data-act='none']")
    pg.locator("#cut-canvas .pc-tick[data-index='0']").check()
    matte(pg)
    click_at(pg, 0.4, 0.9)
    pg.wait_for_function("() => /Prompt changed/.test(document.querySelector('#cut-status').innerText)")
    # another checkpoint: the status line says the result shown is from the old one
    pg.locator("#cut-model").get_by_text("SEMat SAM", exact=True).click()
    pg.wait_for_function("() => /Model changed/.test(document.querySelector('#cut-status').innerText)")
    assert "the result shown is from SEMat HQ-SAM" in status(pg), status(pg)
    assert pg.locator("#variant").is_visible()
    pg.get_by_role("tab", name="Auto human").click()
    pg.wait_for_selector("#human-run")
    assert not pg.locator("#variant").is_visible(), "Auto human has no SEMat checkpoint to pick"


def test_api_page_makes_no_failed_request(server, browser):
    ctx, pg, errors = ui.open_app(server, browser, **DESKTOP)
    bad: list[str] = []
    pg.on("response", lambda r: bad.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    try:
        pg.get_by_text("Use via API").click()
        pg.wait_for_function("() => document.body.innerText.includes('API name: /matte_prompts')")
        pg.wait_for_timeout(1500)
        text = pg.inner_text("body")
        ours = {name: part for part in text.split("API name: /")[1:]
                for name in ("matte_text", "matte_prompts", "matte_human", "detect", "status")
                if part.startswith(name + " ")}
        assert len(ours) == 5, list(ours)
        for name, part in ours.items():
            assert "Hello!!" not in part, (name, part[:800])
        assert 'boxes="60, 60, 500, 700"' in ours["matte_prompts"] and "One box per line" in ours["matte_prompts"]
        assert 'text="bus"' in ours["matte_text"]
        pg.goto(server.url + "?view=api")  # the address the README links
        pg.wait_for_selector("#cut-canvas .pc-root")
        pg.wait_for_timeout(2500)
        assert bad == [], bad
    finally:
        ctx.close()
    assert not errors, errors
