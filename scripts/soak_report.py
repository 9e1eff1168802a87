"""Summarises a soak run (scripts/soak.sh): RSS slope after the first ten minutes, descriptor and
thread growth, disk bytes, broker memory, events lost (seq gaps) and capture-to-consumer latency;
writes summary.json and a plot (soak.png) beside samples.csv. Needs numpy and Pillow."""

import argparse
import json
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


def slope_mb_per_hour(t, rss_kb, after_s=600):
    keep = t >= after_s
    if keep.sum() < 3:
        return None
    a, _ = np.polyfit(t[keep] / 3600.0, rss_kb[keep] / 1024.0, 1)
    return float(a)


def consumer_stats(path: Path):
    """seq gaps per device and the capture-to-consumer latency of each event line."""
    if not path.exists():
        return None
    seqs, lat = {}, []
    summary = None
    for line in path.read_text().splitlines():
        stamp, _, body = line.partition(" ")
        try:
            v = json.loads(body)
        except json.JSONDecodeError:
            continue
        if v.get("type") == "event":
            seqs.setdefault(v["device"], set()).add(v["seq"])
            cap = datetime.fromisoformat(v["capture_time"].replace("Z", "+00:00")).timestamp()
            lat.append(float(stamp) - cap)
        elif v.get("type") == "summary":
            summary = v
    missing = 0
    for s in seqs.values():
        missing += (max(s) - min(s) + 1) - len(s)
    lat = np.array(lat)
    return {
        "events": int(sum(len(s) for s in seqs.values())),
        "seq_missing": int(missing),
        "latency_p50_s": float(np.percentile(lat, 50)) if len(lat) else None,
        "latency_p99_s": float(np.percentile(lat, 99)) if len(lat) else None,
        "latency_max_s": float(lat.max()) if len(lat) else None,
        "watch_summary": summary,
    }


def agent_gaps(path: Path):
    if not path.exists():
        return None
    seqs = [json.loads(l)["seq"] for l in path.read_text().splitlines() if l.strip().startswith("{") and '"seq"' in l]
    if not seqs:
        return {"events": 0, "seq_missing": 0}
    s = sorted(set(seqs))
    return {"events": len(s), "seq_missing": int(s[-1] - s[0] + 1 - len(s))}


def plot(cols, out: Path, title: str):
    w, h, pad = 1000, 620, 60
    img = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    t = cols["t_s"] / 60.0
    panels = [
        ("RSS (MB)", cols["rss_kb"] / 1024.0, (31, 119, 180)),
        ("broker held (MB)", cols["broker_held_bytes"] / 2**20, (214, 39, 40)),
        ("spool + evidence on disk (MB)", (cols["spool_bytes"] + cols["evidence_bytes"]) / 2**20, (44, 160, 44)),
    ]
    d.text((pad, 15), title, fill="black", font=font)
    ph = (h - 2 * pad) // len(panels)
    tmax = max(t.max(), 1e-6)
    for i, (label, y, colour) in enumerate(panels):
        top = pad + i * ph + 10
        bot = top + ph - 30
        d.rectangle([pad, top, w - pad, bot], outline=(180, 180, 180))
        lo, hi = 0.0, max(float(y.max()) * 1.1, 1e-6)
        d.text((pad + 5, top + 3), f"{label}: max {y.max():.1f}, last {y[-1]:.1f}", fill=colour, font=font)
        d.text((5, top), f"{hi:.3g}", fill="black", font=font)
        d.text((5, bot - 10), f"{lo:.0f}", fill="black", font=font)
        pts = [(pad + (w - 2 * pad) * (tt / tmax), bot - (bot - top) * ((yy - lo) / (hi - lo))) for tt, yy in zip(t, y)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
    d.text((w // 2 - 40, h - 25), f"minutes (0-{tmax:.0f})", fill="black", font=font)
    img.save(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dir")
    ap.add_argument("--title", default="soak")
    ap.add_argument("--raw", default=None, help="folder of consumer.txt and events.jsonl (default: DIR)")
    args = ap.parse_args()
    d = Path(args.dir)
    raw_dir = Path(args.raw) if args.raw else d
    raw = np.genfromtxt(d / "samples.csv", delimiter=",", names=True)
    cols = {n: np.atleast_1d(raw[n]).astype(float) for n in raw.dtype.names}
    t = cols["t_s"]
    early = t <= 600
    late = t >= 600
    summary = {
        "minutes": float(t.max() / 60.0),
        "samples": int(len(t)),
        "rss_mb_first": float(cols["rss_kb"][0] / 1024),
        "rss_mb_at_10_min": float(cols["rss_kb"][early][-1] / 1024) if early.any() else None,
        "rss_mb_last": float(cols["rss_kb"][-1] / 1024),
        "rss_mb_max": float(cols["rss_kb"].max() / 1024),
        "rss_slope_mb_per_hour_after_10_min": slope_mb_per_hour(t, cols["rss_kb"]),
        "fds_after_10_min": [int(cols["fds"][late].min()), int(cols["fds"][late].max())] if late.any() else None,
        "threads_after_10_min": [int(cols["threads"][late].min()), int(cols["threads"][late].max())] if late.any() else None,
        "broker_held_mb_max": float(cols["broker_held_bytes"].max() / 2**20),
        "broker_limit_mb_max": float(cols["broker_limit_bytes"].max() / 2**20),
        "spool_mb_max": float(cols["spool_bytes"].max() / 2**20),
        "evidence_mb_max": float(cols["evidence_bytes"].max() / 2**20),
        "audit_kb_last": float(cols["audit_bytes"][-1] / 1024),
        "events": int(cols["events"][-1]),
        "agent": agent_gaps(raw_dir / "events.jsonl"),
        "consumer": consumer_stats(raw_dir / "consumer.txt"),
    }
    (d / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(cols, d / "soak.png", args.title)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
