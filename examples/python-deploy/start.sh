#!/usr/bin/env bash
# Brings up version 1 of the example stack for zdt-check (`[app] start`): gunicorn
# serving fixtures/python/app.py on slot A's socket ($ZDT_RUN_DIR/app-a.sock), and
# the link clients connect through, $ZDT_RUN_DIR/app.sock -> app-a.sock. deploy.py
# then moves between slots A and B.
#
# Environment (zdt-check sets the ZDT_* ones; the others come from [app].env):
#   ZDT_RUN_DIR      where sockets, pid files, version files and logs go
#   ZDT_VENV         a venv with gunicorn
#   ZDT_VERSION      version 1 (empty when the scenario discovers versions: then a
#                    fresh sha-like id is made up, as a real deploy would use a git SHA)
#   ZDT_BIN          zdt-check itself, for `wait-ready`
#   APP_IMPORT_DELAY seconds the app sleeps at import (a slow Django start-up)
#   APP_DIR          the WSGI app's directory (default: fixtures/python of this repo)
# gunicorn daemonizes; this script exits 0 once slot A answers, 1 if it does not.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=${ZDT_RUN_DIR:?ZDT_RUN_DIR is not set (run me from a zdt-check scenario)}
venv=${ZDT_VENV:?ZDT_VENV is not set: point it at a venv with gunicorn}
app_dir=${APP_DIR:-$here/../../fixtures/python}
version=${ZDT_VERSION:-}
if [ -z "$version" ]; then
    version=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')
fi

printf '%s\n' "$version" > "$run/version-a"
ZDT_VERSION_FILE="$run/version-a" ZDT_STARTUP_DELAY="${APP_IMPORT_DELAY:-0}" \
    "$venv/bin/gunicorn" -c "$here/gunicorn.conf.py" --chdir "$app_dir" \
    --bind "unix:$run/app-a.sock" --pid "$run/app-a.pid" \
    --error-logfile "$run/app-a.log" --daemon app:application

if ! "${ZDT_BIN:-zdt-check}" wait-ready "unix:$run/app-a.sock" \
    --path "${ZDT_STATUS_PATH:-/_status}" --timeout 30s; then
    echo "slot A did not answer; its log:" >&2
    tail -n 20 "$run/app-a.log" >&2 || true
    exit 1
fi
ln -s app-a.sock "$run/app.sock"
echo "started $version on app-a.sock (master pid $(cat "$run/app-a.pid"))"
