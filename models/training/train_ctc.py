"""Trains our own Vietnamese plate OCR as a CTC reader on CPU and exports it in the slot family.

Why CTC: the fixed-slot head of `train_ocr.py` must learn, for every format, which part of the
plate feeds which slot; two CPU hours were not enough for it to fit even the synthetic plates
(23 % exact, `docs/plates.md`). A CTC head reads each column of the plate with the same weights,
wherever the character sits, and learns from far fewer samples.

Two rows: the backbone ends on a 2 x 32 grid; the top grid row is read first, then the bottom one
(64 CTC frames). Where the plate's rows are known (every synthetic plate; real 2-row plates whose
format fixes the split), each grid row is trained on its own text row and a 1-row plate on the top
grid row with the bottom one blank: one CTC loss per grid row. Trained on the 64 frames as one
sequence instead, the model learned a degenerate alignment: it read the bottom text row in place
and emitted the top row's characters at the border frames, barely readable (run 1, docs/plates.md).

The export keeps the agent's `slot_ocr` family (input 64x128 RGB u8, output `[N, 10, 37]`): the
greedy CTC collapse is part of the ONNX graph, so slot k holds the softmax of the frame that
emitted the k-th character (blank mass as the pad `_`), and unused slots are the pad with
probability 1. No new decoder in the agent; its grammar-constrained decoding sees per-slot
distributions as before.

Data (`--variant`) exactly as `train_ocr.py`: `shippable` = synthetic (OFL font) + MIT crops +
Apache-2.0 Chinese crops; `real` adds the unlicensed vito crops; `site` adds a site's own crops
(`--site DIR`, collected with `edge-agent plates --save-crops DIR`; only rows someone marked
`verified = yes`), whose weights belong to that site and stay in the cache. Never
`../shared/footage/`.

Usage (from the repository root; `models/training/train.sh --model ctc` builds the environment):
    python models/training/train_ctc.py --variant shippable --wall-minutes 85
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import csv  # noqa: E402

import plategen  # noqa: E402
from train_ocr import augmented as slot_augmented  # noqa: E402
from train_ocr import (  # noqa: E402
    ALPHABET,
    BN_EPS,
    BN_MOMENTUM,
    PAD,
    SLOTS,
    H,
    W,
    OnnxGraph,
    fold,
    softmax,
    split_by_text,
    synthetic,
    finish,
    held_out_scores,
    output_path,
    save_model,
    text_of,
)

BLANK = PAD  # the pad '_' of the slot family is the CTC blank
K = len(ALPHABET)
GRID_W = 32
FRAMES = 2 * GRID_W
# (out_channels, (kh, kw), stride) convolutions; ("P", (ph, pw)) max-pools
ARCH = [
    (32, (3, 3), 2),
    ("P", (2, 2)),
    (48, (3, 3), 1),
    (64, (3, 3), 1),
    ("P", (2, 1)),
    (96, (3, 3), 1),
    ("P", (2, 1)),
    (128, (3, 3), 1),
    ("P", (2, 1)),
    (128, (1, 3), 1),
]


def top_row_length(text: str, rows: str, group: str = "") -> int:
    """Characters of `text` on the plate's top row: all of them on a 1-row plate; on a 2-row plate
    what the format fixes (the serial is the last 5 digits, or 4 on an old motorbike plate);
    -1 where the label cannot tell (an 8-character 2-row plate that is not a motorbike's)."""
    if rows == "1":
        return len(text)
    if rows != "2":
        return -1
    if len(text) in (9, 10):
        return len(text) - 5
    if len(text) == 8 and group in ("xemay", "moto"):
        return 4
    return -1


def labelled_rows(folder: Path, group: str = "") -> list[tuple[Path, str, int]]:
    """(file, text, top-row length) of a dataset's labels.csv (texts that fit the slots)."""
    out = []
    with open(folder / "labels.csv", newline="") as f:
        for row in csv.DictReader(f):
            text = plategen.checked_label(row)
            if text and len(text) <= SLOTS and all(c in ALPHABET[:-1] for c in text):
                out.append((folder / row["filename"], text, top_row_length(text, row.get("rows", ""), row.get("group", group))))
    return out


def augmented(items, copies, rng, degrade=True):
    """`train_ocr.augmented` of (file, text, top-row length) items, with the top-row lengths."""
    xs, ys = slot_augmented([(p, t) for p, t, _ in items], copies, rng, degrade)
    return xs, ys, np.repeat(np.array([top for _, _, top in items], np.int32), copies)


def convs():
    return [layer for layer in ARCH if layer[0] != "P"]


def init_params(key):
    import jax

    params, cin = [], 3
    for cout, (kh, kw), _ in convs():
        key, k = jax.random.split(key)
        std = np.sqrt(2.0 / (kh * kw * cin))
        params.append({"w": jax.random.normal(k, (kh, kw, cin, cout)) * std, "g": np.ones(cout, np.float32), "b": np.zeros(cout, np.float32)})
        cin = cout
    key, k = jax.random.split(key)
    params.append({"w": jax.random.normal(k, (1, 1, cin, K)) * np.sqrt(1.0 / cin), "b": np.zeros(K, np.float32)})
    return params


def init_stats():
    return [{"m": np.zeros(c, np.float32), "v": np.ones(c, np.float32)} for c, _, _ in convs()]


def _pad(kh, kw):
    return ((kh // 2, kh // 2), (kw // 2, kw // 2))


def _conv(x, w, stride, pad):
    import jax

    return jax.lax.conv_general_dilated(x, w, (stride, stride), pad, dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _pool(x, ph, pw):
    import jax
    import jax.numpy as jnp

    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, ph, pw, 1), (1, ph, pw, 1), "VALID")


def _frames(x):
    """[B, 2, 32, K] grid logits -> [B, 64, K] frames, top grid row first."""
    return x.reshape(x.shape[0], FRAMES, K)


def forward_train(params, x_u8, key=None, rate=0.0):
    import jax
    import jax.numpy as jnp

    x = x_u8.astype(jnp.float32) / 255.0
    batch_stats, i = [], 0
    for layer in ARCH:
        if layer[0] == "P":
            x = _pool(x, *layer[1])
            continue
        _, (kh, kw), stride = layer
        p = params[i]
        i += 1
        x = _conv(x, p["w"], stride, _pad(kh, kw))
        m, v = x.mean((0, 1, 2)), x.var((0, 1, 2))
        batch_stats.append({"m": m, "v": v})
        x = jax.nn.relu((x - m) * (p["g"] / jnp.sqrt(v + BN_EPS)) + p["b"])
    if key is not None and rate > 0:
        keep = jax.random.bernoulli(key, 1 - rate, x.shape)
        x = jnp.where(keep, x / (1 - rate), 0)
    p = params[i]
    return _frames(_conv(x, p["w"], 1, "VALID") + p["b"]), batch_stats


def forward(params, x_u8):
    """The inference graph on folded parameters: frame logits, as the ONNX export computes them."""
    import jax
    import jax.numpy as jnp

    x = x_u8.astype(jnp.float32) / 255.0
    i = 0
    for layer in ARCH:
        if layer[0] == "P":
            x = _pool(x, *layer[1])
            continue
        _, (kh, kw), stride = layer
        p = params[i]
        i += 1
        x = jax.nn.relu(_conv(x, p["w"], stride, _pad(kh, kw)) + p["b"])
    p = params[i]
    return _frames(_conv(x, p["w"], 1, "VALID") + p["b"])


def frame_logits(params, xs, batch=256):
    import jax

    f = jax.jit(forward)
    out = [np.asarray(f(params, xs[i : i + batch])) for i in range(0, len(xs), batch)]
    return np.concatenate(out) if out else np.zeros((0, FRAMES, K), np.float32)


def collapse(probs):
    """Greedy CTC: the slot matrix the exported graph gives ([N, 10, 37]), from frame softmaxes."""
    n = len(probs)
    a = probs.argmax(-1)
    prev = np.concatenate([np.full((n, 1), -1), a[:, :-1]], axis=1)
    emit = (a != BLANK) & (a != prev)
    out = np.zeros((n, SLOTS, K), np.float32)
    out[:, :, PAD] = 1.0
    for b in range(n):
        for slot, t in enumerate(np.where(emit[b])[0][:SLOTS]):
            out[b, slot] = probs[b, t]
    return out


def ctc_loss(logits, labels):
    import jax.numpy as jnp
    import optax

    label_pad = (labels == PAD).astype(jnp.float32)
    return optax.ctc_loss(logits, jnp.zeros(logits.shape[:2]), labels, label_pad, blank_id=BLANK)


def row_loss(logits, labels, tops):
    """One CTC loss per grid row where the top row's length is known (`tops` >= 0), the loss of
    the 64 frames as one sequence where it is not."""
    import jax.numpy as jnp

    pos = jnp.arange(SLOTS)[None, :]
    split = jnp.maximum(tops, 0)[:, None]
    top = jnp.where(pos < split, labels, PAD)
    idx = jnp.clip(pos + split, 0, SLOTS - 1)
    bottom = jnp.where(pos + split < SLOTS, jnp.take_along_axis(labels, idx, axis=1), PAD)
    per_row = ctc_loss(logits[:, :GRID_W], top) + ctc_loss(logits[:, GRID_W:], bottom)
    return jnp.where(tops >= 0, per_row, ctc_loss(logits, labels))


def fit_temperature(logits, ys):
    """Temperature that makes a read's confidence (its least sure character) the probability that
    the whole read is right: the lowest log-loss of the reads' confidences against their
    exactness over a grid. The reads themselves do not depend on it (the argmax of every frame
    stays). Up to run 6 it minimised the held-out CTC likelihood instead, which is about every
    alignment, not the read: on run 7's 217 calibration crops that gave 0.51, confidences far
    sharper than the reads (ECE 0.28 on the held-out crops)."""
    texts, _ = reads(collapse(softmax(logits)))
    correct = np.array([a == text_of(y) for a, y in zip(texts, ys)], np.float64)
    if not len(correct):
        return 1.0
    best = (1.0, float("inf"))
    for t in np.exp(np.linspace(np.log(0.4), np.log(4.0), 40)):
        _, conf = reads(collapse(softmax(logits / t)))
        conf = np.clip(conf.astype(np.float64), 1e-6, 1 - 1e-6)
        loss = float(-np.mean(correct * np.log(conf) + (1 - correct) * np.log(1 - conf)))
        if loss < best[1]:
            best = (float(t), loss)
    return best[0]


def reads(slot_probs):
    """(texts, confidence = the least sure emitted character) of collapsed slot matrices."""
    texts = [text_of(row) for row in slot_probs.argmax(-1)]
    conf = slot_probs.max(-1).min(-1)
    return texts, conf


def exact_rate(params, xs, ys):
    if len(xs) == 0:
        return float("nan")
    texts, _ = reads(collapse(softmax(frame_logits(params, xs))))
    return float(np.mean([a == text_of(y) for a, y in zip(texts, ys)]))


def params_from_onnx(path: Path, xs_u8: np.ndarray):
    """Trainable parameters and batch-norm statistics that compute what an exported reader
    computes, so a run can go on from the committed model (whose `.npz` is not kept): each
    convolution takes the export's folded weights, and its batch norm is set to undo the batch
    statistics of `xs_u8` (g = sqrt(v + eps), b = folded bias + m), layer by layer. The head
    gets the calibration temperature multiplied back out."""
    import jax.numpy as jnp
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    meta = {p.key: p.value for p in model.metadata_props}
    temperature = float(meta.get("temperature", "1"))
    x = xs_u8.astype(np.float32) / 255.0
    params, stats = [], []
    for n, layer in enumerate(ARCH):
        if layer[0] == "P":
            x = np.asarray(_pool(jnp.asarray(x), *layer[1]))
            continue
        _, (kh, kw), stride = layer
        if f"w{n}" not in inits:
            raise SystemExit(f"error: {path}: no weights w{n}: not an export of this architecture")
        w = np.transpose(inits[f"w{n}"], (2, 3, 1, 0))
        b = inits[f"b{n}"]
        if w.shape[:2] != (kh, kw):
            raise SystemExit(f"error: {path}: layer {n} is {w.shape[:2]}, this architecture has {(kh, kw)}")
        z = np.asarray(_conv(jnp.asarray(x), jnp.asarray(w), stride, _pad(kh, kw)))
        m, v = z.mean((0, 1, 2)), z.var((0, 1, 2))
        params.append({"w": jnp.asarray(w), "g": jnp.asarray(np.sqrt(v + BN_EPS)), "b": jnp.asarray(b + m)})
        stats.append({"m": jnp.asarray(m), "v": jnp.asarray(v)})
        x = np.maximum(z + b, 0)
    params.append({"w": jnp.asarray(np.transpose(inits["wh"], (2, 3, 1, 0)) * temperature), "b": jnp.asarray(inits["bh"] * temperature)})
    return params, stats


# ---------------------------------------------------------------- ONNX export


def export_onnx(params, temperature: float, path: Path, meta: dict):
    from onnx import TensorProto

    g = OnnxGraph()
    const, node = g.const, g.node

    cur = node("Cast", ["input"], "xf", to=TensorProto.FLOAT)
    cur = node("Div", [cur, const("c255", np.array(255.0, np.float32))], "xn")
    cur = node("Transpose", [cur], "x0", perm=[0, 3, 1, 2])
    i = 0
    for n, layer in enumerate(ARCH):
        if layer[0] == "P":
            cur = node("MaxPool", [cur], f"p{n}", kernel_shape=list(layer[1]), strides=list(layer[1]))
            continue
        _, (kh, kw), stride = layer
        p = params[i]
        i += 1
        w = np.transpose(np.asarray(p["w"], np.float32), (3, 2, 0, 1))
        cur = node("Conv", [cur, const(f"w{n}", w), const(f"b{n}", np.asarray(p["b"], np.float32))], f"c{n}", kernel_shape=[kh, kw], strides=[stride, stride], pads=[kh // 2, kw // 2, kh // 2, kw // 2])
        cur = node("Relu", [cur], f"r{n}")
    p = params[i]
    # the calibration temperature folded into the head: softmax(z / T)
    w = np.transpose(np.asarray(p["w"], np.float32), (3, 2, 0, 1)) / temperature
    cur = node("Conv", [cur, const("wh", w), const("bh", np.asarray(p["b"], np.float32) / temperature)], "head", kernel_shape=[1, 1])
    cur = node("Transpose", [cur], "grid", perm=[0, 2, 3, 1])  # [N, 2, 32, K]
    cur = node("Reshape", [cur, const("frames_shape", np.array([-1, FRAMES, K], np.int64))], "frames")
    probs = node("Softmax", [cur], "frame_probs", axis=-1)
    # greedy CTC collapse: frame t emits when its argmax is not blank and differs from frame t-1
    best = node("ArgMax", [probs], "best", axis=-1, keepdims=0)  # [N, 64] int64
    head = node("Slice", [best, const("s0", np.array([0], np.int64)), const("s1", np.array([FRAMES - 1], np.int64)), const("ax1", np.array([1], np.int64))], "best_head")
    prev = node("Pad", [head, const("pad_front", np.array([0, 1, 0, 0], np.int64)), const("minus1", np.array(-1, np.int64))], "prev")
    not_blank = node("Not", [node("Equal", [best, const("blank", np.array(BLANK, np.int64))], "is_blank")], "not_blank")
    new = node("Not", [node("Equal", [best, prev], "same")], "changed")
    emit = node("And", [not_blank, new], "emit")
    emit_f = node("Cast", [emit], "emit_f", to=TensorProto.FLOAT)
    rank = node("Sub", [node("CumSum", [emit_f, const("ax1s", np.array(1, np.int64))], "count"), const("one", np.array(1.0, np.float32))], "rank_f")
    # frames that emit nothing go to slot index SLOTS: OneHot gives them an all-zero row
    slot_of = node("Where", [emit, rank, const("nowhere", np.array(float(SLOTS), np.float32))], "slot_of_f")
    slot_i = node("Cast", [slot_of], "slot_of", to=TensorProto.INT64)
    onehot = node("OneHot", [slot_i, const("depth", np.array(SLOTS, np.int64)), const("offon", np.array([0.0, 1.0], np.float32))], "assign", axis=-1)  # [N, 64, 10]
    assign_t = node("Transpose", [onehot], "assign_t", perm=[0, 2, 1])  # [N, 10, 64]
    filled_probs = node("MatMul", [assign_t, probs], "filled_probs")  # [N, 10, K]
    filled = node("ReduceSum", [assign_t, const("ax2", np.array([2], np.int64))], "filled", keepdims=1)  # [N, 10, 1]
    empty = node("Sub", [const("one_f", np.array(1.0, np.float32)), filled], "empty")
    pad_row = np.zeros((1, 1, K), np.float32)
    pad_row[0, 0, PAD] = 1.0
    pads = node("Mul", [empty, const("pad_row", pad_row)], "pad_probs")
    node("Add", [filled_probs, pads], "probs")
    save_model(g.nodes, g.inits, "vn_plate_ocr_ctc", K, meta, path)


# ---------------------------------------------------------------- training


def write_manifest(onnx_path: Path, name: str, variant: str, sites: list[str]):
    """`{name}.toml` beside an export that does not go into models/ (the real and site variants),
    from the shipped reader's manifest with this file's name, hash, size, licence and data, so the
    agent loads it from there with `[models] manifest_dir`."""
    import re

    text = (HERE.parent / "vn_plate_ocr_ea_ctc_10x37_64x128.toml").read_text()
    data = {
        "real": ("LicenseRef-edge-agent-internal-evaluation", "Trained with the unlicensed vito crops: internal evaluation only, never shipped.",
                 "the shippable data plus the unlicensed vn_plates_autolabel_vito crops"),
        "site": ("LicenseRef-edge-agent-site-data", "Our reader trained further on this site's own verified crops; the site decides how its weights may be used.",
                 "the shippable data plus this site's verified crops: " + ", ".join(sites)),
    }[variant]
    fields = {
        "name": name,
        "file": onnx_path.name,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "licence": data[0],
        "licence_note": data[1],
        "training_data": data[2],
    }
    for key, value in fields.items():
        text = re.sub(rf'^{key} = ".*"$', lambda _: f"{key} = {json.dumps(value)}", text, count=1, flags=re.M)
    text = re.sub(r"^size_bytes = \d+$", f"size_bytes = {onnx_path.stat().st_size}", text, count=1, flags=re.M)
    text = re.sub(r"^known_limits = \[.*?^\]$", f"known_limits = [{json.dumps('trained by models/training/train_ctc.py --variant ' + variant + '; see its .train.json')}]",
                  text, count=1, flags=re.M | re.S)
    # The shipped reader's trust thresholds were calibrated for its weights, not these: without
    # them the agent falls back to 0.5 and says so until `plates --report` on a calibration set
    # gives this export its own [trust].
    text = re.sub(r"\n(#[^\n]*\n)*\[trust\]\n.*\Z", "\n", text, count=1, flags=re.S)
    onnx_path.with_suffix(".toml").write_text(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", choices=["shippable", "real", "site"], default="shippable")
    ap.add_argument("--site", action="append", default=[], help="--variant site: a folder of the site's own crops (plates --save-crops), rows verified = yes; repeatable")
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED", str(HERE.parents[2] / "shared")))
    ap.add_argument("--out", default=None, help="where the ONNX goes (default: models/ for shippable, the cache for real and site)")
    ap.add_argument("--name", default=None)
    ap.add_argument("--synthetic", type=int, default=160_000, help="synthetic samples generated up front")
    ap.add_argument("--wall-minutes", type=float, default=85.0, help="training time; the learning-rate schedule follows it")
    ap.add_argument("--max-steps", type=int, default=None, help="stop after this many steps even if time is left")
    ap.add_argument("--loss", choices=["rows", "sequence"], default="rows", help="one CTC loss per grid row (default), or the 64 frames as one sequence (run 1)")
    ap.add_argument("--mild", type=float, default=0.0, help="share of large, sharp synthetic crops (18-110 px; plategen.degrade)")
    ap.add_argument("--glyph-jitter", type=float, default=0.0, help="share of synthetic plates whose glyphs each get their own shape (plategen.set_variation)")
    ap.add_argument("--sharpen", type=float, default=0.0, help="share of synthetic crops sharpened like a camera's image pipeline (plategen.set_variation)")
    ap.add_argument("--temperature", type=float, default=None, help="the calibration temperature folded into the export, instead of the one fitted on the licensed held-out crops (e.g. one measured on the agent's calibration set: models/training/README.md, run 7)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--init", default=None, help="start from these parameters (.npz), or from an exported reader (.onnx, params_from_onnx)")
    ap.add_argument("--fonts", default=os.environ.get("PLATEGEN_FONTS"), help="the synthetic plates' font mix, PATH[@SHARE],... (train.sh: fonts.sh); default $PLATEGEN_FONTS, else OSP-DIN alone")
    ap.add_argument("--cache", default=str(HERE.parents[1] / ".cache" / "ocr-train"))
    args = ap.parse_args()

    import jax
    import jax.numpy as jnp
    import optax

    shared = Path(args.shared)
    for need in ["datasets/vn_moto_parked_det_mrzaizai2k", "datasets/cn_lprnet_test1k"]:
        if not (shared / need / "labels.csv").exists():
            raise SystemExit(f"error: {shared / need}/labels.csv is missing: put the shared folder beside the checkout or pass --shared")
    if args.temperature is not None and not 0.05 <= args.temperature <= 20:
        raise SystemExit(f"error: --temperature {args.temperature}: a calibration temperature lies between 0.05 and 20")
    if (args.variant == "site") != bool(args.site):
        raise SystemExit("error: --site DIR and --variant site go together")
    for d in args.site:
        if not (Path(d) / "labels.csv").exists():
            raise SystemExit(f"error: {d}/labels.csv is missing: collect crops with `edge-agent plates --save-crops {d}`")
    name = args.name or {
        "shippable": "vn_plate_ocr_ea_ctc_10x37_64x128",
        "real": "vn_plate_ocr_ea_ctc_real_10x37_64x128",
        "site": "vn_plate_ocr_ea_ctc_site_10x37_64x128",
    }[args.variant]
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()

    def log(*a):
        print(f"[{time.time() - t0:7.1f}s]", *a, flush=True)

    tag = f"_mild{round(args.mild * 100)}" if args.mild else ""
    variation = (args.glyph_jitter, args.sharpen)
    plategen.set_variation(*variation)  # a share outside 0..1 fails here, before any sample
    if any(variation):
        tag += f"_jit{round(args.glyph_jitter * 100)}_sharp{round(args.sharpen * 100)}"
    if args.fonts:
        import hashlib

        tag += "_fonts" + hashlib.sha256(args.fonts.encode()).hexdigest()[:8]
    syn_file = cache / f"syn_rows_{args.synthetic}_{args.seed}_uniform{tag}.npz"
    if syn_file.exists():
        d = np.load(syn_file)
        xs_syn, ys_syn, tops_syn = d["x"], d["y"], d["top"]
    else:
        xs_syn, ys_syn, tops_syn = synthetic(args.synthetic, args.seed, args.workers, None, args.mild, args.fonts, variation)
        np.savez(syn_file, x=xs_syn, y=ys_syn, top=tops_syn)
    log(f"synthetic: {len(xs_syn)} ({syn_file.name})")
    xs_sval, ys_sval, _ = synthetic(2000, args.seed + 999, args.workers, None, args.mild, args.fonts, variation)

    # splits by plate text, as train_ocr.py (same seeds: the same held-out plates)
    def split(items, frac):
        _, held = split_by_text([(p, t) for p, t, _ in items], frac, args.seed)
        held = {p for p, _ in held}
        return [i for i in items if i[0] not in held], [i for i in items if i[0] in held]

    mit_train, mit_held = split(labelled_rows(shared / "datasets/vn_moto_parked_det_mrzaizai2k", "moto"), 0.3)
    cn_train, cn_held = split(labelled_rows(shared / "datasets/cn_lprnet_test1k"), 0.2)
    vito_dir = shared / "datasets/vn_plates_autolabel_vito"
    vito_train, vito_held = split(labelled_rows(vito_dir), 0.2) if (vito_dir / "labels.csv").exists() else ([], [])
    if args.variant == "real" and not vito_train:
        raise SystemExit(f"error: {vito_dir}/labels.csv is missing: the real variant trains on it")
    site_train, site_held = split([r for d in args.site for r in labelled_rows(Path(d))], 0.2)
    if args.variant == "site" and not site_train:
        raise SystemExit(f"error: no verified crops in {', '.join(args.site)}: mark checked rows verified = yes")
    real_train = mit_train + (vito_train if args.variant == "real" else []) + site_train
    xs_r, ys_r, tops_r = augmented(real_train, 8, rng)
    xs_cn, ys_cn, tops_cn = augmented(cn_train, 1, rng, degrade=False)
    xs_e, ys_e, _ = augmented(vito_held, 3, np.random.default_rng(12345))
    # a site's held-out crops are already camera crops: scored and calibrated on as they are
    xs_site, ys_site, _ = augmented(site_held, 1, rng, degrade=False)
    if args.variant == "real":
        xs_h, ys_h = xs_e, ys_e
    else:
        xm, ym, _ = augmented(mit_held, 3, np.random.default_rng(12346))
        xc, yc, _ = augmented(cn_held, 1, rng, degrade=False)
        xs_h, ys_h = np.concatenate([xm, xc, xs_site]), np.concatenate([ym, yc, ys_site])
    log(f"real: train {len(real_train)} VN crops x8 ({len(site_train)} of the site's) + {len(cn_train)} CN; calibration {len(xs_h)}; evaluation (vito held-out) {len(vito_held)} x3")

    # the MIT crops are 6 plates: a small share, or the reader learns their strings
    real_share = 0.3 if args.variant in ("real", "site") else 0.05
    pools = [(xs_syn, ys_syn, tops_syn, 0.9 - real_share), (xs_r, ys_r, tops_r, real_share), (xs_cn, ys_cn, tops_cn, 0.1)]
    pools = [p for p in pools if len(p[0])]
    shares = np.array([p[3] for p in pools])
    shares /= shares.sum()

    if args.init and args.init.endswith(".onnx"):
        params, stats = params_from_onnx(Path(args.init), xs_syn[:512])
        log(f"from {args.init}: synthetic val exact {exact_rate(fold(params, stats), xs_sval, ys_sval):.3f}")
    elif args.init:
        d = np.load(args.init, allow_pickle=True)
        params = jax.tree_util.tree_map(jnp.asarray, list(d["params"]))
        stats = jax.tree_util.tree_map(jnp.asarray, list(d["stats"]))
    else:
        params = init_params(jax.random.PRNGKey(args.seed))
        stats = init_stats()
    opt = optax.chain(optax.clip_by_global_norm(5.0), optax.inject_hyperparams(optax.adamw)(learning_rate=args.lr, weight_decay=1e-4))
    state = opt.init(params)

    def lr_at(frac):
        warm = min(1.0, frac / 0.03)
        return args.lr * warm * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * min(1.0, frac))))

    def loss_fn(p, x, y, tops, key):
        logits, batch_stats = forward_train(p, x, key, 0.1)
        if args.loss == "sequence":
            return ctc_loss(logits, y).mean(), batch_stats
        return row_loss(logits, y, tops).mean(), batch_stats

    @jax.jit
    def step(p, s, st, x, y, tops, key):
        (loss, batch_stats), g = jax.value_and_grad(loss_fn, has_aux=True)(p, x, y, tops, key)
        upd, s = opt.update(g, s, p)
        st = jax.tree_util.tree_map(lambda run, new: BN_MOMENTUM * run + (1 - BN_MOMENTUM) * new, st, batch_stats)
        return optax.apply_updates(p, upd), s, st, loss

    key = jax.random.PRNGKey(args.seed + 1)
    history, steps, losses = [], 0, []
    budget = args.wall_minutes * 60
    train_start = time.time()
    progress = lambda: (time.time() - train_start) / budget
    while progress() < 1.0 and (args.max_steps is None or steps < args.max_steps):
        counts = rng.multinomial(args.batch, shares)
        xb, yb, tb = [], [], []
        for (xs, ys, tops, _), c in zip(pools, counts):
            ix = rng.integers(0, len(xs), c)
            xb.append(xs[ix])
            yb.append(ys[ix])
            tb.append(tops[ix])
        xb, yb, tb = np.concatenate(xb), np.concatenate(yb), np.concatenate(tb)
        if rng.random() < 0.3:  # plates of every colour
            xb = xb[..., rng.permutation(3)]
        dy, dx = rng.integers(-4, 5, 2)  # a detector's box is never exactly on the plate
        xb = np.take(xb, np.clip(np.arange(H) - dy, 0, H - 1), axis=1)
        xb = np.take(xb, np.clip(np.arange(W) - dx, 0, W - 1), axis=2)
        key, k = jax.random.split(key)
        state[1].hyperparams["learning_rate"] = jnp.asarray(lr_at(progress()))
        params, state, stats, loss = step(params, state, stats, xb, yb, tb, k)
        losses.append(float(loss))
        steps += 1
        if steps % 500 == 0:
            folded = fold(params, stats)
            rec = {
                "step": steps,
                "minutes": round((time.time() - train_start) / 60, 2),
                "loss": float(np.mean(losses[-500:])),
                "syn_val_exact": exact_rate(folded, xs_sval, ys_sval),
                "vito_held_exact": exact_rate(folded, xs_e, ys_e),
            }
            history.append(rec)
            log(json.dumps(rec))
            np.savez(
                cache / f"{name}_params.npz",
                params=np.array([jax.tree_util.tree_map(np.asarray, p) for p in params], dtype=object),
                stats=np.array([jax.tree_util.tree_map(np.asarray, s) for s in stats], dtype=object),
            )
    log(f"trained {steps} steps of {args.batch}")
    trained = params
    params = fold(trained, stats)

    fitted = fit_temperature(frame_logits(params, xs_h), ys_h)
    temperature = args.temperature if args.temperature is not None else fitted
    log(f"temperature fitted on {len(xs_h)} calibration crops {fitted:.3f}; folded into the export {temperature:.3f}")
    texts, conf = reads(collapse(softmax(frame_logits(params, xs_e) / temperature))) if len(xs_e) else ([], np.zeros(0))
    correct, th97, cov97, ece = held_out_scores(texts, conf, ys_e)
    site_exact = exact_rate(params, xs_site, ys_site) if len(xs_site) else None
    if site_exact is not None:
        log(f"site held-out: {len(xs_site)} crops, exact {site_exact:.3f}")
    log(f"temperature {temperature:.3f}; vito held-out exact {correct.mean() if len(correct) else float('nan'):.3f}, ECE {ece:.3f}; 97% precision at confidence >= {th97:.3f} keeps {cov97:.3f}")

    onnx_path = output_path(args, cache, name)
    meta = {
        "name": name,
        "variant": args.variant,
        # real: trained on unlicensed data, never shipped; site: the site's own crops, its weights
        "licence": {"shippable": "Apache-2.0", "real": "LicenseRef-edge-agent-internal-evaluation", "site": "LicenseRef-edge-agent-site-data"}[args.variant],
        "alphabet": ALPHABET,
        "slots": SLOTS,
        "head": "ctc, greedy collapse in graph",
        "temperature": round(temperature, 4),
        "train_steps": steps,
        "batch": args.batch,
        "command": " ".join(sys.argv),
        "fonts": ",".join(os.path.basename(f.rpartition("@")[0] or f) for f in args.fonts.split(",")) if args.fonts else "OSP-DIN.ttf",
    }
    export_onnx(params, temperature, onnx_path, meta)

    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    probe = np.concatenate([xs_sval[:200], xs_e[:200]])
    got = sess.run(None, {"input": probe})[0]
    want = collapse(softmax(frame_logits(params, probe) / temperature))
    err = float(np.abs(got - want).max())
    log(f"ONNX vs JAX collapse max abs diff {err:.2e}")
    if err > 1e-4:
        raise SystemExit(f"error: the exported graph disagrees with the trained model ({err})")
    if args.variant != "shippable":
        write_manifest(onnx_path, name, args.variant, args.site)
    finish(args, name, onnx_path, sess, xs_sval[:6], {
        "minutes": round((time.time() - t0) / 60, 1),
        "steps": steps,
        "batch": args.batch,
        "temperature": temperature,
        "temperature_fitted": fitted,
        "calibration_crops": len(xs_h),
        "evaluation_crops": len(xs_e),
        "evaluation_exact": float(correct.mean()) if len(correct) else None,
        "evaluation_ece": ece,
        "threshold_97": th97,
        "coverage_97": cov97,
        "site": args.site,
        "site_train_crops": len(site_train),
        "site_held_exact": site_exact,
        "history": history,
    }, log)


if __name__ == "__main__":
    main()
