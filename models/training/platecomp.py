#!/usr/bin/env python3
"""Composite training frames for our own plate detector: synthetic plates in street scenes.

A detector we may ship cannot learn from boxes drawn by today's AGPL detector, and the licensed
real frames are few (the 48 MIT garage frames of ``vn_moto_parked_det_mrzaizai2k``). So most of
its frames are made here: ``plategen`` renders a plate (every format and colour scheme, the
licensed font mix), it is warped in perspective onto the plausible place of a drawn vehicle
(the bumper of a car, the rear of a motorbike, the tailboard of a truck; 2-row plates on
motorbikes and trucks) at 12-80 px plate height, and the frame goes through what cameras do to
it (blur, motion, night and IR, glare, JPEG). Vehicles carry what today's detector mistakes for
plates, unlabelled: tail and head lights, window stickers, phone numbers on bus bodies, brand
badges. A share of frames are the MIT frames with their own boxes. With ``--real-plates DIR`` a
share of the plates are real crops instead of renders (a folder with ``labels.csv``: the MIT or
Chinese crops we may use, a site's own verified crops, or - for a variant never shipped - the
unlicensed vito crops, to measure what real plate faces are worth).

Labels are the boxes of what is visible of each plate after everything in front of it was
drawn: a plate hidden to more than 40 % is not a label but an ``ignored`` box (``frames.csv``),
which a trainer should neither reward nor punish.

Module API:

* ``composite(rng, size=(640, 360), mit=None, real=None, real_share=0) -> Frame`` - one frame: ``image`` (RGB uint8),
  ``boxes`` ([(x0, y0, x1, y1, rows)], pixels, x1/y1 exclusive), ``texts``, ``masks`` (the
  visible pixels of each labelled plate, for tests), ``negatives`` (how many decoys were drawn).
* ``mit_frames(shared) -> list[(path, boxes)]`` - the MIT frames and their YOLO boxes.
* ``load_real_plates(folder) -> {rows: [(image, text)]}`` - real crops for ``composite(real=)``.
* ``yolo_lines(frame) -> list[str]`` - ``0 cx cy w h`` normalised: one class, a plate (the
  rows are in ``boxes`` and ``frames.csv``: the MIT labels do not say them, 0 there).

CLI::

    platecomp.py --out DIR -n N --seed S [--workers W] [--shared ../shared] [--real-plates DIR --real-share 0.5]
    platecomp.py --sheet PATH.png --seed S [--shared ../shared]

Fonts as ``plategen`` (``--fonts`` / ``$PLATEGEN_FONTS``, ``models/training/fonts.sh``).
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import plategen  # noqa: E402
from plategen import _u, _randint  # noqa: E402

MIN_PLATE_H, MAX_PLATE_H = 12, 80
MIN_VISIBLE = 0.6

_BODY = [  # vehicle paint (RGB)
    (235, 235, 232), (200, 200, 205), (150, 150, 155), (90, 90, 96), (30, 30, 34), (20, 24, 40),
    (150, 20, 24), (200, 60, 30), (30, 60, 130), (60, 110, 170), (40, 90, 60), (210, 180, 60),
    (120, 90, 60), (240, 210, 170),
]


@dataclass
class Frame:
    image: object  # np.ndarray HxWx3 uint8
    boxes: list = field(default_factory=list)  # (x0, y0, x1, y1, rows)
    texts: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    negatives: int = 0
    source: str = "synthetic"
    ignored: list = field(default_factory=list)  # (x0, y0, x1, y1) of plates mostly hidden


_np_cv2 = plategen._imports  # numpy and OpenCV, imported on first use


def _background(rng, w, h):
    """Road below a horizon, buildings or trees above it, lane markings in perspective."""
    np, cv2 = _np_cv2()
    horizon = int(h * _u(rng, 0.05, 0.4))
    img = np.empty((h, w, 3), np.float32)
    sky = np.array([_u(rng, 120, 230)] * 3, np.float32) * np.array([_u(rng, 0.85, 1.0), _u(rng, 0.9, 1.0), 1.0], np.float32)
    img[:horizon] = sky
    road = np.array([_u(rng, 60, 150)] * 3, np.float32) + _u(rng, -10, 10)
    grad = np.linspace(_u(rng, 0.8, 1.0), _u(rng, 1.0, 1.25), h - horizon, dtype=np.float32)
    img[horizon:] = road[None, None, :] * grad[:, None, None]
    for _ in range(_randint(rng, 7)):  # buildings, shop fronts, trees at the horizon
        bw, bh = int(_u(rng, 0.05, 0.3) * w), int(_u(rng, 0.1, 0.5) * h)
        x0 = _randint(rng, w)
        col = np.array([_u(rng, 40, 230) for _ in range(3)], np.float32)
        if rng.random() < 0.3:
            col = np.array((_u(rng, 20, 70), _u(rng, 60, 130), _u(rng, 20, 60)), np.float32)
        cv2.rectangle(img, (x0, max(0, horizon + 4 - bh)), (x0 + bw, horizon + 4), col.tolist(), -1)
    vx = _u(rng, 0.3, 0.7) * w  # vanishing point of the lanes
    for _ in range(1 + _randint(rng, 4)):
        xb = _u(rng, -0.3, 1.3) * w
        col = (235, 235, 230) if rng.random() < 0.8 else (230, 200, 60)
        n = 12
        for i in range(n):
            if rng.random() < 0.45:
                continue
            t0, t1 = i / n, (i + 0.5) / n
            p0 = (int(vx + (xb - vx) * t0), int(horizon + (h - horizon) * t0))
            p1 = (int(vx + (xb - vx) * t1), int(horizon + (h - horizon) * t1))
            cv2.line(img, p0, p1, col, max(1, int(1 + 4 * t1)), cv2.LINE_AA)
    tex = cv2.resize(rng.random((max(2, h // 24), max(2, w // 24))).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img *= (1.0 + (tex - 0.5) * _u(rng, 0.0, 0.3))[..., None]
    img += rng.normal(0, _u(rng, 1, 6), (h, w, 1)).astype(np.float32)
    return img, horizon


def _warp_plate(rng, plate_img, plate_h):
    """The plate warped to ``plate_h`` px height in perspective: (image, alpha, quad) on a small
    canvas whose origin is the quad's top-left bound."""
    np, cv2 = _np_cv2()
    ph0, pw0 = plate_img.shape[:2]
    k = plate_h / ph0
    pw, ph = pw0 * k, ph0 * k
    yaw = math.radians(_u(rng, -30, 30))
    pitch = math.radians(_u(rng, -15, 15))
    rot = math.radians(max(-12.0, min(12.0, float(rng.normal(0, 4)))))
    ey, ep = math.tan(yaw) * 0.35, math.tan(pitch) * 0.35
    pts = []
    for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
        x = sx * pw / 2 * math.cos(yaw) * (1 + sy * ep)
        y = sy * ph / 2 * math.cos(pitch) * (1 + sx * ey)
        pts.append((x * math.cos(rot) - y * math.sin(rot), x * math.sin(rot) + y * math.cos(rot)))
    quad = np.float32(pts)
    quad -= quad.min(axis=0)
    cw, chh = int(math.ceil(quad[:, 0].max())) + 1, int(math.ceil(quad[:, 1].max())) + 1
    src = np.float32([(0, 0), (pw0, 0), (pw0, ph0), (0, ph0)])
    m = cv2.getPerspectiveTransform(src, quad)
    img = cv2.warpPerspective(plate_img.astype(np.float32), m, (cw, chh), flags=cv2.INTER_AREA)
    alpha = cv2.warpPerspective(np.ones((ph0, pw0), np.float32), m, (cw, chh), flags=cv2.INTER_LINEAR)
    return img, alpha, quad


