"""Trains our own plate detector on CPU and exports it in the agent's `yolox` family.

A small anchor-free detector in the manner of YOLOX (Ge et al. 2021: one prediction per grid cell
at strides 8, 16 and 32, a box as offset and log size in cell units, objectness times class
score), written here in JAX: depthwise-separable convolutions with batch norm (folded at export),
a top-down feature pyramid, one head per level. One class, a plate.

Data (`--variant shippable`, the only one so far): `platecomp.py` frames (synthetic plates in
drawn street scenes, licensed fonts, decoys left unlabelled) and the MIT-licensed garage frames
with their own boxes. Never `../shared/footage/` (the validation set) and never boxes from today's
AGPL detector.

Training sees random 416 x 416 windows of each 640 x 360 frame letterboxed to 640 x 640 (grey
114, as the agent letterboxes), scaled 0.7-1.3; the export is fully convolutional and takes the
agent's 640 x 640 input, where plates have the size they had in the window.

Assignment (per image, in numpy): a plate belongs to the level its size suits (sqrt(w h) up to 40
px: stride 8, 32-120: 16, above 90: 32; both where they overlap); its positives are the cells whose
centre lies in the box and within 2.5 strides of its centre, else the nearest cell. Cells in an
`ignored` box (a mostly hidden plate) carry no objectness loss. Losses: objectness BCE over all
cells, GIoU and the IoU-target class BCE over positives.

Usage (from the repository root):
    python models/training/train_det.py --frames 6000 --wall-minutes 100
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BN_EPS = 1e-3
BN_MOMENTUM = 0.97
STRIDES = (8, 16, 32)
# the plate sizes (sqrt of box area, px) each level learns; they overlap near the boundaries
LEVEL_SIZES = ((0, 48), (32, 120), (90, 1e9))
WIN = 416
EXPORT = 640
PAD = 114
NAME = "vn_plate_det_ea_yolox_640"

# (kind, cin, cout, stride): "c" full 3x3 convolution; "d" depthwise 3x3 then pointwise 1x1;
# "r" the same as a residual block
BACKBONE = [
    ("c", 3, 16, 2),
    ("d", 16, 32, 2),
    ("d", 32, 48, 2),
    ("r", 48, 48, 1),  # C3, stride 8
    ("d", 48, 96, 2),
    ("r", 96, 96, 1),  # C4, stride 16
    ("d", 96, 160, 2),
    ("r", 160, 160, 1),  # C5, stride 32
]
TAPS = (3, 5, 7)
NECK = 64
OUT = 6  # tx, ty, tw, th, objectness, class


def _bn_conv(key, kh, kw, cin, cout, depthwise=False):
    import jax

    shape = (kh, kw, 1, cin) if depthwise else (kh, kw, cin, cout)
    fan_in = kh * kw * (1 if depthwise else cin)
    w = jax.random.normal(key, shape) * np.sqrt(2.0 / fan_in)
    return {"w": w, "g": np.ones(cout, np.float32), "b": np.zeros(cout, np.float32)}


def layer_specs():
    """Every batch-normed convolution in order: (name, kh, kw, cin, cout, depthwise, stride); a
    depthwise one has cout = cin."""
    specs = []
    for i, (kind, cin, cout, s) in enumerate(BACKBONE):
        if kind == "c":
            specs.append((f"b{i}", 3, 3, cin, cout, False, s))
        else:
            specs.append((f"b{i}dw", 3, 3, cin, cin, True, s))
            specs.append((f"b{i}pw", 1, 1, cin, cout, False, 1))
    for lvl, tap in enumerate(TAPS):
        specs.append((f"lat{lvl}", 1, 1, BACKBONE[tap][2], NECK, False, 1))
    for lvl in (1, 0):
        specs.append((f"fuse{lvl}dw", 3, 3, NECK, NECK, True, 1))
        specs.append((f"fuse{lvl}pw", 1, 1, NECK, NECK, False, 1))
    for lvl in range(3):
        specs.append((f"head{lvl}dw", 3, 3, NECK, NECK, True, 1))
        specs.append((f"head{lvl}pw", 1, 1, NECK, NECK, False, 1))
    return specs


def init_params(seed):
    import jax

    key = jax.random.PRNGKey(seed)
    params = {}
    for name, kh, kw, cin, cout, dw, _ in layer_specs():
        key, k = jax.random.split(key)
        params[name] = _bn_conv(k, kh, kw, cin, cout, dw)
    for lvl in range(3):
        key, k = jax.random.split(key)
        b = np.zeros(OUT, np.float32)
        b[4] = b[5] = -4.6  # a plate is rare: start every cell near "no"
        params[f"out{lvl}"] = {"w": jax.random.normal(k, (1, 1, NECK, OUT)) * 0.01, "b": b}
    stats = {name: {"m": np.zeros(cout, np.float32), "v": np.ones(cout, np.float32)} for name, _, _, _, cout, _, _ in layer_specs()}
    return params, stats


def _conv(x, w, stride, depthwise):
    import jax

    kh, kw = w.shape[:2]
    pad = ((kh // 2, kh // 2), (kw // 2, kw // 2))
    groups = x.shape[-1] if depthwise else 1
    return jax.lax.conv_general_dilated(x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)


def walk(ops, x):
    """The architecture, once, for every backend: `ops` computes each step (`cbr(name, h, act)`,
    `add(a, b, name)`, `up(t, name)`, `out(level, f)`); returns the three levels' raw outputs."""
    h, taps = x, []
    for i, (kind, _, _, _) in enumerate(BACKBONE):
        if kind == "c":
            h = ops.cbr(f"b{i}", h)
        elif kind == "d":
            h = ops.cbr(f"b{i}pw", ops.cbr(f"b{i}dw", h))
        else:
            h = ops.add(h, ops.cbr(f"b{i}pw", ops.cbr(f"b{i}dw", h), act=False), f"b{i}.add")
        if i in TAPS:
            taps.append(h)
    p5 = ops.cbr("lat2", taps[2])
    p4 = ops.cbr("fuse1pw", ops.cbr("fuse1dw", ops.add(ops.cbr("lat1", taps[1]), ops.up(p5, "up5"), "sum4")))
    p3 = ops.cbr("fuse0pw", ops.cbr("fuse0dw", ops.add(ops.cbr("lat0", taps[0]), ops.up(p4, "up4"), "sum3")))
    return [ops.out(lvl, ops.cbr(f"head{lvl}pw", ops.cbr(f"head{lvl}dw", f))) for lvl, f in enumerate((p3, p4, p5))]


