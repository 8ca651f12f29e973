#!/usr/bin/env bash
# The deploy (`[reload] command`): blue/green containers behind a symlink, stopped
# the way a container runtime stops one (`docker stop -t GRACE`, a Kubernetes
# pod's terminationGracePeriodSeconds):
#   1. start the new version's container on the idle slot, wait until it answers;
#   2. switch the link to it (new connections go there; kept-alive ones stay on
#      the old container until it closes them);
#   3. SIGTERM the old container's PID 1, wait up to STOP_GRACE (default 3 s) for it
#      to exit, then SIGKILL it, which kills everything in its PID namespace.
# With ENTRYPOINT=exec, gunicorn gets the SIGTERM, finishes what it serves, closes
# its kept-alive connections and exits well within the grace period. With
# ENTRYPOINT=shell, the SIGTERM never reaches gunicorn: it keeps serving the
# kept-alive connections until the SIGKILL cuts the requests in flight on them.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=${ZDT_RUN_DIR:?ZDT_RUN_DIR is not set (run me from a zdt-check scenario)}
old=$(cat "$run/active-slot")
new=$([ "$old" = a ] && echo b || echo a)
grace=${STOP_GRACE:-3}

"$here/container.sh" "$new" "${ZDT_NEW_VERSION:-v2}"
ln -sfn "$run/slot-$new.sock" "$run/app.sock.tmp"
mv -T "$run/app.sock.tmp" "$run/app.sock"
echo "$new" >"$run/active-slot"

pid1=$(cat "$run/slot-$old.pid1")
runtime=$(cat "$run/slot-$old.runtime")
kill -TERM "$pid1"
start=$(date +%s%N)
# The runtime (unshare) reaps PID 1 and exits with it: wait for the runtime.
for _ in $(seq $((grace * 20))); do
    kill -0 "$runtime" 2>/dev/null || break
    sleep 0.05
done
if kill -0 "$runtime" 2>/dev/null; then
    echo "old container (slot $old, PID 1 = $pid1) still running ${grace}s after SIGTERM: SIGKILL (exit 137)"
    kill -KILL "$pid1"
    for _ in $(seq 100); do kill -0 "$runtime" 2>/dev/null || break; sleep 0.05; done
else
    echo "old container (slot $old) exited on SIGTERM after $(( ($(date +%s%N) - start) / 1000000 )) ms"
fi
echo "deployed ${ZDT_NEW_VERSION:-v2} on slot $new"
