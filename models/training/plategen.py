#!/usr/bin/env python3
"""Synthetic Vietnamese licence-plate generator for training the plate OCR.

Module API (imported by the trainer):

* ``FORMATS`` - names of the plate formats generated.
* ``Plate`` - dataclass: ``text`` (normalised ``[0-9A-Z]``, top row first, Đ→D), ``rows`` (as
  printed), ``fmt``, ``color`` (``white``/``yellow``/``blue``/``red``).
* ``random_plate(rng, fmt=None, province_weights=None) -> Plate``
* ``render_plate(plate, rng) -> np.ndarray`` - clean RGB uint8 render (about 80-100 px high).
* ``degrade(clean, rng, mild=0.0) -> np.ndarray`` - what the camera's plate-detector crop looks
  like: 14-40 px high RGB uint8 (not upscaled back); with probability ``mild`` instead a larger,
  sharper crop (18-110 px, light blur, JPEG 45-90) like the plates of close or high-resolution
  views, which the small-crop regime alone never shows the reader.
* ``sample(rng, fmt=None, province_weights=None, mild=0.0) -> (np.ndarray, Plate)``

``rng`` is a ``numpy.random.Generator``; ``random_plate`` also accepts a stdlib ``random.Random``
(only ``rng.random()`` is used there), which is what ``--texts`` uses so that it runs with plain
``python3`` (no numpy, PIL or OpenCV: they are imported lazily).

The text grammar follows ``edge-agent/src/plate/grammar.rs`` (TEMPLATES) and the province codes
``edge-agent/src/plate/province.rs``.

CLI::

    plategen.py --texts N --seed S                 # "text,fmt" lines, stdlib only
    plategen.py --out DIR -n N --seed S [--workers W]
    plategen.py --sheet PATH.png --seed S [--real DIR]
    common: --province-prior "77:5,81:5"  --font PATH  --fonts PATH[@SHARE],...  --fmt FORMAT

Font: OSP-DIN (OFL, Debian ``fonts-opendin``) from
``/usr/share/fonts/truetype/opendin/OSP-DIN.ttf``, else ``--font`` / ``$PLATEGEN_FONT``. With
``--fonts`` / ``$PLATEGEN_FONTS`` (``set_fonts``) each plate is drawn in one font of a mix:
``models/training/fonts.sh`` installs the licensed condensed fonts ``train.sh`` mixes.
"""

from __future__ import annotations

import bisect
import math
import os
import sys
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# Grammar data (mirrors grammar.rs / province.rs)
# --------------------------------------------------------------------------------------------

FORMATS = (
    "car1_5",
    "car1_4",
    "car2_5",
    "car2_4",
    "moto_old4",
    "moto5",
    "moto_2letter",
    "special",
    "electric",
    "military",
)

# Rough share of each format in provincial traffic (motorbikes dominate; rare formats present).
FORMAT_WEIGHTS = {
    "moto5": 0.33,
    "moto_old4": 0.12,
    "moto_2letter": 0.07,
    "car1_5": 0.20,
    "car1_4": 0.05,
    "car2_5": 0.07,
    "car2_4": 0.03,
    "special": 0.05,
    "electric": 0.04,
    "military": 0.04,
}

# Every code in province.rs TABLE (10, 13, 42, 44-46, 87, 91, 96 are not issued).
PROVINCE_CODES = tuple(
    "%02d" % c
    for c in list(range(11, 100))
    if c not in (13, 42, 44, 45, 46, 87, 91, 96)
)

CIVIL_LETTERS = "ABCDEFGHKLMNPSTUVXYZ"  # no I J O Q R W
CAR_SERIES = CIVIL_LETTERS + "R"
SPECIAL_SERIES = ("LD", "DA", "KT", "CD", "HC", "MK", "TĐ", "NG", "QT", "CV", "NN")
SPECIAL_WEIGHTS = (0.30, 0.08, 0.10, 0.06, 0.04, 0.05, 0.04, 0.12, 0.06, 0.07, 0.08)
FOREIGN_SERIES = ("NG", "QT", "CV", "NN")
MILITARY_FIRST = "ABHKPQT"
MILITARY_SECOND = CIVIL_LETTERS  # grammar accepts any letter; real unit codes use these

DEFAULT_FONT = "/usr/share/fonts/truetype/opendin/OSP-DIN.ttf"


@dataclass
class Plate:
    text: str
    rows: list = field(default_factory=list)
    fmt: str = ""
    color: str = "white"

    @property
    def two_row(self) -> bool:
        return len(self.rows) == 2


def normalise(s: str) -> str:
    s = s.replace("Đ", "D").replace("đ", "D").upper()
    return "".join(c for c in s if c.isascii() and c.isalnum())


def checked_label(row: dict) -> str:
    """A ``labels.csv`` row's plate text, or "" when it has none or when its ``verified`` column (a
    crop ``edge-agent plates --save-crops`` collected) does not say yes: a collected crop's label
    is only a proposal until someone checks it. The shared datasets have no such column."""
    if row.get("verified", "yes").strip().lower() != "yes":
        return ""
    return (row.get("plate_norm") or "").strip()


# --------------------------------------------------------------------------------------------
# Random helpers that work with numpy Generator and random.Random (only .random() is used)
# --------------------------------------------------------------------------------------------


def _u(rng, a=0.0, b=1.0):
    return a + (b - a) * float(rng.random())


def _randint(rng, n):
    """Uniform int in [0, n)."""
    return min(int(float(rng.random()) * n), n - 1)


def _pick(rng, seq):
    return seq[_randint(rng, len(seq))]


def _wpick(rng, seq, weights):
    cum = []
    t = 0.0
    for w in weights:
        t += w
        cum.append(t)
    return seq[min(bisect.bisect_right(cum, float(rng.random()) * t), len(seq) - 1)]