def forward(params, x, stats=None, train=False):
    """[B, H, W, 3] floats in 0..1 -> per level [B, H/s, W/s, 6] raw outputs (and, training, the
    batch statistics). With `stats` None and not training, `params` are folded (export graph)."""
    import jax
    import jax.numpy as jnp

    specs = {s[0]: s for s in layer_specs()}
    batch_stats = {}

    def cbr(name, h, act=True):
        _, _, _, _, _, dw, stride = specs[name]
        p = params[name]
        z = _conv(h, p["w"], stride, dw)
        if train:
            m, v = z.mean((0, 1, 2)), z.var((0, 1, 2))
            batch_stats[name] = {"m": m, "v": v}
            z = (z - m) * (p["g"] / jnp.sqrt(v + BN_EPS)) + p["b"]
        elif stats is not None:
            s = stats[name]
            z = (z - s["m"]) * (p["g"] / jnp.sqrt(s["v"] + BN_EPS)) + p["b"]
        else:
            z = z + p["b"]
        return jax.nn.relu(z) if act else z

    def out(lvl, f):
        o = params[f"out{lvl}"]
        return _conv(f, o["w"], 1, False) + o["b"]

    ops = SimpleNamespace(
        cbr=cbr,
        add=lambda a, b, _name: a + b,
        up=lambda t, _name: jnp.repeat(jnp.repeat(t, 2, axis=1), 2, axis=2),
        out=out,
    )
    outs = walk(ops, x)
    return (outs, batch_stats) if train else outs


def fold(params, stats):
    out = {}
    for name, _, _, _, _, dw, _ in layer_specs():
        p, s = params[name], stats[name]
        scale = np.asarray(p["g"]) / np.sqrt(np.asarray(s["v"]) + BN_EPS)
        out[name] = {"w": np.asarray(p["w"]) * scale, "b": np.asarray(p["b"]) - np.asarray(s["m"]) * scale}
    for lvl in range(3):
        out[f"out{lvl}"] = {k: np.asarray(v) for k, v in params[f"out{lvl}"].items()}
    return out


