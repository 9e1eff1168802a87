"""Plate detectors side by side on the shared footage's scored plates (validation only: nothing is
chosen on it): recall at IoU >= 0.3 and >= 0.5, false positives per image at the detector's
threshold, mean IoU of the plates found, and milliseconds per image (ONNX Runtime, 2 threads).

Each model is run the way its manifest says the agent runs it (640 x 640, letterboxed in the
centre with grey 114, RGB scaled to 0..1): today's `vn_plate_det_yolo26n_640_e2e` (family
`yolo_end2end`: boxes in input pixels) and ours (family `yolox`: cell offsets and log sizes).

Usage: python models/training/eval_det.py --model yolo_end2end=PATH --model yolox=PATH [--threshold 0.25]
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

from train_det import EXPORT, box_iou, decode_boxes, keep_boxes, letterbox_frame, match  # noqa: E402


def decode(family, out, threshold):
    """One image's detections (box in the 640 x 640 input, score) from a model's output."""
    rows = out[0]
    if family == "yolo_end2end":
        return keep_boxes(rows[:, :4], rows[:, 4], threshold, 0.7)
    # yolox: the graph gives objectness and class as probabilities, the box raw
    return keep_boxes(np.asarray(decode_boxes(rows[None], EXPORT))[0], rows[:, 4] * rows[:, 5], threshold, 0.45)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED", str(HERE.parents[2] / "shared")))
    ap.add_argument("--model", action="append", required=True, help="FAMILY=PATH (yolo_end2end or yolox)")
    ap.add_argument("--threshold", type=float, default=0.25)
    args = ap.parse_args()
    import onnxruntime as ort

    footage = Path(args.shared) / "footage"
    truth, known = {}, {}  # scored plates; every plate with a box (unscored ones are not false positives)
    with open(footage / "ground_truth.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if not row["file"].startswith("images/") or not row["bbox_x1"]:
                continue
            box = np.array([float(row[k]) for k in ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2")])
            known.setdefault(row["file"], []).append(box)
            if row["scored"] == "yes":
                truth.setdefault(row["file"], []).append((row["plate_norm"], box))
    files = sorted(str(p.relative_to(footage)) for p in (footage / "images").glob("*.jpg"))
    print(f"{len(files)} images, {sum(len(v) for v in truth.values())} scored plates; threshold {args.threshold}")
    print("model | recall@0.3 | recall@0.5 | false positives/image | mean IoU (found @0.3) | ms/image")
    for spec in args.model:
        family, _, path = spec.partition("=")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        r3 = r5 = fp = 0
        ious, ms = [], []
        for f in files:
            img = cv2.imread(str(footage / f), cv2.IMREAD_COLOR)[..., ::-1]
            canvas, k, dx, dy = letterbox_frame(img, cv2.INTER_LINEAR)
            x = np.transpose(canvas[None].astype(np.float32) / 255.0, (0, 3, 1, 2))
            t = time.perf_counter()
            out = sess.run(None, {name: x})[0]
            ms.append((time.perf_counter() - t) * 1000)
            dets = [((b - np.array([dx, dy, dx, dy])) / k, s) for b, s in decode(family, out, args.threshold)]
            found, used = match(dets, [g for _, g in truth.get(f, [])], 0.3)
            r3 += len(found)
            r5 += sum(i >= 0.5 for i in found)
            ious += found
            # a detection on an unscored plate (unreadable far cars) is not counted either way
            fp += sum(1 for j, d in enumerate(dets) if j not in used and not any(box_iou(d[0], g) > 0 for g in known.get(f, [])))
        n = sum(len(v) for v in truth.values())
        print(f"{Path(path).name} | {r3}/{n} | {r5}/{n} | {fp / len(files):.2f} | {np.mean(ious) if ious else 0:.3f} | {np.median(ms[1:] or ms):.1f}")


if __name__ == "__main__":
    main()
