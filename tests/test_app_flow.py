"""The Cut out tab's logic without a browser: canvas value → pipeline prompt, previews vs
full-size files (bit-identical PNG content to the API's), and the preview recomposite's speed."""

from __future__ import annotations

import time
import zipfile

import numpy as np
import pytest
from PIL import Image

from semat import compose
from semat.app import canvas as C
from semat.app import handlers as H
from semat.app import render as R
from semat.app import steps as S
from semat.app.session import PREVIEW_SIDE, TabSession, check_run
from semat.inference.detect import Detection
from semat.pipeline import MatteResult, ObjectResult, Prompt


def _session(w: int = 400, h: int = 300) -> TabSession:
    s = TabSession()
    yy, xx = np.mgrid[0:h, 0:w]
    s.image = np.dstack([(xx * 255 // w), (yy * 255 // h), np.full((h, w), 90)]).astype(np.uint8)
    s.image_sha, s.stem = "sha", "photo"
    return s


def _value(s: TabSession, boxes=(), points=()) -> dict:
    h, w = s.image.shape[:2]
    return {"image": {"src": "/gradio_api/file=x.jpg", "width": w, "height": h}, "boxes": [list(b) for b in boxes],
            "points": [list(p) for p in points]}


def test_drawn_boxes_and_points_become_one_prompt():
    s = _session()
    prompt, selected, mapping = H.canvas_prompt(_value(s, [[10, 20, 110, 120], [200, 50, 300, 250]],
                                                      [[50, 60, 1], [250, 100, 0]]), s, "", 0.35, 0.25)
    assert prompt.boxes == [(10, 20, 110, 120), (200, 50, 300, 250)]
    assert prompt.points == [(50, 60, 1), (250, 100, 0)]
    assert prompt.text is None and not prompt.detections and selected is None
    assert mapping == {0: 0, 1: 1}


def test_reviewed_detections_are_sent_as_detections_with_their_labels():
    s = _session()
    s.detect_key = ("sha", "cat", 0.35, 0.25)
    boxes = [[10, 10, 100, 100, {"label": "cat", "score": 0.9}],
             [120, 10, 200, 100, {"label": "cat", "score": 0.5, "enabled": False}],
             [210, 10, 300, 100, {"label": "dog", "score": 0.7}],
             [5, 150, 90, 290]]  # drawn by the user
    prompt, selected, mapping = H.canvas_prompt(_value(s, boxes), s, "cat", 0.35, 0.25)
    assert prompt.text is None, "reviewed detections must not be detected again"
    assert prompt.detections == [Detection((10, 10, 100, 100), "cat", 0.9), Detection((210, 10, 300, 100), "dog", 0.7)]
    assert selected == [0, 1] and prompt.boxes == [(5, 150, 90, 290)]
    assert mapping == {0: 0, 2: 1, 3: 2}  # canvas box -> object (the unticked box 1 is not matted)


def test_new_text_detects_again_and_unticked_everything_is_an_error():
    s = _session()
    s.detect_key = ("sha", "cat", 0.35, 0.25)
    boxes = [[10, 10, 100, 100, {"label": "cat", "score": 0.9, "enabled": False}]]
    prompt, selected, mapping = H.canvas_prompt(_value(s, boxes), s, "dog", 0.35, 0.25)
    assert prompt.text == "dog" and mapping is None and selected is None
    with pytest.raises(Exception, match="unticked"):
        H.canvas_prompt(_value(s, boxes), s, "cat", 0.35, 0.25)
    with pytest.raises(Exception, match="Drag a box"):
        H.canvas_prompt(_value(s), s, "", 0.35, 0.25)


def test_too_many_ticked_boxes_fail_before_the_gpu(monkeypatch):
    monkeypatch.setenv("SEMAT_MAX_BOXES", "2")
    s = _session()
    with pytest.raises(Exception, match="Too many boxes"):
        H.canvas_prompt(_value(s, [[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]]), s, "", 0.35, 0.25)


def test_a_stale_session_is_refused():
    s = _session()
    v = _value(s, [[0, 0, 10, 10]])
    v["image"]["width"] = 999
    with pytest.raises(Exception, match="Open the image again"):
        H.canvas_prompt(v, s, "", 0.35, 0.25)


def _result(image: np.ndarray, n: int = 2) -> MatteResult:
    h, w = image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    objects = []
    for i in range(n):
        cx = w * (i + 1) / (n + 1)
        a = np.clip(1.5 - np.hypot(xx - cx, yy - h / 2) / (min(h, w) / 6), 0, 1).astype(np.float32)
        objects.append(ObjectResult(box=(0, 0, w, h), label=f"obj{i}", score=0.5, source="box", mask=a > 0.5, alpha=a))
    alpha = np.clip(sum(o.alpha for o in objects), 0, 1).astype(np.float32)
    return MatteResult(image=image, objects=objects, alpha=alpha, mask=alpha > 0.5, variant="hq-sam",
                       checkpoint_sha256=None, timings={"semat": 0.1}, notices=[], prompt=Prompt(boxes=[(0, 0, w, h)]))


def test_previews_are_small_and_downloads_match_the_api_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path))
    s = _session(3000, 1000)
    s.result = _result(s.image)
    bg = compose.parse_background("#ff0000")
    mask, alpha, comp = R.previews(s, bg, with_mask=True)
    for p in (mask, alpha, comp):
        with Image.open(p) as im:
            assert max(im.size) == PREVIEW_SIDE and im.size[0] / im.size[1] == pytest.approx(3, rel=0.01)
    assert comp.endswith(".jpg") and alpha.endswith(".png")
    files = R.download_files(s, bg)
    api = R.render(TabSession(image=s.image, stem="api"), s.result, bg)
    for mine, theirs in ((files["rgba"], api.rgba), (files["alpha"], api.alpha), (files["composite"], api.composite)):
        with Image.open(mine) as a, Image.open(theirs) as b:
            assert a.size == (3000, 1000) and a.mode == b.mode
            assert np.array_equal(np.asarray(a), np.asarray(b)), mine
    with zipfile.ZipFile(files["zip"]) as za, zipfile.ZipFile(api.zip) as zb:
        assert sorted(za.namelist()) == sorted(zb.namelist())
        for name in za.namelist():
            if name.endswith(".png"):
                assert np.array_equal(np.asarray(Image.open(za.open(name))), np.asarray(Image.open(zb.open(name))))
    # one object alone: its own alpha; a second call reuses the files already written
    s.view = 1
    obj = R.download_files(s, bg)
    with Image.open(obj["alpha"]) as im:
        assert np.array_equal(np.asarray(im), compose.alpha_to_png8(s.result.objects[1].alpha))
    assert R.download_files(s, bg) == obj and obj["zip"] == files["zip"]


def test_recomposite_preview_of_12_megapixels_is_fast(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path))
    s = _session(4000, 3000)
    s.result = _result(s.image, n=1)
    R.previews(s, compose.parse_background("checker"))  # the first result: makes the preview image
    times = {}
    for spec in ("#00ff00", "blur:20", "transparent", "checker"):
        t0 = time.perf_counter()
        path = R.composite_preview(s, compose.parse_background(spec))
        times[spec] = time.perf_counter() - t0
        with Image.open(path) as im:
            assert max(im.size) == PREVIEW_SIDE
    print("recomposite at 12 MP (preview):", {k: f"{v:.3f} s" for k, v in times.items()})
    assert max(times.values()) < 1.5, times  # well under a second on an idle machine; shared CI is slower


