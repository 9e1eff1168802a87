#!/usr/bin/env python3
"""Checks for plategen.py. Run with plain ``python3 test_plategen.py`` (stdlib only for the text
part; the image part runs only when numpy, OpenCV, Pillow and the OSP-DIN font are available)."""

import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import plategen  # noqa: E402  (imports no numpy/PIL/cv2 at module level)

GOLDEN = os.path.join(HERE, "testdata", "generated_plates.txt")

DIG = "0123456789"
LET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
CIV = "ABCDEFGHKLMNPSTUVXYZ"
CAR = CIV + "R"
SPEC = {"LD", "DA", "KT", "CD", "HC", "MK", "TD", "NG", "QT", "CV", "NN"}
S1, S2 = "LDKCHMTNQ", "DATCKGVN"
# Per-position classes of grammar.rs TEMPLATES; "P" = province digit, pair rules checked below.
TEMPLATES = {
    "military": ["ABHKPQT", LET, DIG, DIG, DIG, DIG],
    "car4": ["P", "P", CAR, DIG, DIG, DIG, DIG],
    "car5": ["P", "P", CAR, DIG, DIG, DIG, DIG, DIG],
    "special4": ["P", "P", S1, "S2!", DIG, DIG, DIG, DIG],
    "moto5": ["P", "P", CIV, DIG, DIG, DIG, DIG, DIG, DIG],
    "twoletter5": ["P", "P", CIV + S1, "S2?", DIG, DIG, DIG, DIG, DIG],
    "electric": ["P", "P", "M", "D", DIG, DIG, DIG, DIG, DIG, DIG],
}


def fits(t, pos):
    if len(t) != len(pos):
        return False
    for i, (c, p) in enumerate(zip(t, pos)):
        if p == "P":
            if c not in DIG or (i == 1 and t[:2] not in plategen.PROVINCE_CODES):
                return False
        elif p == "S2!":
            if t[2:4] not in SPEC:
                return False
        elif p == "S2?":
            if not ((t[2] in CIV and t[3] in CIV) or t[2:4] in SPEC):
                return False
        elif c not in p:
            return False
    return True


def texts(n, seed, *extra):
    cmd = [sys.executable, os.path.join(HERE, "plategen.py"), "--texts", str(n), "--seed", str(seed)]
    return subprocess.run(cmd + list(extra), check=True, capture_output=True, text=True).stdout


def test_texts():
    a = texts(2000, 7)
    assert a == texts(2000, 7), "--texts not deterministic"
    assert a != texts(2000, 8), "seed ignored"
    with open(GOLDEN) as f:
        assert a == f.read(), "output differs from testdata/generated_plates.txt (regenerate it?)"
    seen = set()
    for line in a.splitlines():
        t, fmt = line.split(",")
        seen.add(fmt)
        assert fmt in plategen.FORMATS, line
        assert 6 <= len(t) <= 10 and re.fullmatch("[0-9A-Z]+", t), line
        assert any(fits(t, p) for p in TEMPLATES.values()), "not grammar-valid: " + line
    missing = set(plategen.FORMATS) - seen
    assert not missing, "formats never generated: %s" % sorted(missing)


def test_plate_rows():
    import random

    rng = random.Random(3)
    for fmt in plategen.FORMATS:
        for _ in range(200):
            p = plategen.random_plate(rng, fmt)
            assert p.fmt == fmt and p.text == plategen.normalise("".join(p.rows)), p
            assert len(p.rows) in (1, 2)
            assert (p.color == "red") == (fmt == "military"), p
            assert p.color in ("white", "yellow", "blue", "red")
    # province prior: only the favoured codes should dominate
    prior = plategen.parse_province_prior("77:1000,81:1000")
    n = sum(plategen.random_plate(rng, "car1_5", prior).text[:2] in ("77", "81") for _ in range(500))
    assert n > 450, n


def image_numpy(test):
    """numpy when the image side can run (numpy, OpenCV, Pillow and the plate font), else None
    after saying why ``test`` is skipped; with $PLATEGEN_REQUIRE_IMAGES (CI) a missing piece fails."""
    try:
        import numpy as np

        plategen.font_path()
        import cv2  # noqa: F401
        import PIL  # noqa: F401
    except (ImportError, FileNotFoundError) as e:
        if os.environ.get("PLATEGEN_REQUIRE_IMAGES"):
            raise SystemExit(f"error: the {test} test needs numpy, OpenCV, Pillow and the font: {e}")
        print(f"skip {test} test:", e)
        return None
    return np


