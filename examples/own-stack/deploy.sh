#!/usr/bin/env bash
# The deploy under test, run by zdt-check as `[reload] command`: start the new
# version on the idle slot, wait until it answers, switch the symlink atomically,
# then let the old server drain and stop it.
#
# Reads: ZDT_RUN_DIR, ZDT_BIN, ZDT_NEW_VERSION (empty when zdt-check discovers
# versions: then this script makes one up, as a git SHA would be), and from the
# scenario's [app] env:
#   IMPORT_DELAY     how long the app takes to start
#   DEPLOY_MISTAKE   "switch-before-ready": switch without waiting (the classic bug)
#   DEPLOY_RETURN    "at-once": return right after the switch and stop the old
#                    server in the background (correct too: it drains what it accepted)
set -euo pipefail
run="$ZDT_RUN_DIR"
old=$(cat "$run/active-slot")
new=$([ "$old" = a ] && echo b || echo a)
version="${ZDT_NEW_VERSION:-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}"
old_pid=$(cat "$run/slot-$old.pid")

# 1. The new version on the idle slot, in the background.
rm -f "$run/slot-$new.sock"
"$ZDT_BIN" fixture --listen "unix:$run/slot-$new.sock" --version "$version" \
    --startup-delay "${IMPORT_DELAY:-1s}" >>"$run/slot-$new.log" 2>&1 &
echo $! >"$run/slot-$new.pid"

# 2. Wait until it answers (never a fixed sleep), unless making the classic mistake.
if [ "${DEPLOY_MISTAKE:-}" != switch-before-ready ]; then
    "$ZDT_BIN" wait-ready "unix:$run/slot-$new.sock" --timeout 30s
fi

# 3. Switch atomically: a new link under a temporary name, renamed over the old one.
ln -sfn "$run/slot-$new.sock" "$run/app.sock.tmp"
mv -T "$run/app.sock.tmp" "$run/app.sock"
echo "$new" >"$run/active-slot"

# 4. Let the old server answer what it already accepted, then stop it (it drains).
stop_old() {
    sleep 0.5
    kill -TERM "$old_pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$old_pid" 2>/dev/null || return 0; sleep 0.1; done
}
if [ "${DEPLOY_RETURN:-}" = at-once ]; then
    stop_old &
    echo "switched to $version on slot $new; the old server stops in the background"
    exit 0
fi
stop_old
echo "deployed $version on slot $new"
