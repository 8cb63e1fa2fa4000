"""What the status line says while a run works: the pipeline's stages ("Matting object 2 of 5…")
with an ETA from measured per-stage times.

The model call runs in a worker thread; its progress callback queues the pipeline's messages and
the handler (a generator) yields each one to the status line as it arrives. Per-object and
per-megapixel times are measured on every run (process-wide, a moving average), so the first
object of a run already has an estimate, and the run's own pace takes over once one object is done.
On ZeroGPU the model runs in another process; the one GPU call is a generator whose items carry
the same messages across (:mod:`semat.app.zerogpu`), so the status line is the same there.
A run's notices end its status lines (:func:`notice_text`), not only a toast.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

from semat.app.session import Cancelled
from semat.app.zerogpu import stages
from semat.settings import Settings

#: the pipeline's per-object message (semat.pipeline.matting): "Matting object 2 of 5..."
OBJECT_RE = re.compile(r"^Matting object (\d+) of (\d+)")


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|~"})


def notice_text(notices: list[str]) -> str:
    """Notices as the end of a status line: " ℹ️ a · b" ("" when there are none); a file name's
    ``_`` or ``*`` stays literal."""
    if not notices:
        return ""
    return " ℹ️ " + " · ".join(n.strip().rstrip(".").translate(_MD_SPECIAL) + "." for n in notices)


def repeated(notices: list[str]) -> list[str]:
    """Notices a status line repeats (not "No person found": the line says it already)."""
    return [n for n in notices if not n.lower().startswith("no person")]


class StageClock:
    """Measured seconds per stage unit (a moving average over runs, process-wide)."""

    def __init__(self, weight: float = 0.5):
        self.weight = weight
        self.seconds: dict[str, float] = {}
        self._lock = threading.Lock()

    def record(self, stage: str, seconds: float) -> None:
        with self._lock:
            old = self.seconds.get(stage)
            self.seconds[stage] = seconds if old is None else old + self.weight * (seconds - old)

    def get(self, stage: str) -> float | None:
        return self.seconds.get(stage)


CLOCK = StageClock()


def _eta(seconds: float | None) -> str:
    if seconds is None or seconds < 0.5:
        return ""
    return f" About {seconds:.0f} s left." if seconds >= 1.5 else " About 1 s left."


class RunProgress:
    """Turns the pipeline's (fraction, message) reports into status-line texts with an ETA."""

    def __init__(self, variant: str, megapixels: float, clock: StageClock = CLOCK):
        self.variant, self.mp, self.clock = variant, megapixels, clock
        self.t_objects: float | None = None  # when the first object started
        self.done = 0

    def text(self, message: str, now: float | None = None) -> str:
        now = time.perf_counter() if now is None else now
        m = OBJECT_RE.search(message)
        if not m:
            return f"**{message.rstrip('.').rstrip('…')}…**"
        i, n = int(m.group(1)), int(m.group(2))
        if self.t_objects is None:
            self.t_objects = now
        elif i - 1 > self.done:  # objects 1 … i-1 are done: the run's own pace
            self.done = i - 1
            self.clock.record(f"object:{self.variant}", (now - self.t_objects) / self.done)
        per = self.clock.get(f"object:{self.variant}")
        left = None if per is None else per * (n - i + 1)
        dl = self.clock.get("downloads_per_mp")
        if left is not None and dl is not None:
            left += dl * self.mp
        return f"**Matting object {i} of {n}…**{_eta(left)}"

    def finish(self, now: float | None = None, n_objects: int = 0) -> None:
        now = time.perf_counter() if now is None else now
        if self.t_objects is not None and n_objects > self.done:
            self.clock.record(f"object:{self.variant}", (now - self.t_objects) / n_objects)


def downloads_eta(megapixels: float) -> str:
    per = CLOCK.get("downloads_per_mp")
    return "" if per is None else _eta(per * megapixels)


def record_downloads(seconds: float, megapixels: float) -> None:
    CLOCK.record("downloads_per_mp", seconds / max(megapixels, 0.01))


def _test_delay() -> float:
    """Test mode only: ``SEMAT_CANVAS_DEMO_DELAY`` seconds per matted object (a slowed run for
    the browser tests of the status line)."""
    s = Settings.from_env()
    return float(s.canvas_demo_delay) if s.test_models else 0.0


def streamed(call: Callable[[Callable[[float, str], None]], Any], row: Callable[[str], tuple],
             progress: RunProgress, stop: Callable[[], bool] | None = None) -> Generator[tuple, None, Any]:
    """Run ``call(progress_callback)`` in a worker thread and yield ``row(status text)`` for each
    stage it reports; return its result (or raise its exception). ``stop`` is asked at each stage
    and every 0.2 s: once it says yes, :class:`~semat.app.session.Cancelled` is raised (the call
    finishes in its thread; its result is dropped)."""
    delay = _test_delay()

    def slowed(report: Callable[[float, str], None]) -> Any:
        def hear(frac: float, message: str) -> None:
            report(frac, message)
            if delay and OBJECT_RE.search(message):
                time.sleep(delay)
        return call(hear if delay else report)

    it = stages(slowed, poll=None if stop is None else 0.2)
    while True:
        try:
            kind, _, message = next(it)
        except StopIteration as done:
            return done.value
        if stop is not None and stop():
            it.close()
            raise Cancelled
        if kind == "stage":
            yield row(progress.text(message))
