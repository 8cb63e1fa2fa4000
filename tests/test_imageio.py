"""Input hygiene: orientation, modes, size limits, bad files, PNG writers."""

from __future__ import annotations

import base64
import io
import os
import re
import struct
import textwrap
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from semat.io import images as imageio
from semat.io.images import ImageInputError, encode_png, load_image, read_png, save_png


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _gradient_rgb(w: int = 40, h: int = 24) -> np.ndarray:
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    return np.stack([x, y, 255 - x], axis=2).astype(np.uint8)


# ------------------------------------------------------------------------------ orientation


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # Stored landscape 40x24 with a red left column; orientation 6 = rotate 90° clockwise to view.
    arr = np.zeros((24, 40, 3), np.uint8)
    arr[:, :4] = (255, 0, 0)
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    img.save(path, exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    assert loaded.rgb.shape == (40, 24, 3)  # upright is portrait
    assert loaded.original_size == (24, 40)
    # After a clockwise turn the stored left column becomes the top row.
    assert loaded.rgb[:3, :, 0].mean() > 200 and loaded.rgb[-3:, :, 0].mean() < 60
    assert any("EXIF orientation" in n for n in loaded.notices)


def test_no_orientation_tag_keeps_pixels() -> None:
    arr = _gradient_rgb()
    loaded = load_image(_png_bytes(Image.fromarray(arr)))
    np.testing.assert_array_equal(loaded.rgb, arr)
    assert loaded.notices == []
    assert loaded.original_size == (40, 24)


# ----------------------------------------------------------------------------------- modes


@pytest.mark.parametrize("mode", ["1", "L", "P"])
def test_gray_and_palette_become_rgb(mode: str) -> None:
    img = Image.fromarray(_gradient_rgb()).convert(mode)
    loaded = load_image(_png_bytes(img))
    assert loaded.rgb.dtype == np.uint8 and loaded.rgb.shape == (24, 40, 3)
    np.testing.assert_array_equal(loaded.rgb, np.asarray(img.convert("RGB")))


@pytest.mark.parametrize("mode", ["RGBA", "LA", "PA"])
def test_transparency_is_composited_on_white(mode: str) -> None:
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., :3] = 0  # black colour under a half-transparent / transparent alpha
    rgba[:, :4, 3] = 0
    rgba[:, 4:8, 3] = 128
    rgba[:, 8:, 3] = 255
    img = Image.fromarray(rgba, "RGBA")
    if mode == "LA":
        img = img.convert("LA")
    elif mode == "PA":
        img = img.convert("PA")  # PNG cannot store PA: hand the PIL image over directly
    loaded = load_image(img if mode == "PA" else _png_bytes(img))
    assert loaded.rgb.shape == (10, 12, 3)
    assert (loaded.rgb[:, :4] == 255).all()  # fully transparent → white
    assert np.abs(loaded.rgb[:, 4:8].astype(int) - 127).max() <= 1  # half → mid gray
    assert (loaded.rgb[:, 8:] == 0).all()  # opaque black stays black
    assert any("white" in n for n in loaded.notices)


def test_palette_with_transparent_index() -> None:
    img = Image.new("P", (12, 8), 0)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.paste(1, (6, 0, 12, 8))
    img.info["transparency"] = 0
    loaded = load_image(_png_bytes(img))
    assert (loaded.rgb[:, :6] == 255).all()
    assert (loaded.rgb[:, 6:] == (255, 0, 0)).all()


def test_cmyk_jpeg(tmp_path: Path) -> None:
    img = Image.new("CMYK", (16, 8), (0, 255, 255, 0))  # pure red in CMYK
    path = tmp_path / "print.jpg"
    img.save(path, quality=95)
    loaded = load_image(path)
    assert loaded.rgb.shape == (8, 16, 3)
    r, g, b = loaded.rgb.reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize("value16, expected8", [(0, 0), (257, 1), (32896, 128), (65535, 255)])
def test_16bit_gray_png_is_scaled_not_clipped(tmp_path: Path, value16: int, expected8: int) -> None:
    arr = np.full((9, 11), value16, np.uint16)
    path = save_png(tmp_path / "deep.png", arr)
    assert Image.open(path).mode == "I;16"
    loaded = load_image(path)
    assert loaded.rgb.shape == (9, 11, 3)
    assert (loaded.rgb == expected8).all()


