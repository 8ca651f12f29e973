#!/usr/bin/env bash
# BROKEN on purpose (negative control): deploy.sh's app side (new program, wait
# until it answers the new version), but nginx is RESTARTED (the seed's
# "/etc/init.d/nginx restart": stop, wait, start) instead of reloaded. Between the
# old master's exit (it removes nginx.sock) and the new master's bind there is no
# nginx.sock at all: clients get ENOENT / ECONNREFUSED.
. "$(dirname "$0")/lib.sh"
read_state
OLD=$PROGRAM
NEW=$(gen_program)
V=$(new_version)
log "deploy $V: $OLD -> $NEW"
add_program "$NEW" "$V"
wait_program_answers "$NEW" "$V"
render_upstream "$NEW"
ngx -t -q || die "nginx -t rejected the new config"
m=$(nginx_master)
ngx -s quit
wait_for "$APP_DRAIN_TIMEOUT" "nginx $m to exit" all_gone "$m" || die "nginx did not stop"
log "nginx stopped; starting it again"
# Detached, as an init script would: it must outlive this script.
setsid "$NGINX" -p "$NGX" -c "$NGX_CONF" -e "$NGX/error.log" -g 'daemon off;' >> "$NGX/nginx.out" 2>&1 < /dev/null &
wait_for "$APP_READY_TIMEOUT" "nginx to answer $V" answers_version "$RUN/nginx.sock" "$V" || die "nginx did not come back"
write_state "$NEW" "$V"
retire_program "$OLD"
log "deployed $V as $NEW (nginx restarted)"