# ---------------------------------------------------------------- data


def letterbox_frame(img, interpolation=None):
    """A frame into the agent's 640 x 640 canvas: scaled to fit, centred, grey 114 around it
    (`interpolation` default: area when shrinking, bilinear when growing; the agent itself is
    bilinear, `cv2.INTER_LINEAR`). Returns (canvas, scale, dx, dy)."""
    h, w = img.shape[:2]
    k = EXPORT / max(h, w)
    nw, nh = int(round(w * k)), int(round(h * k))
    canvas = np.full((EXPORT, EXPORT, 3), PAD, np.uint8)
    dx, dy = (EXPORT - nw) // 2, (EXPORT - nh) // 2
    if interpolation is None:
        interpolation = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    canvas[dy: dy + nh, dx: dx + nw] = cv2.resize(img, (nw, nh), interpolation=interpolation)
    return canvas, k, dx, dy


def window(rng, img, boxes, ignored):
    """A random WIN x WIN training window of the letterboxed frame, scaled 0.7-1.3, and its boxes."""
    canvas, k, dx, dy = letterbox_frame(img)
    s = rng.uniform(0.7, 1.3)
    size = int(round(EXPORT * s))
    canvas = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_LINEAR)
    if size < WIN:
        c = np.full((WIN, WIN, 3), PAD, np.uint8)
        c[:size, :size] = canvas
        canvas, size = c, WIN
    ox, oy = int(rng.integers(0, size - WIN + 1)), int(rng.integers(0, size - WIN + 1))
    win = canvas[oy: oy + WIN, ox: ox + WIN]

    def move(b):
        b = np.asarray(b, np.float32).reshape(-1, 4)
        b = (b * k + np.array([dx, dy, dx, dy], np.float32)) * s - np.array([ox, oy, ox, oy], np.float32)
        return b

    out, ign = [], [tuple(b) for b in move(ignored)]
    for b, full in zip(np.clip(move(boxes), 0, WIN), move(boxes)):
        area = (full[2] - full[0]) * (full[3] - full[1])
        vis = (b[2] - b[0]) * (b[3] - b[1])
        if vis >= 0.5 * area and b[3] - b[1] >= 4:
            out.append(tuple(b))
        elif vis > 0:
            ign.append(tuple(b))  # cut by the window: neither a plate nor background
    return win, out, ign


@functools.lru_cache(maxsize=None)
def cells(size):
    """Every output cell of a `size` x `size` input, levels in stride order and rows first (the
    export's output order): its column, row and stride. Cached; never modified."""
    gx, gy, st = [], [], []
    for s in STRIDES:
        ys, xs = np.mgrid[0: size // s, 0: size // s]
        gx.append(xs.ravel())
        gy.append(ys.ravel())
        st.append(np.full(xs.size, s))
    return tuple(np.concatenate(a).astype(np.float32) for a in (gx, gy, st))


def assign(boxes, ignored, size=WIN):
    """Per cell (`cells` order): positive mask, objectness weight, target box."""
    gx, gy, st = cells(size)
    cx, cy = (gx + 0.5) * st, (gy + 0.5) * st
    n = len(gx)
    pos = np.zeros(n, np.float32)
    weight = np.ones(n, np.float32)
    target = np.zeros((n, 4), np.float32)
    owner_area = np.full(n, np.inf, np.float32)
    for x0, y0, x1, y1 in ignored:
        weight[(cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)] = 0.0
    for x0, y0, x1, y1 in boxes:
        size_b = np.sqrt(max(1.0, (x1 - x0) * (y1 - y0)))
        bx, by = (x0 + x1) / 2, (y0 + y1) / 2
        for s, (lo, hi) in zip(STRIDES, LEVEL_SIZES):
            if not lo <= size_b <= hi:
                continue
            level = st == s
            inside = (cx > x0) & (cx < x1) & (cy > y0) & (cy < y1)
            near = (np.abs(cx - bx) < 2.5 * s) & (np.abs(cy - by) < 2.5 * s)
            idx = np.nonzero(level & inside & near)[0]
            if len(idx) == 0:
                cand = np.nonzero(level)[0]
                idx = cand[[np.argmin((cx[cand] - bx) ** 2 + (cy[cand] - by) ** 2)]]
            area = (x1 - x0) * (y1 - y0)
            for j in idx:
                if area < owner_area[j]:
                    owner_area[j] = area
                    pos[j] = 1.0
                    target[j] = (x0, y0, x1, y1)
                    weight[j] = 1.0
    return pos, weight, target


def decode_boxes(raw, size):
    """Raw [B, A, 6] -> boxes [B, A, 4] (x0, y0, x1, y1) as the agent's yolox decoder computes."""
    import jax.numpy as jnp

    gx, gy, st = cells(size)
    cx = (raw[..., 0] + gx) * st
    cy = (raw[..., 1] + gy) * st
    w = jnp.exp(jnp.clip(raw[..., 2], -6, 6)) * st
    h = jnp.exp(jnp.clip(raw[..., 3], -6, 6)) * st
    return jnp.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)