def load_real_plates(folder):
    """Real plate crops to paste instead of rendered plates: ``{rows: [(RGB uint8, text)]}`` from a
    folder's ``labels.csv`` (``filename``, ``plate_norm``, ``rows``; a ``verified`` column, as
    ``edge-agent plates --save-crops`` writes, must say yes)."""
    import csv

    np, cv2 = _np_cv2()
    out = {1: [], 2: []}
    with open(os.path.join(folder, "labels.csv"), newline="") as fh:
        for row in csv.DictReader(fh):
            text = plategen.checked_label(row)
            if not text:
                continue
            img = cv2.imread(os.path.join(folder, row["filename"]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(os.path.join(folder, row["filename"]))
            out[2 if row.get("rows", "").strip() == "2" else 1].append((np.ascontiguousarray(img[..., ::-1]), text))
    return out


def _real_plate(rng, real, kind):
    """(image as float, Plate, plate height in metres) of a real crop a vehicle of ``kind`` carries,
    or None when there is none of its row count."""
    np, _ = _np_cv2()
    rows = 2 if kind in ("moto", "truck") else (1 if rng.random() < 0.8 else 2)
    pool = real.get(rows) or []
    if not pool:
        return None
    img, text = pool[_randint(rng, len(pool))]
    plate = plategen.Plate(text=text, rows=[text] * rows)
    return img.astype(np.float32), plate, 0.11 if rows == 1 else (0.14 if kind == "moto" else 0.165)


def _plate_for(rng, kind):
    """A plate of a format that vehicle kind carries."""
    if kind == "moto":
        fmt = plategen._wpick(rng, ("moto5", "moto_old4", "moto_2letter", "electric"), (0.6, 0.2, 0.12, 0.08))
    elif kind == "truck":
        fmt = plategen._wpick(rng, ("car2_5", "car2_4", "special", "military"), (0.6, 0.2, 0.1, 0.1))
    else:
        fmt = plategen._wpick(rng, ("car1_5", "car1_4", "car2_5", "special", "military"), (0.6, 0.12, 0.15, 0.08, 0.05))
    return plategen.random_plate(rng, fmt)


def _decoys(rng, img, x0, y0, bw, bh, plate_box):
    """Things on a vehicle that look like plates to a detector, never labelled: lights, a window
    sticker, a painted phone number, a brand badge. Returns how many were drawn."""
    np, cv2 = _np_cv2()
    n = 0
    px0, py0, px1, py1 = plate_box

    def clear(x, y, w, h):  # keep decoys off the plate
        return x + w < px0 - 2 or x > px1 + 2 or y + h < py0 - 2 or y > py1 + 2

    if rng.random() < 0.8:  # tail or head lights: a pair of bright rectangles
        lw, lh = max(3, int(bw * _u(rng, 0.08, 0.16))), max(2, int(bh * _u(rng, 0.06, 0.14)))
        ly = int(y0 + bh * _u(rng, 0.35, 0.6))
        red = rng.random() < 0.6
        col = (_u(rng, 180, 255), _u(rng, 20, 80), _u(rng, 20, 60)) if red else (_u(rng, 220, 255),) * 3
        for lx in (int(x0 + bw * 0.06), int(x0 + bw * 0.94) - lw):
            if clear(lx, ly, lw, lh):
                cv2.rectangle(img, (lx, ly), (lx + lw, ly + lh), col, -1)
                n += 1
    if rng.random() < 0.35:  # text: a phone number on a bus or truck body, a sticker on the window
        from PIL import Image, ImageDraw

        text = "".join(str(_randint(rng, 10)) for _ in range(4 + _randint(rng, 7)))
        if rng.random() < 0.5:
            text = text[:4] + "." + text[4:]
        th = max(6, int(bh * _u(rng, 0.06, 0.14)))
        font = _decoy_font(rng, th)
        tw = int(font.getlength(text)) + 4
        tx, ty = int(x0 + _u(rng, 0.05, 0.6) * bw), int(y0 + _u(rng, 0.05, 0.45) * bh)
        if tw < bw and tx >= 0 and ty >= 0 and clear(tx, ty, tw, th + 4):
            layer = Image.new("L", (tw, th + 4), 0)
            ImageDraw.Draw(layer).text((2, 0), text, font=font, fill=255)
            a = np.asarray(layer, np.float32)[..., None] / 255.0
            h2, w2 = min(a.shape[0], img.shape[0] - ty), min(a.shape[1], img.shape[1] - tx)
            if h2 > 0 and w2 > 0:
                col = np.array([_u(rng, 0, 255) for _ in range(3)], np.float32)
                sub = img[ty: ty + h2, tx: tx + w2]
                sub[:] = sub * (1 - a[:h2, :w2]) + col * a[:h2, :w2]
                n += 1
    if rng.random() < 0.3:  # brand badge: a small bright ellipse above the plate
        r = max(2, int(bh * _u(rng, 0.04, 0.08)))
        cx, cy = int((px0 + px1) / 2 + _u(rng, -0.1, 0.1) * bw), int(py0 - r * _u(rng, 2, 4))
        if cy - r > y0 and clear(cx - 2 * r, cy - r, 4 * r, 2 * r):
            cv2.ellipse(img, (cx, cy), (2 * r, r), 0, 0, 360, (_u(rng, 150, 240),) * 3, -1, cv2.LINE_AA)
            n += 1
    return n


_DECOY_FONTS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def _decoy_font(rng, size):
    from PIL import ImageFont

    for p in _DECOY_FONTS[_randint(rng, 2):] + _DECOY_FONTS:
        if os.path.isfile(p):
            return ImageFont.truetype(p, size)
    return ImageFont.truetype(plategen.font_path(), size)


def _vehicle(rng, img, owner, kind, cx, bottom, plate_h, plate_id, real=None, real_share=0.0):
    """Draws one vehicle seen from behind or in front, with its plate, into ``img``; marks its
    pixels in ``owner`` (-1 body, ``plate_id`` plate). The plate is rendered, or with probability
    ``real_share`` a crop of ``real`` (``load_real_plates``). Returns (plate, decoys drawn, the
    plate's area in pixels before anything covers it)."""
    np, cv2 = _np_cv2()
    # no draw without real crops: composites stay byte-identical to earlier datasets
    picked = _real_plate(rng, real, kind) if real and rng.random() < real_share else None
    if picked is None:
        plate = _plate_for(rng, kind)
        clean = plategen.render_plate(plate, rng).astype(np.float32)
        plategen._plate_marks(clean, rng)
        # the render's height says which plate it is: 1-row 110 mm, 2-row car 165 mm, motorbike 140 mm
        metres = {80: 0.11, 96: 0.165}.get(clean.shape[0], 0.14)
    else:
        clean, plate, metres = picked
    pimg, alpha, quad = _warp_plate(rng, clean, plate_h)
    qh, qw = alpha.shape
    # body size follows the plate at the scale of real ones
    ppm = plate_h / metres
    if kind == "moto":
        bw, bh = ppm * _u(rng, 0.6, 0.8), ppm * _u(rng, 1.4, 1.7)
    elif kind == "truck":
        bw, bh = ppm * _u(rng, 2.2, 2.5), ppm * _u(rng, 2.4, 3.2)
    else:
        bw, bh = ppm * _u(rng, 1.6, 1.85), ppm * _u(rng, 1.35, 1.6)
    bw, bh = int(bw), int(bh)
    x0, y0 = int(cx - bw / 2), int(bottom - bh)
    col = np.array(_BODY[_randint(rng, len(_BODY))], np.float32) + _u(rng, -15, 15)
    if kind == "moto":
        # wheel, rider (dark), the rear mudguard the plate hangs from
        cv2.ellipse(img, (int(cx), int(bottom - bh * 0.12)), (max(2, int(bw * 0.14)), max(2, int(bh * 0.12))), 0, 0, 360, (25, 25, 28), -1)
        rider = np.array([_u(rng, 10, 200) for _ in range(3)], np.float32)
        cv2.ellipse(img, (int(cx), int(y0 + bh * 0.35)), (max(2, int(bw * 0.42)), max(2, int(bh * 0.33))), 0, 0, 360, rider.tolist(), -1)
        cv2.circle(img, (int(cx), int(y0 + bh * 0.02)), max(2, int(bw * 0.2)), (_u(rng, 10, 240),) * 3, -1)
        cv2.rectangle(img, (x0 + bw // 5, int(y0 + bh * 0.55)), (x0 + bw - bw // 5, int(bottom - bh * 0.2)), col.tolist(), -1)
        mask_rect = (x0, y0 - int(bw * 0.2), x0 + bw, int(bottom))
        py = int(bottom - bh * _u(rng, 0.42, 0.55))
    else:
        cv2.rectangle(img, (x0, y0), (x0 + bw, int(bottom)), col.tolist(), -1)
        win = col * _u(rng, 0.15, 0.45)
        cv2.rectangle(img, (x0 + bw // 8, y0 + bh // 12), (x0 + bw - bw // 8, y0 + int(bh * _u(rng, 0.35, 0.5))), win.tolist(), -1)
        cv2.rectangle(img, (x0, int(bottom - bh * 0.08)), (x0 + bw, int(bottom)), (20, 20, 22), -1)  # tyres' shadow
        mask_rect = (x0, y0, x0 + bw, int(bottom))
        py = int(bottom - bh * _u(rng, 0.18, 0.32)) - qh // 2
    h, w = owner.shape
    mx0, my0, mx1, my1 = (max(0, mask_rect[0]), max(0, mask_rect[1]), min(w, mask_rect[2]), min(h, mask_rect[3]))
    owner[my0:my1, mx0:mx1] = -1
    px = int(cx - qw / 2 + _u(rng, -0.08, 0.08) * bw)
    # paste the plate where it lands in the frame
    ax0, ay0, ax1, ay1 = max(0, px), max(0, py), min(w, px + qw), min(h, py + qh)
    if ax1 > ax0 and ay1 > ay0:
        a = alpha[ay0 - py: ay1 - py, ax0 - px: ax1 - px, None]
        sub = img[ay0:ay1, ax0:ax1]
        sub[:] = sub * (1 - a) + pimg[ay0 - py: ay1 - py, ax0 - px: ax1 - px] * a
        own = owner[ay0:ay1, ax0:ax1]
        own[a[..., 0] >= 0.5] = plate_id
    decoys = _decoys(rng, img, x0, y0, bw, bh, (px, py, px + qw, py + qh))
    full_area = float((alpha >= 0.5).sum())
    return plate, decoys, full_area


def _frame_photometry(rng, img):
    """What the camera does to the whole frame."""
    np, cv2 = _np_cv2()
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), _u(rng, 0.3, 1.2))
    if rng.random() < 0.2:
        ker = plategen._motion_kernel(rng, _u(rng, 1.5, 5.0))
        if ker is not None:
            img = cv2.filter2D(img, -1, ker, borderType=cv2.BORDER_REPLICATE)
    r = rng.random()
    if r < 0.15:
        img = plategen._night(img, rng)
    elif r < 0.22:
        img = plategen._ir(img, rng)
    else:
        img = img * _u(rng, 0.75, 1.25) + _u(rng, -30, 30)
    if rng.random() < 0.1:  # glare across the frame
        h, w = img.shape[:2]
        ov = np.zeros((h, w), np.float32)
        cv2.ellipse(ov, (_randint(rng, w), _randint(rng, h)), (int(w * _u(rng, 0.05, 0.2)), int(h * _u(rng, 0.05, 0.2))), 0, 0, 360, 1.0, -1)
        img = img + cv2.GaussianBlur(ov, (0, 0), 9)[..., None] * _u(rng, 60, 180)
    img = np.clip(img + rng.normal(0, _u(rng, 1, 6), img.shape[:2] + (1,)).astype(np.float32), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", img[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(_u(rng, 30, 85))])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else img


def mit_frames(shared):
    """(frame path, [(cx, cy, w, h) normalised]) of the MIT-licensed garage frames."""
    root = os.path.join(shared, "datasets", "vn_moto_parked_det_mrzaizai2k")
    out = []
    frames = os.path.join(root, "frames")
    for name in sorted(os.listdir(frames)) if os.path.isdir(frames) else []:
        lab = os.path.join(root, "yolo_labels", os.path.splitext(name)[0] + ".txt")
        boxes = []
        if os.path.isfile(lab):
            for line in open(lab):
                parts = line.split()
                if len(parts) == 5:
                    boxes.append(tuple(float(v) for v in parts[1:]))
        out.append((os.path.join(frames, name), boxes))
    return out


def _mit_frame(rng, mit, w, h):
    np, cv2 = _np_cv2()
    path, boxes = mit[_randint(rng, len(mit))]
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(path)
    img = cv2.resize(img[..., ::-1], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
    frame = Frame(image=None, source=os.path.basename(path))
    for cx, cy, bw, bh in boxes:
        x0, y0 = int(round((cx - bw / 2) * w)), int(round((cy - bh / 2) * h))
        x1, y1 = int(round((cx + bw / 2) * w)), int(round((cy + bh / 2) * h))
        frame.boxes.append((max(0, x0), max(0, y0), min(w, x1), min(h, y1), 0))
        frame.texts.append("")
    frame.image = _frame_photometry(rng, img)
    return frame


def composite(rng, size=(640, 360), mit=None, mit_share=0.1, real=None, real_share=0.0) -> Frame:
    """One training frame (module docstring)."""
    np, _ = _np_cv2()
    w, h = size
    if mit and rng.random() < mit_share:
        return _mit_frame(rng, mit, w, h)
    img, horizon = _background(rng, w, h)
    owner = np.full((h, w), -2, np.int32)
    # a street (plates 12-40 px, far vehicles first so that nearer ones cover them), or a close
    # view of one or two vehicles (plates up to 80 px)
    close = rng.random() < 0.2
    n = 1 + _randint(rng, 2) if close else 2 + _randint(rng, 7)
    lo, hi = (40, MAX_PLATE_H) if close else (MIN_PLATE_H, 40)
    rows = sorted(_u(rng, 0, 1) for _ in range(n))
    # one lane slot each, in random order, so that vehicles overlap as in traffic, not all at once
    slots = rng.permutation(n)
    plates, areas, decoys = [], [], 0
    for i, t in enumerate(rows):
        plate_h = math.exp(math.log(lo) + t * (math.log(hi) - math.log(lo)))
        bottom = horizon + (h - horizon) * (0.9 + 0.25 * t if close else 0.25 + 0.8 * t)
        kind = plategen._wpick(rng, ("car", "moto", "truck"), (0.45, 0.45, 0.1))
        cx = (slots[i] + _u(rng, 0.2, 0.8)) / n * w
        plate, d, area = _vehicle(rng, img, owner, kind, cx, bottom, plate_h, i, real, real_share)
        plates.append(plate)
        areas.append(area)
        decoys += d
    frame = Frame(image=_frame_photometry(rng, img), negatives=decoys)
    for i, plate in enumerate(plates):
        vis = owner == i
        if not vis.any():
            continue
        ys, xs = np.nonzero(vis)
        if vis.sum() < MIN_VISIBLE * areas[i]:
            frame.ignored.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
            continue
        frame.boxes.append((int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, 2 if plate.two_row else 1))
        frame.texts.append(plate.text)
        frame.masks.append(vis)
    return frame


def yolo_lines(frame: Frame) -> list[str]:
    h, w = frame.image.shape[:2]
    out = []
    for x0, y0, x1, y1, _ in frame.boxes:
        out.append("0 %.6f %.6f %.6f %.6f" % ((x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w, (y1 - y0) / h))
    return out


def _write_range(args):
    out, seed, start, stop, shared, fonts, real_dir, real_share = args
    np, cv2 = _np_cv2()
    plategen.set_fonts(plategen.parse_font_mix(fonts) if fonts else None)
    mit = mit_frames(shared) if shared else None
    real = load_real_plates(real_dir) if real_dir else None
    rows = []
    for i in range(start, stop):
        f = composite(np.random.default_rng([int(seed), i]), mit=mit, real=real, real_share=real_share)
        name = "%07d" % i
        cv2.imwrite(os.path.join(out, "images", name + ".jpg"), f.image[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 95])
        with open(os.path.join(out, "labels", name + ".txt"), "w") as fh:
            fh.write("".join(line + "\n" for line in yolo_lines(f)))
        ignored = ";".join("%d %d %d %d" % b for b in f.ignored)
        rows.append("%s,%s,%d,%s,%s" % (name, f.source, f.negatives, " ".join(f.texts), ignored))
    return rows


def write_dataset(out, n, seed, workers=1, shared=None, fonts=None, real_dir=None, real_share=0.0):
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    step = max(1, min(500, (n + workers - 1) // max(1, workers)))
    chunks = [(out, seed, s, min(n, s + step), shared, fonts, real_dir, real_share) for s in range(0, n, step)]
    results = plategen.map_chunks(_write_range, chunks, workers)
    with open(os.path.join(out, "frames.csv"), "w") as fh:
        fh.write("frame,source,decoys,plates,ignored\n")
        for rows in results:
            fh.write("".join(r + "\n" for r in rows))


def make_sheet(path, seed, shared=None, n=9, cols=3):
    """Composites with their label boxes (green 1-row, orange 2-row, yellow MIT) beside MIT frames."""
    np, cv2 = _np_cv2()
    mit = mit_frames(shared) if shared else []
    tiles = [composite(np.random.default_rng([seed, i])) for i in range(n)]
    tiles += [_mit_frame(np.random.default_rng([seed, 1000 + i]), mit, 640, 360) for i in range(min(cols, len(mit)))] if mit else []
    ims = []
    for f in tiles:
        im = np.ascontiguousarray(f.image.copy())
        for x0, y0, x1, y1, rows in f.boxes:
            cv2.rectangle(im, (x0, y0), (x1 - 1, y1 - 1), {1: (40, 220, 40), 2: (255, 150, 0)}.get(rows, (255, 255, 0)), 1)
        cv2.putText(im, f.source, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
        ims.append(im)
    while len(ims) % cols:
        ims.append(np.zeros_like(ims[0]))
    grid = np.concatenate([np.concatenate(ims[r: r + cols], axis=1) for r in range(0, len(ims), cols)], axis=0)
    cv2.imwrite(path, grid[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])


def main(argv=None):
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write images/, labels/ (YOLO) and frames.csv to DIR")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sheet", help="write a contact sheet PNG")
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED"), help="the shared folder, for the MIT frames (none: composites only)")
    ap.add_argument("--fonts", default=os.environ.get("PLATEGEN_FONTS"), help="font mix as plategen --fonts")
    ap.add_argument("--real-plates", help="a folder of real plate crops (labels.csv) pasted instead of renders")
    ap.add_argument("--real-share", type=float, default=0.5, help="with --real-plates: the share of plates that are real crops")
    a = ap.parse_args(argv)
    try:
        fonts = plategen.parse_font_mix(a.fonts) if a.fonts else None
        plategen.set_fonts(fonts)
        plategen.font_path()
    except (FileNotFoundError, ValueError) as e:
        sys.exit("platecomp: %s" % e)
    if a.out:
        write_dataset(a.out, a.n, a.seed, a.workers, a.shared, a.fonts, a.real_plates, a.real_share if a.real_plates else 0.0)
    if a.sheet:
        make_sheet(a.sheet, a.seed, a.shared)
    if not (a.out or a.sheet):
        ap.print_help()
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
