#!/usr/bin/env bash
# Runs the armv7 release binary (tract backend: there is no armv7 ONNX Runtime) under qemu-arm with
# no ONNX Runtime library anywhere: `check`, `models fetch`, `detect` with YOLOX-Nano on the shared
# images compared with the golden output, `emit` publishing events to a mosquitto on 127.0.0.1 that
# mosquitto_sub confirms, and `run` (the pipeline on two frames, on tract) whose birth on `status`
# names the provider and backend. Prints the stripped size and the time to the first processed frame.
# Usage: cross/test-armv7.sh            (scripts/test.sh runs it; see cross/README.md)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# CROSS_PROFILE=cross-check builds the quicker profile meant for CI (Cargo.toml); default: release.
require_shared
setup_test_env
TARGET=armv7-unknown-linux-gnueabihf
start=$SECONDS
BIN="$(cross_build "$TARGET" --features tract)"
build_s=$((SECONDS - start))
QEMU="$(fetch_qemu)/qemu-arm"
WORK="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

file "$BIN" | grep -q 'ARM, EABI5' || { echo "error: $BIN is not an armv7 ELF: $(file "$BIN")" >&2; exit 1; }
if file "$BIN" | grep -q 'not stripped'; then echo "error: $BIN is not stripped" >&2; exit 1; fi
printf '[device]\nsite_id = "site-arm"\ndevice_id = "dev-armv7"\n\n[runtime]\nbackend = "tract"\n' >"$WORK/tract.toml"

# No ONNX Runtime: tract must not need one.
arm() { env -u ORT_DYLIB_PATH "$QEMU" -L /usr/arm-linux-gnueabihf "$BIN" --log-format text "$@"; }

log "armv7: edge-agent version, check, models fetch (qemu $("$QEMU" --version | head -1 | awk '{print $3}'))"
# `version` exits 1 when no ONNX Runtime is found, which is the point here; it must name the feature.
arm version >"$WORK/version.txt" 2>&1 || true
cat "$WORK/version.txt"
grep -q '^features:.*tract' "$WORK/version.txt" || { echo "error: the armv7 binary does not report the tract feature" >&2; exit 1; }
arm check "$WORK/tract.toml"
arm models fetch >/dev/null   # from the mirror; fills a fresh clone's cache, checks every sha256 on ARM

log "armv7: detect (YOLOX-Nano on tract) vs golden output"
IMAGES="$SHARED/footage/images"
# Time to the first processed frame: a one-image run from process start (model load and tract's
# optimisation included) to its JSON line, as wall time and CPU time (user+sys). Then all images.
TIMEFORMAT='%R %U %S'
{ time arm detect --config "$WORK/tract.toml" --model yolox_nano_coco_416 "$IMAGES/vn_street_01.jpg" >"$WORK/first.jsonl" 2>"$WORK/first.err"; } 2>"$WORK/first.time" \
  || { cat "$WORK/first.err" >&2; exit 1; }
read -r first_wall first_user first_sys <"$WORK/first.time"
first_cpu=$(awk -v u="$first_user" -v s="$first_sys" 'BEGIN{printf "%.1f", u+s}')
python3 "$REPO/cross/compare_golden.py" "$SHARED/models/reference/golden_outputs.json" yolox_nano 0.3 \
  <"$WORK/first.jsonl" >/dev/null
stamp() { while IFS= read -r l; do printf '%s\t%s\n' "$(date +%s.%N)" "$l"; done; }
t0=$(date +%s.%N)
arm detect --config "$WORK/tract.toml" --model yolox_nano_coco_416 "$IMAGES"/*.jpg | stamp >"$WORK/stamped.tsv"
all_s=$(awk -F'\t' -v a="$t0" 'END{printf "%.1f", $1-a}' "$WORK/stamped.tsv")
cut -f2- "$WORK/stamped.tsv" | python3 "$REPO/cross/compare_golden.py" \
  "$SHARED/models/reference/golden_outputs.json" yolox_nano 0.3

log "armv7: emit and run (tract) against mosquitto on 127.0.0.1, confirmed by mosquitto_sub"
start_mosquitto "$WORK"
mqtt_checks "$WORK" dev-armv7 tract arm

log "armv7 summary: build ${build_s} s; stripped binary $(stat -c %s "$BIN") bytes; first processed frame under qemu ${first_wall} s wall, ${first_cpu} s CPU; 9 images ${all_s} s wall; load $(cut -d" " -f1 /proc/loadavg)"
