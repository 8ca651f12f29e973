#!/usr/bin/env bash
# The classic mistake, for zdt-check to catch (scenarios/negative/command-broken.toml):
# the link is switched as soon as the new process is started, before it has
# finished starting up, and the old instance is stopped right away. Every request
# in between finds no socket at the link. It "works" when tried by hand.
set -euo pipefail

"$ZDT_BIN" fixture --listen "unix:$ZDT_NEXT_SOCKET" --version "$ZDT_NEW_VERSION" \
    --startup-delay "$ZDT_STARTUP_DELAY" &

rm -f "$ZDT_LINK"
ln -s "$ZDT_NEXT_SOCKET" "$ZDT_LINK"
[ -n "$ZDT_OLD_PID" ] && kill -TERM "$ZDT_OLD_PID"
echo "deployed $ZDT_NEW_VERSION"
