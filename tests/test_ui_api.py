"""gradio_client tests for every named endpoint of the app, launched in test mode on 127.0.0.1."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers.app_server import REPO, start_app
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

EXAMPLES = REPO / "examples"
ENDPOINTS = ("/matte_text", "/matte_prompts", "/matte_human", "/detect", "/status")


@pytest.fixture(scope="module")
def server():
    s = start_app()
    print(f"\napp startup (test mode): {s.startup_s:.1f} s")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return Client(server.url, verbose=False)


def _size(path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def _check_outputs(out, image_path: Path, n_objects: int | None = None) -> dict:
    rgba, alpha, composite, layers, info = out
    w, h = _size(image_path)
    with Image.open(rgba) as im:
        assert im.format == "PNG" and im.mode == "RGBA" and im.size == (w, h)
    with Image.open(alpha) as im:
        assert im.format == "PNG" and im.mode == "L" and im.size == (w, h)
    with Image.open(composite) as im:
        assert im.format == "PNG" and im.size == (w, h)
    # the RGBA's alpha channel is exactly the alpha PNG (lossless end to end)
    a_rgba = np.asarray(Image.open(rgba))[..., 3]
    a_png = np.asarray(Image.open(alpha))
    assert np.array_equal(a_rgba, a_png)
    with zipfile.ZipFile(layers) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
        assert {"union.png", "union_alpha.png", "manifest.json"} <= names
        for i in range(len(manifest["objects"])):
            assert {f"object_{i}.png", f"alpha_{i}.png"} <= names
            with Image.open(io.BytesIO(zf.read(f"object_{i}.png"))) as im:
                assert im.mode == "RGBA" and im.size == (w, h)
    assert manifest["test_mode"] is True
    if isinstance(info, str):
        info = json.loads(info)
    assert info["test_mode"] is True
    assert info["device"]
    assert info["timings_s"]
    if n_objects is not None:
        assert len(info["objects"]) == n_objects == len(manifest["objects"])
    return info


def test_named_endpoints_are_listed(client):
    api = client.view_api(return_format="dict", print_info=False)
    named = set(api["named_endpoints"])
    assert set(ENDPOINTS) <= named, named
    params = [p["parameter_name"] for p in api["named_endpoints"]["/matte_text"]["parameters"]]
    assert params[:2] == ["image", "text"]


def test_status(client):
    st = client.predict(api_name="/status")
    assert st["test_mode"] is True
    assert set(st["inference_calls"]) == {"detect", "matte", "human"}
    assert st["device"].startswith(("CPU", "CUDA", "ZeroGPU"))


def test_detect(client):
    img = EXAMPLES / "chelsea.jpg"
    out = client.predict(handle_file(str(img)), "cat", 0.0, 0.0, api_name="/detect")
    dets = out["detections"]
    assert dets, "a zero threshold keeps at least one box"
    w, h = _size(img)
    for d in dets:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h
        assert d["label"] == "cat" and 0 <= d["score"] <= 1


def test_matte_text(client):
    img = EXAMPLES / "chelsea.jpg"
    out = client.predict(image=handle_file(str(img)), text="cat", box_threshold=0.0, text_threshold=0.0,
                         model="sam", background="#00ff00", max_objects=2, api_name="/matte_text")
    info = _check_outputs(out, img)
    assert 1 <= len(info["objects"]) <= 2
    assert info["variant"] == "sam"
    assert all(o["label"] == "cat" and o["source"] == "text" for o in info["objects"])


def test_matte_text_keeps_best_boxes_over_the_limit(client):
    img = EXAMPLES / "coffee.jpg"
    limit = client.predict(api_name="/status")["max_boxes"]
    found = len(client.predict(handle_file(str(img)), "cup", 0.0, 0.0, api_name="/detect")["detections"])
    out = client.predict(handle_file(str(img)), "cup", 0.0, 0.0, "sam", "checker", 0, api_name="/matte_text")
    info = _check_outputs(out, img)
    assert info["detections_found"] == found
    assert len(info["objects"]) == min(found, limit)
    assert ("limit_notice" in info) == (found > limit)


def test_matte_prompts_boxes_and_points(client):
    img = EXAMPLES / "coffee.jpg"
    w, h = _size(img)
    boxes = f"{w * 0.1:.0f}, {h * 0.1:.0f}, {w * 0.6:.0f}, {h * 0.7:.0f}\n{w * 0.5:.0f}, {h * 0.3:.0f}, {w - 1}, {h - 1}"
    points = f"{w * 0.3:.0f}, {h * 0.4:.0f}, 1\n{w * 0.2:.0f}, {h * 0.2:.0f}, 0"
    out = client.predict(handle_file(str(img)), boxes, points, "hq-sam", "checker", api_name="/matte_prompts")
    info = _check_outputs(out, img, n_objects=2)
    assert info["variant"] == "hq-sam"
    assert next(o["box"] for o in info["objects"]) == pytest.approx([round(w * 0.1), round(h * 0.1),
                                                                   round(w * 0.6), round(h * 0.7)])


def test_matte_prompts_sam2_json_boxes(client):
    img = EXAMPLES / "astronaut.jpg"
    w, h = _size(img)
    out = client.predict(handle_file(str(img)), json.dumps([[w // 4, h // 4, w // 2, h // 2]]), "", "sam2",
                         "blur:5", api_name="/matte_prompts")
    info = _check_outputs(out, img, n_objects=1)
    assert info["variant"] == "sam2"


def test_matte_human(client):
    img = EXAMPLES / "astronaut.jpg"
    out = client.predict(handle_file(str(img)), "white", api_name="/matte_human")
    info = _check_outputs(out, img, n_objects=1)
    assert info["objects"][0]["label"] == "person"


def test_inference_counters_count_calls(client):
    before = client.predict(api_name="/status")["inference_calls"]
    client.predict(handle_file(str(EXAMPLES / "astronaut.jpg")), api_name="/matte_human")
    after = client.predict(api_name="/status")["inference_calls"]
    assert after["human"] == before["human"] + 1
    assert after["matte"] == before["matte"] and after["detect"] == before["detect"]


def _error_message(client, *args, api_name) -> str:
    with pytest.raises(AppError) as exc:
        client.predict(*args, api_name=api_name)
    return str(exc.value)


def test_friendly_errors_and_app_keeps_serving(client, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a picture")
    msg = _error_message(client, handle_file(str(bad)), api_name="/matte_human")
    assert "notes.png" in msg and "upload a jpeg" in msg.lower(), msg
    img = EXAMPLES / "coffee.jpg"
    w, h = _size(img)
    msg = _error_message(client, handle_file(str(img)), "", "", "hq-sam", "transparent", api_name="/matte_prompts")
    assert "box" in msg.lower()
    many = "\n".join(f"0, 0, {w - 1 - i}, {h - 1}" for i in range(40))
    msg = _error_message(client, handle_file(str(img)), many, "", "hq-sam", "transparent", api_name="/matte_prompts")
    assert "too many boxes" in msg.lower()
    msg = _error_message(client, handle_file(str(img)), f"{w + 10}, {h + 10}, {w + 50}, {h + 50}", "", "hq-sam",
                         "transparent", api_name="/matte_prompts")
    assert "outside" in msg.lower()  # no overlap: refused (a partial overlap is clipped, see below)
    msg = _error_message(client, handle_file(str(img)), "1, 2, 3", "", "hq-sam", "transparent",
                         api_name="/matte_prompts")
    assert "4 numbers" in msg
    msg = _error_message(client, handle_file(str(img)), "cup", 0.35, 0.25, "nope", "transparent", 0,
                         api_name="/matte_text")
    assert "hq-sam" in msg and "sam2" in msg, msg  # the message lists the accepted models
    msg = _error_message(client, handle_file(str(img)), "cup", 0.35, 0.25, "sam", "polka dots", 0,
                         api_name="/matte_text")
    assert "background" in msg.lower()
    msg = _error_message(client, handle_file(str(img)), "   ", api_name="/detect")
    assert "type what to cut out" in msg.lower()
    # a box reaching past the border is clipped with a notice, as everywhere (semat.validate)
    out = client.predict(handle_file(str(img)), f"0, 0, {w + 50}, {h + 50}", "", "sam", "transparent",
                         api_name="/matte_prompts")
    info = _check_outputs(out, img, n_objects=1)
    assert info["objects"][0]["box"] == [0, 0, w, h] and any("clipped" in n for n in info["notices"])
    # and the app still serves a good request afterwards
    out = client.predict(handle_file(str(img)), f"{w // 4}, {h // 4}, {w // 2}, {h // 2}", "", "sam", "transparent",
                         api_name="/matte_prompts")
    _check_outputs(out, img, n_objects=1)


def test_user_errors_are_one_log_line_not_a_traceback(server, client, tmp_path):
    """Ordinary user errors (a corrupt file, a bad box, no prompt, an unknown model or background,
    nothing found) leave at most one line each in the server log, never a traceback."""
    start = len(server.log_path.read_bytes())
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"definitely not a PNG")
    img = handle_file(str(EXAMPLES / "coffee.jpg"))
    requests = [((handle_file(str(bad)), "transparent"), "/matte_human"),
                ((img, "1, 2, 3", "", "hq-sam", "transparent"), "/matte_prompts"),
                ((img, "", "", "hq-sam", "transparent"), "/matte_prompts"),
                ((img, "cup", 0.35, 0.25, "nope", "transparent", 0), "/matte_text"),
                ((img, "cup", 0.35, 0.25, "sam", "polka dots", 0), "/matte_text"),
                ((img, "   "), "/detect"),
                ((img, "cup", 1.0, 0.25), "/detect")]
    for args, name in requests:
        _error_message(client, *args, api_name=name)
    client.predict(api_name="/status")  # the log has caught up with the requests above
    log = server.log_path.read_bytes()[start:].decode(errors="replace")
    assert "Traceback" not in log, log
    lines = [ln for ln in log.splitlines() if ln.strip()]
    assert len(lines) <= len(requests), lines


def test_no_endpoint_shows_placeholder_examples(client):
    """The Batch and Video tabs' endpoints too: every parameter has a real example, no "Hello!!"."""
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/matte_batch", "/matte_video"} <= set(info)
    for name, endpoint in info.items():
        for p in endpoint["parameters"]:
            assert "Hello!!" not in json.dumps(p["example_input"]), (name, p["parameter_name"])
            assert "sample_file.pdf" not in json.dumps(p["example_input"]), (name, p["parameter_name"])


