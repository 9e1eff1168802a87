#!/usr/bin/env bash
# The demo: builds the agent, fetches and verifies the models from the mirror, checks the example
# configs, then runs the agent on a real Vietnamese junction clip with real models — tracking, plate
# reading and the junction's rules (the clip is also played backwards, so every vehicle drives the
# wrong way) — with events published on the embedded MQTT broker and read back by `edge-agent watch`.
# Usage: scripts/demo.sh   (output in .cache/demo/)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
setup_env
cd "$REPO"

log "building edge-agent (release)"
cargo build --release --locked
BIN="$REPO/target/release/edge-agent"
OUT="$CACHE/demo"
rm -rf "$OUT"
mkdir -p "$OUT"

log "edge-agent version"
"$BIN" version
log "fetching and verifying models from $EDGE_AGENT_MIRROR"
"$BIN" models fetch
"$BIN" models verify
log "checking the example site configs"
"$BIN" check configs/*.toml

CLIP="$SHARED/footage/video/vn_citycam_haiphong.mp4"
log "the junction clip played backwards (ffmpeg): every vehicle now drives against its lane"
ffmpeg -v error -y -i "$CLIP" -vf reverse -an -c:v libx264 -preset ultrafast -pix_fmt yuv420p "$OUT/reversed.mp4"

# The junction camera's config (configs/junction-rules.toml) with the demo's clip, a spool under
# .cache, the embedded broker on a spare port, and the integration centre's key pinned (it signs
# the requests for the clips the device keeps). The operator's `watch` reads the embedded broker
# directly, and a clip comes as one burst of 256 KiB pieces (about 6 MB here): the broker's log
# must hold a whole clip (the 16 KiB default keeps the last two pieces; a site has its own
# broker, docs/delivery.md).
PORT=18830
CENTRE_KEY="$("$BIN" sign-remote --key "$OUT/centre.key" --public)"
printf '[remote]\ncentre_keys = ["%s"]\n' "$CENTRE_KEY" |
  junction_config "$OUT/agent.toml" "$OUT/reversed.mp4" "$OUT/spool" \
    "embedded_listen = \"127.0.0.1:$PORT\"" "embedded_log_kb = 16384"

log "edge-agent watch: the operator's view, subscribed to the agent's embedded broker; it asks for each violation's clip (kept on the device) with a signed evidence/get"
"$BIN" watch --broker "mqtt://127.0.0.1:$PORT" --topic-prefix haiphong/traffic --clean-session \
  --out "$OUT/evidence" --fetch-clips --centre-key "$OUT/centre.key" \
  --idle-timeout 20 --timeout 180 > "$OUT/watch.txt" 2> "$OUT/watch.log" &
WATCH=$!
log "edge-agent run: the agent on the clip, paced like a live camera"
"$BIN" run --config "$OUT/agent.toml" --events "$OUT/events.jsonl" 2> "$OUT/agent.log"
grep -E "camera summary|stopped" "$OUT/agent.log" || true
wait "$WATCH" || true
log "what the operator saw (edge-agent watch)"
cat "$OUT/watch.txt"
log "the clips fetched from the device, played by ffprobe, and the device's audit records of them leaving"
for clip in "$OUT"/evidence/*.mp4; do
  [ -e "$clip" ] || { echo "no clip was fetched"; break; }
  echo "$(basename "$clip"): $(ffprobe -v error -show_entries format=duration:stream=codec_name,width,height,nb_frames -of compact=p=0:nk=1 "$clip" | tr '\n' ' ')"
done
grep '"evidence.clip_sent"' "$OUT/spool/audit.jsonl" | head -3 || true
log "edge-agent verify: what the operator received, checked offline against the device's public key"
DEVICE_KEY="$("$BIN" sign-remote --key "$OUT/spool/device.key" --public)"
"$BIN" verify --key "$DEVICE_KEY" --evidence "$OUT/evidence" "$OUT/evidence/events.jsonl" | tail -4

log "the same clip forward through the whole pipeline, as fast as possible (edge-agent replay)"
"$BIN" replay --config configs/junction-rules.toml "$CLIP" --events "$OUT/replay.jsonl" 2>/dev/null

log "plates on still images: printed format, confidence, accuracy against the ground truth"
"$BIN" plates "$SHARED"/footage/images/*.jpg > "$OUT/plates.jsonl"
"$BIN" plates --report "$SHARED/footage" | tail -2
log "done: events in $OUT/events.jsonl, evidence JPEGs in $OUT/evidence, logs in $OUT/*.log"
