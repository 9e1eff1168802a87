#!/usr/bin/env bash
# Installs the licensed fonts our synthetic plates are drawn in and prints the mix for
# plategen.py --fonts / $PLATEGEN_FONTS (PATH@SHARE,...). Idempotent; train.sh calls it.
#   OSP-DIN              OFL-1.1     Debian fonts-opendin          closest to the real plate font
#   Roboto Condensed     Apache-2.0  Debian fonts-roboto-unhinted
#   Bebas Neue           OFL-1.1     Debian fonts-bebas-neue
#   Oswald, Barlow Condensed, Saira Extra Condensed
#                        OFL-1.1     npm @fontsource/* (pinned below) into $CACHE/plate-fonts
# Why a mix: a reader trained on one typeface learns that typeface's glyphs (docs/plates.md:
# the one-font reader confused real plates' 7/1, 8/9 and 4-character top rows); condensed sans
# fonts around the plate font teach it the strokes every plate font shares.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
need_apt fonts-opendin fonts-roboto-unhinted fonts-bebas-neue >&2
# The machine's Node.js brings npm; Debian's nodejs/npm only where there is none.
command -v npm >/dev/null 2>&1 || need_apt nodejs npm >&2
NPM_DIR="$CACHE/plate-fonts"
PKGS=(@fontsource/oswald@5.3.0 @fontsource/barlow-condensed@5.3.0 @fontsource/saira-extra-condensed@5.3.0)
if [ ! -f "$NPM_DIR/installed-5.3.0" ]; then
  mkdir -p "$NPM_DIR"
  npm install --silent --no-audit --no-fund --prefix "$NPM_DIR" "${PKGS[@]}" >&2
  touch "$NPM_DIR/installed-5.3.0"
fi
FS="$NPM_DIR/node_modules/@fontsource"
mix=(
  /usr/share/fonts/truetype/opendin/OSP-DIN.ttf@0.40
  /usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Regular.ttf@0.08
  /usr/share/fonts/truetype/roboto/unhinted/RobotoCondensed-Bold.ttf@0.06
  /usr/share/fonts/opentype/bebas-neue/BebasNeue-Regular.otf@0.05
  /usr/share/fonts/opentype/bebas-neue/BebasNeue-Bold.otf@0.05
  "$FS/oswald/files/oswald-latin-500-normal.woff2@0.10"
  "$FS/barlow-condensed/files/barlow-condensed-latin-500-normal.woff2@0.08"
  "$FS/barlow-condensed/files/barlow-condensed-latin-600-normal.woff2@0.06"
  "$FS/saira-extra-condensed/files/saira-extra-condensed-latin-500-normal.woff2@0.12"
)
for m in "${mix[@]}"; do
  [ -f "${m%@*}" ] || { echo "error: font ${m%@*} missing after install" >&2; exit 1; }
done
(IFS=,; echo "${mix[*]}")