def test_16bit_gray_gradient_keeps_full_range(tmp_path: Path) -> None:
    arr = np.linspace(0, 65535, 64 * 8).astype(np.uint16).reshape(8, 64)
    loaded = load_image(save_png(tmp_path / "ramp.png", arr))
    g = loaded.rgb[..., 0]
    assert g.min() == 0 and g.max() == 255
    assert len(np.unique(g)) > 200  # scaled, so the ramp is preserved (clipping would saturate)
    np.testing.assert_allclose(g.astype(float), arr / 257.0, atol=0.51)


def test_16bit_rgb_png(tmp_path: Path) -> None:
    import cv2

    arr = np.zeros((8, 8, 3), np.uint16)
    arr[..., 0] = 65535  # R at full scale
    arr[..., 1] = 32896  # G half
    path = tmp_path / "rgb48.png"
    cv2.imwrite(str(path), arr[..., ::-1])  # cv2 writes BGR
    loaded = load_image(path)
    assert loaded.rgb.dtype == np.uint8
    assert (loaded.rgb[..., 0] == 255).all()
    assert (np.abs(loaded.rgb[..., 1].astype(int) - 128) <= 1).all()
    assert (loaded.rgb[..., 2] == 0).all()


def test_32bit_int_and_float_gray(tmp_path: Path) -> None:
    f = np.linspace(0, 1, 80, dtype=np.float32).reshape(8, 10)
    img_f = Image.fromarray(f, mode="F")
    buf = io.BytesIO()
    img_f.save(buf, format="TIFF")
    loaded = load_image(buf.getvalue(), name="float.tif")
    np.testing.assert_allclose(loaded.rgb[..., 0] / 255.0, f, atol=1 / 255)
    i = (np.linspace(0, 65535, 80).astype(np.int32)).reshape(8, 10)
    buf = io.BytesIO()
    Image.fromarray(i, mode="I").save(buf, format="TIFF")
    loaded = load_image(buf.getvalue(), name="int.tif")
    assert loaded.rgb[..., 0].max() == 255 and loaded.rgb[..., 0].min() == 0


def test_array_inputs() -> None:
    gray16 = np.full((8, 9), 65535, np.uint16)
    assert (load_image(gray16).rgb == 255).all()
    rgbf = np.full((8, 9, 3), 0.5, np.float32)
    assert (load_image(rgbf).rgb == 128).all()
    rgba = np.zeros((8, 9, 4), np.uint8)
    assert (load_image(rgba).rgb == 255).all()
    with pytest.raises(ImageInputError, match="shape"):
        load_image(np.zeros((8, 9, 2), np.uint8))


def test_pil_input_and_first_frame_of_animation() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    loaded = load_image(buf.getvalue(), name="anim.gif")
    assert loaded.rgb[0, 0, 0] > 200
    assert any("frames" in n for n in loaded.notices)
    loaded = load_image(Image.new("L", (10, 8), 7))
    assert loaded.rgb.shape == (8, 10, 3) and (loaded.rgb == 7).all()


# ------------------------------------------------------------------------------ size limits


def test_megapixel_cap_downscales_with_notice() -> None:
    arr = np.zeros((300, 400, 3), np.uint8)
    arr[:, 200:] = 255
    loaded = load_image(arr, max_megapixels=0.03, name="big.png")
    w, h = loaded.size
    assert w * h <= 30_000 and abs(w / h - 4 / 3) < 0.02
    assert loaded.original_size == (400, 300) and loaded.downscaled
    assert len(loaded.notices) == 1 and "downscaled" in loaded.notices[0]
    assert "400×300" in loaded.notices[0] and f"{w}×{h}" in loaded.notices[0]
    # the content survives (right half white)
    assert loaded.rgb[:, -5:].mean() > 250 and loaded.rgb[:, :5].mean() < 5
    assert load_image(arr, max_megapixels=None).rgb.shape == (300, 400, 3)


