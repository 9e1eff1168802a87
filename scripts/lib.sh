# Shared set-up for scripts/demo.sh (setup_env) and scripts/test.sh (setup_test_env): system
# packages, the ONNX Runtime library from the PyPI wheel, and the environment the agent and tests
# read. Idempotent: each step is skipped when its result is already there. Source it; do not run it.
# Helpers whose output callers capture (fetch_ort, cross_build, fetch_qemu) print only their result
# on stdout; installers write to stderr (scripts/check-quiet-helpers.sh checks this).

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
    # Installers write to stderr: callers capture only the result of helpers such as fetch_ort.
    $sudo apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
  fi
}

# Extracts libonnxruntime.so.VERSION from the PyPI `onnxruntime` wheel and prints its path.
# PLATFORM is a pip platform tag (`manylinux_2_28_aarch64` for the aarch64 build, cross/); without
# it, the host's wheel. Cache: $CACHE/onnxruntime-VERSION[-PLATFORM]/, filled once.
fetch_ort() {
  local version="$1" platform="${2:-}"
  local dir="$CACHE/onnxruntime-$version${platform:+-$platform}"
  local lib="$dir/libonnxruntime.so.$version"
  if [ ! -f "$lib" ]; then
    log "fetching ONNX Runtime $version${platform:+ ($platform)} from the PyPI wheel"
    rm -rf "$dir/whl" && mkdir -p "$dir/whl"
    { # pip's output goes to stderr: the caller captures only the path printed at the end
    python3 -m pip download -q --no-deps --only-binary=:all: ${platform:+--platform "$platform"} \
      "onnxruntime==$version" -d "$dir/whl"
    python3 - "$dir" "$version" <<'PY'
import sys, zipfile, glob, os
d, v = sys.argv[1], sys.argv[2]
wheels = glob.glob(os.path.join(d, "whl", f"onnxruntime-{v}-*.whl"))
if len(wheels) != 1:
    sys.exit(f"error: expected one onnxruntime {v} wheel in {d}/whl, found {wheels}")
with zipfile.ZipFile(wheels[0]) as z:
    for name in z.namelist():
        base = os.path.basename(name)
        if name.startswith("onnxruntime/capi/") and base.startswith("libonnxruntime"):
            with open(os.path.join(d, base + ".part"), "wb") as f:
                f.write(z.read(name))
            os.replace(os.path.join(d, base + ".part"), os.path.join(d, base))
PY
    } >&2
    rm -rf "$dir/whl"
    [ -f "$lib" ] || { echo "error: the onnxruntime $version wheel${platform:+ for $platform} has no libonnxruntime.so.$version" >&2; return 1; }
  fi
  printf '%s\n' "$lib"
}

# Installs tests/browser's npm packages (playwright-core, no browser download) into
# $EDGE_AGENT_NPM_DIR (default .cache/npm), again only when the lock file changed.
npm_install() {
  local dir="${EDGE_AGENT_NPM_DIR:-$CACHE/npm}" lock="$REPO/tests/browser/package-lock.json"
  if [ ! -f "$dir/node_modules/playwright-core/package.json" ] || ! cmp -s "$lock" "$dir/package-lock.json"; then
    log "installing npm packages for the browser test into $dir"
    mkdir -p "$dir"
    cp "$REPO/tests/browser/package.json" "$lock" "$dir/"
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error) >&2
  fi
  export EDGE_AGENT_NPM_DIR="$dir"
}

# Prints the python of a small pinned environment (.cache/plategen-venv) that runs the plate
# generator's tests: numpy, OpenCV and Pillow at models/training/requirements.txt's versions, and
# the OFL plate font from Debian.
plategen_python() {
  local venv="$CACHE/plategen-venv" req="$REPO/models/training/requirements.txt"
  need_apt fonts-opendin python3-venv
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
    log "building the plate generator's environment in $venv"
    {
      rm -rf "$venv"
      python3 -m venv "$venv"
      "$venv/bin/pip" install -q --no-cache-dir $(grep -E '^(numpy|pillow|opencv-python-headless)==' "$req")
      cp "$req" "$venv/requirements.txt"
    } >&2
  fi
  printf '%s\n' "$venv/bin/python"
}

require_shared() {
  if [ ! -f "$SHARED/models/MODELS.md" ] || [ ! -d "$SHARED/footage" ]; then
    echo "error: the models/footage mirror is missing at $SHARED (expected models/ and footage/)." >&2
    echo "       Put the shared folder beside the checkout or set EDGE_AGENT_SHARED." >&2
    exit 1
  fi
}

# What the demo needs: the build's C tools (openh264 is bundled C++ with nasm), ffmpeg for the
# reversed clip, ONNX Runtime and the model cache. Nothing only the tests use (issue 22: the demo's
# first run also installed Chromium and the browser driver).
setup_env() {
  need_apt pkg-config nasm g++ procps ffmpeg
  ORT_DYLIB_PATH="$(fetch_ort "$ORT_VERSION")"
  export ORT_DYLIB_PATH
  export EDGE_AGENT_MODEL_CACHE="$CACHE/models"
  export EDGE_AGENT_MIRROR="$SHARED/models"
  export EDGE_AGENT_SHARED="$SHARED"
  export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
}

# setup_env plus what only the tests use.
setup_test_env() {
  setup_env
  need_apt mosquitto mosquitto-clients openssl
  # scripts/test-clock-jump.sh: the whole agent under a stepped wall clock
  need_apt faketime
  # the RTSP test server (tests/fixtures/rtsp_server.py) and `kill -STOP` for its stall test
  need_apt python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  # packaging/test-deb.sh: systemd-analyze for the unit, adduser for the package's postinst, strip
  need_apt systemd adduser binutils
  # the installer page's browser test (tests/api.rs): Debian's Chromium driven by playwright-core
  need_apt chromium
  # The machine's Node.js brings npm; Debian's nodejs/npm only where there is none.
  command -v npm >/dev/null 2>&1 || need_apt nodejs npm
  npm_install
}

# configs/junction-rules.toml made into one run's config (demo, soak, clock-jump test): the camera at
# URL, the spool at SPOOL, each MQTT_LINE added at the top of [mqtt]; TOML on stdin is appended.
# Usage: junction_config DST URL SPOOL [MQTT_LINE...] < extra.toml
junction_config() {
  python3 -c '
import re, sys
src, dst, url, spool, *mqtt = sys.argv[1:]
text = open(src).read()
text = re.sub(r"(?m)^url = \".*\"$", f"url = \"{url}\"", text, count=1)
text = re.sub(r"(?m)^spool_dir = \".*\"$", f"spool_dir = \"{spool}\"", text)
text = re.sub(r"(?m)^\[mqtt\]$", "\n".join(["[mqtt]", *mqtt]), text)
extra = sys.stdin.read()
open(dst, "w").write(text + ("\n" + extra if extra.strip() else ""))
' "$REPO/configs/junction-rules.toml" "$@"
}
