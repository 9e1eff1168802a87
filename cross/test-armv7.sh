#!/usr/bin/env bash
# Runs the armv7 release binary (tract backend: there is no armv7 ONNX Runtime) under qemu-arm:
# `detect` with YOLOX-Nano on the shared images, with no ONNX Runtime library anywhere, compared
# with the golden output. Prints the stripped size and the time to the first processed frame.
# Usage: cross/test-armv7.sh            (scripts/test.sh runs it when EDGE_AGENT_CROSS=1)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
setup_env
TARGET=armv7-unknown-linux-gnueabihf
start=$SECONDS
BIN="$(cross_build "$TARGET" --features tract)"
build_s=$((SECONDS - start))
QEMU="$(fetch_qemu)/qemu-arm"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

file "$BIN" | grep -q 'ARM, EABI5' || { echo "error: $BIN is not an armv7 ELF: $(file "$BIN")" >&2; exit 1; }
if file "$BIN" | grep -q 'not stripped'; then echo "error: $BIN is not stripped" >&2; exit 1; fi
cargo run -q --locked -- models fetch >/dev/null   # native fill of the cache if a fresh clone
printf '[device]\nsite_id = "site-arm"\ndevice_id = "dev-armv7"\n\n[runtime]\nbackend = "tract"\n' >"$WORK/tract.toml"

# No ONNX Runtime: tract must not need one.
arm() { env -u ORT_DYLIB_PATH "$QEMU" -L "$CROSS_SYSROOT" "$BIN" --log-format text "$@"; }

log "armv7: edge-agent check, models verify"
arm check "$WORK/tract.toml"
arm models verify >/dev/null

log "armv7: detect (YOLOX-Nano on tract) vs golden output"
IMAGES="$SHARED/footage/images"
t0=$(date +%s.%N)
arm detect --config "$WORK/tract.toml" --model yolox_nano_coco_416 "$IMAGES/vn_street_01.jpg" >"$WORK/first.jsonl"
first_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
arm detect --config "$WORK/tract.toml" --model yolox_nano_coco_416 "$IMAGES"/*.jpg >"$WORK/detect.jsonl"
python3 "$REPO/cross/compare_golden.py" "$SHARED/models/reference/golden_outputs.json" yolox_nano 0.3 \
  <"$WORK/detect.jsonl"

log "armv7 summary: build ${build_s} s; stripped binary $(stat -c %s "$BIN") bytes; first processed frame under qemu ${first_s} s"
