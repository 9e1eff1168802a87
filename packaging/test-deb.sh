#!/usr/bin/env bash
# The .deb test (run by scripts/test.sh; needs root, no running systemd needed): build the package,
# install it here, check every file and the service user, validate the installed unit with
# `systemd-analyze verify`, check that an edited conffile survives reinstalling, remove and purge.
#
# EDGE_AGENT_DEB_PROFILE=debug (default here) packages the test build cargo test already made, so
# CI pays no release build; `release` packages what ships (packaging/README.md has both times).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROFILE="${EDGE_AGENT_DEB_PROFILE:-debug}"
PKG=edge-agent
UNIT=/lib/systemd/system/edge-agent.service

fail() { echo "test-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "test-deb: ok: $*" >&2; }
[ "$(id -u)" -eq 0 ] || fail "must run as root (it installs the package)"
for tool in dpkg-deb systemd-analyze adduser; do
  command -v "$tool" >/dev/null || fail "$tool is missing; scripts/lib.sh need_apt installs it"
done
if dpkg -s "$PKG" >/dev/null 2>&1; then
  fail "$PKG is already installed on this machine; remove it first (dpkg -P $PKG)"
fi

# dpkg waits for a lock another apt/dpkg may hold (other jobs on a shared machine).
dpkg_locked() {
  local i
  for i in $(seq 1 60); do
    if "$@"; then return 0; fi
    command -v fuser >/dev/null || return 1
    fuser /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock >/dev/null 2>&1 || return 1
    sleep 2
  done
  return 1
}
cleanup() { dpkg -s "$PKG" >/dev/null 2>&1 && dpkg_locked dpkg -P "$PKG" >/dev/null 2>&1 || true; }
trap cleanup EXIT

t0=$(date +%s)
DEB="$("$REPO/packaging/build-deb.sh" --profile "$PROFILE" --out "$REPO/target/debian")"
ok "built $(basename "$DEB") ($(du -h "$DEB" | cut -f1), $PROFILE binary) in $(( $(date +%s) - t0 )) s"

dpkg_locked dpkg -i "$DEB" >/dev/null || fail "dpkg -i $DEB"
ok "installed"

for f in /usr/bin/edge-agent "$UNIT" /etc/edge-agent/config.toml \
         /usr/share/edge-agent/models/yolox_nano_coco_416.toml /usr/share/doc/edge-agent/README.md; do
  [ -f "$f" ] || fail "$f is not installed"
done
[ -d /var/lib/edge-agent/models ] || fail "/var/lib/edge-agent/models was not created"
getent passwd edge-agent >/dev/null || fail "user edge-agent was not created"
[ "$(stat -c %U /var/lib/edge-agent/models)" = edge-agent ] || fail "/var/lib/edge-agent/models is not owned by edge-agent"
[ "$(stat -c '%U:%G %a' /etc/edge-agent/config.toml)" = "root:edge-agent 640" ] \
  || fail "/etc/edge-agent/config.toml has $(stat -c '%U:%G %a' /etc/edge-agent/config.toml)"
dpkg-query -W -f='${Conffiles}\n' "$PKG" | grep -q '/etc/edge-agent/config.toml' \
  || fail "/etc/edge-agent/config.toml is not a conffile"
ok "files, directories, user and conffile in place"

/usr/bin/edge-agent version >/dev/null 2>&1 || /usr/bin/edge-agent --version >/dev/null \
  || fail "the installed binary does not run"
# The default config is valid (models are not fetched yet: warnings only).
/usr/bin/edge-agent check /etc/edge-agent/config.toml >/dev/null 2>&1 \
  || { /usr/bin/edge-agent check /etc/edge-agent/config.toml; fail "the default config does not pass check"; }
ok "installed binary runs and the default config passes check"

# systemd-analyze verify prints problems with the unit (unknown keys, bad values, missing
# binaries) on stderr; any line naming our unit is a failure.
verify="$(systemd-analyze verify "$UNIT" 2>&1 || true)"
if printf '%s\n' "$verify" | grep -q 'edge-agent.service'; then
  printf '%s\n' "$verify" >&2
  fail "systemd-analyze verify reports problems with $UNIT"
fi
systemd-analyze verify "$UNIT" >/dev/null 2>&1 || { printf '%s\n' "$verify" >&2; fail "systemd-analyze verify exit code"; }
for key in Type=notify WatchdogSec=30s Restart=on-failure NotifyAccess=main ProtectSystem=strict \
           StateDirectory=edge-agent 'CapabilityBoundingSet=$' 'SystemCallFilter=@system-service'; do
  grep -q "^$key" "$UNIT" || fail "$UNIT lacks $key"
done
# What systemd would run: the installed binary with the installed config.
systemd-analyze security --offline=yes "$UNIT" >/dev/null 2>&1 \
  && ok "systemd-analyze security: $(systemd-analyze security --offline=yes "$UNIT" 2>/dev/null | tail -1)" || true
ok "systemd-analyze verify: clean"

# An installer's edit of the conffile survives reinstalling the same package.
sed -i 's/^site_id = "change-me-site"/site_id = "tn-test-site"/' /etc/edge-agent/config.toml
dpkg_locked dpkg -i --force-confold "$DEB" >/dev/null || fail "reinstall"
grep -q 'site_id = "tn-test-site"' /etc/edge-agent/config.toml || fail "the edited config was overwritten"
ok "edited conffile kept on reinstall"

dpkg_locked dpkg -r "$PKG" >/dev/null || fail "dpkg -r"
[ ! -e /usr/bin/edge-agent ] || fail "/usr/bin/edge-agent left after remove"
[ ! -e "$UNIT" ] || fail "$UNIT left after remove"
[ -f /etc/edge-agent/config.toml ] || fail "remove must keep the config (only purge deletes it)"
dpkg_locked dpkg -P "$PKG" >/dev/null || fail "dpkg -P"
[ ! -e /etc/edge-agent ] || fail "/etc/edge-agent left after purge"
ok "removed and purged (the state directory /var/lib/edge-agent is kept: undelivered events)"
echo "test-deb: PASS ($(( $(date +%s) - t0 )) s)" >&2
