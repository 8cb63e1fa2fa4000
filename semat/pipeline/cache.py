"""Caches of the pipeline: per-object mattes (LRU bounded by bytes) and detector forwards.

Mattes are keyed by ``(image hash, variant, box, points)``; detector forwards by ``(image hash,
detector, normalised text)``, so moving a threshold slider re-runs only the cheap decoding.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

DEFAULT_CACHE_BYTES = 1 << 30


def image_hash(image: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(str((image.shape, str(image.dtype))).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.hexdigest()


def box_key(box: Any) -> tuple[float, ...]:
    return tuple(round(float(v), 3) for v in box)


@dataclass
class Entry:
    alpha: np.ndarray
    mask: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.alpha.nbytes + self.mask.nbytes)


class MatteCache:
    """LRU of :class:`Entry` bounded by total bytes (an entry larger than the bound is not kept)."""

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        self.max_bytes = int(max_bytes)
        self._items: OrderedDict[tuple, Entry] = OrderedDict()
        self.used = 0

    def get(self, key: tuple) -> Entry | None:
        entry = self._items.get(key)
        if entry is not None:
            self._items.move_to_end(key)
        return entry

    def put(self, key: tuple, entry: Entry) -> None:
        if entry.nbytes > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.used -= old.nbytes
        self._items[key] = entry
        self.used += entry.nbytes
        while self.used > self.max_bytes and self._items:
            _, gone = self._items.popitem(last=False)
            self.used -= gone.nbytes

    def clear(self) -> None:
        self._items.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._items)


class SmallLRU:
    """A count-bounded LRU (detector forwards)."""

    def __init__(self, size: int = 32):
        self.size = size
        self._items: OrderedDict[tuple, Any] = OrderedDict()

    def get(self, key: tuple) -> Any:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: tuple, value: Any) -> None:
        self._items[key] = value
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()
