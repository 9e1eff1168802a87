#!/usr/bin/env bash
# Runs the aarch64 release binary under qemu-user against real components: `version` with the
# aarch64 ONNX Runtime from the PyPI wheel, `models fetch`, `detect` with YOLOX-Nano on the shared
# images compared with the golden output, and `emit` publishing to a mosquitto on 127.0.0.1 that
# mosquitto_sub confirms. Prints the stripped size and the time to the first processed frame.
# Usage: cross/test-aarch64.sh            (scripts/test.sh runs it when EDGE_AGENT_CROSS=1)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
setup_env   # native ORT + model cache (the models themselves are arch-independent)
TARGET=aarch64-unknown-linux-gnu
start=$SECONDS
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

log "aarch64: emit to mosquitto on 127.0.0.1, confirmed by mosquitto_sub"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" >"$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" >"$WORK/mosquitto.log" 2>&1 & pids+=($!)
for _ in $(seq 50); do mosquitto_pub -h 127.0.0.1 -p "$port" -t ping -m x 2>/dev/null && break; sleep 0.1; done
count=3
mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t 'edge/site-arm/dev-arm/events/#' -C "$count" -W 120 \
  >"$WORK/received.jsonl" & sub=$!; pids+=($sub)
sleep 0.5
cat >"$WORK/agent.toml" <<TOML
[device]
site_id = "site-arm"
device_id = "dev-arm"

[mqtt]
broker = "mqtt://127.0.0.1:$port"
client_id = "agent-arm"

[storage]
spool_dir = "$WORK/spool"
max_size_mb = 16

[evidence]
frame_max_width = 320
jpeg_quality = 70
TOML
arm emit --config "$WORK/agent.toml" --count "$count" --flush-timeout 60 >"$WORK/emitted.jsonl"
wait "$sub" || { echo "error: mosquitto_sub did not receive $count events (got $(wc -l <"$WORK/received.jsonl"))" >&2; exit 1; }
python3 - "$WORK/emitted.jsonl" "$WORK/received.jsonl" <<'PY'
import json, sys
sent = {json.loads(l)["event_id"] for l in open(sys.argv[1]) if l.strip()}
got = {json.loads(l)["event_id"] for l in open(sys.argv[2]) if l.strip()}
if not sent or sent != got:
    sys.exit(f"emitted {sorted(sent)} but the broker delivered {sorted(got)}")
print(f"{len(got)} events published from aarch64 arrived at mosquitto")
PY

log "aarch64 summary: build ${build_s} s; stripped binary $(stat -c %s "$BIN") bytes; first processed frame under qemu ${first_wall} s wall, ${first_cpu} s CPU; 9 images ${all_s} s wall; load $(cut -d" " -f1 /proc/loadavg)"
