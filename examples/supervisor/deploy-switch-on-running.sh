#!/usr/bin/env bash
# BROKEN on purpose (negative control): deploy.sh, except that it takes the new
# program's RUNNING state for readiness. RUNNING only means the process stayed up
# for startsecs (1 s); with a slower import the new app is not serving yet when
# nginx is switched to it. gunicorn's master has already bound the socket, so
# nginx's connects succeed and requests wait in the backlog until the workers
# have imported the app: a stall (max gap, p99), not errors.
. "$(dirname "$0")/lib.sh"
read_state
OLD=$PROGRAM
NEW=$(gen_program)
V=$(new_version)
log "deploy $V: $OLD -> $NEW"
add_program "$NEW" "$V"
is_running() { ctl status "$NEW" | grep -q RUNNING; }
wait_for "$APP_READY_TIMEOUT" "$NEW to be RUNNING" is_running || die "$NEW never got RUNNING"
log "$NEW is RUNNING: switching nginx"
switch_nginx_to "$NEW"
write_state "$NEW" "$V"
wait_old_workers_exited
retire_program "$OLD"
log "deployed $V as $NEW"