def test_api_page_examples_run_as_pasted(client, tmp_path):
    """Every named endpoint documents each parameter, and its example values are real ones: the
    snippets the API page shows run (the example photo is a URL; a local photo of its size stands
    in for it here, offline)."""
    info = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(ENDPOINTS) <= set(info)
    examples = {}
    for name in ENDPOINTS:
        params = info[name]["parameters"]
        for p in params:
            assert p["python_type"]["description"].strip(), (name, p["parameter_name"])
            assert "Hello!!" not in json.dumps(p["example_input"]), (name, p)
        examples[name] = {p["parameter_name"]: (p["parameter_default"] if p["parameter_has_default"]
                                                else p["example_input"]) for p in params}
    assert "bus.png" in json.dumps(examples["/matte_prompts"]["image"])
    photo = tmp_path / "bus.png"  # the size of the example photo, 810 x 1080
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (1080, 810, 3), np.uint8)).save(photo)
    for name in ("/matte_prompts", "/matte_human"):
        kw = {**examples[name], "image": handle_file(str(photo))}
        _check_outputs(client.predict(**kw, api_name=name), photo)
    # the text endpoints run too (the tiny test detector scores too low for the default thresholds)
    kw = {**examples["/matte_text"], "image": handle_file(str(photo)), "box_threshold": 0.01,
          "text_threshold": 0.01}
    _check_outputs(client.predict(**kw, api_name="/matte_text"), photo)
    assert examples["/matte_text"]["text"] == "bus"


