#!/usr/bin/env python3
"""The peer of issue #4, measured side by side: fast-alpr 0.4.0 with the shared Vietnamese models.

fast-alpr has no detector for the YOLO26 end-to-end plate model, so a `BaseDetector` here runs it
with the letterbox of `../shared/models/MODELS.md`; the OCR is fast-alpr's own `DefaultOCR`
(fast-plate-ocr) given the VN slot OCR and its config. Prints exact matches on `footage/images`
(scored plates) and `footage/plate_crops`, images/s (JPEG decode included, as
`edge-agent bench --plates`), crops/s (one crop per call, as fast-alpr reads them), CPU per item,
and the peak RSS.

    python3 -m venv .cache/peer && .cache/peer/bin/pip install 'fast-alpr[onnx]==0.4.0'
    .cache/peer/bin/python scripts/peer-fast-alpr.py [--shared ../shared] [--threads 2]
"""

import argparse
import csv
import os
import resource
import sys
import tempfile
import time

import cv2
import numpy as np
import onnxruntime as ort
from fast_alpr import ALPR
from fast_alpr.base import BaseDetector
from fast_alpr.default_ocr import DefaultOCR
from open_image_models.detection.core.base import BoundingBox, DetectionResult

# Keys of the shared OCR config that fast-plate-ocr's PlateConfig accepts.
PLATE_CONFIG_KEYS = (
    "max_plate_slots",
    "alphabet",
    "pad_char",
    "img_height",
    "img_width",
    "keep_aspect_ratio",
    "interpolation",
    "image_color_mode",
)


def session_options(threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return opts


class Yolo26PlateDetector(BaseDetector):
    """The NMS-free YOLO26 plate detector: centred letterbox to 640, pad 114, RGB, /255."""

    def __init__(self, path, conf, threads):
        self.session = ort.InferenceSession(
            path, session_options(threads), providers=["CPUExecutionProvider"]
        )
        self.conf = conf

    def predict(self, frame):
        h, w = frame.shape[:2]
        r = min(640 / h, 640 / w)
        nw, nh = round(w * r), round(h * r)
        left, top = round((640 - nw) / 2 - 0.1), round((640 - nh) / 2 - 0.1)
        canvas = np.full((640, 640, 3), 114, np.uint8)
        canvas[top : top + nh, left : left + nw] = cv2.resize(
            frame, (nw, nh), interpolation=cv2.INTER_LINEAR
        )
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None]
        out = self.session.run(None, {"images": x.astype(np.float32) / 255})[0][0]
        found = []
        for x1, y1, x2, y2, score, _ in out:
            if score <= self.conf:
                continue
            box = BoundingBox(
                int(max(0, (x1 - left) / r)),
                int(max(0, (y1 - top) / r)),
                int(min(w, (x2 - left) / r)),
                int(min(h, (y2 - top) / r)),
            )
            found.append(DetectionResult("license_plate", float(score), box))
        return found


def plate_config(shared, into):
    """The shared OCR config reduced to the keys fast-plate-ocr knows."""
    src = os.path.join(shared, "models", "vn_plate_ocr_config.yaml")
    with open(src, encoding="utf-8") as f:
        lines = [
            ln for ln in f if ln.split(":", 1)[0].strip() in PLATE_CONFIG_KEYS and ":" in ln
        ]
    path = os.path.join(into, "vn_plate_config.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(lines)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED", "../shared"))
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--conf", type=float, default=0.4, help="plate detector score (fast-alpr's)")
    ap.add_argument("--iterations", type=int, default=72, help="timed images")
    args = ap.parse_args()
    shared = args.shared
    models = os.path.join(shared, "models")
    footage = os.path.join(shared, "footage")
    for need in ("vn_plate_det_yolo26n_640_e2e.onnx", "vn_plate_ocr_9x37_64x128.onnx"):
        if not os.path.exists(os.path.join(models, need)):
            sys.exit(f"missing {os.path.join(models, need)}: point --shared at the models mirror")

    with tempfile.TemporaryDirectory() as tmp:
        ocr = DefaultOCR(
            model_path=os.path.join(models, "vn_plate_ocr_9x37_64x128.onnx"),
            config_path=plate_config(shared, tmp),
            device="cpu",
            sess_options=session_options(args.threads),
        )
    detector = Yolo26PlateDetector(
        os.path.join(models, "vn_plate_det_yolo26n_640_e2e.onnx"), args.conf, args.threads
    )
    alpr = ALPR(detector=detector, ocr=ocr)

    truth = {}
    with open(os.path.join(footage, "ground_truth.csv"), encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row.get("scored") == "yes":
                truth.setdefault(row["file"], []).append(row["plate_norm"])
    images_ok = images_n = 0
    for rel, plates in truth.items():
        reads = {r.ocr.text for r in alpr.predict(os.path.join(footage, rel)) if r.ocr}
        images_n += len(plates)
        images_ok += sum(p in reads for p in plates)
    with open(os.path.join(footage, "plate_crops", "labels.csv"), encoding="utf-8") as f:
        labels = [r for r in csv.DictReader(f) if r.get("label_format_ok") == "yes"]
    crops = [cv2.imread(os.path.join(footage, "plate_crops", r["filename"])) for r in labels]
    crops_ok = sum(ocr.predict(c).text == r["plate_norm"] for c, r in zip(crops, labels))
    print(f"accuracy: images {images_ok}/{images_n}, crops {crops_ok}/{len(crops)}")

    files = sorted(
        os.path.join(footage, "images", f)
        for f in os.listdir(os.path.join(footage, "images"))
        if f.endswith(".jpg")
    )
    for f in files:
        alpr.predict(f)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(args.iterations):
        alpr.predict(files[i % len(files)])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        f"images: {args.iterations / wall:.1f} images/s, "
        f"{cpu / args.iterations * 1000:.1f} ms CPU per image ({len(files)} images)"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    for _ in range(10):
        for c in crops:
            ocr.predict(c)
            n += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"crops: {n / wall:.0f} crops/s, {cpu / n * 1000:.2f} ms CPU per crop")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
