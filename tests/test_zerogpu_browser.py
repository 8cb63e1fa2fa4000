"""The status line on ZeroGPU, in real headless Chromium (issue 12): the app runs with the counting
stand-in for ``spaces`` in ZeroGPU mode (tests/helpers/fake_spaces: the matte generator's items
pickled across as they come), and a three-box Matte shows "Matting object i of 3…" with an ETA,
as off ZeroGPU, from exactly one GPU call.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import test_ui_browser as ui
from helpers.app_server import start_app
from test_ui_browser import CHROMIUM, EXAMPLES, open_image
from test_ui_layout_browser import DESKTOP, _three_objects, assert_stages_in_order

browser = ui.browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAKE = Path(__file__).parent / "helpers" / "fake_spaces"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    log = tmp_path_factory.mktemp("zerogpu-browser") / "gpu_calls.log"
    s = start_app(extra_env={"PYTHONPATH": str(FAKE), "FAKE_SPACES_LOG": str(log), "FAKE_SPACES_ZERO_GPU": "1",
                             "SEMAT_PRELOAD": "none", "SEMAT_CANVAS_DEMO_DELAY": "0.7"})
    s.gpu_log = log
    yield s
    s.stop()


def test_status_line_names_each_object_on_zero_gpu(server, browser):
    ctx, pg, errors = ui.open_app(server, browser, **DESKTOP)
    try:
        open_image(pg, EXAMPLES / "coffee.jpg")
        for inset in (0.0, 0.02):  # the second run has the first's measured times: an ETA from object 1 on
            before = server.gpu_log.read_text().splitlines() if server.gpu_log.exists() else []
            seen = _three_objects(pg, inset)
            calls = server.gpu_log.read_text().splitlines()[len(before):]
            assert [c.split()[0] for c in calls] == ["_gpu_matte"], calls  # one GPU call per Matte
            assert_stages_in_order(seen)
        etas = [t for t in seen if re.search(r"^Matting object \d of 3…\s*About \d+ s left\.", t)]
        assert len(etas) == 3, seen
    finally:
        ctx.close()
    assert not errors, errors