def test_megapixel_cap_on_large_jpeg_uses_reduced_decoding(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    Image.fromarray(np.full((800, 1200, 3), 90, np.uint8)).save(path, quality=90)
    loaded = load_image(path, max_megapixels=0.1)
    w, h = loaded.size
    assert w * h <= 100_000 and loaded.original_size == (1200, 800)
    assert abs(int(loaded.rgb.mean()) - 90) <= 2


def test_max_megapixels_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_MAX_MEGAPIXELS", "2.5")
    assert imageio.max_megapixels_from_env() == 2.5
    monkeypatch.setenv("SEMAT_MAX_MEGAPIXELS", "lots")
    with pytest.raises(ValueError, match="SEMAT_MAX_MEGAPIXELS"):
        imageio.max_megapixels_from_env()
    assert imageio.DEFAULT_MAX_MEGAPIXELS > 0


def _png_header_only(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (1-bit gray) with a tiny, incomplete body."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(100_000, 100_000))  # 10 gigapixels in a few bytes
    with pytest.raises(ImageInputError, match=r"bomb\.png.*decompression bomb") as info:
        load_image(path)
    assert "\n" not in str(info.value)


def test_bomb_limit_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMAT_MAX_INPUT_MEGAPIXELS", "1")
    with pytest.raises(ImageInputError, match="safety limit"):
        load_image(_png_header_only(2000, 1000), name="wide.png")
    with pytest.raises(ImageInputError, match="safety limit"):
        load_image(np.zeros((1001, 1000, 3), np.uint8))


# ------------------------------------------------------------------------------- bad files


def test_bad_files_get_one_line_errors(tmp_path: Path) -> None:
    good = io.BytesIO()
    Image.fromarray(_gradient_rgb(200, 200)).save(good, format="JPEG", quality=95)
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 3])
    png = _png_bytes(Image.fromarray(_gradient_rgb(64, 64)))
    corrupt_png = tmp_path / "broken.png"
    corrupt_png.write_bytes(png[:60] + b"\x00" * 40 + png[100:])
    # Once a file is known to be an image, the message says what is wrong with it.
    for path, pattern in {truncated: r"cut\.jpg is corrupt or truncated",
                          corrupt_png: r"broken\.png is (corrupt|not a readable image)"}.items():
        with pytest.raises(ImageInputError, match=pattern) as info:
            load_image(path)
        assert "\n" not in str(info.value)
        assert isinstance(info.value, ValueError)
    with pytest.raises(ImageInputError, match=r"upload\.bin is not an image"):
        load_image(b"\x00\x01garbage", name="upload.bin")
    with pytest.raises(ImageInputError, match=r"upload\.bin is empty"):
        load_image(b"", name="upload.bin")
    with pytest.raises(ImageInputError, match="unsupported image input"):
        load_image(12345)


def test_path_messages_do_not_reveal_whether_a_path_exists(tmp_path: Path) -> None:
    """H1: absent, unreadable, not-a-file, empty and not-an-image paths all get one message."""
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image\n")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    locked = tmp_path / "locked.png"
    locked.write_bytes(_png_bytes(Image.fromarray(_gradient_rgb())))
    locked.chmod(0)
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)  # would block a plain open(): must be refused at once
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "gone.png")
    cases = [text, empty, fifo, dangling, tmp_path / "missing.png", tmp_path, Path("/dev/null"),
             tmp_path / ("x" * 5000), "/etc/passwd", "/etc/shadow", "bad\0name.png"]
    if os.geteuid() != 0:  # root reads a mode-000 file anyway
        cases.append(locked)
    messages = set()
    for path in cases:
        with pytest.raises(ImageInputError) as info:
            load_image(path, name="bg.png")
        messages.add(str(info.value))
    assert messages == {"bg.png cannot be read as an image (no such file, not readable, or not an image file)"}
    # Without a display name: the same basename gives the same message, present or not.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.png").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "c" / "x.png").mkdir(parents=True)
    found = set()
    for folder in "abc":
        with pytest.raises(ImageInputError) as info:
            load_image(tmp_path / folder / "x.png")
        found.add(str(info.value))
    assert found == {"x.png cannot be read as an image (no such file, not readable, or not an image file)"}


def test_echoed_names_are_clipped(tmp_path: Path) -> None:
    """L8: a message never quotes a whole long input back."""
    with pytest.raises(ImageInputError) as info:
        load_image(tmp_path / ("y" * 10_000))
    assert len(str(info.value)) < 200 and "…" in str(info.value)
    with pytest.raises(ImageInputError) as info:
        load_image(b"\x00garbage", name="z" * 10_000)
    assert len(str(info.value)) < 200
    with pytest.raises(ImageInputError, match="is a data: URL, not a file path") as info:
        load_image("data:image/png;base64," + "A" * 100_000)
    assert len(str(info.value)) < 250


