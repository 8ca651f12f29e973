#!/usr/bin/env bash
# A correct symlink-swap deploy for the built-in fixture, run by zdt-check's
# `command` strategy (scenarios/command.toml). It uses only the ZDT_* variables
# the harness provides; a real deploy script would start gunicorn/flup instead of
# "$ZDT_BIN fixture".
set -euo pipefail

# 1. Start the new version on the inactive socket, in the background.
"$ZDT_BIN" fixture --listen "unix:$ZDT_NEXT_SOCKET" --version "$ZDT_NEW_VERSION" \
    --startup-delay "$ZDT_STARTUP_DELAY" &

# 2. Wait until it answers (never a fixed sleep).
"$ZDT_BIN" wait-ready "unix:$ZDT_NEXT_SOCKET" --path "$ZDT_STATUS_PATH" --timeout 30s

# 3. Switch atomically: a new link under a temporary name, renamed over the old one.
ln -sfn "$ZDT_NEXT_SOCKET" "$ZDT_LINK.tmp"
mv -T "$ZDT_LINK.tmp" "$ZDT_LINK"

# 4. Let the old instance serve what it already accepted, then stop it gracefully.
sleep 0.5
if [ -n "$ZDT_OLD_PID" ]; then
    kill -TERM "$ZDT_OLD_PID"
    # It drains and exits; wait for it (bounded).
    for _ in $(seq 100); do kill -0 "$ZDT_OLD_PID" 2>/dev/null || break; sleep 0.1; done
fi
echo "deployed $ZDT_NEW_VERSION on $ZDT_NEXT_SOCKET"
