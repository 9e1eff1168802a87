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
if [ "${EDGE_AGENT_CROSS:-0}" = 1 ]; then
  # ARM builds run under qemu (cross/README.md); opt-in because they add a release build per target.
  log "aarch64 build under qemu-user: version, golden detect, MQTT publish"
  "$REPO/cross/test-aarch64.sh"
  log "tract backend golden test (x86), then the armv7 build under qemu-arm"
  cargo test --locked -p edge-agent --features tract --test golden tract
  "$REPO/cross/test-armv7.sh"
fi