def flat(outs):
    import jax.numpy as jnp

    return jnp.concatenate([o.reshape(o.shape[0], -1, OUT) for o in outs], axis=1)


def giou(a, b):
    import jax.numpy as jnp

    ix0, iy0 = jnp.maximum(a[..., 0], b[..., 0]), jnp.maximum(a[..., 1], b[..., 1])
    ix1, iy1 = jnp.minimum(a[..., 2], b[..., 2]), jnp.minimum(a[..., 3], b[..., 3])
    inter = jnp.clip(ix1 - ix0, 0) * jnp.clip(iy1 - iy0, 0)
    area = lambda r: jnp.clip(r[..., 2] - r[..., 0], 0) * jnp.clip(r[..., 3] - r[..., 1], 0)  # noqa: E731
    union = area(a) + area(b) - inter + 1e-6
    iou = inter / union
    cx0, cy0 = jnp.minimum(a[..., 0], b[..., 0]), jnp.minimum(a[..., 1], b[..., 1])
    cx1, cy1 = jnp.maximum(a[..., 2], b[..., 2]), jnp.maximum(a[..., 3], b[..., 3])
    hull = (cx1 - cx0) * (cy1 - cy0) + 1e-6
    return iou, iou - (hull - union) / hull


def bce(logit, target):
    import jax.numpy as jnp

    return jnp.maximum(logit, 0) - logit * target + jnp.log1p(jnp.exp(-jnp.abs(logit)))


def keep_boxes(boxes, scores, threshold, nms):
    """(box, score) of the boxes scoring at least `threshold`, best first, each overlapping no
    better-scoring kept box by IoU `nms` or more: what the agent's decoders keep."""
    keep = np.nonzero(scores >= threshold)[0]
    out = []
    for i in keep[np.argsort(-scores[keep])]:
        if all(box_iou(boxes[i], o[0]) < nms for o in out):
            out.append((boxes[i], float(scores[i])))
    return out


def detections(raw_flat, size, threshold=0.3, nms=0.45):
    """Boxes and scores of one image's raw outputs (numpy), as the agent's decoder keeps them."""
    boxes = np.asarray(decode_boxes(raw_flat[None], size))[0]
    score = 1 / (1 + np.exp(-raw_flat[:, 4])) / (1 + np.exp(-raw_flat[:, 5]))
    return keep_boxes(boxes, score, threshold, nms)


def box_iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def match(dets, gts, min_iou):
    """Each ground-truth box, in order, takes the unused detection it overlaps most if that IoU is
    at least `min_iou`: (the IoUs of the matches, the indices of the detections used)."""
    ious, used = [], set()
    for g in gts:
        best = max(((box_iou(d[0], g), j) for j, d in enumerate(dets) if j not in used), default=(0.0, -1))
        if best[0] >= min_iou:
            used.add(best[1])
            ious.append(best[0])
    return ious, used


@functools.cache
def _inference():
    """The folded model's forward pass, compiled once."""
    import jax

    return jax.jit(lambda p, x: flat(forward(p, x)))


def recall_fp(folded, frames, threshold=0.3):
    """Recall at IoU >= 0.5, false positives per frame and mean IoU of found plates on frames
    (letterboxed to 640, the export's input), with the folded parameters."""
    total = fps = 0
    ious = []
    for img, boxes, _ in frames:
        canvas, k, dx, dy = letterbox_frame(img)
        raw = np.asarray(_inference()(folded, canvas[None].astype(np.float32) / 255.0))[0]
        dets = detections(raw, EXPORT, threshold)
        found, used = match(dets, [np.array(b) * k + np.array([dx, dy, dx, dy]) for b in boxes], 0.5)
        ious += found
        total += len(boxes)
        fps += len(dets) - len(used)
    return len(ious) / max(1, total), fps / max(1, len(frames)), float(np.mean(ious)) if ious else 0.0


