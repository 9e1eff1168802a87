#!/usr/bin/env bash
# Runs the aarch64 release binary under qemu-user against real components: `version` with the
# aarch64 ONNX Runtime from the PyPI wheel, `models fetch`, `detect` with YOLOX-Nano on the shared
# images compared with the golden output, `emit` publishing events to a mosquitto on 127.0.0.1 that
# mosquitto_sub confirms, and `run` (the pipeline on two frames) whose birth on `status` names the
# provider and backend. Prints the stripped size and the time to the first processed frame.
# Usage: cross/test-aarch64.sh            (scripts/test.sh runs it when EDGE_AGENT_CROSS=1)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# CROSS_PROFILE=cross-check builds the quicker profile meant for CI (Cargo.toml); default: release.
require_shared
setup_test_env   # native ORT + model cache (the models themselves are arch-independent)
TARGET=aarch64-unknown-linux-gnu
start=$SECONDS
# The qemu checks run the same code at opt-level 1 as fast as at 2 (ONNX Runtime does the work):
# a clean cross-check build took 287 s instead of 319 s, the 9 images 53.2 s against 52.2 s
# (2026-12-07). Not in the profile itself: the armv7 check runs tract, which needs opt-level 2.
export CARGO_PROFILE_CROSS_CHECK_OPT_LEVEL="${CARGO_PROFILE_CROSS_CHECK_OPT_LEVEL:-1}"
BIN="$(cross_build "$TARGET")"
build_s=$((SECONDS - start))
QEMU="$(fetch_qemu)/qemu-aarch64"
ORT_ARM="$(fetch_ort "$ORT_VERSION" manylinux_2_28_aarch64)"
WORK="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# The emulated agent: its own ORT library, the shared model cache, text logs on stderr.
arm() { ORT_DYLIB_PATH="$ORT_ARM" "$QEMU" -L /usr/aarch64-linux-gnu "$BIN" --log-format text "$@"; }

file "$BIN" | grep -q 'ARM aarch64' || { echo "error: $BIN is not an aarch64 ELF: $(file "$BIN")" >&2; exit 1; }
if file "$BIN" | grep -q 'not stripped'; then echo "error: $BIN is not stripped" >&2; exit 1; fi

log "aarch64: edge-agent version (qemu $("$QEMU" --version | head -1 | awk '{print $3}'))"
arm version | tee "$WORK/version.txt"
grep -q "$ORT_VERSION" "$WORK/version.txt" || { echo "error: version does not report ONNX Runtime $ORT_VERSION" >&2; exit 1; }

log "aarch64: edge-agent models fetch"
arm models fetch >/dev/null   # from the mirror; fills a fresh clone's cache, checks every sha256 on ARM

log "aarch64: detect (YOLOX-Nano) vs golden output"
IMAGES="$SHARED/footage/images"
# Time to the first processed frame: a one-image run from process start (library and model load
# included) to its JSON line, as wall time and as CPU time (user+sys; wall time on a busy machine
# measures the other jobs). Then all images, stamped per line.
TIMEFORMAT='%R %U %S'
{ time arm detect --model yolox_nano_coco_416 --threads 1 "$IMAGES/vn_street_01.jpg" >"$WORK/first.jsonl" 2>"$WORK/first.err"; } 2>"$WORK/first.time" \
  || { cat "$WORK/first.err" >&2; exit 1; }
read -r first_wall first_user first_sys <"$WORK/first.time"
first_cpu=$(awk -v u="$first_user" -v s="$first_sys" 'BEGIN{printf "%.1f", u+s}')
python3 "$REPO/cross/compare_golden.py" "$SHARED/models/reference/golden_outputs.json" yolox_nano 0.3 \
  <"$WORK/first.jsonl" >/dev/null
stamp() { while IFS= read -r l; do printf '%s\t%s\n' "$(date +%s.%N)" "$l"; done; }
t0=$(date +%s.%N)
arm detect --model yolox_nano_coco_416 --threads 1 "$IMAGES"/*.jpg | stamp >"$WORK/stamped.tsv"
all_s=$(awk -F'\t' -v a="$t0" 'END{printf "%.1f", $1-a}' "$WORK/stamped.tsv")
cut -f2- "$WORK/stamped.tsv" | python3 "$REPO/cross/compare_golden.py" \
  "$SHARED/models/reference/golden_outputs.json" yolox_nano 0.3

log "aarch64: emit and run against mosquitto on 127.0.0.1, confirmed by mosquitto_sub"
start_mosquitto "$WORK"
mqtt_checks "$WORK" dev-arm64 onnxruntime arm

log "aarch64 summary: build ${build_s} s; stripped binary $(stat -c %s "$BIN") bytes; first processed frame under qemu ${first_wall} s wall, ${first_cpu} s CPU; 9 images ${all_s} s wall; load $(cut -d" " -f1 /proc/loadavg)"
