"""Frame-by-frame video matting I/O with PyAV (FFmpeg): stream in, process, stream out.

:func:`process_video` decodes the input one frame at a time, hands each RGB frame to a
callback that returns the composite (and the alpha), and encodes the result at once, so peak
memory does not grow with the clip length. Output:

* the composite as **H.264 (libx264), yuv420p, in MP4 with ``+faststart``**: the combination
  every browser plays inline. yuv420p needs even sides, so an odd width/height is padded by
  one replicated row/column (the reported size says so);
* the audio track, when there is one: AAC and MP3 are copied packet for packet, anything else
  is transcoded to AAC;
* optionally an alpha video (the matte as grey H.264, same timing) and/or a PNG sequence of
  RGBA frames (``frame_000001.png``...), and (:func:`matte_video`, :class:`WebMAlphaWriter`) a
  transparent VP9 WebM with alpha.

Frames are written at the input's average frame rate (constant frame rate output).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from semat.errors import InputError, VideoInputError

BROWSER_AUDIO = {"aac", "mp3"}
DEFAULT_CRF = 18


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: Fraction
    frames: int | None  # from the container header (None when unknown)
    duration: float | None  # seconds
    audio_codec: str | None  # None: no audio track

    @property
    def has_audio(self) -> bool:
        return self.audio_codec is not None


@dataclass
class VideoResult:
    output: Path
    frames: int
    width: int
    height: int
    fps: Fraction
    audio: str  # "copied", "transcoded to aac" or "none"
    alpha_video: Path | None = None
    png_dir: Path | None = None
    webm: Path | None = None  # the transparent VP9 WebM (:func:`matte_video`)
    notices: list[str] = field(default_factory=list)


def _open_input(path: str | os.PathLike) -> av.container.InputContainer:
    p = Path(path)
    if not p.is_file():
        raise VideoInputError(f"{p}: no such file")
    try:
        container = av.open(str(p))
    except av.FFmpegError as exc:
        raise VideoInputError(f"{p.name} is not a readable video ({exc.__class__.__name__})") from None
    if not container.streams.video:
        container.close()
        raise VideoInputError(f"{p.name} has no video stream")
    return container


def _fps(stream: av.video.stream.VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not rate or rate <= 0:
        return Fraction(25)
    return Fraction(rate).limit_denominator(1_000_000)


def probe(path: str | os.PathLike) -> VideoInfo:
    with _open_input(path) as c:
        vs = c.streams.video[0]
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        duration = float(c.duration / av.time_base) if c.duration else None
        return VideoInfo(vs.codec_context.width, vs.codec_context.height, _fps(vs), vs.frames or None,
                         duration, audio)


def iter_frames(path: str | os.PathLike, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Yield HxWx3 uint8 RGB frames one at a time."""
    with _open_input(path) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if max_frames is not None and i >= max_frames:
                break
            yield frame.to_ndarray(format="rgb24")


def _pad_even(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return rgb
    pad = ((0, h % 2), (0, w % 2)) + (((0, 0),) if rgb.ndim == 3 else ())
    return np.pad(rgb, pad, mode="edge")


def _h264_stream(container: av.container.OutputContainer, fps: Fraction, w: int, h: int, crf: int):
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height = w + w % 2, h + h % 2
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = 1 / fps  # frames are numbered 0, 1, 2... in this time base
    stream.options = {"crf": str(crf), "preset": "veryfast"}
    return stream


def _encode(container, stream, rgb: np.ndarray, index: int) -> None:
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_pad_even(rgb)), format="rgb24")
    frame.pts = index
    # not stream.time_base: the muxer replaces that (e.g. 1/10240) when it writes the header
    frame.time_base = stream.codec_context.time_base
    for packet in stream.encode(frame):
        container.mux(packet)


def _flush(container, stream) -> None:
    for packet in stream.encode(None):
        container.mux(packet)


