"""The steps every run shares, in the order a press goes through them: :func:`begin` (the status
line says what runs, the buttons turn busy, Cancel comes on), the model step wrapped by
:meth:`Stop.guard` and :func:`inline` (a failure becomes a message in the status line and the
buttons come back), and the tab's Cancel (:class:`Stop`). Gradio-only; no model code."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import gradio as gr

from semat.app.errors import to_gr_error
from semat.app.session import Cancelled, TabSession, session

SKIP = gr.update()
ON, OFF = gr.update(interactive=True), gr.update(interactive=False)
SHOW = gr.update(visible=True)  # the result column, once there is a result


def error_text(exc: BaseException) -> str:
    err = exc if isinstance(exc, gr.Error) else to_gr_error(exc)
    title = getattr(err, "title", None) or "Error"
    return f"⚠ **{title}:** {err.message}"


def inline(n: int, status: int, enable: tuple[int, ...] = (), disable: tuple[int, ...] = ()) -> Callable:
    """A handler with ``n`` outputs whose failure shows as the ``status`` output (the other outputs
    unchanged, the ``enable`` buttons usable again, the ``disable`` ones not)."""

    def failed(exc: Exception) -> tuple:
        out: list[Any] = [SKIP] * n
        out[status] = error_text(exc)
        for i in enable:
            out[i] = ON
        for i in disable:
            out[i] = OFF
        return tuple(out)

    def wrap(fn: Callable) -> Callable:
        if inspect.isgeneratorfunction(fn):  # a streamed handler (its status line follows the stages)
            @functools.wraps(fn)
            def stream(*args, **kwargs):
                try:
                    yield from fn(*args, **kwargs)
                except Cancelled:
                    raise
                except Exception as exc:
                    yield failed(exc)
            return stream

        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Cancelled:
                raise
            except Exception as exc:
                return failed(exc)
        return run
    return wrap


def eta(s: TabSession) -> str:
    return f" (about {s.last_seconds:.0f} s, like the last run)" if s.last_seconds and s.last_seconds >= 1 else ""


def begin(verb: str, buttons: int = 2):
    """The light first step of a run: the status line says what runs; its ``buttons`` turn busy
    and the Cancel button comes on."""

    def start(s):
        s = session(s)
        s.run += 1
        return (f"**{verb}…**{eta(s) if verb.startswith('Matting') else ''}", *[OFF] * buttons, ON)

    start.__name__ = f"begin_{verb.split()[0].lower()}"
    return start


class Stop:
    """One tab's Cancel. :meth:`press` is its handler: the status line and the buttons (the
    ``shown`` components) get ``values``, and the tab's current run is marked cancelled.
    :meth:`guard` wraps each step of the run, so that none of them changes anything after that.

    Gradio's ``cancels=`` alone is not enough. It stops only events whose id the page already
    has, and the page sends the model step when begin's reply arrives, which is also when Cancel
    comes on: a prompt Cancel can miss the step, and the step then runs to its end and overwrites
    "Cancelled" with its stages and result. A stage already sent when Cancel lands can still
    reach the page after "Cancelled"; the guarded step then sends the cancelled status again."""

    def __init__(self, shown: list[Any], *values: Any) -> None:
        assert len(shown) == len(values)
        self.shown, self.values = shown, values

    def press(self, s: Any) -> tuple:
        if isinstance(s, TabSession):
            s.cancelled_run = s.run
        return self.values

    def guard(self, fn: Callable, outputs: list[Any]) -> Callable:
        """``fn`` (a handler with ``outputs``; the tab's state is its last argument) as a step of
        a cancellable run: it does nothing once its run is cancelled (before it starts, between
        its stages, or when it returns), and a step that mutates the state calls
        :func:`~semat.app.session.check_run` first. Mid-run it sends the cancelled status once
        more, unless a newer run has begun."""
        skip = (SKIP,) * len(outputs)
        said = tuple(next((v for c, v in zip(self.shown, self.values, strict=True) if c is o), SKIP)
                     for o in outputs)

        def run_of(args: tuple) -> tuple[TabSession | None, int]:
            s = args[-1] if args else None
            return (s, s.run) if isinstance(s, TabSession) else (None, -2)

        def stopped(s: TabSession | None, run: int) -> bool:
            return s is not None and s.cancelled(run)

        def again(s: TabSession, run: int) -> tuple:
            return said if s.run == run else skip

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def stream(*args):
                s, run = run_of(args)
                if stopped(s, run):
                    yield skip
                    return
                gen = fn(*args)
                try:
                    for item in gen:
                        if stopped(s, run):
                            break
                        yield item
                    else:
                        return
                except Cancelled:
                    pass
                finally:
                    gen.close()
                yield again(s, run)
            return stream

        @functools.wraps(fn)
        def step(*args):
            s, run = run_of(args)
            if stopped(s, run):
                return skip
            try:
                out = fn(*args)
            except Cancelled:
                return again(s, run)
            return again(s, run) if stopped(s, run) else out
        return step
