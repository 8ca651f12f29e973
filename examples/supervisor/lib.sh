# Shared helpers for the supervisor + gunicorn + nginx deploy scripts in this
# directory. Sourced, not run. Everything lives in $ZDT_RUN_DIR (a private 0700
# directory): supervisord's socket, config and logs, nginx's prefix, the apps'
# sockets, and a small state file naming the program that is serving.
#
# Knobs (environment, e.g. from the scenario's [app].env):
#   APP_IMPORT_DELAY      seconds the app sleeps at import (a slow Django import), default 0
#   APP_STOPWAITSECS      supervisor's stopwaitsecs for the app, default 35
#   APP_GRACEFUL_TIMEOUT  gunicorn's --graceful-timeout, default 30
#   APP_STARTSECS         supervisor's startsecs, default 1
#   APP_THREADS           gthread threads per worker (2 workers), default 16
#   APP_READY_TIMEOUT     seconds to wait for anything to come up, default 60
#   APP_DRAIN_TIMEOUT     seconds to wait for old nginx workers to exit, default 60

set -euo pipefail

: "${ZDT_RUN_DIR:?ZDT_RUN_DIR must name the run directory}"
RUN=$ZDT_RUN_DIR
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APP_DIR=$(cd "$HERE/../../fixtures/python" && pwd)
SUPCONF=$RUN/supervisord.conf
NGX=$RUN/nginx
NGX_CONF=$NGX/nginx.conf
STATE=$RUN/state

APP_IMPORT_DELAY=${APP_IMPORT_DELAY:-0}
APP_STOPWAITSECS=${APP_STOPWAITSECS:-35}
APP_GRACEFUL_TIMEOUT=${APP_GRACEFUL_TIMEOUT:-30}
APP_STARTSECS=${APP_STARTSECS:-1}
APP_THREADS=${APP_THREADS:-16}
APP_READY_TIMEOUT=${APP_READY_TIMEOUT:-60}
APP_DRAIN_TIMEOUT=${APP_DRAIN_TIMEOUT:-60}