def test_no_detection_message(client):
    img = EXAMPLES / "coffee.jpg"
    msg = _error_message(client, handle_file(str(img)), "cup", 1.0, 0.25, api_name="/detect")
    assert "threshold" in msg.lower() or "draw a box" in msg.lower(), msg


@pytest.mark.slow
def test_missing_weights_offline_is_friendly(tmp_path):
    """Without test mode and with an empty weights folder offline, a run says which file to get."""
    s = start_app(extra_env={"SEMAT_TEST_MODELS": "", "SEMAT_WEIGHTS_DIR": str(tmp_path / "empty"),
                             "SEMAT_PRELOAD": "none"})
    try:
        c = Client(s.url, verbose=False)
        assert c.predict(api_name="/status")["test_mode"] is False
        img = EXAMPLES / "coffee.jpg"
        msg = _error_message(c, handle_file(str(img)), api_name="/matte_human")
        assert "weights" in msg.lower() or "sghm" in msg.lower(), msg
        msg = _error_message(c, handle_file(str(img)), "10, 10, 100, 100", "", "hq-sam", "transparent",
                             api_name="/matte_prompts")
        assert "semat" in msg.lower(), msg
        assert c.predict(api_name="/status")["test_mode"] is False  # still serving
    finally:
        s.stop()
