"""A bounded soak of the test-mode app (issue 13): 8 callers × 25 mixed requests on loopback.

Asserts no failed request (expected user errors are answers, not failures), server RSS growth
after warm-up under 15 %, open file descriptors back to their baseline, and Gradio's cache (which
holds the app's results, stored once) under its bound. Loops are bounded in count and time and stop by themselves.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest
from helpers.app_server import REPO, start_app

pytestmark = pytest.mark.slow
gradio_client = pytest.importorskip("gradio_client")

CALLERS, REQUESTS = 8, 25
EXAMPLES = REPO / "examples"
RESULTS_MAX_MB = 100  # SEMAT_UI_OUTPUT_MAX_MB for the soak: small, so the size bound acts
OUTPUT_BOUND_MB = 150  # Gradio's cache (uploads + the results inside it): the bound plus in-flight results


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6 if path.exists() else 0.0


def _request(client, rng: random.Random) -> None:
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    img = handle_file(str(EXAMPLES / rng.choice(["chelsea.jpg", "coffee.jpg", "astronaut.jpg"])))
    kind = rng.choice(["prompts", "text", "human", "detect", "status", "bad"])
    if kind == "prompts":
        x = rng.choice(range(0, 80, 10))  # a bounded working set: the matte cache fills during warm-up
        client.predict(img, f"{x}, {x}, {x + 120}, {x + 100}", f"{x + 50}, {x + 40}, 1", rng.choice(["sam", "sam2"]),
                       rng.choice(["transparent", "white", "blur:5", "checker"]), api_name="/matte_prompts")
    elif kind == "text":
        client.predict(img, "cat", 0.0, 0.0, "sam2", "transparent", 2, api_name="/matte_text")
    elif kind == "human":
        client.predict(img, "#00b140", api_name="/matte_human")
    elif kind == "detect":
        client.predict(img, "cup", 0.0, 0.0, api_name="/detect")
    elif kind == "status":
        client.predict(api_name="/status")
    else:  # an expected user error is an answer, not a failure
        try:
            client.predict(img, "5000, 5000, 6000, 6000", "", "sam", "transparent", api_name="/matte_prompts")
        except AppError as exc:
            assert "outside" in str(exc).lower()
        else:
            raise AssertionError("a box outside the image was accepted")


def test_soak(tmp_path: Path) -> None:
    server = start_app(extra_env={"SEMAT_UI_OUTPUT_MAX_MB": str(RESULTS_MAX_MB)})
    try:
        pid = server.proc.pid
        outputs = server.workdir / "gradio"  # Gradio's cache, with the app's results inside it
        warm = gradio_client.Client(server.url, verbose=False)
        rng = random.Random(0)
        for _ in range(6):  # warm-up: every model loaded, caches and JIT filled
            _request(warm, rng)

        def warm_caller(seed: int) -> None:
            client, r = gradio_client.Client(server.url, verbose=False), random.Random(1000 + seed)
            for _ in range(8):
                _request(client, r)

        threads = [threading.Thread(target=warm_caller, args=(i,)) for i in range(CALLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(1.0)
        rss0, fds0 = _rss_mb(pid), _fds(pid)
        failures: list[str] = []
        done = [0]
        deadline = time.monotonic() + 600

        def caller(seed: int) -> None:
            client = gradio_client.Client(server.url, verbose=False)
            r = random.Random(seed)
            for _ in range(REQUESTS):
                if time.monotonic() > deadline:
                    failures.append("deadline")
                    return
                try:
                    _request(client, r)
                    done[0] += 1
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {str(exc)[:200]}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        time.sleep(2.0)
        rss1, fds1 = _rss_mb(pid), _fds(pid)
        print(f"\nsoak: {done[0]} requests in {elapsed:.0f} s, {len(failures)} failures; RSS {rss0:.0f} -> "
              f"{rss1:.0f} MB ({(rss1 / rss0 - 1) * 100:+.1f} %); fds {fds0} -> {fds1}; outputs "
              f"{_folder_mb(outputs):.0f} MB")
        assert failures == []
        assert done[0] == CALLERS * REQUESTS
        assert rss1 <= rss0 * 1.15
        assert fds1 <= fds0 + CALLERS  # at most one lingering keep-alive socket per caller
        assert _folder_mb(outputs) < OUTPUT_BOUND_MB
        assert gradio_client.Client(server.url, verbose=False).predict(api_name="/status")["test_mode"]
    finally:
        server.stop()
