"""Plate detectors side by side on the shared footage's scored plates (validation only: nothing is
chosen on it): recall at IoU >= 0.3 and >= 0.5, false positives per image at the detector's
threshold, mean IoU of the plates found, and milliseconds per image (ONNX Runtime, 2 threads).

Each model is run the way its manifest says the agent runs it (640 x 640, letterboxed in the
centre with grey 114, RGB scaled to 0..1): today's `vn_plate_det_yolo26n_640_e2e` (family
`yolo_end2end`: boxes in input pixels) and ours (family `yolox`: cell offsets and log sizes).

With `--text-det PATH` (PP-OCRv4's text detector, Apache-2.0) each model is also scored with the
cross-check issue 23 asks about: a detection is kept only where the text detector finds text inside
its box (cropped with a margin, short side scaled to `--text-short` px; MODELS.md verified 160 for
plate crops), and the table gets a second row per model with the cost of the check per image.
`--composites DIR` scores on a platecomp.py --out folder (training side) instead.

Usage: python models/training/eval_det.py --model yolo_end2end=PATH --model yolox=PATH [--threshold 0.25]
       [--text-det ../shared/models/ppocrv4_det.onnx [--text-short 96]] [--composites DIR]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train_det import EXPORT, box_iou, decode_boxes, frame_labels, keep_boxes, letterbox_frame, match, pixel_boxes  # noqa: E402


def decode(family, out, threshold):
    """One image's detections (box in the 640 x 640 input, score) from a model's output."""
    rows = out[0]
    if family == "yolo_end2end":
        return keep_boxes(rows[:, :4], rows[:, 4], threshold, 0.7)
    # yolox: the graph gives objectness and class as probabilities, the box raw
    return keep_boxes(np.asarray(decode_boxes(rows[None], EXPORT))[0], rows[:, 4] * rows[:, 5], threshold, 0.45)


def has_text(sess, image, box, short=160, margin=0.15):
    """Whether PP-OCRv4's text detector finds a text region whose centre lies inside `box` (x1, y1,
    x2, y2 in image pixels) in a crop of the box grown by `margin` of its size on each side.

    Pre- and post-processing as MODELS.md verified for plate crops (there with `short` = 160): BGR,
    short side scaled to >= `short` (long side at most 960), sides rounded to multiples of 32,
    (x/255 - 0.5)/0.5; probability > 0.3, 2 x 2 dilation, components of >= 50 px at 160 (scaled with
    the area) with mean probability >= 0.5."""
    h, w = image.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x1, y1 = int(max(0, box[0] - margin * bw)), int(max(0, box[1] - margin * bh))
    x2, y2 = int(min(w, box[2] + margin * bw)), int(min(h, box[3] + margin * bh))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return False
    crop = image[y1:y2, x1:x2, ::-1]  # the caller's RGB back to the BGR PP-OCR expects
    k = max(1.0, short / min(crop.shape[:2]))
    k = min(k, 960.0 / max(crop.shape[:2]))
    th, tw = (max(32, int(round(d * k / 32)) * 32) for d in crop.shape[:2])
    x = cv2.resize(crop, (tw, th), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    x = np.transpose((x / 255.0 - 0.5) / 0.5, (2, 0, 1))[None]
    prob = sess.run(None, {sess.get_inputs()[0].name: x})[0][0, 0]
    mask = cv2.dilate((prob > 0.3).astype(np.uint8), np.ones((2, 2), np.uint8))
    n, labels, stats, cents = cv2.connectedComponentsWithStats(mask, connectivity=8)
    sx, sy = tw / crop.shape[1], th / crop.shape[0]
    inner = ((box[0] - x1) * sx, (box[1] - y1) * sy, (box[2] - x1) * sx, (box[3] - y1) * sy)
    for i in range(1, n):
        if stats[i, cv2.CC_STAT_AREA] < 50 * (min(th, tw) / 160) ** 2 or prob[labels == i].mean() < 0.5:
            continue
        cx, cy = cents[i]
        if inner[0] <= cx <= inner[2] and inner[1] <= cy <= inner[3]:
            return True
    return False


def footage_set(footage):
    """The shared images (paths), their scored plates (file -> [(text, box)]) and every plate with a
    box (unscored ones, e.g. unreadable far cars, are not false positives)."""
    truth, known = {}, {}
    with open(footage / "ground_truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["file"].startswith("images/") or not row["bbox_x1"]:
                continue
            box = np.array([float(row[k]) for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")])
            f = footage / row["file"]
            known.setdefault(f, []).append(box)
            if row["scored"] == "yes":
                truth.setdefault(f, []).append((row["plate_norm"], box))
    return sorted((footage / "images").glob("*.jpg")), truth, known


def composite_set(folder):
    """A platecomp.py --out folder in footage_set's shape: every labelled plate is scored, plates
    mostly hidden (its ``ignored`` boxes) are known but not scored."""
    files, truth, known = [], {}, {}
    for f, yolo, ignored in frame_labels(folder):
        h, w = cv2.imread(str(f), cv2.IMREAD_COLOR).shape[:2]
        files.append(f)
        for box in map(np.array, pixel_boxes(yolo, w, h)):
            truth.setdefault(f, []).append(("", box))
            known.setdefault(f, []).append(box)
        known.setdefault(f, []).extend(map(np.array, ignored))
    return files, truth, known


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED", str(HERE.parents[2] / "shared")))
    ap.add_argument("--model", action="append", required=True, help="FAMILY=PATH (yolo_end2end or yolox)")
    ap.add_argument("--threshold", type=float, default=0.25)
    ap.add_argument("--composites", default=None, help="score on a platecomp.py --out folder (training side) instead of the shared images")
    ap.add_argument("--text-det", default=None, help="PP-OCRv4 text detector: also score each model with the text cross-check")
    ap.add_argument("--text-short", type=int, default=160, help="the cross-check crop's short side in pixels (MODELS.md: 160)")
    args = ap.parse_args()
    import onnxruntime as ort

    if args.composites:
        files, truth, known = composite_set(Path(args.composites))
    else:
        files, truth, known = footage_set(Path(args.shared) / "footage")
    print(f"{len(files)} images, {sum(len(v) for v in truth.values())} scored plates; threshold {args.threshold}")
    print("model | recall@0.3 | recall@0.5 | false positives/image | mean IoU (found @0.3) | ms/image")
    n = sum(len(v) for v in truth.values())
    text = None
    if args.text_det:
        topts = ort.SessionOptions()
        topts.intra_op_num_threads = 2
        text = ort.InferenceSession(args.text_det, topts, providers=["CPUExecutionProvider"])

    def score(per_image):
        """recall@0.3, recall@0.5, false positives and IoUs of found plates over (file, dets) pairs."""
        r3 = r5 = fp = 0
        ious = []
        for f, dets in per_image:
            found, used = match(dets, [g for _, g in truth.get(f, [])], 0.3)
            r3 += len(found)
            r5 += sum(i >= 0.5 for i in found)
            ious += found
            # a detection on an unscored plate (unreadable far cars) is not counted either way
            fp += sum(1 for j, d in enumerate(dets) if j not in used and not any(box_iou(d[0], g) > 0 for g in known.get(f, [])))
        return f"{r3}/{n} | {r5}/{n} | {fp / len(files):.2f} | {np.mean(ious) if ious else 0:.3f}"

    for spec in args.model:
        family, _, path = spec.partition("=")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        per_image, checked, ms, check_ms = [], [], [], []
        for f in files:
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1]
            canvas, k, dx, dy = letterbox_frame(img, cv2.INTER_LINEAR)
            x = np.transpose(canvas[None].astype(np.float32) / 255.0, (0, 3, 1, 2))
            t = time.perf_counter()
            out = sess.run(None, {name: x})[0]
            ms.append((time.perf_counter() - t) * 1000)
            dets = [((b - np.array([dx, dy, dx, dy])) / k, s) for b, s in decode(family, out, args.threshold)]
            per_image.append((f, dets))
            if text is not None:
                t = time.perf_counter()
                checked.append((f, [d for d in dets if has_text(text, img, d[0], args.text_short)]))
                check_ms.append((time.perf_counter() - t) * 1000)
        print(f"{Path(path).name} | {score(per_image)} | {np.median(ms[1:] or ms):.1f}")
        if text is not None:
            print(f"{Path(path).name} + text check | {score(checked)} | +{np.median(check_ms):.1f} (max +{max(check_ms):.1f})")


if __name__ == "__main__":
    main()
