#!/usr/bin/env bash
# Builds the stripped release binary for an ARM target with the Debian cross gcc, installing the
# toolchain and rustup target first if missing. Output: target/TARGET/release/edge-agent (native
# builds and their target dir are untouched: --target keeps a separate tree, no RUSTFLAGS).
# Usage: cross/build.sh aarch64-unknown-linux-gnu|armv7-unknown-linux-gnueabihf [cargo args...]
#   e.g. cross/build.sh armv7-unknown-linux-gnueabihf --features tract
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ $# -ge 1 ] || { sed -n '2,6p' "$0" >&2; exit 2; }
target="$1"; shift
start=$SECONDS
bin="$(cross_build "$target" "$@")"
log "built $bin in $((SECONDS - start)) s: $(stat -c %s "$bin") bytes"
file "$bin" 2>/dev/null || true
