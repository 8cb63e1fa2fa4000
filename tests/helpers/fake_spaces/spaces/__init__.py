"""A counting stand-in for Hugging Face's ``spaces`` package (tests only).

``spaces.GPU(duration=callable)`` wraps a function like ZeroGPU does: every call is one
scheduled GPU call. The wrapper evaluates ``duration`` on the call's arguments (as ZeroGPU
does, so a broken estimate fails the test) and appends ``<function> <seconds>`` to the file
named by ``FAKE_SPACES_LOG``. ``spaces.config.Config.zero_gpu`` follows ``FAKE_SPACES_ZERO_GPU``
so the app takes its ZeroGPU code paths (compact results, quota check) on CPU.
"""

from __future__ import annotations

import functools
import os
import pickle


def GPU(fn=None, *, duration=60):
    def wrap(f):
        @functools.wraps(f)
        def call(*args, **kwargs):
            seconds = duration(*args, **kwargs) if callable(duration) else duration
            log = os.environ.get("FAKE_SPACES_LOG")
            if log:
                with open(log, "a") as fh:
                    fh.write(f"{f.__name__} {int(seconds)}\n")
            out = f(*args, **kwargs)
            return pickle.loads(pickle.dumps(out))  # results cross a process boundary on ZeroGPU

        return call

    return wrap(fn) if fn is not None else wrap
