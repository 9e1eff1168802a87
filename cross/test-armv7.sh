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
printf '[device]\nsite_id = "site-arm"\ndevice_id = "dev-armv7"\n\n[runtime]\nbackend = "tract"\n' >"$WORK/tract.toml"

# No ONNX Runtime: tract must not need one.
arm() { env -u ORT_DYLIB_PATH "$QEMU" -L /usr/arm-linux-gnueabihf "$BIN" --log-format text "$@"; }

log "armv7: edge-agent check, models fetch"
arm check "$WORK/tract.toml"
arm models fetch >/dev/null   # from the mirror; fills a fresh clone's cache, checks every sha256 on ARM

log "armv7: detect (YOLOX-Nano on tract) vs golden output"
IMAGES="$SHARED/footage/images"
stamp() { while IFS= read -r l; do printf '%s\t%s\n' "$(date +%s.%N)" "$l"; done; }
t0=$(date +%s.%N)
arm detect --config "$WORK/tract.toml" --model yolox_nano_coco_416 "$IMAGES"/*.jpg | stamp >"$WORK/stamped.tsv"
first_s=$(awk -F'\t' -v a="$t0" 'NR==1{printf "%.1f", $1-a}' "$WORK/stamped.tsv")
all_s=$(awk -F'\t' -v a="$t0" 'END{printf "%.1f", $1-a}' "$WORK/stamped.tsv")
cut -f2- "$WORK/stamped.tsv" | python3 "$REPO/cross/compare_golden.py" \
  "$SHARED/models/reference/golden_outputs.json" yolox_nano 0.3

log "armv7 summary: build ${build_s} s; stripped binary $(stat -c %s "$BIN") bytes; first processed frame under qemu ${first_s} s (9 images ${all_s} s)"