def test_canvas_mask_overlay_is_small():
    r = _result(np.zeros((3000, 4000, 3), np.uint8), n=1)
    m = R.mask_preview(r)
    assert max(m.shape) == 1024 and m.dtype == np.uint8 and m.max() == 255 and m.min() == 0
    v = C.with_mask({"image": {"src": "/x/gradio_api/file=a.jpg", "width": 4000, "height": 3000}}, m)
    assert v["mask"]["file"]["path"].endswith(".png")


def test_the_pipeline_reports_each_object_and_the_status_line_has_an_eta(monkeypatch):
    """A progress listener hears "Matting object i of n..." per object (same mattes as one batched
    call); the status line turns that into the stage with an ETA from measured times."""
    from semat.app import progress as P
    from semat.pipeline import default_pipeline

    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    s = _session(160, 120)
    prompt = Prompt(boxes=[(5, 5, 60, 60), (50, 20, 120, 100), (90, 10, 150, 110)])
    heard: list[str] = []
    pipe = default_pipeline(device="cpu")
    quiet = pipe.run(s.image, prompt, "hq-sam")
    pipe.clear_cache()
    loud = pipe.run(s.image, prompt, "hq-sam", progress=lambda f, m: heard.append(m))
    assert [m for m in heard if m.startswith("Matting object")] == [f"Matting object {i} of 3..." for i in (1, 2, 3)]
    assert np.allclose(quiet.alpha, loud.alpha, atol=1e-5), "one call per object mattes the same"

    clock = P.StageClock()
    stages = P.RunProgress("hq-sam", 12.0, clock)
    assert stages.text("Matting object 1 of 4...", now=0.0) == "**Matting object 1 of 4…**"  # nothing measured yet
    assert stages.text("Matting object 2 of 4...", now=2.0) == "**Matting object 2 of 4…** About 6 s left."
    clock.record("downloads_per_mp", 0.25)  # 12 MP: 3 s of downloads after the mattes
    assert stages.text("Matting object 4 of 4...", now=6.0) == "**Matting object 4 of 4…** About 5 s left."
    assert stages.text("Detecting 'cat'...") == "**Detecting 'cat'…**"


