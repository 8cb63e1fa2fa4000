"""Video matting on a short synthetic clip made here (tiny random SGHM)."""

from __future__ import annotations

import av
import numpy as np
import pytest
from PIL import Image

from semat.cli.main import main
from semat.io.video import VideoInputError, probe, process_video


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch):
    monkeypatch.setenv("SEMAT_TEST_MODELS", "tiny")


def make_video(path, n=6, w=96, h=72, fps=10, audio: str | None = "aac", vcodec="libx264", pix_fmt="yuv420p"):
    c = av.open(str(path), "w")
    vs = c.add_stream(vcodec, rate=fps)
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    a = None
    if audio:
        a = c.add_stream(audio, rate=16000)
        a.layout = "mono"
    for i in range(n):
        img = np.full((h, w, 3), 30 * i, np.uint8)
        img[h // 4:3 * h // 4, w // 3:2 * w // 3] = (200, 120, 90)
        for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in vs.encode(None):
        c.mux(p)
    if a is not None:
        t = np.arange(int(16000 * n / fps)) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        fmt = "fltp" if audio == "aac" else "s16"
        for k in range(0, len(samples), 1024):
            chunk = samples[k:k + 1024]
            if fmt == "s16":
                chunk = (chunk * 32767).astype(np.int16)
            fr = av.AudioFrame.from_ndarray(chunk[None], format=fmt, layout="mono")
            fr.sample_rate, fr.pts = 16000, k
            for p in a.encode(fr):
                c.mux(p)
        for p in a.encode(None):
            c.mux(p)
    c.close()
    return path


def decode_all(path):
    with av.open(str(path)) as c:
        streams = {s.type: s.codec_context.name for s in c.streams}
        vs = c.streams.video[0]
        pix = vs.codec_context.pix_fmt
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return streams, pix, frames


def test_composite_video_is_browser_h264_with_audio(tmp_path, capsys):
    src = make_video(tmp_path / "in.mp4")
    out = tmp_path / "out.mp4"
    rc = main(["human-video", str(src), "-o", str(out), "--alpha-video", str(tmp_path / "alpha.mp4"),
               "--png-dir", str(tmp_path / "png")])
    assert rc == 0
    assert "human video" in capsys.readouterr().err  # progress bar
    streams, pix, frames = decode_all(out)
    assert streams == {"video": "h264", "audio": "aac"} and pix == "yuv420p"
    assert len(frames) == 6 and frames[0].shape == (72, 96, 3)
    with av.open(str(out)) as c:
        pts = [f.pts for f in c.decode(video=0)]
    assert pts == sorted(set(pts))  # distinct, increasing timestamps
    with av.open(str(out)) as c:  # the audio was kept, same length as the source's
        assert sum(f.samples for f in c.decode(audio=0)) >= 16000 * 0.5
    a_streams, _, a_frames = decode_all(tmp_path / "alpha.mp4")
    assert a_streams == {"video": "h264"} and len(a_frames) == 6
    pngs = sorted((tmp_path / "png").glob("frame_*.png"))
    assert len(pngs) == 6 and np.array(Image.open(pngs[0])).shape == (72, 96, 4)
    info = probe(out)
    assert (info.width, info.height) == (96, 72) and float(info.fps) == pytest.approx(10)


def test_odd_size_pcm_audio_and_frame_limit(tmp_path):
    src = make_video(tmp_path / "in.mov", n=5, w=66, h=50, audio="pcm_s16le")
    out = tmp_path / "o.mp4"
    calls = []

    def fn(rgb):
        calls.append(rgb.shape)
        alpha = np.full(rgb.shape[:2], 0.5, np.float32)
        return (rgb // 2).astype(np.uint8), alpha

    res = process_video(src, out, fn, max_frames=3)
    assert res.frames == 3 and len(calls) == 3 and calls[0] == (50, 66, 3)
    assert res.audio == "transcoded to aac"
    streams, pix, frames = decode_all(out)
    assert streams == {"video": "h264", "audio": "aac"} and pix == "yuv420p"
    assert len(frames) == 3 and frames[0].shape == (50, 66, 3)


def test_odd_frame_size_is_padded_to_even(tmp_path):
    src = make_video(tmp_path / "in.mov", n=2, w=65, h=49, audio=None, vcodec="png", pix_fmt="rgb24")
    out = tmp_path / "o.mp4"
    res = process_video(src, out, lambda rgb: (rgb, np.zeros(rgb.shape[:2], np.float32)))
    assert res.frames == 2 and res.audio == "none" and (res.width, res.height) == (66, 50)
    assert res.notices and "padded" in res.notices[0]
    _streams, pix, frames = decode_all(out)
    assert pix == "yuv420p" and len(frames) == 2 and frames[0].shape == (50, 66, 3)


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(b"nothing here")
    assert main(["human-video", str(bad), "-o", str(tmp_path / "o.mp4")]) == 2
    assert "clip.mp4" in capsys.readouterr().err
    assert main(["human-video", str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o.mp4")]) == 2
    with pytest.raises(ValueError, match="mp4"):
        process_video(make_video(tmp_path / "ok.mp4", n=1, audio=None), tmp_path / "o.avi", lambda r: (r, r[..., 0]))
    with pytest.raises(VideoInputError):
        probe(bad)
