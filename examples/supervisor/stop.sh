#!/usr/bin/env bash
# Stops the stack: supervisorctl shutdown (supervisord stops gunicorn gracefully),
# then nginx -s quit; each with a bounded wait until the process has exited.
. "$(dirname "$0")/lib.sh"
rc=0

sup=$(cat "$RUN/supervisord.pid" 2>/dev/null || true)
if [ -n "$sup" ] && [ -d "/proc/$sup" ]; then
    ctl shutdown || true
    wait_for "${APP_STOP_TIMEOUT:-40}" "supervisord $sup to exit" all_gone "$sup" || rc=1
fi

m=$(nginx_master || true)
if [ -n "$m" ] && [ -d "/proc/$m" ]; then
    ngx -s quit || true
    wait_for "${APP_STOP_TIMEOUT:-40}" "nginx $m to exit" all_gone "$m" || rc=1
fi
[ "$rc" = 0 ] && log "stopped"
exit "$rc"
