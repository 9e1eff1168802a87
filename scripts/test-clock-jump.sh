#!/usr/bin/env bash
# The clock-jump test (issue 24; run by scripts/test.sh): the whole agent under a fake wall clock
# (Debian libfaketime; the monotonic clock stays real, as after an NTP step), on the junction clip
# served over RTSP on 127.0.0.1 like a live camera, with the real models and rules.
#
#   1. 25 s with the broker down: events wait in the spool (evidence retention set to 1 hour).
#   2. The wall clock steps 2 hours forward. The spooled events must not expire: their ages follow
#      the step.
#   3. mosquitto and a consumer come up (the consumer subscribed before the agent can reach the
#      broker): every spooled event and every new one arrives, evidence
#      included, in seq order with no gap.
#   4. The wall clock steps back to 5 minutes behind real time (2 h 5 min backwards). Frames keep
#      flowing and events keep arriving, still in seq order.
#
# Then: the audit log records both steps (`clock.step`) and verifies, `health` counts them
# (`spool.clock_steps`), nothing expired, and events say which clock stamped them (`receipt`).
#
# Usage: scripts/test-clock-jump.sh [path/to/edge-agent]   (default: target/debug/edge-agent)
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
BIN="${1:-$REPO/target/debug/edge-agent}"
FAKETIME_LIB="$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -1 || true)"
fail() { echo "test-clock-jump: FAIL: $*" >&2; exit 1; }
ok() { echo "test-clock-jump: ok: $*" >&2; }
[ -x "$BIN" ] || fail "$BIN is missing: build it first (cargo build)"
[ -n "$FAKETIME_LIB" ] || fail "libfaketime is missing; scripts/lib.sh need_apt installs it (Debian faketime)"
command -v mosquitto >/dev/null || fail "mosquitto is missing; scripts/lib.sh need_apt installs it"
command -v ffmpeg >/dev/null || fail "ffmpeg is missing; scripts/lib.sh need_apt installs it"
CLIP_SRC="$SHARED/footage/video/vn_citycam_haiphong.mp4"
[ -s "$CLIP_SRC" ] || fail "$CLIP_SRC is missing: the shared footage must sit beside the repo (or set EDGE_AGENT_SHARED)"

WORK="$(mktemp -d /tmp/edge-agent-clock-jump.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RTSP_PORT="$(free_port)" MQTT_PORT="$(free_port)"

# short GOP so every reconnect starts on a keyframe at once
ffmpeg -v error -y -i "$CLIP_SRC" -an -c:v libx264 -preset ultrafast -pix_fmt yuv420p -g 20 "$WORK/clip.mp4"
/usr/bin/python3 "$REPO/tests/fixtures/rtsp_server.py" --port "$RTSP_PORT" --file "$WORK/clip.mp4" > "$WORK/rtsp.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do grep -q READY "$WORK/rtsp.log" && break; sleep 0.2; done
grep -q READY "$WORK/rtsp.log" || { cat "$WORK/rtsp.log" >&2; fail "the RTSP server did not start"; }

# configs/junction-rules.toml on this camera, the broker on a port nothing listens on yet
junction_config "$WORK/agent.toml" "rtsp://127.0.0.1:$RTSP_PORT/cam" "$WORK/spool" \
  "broker = \"mqtt://127.0.0.1:$MQTT_PORT\"" "reconnect_min_ms = 100" "reconnect_max_s = 1" \
  "health_interval_s = 2" <<'TOML'
[privacy.retention]
evidence_hours = 1
event_hours = 1
TOML
"$BIN" check "$WORK/agent.toml" >/dev/null 2>&1 || { "$BIN" check "$WORK/agent.toml" >&2 || true; fail "check refused the config"; }

step() {  # the fake clock's offset from real time, read by the agent at every clock call
  echo "$1" > "$WORK/faketime"
  date -u +%s.%N > "$WORK/step-$2"
}
step "+0" 0
(cd "$WORK" && exec env LD_PRELOAD="$FAKETIME_LIB" FAKETIME_TIMESTAMP_FILE="$WORK/faketime" \
  FAKETIME_NO_CACHE=1 DONT_FAKE_MONOTONIC=1 \
  "$BIN" --log-format text run --config "$WORK/agent.toml" --events "$WORK/events.jsonl" 2> "$WORK/agent.log") &
AGENT=$!
PIDS+=($AGENT)
sleep 25
kill -0 "$AGENT" 2>/dev/null || { tail -20 "$WORK/agent.log" >&2; fail "the agent died"; }
spooled="$(wc -l < "$WORK/events.jsonl" 2>/dev/null || echo 0)"
[ "$spooled" -gt 0 ] || { tail -20 "$WORK/agent.log" >&2; fail "no event spooled in 25 s with the broker down"; }
ok "phase 1: $spooled events spooled with the broker down"