# ---------------------------------------------------------------- ONNX export


def export_onnx(folded, path: Path, meta: dict):
    from onnx import TensorProto, helper

    from train_ocr import OnnxGraph, write_onnx

    g = OnnxGraph()
    specs = {s[0]: s for s in layer_specs()}

    def cbr(name, x, act=True):
        _, kh, kw, cin, _, dw, stride = specs[name]
        w = np.transpose(np.asarray(folded[name]["w"], np.float32), (3, 2, 0, 1))
        y = g.node("Conv", [x, g.const(name + ".w", w), g.const(name + ".b", np.asarray(folded[name]["b"], np.float32))], name, kernel_shape=[kh, kw], strides=[stride, stride], pads=[kh // 2, kw // 2, kh // 2, kw // 2], group=cin if dw else 1)
        return g.node("Relu", [y], name + ".relu") if act else y

    def up(x, name):
        # nearest, 2x: what jnp.repeat does
        return g.node("Resize", [x, "", g.const(name + ".scales", np.array([1, 1, 2, 2], np.float32))], name, mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")

    def out(lvl, f):
        o = folded[f"out{lvl}"]
        w = np.transpose(np.asarray(o["w"], np.float32), (3, 2, 0, 1))
        raw = g.node("Conv", [f, g.const(f"out{lvl}.w", w), g.const(f"out{lvl}.b", np.asarray(o["b"], np.float32))], f"out{lvl}", kernel_shape=[1, 1])
        # the yolox family: box as raw offsets and log sizes, objectness and class as probabilities
        cut = lambda a, b, n: g.node("Slice", [raw, g.const(f"{n}a", np.array([a], np.int64)), g.const(f"{n}b", np.array([b], np.int64)), g.const(f"{n}c", np.array([1], np.int64))], n)  # noqa: E731
        score = g.node("Sigmoid", [cut(4, OUT, f"scorelogit{lvl}")], f"score{lvl}")
        cat = g.node("Concat", [cut(0, 4, f"box{lvl}"), score], f"cat{lvl}", axis=1)
        r = g.node("Reshape", [cat, g.const(f"shape{lvl}", np.array([0, OUT, -1], np.int64))], f"flat{lvl}")
        return g.node("Transpose", [r], f"anchors{lvl}", perm=[0, 2, 1])

    ops = SimpleNamespace(cbr=cbr, add=lambda a, b, name: g.node("Add", [a, b], name), up=up, out=out)
    g.node("Concat", walk(ops, "images"), "output", axis=1)
    n = sum((EXPORT // s) ** 2 for s in STRIDES)
    inputs = [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, EXPORT, EXPORT])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, n, OUT])]
    write_onnx(g.nodes, g.inits, "vn_plate_det_ea", inputs, outputs, meta, path)


# ---------------------------------------------------------------- training


def frame_labels(folder: Path):
    """(image path, YOLO boxes as normalised (cx, cy, w, h), ignored boxes in pixels) of each frame
    of a platecomp.py --out folder."""
    import csv

    out = []
    with open(folder / "frames.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            name = row["frame"]
            yolo = [tuple(float(v) for v in line.split()[1:]) for line in (folder / "labels" / f"{name}.txt").read_text().splitlines()]
            ignored = [tuple(float(v) for v in b.split()) for b in row["ignored"].split(";") if b.strip()]
            out.append((folder / "images" / f"{name}.jpg", yolo, ignored))
    return out


def pixel_boxes(yolo, w, h):
    """Normalised (cx, cy, w, h) boxes as (x1, y1, x2, y2) in pixels of a w x h frame."""
    return [((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h) for cx, cy, bw, bh in yolo]


def load_frames(folder: Path):
    """(jpeg bytes, boxes, ignored) of a platecomp.py --out folder."""
    out = []
    for path, yolo, ignored in frame_labels(folder):
        data = path.read_bytes()
        h, w = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
        out.append((data, pixel_boxes(yolo, w, h), ignored))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED", str(HERE.parents[2] / "shared")))
    ap.add_argument("--frames", type=int, default=6000, help="composite frames generated up front")
    ap.add_argument("--val-frames", type=int, default=200)
    ap.add_argument("--wall-minutes", type=float, default=100.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--out", default=None, help="where the ONNX goes (default: the cache; models/ once it ships)")
    ap.add_argument("--init", default=None, help="start from a run's parameters (the cache's NAME_params.npz)")
    ap.add_argument("--real-plates", default=None, help="paste real plate crops from this folder (labels.csv) instead of renders (platecomp)")
    ap.add_argument("--real-share", type=float, default=0.5, help="with --real-plates: the share of pasted plates that are real")
    ap.add_argument("--licence", default=None, help="the export's licence (default Apache-2.0; with --real-plates LicenseRef-edge-agent-internal-evaluation unless the crops' licence allows it)")
    ap.add_argument("--name", default=None, help=f"export name (default {NAME}; with --real-plates {NAME.replace('_ea_', '_ea_real_')})")
    ap.add_argument("--cache", default=str(HERE.parents[1] / ".cache" / "det-train"))
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    import platecomp

    t0 = time.time()

    def log(*a):
        print(f"[{time.time() - t0:7.1f}s]", *a, flush=True)

    fonts = os.environ.get("PLATEGEN_FONTS", "")
    tag = hashlib.sha256(fonts.encode()).hexdigest()[:8]
    name = args.name or (NAME.replace("_ea_", "_ea_real_") if args.real_plates else NAME)
    licence = args.licence or ("LicenseRef-edge-agent-internal-evaluation" if args.real_plates else "Apache-2.0")
    real_share = args.real_share if args.real_plates else 0.0
    # training frames with real crops are their own dataset; validation stays the plain composites
    real_tag = f"_real{round(real_share * 100)}_{hashlib.sha256(str(Path(args.real_plates).resolve()).encode()).hexdigest()[:8]}" if args.real_plates else ""
    cache = Path(args.cache)
    train_dir = cache / f"frames_{args.frames}_{args.seed}_{tag}{real_tag}"
    val_dir = cache / f"val_{args.val_frames}_{args.seed + 999}_{tag}"
    for folder, n, seed, real_dir in ((train_dir, args.frames, args.seed, args.real_plates), (val_dir, args.val_frames, args.seed + 999, None)):
        if not (folder / "frames.csv").exists():
            log(f"generating {n} frames into {folder}")
            platecomp.write_dataset(str(folder), n, seed, args.workers, args.shared, fonts or None, real_dir, real_share if real_dir else 0.0)
    train = load_frames(train_dir)
    val = [(cv2.imdecode(np.frombuffer(d, np.uint8), cv2.IMREAD_COLOR)[..., ::-1], b, i) for d, b, i in load_frames(val_dir)]
    log(f"frames: train {len(train)}, validation {len(val)} (synthetic, held out by seed)")

    if args.init:
        d = np.load(args.init, allow_pickle=True)
        params = jax.tree_util.tree_map(jnp.asarray, d["params"][0])
        stats = jax.tree_util.tree_map(jnp.asarray, d["stats"][0])
        log(f"from {args.init}: synthetic validation recall@0.5 {recall_fp(fold(params, stats), val[:100])[0]:.3f}")
    else:
        params, stats = init_params(args.seed)
    opt = optax.chain(optax.clip_by_global_norm(10.0), optax.inject_hyperparams(optax.adamw)(learning_rate=args.lr, weight_decay=5e-4))
    state = opt.init(params)

    def loss_fn(p, x, pos, weight, target):
        outs, batch_stats = forward(p, x, train=True)
        raw = flat(outs)
        boxes = decode_boxes(raw, WIN)
        iou, g = giou(boxes, target)
        npos = jnp.maximum(pos.sum(), 1.0)
        obj = (bce(raw[..., 4], pos) * weight).sum() / npos
        box = ((1 - g) * pos).sum() / npos
        cls = (bce(raw[..., 5], jax.lax.stop_gradient(jnp.clip(iou, 0, 1))) * pos).sum() / npos
        return obj + 5.0 * box + cls, (batch_stats, obj, box, cls)

    @jax.jit
    def step(p, s, st, x, pos, weight, target):
        (loss, (batch_stats, *parts)), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x, pos, weight, target)
        upd, s = opt.update(g, s, p)
        st = jax.tree_util.tree_map(lambda run, new: BN_MOMENTUM * run + (1 - BN_MOMENTUM) * new, st, batch_stats)
        return optax.apply_updates(p, upd), s, st, loss, parts

    budget = args.wall_minutes * 60
    start = time.time()
    progress = lambda: (time.time() - start) / budget  # noqa: E731

    def lr_at(frac):
        return args.lr * min(1.0, frac / 0.03) * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac))))

    def batches(q, stop):
        """Batches made on a thread: JAX releases the GIL while it computes, so the next batch's
        decoding, windows and assignment overlap the step."""
        k = 0
        while not stop.is_set():
            brng = np.random.default_rng([args.seed, k])
            k += 1
            xb, pb, wb, tb = [], [], [], []
            for j in brng.integers(0, len(train), args.batch):
                data, boxes, ignored = train[j]
                img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
                win, bx, ig = window(brng, img, boxes, ignored)
                pos, weight, target = assign(bx, ig)
                xb.append(win)
                pb.append(pos)
                wb.append(weight)
                tb.append(target)
            q.put((np.stack(xb).astype(np.float32) / 255.0, np.stack(pb), np.stack(wb), np.stack(tb)))

    import queue
    import threading

    q, stop = queue.Queue(maxsize=3), threading.Event()
    threading.Thread(target=batches, args=(q, stop), daemon=True).start()
    steps, losses, history = 0, [], []
    while progress() < 1.0 and (args.max_steps is None or steps < args.max_steps):
        x, pos, weight, target = q.get()
        state[1].hyperparams["learning_rate"] = jnp.asarray(lr_at(progress()))
        params, state, stats, loss, parts = step(params, state, stats, x, pos, weight, target)
        losses.append([float(loss)] + [float(v) for v in parts])
        steps += 1
        if steps % 250 == 0 or progress() >= 1.0:
            folded = fold(params, stats)
            r, fp, miou = recall_fp(folded, val[:100])
            rec = {"step": steps, "minutes": round((time.time() - start) / 60, 2), "loss": np.mean(losses[-250:], axis=0).round(4).tolist(), "val_recall_50": round(r, 4), "val_fp_per_frame": round(fp, 3), "val_mean_iou": round(miou, 4)}
            history.append(rec)
            log(json.dumps(rec))
            np.savez(cache / f"{name}_params.npz", params=np.array([params], dtype=object), stats=np.array([stats], dtype=object))
    stop.set()
    log(f"trained {steps} steps of {args.batch}")
    folded = fold(params, stats)
    r, fp, miou = recall_fp(folded, val)
    out = Path(args.out or cache)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.onnx"
    export_onnx(folded, path, {"name": name, "licence": licence, "train_steps": steps, "batch": args.batch, "command": " ".join(sys.argv), "fonts": fonts, "real_plates": args.real_plates or ""})
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    canvas, _, _, _ = letterbox_frame(val[0][0])
    x = canvas[None].astype(np.float32) / 255.0
    got = sess.run(None, {"images": np.transpose(x, (0, 3, 1, 2))})[0]
    want_raw = np.asarray(flat(forward(folded, x)))
    want = np.concatenate([want_raw[..., :4], 1 / (1 + np.exp(-want_raw[..., 4:]))], -1)
    err = float(np.abs(got - want).max())
    log(f"validation (synthetic, {len(val)} frames): recall@0.5 {r:.3f}, false positives/frame {fp:.2f}, mean IoU {miou:.3f}; ONNX vs JAX max abs diff {err:.2e}")
    if err > 1e-3:
        raise SystemExit(f"error: the exported graph disagrees with the trained model ({err})")
    report = {"name": name, "licence": licence, "real_plates": args.real_plates, "real_share": real_share, "init": args.init, "steps": steps, "batch": args.batch, "minutes": round((time.time() - t0) / 60, 1), "val_recall_50": r, "val_fp_per_frame": fp, "val_mean_iou": miou, "history": history, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size_bytes": path.stat().st_size}
    (cache / f"{name}.train.json").write_text(json.dumps(report, indent=1) + "\n")
    log(f"wrote {path} ({report['size_bytes']} bytes)")


if __name__ == "__main__":
    main()
