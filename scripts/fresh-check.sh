#!/usr/bin/env bash
# Before a release: the README's two commands the way a new user meets them. Removes what the
# scripts install (the cross toolchains and rustup targets, GStreamer dev packages, Chromium, the
# qemu and ONNX Runtime caches in .cache/, target/), clones the committed HEAD fresh, then runs
# scripts/demo.sh and scripts/test.sh in the clone and reports each one's wall time and result.
# Needs root (apt-get purge). Takes as long as a CI run plus the demo (~35 min on 2 cores).
# Usage: scripts/fresh-check.sh --yes [--remove-only]     (log: /tmp/edge-agent-fresh/fresh-check.log)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(cd "${EDGE_AGENT_SHARED:-$REPO/../shared}" && pwd)"
[ "${1:-}" = --yes ] || { sed -n '2,7p' "$0" >&2; echo "error: this purges packages; pass --yes" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "error: run as root (it purges Debian packages)" >&2; exit 2; }
WORK="${FRESH_DIR:-/tmp/edge-agent-fresh}"
log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

log "removing what the scripts install"
installed=()
for p in gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross \
  gcc-arm-linux-gnueabihf g++-arm-linux-gnueabihf libc6-dev-armhf-cross \
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-libav chromium; do
  dpkg -s "$p" >/dev/null 2>&1 && installed+=("$p")
done
if [ ${#installed[@]} -gt 0 ]; then
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${installed[@]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get autoremove -y -q >&2
fi
for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  rustup target list --installed | grep -qx "$t" && rustup target remove "$t" >&2
done
rm -rf "$REPO/.cache" "$REPO/target" "$WORK"
[ "${2:-}" = --remove-only ] && { log "removed; --remove-only: not running the scripts"; exit 0; }

# The clone sits beside a link to the mirror, as the README's layout has it.
mkdir -p "$WORK"
git clone -q "$REPO" "$WORK/main"
ln -s "$SHARED" "$WORK/shared"
result() { # NAME SCRIPT
  local t0=$SECONDS rc=0
  (cd "$WORK/main" && env -u EDGE_AGENT_SHARED -u ORT_DYLIB_PATH bash "$2") >"$WORK/$1.log" 2>&1 || rc=$?
  printf '%s: exit %s in %dm%02ds (%s)\n' "$2" "$rc" $(((SECONDS - t0) / 60)) $(((SECONDS - t0) % 60)) "$WORK/$1.log" \
    | tee -a "$WORK/fresh-check.log" >&2
  return "$rc"
}
log "fresh clone of $(git -C "$REPO" rev-parse --short HEAD) in $WORK/main"
echo "commit $(git -C "$REPO" rev-parse HEAD), $(date -u +%FT%TZ)" >"$WORK/fresh-check.log"
demo_rc=0; result demo scripts/demo.sh || demo_rc=$?
test_rc=0; result test scripts/test.sh || test_rc=$?
grep -E '^test result:' "$WORK/test.log" | awk '{p+=$4; f+=$6} END {printf "cargo test: %d passed, %d failed\n", p, f}' \
  | tee -a "$WORK/fresh-check.log" >&2
[ "$demo_rc" -eq 0 ] && [ "$test_rc" -eq 0 ]
