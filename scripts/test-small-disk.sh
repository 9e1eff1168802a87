#!/usr/bin/env bash
# The small-disk test (issue 24; run by scripts/test.sh, needs root for the mount): the spool on a
# 24 MiB tmpfs, its size bound (1024 MiB) far above the disk, the broker down. 400 events with a
# full-size evidence frame (about 50 MiB) go in: every one is accepted, the disk stops at
# [storage].min_free_mb free, the oldest undelivered data is dropped and counted (`disk_low`,
# `disk_evictions`). Then the broker comes up: the newest events arrive in seq order with the
# dropped ones as the only gaps, the `health` message says what was dropped, and the spool and the
# audit log are intact.
#
# Usage: scripts/test-small-disk.sh [path/to/edge-agent]   (default: target/debug/edge-agent)
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${1:-$REPO/target/debug/edge-agent}"
fail() { echo "test-small-disk: FAIL: $*" >&2; exit 1; }
ok() { echo "test-small-disk: ok: $*" >&2; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (it mounts a tmpfs)"
[ -x "$BIN" ] || fail "$BIN is missing: build it first (cargo build)"
command -v mosquitto >/dev/null || fail "mosquitto is missing; scripts/lib.sh need_apt installs it"

WORK="$(mktemp -d /tmp/edge-agent-small-disk.XXXXXX)"
mkdir -p "$WORK/disk"
mount -t tmpfs -o size=24m edge-agent-small-disk "$WORK/disk"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$WORK/disk" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
cat > "$WORK/agent.toml" <<EOF
[device]
site_id = "site-1"
device_id = "dev-1"

[mqtt]
broker = "mqtt://127.0.0.1:$PORT"
client_id = "agent-small-disk"
reconnect_min_ms = 50
reconnect_max_s = 1
health_interval_s = 1

[storage]
spool_dir = "$WORK/disk/spool"
max_size_mb = 1024
min_free_mb = 8
audit_max_mb = 1
EOF

# check: the budget does not fit this disk, and says by how much
out="$("$BIN" check "$WORK/agent.toml" 2>&1)" || fail "check refused the config: $out"
grep -q "less than the storage budget" <<<"$out" || fail "check did not compare the budget with the disk: $out"
ok "check warns that 1024 MiB does not fit the 24 MiB disk"

# fill it with the broker down: every event accepted, the disk never full
set +e
"$BIN" --log-format text emit --config "$WORK/agent.toml" --count 400 --quiet --report \
  --flush-timeout 0 > "$WORK/fill.json" 2> "$WORK/fill.log"
rc=$?
set -e
[ "$rc" -eq 2 ] || { tail -20 "$WORK/fill.log" >&2; fail "emit exited $rc (2 = accepted, left in the spool)"; }
python3 - "$WORK/fill.json" <<'PY' || fail "the fill report is wrong: $(cat "$WORK/fill.json")"
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
s = r["spool"]
print(f"fill: {r['evidence_bytes_per_event']} B evidence per event, spool {s['bytes']} B, "
      f"{s['events']} events / {s['evidence']} images held, evicted {s['evicted_events']} events "
      f"{s['evicted_evidence']} images, disk_low {s['disk_low']}, disk_evictions {s['disk_evictions']}", file=sys.stderr)
assert r["evidence_bytes_per_event"] * 400 > 24 << 20, "the events must not fit the disk"
assert s["disk_low"] and s["disk_evictions"] > 0 and s["evicted_evidence"] > 0, s
PY
free_kb="$(df -k --output=avail "$WORK/disk" | tail -1)"
[ "$free_kb" -ge 4096 ] || fail "only $free_kb KiB left on the disk: the reserve was not kept"
ok "400 events accepted on a 24 MiB disk, $((free_kb / 1024)) MiB still free, drops counted"

# space returns as the broker comes up: the newest events arrive in order, drops are the only gaps
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$PORT" > "$WORK/mosquitto.conf"
mosquitto -c "$WORK/mosquitto.conf" > "$WORK/mosquitto.log" 2>&1 &
PIDS+=($!)
sleep 0.5
"$BIN" watch --broker "mqtt://127.0.0.1:$PORT" --topic-prefix edge --clean-session --json \
  --timeout 60 > "$WORK/watch.jsonl" 2> "$WORK/watch.log" &
WATCH=$!
PIDS+=($WATCH)
sleep 1
"$BIN" --log-format text emit --config "$WORK/agent.toml" --count 1 --quiet --report \
  --flush-timeout 60 > "$WORK/drain.json" 2> "$WORK/drain.log" \
  || { tail -20 "$WORK/drain.log" >&2; fail "the spool did not drain once the broker was up"; }
sleep 2
kill "$WATCH" 2>/dev/null || true
python3 - "$WORK/watch.jsonl" "$WORK/fill.json" <<'PY' || fail "what the consumer got is wrong"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith("{")]
fill = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])["spool"]
events = [m for m in lines if m.get("type") == "event"]
seqs = [e["seq"] for e in events]
assert seqs, f"no event reached the consumer ({len(lines)} lines)"
assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), "seq out of order or repeated"
assert seqs[-1] == 401, f"the newest event (seq 401) is missing: last {seqs[-1]}"
missing = 401 - len(seqs)
assert missing == fill["evicted_events"], f"{missing} seqs missing, {fill['evicted_events']} counted dropped"
health = [m["payload"] for m in lines if m.get("type") == "health" and isinstance(m.get("payload"), dict)]
assert any(h["spool"]["disk_evictions"] > 0 for h in health), "no health message reports the drops"
print(f"consumer: {len(seqs)} events, seq {seqs[0]}..{seqs[-1]}, {missing} dropped as counted", file=sys.stderr)
PY
ok "after the outage: newest events in seq order, the only gaps the counted drops, health reports them"

# nothing is corrupt: the spool database and the audit log's chain
python3 - "$WORK/disk/spool/spool.sqlite3" <<'PY' || fail "the spool database is corrupt"
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
r = c.execute("PRAGMA integrity_check").fetchone()[0]
assert r == "ok", r
print(f"spool integrity_check: {r}, {c.execute('SELECT COUNT(*) FROM outbox').fetchone()[0]} rows left", file=sys.stderr)
PY
if [ -f "$WORK/disk/spool/audit.jsonl" ]; then
  "$BIN" audit verify "$WORK/disk/spool/audit.jsonl" >&2 || fail "the audit log does not verify"
fi
ok "spool database and audit log intact"
