"""ZeroGPU's one matte call streams the pipeline's stages (issue 12: "Matting object 2 of 5…" on
ZeroGPU too), in-process with the counting stand-in for ``spaces`` (tests/helpers/fake_spaces)
wrapping the app's GPU generator the way ``spaces.GPU`` does in ZeroGPU mode: one scheduled call,
arguments and every yielded item pickled across, items yielded as they come.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from helpers.fake_spaces_module import fake_spaces

from semat.app import handlers as H
from semat.app import progress as P
from semat.app import zerogpu as Z
from semat.app.session import TabSession
from semat.pipeline import MatteResult, Prompt

RAW_MATTE = Z._gpu_matte  # undecorated here: the real spaces is a no-op off ZeroGPU


@pytest.fixture
def zero_gpu(monkeypatch, tmp_path):
    """The app in ZeroGPU mode: the matte generator wrapped by the fake ``spaces.GPU``; returns
    the GPU-call log."""
    log = tmp_path / "gpu_calls.log"
    monkeypatch.setenv("FAKE_SPACES_LOG", str(log))
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setattr(Z, "on_zero_gpu", lambda: True)
    monkeypatch.setattr(Z, "_gpu_matte", fake_spaces("fake_spaces_for_stages").GPU(duration=Z._dur_matte)(RAW_MATTE))
    return log


def _image(w: int = 160, h: int = 120) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([(xx * 255 // w), (yy * 255 // h), np.full((h, w), 90)]).astype(np.uint8)


def _calls(log: Path) -> list[str]:
    return [ln.split()[0] for ln in log.read_text().splitlines()] if log.exists() else []


def test_the_matte_call_is_a_generator_of_stages_then_a_compact_result(monkeypatch):
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    import inspect

    assert inspect.isgeneratorfunction(RAW_MATTE), "spaces.GPU streams only a generator function's items"
    image = _image()
    prompt = Prompt(boxes=[(5, 5, 60, 60), (50, 20, 120, 100)])
    items = list(RAW_MATTE(image, prompt, "sam", with_stages=True))
    assert [m for k, _, m in items[:-1] if m.startswith("Matting object")] == [
        "Matting object 1 of 2...", "Matting object 2 of 2..."]
    assert all(k == "stage" for k, *_ in items[:-1])
    kind, packed = items[-1]
    assert kind == "result" and packed.image is None, "no copy of the input crosses back"
    assert packed.alpha.dtype == np.uint16 and all(o.alpha.dtype == np.uint16 for o in packed.objects)
    quiet = list(RAW_MATTE(image, prompt, "sam"))  # no listener: one batched model call, no stages
    assert [k for k, *_ in quiet] == ["result"]


def test_stages_cross_while_the_model_still_runs(zero_gpu, monkeypatch):
    """Object 2 only starts once the serving side has heard of object 1: stages are not
    collected and sent at the end."""
    heard_first = threading.Event()
    seen: list[str] = []
    image = _image()

    class Pipe:
        def run(self, image, prompt, variant=None, selected=None, max_objects=None, progress=None):
            progress(0.1, "Matting object 1 of 2...")
            if not heard_first.wait(10):
                raise AssertionError("the serving side never heard of object 1 while the model ran")
            progress(0.5, "Matting object 2 of 2...")
            alpha = np.zeros(image.shape[:2], np.float32)
            return MatteResult(image=image, objects=[], alpha=alpha, mask=alpha > 0.5, variant=variant,
                               checkpoint_sha256=None, timings={}, notices=[], prompt=prompt)

    def hear(_frac: float, message: str) -> None:
        seen.append(message)
        heard_first.set()

    monkeypatch.setattr(Z.SERVICES, "pipeline", lambda: Pipe())
    monkeypatch.setattr(Z.SERVICES, "record", lambda *a, **k: None)
    result = Z.gpu_matte(image, Prompt(boxes=[(5, 5, 60, 60), (50, 20, 120, 100)]), "sam", progress=hear)
    assert seen == ["Matting object 1 of 2...", "Matting object 2 of 2..."]
    assert result.image is image and result.alpha.dtype == np.float32
    assert _calls(zero_gpu) == ["_gpu_matte"]


def test_gpu_matte_on_zero_gpu_hears_every_object_in_one_call(zero_gpu):
    image = _image()
    prompt = Prompt(boxes=[(5, 5, 60, 60), (50, 20, 120, 100), (90, 10, 150, 110)])
    off = Z.SERVICES.pipeline().run(image, prompt, variant="sam")  # the same mattes off ZeroGPU
    Z.SERVICES.pipeline().clear_cache()
    heard: list[str] = []
    on = Z.gpu_matte(image, prompt, "sam", progress=lambda f, m: heard.append(m))
    assert [m for m in heard if m.startswith("Matting object")] == [f"Matting object {i} of 3..." for i in (1, 2, 3)]
    assert _calls(zero_gpu) == ["_gpu_matte"]
    assert on.image is image and on.alpha.dtype == np.float32
    assert np.abs(on.alpha - off.alpha).max() <= 0.5 / 65535 + 1e-7  # uint16 across, nothing else lost
    Z.gpu_matte(image, Prompt(boxes=[(10, 10, 70, 70)]), "sam")  # the API's call: no listener, still one call
    assert _calls(zero_gpu) == ["_gpu_matte", "_gpu_matte"]


def test_the_status_line_names_each_object_on_zero_gpu(zero_gpu, monkeypatch, tmp_path):
    """The Cut out tab's Matte handler on ZeroGPU: the status line goes through "Matting object
    i of n…" (with an ETA once measured) as off ZeroGPU, from one GPU call."""
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("SEMAT_CANVAS_DEMO_DELAY", "0.6")  # test mode: 0.6 s per object, so an ETA shows
    monkeypatch.setattr(P, "CLOCK", P.StageClock())
    s = TabSession()
    s.image, s.image_sha, s.stem, s.name = _image(), "stages-sha", "photo", "photo.png"
    h, w = s.image.shape[:2]
    value = {"image": {"src": "/gradio_api/file=x.jpg", "width": w, "height": h},
             "boxes": [[5, 5, 60, 60], [50, 20, 120, 100], [90, 10, 150, 110]], "points": []}
    from semat.app.canvas_text import canvas_to_text

    typed = canvas_to_text(value)  # the page keeps the keyboard fields in step with the canvas
    texts = []
    for _ in range(2):  # the second run has the first one's measured pace: an ETA from object 1 on
        Z.SERVICES.pipeline().clear_cache()
        rows = list(H.cut_matte(value, *typed, "", 0.35, 0.25, "SEMat SAM", "transparent", "#00ff00", None, 0, s))
        texts.append([r[1] for r in rows])
    for seen in texts:
        stages = [next((i for i, t in enumerate(seen) if t.startswith(f"**Matting object {k} of 3…**")), None)
                  for k in (1, 2, 3)]
        assert None not in stages and stages == sorted(stages), seen
        assert seen[-1].startswith("✓ 3 objects matted"), seen
    assert all("About" in t for t in texts[1] if t.startswith("**Matting object")), texts[1]
    assert _calls(zero_gpu) == ["_gpu_matte", "_gpu_matte"]
