#!/usr/bin/env bash
# The demo: builds the agent, fetches and verifies the models from the mirror, checks the example
# configs, then runs the real detectors on real Vietnamese traffic footage and writes annotated
# images. Usage: scripts/demo.sh   (output in .cache/demo/)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
setup_env
cd "$REPO"

log "building edge-agent (release)"
cargo build --release --locked
BIN="$REPO/target/release/edge-agent"
OUT="$CACHE/demo"
mkdir -p "$OUT"

log "edge-agent version"
"$BIN" version
log "fetching and verifying models from $EDGE_AGENT_MIRROR"
"$BIN" models fetch
"$BIN" models verify
log "checking the example site configs"
"$BIN" check configs/*.toml
log "vehicles and people (YOLOX-Nano) on a city junction camera, 40 frames"
"$BIN" detect --model yolox_nano_coco_416 --annotate "$OUT/vehicles" "$SHARED"/footage/frames/vn_citycam_haiphong_10fps/*.jpg \
  > "$OUT/vehicles.jsonl"
echo "$(wc -l < "$OUT/vehicles.jsonl") frames; first: $(head -c 400 "$OUT/vehicles.jsonl")..."
log "plate boxes (Vietnamese plate detector) on highway and street images"
"$BIN" detect --model vn_plate_det_yolo26n_640_e2e --threshold 0.5 --annotate "$OUT/plates" "$SHARED"/footage/images/*.jpg \
  > "$OUT/plate_boxes.jsonl"
log "reading the plates: text, display format, confidence"
"$BIN" plates "$SHARED"/footage/images/*.jpg | tee "$OUT/plates.jsonl" \
  | python3 -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line)
    name = d["file"].split("/")[-1]
    for p in d["plates"]:
        if not p["low_confidence"]:
            print("%-26s %-14s confidence %.2f" % (name, p["display"], p["confidence"]))'
log "accuracy against the footage ground truth"
"$BIN" plates --report "$SHARED/footage" | tail -2
log "done: annotated images in $OUT/vehicles and $OUT/plates, JSON lines in $OUT/*.jsonl"
