"""Clicks, seconds and scrolling for one user task, in the real app (issues 11 and 12.6):
"cut out the cat from my own photo and download a transparent PNG".

    .venv/bin/python benchmarks/bench_ui_task.py [--url http://127.0.0.1:7860/] [--shots DIR]

Starts the app in test mode (or uses ``--url``) and, in Debian's Chromium (Playwright), at desktop
size (1280×800, mouse) and phone size (390×844, touch): opens ``examples/chelsea.jpg`` through
"Open image…" (a click and a file pick), types "cat" (clicking the field first only when it has
no focus), presses Enter, and clicks "RGBA PNG" once it is ready (scrolling to it first only if it
is outside the viewport). It checks the download is a full-size RGBA PNG and prints, per size:
the clicks, the keys, the file picks, the px the user had to scroll, the px the page scrolled by
itself, the y of the RGBA button in the viewport, and the seconds from the first click to the
saved file (Playwright acts at once: this is the app's time, not a person's).

Test mode's tiny detector scores "cat" low, so the box and text thresholds are set to 0.01
through the UI before the task starts (not counted: real models find the cat at the defaults).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

CHROMIUM = "/usr/bin/chromium"
PHOTO = REPO / "examples" / "chelsea.jpg"
SIZES = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 3, "is_mobile": True,
              "has_touch": True},
}


def _thresholds(pg) -> None:
    pg.locator("#cut-model").get_by_text("Model and thresholds").click()
    for elem in ("cut-box-thr", "cut-text-thr"):
        box = pg.locator(f"#{elem} input[type=number]")
        box.fill("0.01")
        box.press("Enter")
        box.press("Tab")
    pg.locator("#cut-model").get_by_text("Model and thresholds").click()
    pg.wait_for_timeout(800)
    pg.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")


def task(browser, url: str, name: str, out: Path, shots: Path | None) -> dict:
    from PIL import Image

    touch = SIZES[name].get("has_touch", False)
    ctx = browser.new_context(accept_downloads=True, **SIZES[name])
    pg = ctx.new_page()
    pg.set_default_timeout(300_000)
    pg.goto(url)
    pg.wait_for_selector("#cut-canvas .pc-root")
    _thresholds(pg)
    clicks, keys, picks, user_scroll = 0, 0, 0, 0

    def press(selector: str) -> None:
        nonlocal clicks
        clicks += 1
        pg.tap(selector) if touch else pg.click(selector)

    t0 = time.perf_counter()
    with pg.expect_file_chooser() as fc:
        press("#cut-canvas [data-act='open']")
    fc.value.set_files(str(PHOTO))
    picks += 1
    with Image.open(PHOTO) as im:
        vb = f"0 0 {im.width} {im.height}"
    pg.wait_for_function("vb => document.querySelector('#cut-canvas .pc-svg').getAttribute('viewBox') === vb", arg=vb)
    pg.wait_for_timeout(300)  # the focus moves once the photo is shown
    if not pg.evaluate("() => !!document.activeElement && !!document.activeElement.closest('#cut-text')"):
        press("#cut-text input")
    pg.keyboard.type("cat")
    keys += 3
    before = pg.evaluate("() => window.scrollY")
    pg.keyboard.press("Enter")
    keys += 1
    pg.wait_for_function("() => { const b = document.querySelector('#cut-dl-rgba'); return b && !b.disabled; }")
    after = pg.evaluate("() => window.scrollY")
    rect = pg.evaluate("""() => { const r = document.querySelector('#cut-dl-rgba').getBoundingClientRect();
                                  return {top: r.top, bottom: r.bottom, vh: innerHeight}; }""")
    if rect["bottom"] > rect["vh"] or rect["top"] < 0:  # the user scrolls it into view
        need = rect["bottom"] - rect["vh"] + 16 if rect["bottom"] > rect["vh"] else rect["top"] - 16
        pg.mouse.wheel(0, need)
        pg.wait_for_timeout(300)
        user_scroll += abs(round(need))
    if shots:
        pg.screenshot(path=str(shots / f"task_{name}_result.png"))
    with pg.expect_download() as dl:
        press("#cut-dl-rgba")
    path = out / f"{name}_{time.monotonic_ns()}_{dl.value.suggested_filename}"
    dl.value.save_as(path)
    seconds = time.perf_counter() - t0
    with Image.open(path) as im, Image.open(PHOTO) as src:
        ok = im.format == "PNG" and im.mode == "RGBA" and im.size == src.size
    ctx.close()
    return {"size": name, "clicks": clicks, "keys": keys, "file_picks": picks, "user_scroll_px": user_scroll,
            "page_scrolled_px": round(after - before), "rgba_button_y_in_viewport": round(rect["top"]),
            "viewport_h": rect["vh"], "seconds": round(seconds, 2), "rgba_png_ok": ok}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url")
    ap.add_argument("--shots", type=Path)
    ap.add_argument("--repeats", type=int, default=2, help="runs per size (the first desktop run loads the models)")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    server = None
    if args.url:
        url = args.url
    else:
        from helpers.app_server import start_app

        server = start_app()
        url = server.url
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as p, tempfile.TemporaryDirectory() as tmp:
            b = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                  args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            for name in SIZES:
                for i in range(args.repeats):
                    print(json.dumps({"run": i + 1, **task(b, url, name, Path(tmp), args.shots)}))
            b.close()
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
