#!/usr/bin/env bash
# BROKEN on purpose (negative control): the seed's first deploy step,
# `supervisorctl reload`, with the program's config rewritten for the new version.
# reload restarts supervisord in place (same pid): EVERY program stops, then all
# start again; the command itself returns at once, long before anything is back.
. "$(dirname "$0")/lib.sh"
read_state
V=$(new_version)
log "deploy $V: rewrite $PROGRAM's config, supervisorctl reload"
render_program "$PROGRAM" "$V"
ctl reload
write_state "$PROGRAM" "$V"
wait_for 15 "supervisord after reload" ctl pid
wait_program_answers "$PROGRAM" "$V"
log "deployed $V (reloaded supervisord)"
