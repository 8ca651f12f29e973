#!/usr/bin/env bash
# Brings up version 1 of a small "own stack": the built-in fixture (zdt-check's
# stand-in for an app server) on a unix socket, reached through a symlink, the
# django_graceful layout. Run by zdt-check as `[app] start`; it exits 0 once the
# stack answers, leaving the server running (zdt-check stops it at the end).
#
# Reads: ZDT_RUN_DIR, ZDT_BIN, ZDT_VERSION (empty: make one up), and from the
# scenario's [app] env: IMPORT_DELAY (how long the app takes to start).
set -euo pipefail
run="$ZDT_RUN_DIR"
version="${ZDT_VERSION:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}"

"$ZDT_BIN" fixture --listen "unix:$run/slot-a.sock" --version "$version" \
    --startup-delay "${IMPORT_DELAY:-1s}" >>"$run/slot-a.log" 2>&1 &
echo $! >"$run/slot-a.pid"
"$ZDT_BIN" wait-ready "unix:$run/slot-a.sock" --timeout 30s
ln -sfn "$run/slot-a.sock" "$run/app.sock"
echo a >"$run/active-slot"
echo "started $version on slot a"