FrameFn = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def process_video(src: str | os.PathLike, dst: str | os.PathLike, fn: FrameFn, *,
                  alpha_video: str | os.PathLike | None = None, png_dir: str | os.PathLike | None = None,
                  keep_audio: bool = True, max_frames: int | None = None, crf: int = DEFAULT_CRF,
                  progress: Callable[[int, int | None], None] | None = None) -> VideoResult:
    """Run ``fn(rgb) -> (composite_rgb, alpha_float)`` on every frame of ``src`` and write ``dst``.

    ``progress(done, total)`` is called after each frame (total may be None).
    """
    from semat.compose import alpha_to_png8, rgba
    from semat.io.images import save_png

    dst = Path(dst)
    if dst.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise InputError(f"{dst.name}: the output must be an .mp4 (H.264) file")
    dst.parent.mkdir(parents=True, exist_ok=True)
    inp = _open_input(src)
    outs: list[av.container.OutputContainer] = []
    try:
        vs = inp.streams.video[0]
        vs.thread_type = "AUTO"
        w, h = vs.codec_context.width, vs.codec_context.height
        fps = _fps(vs)
        total = vs.frames or None
        if max_frames is not None:
            total = min(total, max_frames) if total else max_frames
        ain = inp.streams.audio[0] if (keep_audio and inp.streams.audio) else None
        out = av.open(str(dst), "w", options={"movflags": "+faststart"})
        outs.append(out)
        ovs = _h264_stream(out, fps, w, h, crf)
        audio_mode, aout, resampler = "none", None, None
        if ain is not None:
            if ain.codec_context.name in BROWSER_AUDIO:
                aout = out.add_stream_from_template(ain)
                audio_mode = "copied"
            else:
                rate = ain.codec_context.sample_rate or 48000
                aout = out.add_stream("aac", rate=rate)
                aout.layout = "stereo" if (ain.codec_context.channels or 2) >= 2 else "mono"
                resampler = av.AudioResampler(format="fltp", layout=aout.layout, rate=rate)
                audio_mode = "transcoded to aac"
        alpha_out = alpha_stream = None
        if alpha_video is not None:
            alpha_video = Path(alpha_video)
            alpha_video.parent.mkdir(parents=True, exist_ok=True)
            alpha_out = av.open(str(alpha_video), "w", options={"movflags": "+faststart"})
            outs.append(alpha_out)
            alpha_stream = _h264_stream(alpha_out, fps, w, h, crf)
        if png_dir is not None:
            png_dir = Path(png_dir)
            png_dir.mkdir(parents=True, exist_ok=True)

        n = 0
        done = False
        last_video_pts: float | None = None
        streams = [vs] + ([ain] if ain is not None else [])
        for packet in inp.demux(*streams):  # ends with one empty packet per stream (decoder flush)
            if packet.stream.type == "audio":
                if aout is None:
                    continue
                if resampler is None:
                    if packet.dts is None:
                        continue
                    if done and last_video_pts is not None and packet.pts is not None and \
                            float(packet.pts * packet.time_base) > last_video_pts:
                        continue  # stop the audio with the (truncated) video
                    packet.stream = aout
                    out.mux(packet)
                else:
                    for af in packet.decode():
                        if done and last_video_pts is not None and af.time is not None and af.time > last_video_pts:
                            continue
                        for rf in resampler.resample(af):
                            for p in aout.encode(rf):
                                out.mux(p)
                continue
            if done:
                continue
            for frame in packet.decode():
                if max_frames is not None and n >= max_frames:
                    done = True
                    break
                rgb = frame.to_ndarray(format="rgb24")
                comp, alpha = fn(rgb)
                _encode(out, ovs, comp, n)
                if alpha_out is not None:
                    a8 = alpha_to_png8(alpha)
                    _encode(alpha_out, alpha_stream, np.repeat(a8[:, :, None], 3, axis=2), n)
                if png_dir is not None:
                    save_png(png_dir / f"frame_{n + 1:06d}.png", rgba(rgb, alpha))
                n += 1
                last_video_pts = n / float(fps)
                if progress:
                    progress(n, total)
        if n == 0:
            raise VideoInputError(f"{Path(src).name}: no video frame could be decoded")
        _flush(out, ovs)
        if alpha_out is not None:
            _flush(alpha_out, alpha_stream)
        if resampler is not None and aout is not None:
            for rf in resampler.resample(None):
                for p in aout.encode(rf):
                    out.mux(p)
            for p in aout.encode(None):
                out.mux(p)
    except av.FFmpegError as exc:
        raise VideoInputError(f"{Path(src).name}: video processing failed ({exc})") from None
    finally:
        for c in outs:
            c.close()
        inp.close()
    notices = []
    if w % 2 or h % 2:
        notices.append(f"odd frame size {w}x{h} padded to {w + w % 2}x{h + h % 2} for H.264 yuv420p")
    return VideoResult(dst, n, w + w % 2, h + h % 2, fps, audio_mode,
                       Path(alpha_video) if alpha_video else None, Path(png_dir) if png_dir else None,
                       notices=notices)