# ------------------------------------------------- limits before decoding (issue 13: M1–M4)


def _big_zero_png(w: int, h: int, rows_per_block: int = 240) -> bytes:
    """A valid 8-bit gray PNG of w x h zeros, built without compressing w*h bytes: one deflate
    block of ``rows_per_block`` rows, full-flushed (so it can be repeated), then the trailer."""
    row = b"\0" * (w + 1)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(row * rows_per_block) + c.flush(zlib.Z_FULL_FLUSH)
    assert h % rows_per_block == 0
    body = (b"\x78\xda" + block * (h // rows_per_block) + b"\x03\x00"
            + struct.pack(">I", zlib.adler32(bytes(len(row) * h))))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_small_valid_png_is_decodable() -> None:
    loaded = load_image(_big_zero_png(1250, 1200), max_megapixels=None)
    assert loaded.size == (1250, 1200) and not loaded.rgb.any()


def test_150_megapixel_png_is_refused_from_its_header(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """M2: a ~146 kB PNG of 12500x12000 is refused in well under a second, without decoding."""
    data = _big_zero_png(12_500, 12_000)
    assert len(data) < 200_000
    path = tmp_path / "big_150mp.png"
    path.write_bytes(data)
    monkeypatch.setenv("SEMAT_MAX_INPUT_MEGAPIXELS", "100")  # read per call, not at import

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        lazy = Image.open(path)
    for src in (path, data, lazy):
        t0 = time.perf_counter()
        with pytest.raises(ImageInputError) as info:
            load_image(src, name="big_150mp.png")
        assert time.perf_counter() - t0 < 0.5
        assert str(info.value) == ("big_150mp.png is 12500×12000 px (150 MP), above the 100 MP safety limit for "
                                   "input images (a possible decompression bomb); resize it first or raise "
                                   "SEMAT_MAX_INPUT_MEGAPIXELS")


def test_150_megapixel_png_is_refused_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """M2 with no setting at all: the default SEMAT_MAX_INPUT_MEGAPIXELS is below 150 MP."""
    monkeypatch.delenv("SEMAT_MAX_INPUT_MEGAPIXELS", raising=False)
    data = _big_zero_png(12_500, 12_000)
    t0 = time.perf_counter()
    with pytest.raises(ImageInputError, match=r"12500×12000 px \(150 MP\), above the \d+ MP safety limit"):
        load_image(data, name="big.png")
    assert time.perf_counter() - t0 < 0.5  # decoding it would take 20 s or more


@pytest.mark.parametrize("w, h, rule", [(1, 1, "at least 8 px"), (7, 100, "at least 8 px"),
                                        (10_000, 8, "more elongated than"), (8, 2050, "more elongated than")])
def test_tiny_and_extreme_images_are_refused_on_every_path(tmp_path: Path, w: int, h: int, rule: str) -> None:
    """M3/M4: the size rules of semat.validate.check_size, read from the header, on every path."""
    arr = np.full((h, w, 3), 200, np.uint8)
    data = _png_bytes(Image.fromarray(arr))
    path = tmp_path / "odd.png"
    path.write_bytes(data)
    messages = set()
    for src in (path, data, Image.open(io.BytesIO(data)), arr, arr[..., 0]):
        with pytest.raises(ImageInputError, match=rule) as info:
            load_image(src, name="odd.png")
        messages.add(str(info.value))
    assert len(messages) == 1, messages
    assert re.search(rf"odd\.png is {w}\s*[x×]\s*{h} px", messages.pop())


def test_smallest_and_most_elongated_accepted_images_load() -> None:
    assert load_image(np.zeros((8, 8, 3), np.uint8)).size == (8, 8)
    assert load_image(_png_bytes(Image.new("RGB", (512, 8)))).size == (512, 8)  # exactly 64:1


@pytest.mark.parametrize("text, expected", [("50mb", 50 * 1024 ** 2), ("1 GB", 1024 ** 3), ("200kb", 204_800),
                                            ("123b", 123), (4096, 4096)])
def test_parse_size_reads_gradio_size_strings(text: str | int, expected: int) -> None:
    assert imageio.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "mb", "50", "1.5gb", "50 parsecs", "-5mb"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match="SEMAT_MAX_UPLOAD"):
        imageio.parse_size(text)


def test_byte_cap_applies_to_files_and_bytes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """M1: encoded images above SEMAT_MAX_UPLOAD are refused, whatever path they arrive by."""
    rng = np.random.default_rng(0)
    data = _png_bytes(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)))  # ~12 kB
    path = tmp_path / "noise.png"
    path.write_bytes(data)
    assert imageio.max_bytes_from_env() == 50 * 1024 ** 2  # the default, "50mb"
    monkeypatch.setenv("SEMAT_MAX_UPLOAD", "8kb")
    assert imageio.max_bytes_from_env() == 8192
    for src in (path, data):
        with pytest.raises(ImageInputError, match=r"noise\.png is 1\d\.\d kB, above the 8\.0 kB limit for "
                                                  r"images \(SEMAT_MAX_UPLOAD\)"):
            load_image(src, name="noise.png")
    assert load_image(path, max_bytes=None).size == (64, 64)  # explicit opt-out
    assert load_image(data, max_bytes=len(data)).size == (64, 64)
    with pytest.raises(ImageInputError, match="above the"):
        load_image(data, max_bytes=len(data) - 1)
    with pytest.raises(ValueError, match="max_bytes"):
        load_image(data, max_bytes=0)


