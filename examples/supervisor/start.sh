#!/usr/bin/env bash
# Brings up version 1 of the stack in $ZDT_RUN_DIR: supervisord (unprivileged,
# its socket/config/logs in the run dir) managing gunicorn on app-<id>.sock, and
# nginx in front on nginx.sock. nginx is NOT a supervisord program, as on the
# seed's server (nginx is the system service, supervisor runs gunicorn): so
# `supervisorctl reload` cannot take nginx down and nginx reloads keep its master.
#
# Stays in the foreground as the parent of supervisord and nginx (both in this
# script's process group): it returns when both have exited (stop.sh), and a
# signal to the group stops supervisord, which stops its programs.
#
# Version: $ZDT_VERSION, or a generated id when it is empty.
. "$(dirname "$0")/lib.sh"

mkdir -p "$RUN/conf.d" "$RUN/logs" "$NGX"
VERSION=${ZDT_VERSION:-$(gen_version)}
PROGRAM=$(gen_program)

# ---- supervisord: unprivileged, everything relative to the config (%(here)s).
cat > "$SUPCONF" <<'CONF'
[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
nodaemon=true
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir=%(here)s/logs
minfds=1024

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

[include]
files=%(here)s/conf.d/*.conf
CONF
render_program "$PROGRAM" "$VERSION"

# ---- nginx: private prefix, pid, all five temp paths, daemon off (on the command line).
user_line=""
if [ "$(id -u)" = 0 ]; then
    # As root the workers would run as nobody and could not enter the 0700 run dir.
    user_line="user $(id -un) $(id -gn);"
fi
cat > "$NGX_CONF" <<CONF
$user_line
worker_processes 2;
pid $NGX/nginx.pid;
error_log $NGX/error.log warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $NGX/client_body_temp;
    proxy_temp_path $NGX/proxy_temp;
    fastcgi_temp_path $NGX/fastcgi_temp;
    uwsgi_temp_path $NGX/uwsgi_temp;
    scgi_temp_path $NGX/scgi_temp;

    include $NGX/upstream.conf;

    server {
        listen unix:$RUN/nginx.sock;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_next_upstream off;
        }
    }
}
CONF
render_upstream "$PROGRAM"
ngx -t -q || die "nginx -t rejected $NGX_CONF"

# ---- start both, as children of this script.
log "starting supervisord ($SUPERVISORD) with $PROGRAM, version $VERSION"
"$SUPERVISORD" -c "$SUPCONF" -n >> "$RUN/logs/supervisord.out" 2>&1 &
sup_pid=$!
# Ready when supervisorctl gets an answer.
wait_for 15 "supervisord" ctl pid || { tail -n 20 "$RUN/logs/supervisord.out" >&2; die "supervisord did not start"; }

log "starting nginx ($NGINX)"
ngx -g 'daemon off;' >> "$NGX/nginx.out" 2>&1 &
ngx_pid=$!

write_state "$PROGRAM" "$VERSION"
if ! wait_for "$APP_READY_TIMEOUT" "the app through nginx" answers_version "$RUN/nginx.sock" "$VERSION"; then
    ctl status || true
    tail -n 20 "$RUN/logs/$PROGRAM.log" "$NGX/error.log" >&2 || true
    die "the stack did not answer version $VERSION through nginx"
fi
log "ready: $PROGRAM (version $VERSION) behind nginx on $RUN/nginx.sock (supervisord $sup_pid, nginx $ngx_pid)"

# Foreground until stop.sh has stopped both (a restarted nginx is not our child: stop.sh quits it).
wait
