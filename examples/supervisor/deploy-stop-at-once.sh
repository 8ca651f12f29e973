#!/usr/bin/env bash
# deploy.sh in the seed's order: once nginx's new workers have taken over, the old
# program is stopped at once instead of after the old nginx workers have exited.
# Requests those workers still proxy to the old app are then in its hands: gunicorn
# finishes them on TERM (--graceful-timeout), but supervisor SIGKILLs the group
# after stopwaitsecs. So this is correct ONLY with stopwaitsecs above the longest
# request (APP_STOPWAITSECS, default 35 > graceful timeout 30); with
# APP_STOPWAITSECS=1 and 3 s requests the kill cuts them and nginx answers 502.
. "$(dirname "$0")/lib.sh"
read_state
OLD=$PROGRAM
NEW=$(gen_program)
V=$(new_version)
log "deploy $V: $OLD -> $NEW (stopwaitsecs $APP_STOPWAITSECS)"
add_program "$NEW" "$V"
wait_program_answers "$NEW" "$V"
switch_nginx_to "$NEW"
write_state "$NEW" "$V"
retire_program "$OLD"
log "deployed $V as $NEW"