def test_data_urls_get_the_same_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    arr = np.random.default_rng(1).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    data = _png_bytes(Image.fromarray(arr))  # ~3 kB
    url = "data:image/png;base64," + base64.b64encode(data).decode()
    assert imageio.is_data_url(url) and imageio.is_data_url("DATA:image/png;base64,") and not imageio.is_data_url(b"x")
    np.testing.assert_array_equal(imageio.load_image_data_url(url).rgb, arr)
    wrapped = "data:image/png;base64," + "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76))
    np.testing.assert_array_equal(imageio.load_image_data_url(wrapped).rgb, arr)
    # over the cap: refused from the URL's length, before any base64 decoding
    monkeypatch.setenv("SEMAT_MAX_UPLOAD", "1kb")
    decoded: list[int] = []
    real = base64.b64decode
    monkeypatch.setattr(imageio.base64, "b64decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    with pytest.raises(ImageInputError, match=r"image is \d\.\d kB, above the 1\.0 kB limit"):
        imageio.load_image_data_url(url)
    assert decoded == []
    monkeypatch.delenv("SEMAT_MAX_UPLOAD")
    for bad, pattern in [("data:text/plain;base64,aGVsbG8=", "not an image"),
                         ("data:image/png,rawbytes", "only base64"),
                         ("data:image/png;base64,!!!!", "not valid base64"),
                         ("/tmp/file.png", "expected a data:image"),
                         ("data:image/png;base64," + base64.b64encode(b"hello").decode(), "not an image file")]:
        with pytest.raises(ImageInputError, match=pattern):
            imageio.load_image_data_url(bad)


def test_settings_are_read_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    arr = np.zeros((200, 200, 3), np.uint8)
    assert load_image(arr).size == (200, 200)
    monkeypatch.setenv("SEMAT_MAX_MEGAPIXELS", "0.01")  # set after import: still honoured
    assert load_image(arr).size == (100, 100)
    monkeypatch.setenv("SEMAT_MAX_INPUT_MEGAPIXELS", "0.02")
    with pytest.raises(ImageInputError, match=r"0\.02 MP safety limit"):
        load_image(arr)
    assert imageio.max_input_megapixels_from_env() == 0.02


# ---------------------------------------------------------------------------------- output


def test_png_writers_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    gray8 = rng.integers(0, 256, (9, 11), dtype=np.uint8)
    gray16 = rng.integers(0, 65536, (9, 11), dtype=np.uint16)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    rgba = rng.integers(0, 256, (9, 11, 4), dtype=np.uint8)
    expected_modes = {"g8": "L", "g16": "I;16", "rgb": "RGB", "rgba": "RGBA"}
    for key, arr in {"g8": gray8, "g16": gray16, "rgb": rgb, "rgba": rgba}.items():
        path = save_png(tmp_path / "sub" / f"{key}.png", arr)
        with Image.open(path) as img:
            assert img.mode == expected_modes[key]
        back = read_png(path)
        assert back.dtype == arr.dtype
        np.testing.assert_array_equal(back, arr)
        np.testing.assert_array_equal(read_png(encode_png(arr)), arr)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        encode_png(np.zeros((3, 3), np.float32))
    with pytest.raises(ValueError, match="single-channel"):
        encode_png(np.zeros((3, 3, 3), np.uint16))
