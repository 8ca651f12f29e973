#!/usr/bin/env bash
# Brings up version 1 of the example (`[app] start`): a "container" on slot a
# (container.sh), and the link clients connect through, $ZDT_RUN_DIR/app.sock ->
# slot-a.sock. deploy.sh then moves between slots a and b. Exits 0 once slot a
# answers; the container keeps running in this script's process group.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
run=${ZDT_RUN_DIR:?ZDT_RUN_DIR is not set (run me from a zdt-check scenario)}
"$here/container.sh" a "${ZDT_VERSION:-v1}"
ln -sfn "$run/slot-a.sock" "$run/app.sock"
echo a >"$run/active-slot"