def test_a_streamed_run_yields_each_stage_then_returns(monkeypatch):
    from semat.app import progress as P

    def call(cb):
        for i in (1, 2):
            cb(0.5, f"Matting object {i} of 2...")
        return "result"

    def gen():
        return (yield from P.streamed(call, lambda t: (t,), P.RunProgress("sam", 1.0, P.StageClock())))

    g, rows = gen(), []
    try:
        while True:
            rows.append(next(g))
    except StopIteration as stop:
        assert stop.value == "result"
    assert [r[0].split("…")[0] for r in rows] == ["**Matting object 1 of 2", "**Matting object 2 of 2"]

    def boom(cb):
        raise ValueError("bad box")

    with pytest.raises(ValueError, match="bad box"):
        list(P.streamed(boom, lambda t: (t,), P.RunProgress("sam", 1.0)))


def _stop():
    status, run, cancel, other = object(), object(), object(), object()
    return S.Stop([status, run, cancel], "Cancelled.", S.ON, S.OFF), [other, status, run, cancel]


def test_a_cancel_that_arrives_before_the_run_step_leaves_the_outputs_alone():
    """Cancel comes on with begin's reply, and the browser sends the model step at the same time;
    a Cancel that reaches the server first must still stop that step (CI saw a cancelled run go on)."""
    s = _session()
    stop, outputs = _stop()
    calls = []

    def step(value, s):
        calls.append(value)
        yield ("stage",)
        yield ("done",)

    S.begin("Matting")(s)
    assert stop.press(s) == ("Cancelled.", S.ON, S.OFF)
    guarded = stop.guard(step, outputs)
    assert list(guarded("v", s)) == [(S.SKIP,) * 4] and calls == []
    assert stop.guard(lambda s: "ran", outputs)(s) == (S.SKIP,) * 4
    S.begin("Matting")(s)  # the next press runs as usual
    assert list(guarded("v", s)) == [("stage",), ("done",)] and calls == ["v"]
    assert stop.guard(lambda s: "ran", outputs)(s) == "ran"


def test_a_cancel_while_the_step_runs_drops_its_later_stages_and_says_cancelled_again():
    s = _session()
    stop, outputs = _stop()
    mutated = []
    said = (S.SKIP, "Cancelled.", S.ON, S.OFF)

    def step(s):
        run = s.run
        yield ("stage 1",)
        stop.press(s)  # Cancel reaches the server while the model runs
        yield ("stage 2",)
        check_run(s, run)
        mutated.append(True)
        yield ("result",)

    S.begin("Matting")(s)
    assert list(stop.guard(step, outputs)(s)) == [("stage 1",), said] and not mutated

    def plain(s):
        run = s.run
        stop.press(s)
        check_run(s, run)
        return "result"

    S.begin("Matting")(s)
    assert stop.guard(S.inline(4, 1)(plain), outputs)(s) == said, "inline lets Cancelled through"


def test_a_streamed_model_call_notices_cancel_between_its_stages(monkeypatch):
    """The status line must not wait for the next object to learn of a Cancel: streamed asks
    every 0.2 s."""
    from semat.app import progress as P
    from semat.app.session import Cancelled

    monkeypatch.setattr(P, "_test_delay", lambda: 0.0)
    flag = {"stop": False}

    def call(report):
        report(0.1, "Matting object 1 of 2…")
        time.sleep(1.5)
        return "late"

    gen = P.streamed(call, lambda text: (text,), P.RunProgress("sam", 1.0), stop=lambda: flag["stop"])
    assert "object 1 of 2" in next(gen)[0]
    flag["stop"] = True
    t0 = time.perf_counter()
    with pytest.raises(Cancelled):
        next(gen)
    assert time.perf_counter() - t0 < 0.6
