#!/usr/bin/env bash
# Runs one "container" of the example: gunicorn (fixtures/python/app.py) on slot
# SLOT's socket, started by an entrypoint that is PID 1 of a PID namespace of its
# own (`unshare --pid --fork`), as a container runtime does. Killing that PID 1
# kills everything in the namespace, as when a container's init dies.
#
#   container.sh SLOT VERSION
#
# The entrypoint's form comes from [app] env ENTRYPOINT:
#   exec   sh -c "exec gunicorn ..."   gunicorn replaces the shell: it is PID 1
#          and gets the runtime's SIGTERM (the fixed form; an init that forwards
#          signals, tini or dumb-init, does the same for a shell that stays)
#   shell  sh -c "gunicorn ...; echo ..."   the shell form without exec: the shell
#          stays PID 1, has no SIGTERM handler, so the kernel drops the runtime's
#          SIGTERM (a namespace's init gets only the signals it handles), and
#          gunicorn never hears it. The command after gunicorn keeps dash from
#          exec'ing it on its own (dash execs the last command of `sh -c`).
#
# Writes $ZDT_RUN_DIR/slot-SLOT.pid1 (PID 1's pid as seen from outside, what
# `docker stop` signals) and slot-SLOT.runtime (the unshare process).
set -euo pipefail
slot=$1 version=$2
run=${ZDT_RUN_DIR:?ZDT_RUN_DIR is not set (run me from a zdt-check scenario)}
venv=${ZDT_VENV:?ZDT_VENV is not set: point it at a venv with gunicorn}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
app_dir=$here/../../fixtures/python

printf '%s\n' "$version" >"$run/version-$slot"
rm -f "$run/slot-$slot.sock"
gunicorn="$venv/bin/gunicorn --chdir $app_dir --worker-class gthread --workers 2"
gunicorn+=" --threads ${APP_THREADS:-32} --keep-alive 5 --graceful-timeout 10"
gunicorn+=" --bind unix:$run/slot-$slot.sock app:application"
case ${ENTRYPOINT:?set ENTRYPOINT in [app] env: exec or shell} in
    exec) entry="exec $gunicorn" ;;
    shell) entry="$gunicorn; echo \"entrypoint: gunicorn exited with status \$?\"" ;;
    *) echo "ENTRYPOINT must be exec or shell, not '$ENTRYPOINT'" >&2; exit 2 ;;
esac

# --kill-child: if the runtime (unshare) dies, its PID 1 is SIGKILLed, and with it
# the namespace, so zdt-check stopping this script's process group stops it all.
ZDT_VERSION_FILE="$run/version-$slot" \
    unshare --pid --fork --kill-child sh -c "$entry" >>"$run/slot-$slot.log" 2>&1 &
runtime=$!
echo "$runtime" >"$run/slot-$slot.runtime"
pid1=
for _ in $(seq 100); do
    pid1=$(cat "/proc/$runtime/task/$runtime/children" 2>/dev/null | tr -d ' ') || true
    [ -n "$pid1" ] && break
    sleep 0.05
done
[ -n "$pid1" ] || { echo "no PID 1 under unshare $runtime" >&2; exit 1; }
echo "$pid1" >"$run/slot-$slot.pid1"

if ! "$ZDT_BIN" wait-ready "unix:$run/slot-$slot.sock" --path /_status --timeout 30s; then
    echo "slot $slot did not answer; its log:" >&2
    tail -n 20 "$run/slot-$slot.log" >&2 || true
    exit 1
fi
# What PID 1 is, and what runs under it: with the shell form, `sh` with gunicorn
# as its child; with exec, gunicorn itself.
echo "slot $slot: $version; PID 1 of its namespace is pid $pid1 ($(tr '\0' ' ' <"/proc/$pid1/cmdline" | cut -c1-60)...)"
echo "slot $slot: children of PID 1: $(ps -o pid=,args= --ppid "$pid1" | cut -c1-70 | tr '\n' ';')"
