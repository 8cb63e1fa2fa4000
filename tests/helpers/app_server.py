"""Launch ``app.py`` in test mode on 127.0.0.1 (a free port) and stop it by its own PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class AppServer:
    url: str
    proc: subprocess.Popen
    workdir: Path
    log_path: Path
    startup_s: float

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_app(timeout: float = 180.0, extra_env: dict[str, str] | None = None) -> AppServer:
    """Start the app in test mode; return once ``/config`` answers (or raise with its log)."""
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="semat-app-test-"))
    env = dict(os.environ)
    env.update({
        "SEMAT_TEST_MODELS": "tiny",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "SEMAT_WEIGHTS_DIR": str(workdir / "weights"),  # test mode must never need real weights
        "GRADIO_TEMP_DIR": str(workdir / "gradio"),
        "GRADIO_EXAMPLES_CACHE": str(workdir / "examples-cache"),
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra_env or {})
    log_path = workdir / "app.log"
    t0 = time.perf_counter()
    log = open(log_path, "wb")
    proc = subprocess.Popen([sys.executable, str(REPO / "app.py")], cwd=workdir, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    server = AppServer(url, proc, workdir, log_path, 0.0)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited with code {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(url + "config", timeout=2) as r:
                if r.status == 200:
                    server.startup_s = time.perf_counter() - t0
                    return server
        except OSError:
            time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"app did not answer within {timeout:.0f} s:\n{server.log()}")
