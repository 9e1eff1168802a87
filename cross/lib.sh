# Shared set-up for the cross scripts: Debian cross toolchains, rustup targets, the cargo linker and
# runner settings (through environment variables, so native builds and their target dir are left
# alone), the private qemu 10 and the aarch64 ONNX Runtime. Idempotent; source it, do not run it.

source "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
CROSS_CACHE="$CACHE/cross"
# qemu 10 from bookworm-backports: Debian bookworm's qemu 7.2 segfaults inside ONNX Runtime's cpuinfo
# initialisation on aarch64 (stack-facts §6). Pinned so CI runs the version measured here.
QEMU_DEB_VERSION="1:10.0.2+ds-2+deb13u1~bpo12+1"

# Debian packages and rustup target for TARGET; exports the cargo/cc variables for it.
cross_toolchain() {
  local target="$1" triple pkgarch
  case "$target" in
    aarch64-unknown-linux-gnu) triple=aarch64-linux-gnu; pkgarch=arm64 ;;
    armv7-unknown-linux-gnueabihf) triple=arm-linux-gnueabihf; pkgarch=armhf ;;
    *) echo "error: unsupported target '$target' (aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" >&2; return 2 ;;
  esac
  need_apt pkg-config nasm file "gcc-$triple" "g++-$triple" "libc6-dev-$pkgarch-cross"
  if ! rustup target list --installed | grep -qx "$target"; then
    log "rustup target add $target"
    rustup target add "$target" >&2
  fi
  local up env_t
  up="$(printf '%s' "$target" | tr 'a-z-' 'A-Z_')"
  env_t="$(printf '%s' "$target" | tr '-' '_')"
  export "CARGO_TARGET_${up}_LINKER=$triple-gcc"
  export "CC_${env_t}=$triple-gcc" "CXX_${env_t}=$triple-g++" "AR_${env_t}=$triple-ar"

}

# Private qemu-user 10 extracted from the bookworm-backports .deb (no system change, no root needed
# beyond apt's download). Prints the directory holding qemu-aarch64 and qemu-arm.
fetch_qemu() {
  local d="$CROSS_CACHE/qemu-$QEMU_DEB_VERSION"
  d="${d//[:~+]/_}"
  if [ ! -x "$d/usr/bin/qemu-aarch64" ]; then
    log "fetching qemu-user $QEMU_DEB_VERSION from bookworm-backports"
    local a="$CROSS_CACHE/qemu-apt"
    mkdir -p "$a/sp" "$a/lists/partial" "$a/cache/archives/partial"
    cat >"$a/sp/backports.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    local opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$a/sp"
      -o "Dir::State::Lists=$a/lists" -o "Dir::Cache=$a/cache")
    apt-get -q "${opts[@]}" update >&2
    (cd "$a/cache" && apt-get -q "${opts[@]}" download "qemu-user=$QEMU_DEB_VERSION" >&2)
    rm -rf "$d.tmp" && mkdir -p "$d.tmp"
    dpkg-deb -x "$a"/cache/qemu-user_*.deb "$d.tmp" >&2
    rm -rf "$d" && mv "$d.tmp" "$d"
    rm -f "$a"/cache/qemu-user_*.deb
  fi
  printf '%s\n' "$d/usr/bin"
}

# Builds the binary for TARGET with extra cargo args in profile $CROSS_PROFILE (default `release`,
# what ships; the qemu checks use `cross-check`, see Cargo.toml); prints the binary's path.
cross_build() {
  local target="$1"; shift
  local profile="${CROSS_PROFILE:-release}"
  # Everything but the path goes to stderr: callers do BIN="$(cross_build ...)".
  cross_toolchain "$target" >&2
  local bin="${CARGO_TARGET_DIR:-$REPO/target}/$target/$profile/edge-agent"
  # CROSS_REUSE=1 runs the binary already built (iterating on the checks, not on the code).
  if [ "${CROSS_REUSE:-0}" = 1 ] && [ -x "$bin" ]; then
    log "reusing $bin (CROSS_REUSE=1)"
    printf '%s\n' "$bin"
    return
  fi
  log "cargo build --profile $profile --target $target $*"
  (cd "$REPO" && cargo build -q --locked -p edge-agent --bin edge-agent --profile "$profile" --target "$target" "$@" >&2)
  printf '%s\n' "$bin"
}

