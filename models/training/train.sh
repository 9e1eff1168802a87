#!/usr/bin/env bash
# One command for our plate OCR: installs the licensed plate fonts (fonts.sh), builds the
# pinned CPU environment in .cache/ocr-venv from PyPI, trains and exports ONNX into models/.
# The CTC reader (train_ctc.py, the one that ships) by default; `--model slot` runs the fixed-slot
# trainer (train_ocr.py). Other arguments go to the trainer, e.g.:
#   models/training/train.sh --variant shippable --wall-minutes 85
#   models/training/train.sh --model slot --variant shippable --minutes 60
# Never runs in CI (CI checks the generator and the exported model's outputs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
require_shared
need_apt python3-venv
# the synthetic plates' licensed fonts: the mix fonts.sh prints (OSP-DIN and five condensed sans
# fonts), unless $PLATEGEN_FONTS names others (the first weights: OSP-DIN.ttf alone)
mix="$("$REPO/models/training/fonts.sh")"
export PLATEGEN_FONTS="${PLATEGEN_FONTS:-$mix}"
VENV="$CACHE/ocr-venv"
REQ="$REPO/models/training/requirements.txt"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$VENV/requirements.txt"; then
  log "building the training environment in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --no-cache-dir -r "$REQ" >&2
  cp "$REQ" "$VENV/requirements.txt"
fi
cd "$REPO"
TRAINER=models/training/train_ctc.py
if [ "${1:-}" = "--model" ]; then
  case "${2:-}" in
    ctc) ;;
    slot) TRAINER=models/training/train_ocr.py ;;
    *) echo "error: --model ${2:-}: use ctc (default) or slot" >&2; exit 2 ;;
  esac
  shift 2
fi
exec "$VENV/bin/python" "$TRAINER" --shared "$SHARED" "$@"