def _digits(rng, n):
    return "".join(str(_randint(rng, 10)) for _ in range(n))


def _dotted(serial):
    return serial[:3] + "." + serial[3:] if len(serial) == 5 else serial


def parse_province_prior(spec: str | None) -> dict | None:
    """``"77:5,81:5"`` -> ``{"77": 5.0, "81": 5.0}``."""
    if not spec:
        return None
    out = {}
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        code, _, w = part.partition(":")
        code = code.strip().zfill(2)
        if code not in PROVINCE_CODES:
            raise ValueError("unknown province code %r in prior" % code)
        out[code] = float(w) if w.strip() else 1.0
    return out


_PROV_CACHE: dict = {}


def _province(rng, province_weights):
    """Known code; uniform by default, ``province_weights`` overrides a code's weight (others 1)."""
    if not province_weights:
        return _pick(rng, PROVINCE_CODES)
    key = tuple(sorted(province_weights.items()))
    w = _PROV_CACHE.get(key)
    if w is None:
        for k in province_weights:
            if "%02d" % int(k) not in PROVINCE_CODES:
                raise ValueError("unknown province code %r" % (k,))
        pw = {"%02d" % int(k): float(v) for k, v in province_weights.items()}
        w = [max(0.0, pw.get(c, 1.0)) for c in PROVINCE_CODES]
        _PROV_CACHE[key] = w
    return _wpick(rng, PROVINCE_CODES, w)


def random_plate(rng, fmt: str | None = None, province_weights: dict | None = None) -> Plate:
    """A random grammar-valid plate of format ``fmt`` (weighted like real traffic if None)."""
    if fmt is None:
        fmt = _wpick(rng, list(FORMAT_WEIGHTS), list(FORMAT_WEIGHTS.values()))
    if fmt not in FORMATS:
        raise ValueError("unknown format %r (one of %s)" % (fmt, ", ".join(FORMATS)))
    if fmt == "military":
        unit = _pick(rng, MILITARY_FIRST) + _pick(rng, MILITARY_SECOND)
        d = _digits(rng, 4)
        if _u(rng) < 0.55:
            rows = [unit + "-" + d[:2] + "-" + d[2:]]
        else:
            rows = [unit, d[:2] + "-" + d[2:]]
        return Plate(normalise(unit + d), rows, fmt, "red")

    prov = _province(rng, province_weights)
    r = _u(rng)
    if fmt.startswith("car"):
        series = _pick(rng, CAR_SERIES)
        serial = _digits(rng, 5 if fmt.endswith("_5") else 4)
        s = _dotted(serial)
        top = prov + series
        rows = [top + "-" + s] if fmt.startswith("car1") else [top, s]
        color = "white" if r < 0.68 else ("yellow" if r < 0.90 else "blue")
    elif fmt == "moto_old4":
        top = prov + "-" + _pick(rng, CIVIL_LETTERS) + str(_randint(rng, 10))
        rows = [top, _digits(rng, 4)]
        color = "white" if r < 0.96 else "blue"
    elif fmt == "moto5":
        top = prov + "-" + _pick(rng, CIVIL_LETTERS) + str(_randint(rng, 10))
        rows = [top, _dotted(_digits(rng, 5))]
        color = "white" if r < 0.94 else ("blue" if r < 0.98 else "yellow")
    elif fmt == "moto_2letter":
        top = prov + "-" + _pick(rng, CIVIL_LETTERS) + _pick(rng, CIVIL_LETTERS)
        rows = [top, _dotted(_digits(rng, 5))]
        color = "white" if r < 0.95 else "yellow"
    elif fmt == "special":
        series = _wpick(rng, SPECIAL_SERIES, SPECIAL_WEIGHTS)
        # foreign series: some old 4-digit serials (grammar Special4); otherwise 5 digits.
        n = 4 if (series in FOREIGN_SERIES and _u(rng) < 0.35) else 5
        s = _dotted(_digits(rng, n))
        top = prov + series
        rows = [top + "-" + s] if _u(rng) < 0.55 else [top, s]
        color = "white" if r < 0.8 else ("yellow" if r < 0.9 else "blue")
    elif fmt == "electric":
        top = prov + "-MĐ" + str(_randint(rng, 10))
        rows = [top, _dotted(_digits(rng, 5))]
        color = "white"
    else:  # pragma: no cover
        raise AssertionError(fmt)
    return Plate(normalise("".join(rows)), rows, fmt, color)


# --------------------------------------------------------------------------------------------
# Rendering (numpy / OpenCV / PIL imported lazily)
# --------------------------------------------------------------------------------------------

_np = None
_cv2 = None
_FONT_PATH = None
_FONT_MIX: list | None = None
_GLYPHS: dict = {}


def _imports():
    global _np, _cv2
    if _np is None:
        import numpy
        import cv2

        cv2.setNumThreads(1)
        _np, _cv2 = numpy, cv2
    return _np, _cv2


def set_font(path: str | None):
    """Use ``path`` as the plate font (otherwise the default lookup)."""
    global _FONT_PATH
    _FONT_PATH = path
    _GLYPHS.clear()


def parse_font_mix(spec: str) -> list[tuple[str, float]]:
    """``PATH[@SHARE],PATH[@SHARE],...`` -> [(path, share)] (share 1 where not given); every
    file must exist, so a missing font fails before any sample is drawn."""
    mix = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        path, _, share = part.rpartition("@")
        try:
            share = float(share)
        except ValueError:  # no share, and an '@' in the path (npm's @fontsource)
            path, share = part, 1.0
        if not os.path.isfile(path):
            raise FileNotFoundError("plate font %s (from the font mix) not found" % path)
        mix.append((path, share))
    if not mix or sum(s for _, s in mix) <= 0:
        raise ValueError("empty font mix: %r" % spec)
    return mix