# A throwaway anonymous mosquitto on a free loopback port for the qemu checks: sets MQTT_PORT and
# appends its pid to the caller's `pids` array. Logs in $1/mosquitto.log.
start_mosquitto() {
  local work="$1"
  MQTT_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" >"$work/mosquitto.conf"
  mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 & pids+=($!)
  for _ in $(seq 100); do mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -t ping -m x 2>/dev/null && return 0; sleep 0.1; done
  echo "error: mosquitto did not start on 127.0.0.1:$MQTT_PORT: $(cat "$work/mosquitto.log" 2>/dev/null)" >&2
  return 1
}

# The MQTT checks of an emulated agent, against the mosquitto of start_mosquitto:
#   1. `emit` publishes 3 events (with evidence) QoS 1; mosquitto_sub must receive the same event ids;
#   2. `run`, the real pipeline on two shared frames as an image-folder camera (at least one must be
#      processed), publishes its retained
#      birth on `status` (which must name execution provider `cpu` and inference backend BACKEND)
#      and its goodbye.
# Usage: mqtt_checks WORK DEVICE_ID BACKEND RUNNER  (RUNNER: a command or function running the agent)
mqtt_checks() {
  local work="$1" dev="$2" backend="$3" runner="$4" count=3 base="edge/site-arm/$2"
  local runtime_toml
  runtime_toml=$(printf '[runtime]\nbackend = "%s"\n' "$backend")
  cat >"$work/agent.toml" <<TOML
[device]
site_id = "site-arm"
device_id = "$dev"

$runtime_toml

[mqtt]
broker = "mqtt://127.0.0.1:$MQTT_PORT"
client_id = "agent-$dev"

[storage]
spool_dir = "$work/spool"
max_size_mb = 16

[evidence]
frame_max_width = 320
jpeg_quality = 70

[http]
enabled = false
TOML
  mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$base/events/#" -C "$count" -W 300 \
    >"$work/received.jsonl" & local sub=$!; pids+=($sub)
  sleep 0.5
  "$runner" emit --config "$work/agent.toml" --count "$count" --flush-timeout 120 >"$work/emitted.jsonl"
  wait "$sub" || { echo "error: mosquitto_sub did not receive $count events (got $(wc -l <"$work/received.jsonl"))" >&2; return 1; }
  python3 - "$work/emitted.jsonl" "$work/received.jsonl" <<'PY'
import json, sys
sent = {json.loads(l)["event_id"] for l in open(sys.argv[1]) if l.strip()}
got = {json.loads(l)["event_id"] for l in open(sys.argv[2]) if l.strip()}
if not sent or sent != got:
    sys.exit(f"emitted {sorted(sent)} but the broker delivered {sorted(got)}")
print(f"{len(got)} events published from the emulated agent arrived at mosquitto")
PY

  mkdir -p "$work/frames"
  cp "$SHARED"/footage/frames/vn_citycam_haiphong_10fps/frame_000{1,2}.jpg "$work/frames/"
  { cat "$work/agent.toml"; printf '\n[[cameras]]\nid = "cam-1"\nurl = "%s"\n' "$work/frames"; } >"$work/run.toml"
  sed -i "s/client_id = \"agent-$dev\"/client_id = \"agent-$dev-run\"/; s|$work/spool|$work/spool-run|" "$work/run.toml"
  # Birth (online) then goodbye (offline), both on the status topic.
  mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t "$base/status" -C 2 -W 600 \
    >"$work/status.jsonl" & sub=$!; pids+=($sub)
  sleep 0.5
  "$runner" run --config "$work/run.toml" 2>"$work/run.err" || { cat "$work/run.err" >&2; return 1; }
  # The sampler may skip a frame of the folder; at least one must go through the whole pipeline.
  grep -Eq 'processed=[1-9]' "$work/run.err" || { echo "error: run processed no frame:" >&2; cat "$work/run.err" >&2; return 1; }
  wait "$sub" || { echo "error: no birth and goodbye on $base/status (got: $(cat "$work/status.jsonl"))" >&2; return 1; }
  python3 - "$work/status.jsonl" "$backend" <<'PY'
import json, sys
msgs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
birth = next((m for m in msgs if m.get("state") == "online"), None)
if birth is None or not any(m.get("state") == "offline" for m in msgs):
    sys.exit(f"expected a birth and a goodbye on status, got {msgs}")
want = {"execution_provider": "cpu", "inference_backend": sys.argv[2]}
got = {k: birth.get(k) for k in want}
if got != want:
    sys.exit(f"birth says {got}, expected {want}: {birth}")
print(f"run: frames processed; birth on status names {got} and models {[m['name'] for m in birth['models']]}")
PY
}
