"""The Video tab in real headless Chromium (test mode, tiny models, a CPU frame cap of 5): upload a
short synthetic clip, see its first frame, type a box, run; the cap notice, the preview and the
downloads appear. A missing box is one message."""

from __future__ import annotations

from pathlib import Path

import av
import pytest
import test_ui_browser as ui
from helpers.app_server import start_app
from test_ui_browser import wait_status, watch_status
from test_video_objects import H, W, make_clip

browser, page = ui.browser, ui.page  # the same fixtures; the app is this module's own

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def server():
    s = start_app(extra_env={"SEMAT_VIDEO_MAX_FRAMES_CPU": "5", "SEMAT_DEVICE": "cpu"})
    yield s
    s.stop()


@pytest.fixture
def tab(page):
    """test_ui_browser's page (console errors fail the test), on the Video tab."""
    page.get_by_role("tab", name="Video").click()
    page.wait_for_selector("#video-input")
    return page


def test_video_box_run_cap_notice_preview_and_downloads(tab, tmp_path: Path) -> None:
    page = tab
    clip = make_clip(tmp_path / "walk.mp4", n=8)
    watch_status(page, "video")
    page.locator("#video-input input[type=file]").set_input_files(str(clip))
    line = wait_status(page, rf"{W}×{H}, 8 frames", "video")
    assert "only the first 5" in line
    page.wait_for_function("() => { const i = document.querySelector('#video-first-frame img');"
                           " return i && i.naturalWidth > 0; }")
    page.locator("#video-mode").get_by_text("Box", exact=True).click()
    run = page.locator("#video-run")
    watch_status(page, "video")
    run.click()  # no box yet: one message, in the status line, says how to give it
    said = wait_status(page, r"⚠.*x1,y1,x2,y2 \(its pixels\)", "video")
    assert said.count("⚠") == 1, said
    box = page.locator("#video-box textarea, #video-box input").first
    box.fill("8,12,40,52")
    box.press("Tab")
    page.locator("#video-webm input[type=checkbox]").check()
    page.wait_for_timeout(500)
    watch_status(page, "video")
    run.click()
    wait_status(page, r"⏳ (Matting frame|Encoding)", "video")
    final = wait_status(page, r"✓ 5 frame\(s\)", "video")
    assert "first 5 frames" in final and "SEMAT_VIDEO_MAX_FRAMES_CPU" in final
    page.wait_for_function("() => { const v = document.querySelector('#video-preview video');"
                           " return v && v.src && v.readyState >= 1; }")
    for elem, name in (("video-dl-composite", "walk_composite.mp4"), ("video-dl-alpha", "walk_alpha.mp4"),
                       ("video-dl-webm", "walk.webm")):
        link = page.locator(f"#{elem} a").first
        link.wait_for()
        with page.expect_download() as dl:
            link.click()
        got = tmp_path / name
        dl.value.save_as(got)
        assert dl.value.suggested_filename == name
        with av.open(str(got)) as c:
            assert sum(1 for _ in c.decode(video=0)) == 5