def set_fonts(mix: list[tuple[str, float]] | None):
    """Draw each plate in one font of ``mix`` ([(path, share)], picked by share), or, with
    ``None``, always in the one plate font (`set_font`). A reader trained on one font learns that
    font's glyphs; condensed sans fonts around the plate font teach it the strokes they share."""
    global _FONT_MIX
    _FONT_MIX = mix
    _GLYPHS.clear()


_VARIATION = {"glyphs": 0.0, "sharpen": 0.0}


def set_variation(glyphs: float = 0.0, sharpen: float = 0.0):
    """Shares of plates drawn with per-glyph shape jitter (each glyph its own width, height,
    baseline, shear and slight rotation, as stamped plates and hand-repainted ones vary) and of
    crops passed through a camera's sharpening (an unsharp mask with its bright and dark halos,
    which every IP camera's image pipeline applies). 0 draws nothing from the random stream, so
    samples without them stay byte-identical for a given seed."""
    for name, v in (("glyphs", glyphs), ("sharpen", sharpen)):
        if not 0.0 <= v <= 1.0:
            raise ValueError("variation %s share %r is not in 0..1" % (name, v))
    _VARIATION["glyphs"], _VARIATION["sharpen"] = float(glyphs), float(sharpen)


def _jitter_glyph(g, rng):
    """``g`` (ink mask) sheared by up to ±0.12 and turned by up to ±3°, cropped to its new ink box."""
    np, cv2 = _imports()
    pad = max(2, int(0.2 * max(g.shape)))
    g = cv2.copyMakeBorder(g, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0.0)
    h, w = g.shape
    sh = _u(rng, -0.12, 0.12)
    ang = math.radians(_u(rng, -3.0, 3.0))
    c, s = math.cos(ang), math.sin(ang)
    # rotation about the glyph's centre, then a shear of x along y (italic-like lean)
    m = np.float32([[c, -s + sh, 0.0], [s, c, 0.0]])
    cx, cy = w / 2.0, h / 2.0
    m[0, 2] = cx - (m[0, 0] * cx + m[0, 1] * cy)
    m[1, 2] = cy - (m[1, 0] * cx + m[1, 1] * cy)
    out = cv2.warpAffine(g, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    ys, xs = np.nonzero(out > 0.05)
    if len(ys) == 0:
        return g[pad:-pad, pad:-pad]
    return out[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def _pick_font(rng) -> str:
    """The font this plate is drawn in; draws from ``rng`` only when several are mixed, so one-font
    samples stay the same for a given seed."""
    if not _FONT_MIX:
        return font_path()
    if len(_FONT_MIX) == 1:
        return _FONT_MIX[0][0]
    return _wpick(rng, [p for p, _ in _FONT_MIX], [s for _, s in _FONT_MIX])


def font_path() -> str:
    cands = [DEFAULT_FONT, _FONT_PATH, os.environ.get("PLATEGEN_FONT")]
    for c in cands:
        if c and os.path.isfile(c):
            return c
    raise FileNotFoundError(
        "plate font OSP-DIN.ttf not found: install Debian package fonts-opendin "
        "(apt-get install fonts-opendin -> %s) or pass --font PATH / set PLATEGEN_FONT" % DEFAULT_FONT
    )


_REF = 96  # reference font size for the glyph cache


def _glyph(ch: str, weight: int, font_file: str | None = None):
    """Float32 ink mask (0..1) of ``ch`` in ``font_file`` (default: the plate font) cropped to its
    ink box, at the reference size."""
    font_file = font_file or font_path()
    key = (font_file, ch, weight)
    g = _GLYPHS.get(key)
    if g is not None:
        return g
    np, cv2 = _imports()
    from PIL import Image, ImageDraw, ImageFont

    fkey = ("__font__", font_file)
    font = _GLYPHS.get(fkey)
    if font is None:
        font = ImageFont.truetype(font_file, _REF)
        _GLYPHS[fkey] = font
    base = "D" if ch == "Đ" else ch
    sw = max(0, weight)  # PIL stroke width in px at the reference size
    im = Image.new("L", (_REF * 2, _REF * 2), 0)
    ImageDraw.Draw(im).text((_REF // 2, _REF // 4), base, font=font, fill=255,
                            stroke_width=sw, stroke_fill=255)
    a = np.asarray(im, dtype=np.float32) / 255.0
    if weight < 0:
        a = cv2.erode(a, np.ones((3, 3), np.uint8), iterations=-weight)
    ys, xs = np.nonzero(a > 0.05)
    a = a[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1].copy()
    if ch == "Đ":  # OSP-DIN has no Đ (nor have most fonts): add the bar across the stem of D
        h, w = a.shape
        t = max(2, int(round(h * 0.085)))
        y0 = int(h * 0.47) - t // 2
        a[y0: y0 + t, 0: int(w * 0.50)] = 1.0
    _GLYPHS[key] = a
    return a


# Plate geometry at render scale: (height px, width px, rows, char-height fraction of plate).
_GEOM = {
    1: (80, 378),   # 520x110 mm
    "car2": (96, 192),  # 330x165 mm
    "moto": (100, 136),  # 190x140 mm
}

_COLORS = {
    # (background RGB, ink RGB)
    "white": ((236, 236, 232), (22, 22, 26)),
    "yellow": ((232, 190, 40), (20, 20, 22)),
    "blue": ((28, 70, 160), (238, 238, 240)),
    "red": ((180, 32, 36), (240, 236, 236)),
}


def _glyph_aspect(ch):
    if ch == "-":
        return 0.36
    if ch == ".":
        return 0.16
    if ch in "M":
        return 0.64
    if ch == "1":
        return 0.40
    return 0.54


def _draw_row(ink, text, x0, x1, yc, ch_h, weight, rng, fill=0.86, font_file=None, jitter=False):
    """Draw ``text`` into ``ink`` (float mask) centred in [x0, x1] around yc, glyphs ch_h high;
    ``jitter``: each glyph its own shape (see `set_variation`)."""
    np, cv2 = _imports()
    H, W = ink.shape
    asp = [_glyph_aspect(c) * _u(rng, 0.95, 1.07) for c in text]
    n = len(text)
    nat = sum(asp) * ch_h
    avail = (x1 - x0) * fill
    gap = (avail - nat) / max(1, n - 1)
    gap = min(max(gap, ch_h * 0.04), ch_h * 0.22)
    total = nat + gap * (n - 1)
    if total > (x1 - x0) * 0.97:  # too wide: squeeze the glyphs
        k = (x1 - x0) * 0.95 / total
        asp = [a * k for a in asp]
        gap *= k
        total *= k
    x = x0 + ((x1 - x0) - total) / 2.0 + _u(rng, -0.02, 0.02) * ch_h
    top = yc - ch_h / 2.0
    for c, a in zip(text, asp):
        w = a * ch_h
        if c == "-":
            gh = max(2, int(round(ch_h * 0.09)))
            gw = max(3, int(round(w * 0.8)))
            y = int(round(yc - gh / 2.0))
            xa = int(round(x + (w - gw) / 2.0))
            ink[y: y + gh, xa: xa + gw] = 1.0
        elif c == ".":
            d = max(2, int(round(ch_h * 0.12)))
            y = int(round(top + ch_h - d))
            xa = int(round(x + (w - d) / 2.0))
            cv2.circle(ink, (xa + d // 2, y + d // 2), max(1, d // 2), 1.0, -1, cv2.LINE_AA)
        else:
            g = _glyph(c, weight, font_file)
            gw = max(2, int(round(w)))
            gh = max(2, int(round(ch_h)))
            dy = 0.0
            if jitter:
                gw = max(2, int(round(w * _u(rng, 0.88, 1.1))))
                gh = max(2, int(round(ch_h * _u(rng, 0.93, 1.04))))
                dy = _u(rng, -0.04, 0.04) * ch_h + (ch_h - gh) / 2.0
                g = _jitter_glyph(g, rng)
            gr = cv2.resize(g, (gw, gh), interpolation=cv2.INTER_AREA)
            # a jittered glyph stays centred in its slot; unjittered ones keep their exact place
            xa = int(round(x + (w - gw) / 2.0)) if jitter else int(round(x))
            ya = int(round(top + dy))
            xb, yb = min(W, xa + gw), min(H, ya + gh)
            xa2, ya2 = max(0, xa), max(0, ya)
            if xb > xa2 and yb > ya2:
                sub = ink[ya2:yb, xa2:xb]
                np.maximum(sub, gr[ya2 - ya: yb - ya, xa2 - xa: xb - xa], out=sub)
        x += w + gap


def render_plate(plate: Plate, rng):
    """Clean RGB uint8 render of ``plate`` (80-100 px high, real aspect ratio)."""
    np, cv2 = _imports()
    two = plate.two_row
    if not two:
        H, W = _GEOM[1]
    elif plate.fmt.startswith("car") or (plate.fmt == "special" and rng.random() < 0.7):
        H, W = _GEOM["car2"]
    else:
        H, W = _GEOM["moto"]
    W = int(round(W * _u(rng, 0.97, 1.03)))
    ink = np.zeros((H, W), np.float32)
    weight = int(_wpick(rng, (-1, 0, 1, 2, 3), (0.08, 0.25, 0.35, 0.22, 0.10)))
    font_file = _pick_font(rng)
    jitter = _VARIATION["glyphs"] > 0 and rng.random() < _VARIATION["glyphs"]
    # border: rounded rectangle line, slightly inset
    inset = max(1, int(round(H * _u(rng, 0.02, 0.045))))
    th = max(1, int(round(H * _u(rng, 0.018, 0.035))))
    _rounded_rect(ink, inset, inset, W - 1 - inset, H - 1 - inset, int(H * 0.08), th)
    m = inset + th + 1
    if not two:
        ch_h = H * _u(rng, 0.62, 0.72)
        _draw_row(ink, plate.rows[0], m + 2, W - m - 2, H / 2.0 + _u(rng, -0.02, 0.02) * H,
                  ch_h, weight, rng, fill=_u(rng, 0.84, 0.92), font_file=font_file, jitter=jitter)
    else:
        inner = H - 2 * m
        ch_h = inner * _u(rng, 0.38, 0.43)
        gap = (inner - 2 * ch_h) / 3.0
        y1 = m + gap + ch_h / 2.0
        y2 = H - m - gap - ch_h / 2.0
        fill = _u(rng, 0.80, 0.92)
        _draw_row(ink, plate.rows[0], m + 1, W - m - 1, y1, ch_h, weight, rng, fill=fill * 0.92,
                  font_file=font_file, jitter=jitter)
        _draw_row(ink, plate.rows[1], m + 1, W - m - 1, y2, ch_h, weight, rng, fill=fill,
                  font_file=font_file, jitter=jitter)
    bg, fg = _COLORS[plate.color]
    bg = np.array(bg, np.float32) + _u(rng, -14, 10) \
        + np.array([_u(rng, -5, 5) for _ in range(3)], np.float32)
    fg = np.array(fg, np.float32) + np.array([_u(rng, -10, 10) for _ in range(3)], np.float32)
    # faded paint: ink partially transparent, unevenly
    fade = _u(rng, 0.0, 0.3) if rng.random() < 0.35 else 0.0
    if fade > 0:
        lo = rng.random((4, 8)).astype(np.float32)
        lo = cv2.resize(lo, (W, H), interpolation=cv2.INTER_CUBIC)
        ink *= 1.0 - fade * np.clip(lo, 0, 1)
    # background: subtle low-frequency shading
    shade = rng.random((3, 5)).astype(np.float32)
    shade = cv2.resize(shade, (W, H), interpolation=cv2.INTER_CUBIC)
    shade = 1.0 + (shade - 0.5) * _u(rng, 0.0, 0.12)
    bgimg = shade[..., None] * bg[None, None, :]
    out = bgimg + (fg[None, None, :] - bgimg) * ink[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def _rounded_rect(img, x0, y0, x1, y1, r, th):
    np, cv2 = _imports()
    r = max(1, min(r, (x1 - x0) // 4, (y1 - y0) // 4))
    c = 1.0
    cv2.line(img, (x0 + r, y0), (x1 - r, y0), c, th, cv2.LINE_AA)
    cv2.line(img, (x0 + r, y1), (x1 - r, y1), c, th, cv2.LINE_AA)
    cv2.line(img, (x0, y0 + r), (x0, y1 - r), c, th, cv2.LINE_AA)
    cv2.line(img, (x1, y0 + r), (x1, y1 - r), c, th, cv2.LINE_AA)
    cv2.ellipse(img, (x0 + r, y0 + r), (r, r), 180, 0, 90, c, th, cv2.LINE_AA)
    cv2.ellipse(img, (x1 - r, y0 + r), (r, r), 270, 0, 90, c, th, cv2.LINE_AA)
    cv2.ellipse(img, (x0 + r, y1 - r), (r, r), 90, 0, 90, c, th, cv2.LINE_AA)
    cv2.ellipse(img, (x1 - r, y1 - r), (r, r), 0, 0, 90, c, th, cv2.LINE_AA)


# --------------------------------------------------------------------------------------------
# Degradation: clean render -> traffic-camera detector crop
# --------------------------------------------------------------------------------------------

_SURROUND = [  # bumper / body / plastic colours (RGB)
    (20, 20, 22), (40, 40, 44), (70, 70, 74), (120, 120, 125), (170, 170, 175), (210, 210, 212),
    (235, 235, 235), (120, 20, 24), (20, 40, 100), (60, 50, 40), (30, 60, 40), (150, 130, 100),
]


def _surround(rng, h, w):
    np, cv2 = _imports()
    base = np.array(_SURROUND[_randint(rng, len(_SURROUND))], np.float32)
    base += np.array([_u(rng, -15, 15) for _ in range(3)], np.float32)
    lo = rng.random((3, 4, 1)).astype(np.float32) - 0.5  # mostly luminance variation
    lo = lo + (rng.random((3, 4, 3)).astype(np.float32) - 0.5) * 0.25
    img = cv2.resize(lo, (w, h), interpolation=cv2.INTER_LINEAR) * _u(rng, 20, 80) + base
    if rng.random() < 0.4:  # horizontal structure (bumper edge, grille, mudguard)
        for _ in range(1 + _randint(rng, 3)):
            y = _randint(rng, h)
            t = 1 + _randint(rng, max(2, h // 8))
            img[y: y + t] *= _u(rng, 0.3, 1.4)
    if rng.random() < 0.5:  # vertical gradient (lighting)
        g = np.linspace(_u(rng, 0.6, 1.2), _u(rng, 0.6, 1.2), h, dtype=np.float32)
        img *= g[:, None, None]
    img += rng.normal(0, _u(rng, 2, 10), (h, w, 1)).astype(np.float32)
    return np.clip(img, 0, 255)


def _plate_marks(p, rng):
    """Bolts and dirt on the plate itself (float32 image, modified in place)."""
    np, cv2 = _imports()
    H, W = p.shape[:2]
    if rng.random() < 0.45:  # two bolts near the top
        r = max(1, int(round(H * _u(rng, 0.03, 0.055))))
        y = int(round(H * _u(rng, 0.07, 0.16)))
        dx = _u(rng, 0.18, 0.32) * W
        col = (_u(rng, 30, 180),) * 3
        for x in (W / 2 - dx, W / 2 + dx) if rng.random() < 0.7 else (W * 0.1, W * 0.9):
            cv2.circle(p, (int(x), y), r, col, -1, cv2.LINE_AA)
    if rng.random() < 0.35:  # dirt spots / smudges
        for _ in range(1 + _randint(rng, 6)):
            c = (int(_u(rng, 0, W)), int(_u(rng, 0, H)))
            ax = (max(1, int(_u(rng, 0.01, 0.08) * W)), max(1, int(_u(rng, 0.02, 0.12) * H)))
            col = tuple(float(v) for v in (_u(rng, 60, 120), _u(rng, 50, 100), _u(rng, 30, 80)))
            ov = p.copy()
            cv2.ellipse(ov, c, ax, _u(rng, 0, 180), 0, 360, col, -1, cv2.LINE_AA)
            a = _u(rng, 0.2, 0.7)
            cv2.addWeighted(ov, a, p, 1 - a, 0, dst=p)
    if rng.random() < 0.25:  # overall grime
        p *= _u(rng, 0.75, 0.95)
        p += np.array((_u(rng, 5, 20), _u(rng, 3, 15), 0), np.float32)


def _motion_kernel(rng, length):
    np, cv2 = _imports()
    k = int(math.ceil(length)) | 1
    k = max(3, k)
    ker = np.zeros((k, k), np.float32)
    a = _u(rng, 0, math.pi)
    c = (k - 1) / 2.0
    dx, dy = math.cos(a) * length / 2.0, math.sin(a) * length / 2.0
    cv2.line(ker, (int(round(c - dx)), int(round(c - dy))), (int(round(c + dx)), int(round(c + dy))),
             1.0, 1, cv2.LINE_AA)
    s = ker.sum()
    return ker / s if s > 0 else None


def degrade(clean, rng, mild=0.0):
    """Clean render -> degraded detector crop (RGB uint8): small (14-40 px high) and heavily
    degraded, or with probability ``mild`` larger and sharper (18-110 px)."""
    np, cv2 = _imports()
    ph0, pw0 = clean.shape[:2]
    # no draw when mild is 0: the default data stays byte-identical to earlier runs
    is_mild = mild > 0 and rng.random() < mild
    if is_mild:
        # close views and high-resolution cameras: sizes log-uniform, so 20-40 px stays common
        out_h = int(round(math.exp(_u(rng, math.log(18), math.log(110)))))
    else:
        # 2-row plates below ~16 px carry no readable text (rows ~5 px): floor them a little higher
        out_h = int(round(_u(rng, 14 if pw0 > 2.5 * ph0 else 16, 40)))
    # intermediate working scale: plate about 2x its final height
    k = 2.0 * out_h / ph0 * _u(rng, 0.8, 0.95)
    ph, pw = max(8, int(round(ph0 * k))), max(8, int(round(pw0 * k)))
    p = cv2.resize(clean, (pw, ph), interpolation=cv2.INTER_AREA).astype(np.float32)
    _plate_marks(p, rng)

    # geometry: perspective (yaw/pitch up to 10 deg) + rotation, on a surrounding canvas
    padx, pady = int(pw * 0.45) + 4, int(ph * 0.6) + 4
    CH, CW = ph + 2 * pady, pw + 2 * padx
    canvas = _surround(rng, CH, CW)
    yaw = math.radians(_u(rng, -10, 10))
    pitch = math.radians(_u(rng, -10, 10))
    rot = math.radians(max(-10.0, min(10.0, float(rng.normal(0, 3.5)))))
    cx, cy = CW / 2.0, CH / 2.0
    hw, hh = pw / 2.0, ph / 2.0
    # foreshortening approximated by edge scaling; depth effect ~ tan(angle) * 0.35
    ey, ep = math.tan(yaw) * 0.35, math.tan(pitch) * 0.35
    pts = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x = sx * hw * math.cos(yaw) * (1 + sy * ep)
        y = sy * hh * math.cos(pitch) * (1 + sx * ey)
        x += _u(rng, -0.015, 0.015) * pw
        y += _u(rng, -0.03, 0.03) * ph
        xr = x * math.cos(rot) - y * math.sin(rot)
        yr = x * math.sin(rot) + y * math.cos(rot)
        pts.append((cx + xr, cy + yr))
    src = np.float32([(0, 0), (pw, 0), (pw, ph), (0, ph)])
    dst = np.float32(pts)
    M = cv2.getPerspectiveTransform(src, dst)
    cv2.warpPerspective(p, M, (CW, CH), dst=canvas, flags=cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_TRANSPARENT)
    if rng.random() < 0.3:  # cast shadow from above (plate holder / mudguard)
        y = int(_u(rng, 0.0, 0.45) * CH + pady * 0.5)
        canvas[:y] *= _u(rng, 0.45, 0.85)

    # detector box: tight box of the quad plus loose / shifted / cutting margins
    xs, ys = dst[:, 0], dst[:, 1]
    bx0, bx1, by0, by1 = float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())
    bw, bh = bx1 - bx0, by1 - by0
    mode = rng.random()
    if mode < 0.25:  # tight
        mx = [_u(rng, -0.02, 0.04) for _ in range(2)]
        my = [_u(rng, -0.03, 0.06) for _ in range(2)]
    elif mode < 0.8:  # loose
        mx = [_u(rng, 0.03, 0.2) for _ in range(2)]
        my = [_u(rng, 0.05, 0.25) for _ in range(2)]
    else:  # shifted / cutting a bit of the border
        mx = [_u(rng, -0.06, 0.15) for _ in range(2)]
        my = [_u(rng, -0.08, 0.2) for _ in range(2)]
    x0 = int(round(max(0, bx0 - mx[0] * bw)))
    x1 = int(round(min(CW, bx1 + mx[1] * bw)))
    y0 = int(round(max(0, by0 - my[0] * bh)))
    y1 = int(round(min(CH, by1 + my[1] * bh)))
    crop = canvas[y0:y1, x0:x1]
    chh, cww = crop.shape[:2]

    # glare: bright elliptical blob
    if rng.random() < 0.15:
        ov = np.zeros((chh, cww), np.float32)
        c = (int(_u(rng, 0, cww)), int(_u(rng, 0, chh)))
        ax = (max(1, int(_u(rng, 0.1, 0.4) * cww)), max(1, int(_u(rng, 0.15, 0.5) * chh)))
        cv2.ellipse(ov, c, ax, _u(rng, 0, 180), 0, 360, 1.0, -1)
        ov = cv2.GaussianBlur(ov, (0, 0), max(1.0, ax[1] * 0.5))
        crop = crop + ov[..., None] * _u(rng, 60, 200)

    # optical blur (gaussian) and motion blur at the working scale
    if rng.random() < (0.4 if is_mild else 0.75):
        crop = cv2.GaussianBlur(crop, (0, 0), _u(rng, 0.3, 0.9) if rng.random() < 0.85 else _u(rng, 0.9, 1.5))
    if rng.random() < (0.15 if is_mild else 0.3):
        ker = _motion_kernel(rng, _u(rng, 1.5, 3.5 if rng.random() < 0.8 else 5.0))
        if ker is not None:
            crop = cv2.filter2D(crop, -1, ker, borderType=cv2.BORDER_REPLICATE)

    # down to the final detector-crop size (keep it small)
    ow = max(8, int(round(cww * out_h / chh)))
    img = cv2.resize(crop, (ow, out_h), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.2:  # camera resampling softness
        img = cv2.GaussianBlur(img, (0, 0), _u(rng, 0.3, 0.6))
    if _VARIATION["sharpen"] > 0 and rng.random() < _VARIATION["sharpen"]:
        # the camera's sharpening at the sensor's scale: halos on both sides of every stroke
        soft = cv2.GaussianBlur(img, (0, 0), _u(rng, 0.6, 1.3))
        img = np.clip(img + (img - soft) * _u(rng, 0.4, 1.6), 0, 255)

    # photometry
    r = rng.random()
    if r < 0.09:
        img = _night(img, rng)
    elif r < 0.15:
        img = _ir(img, rng)
    else:
        img = img * _u(rng, 0.7, 1.3) + _u(rng, -35, 35)  # contrast / brightness
        mean = img.mean()
        img = (img - mean) * _u(rng, 0.75, 1.2) + mean
        if rng.random() < 0.4:  # white balance
            img = img * np.array([_u(rng, 0.88, 1.12) for _ in range(3)], np.float32)
    img = np.clip(img, 0, 255)
    if rng.random() < 0.6:  # gamma
        g = _u(rng, 0.6, 1.6)
        img = 255.0 * (img / 255.0) ** g
    # sensor noise
    if rng.random() < 0.7:
        img = img + rng.normal(0, _u(rng, 1, 8), img.shape[:2] + (1,)).astype(np.float32) \
            + rng.normal(0, _u(rng, 0, 3), img.shape).astype(np.float32)
    img = np.clip(img, 0, 255).astype(np.uint8)
    # JPEG re-encode (sometimes twice: camera stream + crop storage)
    for _ in range(1 if rng.random() < 0.7 else 2):
        q = int(_u(rng, 45, 90) if is_mild else _u(rng, 20, 60))
        ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return np.ascontiguousarray(img)


def _night(img, rng):
    np, cv2 = _imports()
    img = img * _u(rng, 0.3, 0.6)
    # headlights light the plate: brighter centre
    if rng.random() < 0.6:
        h, w = img.shape[:2]
        yy = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
        xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
        img = img * (1.0 + _u(rng, 0.3, 1.2) * np.exp(-(xx ** 2 + yy ** 2) * 1.5))[..., None]
    if rng.random() < 0.5:  # sodium (orange) cast
        cast = np.array((1.15, 0.95, 0.6), np.float32)
    else:  # blue/cyan LED cast
        cast = np.array((0.75, 0.9, 1.2), np.float32)
    img = img * cast
    img = img + rng.normal(0, _u(rng, 4, 12), img.shape[:2] + (1,)).astype(np.float32)
    return img


def _ir(img, rng):
    np, cv2 = _imports()
    g = img.mean(axis=2)
    m = g.mean()
    g = (g - m) * _u(rng, 1.3, 2.2) + m + _u(rng, -10, 40)
    g = np.clip(g, 0, 255)
    # blooming: the retro-reflective plate saturates and bleeds
    bright = np.clip(g - 200, 0, None)
    if bright.any():
        g = g + cv2.GaussianBlur(bright, (0, 0), _u(rng, 0.8, 2.0)) * _u(rng, 1.0, 3.0)
    g = g + rng.normal(0, _u(rng, 2, 8), g.shape).astype(np.float32)
    return np.repeat(g[..., None], 3, axis=2)


def sample(rng, fmt=None, province_weights=None, mild=0.0):
    """random_plate + render_plate + degrade -> (RGB uint8 crop, Plate)."""
    plate = random_plate(rng, fmt, province_weights)
    return degrade(render_plate(plate, rng), rng, mild), plate


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _sample_rng(seed, i):
    np, _ = _imports()
    return np.random.default_rng([int(seed), int(i)])


def _write_range(args):
    out, seed, start, stop, fmt, prior, font, fonts, variation = args
    _, cv2 = _imports()
    set_variation(*variation)
    if font:
        set_font(font)
    if fonts:
        set_fonts(fonts)
    rows = []
    for i in range(start, stop):
        img, plate = sample(_sample_rng(seed, i), fmt, prior)
        name = "%07d.png" % i
        cv2.imwrite(os.path.join(out, name), img[..., ::-1])
        rows.append((name, plate.text, plate.fmt, plate.color))
    return rows


def map_chunks(fn, chunks, workers):
    """``[fn(c) for c in chunks]``, on ``workers`` spawned processes when more than one."""
    if workers <= 1:
        return [fn(c) for c in chunks]
    import multiprocessing as mp

    with mp.get_context("spawn").Pool(workers) as pool:
        return pool.map(fn, chunks)


def write_dataset(out, n, seed, workers=1, fmt=None, prior=None, font=None, fonts=None):
    os.makedirs(out, exist_ok=True)
    font_path()  # fail early with a clear message
    chunks = []
    step = max(1, min(1000, (n + max(1, workers) - 1) // max(1, workers)))
    for s in range(0, n, step):
        chunks.append((out, seed, s, min(n, s + step), fmt, prior, font, fonts,
                       (_VARIATION["glyphs"], _VARIATION["sharpen"])))
    results = map_chunks(_write_range, chunks, workers)
    with open(os.path.join(out, "labels.csv"), "w") as f:
        f.write("filename,text,fmt,color\n")
        for rows in results:
            for r in rows:
                f.write(",".join(r) + "\n")


def _caption_font(size):
    from PIL import ImageFont

    for p in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if os.path.isfile(p):
            return ImageFont.truetype(p, size)
    return ImageFont.truetype(font_path(), size)


def make_sheet(path, seed, real_dir=None, prior=None, n=48, cols=8):
    np, cv2 = _imports()
    from PIL import Image, ImageDraw

    TW, TH, CAP = 128, 64, 16
    pad = 6
    cell_w, cell_h = TW + pad, TH + CAP + pad
    font = _caption_font(12)
    tiles = []  # (image RGB, caption)
    for i in range(n):
        img, plate = sample(_sample_rng(seed, i), None, prior)
        cap = "%s %dpx" % (plate.text, img.shape[0])
        tiles.append((cv2.resize(img, (TW, TH), interpolation=cv2.INTER_LINEAR), cap))
    clean = []
    rng = _sample_rng(seed, 10 ** 6)
    for fmt in FORMATS:
        pl = random_plate(rng, fmt, prior)
        clean.append((render_plate(pl, rng), " / ".join(pl.rows)))
    real = []
    if real_dir and os.path.isdir(real_dir):
        files = sorted(f for f in os.listdir(real_dir) if f.lower().endswith((".jpg", ".png", ".jpeg")))
        for f in files[:24]:
            im = cv2.imread(os.path.join(real_dir, f))
            if im is None:
                continue
            real.append((cv2.resize(im[..., ::-1], (TW, TH), interpolation=cv2.INTER_LINEAR),
                         "real %dpx" % im.shape[0]))
    synth_rows = (len(tiles) + cols - 1) // cols
    real_rows = (len(real) + cols - 1) // cols
    clean_h = 110 + CAP
    clean_cols = 5
    clean_rows = (len(clean) + clean_cols - 1) // clean_cols
    W = cols * cell_w + pad
    hdr = 18
    H = hdr + synth_rows * cell_h + hdr + clean_rows * (clean_h + pad) + (hdr + real_rows * cell_h if real else 0) + pad
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    d = ImageDraw.Draw(sheet)
    def grid(items, y, colour):
        for j, (im, cap) in enumerate(items):
            x = pad + (j % cols) * cell_w
            yy = y + (j // cols) * cell_h
            sheet.paste(Image.fromarray(im), (x, yy))
            d.text((x, yy + TH + 1), cap, fill=colour, font=_caption_font(10))

    y = 2
    d.text((pad, y), "synthetic (degraded, stretched to 64x128 INTER_LINEAR) seed=%d" % seed, fill=(0, 0, 0), font=font)
    y += hdr
    grid(tiles, y, (0, 0, 0))
    y += synth_rows * cell_h
    d.text((pad, y), "clean renders (one per format)", fill=(0, 0, 0), font=font)
    y += hdr
    cw = (W - pad) // clean_cols
    for j, (im, cap) in enumerate(clean):
        h, w = im.shape[:2]
        s = min((cw - pad) / w, 110 / h)
        im = cv2.resize(im, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
        x = pad + (j % clean_cols) * cw
        yy = y + (j // clean_cols) * (clean_h + pad)
        sheet.paste(Image.fromarray(im), (x, yy))
        d.text((x, yy + im.shape[0] + 1), "%s: %s" % (FORMATS[j], cap), fill=(0, 0, 0), font=_caption_font(10))
    y += clean_rows * (clean_h + pad)
    if real:
        d.text((pad, y), "real crops (%s), stretched to 64x128" % real_dir, fill=(0, 0, 0), font=font)
        y += hdr
        grid(real, y, (120, 0, 0))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    sheet.save(path)


def main(argv=None):
    import argparse
    import random

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, help="print N 'text,fmt' lines (stdlib only)")
    ap.add_argument("--out", help="write samples + labels.csv to DIR")
    ap.add_argument("-n", type=int, default=1000, help="samples for --out")
    ap.add_argument("--sheet", help="write a contact sheet PNG")
    ap.add_argument("--real", help="folder of real crops for the sheet (display only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--fmt", choices=FORMATS, help="only this format")
    ap.add_argument("--province-prior", help='e.g. "77:5,81:5" (others weight 1)')
    ap.add_argument("--font", help="path to OSP-DIN.ttf if not installed")
    ap.add_argument("--fonts", default=os.environ.get("PLATEGEN_FONTS"),
                    help="a font mix, PATH[@SHARE],... (train.sh's: models/training/fonts.sh); default $PLATEGEN_FONTS, else the one plate font")
    ap.add_argument("--glyph-jitter", type=float, default=0.0,
                    help="share of plates whose glyphs each get their own shape (set_variation)")
    ap.add_argument("--sharpen", type=float, default=0.0,
                    help="share of crops sharpened like a camera's image pipeline (set_variation)")
    a = ap.parse_args(argv)
    try:
        fonts = parse_font_mix(a.fonts) if a.fonts else None
        set_variation(a.glyph_jitter, a.sharpen)
    except (FileNotFoundError, ValueError) as e:
        sys.exit("plategen: %s" % e)
    set_fonts(fonts)
    prior = parse_province_prior(a.province_prior)
    if a.font:
        set_font(a.font)
    elif os.environ.get("PLATEGEN_FONT"):
        set_font(os.environ["PLATEGEN_FONT"])
    did = False
    if a.texts is not None:
        rng = random.Random(a.seed)
        w = sys.stdout.write
        for _ in range(a.texts):
            p = random_plate(rng, a.fmt, prior)
            w("%s,%s\n" % (p.text, p.fmt))
        did = True
    if a.out or a.sheet:
        try:
            font_path()
        except FileNotFoundError as e:
            sys.exit("plategen: %s" % e)
    if a.out:
        write_dataset(a.out, a.n, a.seed, a.workers, a.fmt, prior, a.font or os.environ.get("PLATEGEN_FONT"), fonts)
        did = True
    if a.sheet:
        make_sheet(a.sheet, a.seed, a.real, prior)
        did = True
    if not did:
        ap.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
