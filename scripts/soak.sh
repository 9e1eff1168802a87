#!/usr/bin/env bash
# The soak: the agent for hours on a real clip served over RTSP on 127.0.0.1 and paced like a live
# camera (the Hải Phòng junction clip played backwards, about 50 events a minute with evidence;
# at the clip's end the stream ends and the agent reconnects, as to a camera), with a live consumer
# (`edge-agent watch`) or none, on the embedded broker or mosquitto on 127.0.0.1. Every 30 s it
# samples the agent's RSS, descriptors, threads, spool / evidence / audit bytes on disk and the
# broker's memory from /metrics; at the end the consumer's seq gaps and capture-to-consumer latency.
# Writes a CSV, a summary JSON and a plot (PNG) to --out (the raw event logs to .cache/soak/raw/). Not in CI: run it before every release.
#
# Usage: scripts/soak.sh [--minutes 120] [--consumer yes|no] [--broker embedded|mosquitto] [--out DIR]
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_shared
MINUTES=120 CONSUMER=yes BROKER=embedded OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES="$2"; shift 2 ;;
    --consumer) CONSUMER="$2"; shift 2 ;;
    --broker) BROKER="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    *) echo "error: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done
case "$CONSUMER" in yes|no) ;; *) echo "error: --consumer yes|no" >&2; exit 2 ;; esac
case "$BROKER" in embedded|mosquitto) ;; *) echo "error: --broker embedded|mosquitto" >&2; exit 2 ;; esac
OUT="${OUT:-$CACHE/soak/$BROKER-consumer-$CONSUMER}"
RAW="$CACHE/soak/raw/$(basename "$OUT")"   # the consumer's and the agent's event logs (large)
setup_env
need_apt python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
[ "$BROKER" = mosquitto ] && need_apt mosquitto
PY="$(plategen_python)"   # numpy + Pillow for the plot
cd "$REPO"
cargo build --release --locked
BIN="$REPO/target/release/edge-agent"
"$BIN" models fetch >&2
WORK="$(mktemp -d /tmp/edge-agent-soak.XXXXXX)"
mkdir -p "$OUT" "$RAW"
rm -f "$RAW/consumer.txt" "$RAW/events.jsonl"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RTSP_PORT="$(free_port)" MQTT_PORT="$(free_port)" API_PORT="$(free_port)"

CLIP="$CACHE/soak/reversed.mp4"
if [ ! -s "$CLIP" ]; then
  mkdir -p "$(dirname "$CLIP")"
  ffmpeg -v error -y -i "$SHARED/footage/video/vn_citycam_haiphong.mp4" -vf reverse -an \
    -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 20 "$CLIP"
fi
/usr/bin/python3 tests/fixtures/rtsp_server.py --port "$RTSP_PORT" --file "$CLIP" > "$WORK/rtsp.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q READY "$WORK/rtsp.log" && break; sleep 0.2; done
grep -q READY "$WORK/rtsp.log" || { cat "$WORK/rtsp.log" >&2; echo "error: the RTSP server did not start" >&2; exit 1; }

if [ "$BROKER" = mosquitto ]; then
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$MQTT_PORT" > "$WORK/mosquitto.conf"
  mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
  PIDS+=($!)
  sleep 0.5
fi

# configs/junction-rules.toml with the RTSP camera, spool/evidence/audit under $WORK, the API on a
# free port and the chosen broker.
if [ "$BROKER" = mosquitto ]; then MQ="broker = \"mqtt://127.0.0.1:$MQTT_PORT\""; else MQ="embedded_listen = \"127.0.0.1:$MQTT_PORT\""; fi
grep -q '^\[http\]' configs/junction-rules.toml && { echo "error: soak.sh expects no [http] in configs/junction-rules.toml" >&2; exit 1; }
printf '[http]\nlisten = "127.0.0.1:%s"\n' "$API_PORT" | junction_config "$WORK/agent.toml" "rtsp://127.0.0.1:$RTSP_PORT/cam" "$WORK/spool" "$MQ"
"$BIN" check "$WORK/agent.toml" >&2

(cd "$WORK" && exec "$BIN" run --config "$WORK/agent.toml" --events "$WORK/events.jsonl" 2> "$WORK/agent.log") &
AGENT=$!
PIDS+=($AGENT)
if [ "$CONSUMER" = yes ]; then
  sleep 3
  # each line stamped with the time it reached the consumer
  ("$BIN" watch --broker "mqtt://127.0.0.1:$MQTT_PORT" --topic-prefix haiphong/traffic --clean-session --json \
     --timeout $((MINUTES * 60 + 120)) 2> "$WORK/watch.log" \
     | "$PY" -u -c 'import sys, time
for line in sys.stdin: sys.stdout.write(f"{time.time():.3f} {line}")' > "$RAW/consumer.txt") &
  PIDS+=($!)
fi

log "soak: $MINUTES min, broker $BROKER, consumer $CONSUMER; samples in $OUT/samples.csv"
echo "t_s,rss_kb,threads,fds,spool_bytes,evidence_bytes,audit_bytes,broker_held_bytes,broker_limit_bytes,events" > "$OUT/samples.csv"
START=$(date +%s)
set +e +o pipefail   # a sample that fails (a directory not made yet) is a zero, not the end
metric() { awk -v m="$1" '$1==m {print $2; exit}' "$WORK/metrics.txt"; }
while :; do
  NOW=$(date +%s); T=$((NOW - START))
  kill -0 "$AGENT" 2>/dev/null || { tail -20 "$WORK/agent.log" >&2; echo "error: the agent died" >&2; exit 1; }
  RSS=$(awk '/^VmRSS:/ {print $2}' "/proc/$AGENT/status")
  THREADS=$(awk '/^Threads:/ {print $2}' "/proc/$AGENT/status")
  FDS=$(ls "/proc/$AGENT/fd" | wc -l)
  SPOOL=$(du -sb "$WORK/spool" 2>/dev/null | cut -f1)
  EVID=$(du -sb "$WORK/evidence" 2>/dev/null | cut -f1)
  AUDIT=$(find "$WORK" -name 'audit*' -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}')
  curl -s -m 5 "http://127.0.0.1:$API_PORT/metrics" > "$WORK/metrics.txt" || : > "$WORK/metrics.txt"
  HELD=$(metric 'edge_agent_buffer_bytes{buffer="broker"}') LIMIT=$(metric 'edge_agent_buffer_limit_bytes{buffer="broker"}')
  EVENTS=$(wc -l < "$WORK/events.jsonl" 2>/dev/null || echo 0)
  echo "$T,$RSS,$THREADS,$FDS,${SPOOL:-0},${EVID:-0},${AUDIT:-0},${HELD:-0},${LIMIT:-0},$EVENTS" >> "$OUT/samples.csv"
  [ "$T" -ge $((MINUTES * 60)) ] && break
  sleep 30
done
kill -INT "$AGENT"; wait "$AGENT" 2>/dev/null || true
sleep 3
cp "$WORK/events.jsonl" "$RAW/events.jsonl" 2>/dev/null || true
"$PY" scripts/soak_report.py "$OUT" --raw "$RAW" --title "soak: $MINUTES min, $BROKER broker, consumer $CONSUMER"
