"""A counting stand-in for Hugging Face's ``spaces`` package (tests only).

``spaces.GPU(duration=callable)`` wraps a function like ZeroGPU does: every call is one
scheduled GPU call. The wrapper evaluates ``duration`` on the call's arguments (as ZeroGPU
does, so a broken estimate fails the test) and appends ``<function> <seconds>`` to the file
named by ``FAKE_SPACES_LOG``. ``spaces.config.Config.zero_gpu`` follows ``FAKE_SPACES_ZERO_GPU``
so the app takes its ZeroGPU code paths (compact results, quota check) on CPU.

A generator function is wrapped the way ``spaces.zero.wrappers.generator_function_wrapper``
does: the call is still one scheduled GPU call, the generator runs elsewhere (here a thread,
there a forked worker) and each item it yields is pickled across and yielded as it comes;
closing the wrapper early stops the generator at its next item. An exception from the worker
arrives as the real wrapper delivers it: only ``gr.Error`` keeps its message.
"""

from __future__ import annotations

import functools
import inspect
import os
import pickle
import queue
import threading


def _across(value):
    return pickle.loads(pickle.dumps(value))  # arguments and results cross a process boundary on ZeroGPU


def _worker_error(exc: Exception) -> Exception:
    """What the real wrapper raises for an exception from its worker: a ``gr.Error`` passes as it
    is, any other becomes ``gr.Error("<ClassName>", title="ZeroGPU worker error")`` (message lost)."""
    import gradio as gr

    if isinstance(exc, gr.Error):
        return exc
    return gr.Error(type(exc).__name__, title="ZeroGPU worker error")


def _log(f, seconds) -> None:
    log = os.environ.get("FAKE_SPACES_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"{f.__name__} {int(seconds)}\n")


def _generator(f, duration):
    @functools.wraps(f)
    def call(*args, **kwargs):
        seconds = duration(*args, **kwargs) if callable(duration) else duration
        _log(f, seconds)
        args, kwargs = _across((args, kwargs))
        items: queue.Queue = queue.Queue()
        stop = threading.Event()

        def iterate():  # the worker's side: every item pickled as it is yielded
            try:
                for item in f(*args, **kwargs):
                    if stop.is_set():
                        break
                    items.put(("ok", pickle.dumps(item)))
            except Exception as exc:
                items.put(("error", exc))
            items.put(("end", None))

        threading.Thread(target=iterate, daemon=True, name="fake-zerogpu-worker").start()
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise _worker_error(value)
            try:
                yield pickle.loads(value)
            except GeneratorExit:
                stop.set()
                raise

    return call


def GPU(fn=None, *, duration=60):
    def wrap(f):
        if inspect.isgeneratorfunction(f):
            return _generator(f, duration)

        @functools.wraps(f)
        def call(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            _log(f, seconds)
            args, kwargs = _across((args, kwargs))
            try:
                value = f(*args, **kwargs)
            except Exception as exc:
                raise _worker_error(exc) from None
            return _across(value)

        return call

    return wrap(fn) if fn is not None else wrap
