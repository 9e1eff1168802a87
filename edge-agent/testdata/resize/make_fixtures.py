#!/usr/bin/env python3
"""Regenerates the OpenCV INTER_LINEAR fixtures for resize.rs (needs numpy and opencv-python-headless).

The input is synthetic (seeded random pixels), so nothing here comes from footage."""
import numpy as np, cv2
rng = np.random.default_rng(7)
img = rng.integers(0, 256, (61, 97, 3), dtype=np.uint8)
img.tofile("input_97x61.rgb")
full = (0, 0, 97, 61)
for (x, y, w, h), (dw, dh) in [(full, (50, 31)), (full, (33, 20)), (full, (160, 100)), (full, (128, 64)),
                               ((0, 0, 96, 60), (48, 30)), ((10, 5, 40, 30), (128, 64))]:
    out = cv2.resize(np.ascontiguousarray(img[y:y + h, x:x + w]), (dw, dh), interpolation=cv2.INTER_LINEAR)
    out.tofile(f"cv2_{x}x{y}_{w}x{h}_to_{dw}x{dh}.rgb")
print("opencv", cv2.__version__)
