# Shared set-up for scripts/demo.sh and scripts/test.sh: system packages, the ONNX Runtime library
# from the PyPI wheel, and the environment the agent and tests read. Idempotent: each step is
# skipped when its result is already there. Source it; do not run it.

set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache"
ORT_VERSION=1.31.1
ORT_OLD_VERSION=1.20.1   # only for the test that an old library is refused
SHARED="${EDGE_AGENT_SHARED:-$REPO/../shared}"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

need_apt() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# Extracts libonnxruntime.so.VERSION from the PyPI wheel into $CACHE/onnxruntime-VERSION/.
fetch_ort() {
  local version="$1" dir="$CACHE/onnxruntime-$1"
  local lib="$dir/libonnxruntime.so.$version"
  if [ ! -f "$lib" ]; then
    log "fetching ONNX Runtime $version from the PyPI wheel"
    mkdir -p "$dir/whl"
    python3 -m pip download -q --no-deps --only-binary=:all: "onnxruntime==$version" -d "$dir/whl"
    python3 - "$dir" "$version" <<'PY'
import sys, zipfile, glob, os
d, v = sys.argv[1], sys.argv[2]
whl = glob.glob(os.path.join(d, "whl", f"onnxruntime-{v}-*.whl"))[0]
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            with open(os.path.join(d, base), "wb") as f:
                f.write(z.read(name))
PY
    rm -rf "$dir/whl"
  fi
  printf '%s\n' "$lib"
}

require_shared() {
  if [ ! -f "$SHARED/models/MODELS.md" ] || [ ! -d "$SHARED/footage" ]; then
    echo "error: the models/footage mirror is missing at $SHARED (expected models/ and footage/)." >&2
    echo "       Put the shared folder beside the checkout or set EDGE_AGENT_SHARED." >&2
    exit 1
  fi
}

setup_env() {
  need_apt pkg-config mosquitto mosquitto-clients openssl nasm procps
  # openh264 (bundled C++ source); the RTSP test server (tests/fixtures/rtsp_server.py) and `kill -STOP` for its stall test
  # packaging/test-deb.sh: systemd-analyze for the unit, adduser for the package's postinst, strip
  need_apt systemd adduser binutils
  need_apt g++ procps ffmpeg python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  ORT_DYLIB_PATH="$(fetch_ort "$ORT_VERSION")"
  export ORT_DYLIB_PATH
  export EDGE_AGENT_MODEL_CACHE="$CACHE/models"
  export EDGE_AGENT_MIRROR="$SHARED/models"
  export EDGE_AGENT_SHARED="$SHARED"
  export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
}
