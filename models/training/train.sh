#!/usr/bin/env bash
# One command for our plate OCR: installs the OFL plate font (Debian fonts-opendin), builds the
# pinned CPU environment in .cache/ocr-venv from PyPI, trains and exports ONNX into models/.
# Arguments go to train_ocr.py, e.g.:
#   models/training/train.sh --variant shippable --minutes 60
#   models/training/train.sh --variant real --minutes 20 --init .cache/ocr-train/vn_plate_ocr_ea_10x37_64x128_params.npz
# Never runs in CI (CI checks the generator and the exported model's outputs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"
require_shared
need_apt fonts-opendin python3-venv
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
exec "$VENV/bin/python" models/training/train_ocr.py --shared "$SHARED" "$@"
