"""A user's error keeps its class and message across the ZeroGPU worker.

The real ``spaces`` re-raises only ``gr.Error`` from its worker; anything else arrives as
"ZeroGPU worker error: <ClassName>". The fake ``spaces`` (tests/helpers/fake_spaces) does the
same, so these tests fail if a GPU entry point lets a ``SematError`` escape as an exception
instead of carrying it back as a value (:class:`semat.app.zerogpu.WorkerError`).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from helpers.fake_spaces_module import fake_spaces

from semat.app import zerogpu as Z
from semat.errors import InputError, NoDetectionError
from semat.pipeline import Prompt

RAW = {"_gpu_matte": Z._gpu_matte, "_gpu_detect": Z._gpu_detect, "_gpu_human": Z._gpu_human}
DURATIONS = {"_gpu_matte": Z._dur_matte, "_gpu_detect": Z._dur_detect, "_gpu_human": Z._dur_human}


@pytest.fixture
def zero_gpu(monkeypatch, tmp_path):
    monkeypatch.setenv("FAKE_SPACES_LOG", str(tmp_path / "gpu_calls.log"))
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setattr(Z, "on_zero_gpu", lambda: True)
    spaces = fake_spaces("fake_spaces_for_errors")
    for name, fn in RAW.items():
        monkeypatch.setattr(Z, name, spaces.GPU(duration=DURATIONS[name])(fn))
    return spaces


def _image(w: int = 160, h: int = 120) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return np.dstack([(xx * 255 // w), (yy * 255 // h), np.full((h, w), 90)]).astype(np.uint8)


def test_the_fake_worker_loses_a_plain_exception_s_message_like_the_real_one(zero_gpu):
    import gradio as gr

    def boom():
        raise NoDetectionError("Nothing found for 'cat'")

    with pytest.raises(gr.Error) as info:
        zero_gpu.GPU(duration=10)(boom)()
    assert "cat" not in str(info.value) and "NoDetectionError" in str(info.value)


def test_nothing_found_keeps_its_class_message_and_score_through_matte_and_detect(zero_gpu):
    image = _image()
    with pytest.raises(NoDetectionError) as info:
        Z.gpu_matte(image, Prompt(text="thing", box_threshold=0.95, text_threshold=0.95), "sam")
    assert "thing" in str(info.value)
    with pytest.raises(NoDetectionError) as again:
        Z.gpu_detect(image, "thing", 0.95, 0.95)
    assert str(again.value) == str(info.value) and again.value.best_score == info.value.best_score


def test_an_input_error_in_auto_human_keeps_its_message(zero_gpu, monkeypatch):
    class Pipe:
        def matte_human(self, image):
            raise InputError("this photo is too small for SGHM (at least 32 px a side)")

    monkeypatch.setattr(Z.SERVICES, "pipeline", lambda: Pipe())
    with pytest.raises(InputError, match="too small for SGHM"):
        Z.gpu_human(_image())


def test_the_envelope_pickles_and_rebuilds_without_calling_a_custom_init():
    exc = NoDetectionError("Nothing found for 'kite' at 0.35", best_score=0.21)
    back = pickle.loads(pickle.dumps(Z.WorkerError(exc))).rebuild()
    assert type(back) is NoDetectionError and str(back) == str(exc) and back.best_score == 0.21


def test_off_zero_gpu_errors_are_raised_where_they_happen(monkeypatch):
    monkeypatch.setattr(Z, "on_zero_gpu", lambda: False)

    @Z.errors_as_values
    def fails():
        raise InputError("bad")

    with pytest.raises(InputError):
        fails()