step "+2h" 1
sleep 8
# mosquitto on a port of its own: the consumer subscribes there first; only then does the agent's
# broker address lead to it (a loopback forwarder), so no spooled event goes out before anyone
# listens (mosquitto keeps nothing for a subscription that does not exist yet)
BROKER_PORT="$(free_port)"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$BROKER_PORT" > "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
# the consumer runs on the real clock; each line stamped with when it arrived
("$BIN" --log-format text watch --broker "mqtt://127.0.0.1:$BROKER_PORT" --topic-prefix haiphong/traffic \
   --json --timeout 120 2> "$WORK/watch.log" \
   | python3 -u -c 'import sys, time
for line in sys.stdin: sys.stdout.write(f"{time.time():.3f} {line}")' > "$WORK/consumer.txt") &
PIDS+=($!)
for _ in $(seq 100); do grep -q "connected session_present" "$WORK/watch.log" 2>/dev/null && break; sleep 0.1; done
grep -q "connected session_present" "$WORK/watch.log" || { cat "$WORK/watch.log" >&2; fail "the consumer did not connect"; }
sleep 1
python3 - "$MQTT_PORT" "$BROKER_PORT" <<'PY' &
import socket, sys, threading
listen, target = int(sys.argv[1]), int(sys.argv[2])
def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
server = socket.create_server(("127.0.0.1", listen))
while True:
    client, _ = server.accept()
    upstream = socket.create_connection(("127.0.0.1", target))
    for a, b in ((client, upstream), (upstream, client)):
        threading.Thread(target=pipe, args=(a, b), daemon=True).start()
PY
PIDS+=($!)
sleep 21
step "-5m" 2
sleep 25
kill -INT "$AGENT"
wait "$AGENT" 2>/dev/null || true
sleep 3

python3 - "$WORK" <<'PY' || { tail -30 "$WORK/agent.log" >&2; fail "see above"; }
import json, sys
work = sys.argv[1]
t_fwd = float(open(f"{work}/step-1").read())
t_back = float(open(f"{work}/step-2").read())
events, health = [], []
for line in open(f"{work}/consumer.txt"):
    t, _, j = line.partition(" ")
    v = json.loads(j)
    if v.get("type") == "event":
        events.append((float(t), v))
    elif str(v.get("topic", "")).endswith("/health"):
        health.append(v["payload"])
seqs = [v["seq"] for _, v in events]
assert seqs, "the consumer received no event"
print(f"consumer: {len(seqs)} events, seq {seqs[0]}..{seqs[-1]}", file=sys.stderr)
# a backlog goes out by delivery class (watchlist hits, violations, plate reads, counts, health),
# so seq need not arrive in order; none may be missing
assert min(seqs) == 1, f"the lowest seq received is {min(seqs)}: spooled events were lost"
assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"seq with gaps or duplicates: {sorted(seqs)}"
after_back = [s for t, s in zip((t for t, _ in events), seqs) if t > t_back + 3]
assert after_back, "no event after the clock stepped back: the source loop stalled"
print(f"{len(after_back)} events after the backward step", file=sys.stderr)
# images follow their event (the agent sends the alert first): count those verified later too
late = {}
for line in open(f"{work}/consumer.txt"):
    t, _, j = line.partition(" ")
    v = json.loads(j)
    if v.get("type") == "evidence":
        late[v["seq"]] = late.get(v["seq"], 0) + 1
bad = [v["event_id"] for _, v in events
       if v.get("evidence_total", 0) > v.get("evidence_verified", 0) + late.get(v["seq"], 0)]
assert not bad, f"events whose evidence did not arrive (expired?): {bad[:5]}"
assert health, "no health message"
spool = health[-1]["spool"]
print(f"health: clock_steps {spool.get('clock_steps')}, expired {spool.get('expired_events')} events "
      f"{spool.get('expired_evidence')} images", file=sys.stderr)
assert spool.get("clock_steps", 0) >= 2, spool
assert spool.get("expired_events", 0) == 0 and spool.get("expired_evidence", 0) == 0, spool
PY
ok "no seq gap or duplicate, nothing expired, frames flowed after both steps"

python3 - "$WORK/spool/audit.jsonl" <<'PY' || fail "the audit log does not record both steps"
import json, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if '"clock.step"' in l]
print(f"audit: {len(steps)} clock.step records", file=sys.stderr)
assert len(steps) >= 2, steps
PY
"$BIN" audit verify "$WORK/spool/audit.jsonl" > /dev/null || fail "the audit log does not verify after the steps"
grep -q '"time_source":"receipt"' "$WORK/events.jsonl" || fail "events do not say they were stamped at receipt"
ok "audit log records both steps and verifies; events carry time_source receipt"
echo "test-clock-jump: PASS" >&2
