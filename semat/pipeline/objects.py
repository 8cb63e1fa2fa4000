"""From a prompt to the list of objects to matte: point ownership and the derived-box rule.

Objects come in this order: the chosen text detections, then the drawn boxes, then one object
for positive clicks that fall in no box. A point belongs to every box object whose box, grown
by :data:`BOX_POINT_TOLERANCE` of its size on each side, contains it.

The derived-box rule (clicks without a box): SEMat needs a box, so pass 1 runs the whole-image
box plus the clicks; :func:`derive_box` takes pass 1's coarse mask (or ``alpha >= 0.5`` when the
mask misses every positive click), keeps the 8-connected components that contain a positive
click (or lie within 2 px of it), and boxes them, grown to include every positive click and
padded by :data:`DERIVED_BOX_PAD` (at least 2 px); if neither touches a click, the clicks' box
padded by :data:`DERIVED_BOX_FALLBACK_PAD` of the longer side. Pass 2 mattes that box.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from semat.errors import PointError, PromptError
from semat.inference.detect import Detection

BOX_POINT_TOLERANCE = 0.05  # a point belongs to a box grown by 5 % of its size per side
DERIVED_BOX_PAD = 0.05  # derived box padding, fraction of its width / height per side
DERIVED_BOX_FALLBACK_PAD = 0.10  # fallback padding around the clicks, fraction of the longer side

Box = tuple[float, float, float, float]
Point = tuple[float, float, int]


@dataclass
class Job:
    """One object to matte: its box, its clicks and where it came from."""

    box: Box
    points: tuple[Point, ...]
    label: str
    score: float | None
    source: str
    derived: bool = False


def contains(box: Sequence[float], x: float, y: float, tol: float = BOX_POINT_TOLERANCE) -> bool:
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) * tol, (y2 - y1) * tol
    return x1 - mx <= x <= x2 + mx and y1 - my <= y <= y2 + my


def build_jobs(detections: Sequence[Detection], boxes: Sequence[Box], points: Sequence[Point],
               hw: tuple[int, int], notices: list[str]) -> list[Job]:
    """Objects for chosen detections, drawn boxes and loose clicks (module docstring)."""
    h, w = hw
    jobs = [Job(tuple(d.box), (), d.label, d.score, "text") for d in detections]
    jobs += [Job(tuple(b), (), f"box {i + 1}", None, "box") for i, b in enumerate(boxes)]
    if not jobs and not points:
        raise PromptError("every detection was deselected: select at least one, draw a box or click")
    loose: list[Point] = []
    for pt in points:
        owners = [j for j in jobs if contains(j.box, pt[0], pt[1])]
        for j in owners:
            j.points = (*j.points, pt)
        if not owners:
            loose.append(pt)
    if any(p[2] == 1 for p in loose):
        jobs.append(Job((0.0, 0.0, float(w), float(h)), tuple(loose), "clicked object", None, "points",
                        derived=True))
    elif loose:
        if not jobs:
            raise PointError("only exclude (negative) clicks were given: add an include click or a box")
        notices.append(f"{len(loose)} exclude click(s) outside every box were ignored")
    return jobs


def derive_box(mask: np.ndarray, alpha: np.ndarray, points: Sequence[Point], pad: float = DERIVED_BOX_PAD,
               fallback_pad: float = DERIVED_BOX_FALLBACK_PAD) -> tuple[Box, str]:
    """The derived-box rule (module docstring): box of the mask components holding positive clicks.

    Returns the box and which rule produced it (``"mask"``, ``"alpha"`` or ``"clicks"``).
    """
    h, w = mask.shape
    pos = [(x, y) for x, y, lab in points if lab == 1]
    if not pos:
        raise PointError("clicks without a box need at least one positive (include) click")
    pix = [(min(w - 1, max(0, int(x))), min(h - 1, max(0, int(y)))) for x, y in pos]
    clicks = np.array(pos, np.float64)
    for how, binary in (("mask", np.asarray(mask, bool)), ("alpha", np.asarray(alpha) >= 0.5)):
        sel = _components_at(binary, pix)
        if sel is None:
            continue
        ys, xs = np.nonzero(sel)
        x1, y1 = min(float(xs.min()), clicks[:, 0].min()), min(float(ys.min()), clicks[:, 1].min())
        x2, y2 = max(float(xs.max() + 1), clicks[:, 0].max() + 1), max(float(ys.max() + 1), clicks[:, 1].max() + 1)
        mx, my = max(2.0, pad * (x2 - x1)), max(2.0, pad * (y2 - y1))
        return (max(0.0, x1 - mx), max(0.0, y1 - my), min(float(w), x2 + mx), min(float(h), y2 + my)), how
    m = max(2.0, fallback_pad * max(h, w))
    box = (max(0.0, clicks[:, 0].min() - m), max(0.0, clicks[:, 1].min() - m),
           min(float(w), clicks[:, 0].max() + 1 + m), min(float(h), clicks[:, 1].max() + 1 + m))
    return box, "clicks"


def _components_at(binary: np.ndarray, pix: list[tuple[int, int]]) -> np.ndarray | None:
    """The 8-connected components of ``binary`` holding a click (or within 2 px of one)."""
    import cv2

    if not binary.any():
        return None
    _, labels = cv2.connectedComponents(binary.astype(np.uint8), connectivity=8)
    ids: set[int] = set()
    for px, py in pix:
        lab = int(labels[py, px])
        if lab == 0:  # a click just off the mask edge: take the components within 2 px
            win = labels[max(0, py - 2):py + 3, max(0, px - 2):px + 3]
            ids |= {int(v) for v in np.unique(win)} - {0}
        else:
            ids.add(lab)
    return np.isin(labels, list(ids)) if ids else None
