"""The app's Video tab (tiny random models): the chunked two-pass run, the CPU frame cap, the
ZeroGPU chunk sizes, and the tab through gradio_client."""

from __future__ import annotations

import pickle
from pathlib import Path

import av
import numpy as np
import pytest
from test_video_objects import FPS, H, W, make_clip

from semat.app import video_tab as V
from semat.app.video_tab import MODES, matte_clip
from semat.errors import InputError
from semat.settings import Settings

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")
    monkeypatch.setenv("SEMAT_DEVICE", "cpu")
    monkeypatch.setenv("SEMAT_UI_OUTPUT_DIR", str(tmp_path / "ui-out"))


def decoded(path: str | Path) -> tuple[list[np.ndarray], set[str]]:
    with av.open(str(path)) as c:
        kinds = {s.type for s in c.streams}
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)], kinds


def test_box_clip_over_the_cpu_cap_is_cut_with_a_notice(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_VIDEO_MAX_FRAMES_CPU", "10")
    clip = make_clip(tmp_path / "clip.mp4", n=14)
    states = [(st.done, st.encoding, st.status()) for st in
              matte_clip(str(clip), MODES[1], box_text="8,12,40,52", background="#00ff00", webm=True,
                         variant="SEMat SAM", out_dir=tmp_path / "out")]
    assert [s[0] for s in states] == [0, 4, 8, 10, 10, 10]  # chunks of CPU_CHUNK frames, encoding, done
    assert states[0][2].startswith("⏳ Matting frame 1 of 10") and "left" in states[1][2]
    assert states[-2][1] and states[-2][2].startswith("⏳ Encoding")
    final = states[-1][2]
    assert final.startswith("✓ 10 frame(s) 96×64") and "first 10 frames" in final and "SEMAT_VIDEO_MAX_FRAMES_CPU" in final
    comp, kinds = decoded(tmp_path / "out" / "clip_composite.mp4")
    assert len(comp) == 10 and comp[0].shape == (H, W, 3) and kinds == {"video", "audio"}
    alpha, _ = decoded(tmp_path / "out" / "clip_alpha.mp4")
    assert len(alpha) == 10
    with av.open(str(tmp_path / "out" / "clip.webm")) as c:
        assert c.streams.video[0].codec_context.name in ("vp9", "libvpx-vp9")
    assert not (tmp_path / "out" / "alphas").exists()  # the chunk files are gone


def test_chunked_alphas_match_the_cli_frame_loop(tmp_path: Path) -> None:
    """The tab's chunks (tracker pickled between them) give the alphas `semat video` gives."""
    from semat.cli.main import main

    clip = make_clip(tmp_path / "clip.mp4", n=9, audio=False)
    last = list(matte_clip(str(clip), MODES[0], words="square", box_threshold=0.0, text_threshold=0.0,
                           variant="SEMat SAM", out_dir=tmp_path / "tab"))[-1]
    assert main(["video", str(clip), "--text", "square", "--box-threshold", "0", "--text-threshold", "0",
                 "--variant", "sam", "-o", str(tmp_path / "cli.mp4"), "--alpha-video", str(tmp_path / "cli_a.mp4"),
                 "--no-progress"]) == 0
    tab_alpha, _ = decoded(last.alpha)
    cli_alpha, _ = decoded(tmp_path / "cli_a.mp4")
    assert len(tab_alpha) == len(cli_alpha) == 9
    for a, b in zip(tab_alpha, cli_alpha):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # uint16 storage between the passes


def test_tracker_pickles_without_its_pipeline() -> None:
    from semat.app.services import SERVICES
    from semat.pipeline.video import ObjectTracker

    t = ObjectTracker(SERVICES.pipeline(), boxes=[(1.0, 2.0, 30.0, 40.0)], variant="sam")
    t.step(np.zeros((H, W, 3), np.uint8))
    back = pickle.loads(pickle.dumps(t))
    assert back.pipe is None and t.pipe is not None
    assert back.index == 0 and [x.box for x in back.tracks] == [x.box for x in t.tracks]


def test_zerogpu_chunks_fit_their_duration(monkeypatch: pytest.MonkeyPatch) -> None:
    from semat.pipeline.video import ObjectTracker

    class Pipe:
        max_boxes = 16

    monkeypatch.setattr(V, "on_zero_gpu", lambda: True)
    boxed = ObjectTracker(Pipe(), boxes=[(0, 0, 10, 10), (5, 5, 20, 20)], variant="hq-sam")
    n = V._frames_per_chunk(0.9, boxed)
    assert n > 1 and V.chunk_seconds(n, 0.9, 2, "hq-sam") <= V.CHUNK_SECONDS < V.chunk_seconds(n + 1, 0.9, 2, "hq-sam")
    worded = ObjectTracker(Pipe(), text="dog", variant="hq-sam")
    assert V._frames_per_chunk(0.9, worded) == 1  # how many dogs is known after the first frame
    assert V._chunk_duration([np.zeros((720, 1280, 3), np.uint8)], worded) * 1.5 <= 120  # 16 objects still fit
    assert V._frames_per_chunk(2.0, None) > V._frames_per_chunk(8.0, None) >= 1  # Auto human
    monkeypatch.setattr(V, "on_zero_gpu", lambda: False)
    assert V._frames_per_chunk(0.9, worded) == V.CPU_CHUNK


def test_zerogpu_run_is_chunked_calls_with_the_tracker_pickled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On ZeroGPU (emulated: arguments and results cross by pickle, as to the worker) the clip goes
    in calls of as many frames as fit in CHUNK_SECONDS, with no CPU cap, and the alphas are the CPU run's."""
    clip = make_clip(tmp_path / "clip.mp4", n=30, audio=False)
    args = dict(box_text="8,12,40,52", variant="SEMat SAM")
    cpu = list(matte_clip(str(clip), MODES[1], out_dir=tmp_path / "cpu", **args))[-1]
    inner, calls = V._gpu_chunk, []

    def worker(*a):
        calls.append((len(a[0]), V._chunk_duration(*a)))
        return pickle.loads(pickle.dumps(inner(*pickle.loads(pickle.dumps(a)))))

    monkeypatch.setattr(V, "_gpu_chunk", worker)
    monkeypatch.setattr(V, "on_zero_gpu", lambda: True)
    monkeypatch.setenv("SEMAT_VIDEO_MAX_FRAMES_CPU", "3")  # not a CPU run: no cap
    zero = list(matte_clip(str(clip), MODES[1], out_dir=tmp_path / "zero", **args))[-1]
    per = V._frames_per_chunk(W * H / 1e6, type("T", (), {"index": 0, "text": None, "tracks": [0], "variant": "sam"}))
    assert 1 < per < 30 and [n for n, _ in calls] == [per, 30 - per]
    assert all(s <= V.CHUNK_SECONDS for _, s in calls) and not zero.cut and zero.done == 30
    assert zero.object_frames == cpu.object_frames == 30
    for a, b in zip(decoded(zero.alpha)[0], decoded(cpu.alpha)[0], strict=True):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_one_message(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n=3, audio=False)
    (tmp_path / "not.mp4").write_bytes(b"nope")
    cases = [(None, MODES[0], "x", None, "add a video"), (str(tmp_path / "not.mp4"), MODES[0], "x", None, "not a"),
             (str(clip), MODES[0], "  ", None, None), (str(clip), MODES[1], None, "", "x1,y1,x2,y2"),
             (str(clip), MODES[1], None, "1,2,3", None)]
    for path, mode, words, box, needle in cases:
        with pytest.raises(InputError) as err:
            next(matte_clip(path, mode, words, box, out_dir=tmp_path / "o"))
        assert needle is None or needle in str(err.value), str(err.value)


def test_first_frame_and_cap_line(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", n=40, audio=False)
    frame, line = V.first_frame(str(clip), Settings.from_env())
    assert frame.shape == (H, W, 3) and f"{W}×{H}, 40 frames at {FPS} fps" in line and "first 30" in line


def test_video_tab_through_gradio_client(tmp_path: Path) -> None:
    gr = pytest.importorskip("gradio")
    from gradio_client import Client, handle_file

    clip = make_clip(tmp_path / "clip.mp4", n=6)
    with gr.Blocks() as demo, gr.Tabs():
        V.video_tab(Settings.from_env())
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(url, verbose=False)
        status, preview, comp, alpha, webm = client.predict(
            handle_file(str(clip)), MODES[2], "", "", "Colour", "#ff0000", True, "SEMat SAM", 0.35, 0.25,
            api_name="/matte_video")
        with pytest.raises(Exception, match="x1,y1,x2,y2"):
            client.predict(handle_file(str(clip)), MODES[1], "", "", "Checkerboard", "#ff0000", False,
                           "SEMat SAM", 0.35, 0.25, api_name="/matte_video")
    finally:
        demo.close()
    assert status.startswith("✓ 6 frame(s)") and "audio: copied" in status
    assert len(decoded(comp)[0]) == 6 and len(decoded(alpha)[0]) == 6 and Path(webm).suffix == ".webm"
    assert Path(preview if isinstance(preview, str) else preview["video"]).suffix == ".mp4"
