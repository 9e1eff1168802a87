#!/usr/bin/env bash
# The test command: installs what it needs, then formatting, lints and every test against the real
# ONNX Runtime library, models and footage. Usage: scripts/test.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
setup_env
export EDGE_AGENT_TEST_OLD_ORT="$(fetch_ort "$ORT_OLD_VERSION")"
cd "$REPO"

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
log "fetching models from $EDGE_AGENT_MIRROR into $EDGE_AGENT_MODEL_CACHE"
cargo run -q --locked -- models fetch
log "cargo test"
cargo test --workspace --locked 2>&1 | tee "$CACHE/test.log"
log ".deb: build, install, systemd-analyze verify, remove (packaging/test-deb.sh)"
if [ "$(id -u)" -eq 0 ]; then packaging/test-deb.sh; else sudo -E packaging/test-deb.sh; fi
log "example configs"
cargo run -q --locked -- check configs/*.toml
# The `gstreamer` feature (H.265, hardware decoders): its lints and only its own tests, not the whole
# suite again. ffmpeg makes the H.265 clip; gstreamer1.0-libav brings avdec_h265.
log "gstreamer feature: clippy and its tests (--features gstreamer)"
need_apt libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-libav ffmpeg
cargo clippy -p edge-agent --all-targets --locked --features gstreamer -- -D warnings
cargo test --locked -p edge-agent --features gstreamer --lib --test gstreamer --test cli -- gst h265 \
  2>&1 | tee "$CACHE/test-gstreamer.log"
if [ "${EDGE_AGENT_CROSS:-0}" = 1 ]; then
  # ARM (cross/README.md): the tract backend on x86 (clippy, golden), then each ARM target built and
  # run under qemu-user. Opt-in: the clean cross builds have not yet been measured to fit CI's budget.
  log "tract backend on x86: clippy and golden tests (--features tract)"
  cargo clippy -p edge-agent --all-targets --locked --features tract -- -D warnings
  cargo test --locked -p edge-agent --features tract --test golden tract
  log "aarch64 build under qemu-user: version, golden detect, MQTT emit and run"
  "$REPO/cross/test-aarch64.sh"
  log "armv7 build (tract) under qemu-arm: version, golden detect, MQTT emit and run"
  "$REPO/cross/test-armv7.sh"
fi