def test_images():
    np = image_numpy("image")
    if np is None:
        return
    for fmt in plategen.FORMATS:
        rng = np.random.default_rng(1)
        img, p = plategen.sample(rng, fmt)
        assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, img.shape
        assert 14 <= img.shape[0] <= 40, img.shape
        img2, p2 = plategen.sample(np.random.default_rng(1), fmt)
        assert p2 == p and (img2 == img).all(), "sample not deterministic"
        clean = plategen.render_plate(p, rng)
        assert clean.shape[0] >= 64


def test_font_mix():
    """Every font of the training mix ($PLATEGEN_FONTS, from fonts.sh) draws every plate symbol
    as ink of its own, and a mixed sample stays deterministic and uses several fonts."""
    spec = os.environ.get("PLATEGEN_FONTS")
    for bad in ("", "/nonexistent/font.ttf@1"):
        try:
            plategen.parse_font_mix(bad)
            raise AssertionError(f"font mix {bad!r} accepted")
        except (FileNotFoundError, ValueError):
            pass
    if not spec:
        if os.environ.get("PLATEGEN_REQUIRE_IMAGES"):
            raise SystemExit("error: the font test needs PLATEGEN_FONTS (models/training/fonts.sh prints it)")
        print("skip font mix test: PLATEGEN_FONTS is not set")
        return
    import numpy as np

    mix = plategen.parse_font_mix(spec)
    at = [p for p, _ in mix if "@" in p]
    if at:  # a path with '@' in it and no share is one font of share 1
        assert plategen.parse_font_mix(at[0]) == [(at[0], 1.0)]
    assert len(mix) >= 2, mix
    symbols = DIG + CIV + "RĐ"
    shapes = {}
    for path, _ in mix:
        glyphs = [plategen._glyph(c, 0, path) for c in symbols]
        for c, g in zip(symbols, glyphs):
            assert g.size > 0 and g.max() > 0.5, f"{path}: no ink for {c!r}"
        # a font without the glyphs draws one box for all of them
        sizes = {g.shape for g in glyphs}
        assert len(sizes) > 3, f"{path}: every symbol has the same ink box {sizes}"
        shapes[path] = plategen._glyph("8", 0, path).shape
    assert len(set(shapes.values())) > 1, "every font draws 8 alike: the mix is one font"
    plategen.set_fonts(mix)
    try:
        a = [plategen.sample(np.random.default_rng([5, i]))[0] for i in range(3)]
        b = [plategen.sample(np.random.default_rng([5, i]))[0] for i in range(3)]
        assert all(x.shape == y.shape and (x == y).all() for x, y in zip(a, b)), "mixed samples not deterministic"
        picked = {plategen._pick_font(np.random.default_rng(i)) for i in range(200)}
        assert len(picked) >= len(mix) - 1, f"200 plates used {len(picked)} of {len(mix)} fonts"
    finally:
        plategen.set_fonts(None)


def test_variation():
    """Glyph jitter and camera sharpening: off by default (samples byte-identical to a plain
    draw), on they change the sample and stay deterministic, and a share outside 0..1 is refused."""
    for bad in (-0.1, 1.5):
        try:
            plategen.set_variation(glyphs=bad)
            raise AssertionError(f"glyph share {bad} accepted")
        except ValueError:
            pass
    np = image_numpy("variation")
    if np is None:
        return
    def draw():
        """Six samples from fixed seeds, under the variation set now."""
        return [plategen.sample(np.random.default_rng([7, i]))[0] for i in range(6)]

    plain = draw()
    try:
        plategen.set_variation(0.0, 0.0)
        again = draw()
        assert all((a == b).all() for a, b in zip(plain, again)), "zero shares changed the samples"
        plategen.set_variation(1.0, 1.0)
        varied = draw()
        twice = draw()
        assert all(a.shape == b.shape and (a == b).all() for a, b in zip(varied, twice)), "varied samples not deterministic"
        assert any(a.shape != b.shape or (a != b).any() for a, b in zip(plain, varied)), "variation changed nothing"
        for v in varied:
            assert v.dtype == np.uint8 and 14 <= v.shape[0] <= 40, v.shape
        # a jittered glyph keeps its ink, cropped to its own box
        g = plategen._glyph("8", 0)
        j = plategen._jitter_glyph(g, np.random.default_rng(3))
        assert j.max() > 0.5 and j.shape[0] >= g.shape[0] * 0.9, (g.shape, j.shape)
    finally:
        plategen.set_variation(0.0, 0.0)


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
