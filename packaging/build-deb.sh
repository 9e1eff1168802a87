#!/usr/bin/env bash
# Builds the edge-agent .deb with dpkg-deb from the [package.metadata.deb] table of
# edge-agent/Cargo.toml — the same table `cargo deb` reads — so CI needs no `cargo install cargo-deb`
# (a few minutes of compiling on a 2-core machine; see packaging/README.md).
#
# Usage: packaging/build-deb.sh [--profile release|debug] [--out DIR]
#   release (default): the binary shipped to devices (`cargo build --release`).
#   debug: the test build already made by `cargo test`, stripped; for checking the package layout.
# Prints the path of the .deb on stdout.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE=release
OUT="$REPO/target/debian"
while [ $# -gt 0 ]; do
  case "$1" in
    --profile) PROFILE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "usage: $0 [--profile release|debug] [--out DIR]" >&2; exit 2 ;;
  esac
done
case "$PROFILE" in release|debug) ;; *) echo "error: --profile must be release or debug" >&2; exit 2 ;; esac

cd "$REPO"
TARGET_DIR="${CARGO_TARGET_DIR:-$REPO/target}"
flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build -q --locked "${flag[@]}" -p edge-agent --bin edge-agent >&2
BIN="$TARGET_DIR/$PROFILE/edge-agent"
[ -x "$BIN" ] || { echo "error: $BIN was not built" >&2; exit 1; }

STAGE="$(mktemp -d)"
chmod 0755 "$STAGE"
trap 'rm -rf "$STAGE"' EXIT
# Stage the assets and write DEBIAN/ from the metadata; python3 (tomllib) reads the TOML.
/usr/bin/python3 - "$REPO" "$STAGE" "$BIN" <<'PY'
import glob, os, shutil, subprocess, sys, tomllib
repo, stage, binary = sys.argv[1:4]
crate = os.path.join(repo, "edge-agent")
with open(os.path.join(crate, "Cargo.toml"), "rb") as f:
    pkg = tomllib.load(f)["package"]
with open(os.path.join(repo, "Cargo.toml"), "rb") as f:
    ws = tomllib.load(f)["workspace"]["package"]
meta = pkg["metadata"]["deb"]
name = meta.get("name", pkg["name"])
version = ws["version"] if isinstance(pkg.get("version"), dict) else pkg["version"]

for src, dest, mode in meta["assets"]:
    if src.startswith("target/release/"):
        sources = [binary]  # the profile asked for, as cargo-deb resolves target/release/
    else:
        sources = sorted(glob.glob(os.path.join(crate, src)))
        sources = [s for s in sources if os.path.isfile(s)]
    if not sources:
        sys.exit(f"error: asset {src} matched no file")
    for s in sources:
        d = os.path.join(stage, dest.lstrip("/"))
        if dest.endswith("/"):
            d = os.path.join(d, os.path.basename(s))
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copyfile(s, d)
        os.chmod(d, int(mode, 8))
        if s == binary:
            subprocess.run(["strip", "--strip-unneeded", d], check=True)

# $auto: the packages that provide the binary's shared libraries (ldd + dpkg -S).
deps = []
ldd = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
for line in ldd.splitlines():
    if "=>" not in line:
        continue
    path = line.split("=>")[1].split("(")[0].strip()
    if not path.startswith("/"):
        continue
    real = os.path.realpath(path)
    for p in (path, real, "/usr" + path, "/usr" + real):
        q = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if q.returncode == 0:
            owner = q.stdout.split(":")[0].strip()
            if owner not in deps:
                deps.append(owner)
            break
depends = []
for d in (x.strip() for x in meta.get("depends", "$auto").split(",")):
    depends.extend(deps if d == "$auto" else [d])

arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True, check=True).stdout.strip()
size_kb = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(stage) for f in fs) // 1024 + 1
desc = pkg.get("description", name)
ext = " ".join(meta.get("extended-description", "").split())
long_lines, line = [], ""
for word in ext.split():
    if len(line) + len(word) + 1 > 78:
        long_lines.append(line)
        line = word
    else:
        line = f"{line} {word}".strip()
if line:
    long_lines.append(line)
control = [
    f"Package: {name}",
    f"Version: {version}-1",
    f"Architecture: {arch}",
    f"Maintainer: {meta['maintainer']}",
    f"Installed-Size: {size_kb}",
    f"Depends: {', '.join(depends)}",
    f"Section: {meta.get('section', 'misc')}",
    f"Priority: {meta.get('priority', 'optional')}",
    f"Description: {desc}",
] + [f" {l}" for l in long_lines]
os.makedirs(os.path.join(stage, "DEBIAN"), exist_ok=True)
with open(os.path.join(stage, "DEBIAN/control"), "w") as f:
    f.write("\n".join(control) + "\n")
with open(os.path.join(stage, "DEBIAN/conffiles"), "w") as f:
    f.write("".join(c + "\n" for c in meta.get("conf-files", [])))
scripts = os.path.join(crate, meta["maintainer-scripts"])
for s in ("preinst", "postinst", "prerm", "postrm"):
    p = os.path.join(scripts, s)
    if os.path.isfile(p):
        shutil.copyfile(p, os.path.join(stage, "DEBIAN", s))
        os.chmod(os.path.join(stage, "DEBIAN", s), 0o755)
with open(os.path.join(stage, "DEBIAN/.name"), "w") as f:
    f.write(f"{name}_{version}-1_{arch}.deb")
PY
NAME="$(cat "$STAGE/DEBIAN/.name")"
rm "$STAGE/DEBIAN/.name"
mkdir -p "$OUT"
# gzip is several times faster than xz for the same size class here; the binary dominates.
dpkg-deb --root-owner-group -Zgzip --build "$STAGE" "$OUT/$NAME" >&2
echo "$OUT/$NAME"
