"""ZeroGPU behaviour with a counting stand-in for ``spaces.GPU`` (tests/helpers/fake_spaces).

Each user action must be exactly one scheduled GPU call (issue 10): a text matte detects and
mattes in the same call, and results cross the (simulated) process boundary by pickle.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.app_server import REPO, start_app

pytestmark = pytest.mark.slow

gradio_client = pytest.importorskip("gradio_client")
FAKE = Path(__file__).parent / "helpers" / "fake_spaces"
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    log = tmp_path_factory.mktemp("zerogpu") / "gpu_calls.log"
    server = start_app(extra_env={"PYTHONPATH": str(FAKE), "FAKE_SPACES_LOG": str(log),
                                  "FAKE_SPACES_ZERO_GPU": "1", "SEMAT_PRELOAD": "none"})
    client = gradio_client.Client(server.url, verbose=False)
    yield client, log
    server.stop()


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_every_action_is_one_gpu_call(app):
    client, log = app
    img = gradio_client.handle_file(str(EXAMPLES / "chelsea.jpg"))
    status = client.predict(api_name="/status")
    assert status["zero_gpu"] is True
    before = len(_calls(log))
    client.predict(img, "cat", 0.0, 0.0, "sam", "transparent", 0, api_name="/matte_text")
    after_text = _calls(log)[before:]
    assert [c.split()[0] for c in after_text] == ["_gpu_matte"], after_text  # detect + matte: one call
    client.predict(img, "10, 10, 200, 200", "50, 50, 1", "sam2", "white", api_name="/matte_prompts")
    client.predict(img, "cat", 0.0, 0.0, api_name="/detect")  # same image + text: the detector cache answers
    client.predict(img, "transparent", api_name="/matte_human")
    calls = [c.split()[0] for c in _calls(log)[before:]]
    assert calls == ["_gpu_matte", "_gpu_matte", "_gpu_detect", "_gpu_human"], calls
    assert all(10 <= int(c.split()[1]) <= 120 for c in _calls(log))  # durations computed per request
    status = client.predict(api_name="/status")
    assert status["inference_calls"] == {"detect": 1, "matte": 2, "human": 1}
    assert status["semat_forwards"] >= 2 and status["detector_forwards"] >= 1 and status["human_forwards"] == 1
