"""Writes the calibration set: the vito held-out plates (20 %, split by plate text with the
training seed, never trained on by either variant), each crop degraded three times like a 14-40 px
traffic-camera crop, in the layout `edge-agent plates --report` reads (`plate_crops/labels.csv`,
an empty `ground_truth.csv`). The agent's default `min_confidence` is chosen on this set, with the
agent's own decoder and readers, for 97 % precision of trusted reads: never on `footage/`.

Usage: python models/training/calibration_set.py --out .cache/ocr-calibration
       edge-agent plates --report .cache/ocr-calibration --json
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from train_ocr import degrade_real, labelled, read_rgb, split_by_text  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.environ.get("EDGE_AGENT_SHARED", str(HERE.parents[2] / "shared")))
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1, help="the training seed (same split)")
    ap.add_argument("--copies", type=int, default=3)
    args = ap.parse_args()
    vito = Path(args.shared) / "datasets/vn_plates_autolabel_vito"
    if not (vito / "labels.csv").exists():
        raise SystemExit(f"error: {vito}/labels.csv is missing: put the shared folder beside the checkout or pass --shared")
    _, held = split_by_text(labelled(vito), 0.2, args.seed)
    out = Path(args.out)
    crops = out / "plate_crops"
    crops.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(12345)
    rows = []
    for k, (path, text) in enumerate(held):
        img = read_rgb(path)
        for c in range(args.copies):
            name = f"{k:04d}_{c}.png"
            cv2.imwrite(str(crops / name), degrade_real(img, rng)[:, :, ::-1])
            rows.append({"filename": name, "plate_norm": text, "label_format_ok": "yes", "source": path.name})
    with open(crops / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    (out / "ground_truth.csv").write_text("file,plate_norm,scored,bbox_x1,bbox_y1,bbox_x2,bbox_y2\n")
    print(f"wrote {len(rows)} crops of {len(held)} held-out plates to {crops}")


if __name__ == "__main__":
    main()