class WebMAlphaWriter:
    """Transparent video: VP9 (libvpx) with ``yuva420p`` in WebM, frames encoded as they come.
    Players that support VP9 alpha (Chrome, Firefox, ffmpeg's libvpx decoder) show it transparent."""

    def __init__(self, path: str | os.PathLike, fps: Fraction, width: int, height: int):
        path = Path(path)
        if path.suffix.lower() != ".webm":
            raise VideoInputError(f"{path.name}: the transparent video must be a .webm file")
        if "yuva420p" not in [f.name for f in av.codec.Codec("libvpx-vp9", "w").video_formats or []]:
            raise VideoInputError("this FFmpeg build's libvpx-vp9 cannot encode alpha (yuva420p); "
                                  "use PNG frames for transparent output")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.container = av.open(str(path), "w")
        s = self.container.add_stream("libvpx-vp9", rate=fps)
        s.width, s.height, s.pix_fmt = width + width % 2, height + height % 2, "yuva420p"
        s.codec_context.time_base = 1 / fps
        s.options = {"crf": "32", "b:v": "0", "deadline": "realtime", "cpu-used": "8", "row-mt": "1"}
        self.stream = s
        self.n = 0

    def write(self, rgba: np.ndarray) -> None:
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_pad_even(rgba)), format="rgba")
        frame.pts, frame.time_base = self.n, self.stream.codec_context.time_base
        for packet in self.stream.encode(frame):
            self.container.mux(packet)
        self.n += 1

    def close(self) -> None:
        try:
            _flush(self.container, self.stream)
        finally:
            self.container.close()


AlphaFn = Callable[[np.ndarray], np.ndarray]


def matte_video(src: str | os.PathLike, dst: str | os.PathLike, alpha_fn: AlphaFn, background: Any, *,
                webm: str | os.PathLike | None = None, foreground_estimation: bool = False,
                **kwargs: Any) -> VideoResult:
    """:func:`process_video` with ``alpha_fn(rgb) -> alpha`` composited over ``background`` (a
    :class:`~semat.compose.Background`; a constant one is built once per frame size), and
    optionally a transparent WebM (``webm``, :class:`WebMAlphaWriter`) written alongside.
    ``kwargs`` go to :func:`process_video`. What ``semat video``, ``semat human-video`` and the
    app's Video tab share."""
    from semat.compose import background_array, composite, rgba

    if background.kind == "transparent":
        raise InputError("an H.264 composite has no transparency: composite over a colour or a checkerboard "
                         "and take the transparent WebM or PNG frames for transparency")
    writer = None
    if webm is not None:
        info = probe(src)
        writer = WebMAlphaWriter(webm, info.fps, info.width, info.height)
    constant: dict[tuple[int, ...], np.ndarray] = {}

    def per_frame(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha = alpha_fn(rgb)
        if foreground_estimation or background.kind == "blur":
            comp = composite(rgb, alpha, background, foreground_estimation=foreground_estimation)
        else:
            key = rgb.shape[:2]
            if key not in constant:
                constant[key] = background_array(background, rgb).astype(np.float32)
            a = alpha[:, :, None]
            comp = np.clip(np.rint(rgb * a + constant[key] * (1.0 - a)), 0, 255).astype(np.uint8)
        if writer is not None:
            writer.write(rgba(rgb, alpha))
        return comp, alpha

    try:
        res = process_video(src, dst, per_frame, **kwargs)
    finally:
        if writer is not None:
            writer.close()
    res.webm = writer.path if writer is not None else None
    return res
