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
    rustup target add "$target"
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
    dpkg-deb -x "$a"/cache/qemu-user_*.deb "$d.tmp"
    rm -rf "$d" && mv "$d.tmp" "$d"
    rm -f "$a"/cache/qemu-user_*.deb
  fi
  printf '%s\n' "$d/usr/bin"
}

# Builds the release binary for TARGET with extra cargo args; prints the binary's path.
cross_build() {
  local target="$1"; shift
  cross_toolchain "$target"
  local bin="$REPO/target/$target/release/edge-agent"
  # CROSS_REUSE=1 runs the binary already built (iterating on the checks, not on the code).
  if [ "${CROSS_REUSE:-0}" = 1 ] && [ -x "$bin" ]; then
    log "reusing $bin (CROSS_REUSE=1)"
    printf '%s\n' "$bin"
    return
  fi
  log "cargo build --release --target $target $*"
  (cd "$REPO" && cargo build -q --release --locked -p edge-agent --target "$target" "$@" >&2)
  printf '%s\n' "$bin"
}
