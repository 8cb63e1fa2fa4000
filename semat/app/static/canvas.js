// PromptCanvas front end (semat.app.canvas). gr.HTML (gradio 6.31) runs this once per component
// as `js_on_load`, with `element`, `props`, `trigger`, `upload` and `watch` in scope.
//
// Every edit is local: the overlays are SVG drawn here, in ORIGINAL image pixels (the SVG's
// viewBox is the original W x H, whatever the preview's or the screen's scale). An edit assigns
// `props.value` (gradio then fires the component's 'change' event in the browser; it reaches the
// server only if the app put a Python listener on it) and triggers 'input'. The prompt goes to
// the server only when an app event takes the component as an input (Matte / Detect).
// 'upload' is triggered with {path, url, name} after a dropped or picked file was uploaded;
// 'select' with {index, value, selected} when a box is picked after a matte (value.mask set).
(() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#00c8ff", "#ffaa00", "#aa00ff", "#00dc78", "#ff50a0", "#5078ff"];
  const HARD_MAX_BOXES = Number(props.hard_max_boxes) || 256;
  const HARD_MAX_POINTS = Number(props.hard_max_points) || 256;
  const DRAG_PX = 5;          // movement below this (CSS px) is a click, not a drag
  const HISTORY = 200;

  const root = element.querySelector(".pc-root");
  if (!root) return;
  const q = (s) => root.querySelector(s);
  const stage = q(".pc-stage"), frame = q(".pc-frame"), img = q(".pc-img"), maskEl = q(".pc-mask");
  const svg = q(".pc-svg"), statusEl = q(".pc-status"), countEl = q(".pc-count"), busyEl = q(".pc-busy");
  const legend = q(".pc-legend"), list = q(".pc-list"), bestN = q(".pc-bestn");
  const maskCtl = q(".pc-maskctl"), maskToggle = q(".pc-mask-toggle"), maskRange = q(".pc-mask-opacity");
  const fileInput = q(".pc-file-input");

  let base = {};                     // the last value from Python (image/mask objects kept as they came)
  let W = 0, H = 0, src = "";
  let boxes = [];                    // {x1, y1, x2, y2, label, score, on, colour}
  let points = [];                   // {x, y, l}
  let sel = null;                    // {kind: "box" | "point", i}
  let mask = null, maskShown = true;
  let mode = "pos";
  let undoStack = [], redoStack = [];
  let gesture = null, rubber = null;
  let rev = 0;                       // local edit counter, echoed by Python to detect stale replies
  let busyTimer = null;
  let coarse = window.matchMedia && window.matchMedia("(pointer: coarse)").matches;

  // ------------------------------------------------------------------ value <-> state
  const num = (v) => (typeof v === "number" && isFinite(v) ? v : NaN);
  function resolveUrl(u) {
    if (typeof u !== "string" || !u) return "";
    if (/^(data:image\/|blob:|https?:)/i.test(u)) return u;
    if (u.startsWith("/")) {
      let r = (window.gradio_config && window.gradio_config.root) || "";
      return String(r).replace(/\/+$/, "") + u;
    }
    return "";
  }
  function srcOf(o) {
    if (!o || typeof o !== "object") return "";
    return resolveUrl(o.src) || resolveUrl(o.file && o.file.url) || "";
  }
  function parseValue(v) {
    if (typeof v === "string") { try { v = v ? JSON.parse(v) : null; } catch (e) { v = null; } }
    if (!v || typeof v !== "object" || Array.isArray(v)) v = {};
    const im = v.image && typeof v.image === "object" ? v.image : null;
    const w = im ? Math.round(num(im.width)) : 0, h = im ? Math.round(num(im.height)) : 0;
    const ok = w > 0 && h > 0;
    const bx = [], pt = [];
    if (ok && Array.isArray(v.boxes)) {
      for (const b of v.boxes.slice(0, HARD_MAX_BOXES)) {
        if (!Array.isArray(b) || b.length < 4) continue;
        const c = b.slice(0, 4).map(num);
        if (c.some(isNaN)) continue;
        let m = b.length > 4 ? b[4] : null;
        if (typeof m === "string") m = { label: m };
        if (!m || typeof m !== "object") m = {};
        bx.push({
          x1: clamp(Math.min(c[0], c[2]), 0, w), y1: clamp(Math.min(c[1], c[3]), 0, h),
          x2: clamp(Math.max(c[0], c[2]), 0, w), y2: clamp(Math.max(c[1], c[3]), 0, h),
          label: typeof m.label === "string" ? m.label.slice(0, 80) : "",
          score: typeof m.score === "number" && isFinite(m.score) ? m.score : null,
          on: m.enabled !== false,
          colour: Number.isInteger(m.colour) ? m.colour : null,
        });
      }
    }
    if (ok && Array.isArray(v.points)) {
      for (const p of v.points.slice(0, HARD_MAX_POINTS)) {
        if (!Array.isArray(p) || p.length < 2) continue;
        const x = num(p[0]), y = num(p[1]);
        if (isNaN(x) || isNaN(y)) continue;
        pt.push({ x: clamp(x, 0, w), y: clamp(y, 0, h), l: p.length > 2 && !p[2] ? 0 : 1 });
      }
    }
    const m = v.mask && typeof v.mask === "object" ? v.mask : null;
    return { v, w: ok ? w : 0, h: ok ? h : 0, src: ok ? srcOf(im) : "", boxes: bx, points: pt,
             mask: m && srcOf(m) ? m : null,
             selected: Number.isInteger(v.selected) && v.selected >= 0 && v.selected < bx.length ? v.selected : null,
             rev: Number.isInteger(v.rev) ? v.rev : null };
  }
  const r1 = (n) => Math.round(n);
  function boxOut(b) {
    const a = [r1(b.x1), r1(b.y1), r1(b.x2), r1(b.y2)];
    const m = {};
    if (b.label) m.label = b.label;
    if (b.score !== null && b.score !== undefined) m.score = b.score;
    if (!b.on) m.enabled = false;
    if (b.colour !== null && b.colour !== undefined) m.colour = b.colour;
    if (Object.keys(m).length) a.push(m);
    return a;
  }
  function toValue() {
    const v = Object.assign({}, base);
    // plain URLs, no FileData: gradio then has no file to copy or fetch when the prompt is sent
    v.image = W && H ? { src: src || null, width: W, height: H } : null;
    v.boxes = boxes.map(boxOut);
    v.points = points.map((p) => [r1(p.x), r1(p.y), p.l]);
    v.selected = sel && sel.kind === "box" ? sel.i : null;
    v.mask = mask ? { src: srcOf(mask) || null, opacity: typeof mask.opacity === "number" ? mask.opacity : 0.5,
                      mode: mask.mode || "luminance" } : null;
    v.rev = rev;
    return v;
  }
  function commit(user = true) {
    if (user) rev += 1;
    props.value = toValue();
    if (user) { say(""); trigger("input", { boxes: boxes.length, points: points.length }); }
  }
  const promptKey = (bx, pt) => JSON.stringify([bx.map(boxOut), pt.map((q) => [r1(q.x), r1(q.y), q.l])]);
  const snapshot = () => JSON.stringify({ b: boxes, p: points });
  function restore(s) { const o = JSON.parse(s); boxes = o.b; points = o.p; }
  function pushUndo(s) {
    undoStack.push(s === undefined ? snapshot() : s);
    if (undoStack.length > HISTORY) undoStack.shift();
    redoStack = [];
  }
  function edit(fn) { const before = snapshot(); fn(); if (snapshot() !== before) { pushUndo(before); } render(); commit(); }

  function adopt(v, fromServer) {
    const p = parseValue(v);
    const newImage = p.src !== src || p.w !== W || p.h !== H;
    // a reply computed from an older local state (the user kept editing while Matte ran) must
    // not throw those edits away: keep the local prompt, take the rest (mask, image info)
    const stale = fromServer && !newImage && p.rev !== null && p.rev < rev;
    base = Object.assign({}, p.v);
    delete base.rev;
    mask = p.mask ? Object.assign({}, p.mask) : null;
    if (mask && typeof mask.opacity === "number") maskRange.value = String(Math.round(clamp(mask.opacity, 0, 1) * 100));
    if (newImage) {
      W = p.w; H = p.h; src = p.src; boxes = p.boxes; points = p.points;
      undoStack = []; redoStack = []; sel = null; rubber = null; gesture = null; rev = 0;
      if (src) { img.src = src; } else { img.removeAttribute("src"); }
      setBusy(false);
    } else if (!stale) {
      // compare what would be sent (whole pixels), so an echo of our own prompt is no change
      if (promptKey(p.boxes, p.points) !== promptKey(boxes, points)) {
        pushUndo();
        boxes = p.boxes; points = p.points;
        sel = null; gesture = null; rubber = null;
      }
      if (p.rev !== null) rev = Math.max(rev, p.rev);
    }
    if (!stale && p.selected !== null) sel = { kind: "box", i: p.selected };
    if (sel && sel.kind === "box" && sel.i >= boxes.length) sel = null;
    if (sel && sel.kind === "point" && sel.i >= points.length) sel = null;
    if (fromServer) setBusy(false);
    layout(); render();
    if (stale) commit(false);         // keep props.value = the local prompt, not the stale reply's
  }

  // ------------------------------------------------------------------------ geometry
  function clamp(v, lo, hi) { return Math.min(hi, Math.max(lo, v)); }
  function scale() { const r = svg.getBoundingClientRect(); return r.width > 0 ? W / r.width : 1; }
  function toImg(e) {
    const r = svg.getBoundingClientRect();
    return { x: clamp((e.clientX - r.left) * W / r.width, 0, W), y: clamp((e.clientY - r.top) * H / r.height, 0, H) };
  }
  function layout() {
    root.classList.toggle("pc-has-image", !!(W && H));
    if (!W || !H) { frame.style.width = "0px"; frame.style.height = "0px"; return; }
    const avail = stage.clientWidth || root.clientWidth || 600;
    // with a max_picture_height: as tall as it allows, but the whole picture fits in the window below the
    // stage's place on the page (a first visit sees all of the photo without scrolling)
    const fit = Math.max(280, window.innerHeight - (stage.getBoundingClientRect().top + window.scrollY) - 16);
    const maxH = Number(props.max_picture_height) > 0 ? Math.min(Number(props.max_picture_height), fit)
      : Math.max(240, window.innerHeight * 0.7);  // no maximum given: as before (the standalone demo)
    const fw = Math.max(1, Math.min(avail, maxH * W / H));
    frame.style.width = fw + "px";
    frame.style.height = fw * H / W + "px";
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  }
  new ResizeObserver(() => { layout(); render(); }).observe(stage);

  // On a narrow picture (a phone) the chips carry less, so they stay readable and do not pile up:
  // the number and label (the number only when there are many boxes); the legend keeps the scores.
  function chipText(b, i) {
    let t = String(i + 1);
    const narrow = (frame.clientWidth || 600) < 480;
    if (b.label && !(narrow && boxes.length > 6)) t += " " + b.label;
    if (b.score !== null && b.score !== undefined && !narrow) t += " " + b.score.toFixed(2);
    return t;
  }
  function chipRect(b, i, k) {
    const fs = (coarse ? 15 : 12) * k, padX = 4 * k, h = fs + 6 * k;
    const w = chipText(b, i).length * fs * 0.62 + 2 * padX;
    const y = b.y1 - h >= 0 ? b.y1 - h : b.y1;
    return { x: Math.max(0, Math.min(b.x1, W - w)), y, w, h, fs, padX };  // never off the right edge
  }
  function hit(p) {
    const k = scale(), tol = (coarse ? 14 : 8) * k;
    if (sel && sel.kind === "box" && boxes[sel.i]) {
      const b = boxes[sel.i];
      const cs = { nw: [b.x1, b.y1], ne: [b.x2, b.y1], sw: [b.x1, b.y2], se: [b.x2, b.y2] };
      for (const c in cs) if (Math.abs(p.x - cs[c][0]) <= tol && Math.abs(p.y - cs[c][1]) <= tol) return { type: "resize", i: sel.i, corner: c };
    }
    for (let i = points.length - 1; i >= 0; i--) {
      if (Math.hypot(p.x - points[i].x, p.y - points[i].y) <= tol * 1.2) return { type: "point", i };
    }
    if (sel && sel.kind === "box" && boxes[sel.i]) {
      const b = boxes[sel.i];
      if (p.x >= b.x1 && p.x <= b.x2 && p.y >= b.y1 && p.y <= b.y2) return { type: "move", i: sel.i };
    }
    for (let i = boxes.length - 1; i >= 0; i--) {
      const b = boxes[i], c = chipRect(b, i, k);
      if (p.x >= c.x && p.x <= c.x + c.w && p.y >= c.y && p.y <= c.y + c.h) return { type: "move", i, pick: true };
      const inX = p.x >= b.x1 - tol && p.x <= b.x2 + tol, inY = p.y >= b.y1 - tol && p.y <= b.y2 + tol;
      const nearX = Math.abs(p.x - b.x1) <= tol || Math.abs(p.x - b.x2) <= tol;
      const nearY = Math.abs(p.y - b.y1) <= tol || Math.abs(p.y - b.y2) <= tol;
      if ((nearX && inY) || (nearY && inX)) return { type: "move", i, pick: true };
    }
    return { type: "new" };
  }

  // -------------------------------------------------------------------------- drawing
  function el(tag, attrs, parent) {
    const e = document.createElementNS(NS, tag);
    for (const a in attrs) e.setAttribute(a, attrs[a]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function colourOf(b, i) { return PALETTE[(b.colour !== null && b.colour !== undefined ? b.colour : i) % PALETTE.length]; }
  function render(light = false) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!light) {                     // the legend and counters need no update while dragging
      updateMask();
      updateLegend();
      updateCount();
    }
    if (!W || !H) return;
    const k = scale();
    boxes.forEach((b, i) => {
      const g = el("g", { class: "pc-box" + (b.on ? "" : " pc-off") + (sel && sel.kind === "box" && sel.i === i ? " pc-sel" : ""),
                           "data-index": String(i) }, svg);
      const col = b.on ? colourOf(b, i) : "#9a9a9a";
      el("rect", { x: b.x1, y: b.y1, width: Math.max(0, b.x2 - b.x1), height: Math.max(0, b.y2 - b.y1), class: "pc-box-halo" }, g);
      el("rect", { x: b.x1, y: b.y1, width: Math.max(0, b.x2 - b.x1), height: Math.max(0, b.y2 - b.y1), class: "pc-box-line", stroke: col }, g);
      const c = chipRect(b, i, k);
      el("rect", { x: c.x, y: c.y, width: c.w, height: c.h, rx: 3 * k, class: "pc-chip", fill: col }, g);
      const t = el("text", { x: c.x + c.padX, y: c.y + c.h - 4.5 * k, "font-size": c.fs, class: "pc-chip-text" }, g);
      t.textContent = chipText(b, i);
      if (sel && sel.kind === "box" && sel.i === i) {
        const hs = (coarse ? 14 : 10) * k;
        for (const [x, y] of [[b.x1, b.y1], [b.x2, b.y1], [b.x1, b.y2], [b.x2, b.y2]]) {
          el("rect", { x: x - hs / 2, y: y - hs / 2, width: hs, height: hs, class: "pc-handle" }, g);
        }
      }
    });
    const pr = (coarse ? 8 : 6) * k;
    points.forEach((p, i) => {
      const g = el("g", { class: "pc-point " + (p.l ? "pc-pos" : "pc-neg") + (sel && sel.kind === "point" && sel.i === i ? " pc-sel" : ""),
                           "data-index": String(i) }, svg);
      if (sel && sel.kind === "point" && sel.i === i) el("circle", { cx: p.x, cy: p.y, r: pr * 1.8, class: "pc-point-ring" }, g);
      el("circle", { cx: p.x, cy: p.y, r: pr, class: "pc-point-dot" }, g);
      el("line", { x1: p.x - pr * 0.55, y1: p.y, x2: p.x + pr * 0.55, y2: p.y, class: "pc-point-glyph" }, g);
      if (p.l) el("line", { x1: p.x, y1: p.y - pr * 0.55, x2: p.x, y2: p.y + pr * 0.55, class: "pc-point-glyph" }, g);
    });
    if (rubber) {
      const a = { x: Math.min(rubber.x1, rubber.x2), y: Math.min(rubber.y1, rubber.y2),
                  width: Math.abs(rubber.x2 - rubber.x1), height: Math.abs(rubber.y2 - rubber.y1) };
      el("rect", Object.assign({ class: "pc-rubber-halo" }, a), svg);
      el("rect", Object.assign({ class: "pc-rubber" }, a), svg);
    }
  }
  function updateMask() {
    const on = !!(mask && W);
    maskCtl.hidden = !on;
    if (!on) { maskEl.style.display = "none"; return; }
    const u = srcOf(mask).replace(/"/g, "%22");
    const css = `url("${u}")`;
    if (mask.mode === "rgba") {
      maskEl.style.maskImage = "none"; maskEl.style.webkitMaskImage = "none";
      maskEl.style.backgroundColor = "transparent"; maskEl.style.backgroundImage = css;
    } else {
      maskEl.style.backgroundImage = "none";
      maskEl.style.backgroundColor = props.mask_colour || "#ff2d87";
      maskEl.style.maskImage = css; maskEl.style.webkitMaskImage = css;
      maskEl.style.maskMode = mask.mode === "alpha" ? "alpha" : "luminance";
    }
    const op = typeof mask.opacity === "number" ? clamp(mask.opacity, 0, 1) : 0.5;
    maskEl.style.opacity = String(op);
    maskEl.style.display = maskShown ? "block" : "none";
    maskToggle.checked = maskShown;
  }
  function updateCount() {
    const on = boxes.filter((b) => b.on).length, neg = points.filter((p) => !p.l).length;
    let t = W ? `${on} box${on === 1 ? "" : "es"}` + (on < boxes.length ? ` (of ${boxes.length})` : "") +
                ` · ${points.length - neg} + / ${neg} − point${points.length === 1 ? "" : "s"}` : "";
    const lim = Number(props.max_boxes) || 0;
    if (lim && on > lim) t += ` · over the limit of ${lim}: untick some`;
    countEl.textContent = t;
    root.classList.toggle("pc-over-limit", !!(lim && on > lim));
    q('[data-act="undo"]').disabled = !undoStack.length;
    q('[data-act="redo"]').disabled = !redoStack.length;
    q('[data-act="delete"]').disabled = !sel;
    q('[data-act="clear"]').disabled = !(boxes.length || points.length);
  }
  function updateLegend() {
    legend.hidden = !boxes.length;
    while (list.firstChild) list.removeChild(list.firstChild);
    boxes.forEach((b, i) => {
      const li = document.createElement("li");
      li.className = "pc-item" + (b.on ? "" : " pc-off") + (sel && sel.kind === "box" && sel.i === i ? " pc-sel" : "");
      li.dataset.index = String(i);
      const cb = document.createElement("input");
      cb.type = "checkbox"; cb.checked = b.on; cb.className = "pc-tick"; cb.setAttribute("aria-label", `Use box ${i + 1}`);
      cb.dataset.index = String(i);
      const sw = document.createElement("span");
      sw.className = "pc-swatch"; sw.style.background = b.on ? colourOf(b, i) : "#9a9a9a"; sw.textContent = String(i + 1);
      const tx = document.createElement("button");
      tx.type = "button"; tx.className = "pc-item-text"; tx.dataset.index = String(i);
      tx.textContent = (b.label || "box") + (b.score !== null && b.score !== undefined ? " " + b.score.toFixed(2) : "");
      li.append(cb, sw, tx);
      list.appendChild(li);
    });
  }
  let sayTimer = null;
  function say(t) {                   // a short note ("Undone."): gone after a few seconds or the next edit
    statusEl.textContent = t; clearTimeout(sayTimer);
    if (t) sayTimer = setTimeout(() => { statusEl.textContent = ""; }, 4000);
  }
  function setBusy(on, text) {
    busyEl.hidden = !on;
    if (text) busyEl.textContent = text;
    clearTimeout(busyTimer);
    if (on) busyTimer = setTimeout(() => { busyEl.hidden = true; }, 30000);
  }

  // -------------------------------------------------------------------------- editing
  function select(s, user = true) {
    const prev = sel;
    sel = s;
    render();
    const same = prev && s && prev.kind === s.kind && prev.i === s.i;
    if (!user || same) return;
    commit(false);
    // after a matte, picking a box picks that object: the app shows its alpha
    if (mask) {
      if (s && s.kind === "box") trigger("select", { index: s.i, value: boxOut(boxes[s.i]), selected: true });
      else if (prev && prev.kind === "box" && !s) trigger("select", { index: prev.i, value: null, selected: false });
    }
  }
  function addPoint(p, label) {
    if (points.length >= HARD_MAX_POINTS) { say(`At most ${HARD_MAX_POINTS} points.`); return; }
    edit(() => { points.push({ x: p.x, y: p.y, l: label }); });
    say(`${label ? "Include" : "Exclude"} point ${points.length} at (${r1(p.x)}, ${r1(p.y)}).`);
  }
  function removeSelection() {
    if (!sel) { say("Nothing selected: click a box's number or edge, or a point, first."); return; }
    const s = sel; sel = null;
    edit(() => { if (s.kind === "box") boxes.splice(s.i, 1); else points.splice(s.i, 1); });
    say(s.kind === "box" ? `Box ${s.i + 1} removed.` : `Point ${s.i + 1} removed.`);
  }
  function nudge(key, d) {           // arrow keys move the selection by one screen pixel (Shift: 10)
    const dx = key === "ArrowLeft" ? -d : key === "ArrowRight" ? d : 0, dy = key === "ArrowUp" ? -d : key === "ArrowDown" ? d : 0;
    const s = sel;
    edit(() => {
      if (s.kind === "box") {
        const b = boxes[s.i], mx = clamp(dx, -b.x1, W - b.x2), my = clamp(dy, -b.y1, H - b.y2);
        Object.assign(b, { x1: b.x1 + mx, x2: b.x2 + mx, y1: b.y1 + my, y2: b.y2 + my });
      } else {
        const p = points[s.i];
        Object.assign(p, { x: clamp(p.x + dx, 0, W), y: clamp(p.y + dy, 0, H) });
      }
    });
  }
  function undo() {
    if (!undoStack.length) { say("Nothing to undo."); return; }
    redoStack.push(snapshot()); restore(undoStack.pop()); sel = null; render(); commit(); say("Undone.");
  }
  function redo() {
    if (!redoStack.length) { say("Nothing to redo."); return; }
    undoStack.push(snapshot()); restore(redoStack.pop()); sel = null; render(); commit(); say("Redone.");
  }
  function clearAll() {
    if (!boxes.length && !points.length) return;
    sel = null; edit(() => { boxes = []; points = []; }); say("Cleared all boxes and points (Undo brings them back).");
  }
  function tick(fn, msg) { edit(() => boxes.forEach((b, i) => { b.on = fn(b, i); })); say(msg); }
  function keepBest(n) {
    const order = boxes.map((b, i) => [b.score === null || b.score === undefined ? Infinity : b.score, i])
      .sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, n).map((a) => a[1]);
    const keep = new Set(order);
    tick((b, i) => keep.has(i), `Kept the best ${keep.size} box${keep.size === 1 ? "" : "es"}.`);
  }

  // --------------------------------------------------------------------- pointer input
  svg.addEventListener("pointerdown", (e) => {
    if (!W || e.button === 1) return;
    if (gesture) {                    // a second finger: this is a pinch, not a drawing
      cancelGesture(); return;
    }
    coarse = e.pointerType === "touch" || e.pointerType === "pen" ? true : e.pointerType === "mouse" ? false : coarse;
    e.preventDefault();
    stage.focus({ preventScroll: true });
    const p = toImg(e);
    const neg = e.button === 2 || e.shiftKey;
    const h = e.button === 2 ? { type: "new" } : hit(p);
    gesture = Object.assign(h, { id: e.pointerId, sx: e.clientX, sy: e.clientY, start: p, moved: false,
                                 neg: neg || (mode === "neg" && e.button === 0 && h.type === "new"),
                                 right: e.button === 2, before: snapshot() });
    if (h.type === "move" || h.type === "resize") gesture.orig = Object.assign({}, boxes[h.i]);
    if (h.type === "point") gesture.orig = Object.assign({}, points[h.i]);
    if (h.pick) select({ kind: "box", i: h.i });
    try { svg.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events */ }
  });
  svg.addEventListener("pointermove", (e) => {
    if (!gesture) { if (W) svg.style.cursor = cursorFor(hit(toImg(e))); return; }
    if (e.pointerId !== gesture.id) return;
    if (!gesture.moved && Math.hypot(e.clientX - gesture.sx, e.clientY - gesture.sy) < DRAG_PX) return;
    gesture.moved = true;
    if (gesture.right) return;
    const p = toImg(e), s = gesture.start, g = gesture;
    if (g.type === "new") {
      rubber = { x1: s.x, y1: s.y, x2: p.x, y2: p.y };
    } else if (g.type === "move") {
      const o = g.orig, w = o.x2 - o.x1, h = o.y2 - o.y1;
      const dx = clamp(p.x - s.x, -o.x1, W - o.x2), dy = clamp(p.y - s.y, -o.y1, H - o.y2);
      Object.assign(boxes[g.i], { x1: o.x1 + dx, y1: o.y1 + dy, x2: o.x1 + dx + w, y2: o.y1 + dy + h });
    } else if (g.type === "resize") {
      const o = g.orig, b = boxes[g.i];
      const xs = g.corner[1] === "w" ? [p.x, o.x2] : [o.x1, p.x], ys = g.corner[0] === "n" ? [p.y, o.y2] : [o.y1, p.y];
      Object.assign(b, { x1: Math.min(...xs), x2: Math.max(...xs), y1: Math.min(...ys), y2: Math.max(...ys) });
    } else if (g.type === "point") {
      Object.assign(points[g.i], { x: p.x, y: p.y });
    }
    render(true);
  });
  function endGesture(e) {
    const g = gesture;
    if (!g || e.pointerId !== g.id) return;
    gesture = null;
    const p = toImg(e);
    if (g.right) { rubber = null; addPoint(g.start, 0); return; }
    if (!g.moved) {
      rubber = null;
      if (g.type === "new") addPoint(p, g.neg ? 0 : 1);
      else if (g.type === "move" && !g.pick) addPoint(p, mode === "neg" || g.neg ? 0 : 1);
      else if (g.type === "point") select(sel && sel.kind === "point" && sel.i === g.i ? null : { kind: "point", i: g.i });
      else render();
      return;
    }
    if (g.type === "new") {
      const b = rubber; rubber = null;
      const x1 = Math.min(b.x1, b.x2), x2 = Math.max(b.x1, b.x2), y1 = Math.min(b.y1, b.y2), y2 = Math.max(b.y1, b.y2);
      if (x2 - x1 < 1 || y2 - y1 < 1) { render(); say("That box has no area; drag across the object."); return; }
      if (boxes.length >= HARD_MAX_BOXES) { render(); say(`At most ${HARD_MAX_BOXES} boxes.`); return; }
      edit(() => { boxes.push({ x1, y1, x2, y2, label: "", score: null, on: true, colour: null }); });
      say(`Box ${boxes.length} added: ${r1(x1)}, ${r1(y1)}, ${r1(x2)}, ${r1(y2)}.`);
      return;
    }
    // move / resize / point drag: one undo step for the whole gesture
    if (snapshot() !== g.before) { pushUndo(g.before); commit(); }
    render();
    if (g.type === "move") say(`Box ${g.i + 1} moved.`);
    else if (g.type === "resize") say(`Box ${g.i + 1} resized.`);
    else say(`Point ${g.i + 1} moved.`);
  }
  function cancelGesture() {
    if (gesture && gesture.before) restore(gesture.before);
    gesture = null; rubber = null; render();
  }
  svg.addEventListener("pointerup", endGesture);
  svg.addEventListener("pointercancel", (e) => { if (gesture && e.pointerId === gesture.id) cancelGesture(); });
  svg.addEventListener("lostpointercapture", (e) => { if (gesture && e.pointerId === gesture.id) cancelGesture(); });
  function cursorFor(h) {
    if (h.type === "resize") return h.corner === "nw" || h.corner === "se" ? "nwse-resize" : "nesw-resize";
    if (h.type === "move") return h.pick ? "pointer" : "move";
    if (h.type === "point") return "pointer";
    return "crosshair";
  }
  frame.addEventListener("contextmenu", (e) => e.preventDefault());

  // -------------------------------------------------------- safety: no native drag, drops
  root.addEventListener("dragstart", (e) => e.preventDefault());
  const hasFiles = (e) => !!(e.dataTransfer && Array.from(e.dataTransfer.types || []).includes("Files"));
  root.addEventListener("dragover", (e) => {
    e.preventDefault();
    if (e.dataTransfer) e.dataTransfer.dropEffect = hasFiles(e) ? "copy" : "none";
    root.classList.toggle("pc-drop", hasFiles(e));
  });
  root.addEventListener("dragleave", (e) => { if (!root.contains(e.relatedTarget)) root.classList.remove("pc-drop"); });
  root.addEventListener("drop", (e) => {
    e.preventDefault(); e.stopPropagation();
    root.classList.remove("pc-drop");
    const f = e.dataTransfer && e.dataTransfer.files && e.dataTransfer.files[0];
    if (!f) { say("Nothing was dropped; the image is unchanged. Drop an image file to replace it."); return; }
    sendFile(f);
  });
  // a file dropped just beside the canvas must not make the browser open it in place of the app
  if (!window.__semat_drop_guard) {
    window.__semat_drop_guard = true;
    window.addEventListener("dragover", (e) => {
      if (!e.defaultPrevented) { e.preventDefault(); if (e.dataTransfer) e.dataTransfer.dropEffect = "none"; }
    });
    window.addEventListener("drop", (e) => { if (!e.defaultPrevented) e.preventDefault(); });
  }
  fileInput.addEventListener("change", () => { const f = fileInput.files && fileInput.files[0]; fileInput.value = ""; if (f) sendFile(f); });
  async function sendFile(f) {
    if (f.type && !f.type.startsWith("image/")) { say(`${f.name} is not an image; the current one is kept.`); return; }
    if (typeof upload !== "function") { say("Uploading is not available here."); return; }
    setBusy(true, "Uploading…");
    try {
      const r = await upload(f);
      setBusy(true, "Loading image…");
      trigger("upload", { path: r.path, url: r.url, name: f.name, size: f.size, type: f.type });
    } catch (err) {
      setBusy(false);
      say(`Upload failed (${err && err.message ? err.message : err}); the current image is kept.`);
    }
  }

  // ------------------------------------------------------------------ buttons, keyboard
  root.addEventListener("click", (e) => {
    const t = e.target.closest("[data-act], [data-mode], .pc-item-text");
    if (!t || !root.contains(t)) return;
    if (t.dataset.mode) {
      mode = t.dataset.mode;
      root.querySelectorAll("[data-mode]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.mode === mode)));
      say(mode === "neg" ? "Clicks add exclude points (drag still draws a box)." : "Clicks add include points (drag draws a box).");
      return;
    }
    if (t.classList.contains("pc-item-text")) {
      const i = Number(t.dataset.index);
      select(sel && sel.kind === "box" && sel.i === i ? null : { kind: "box", i });
      return;
    }
    const a = t.dataset.act;
    if (a === "undo") undo();
    else if (a === "redo") redo();
    else if (a === "delete") removeSelection();
    else if (a === "clear") clearAll();
    else if (a === "all") tick(() => true, "All boxes ticked.");
    else if (a === "none") tick(() => false, "No box ticked; tick the ones to matte.");
    else if (a === "open") fileInput.click();
    else if (a === "best") keepBest(Math.max(1, Math.round(Number(bestN.value) || 1)));
  });
  list.addEventListener("change", (e) => {
    const t = e.target;
    if (!t.classList.contains("pc-tick")) return;
    const i = Number(t.dataset.index);
    edit(() => { boxes[i].on = t.checked; });
    say(`Box ${i + 1} ${t.checked ? "ticked" : "unticked (not matted)"}.`);
  });
  maskToggle.addEventListener("change", () => { maskShown = maskToggle.checked; updateMask(); });
  maskRange.addEventListener("input", () => {
    if (!mask) return;
    mask.opacity = Number(maskRange.value) / 100; maskShown = true; updateMask();
  });
  maskRange.addEventListener("change", () => { if (mask) commit(false); });
  root.addEventListener("keydown", (e) => {
    const tag = (e.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") return;
    const mod = e.ctrlKey || e.metaKey;
    if (mod && (e.key === "z" || e.key === "Z")) { e.preventDefault(); if (e.shiftKey) redo(); else undo(); }
    else if (mod && (e.key === "y" || e.key === "Y")) { e.preventDefault(); redo(); }
    else if (e.key === "Delete" || e.key === "Backspace") { if (sel) { e.preventDefault(); removeSelection(); } }
    else if (e.key === "Escape") { if (sel) { e.preventDefault(); select(null); } }
    else if (sel && e.key.startsWith("Arrow")) { e.preventDefault(); nudge(e.key, (e.shiftKey ? 10 : 1) * scale()); }
  });
  img.addEventListener("error", () => { if (src) say("The preview could not be loaded."); });
  img.setAttribute("draggable", "false");
  if (bestN && !bestN.value) bestN.value = String(Number(props.max_boxes) || 16);

  // backend -> frontend: Python set a new value (new image, detections, mask, typed prompt)
  watch("value", () => adopt(props.value, true));
  adopt(props.value, false);
  say(coarse ? "Drag with one finger to draw a box · tap to add a point · − point for exclude taps."
             : "Drag to draw a box · click to add an include point · right-click for an exclude point · Delete removes the selection.");
})();
