"""Compares `edge-agent detect` JSON lines (stdin) with the golden YOLOX-Nano outputs.

Same rule as tests/golden.rs: each golden box has a partner with the same label, box within 1.5 px
(golden boxes clipped to the image) and score within 1e-3, and vice versa; items within 1e-3 of the
score threshold may flip. Standard library only, so it runs on a bare CI machine.
Usage: compare_golden.py GOLDEN_JSON MODEL_KEY THRESHOLD < detect.jsonl
"""
import json
import os
import sys

BOX_TOL, SCORE_TOL = 1.5, 1e-3


def main():
    golden_path, key, threshold = sys.argv[1], sys.argv[2], float(sys.argv[3])
    with open(golden_path) as f:
        images = json.load(f)["images"]
    checked = 0
    for line in sys.stdin:
        if not line.strip():
            continue
        got = json.loads(line)
        name = os.path.basename(got["file"])
        if name not in images:
            sys.exit(f"{name}: not in {golden_path}")
        h, w = images[name]["shape_hwc"][:2]
        dets = got["detections"]
        used = [False] * len(dets)
        for g in images[name][key]:
            x1, y1, x2, y2 = g["box_xyxy"]
            gb = [min(max(x1, 0), w), min(max(y1, 0), h), min(max(x2, 0), w), min(max(y2, 0), h)]
            diff = lambda d: max(abs(a - b) for a, b in zip(d["box"], gb))
            cands = [i for i, d in enumerate(dets) if not used[i] and d["label"] == g["label"]]
            best = min(cands, key=lambda i: diff(dets[i]), default=None)
            if best is not None and diff(dets[best]) <= BOX_TOL and abs(dets[best]["score"] - g["score"]) <= SCORE_TOL:
                used[best] = True
            elif g["score"] - threshold > SCORE_TOL:
                sys.exit(f"{name}: golden {g} has no match in {dets}")
        for d, u in zip(dets, used):
            if not u and d["score"] - threshold > SCORE_TOL:
                sys.exit(f"{name}: extra detection {d}")
        checked += 1
        print(f"{name}: {sum(used)} detections match the golden output")
    if checked == 0:
        sys.exit("no detect output to compare")


main()
