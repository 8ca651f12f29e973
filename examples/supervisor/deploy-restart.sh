#!/usr/bin/env bash
# BROKEN on purpose (negative control): the in-place deploy. New code goes into
# the running program's place (here: its version file) and `supervisorctl restart`
# bounces it on the SAME socket. gunicorn unlinks the socket on TERM; until the new
# master binds it again nginx cannot connect (502), and then the new workers still
# import while requests queue on the socket (a stall).
. "$(dirname "$0")/lib.sh"
read_state
V=$(new_version)
log "deploy $V: restart $PROGRAM in place"
printf '%s\n' "$V" > "$RUN/$PROGRAM.version"
ctl restart "$PROGRAM"
write_state "$PROGRAM" "$V"
# A careful user still waits until the new version answers; the damage is done.
wait_program_answers "$PROGRAM" "$V"
log "deployed $V (restarted $PROGRAM)"
