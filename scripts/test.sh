#!/usr/bin/env bash
# The test command: installs what it needs, then formatting, lints and every test against the real
# ONNX Runtime library, models and footage. Usage: scripts/test.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
setup_test_env
export EDGE_AGENT_TEST_OLD_ORT="$(fetch_ort "$ORT_OLD_VERSION")"
cd "$REPO"

log "set-up helpers print only their result on stdout (scripts/check-quiet-helpers.sh)"
scripts/check-quiet-helpers.sh
log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
# The peer benchmark needs fast-alpr from PyPI and is run by hand (docs/plates.md); keep it parsing.
log "scripts/peer-fast-alpr.py parses"
python3 -c 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])' scripts/peer-fast-alpr.py
# The OCR's training data generator (models/training): its formats against the grammar and its
# images, in a small pinned environment (training itself never runs in CI).
log "models/training: the training scripts parse; the plate generator and its fonts (test_plategen.py)"
python3 -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' models/training/*.py
PLATEGEN_FONTS="$(models/training/fonts.sh)"
export PLATEGEN_FONTS
PLATEGEN_REQUIRE_IMAGES=1 "$(plategen_python)" models/training/test_plategen.py
log "models/training: the plate detector's composite frames (test_platecomp.py)"
EDGE_AGENT_SHARED="$SHARED" "$(plategen_python)" models/training/test_platecomp.py
log "models/training: a site's own crops as training labels, and its export's manifest (test_train_ctc.py)"
"$(plategen_python)" models/training/test_train_ctc.py
log "fetching models from $EDGE_AGENT_MIRROR into $EDGE_AGENT_MODEL_CACHE"
cargo run -q --locked -- models fetch
log "cargo test"
cargo test --workspace --locked 2>&1 | tee "$CACHE/test.log"
log ".deb: build, install, systemd-analyze verify, remove (packaging/test-deb.sh)"
if [ "$(id -u)" -eq 0 ]; then packaging/test-deb.sh; else sudo -E packaging/test-deb.sh; fi
log "a small disk: the spool stops at its reserve, counts its drops, nothing corrupt (scripts/test-small-disk.sh)"
if [ "$(id -u)" -eq 0 ]; then scripts/test-small-disk.sh; else sudo -E scripts/test-small-disk.sh; fi
log "time that jumps: the agent under a wall clock stepped 2 h forward and back (scripts/test-clock-jump.sh)"
scripts/test-clock-jump.sh
log "example configs"
cargo run -q --locked -- check configs/*.toml
# Every optional feature is built and linted, in one pass: `gstreamer` (H.265, hardware decoders),
# `v4l2` (USB cameras through nokhwa; bindgen needs libclang) and `tract` (pure-Rust inference for
# armv7). Then only the gstreamer feature's own tests, not the whole suite again. ffmpeg makes the
# H.265 clip; gstreamer1.0-libav brings avdec_h265.
log "optional features: clippy --features gstreamer,v4l2,tract; the gstreamer tests"
need_apt libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-libav ffmpeg libclang-dev
cargo clippy -p edge-agent --all-targets --locked --features gstreamer,v4l2,tract -- -D warnings
cargo test --locked -p edge-agent --features gstreamer --lib --test gstreamer --test cli -- gst h265 \
  2>&1 | tee "$CACHE/test-gstreamer.log"
# ARM (cross/README.md). EDGE_AGENT_CROSS: `aarch64` (the default) builds the aarch64 binary in the
# quicker `cross-check` profile and runs it under qemu-user (golden detect with the aarch64 ONNX
# Runtime, MQTT emit and run); `all` adds the tract backend (x86 clippy and golden tests, the armv7
# build and its qemu-arm run: about 8 more minutes of a 2-core runner, hence opt-in); `0` skips both.
cross="${EDGE_AGENT_CROSS:-aarch64}"
case "$cross" in
  0|aarch64|all|1) ;;
  *) echo "error: EDGE_AGENT_CROSS='$cross': use aarch64 (default), all or 0" >&2; exit 2 ;;
esac
if [ "$cross" != 0 ]; then
  log "aarch64 build under qemu-user: version, golden detect, MQTT emit and run"
  CROSS_PROFILE="${CROSS_PROFILE:-cross-check}" "$REPO/cross/test-aarch64.sh"
fi
if [ "$cross" = all ] || [ "$cross" = 1 ]; then
  log "tract backend on x86: golden tests (--features tract)"
  cargo test --locked -p edge-agent --features tract --test golden tract
  log "armv7 build (tract) under qemu-arm: version, golden detect, MQTT emit and run"
  CROSS_PROFILE="${CROSS_PROFILE:-cross-check}" "$REPO/cross/test-armv7.sh"
fi
