#!/usr/bin/env python3
"""Checks for train_ctc.py without training: a collected crop's proposed label is left out until
someone marks it `verified = yes`; an export outside models/ gets a manifest the agent reads (its
own name, file, hash, size and licence; the input and decoder of the shipped reader); the
calibration temperature makes a read's confidence the share of such reads that are right. Needs
numpy and OpenCV (scripts/test.sh runs it in the plate generator's environment)."""

import os
import sys
import tempfile
import tomllib
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import train_ctc  # noqa: E402


def test_only_verified_site_rows_are_training_labels():
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "labels.csv").write_text(
            "filename,plate_norm,rows,verified,confidence,source\n"
            "a_p0.jpg,29V737694,2,yes,0.99,cam1/a.jpg\n"
            "a_p1.jpg,30F21717,2,no,0.42,cam1/a.jpg\n"
            "b_p0.jpg,51F12345,1,YES ,0.91,\"cam,2/b.jpg\"\n"
            "b_p1.jpg,,,yes,0.00,cam2/b.jpg\n"
        )
        rows = train_ctc.labelled_rows(Path(d))
        assert [(p.name, t) for p, t, _ in rows] == [("a_p0.jpg", "29V737694"), ("b_p0.jpg", "51F12345")], rows
        # the rows column gives the split of a 2-row plate: 29-V7 over 376.94
        assert rows[0][2] == 4, rows
    with tempfile.TemporaryDirectory() as d:
        # the shared datasets have no verified column: every labelled row counts
        (Path(d) / "labels.csv").write_text("filename,plate_norm,rows\nx.jpg,51F12345,1\n")
        assert len(train_ctc.labelled_rows(Path(d))) == 1


def test_a_site_export_gets_a_manifest_the_agent_reads():
    with tempfile.TemporaryDirectory() as d:
        onnx = Path(d) / "vn_plate_ocr_ea_ctc_site_10x37_64x128.onnx"
        onnx.write_bytes(b"not really a model, only bytes to hash")
        train_ctc.write_manifest(onnx, onnx.stem, "site", ["/data/site-crops"])
        m = tomllib.loads(onnx.with_suffix(".toml").read_text())
        shipped = tomllib.loads((Path(HERE).parent / "vn_plate_ocr_ea_ctc_10x37_64x128.toml").read_text())
        assert m["name"] == onnx.stem and m["file"] == onnx.name, m
        import hashlib

        assert m["sha256"] == hashlib.sha256(onnx.read_bytes()).hexdigest()
        assert m["size_bytes"] == onnx.stat().st_size
        assert m["licence"] == "LicenseRef-edge-agent-site-data", m["licence"]
        assert "/data/site-crops" in m["training_data"]
        assert len(m["known_limits"]) == 1 and "--variant site" in m["known_limits"][0]
        for section in ("input", "output", "decoder"):
            assert m[section] == shipped[section], section
        # Thresholds calibrated for the shipped weights do not carry over to new ones.
        assert "trust" in shipped and "trust" not in m, m.keys()


def test_the_temperature_makes_a_read_confidence_a_probability():
    import numpy as np
    from train_ocr import encode

    def frames(text, margin):
        z = np.zeros((train_ctc.FRAMES, train_ctc.K), np.float32)
        z[:, train_ctc.BLANK] = margin
        for t, c in enumerate(text):  # one frame per character, blanks after
            z[t, train_ctc.BLANK] = 0
            z[t, train_ctc.ALPHABET.index(c)] = margin
        return z

    logits = np.stack([frames("51F12345", 8.0)] * 100)
    for right, lowest in [(100, True), (90, False), (50, False)]:
        ys = np.stack([encode("51F12345")] * right + [encode("51F12346")] * (100 - right))
        t = train_ctc.fit_temperature(logits, ys)
        _, conf = train_ctc.reads(train_ctc.collapse(train_ctc.softmax(logits / t)))
        if lowest:
            # every read right: as sharp as the grid allows
            assert t < 0.45, t
        else:
            # margin 8 says 99 % sure; the temperature brings it to the share actually right
            assert t > 1.0, t
            assert abs(float(conf.mean()) - right / 100) < 0.05, (t, conf.mean())
    assert train_ctc.fit_temperature(logits[:0], np.zeros((0, 10), np.int32)) == 1.0


if __name__ == "__main__":
    for name, fn in sorted(globals().items()):
        if name.startswith("test_") and callable(fn):
            fn()
            print("ok", name)