log() { printf '%s %s\n' "$(date +%H:%M:%S.%3N)" "$*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# A tool from the venv, else from PATH (absolute either way).
tool() {
    if [ -n "${ZDT_VENV:-}" ] && [ -x "$ZDT_VENV/bin/$1" ]; then
        printf '%s\n' "$ZDT_VENV/bin/$1"
    else
        command -v "$1" || die "$1 not found (set ZDT_VENV or put it on PATH)"
    fi
}
SUPERVISORD=$(tool supervisord)
SUPERVISORCTL=$(tool supervisorctl)
GUNICORN=$(tool gunicorn)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# supervisorctl, always with our config (without -c it searches the current directory).
ctl() { "$SUPERVISORCTL" -c "$SUPCONF" "$@"; }
# nginx, always with the private prefix (-s reload/quit need the same -p/-c).
ngx() { "$NGINX" -p "$NGX" -c "$NGX_CONF" -e "$NGX/error.log" "$@"; }

# supervisor's config files are Python-interpolated: a literal % must be doubled.
sv() { printf '%s' "${1//%/%%}"; }

# A fresh version id when the harness gives none: sha-like, 12 hex digits.
gen_version() { head -c 32 /dev/urandom | sha1sum | cut -c1-12; }
# A unique program name per deploy ("hc_timestamp" in the seed).
gen_program() { printf 'app-%s-%s\n' "$(date +%H%M%S%3N)" "$(head -c 2 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }

# Polls CMD... every 50 ms until it succeeds; fails after SECONDS.
wait_for() {
    local secs=$1 what=$2; shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { log "timed out after ${secs}s waiting for $what" >&2; return 1; }
        sleep 0.05
    done
}

# The version a unix socket's app answers on /_status ("ok <V>"), or nothing.
status_of() { curl -s -m 2 --unix-socket "$1" "http://localhost${ZDT_STATUS_PATH:-/_status}" 2>/dev/null || true; }
answers_version() { [ "$(status_of "$1")" = "ok $2" ]; }

write_state() { # PROGRAM VERSION
    printf 'PROGRAM=%s\nVERSION=%s\n' "$1" "$2" > "$STATE.tmp"
    mv -f "$STATE.tmp" "$STATE"
}
read_state() {
    [ -r "$STATE" ] || die "no state file $STATE (was start.sh run?)"
    # shellcheck disable=SC1090
    . "$STATE"
}

# conf.d/PROGRAM.conf: gunicorn itself (no shell wrapper), its own socket, the
# version in a file read at import.
render_program() { # PROGRAM VERSION
    local p=$1 v=$2
    printf '%s\n' "$v" > "$RUN/$p.version"
    cat > "$RUN/conf.d/$p.conf.tmp" <<CONF
[program:$p]
command=$(sv "$GUNICORN") --bind unix:$(sv "$RUN/$p.sock") --workers 2 --worker-class gthread --threads $APP_THREADS --graceful-timeout $APP_GRACEFUL_TIMEOUT --no-control-socket --chdir $(sv "$APP_DIR") app:application
directory=$(sv "$APP_DIR")
environment=ZDT_VERSION_FILE="$(sv "$RUN/$p.version")",ZDT_STARTUP_DELAY="$APP_IMPORT_DELAY"
stopsignal=TERM
stopwaitsecs=$APP_STOPWAITSECS
stopasgroup=true
killasgroup=true
startsecs=$APP_STARTSECS
autostart=true
autorestart=true
redirect_stderr=true
stdout_logfile=$(sv "$RUN/logs/$p.log")
CONF
    mv -f "$RUN/conf.d/$p.conf.tmp" "$RUN/conf.d/$p.conf"
}

# nginx's upstream, in its own include file, replaced atomically.
render_upstream() { # PROGRAM
    cat > "$NGX/upstream.conf.tmp" <<CONF
upstream app {
    server unix:$RUN/$1.sock;
}
CONF
    mv -f "$NGX/upstream.conf.tmp" "$NGX/upstream.conf"
}

nginx_master() { cat "$NGX/nginx.pid" 2>/dev/null; }
# The master's children: its workers (no cache manager without proxy_cache_path).
nginx_workers() { local m; m=$(nginx_master) && ps -o pid= --ppid "$m" | tr -d ' '; }
all_gone() { local p; for p in "$@"; do [ ! -d "/proc/$p" ] && continue; grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null || return 1; done; }
# nginx sets the old workers' title once they got QUIT and closed their listeners.
all_shutting_down() { local p; for p in "$@"; do [ -d "/proc/$p" ] || continue; tr '\0' ' ' < "/proc/$p/cmdline" | grep -q 'shutting down' || return 1; done; }

# Rewrites the upstream to PROGRAM's socket, checks the config, reloads nginx and
# waits until the old workers no longer accept (new workers took over).
# Sets OLD_WORKERS to the workers from before the reload.
switch_nginx_to() { # PROGRAM
    OLD_WORKERS=$(nginx_workers) || die "nginx is not running (no $NGX/nginx.pid)"
    render_upstream "$1"
    ngx -t -q || die "nginx -t rejected the new config"
    ngx -s reload
    # shellcheck disable=SC2086
    wait_for "$APP_READY_TIMEOUT" "old nginx workers to stop accepting" all_shutting_down $OLD_WORKERS ||
        die "nginx did not reload (see $NGX/error.log)"
    log "nginx reloaded onto $1.sock (old workers: $(echo $OLD_WORKERS))"
}

wait_old_workers_exited() {
    # shellcheck disable=SC2086
    wait_for "$APP_DRAIN_TIMEOUT" "old nginx workers to exit" all_gone $OLD_WORKERS
    log "old nginx workers exited"
}

# Starts a new program next to the running one: reread + add (add returns at once).
add_program() { # PROGRAM VERSION
    render_program "$1" "$2"
    ctl reread
    ctl add "$1"
}

# Waits until PROGRAM answers VERSION on its own socket (RUNNING is not ready).
wait_program_answers() { # PROGRAM VERSION
    if ! wait_for "$APP_READY_TIMEOUT" "$1 to answer $2" answers_version "$RUN/$1.sock" "$2"; then
        ctl status "$1" || true
        tail -n 20 "$RUN/logs/$1.log" >&2 || true
        die "$1 never answered version $2"
    fi
    log "$1 answers $2 on its own socket"
}

# stop (blocks until stopped) + remove + delete the conf + reread.
retire_program() { # PROGRAM
    ctl stop "$1"
    ctl remove "$1"
    rm -f "$RUN/conf.d/$1.conf" "$RUN/$1.version"
    ctl reread
}

# The version this deploy moves to.
new_version() { if [ -n "${ZDT_NEW_VERSION:-}" ]; then printf '%s\n' "$ZDT_NEW_VERSION"; else gen_version; fi; }
