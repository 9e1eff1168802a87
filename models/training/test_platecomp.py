#!/usr/bin/env python3
"""Checks for platecomp.py, the plate detector's composite frames: every label is the box of what
the frame shows of its plate, the plates are grammar-valid, frames are reproducible, and the
MIT frames keep their own boxes. Needs numpy, OpenCV, Pillow and the fonts (scripts/test.sh runs
it in the plate generator's environment)."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import platecomp  # noqa: E402
import plategen  # noqa: E402
from test_plategen import TEMPLATES, fits  # noqa: E402

SHARED = os.environ.get("EDGE_AGENT_SHARED", os.path.join(HERE, "..", "..", "..", "shared"))


def _frames(n, seed=11):
    import numpy as np

    return [platecomp.composite(np.random.default_rng([seed, i])) for i in range(n)]


def test_labels_are_the_visible_plates():
    import numpy as np

    frames = _frames(40)
    boxes = decoys = 0
    for k, f in enumerate(frames):
        h, w = f.image.shape[:2]
        assert f.image.dtype == np.uint8 and f.image.shape == (360, 640, 3), f.image.shape
        assert len(f.boxes) == len(f.texts) == len(f.masks), k
        for (x0, y0, x1, y1, rows), text, mask in zip(f.boxes, f.texts, f.masks):
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (k, x0, y0, x1, y1)
            ys, xs = np.nonzero(mask)
            # the label is exactly the box of the plate's visible pixels
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1), k
            # a plate stands out from the body it is on: its pixels are not one colour
            assert f.image[y0:y1, x0:x1].std() > 3, (k, text)
            assert rows in (1, 2)
            assert 4 <= y1 - y0 <= platecomp.MAX_PLATE_H * 1.6, (k, y1 - y0)
            assert any(fits(text, p) for p in TEMPLATES.values()), text
            boxes += 1
        decoys += f.negatives
        for x0, y0, x1, y1 in f.ignored:  # a hidden plate is never also a label
            assert (x0, y0, x1, y1) not in [b[:4] for b in f.boxes]
        lines = platecomp.yolo_lines(f)
        assert len(lines) == len(f.boxes)
        for line, (x0, y0, x1, y1, _) in zip(lines, f.boxes):
            c, cx, cy, bw, bh = line.split()
            assert c == "0"
            back = (float(cx) - float(bw) / 2) * w, (float(cy) - float(bh) / 2) * h
            assert abs(back[0] - x0) < 0.01 and abs(back[1] - y0) < 0.01, line
    assert boxes >= 60, f"40 frames gave only {boxes} plates"
    assert decoys >= 40, f"40 frames gave only {decoys} decoys"


def test_frames_are_reproducible():
    a, b = _frames(3, 5), _frames(3, 5)
    for x, y in zip(a, b):
        assert (x.image == y.image).all() and x.boxes == y.boxes and x.texts == y.texts
    assert not (_frames(1, 6)[0].image == a[0].image).all(), "seed ignored"


def test_mit_frames_keep_their_boxes():
    import numpy as np

    mit = platecomp.mit_frames(SHARED)
    if not mit:
        raise SystemExit(f"error: no MIT frames under {SHARED}/datasets/vn_moto_parked_det_mrzaizai2k (set EDGE_AGENT_SHARED)")
    assert len(mit) == 48 and sum(len(b) for _, b in mit) == 83, (len(mit), sum(len(b) for _, b in mit))
    f = platecomp.composite(np.random.default_rng(0), mit=mit, mit_share=1.0)
    path = os.path.join(SHARED, "datasets", "vn_moto_parked_det_mrzaizai2k", "frames", f.source)
    want = dict(mit)[path]
    assert len(f.boxes) == len(want)
    for (x0, y0, x1, y1, _), (cx, cy, bw, bh) in zip(f.boxes, want):
        assert abs((x0 + x1) / 2 / 640 - cx) < 0.01 and abs((y1 - y0) / 360 - bh) < 0.01



def test_real_crops_replace_renders_and_keep_exact_labels():
    import numpy as np

    folder = os.path.join(SHARED, "datasets", "vn_moto_parked_det_mrzaizai2k")
    real = platecomp.load_real_plates(folder)
    assert len(real[2]) >= 60 and len(real[1]) >= 5, {k: len(v) for k, v in real.items()}
    known = {t for v in real.values() for _, t in v}
    texts = boxes = 0
    for i in range(12):
        f = platecomp.composite(np.random.default_rng([5, i]), real=real, real_share=1.0)
        for (x0, y0, x1, y1, _), text, mask in zip(f.boxes, f.texts, f.masks):
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x0, y0, x1, y1)
            boxes += 1
            texts += text in known
    # every pasted plate is one of the folder's (a 1-row car plate may fall back to a render
    # only when the folder has none of its row count: it has)
    assert boxes >= 20 and texts == boxes, (texts, boxes)
    # without real crops nothing changes: the same seed gives the same frame as before
    a = platecomp.composite(np.random.default_rng([5, 0]))
    b = platecomp.composite(np.random.default_rng([5, 0]), real=None, real_share=1.0)
    assert np.array_equal(a.image, b.image) and a.boxes == b.boxes

if __name__ == "__main__":
    fonts = os.environ.get("PLATEGEN_FONTS")
    if fonts:
        plategen.set_fonts(plategen.parse_font_mix(fonts))
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
