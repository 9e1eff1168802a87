#!/usr/bin/env bash
# Checks that the set-up helpers whose output callers capture (`X="$(helper ...)"`) print only their
# result on stdout while they install things: apt-get, pip, rustup and dpkg-deb are replaced by
# stand-ins on PATH that write noise to stdout, as the real ones do, and every helper is run down its
# installing branch. Issue 22: apt's log once ended up in cross/test-aarch64.sh's BIN on a fresh
# machine. Runs in seconds, installs nothing. Usage: scripts/check-quiet-helpers.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SHIM="$(mktemp -d)"
trap 'rm -rf "$SHIM"' EXIT
mkdir -p "$SHIM/bin" "$SHIM/cache" "$SHIM/target"

# dpkg says every package is missing; the installers print to stdout like the real ones.
cat >"$SHIM/bin/dpkg" <<'SH'
#!/bin/sh
exit 1
SH
cat >"$SHIM/bin/apt-get" <<'SH'
#!/bin/sh
echo "Get:1 http://stand-in bookworm InRelease [151 kB]"
for a in "$@"; do [ "$a" = download ] && touch qemu-user_10_amd64.deb; done
exit 0
SH
cat >"$SHIM/bin/dpkg-deb" <<'SH'
#!/bin/sh
echo "dpkg-deb: extracting"
mkdir -p "$3/usr/bin" && touch "$3/usr/bin/qemu-aarch64" && chmod +x "$3/usr/bin/qemu-aarch64"
SH
cat >"$SHIM/bin/rustup" <<'SH'
#!/bin/sh
[ "$2" = list ] && exit 0
echo "info: downloading component 'rust-std'"
SH
# python3 -m pip download … prints; python3 - DIR VERSION (the wheel extraction) makes the library.
cat >"$SHIM/bin/python3" <<'SH'
#!/bin/sh
if [ "$1" = "-m" ] && [ "$2" = venv ]; then
  mkdir -p "$3/bin" && printf '#!/bin/sh\necho "Collecting numpy"\n' >"$3/bin/pip" && cp "$3/bin/pip" "$3/bin/python"
  chmod +x "$3/bin/pip" "$3/bin/python"; echo "created venv"; exit 0
fi
if [ "$1" = "-m" ]; then echo "Collecting onnxruntime"; exit 0; fi
if [ "$1" = "-" ]; then cat >/dev/null; echo "extracted"; touch "$2/libonnxruntime.so.$3"; exit 0; fi
exec /usr/bin/env -u PATH python3 "$@"
SH
chmod +x "$SHIM/bin"/*

fails=0
expect() { # NAME EXPECTED ACTUAL
  if [ "$2" = "$3" ]; then echo "ok: $1 printed only its result" >&2
  else echo "FAIL: $1 printed [$3], expected [$2]" >&2; fails=$((fails + 1)); fi
}

out="$(PATH="$SHIM/bin:$PATH" bash -c 'source "$1/lib.sh"; need_apt some-package' _ "$HERE" 2>/dev/null)"
expect need_apt "" "$out"

out="$(PATH="$SHIM/bin:$PATH" bash -c 'source "$1/lib.sh"; CACHE="$2"; fetch_ort 9.9.9' _ "$HERE" "$SHIM/cache" 2>/dev/null)"
expect fetch_ort "$SHIM/cache/onnxruntime-9.9.9/libonnxruntime.so.9.9.9" "$out"

bin="$SHIM/target/aarch64-unknown-linux-gnu/cross-check/edge-agent"
mkdir -p "$(dirname "$bin")" && touch "$bin" && chmod +x "$bin"
out="$(PATH="$SHIM/bin:$PATH" CARGO_TARGET_DIR="$SHIM/target" CROSS_PROFILE=cross-check CROSS_REUSE=1 \
  bash -c 'source "$1/../cross/lib.sh"; cross_build aarch64-unknown-linux-gnu' _ "$HERE" 2>/dev/null)"
expect cross_build "$bin" "$out"

out="$(PATH="$SHIM/bin:$PATH" bash -c 'source "$1/../cross/lib.sh"; CROSS_CACHE="$2"; fetch_qemu' _ "$HERE" "$SHIM/cache" 2>/dev/null)"
case "$out" in
  "$SHIM"/cache/qemu-*/usr/bin) [ -x "$out/qemu-aarch64" ] && expect fetch_qemu "$out" "$out" || expect fetch_qemu "a directory with qemu-aarch64" "$out" ;;
  *) expect fetch_qemu "$SHIM/cache/qemu-…/usr/bin" "$out" ;;
esac

out="$(PATH="$SHIM/bin:$PATH" bash -c 'source "$1/lib.sh"; CACHE="$2"; plategen_python' _ "$HERE" "$SHIM/cache" 2>/dev/null)"
expect plategen_python "$SHIM/cache/plategen-venv/bin/python" "$out"

[ "$fails" -eq 0 ] || { echo "check-quiet-helpers: $fails helper(s) print more than their result" >&2; exit 1; }
echo "check-quiet-helpers: all 5 helpers print only their result" >&2
