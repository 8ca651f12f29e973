#!/usr/bin/env bash
# Install the real servers zdt-check drives, idempotently:
#   Debian packages: nginx haproxy wrk apache2-utils uwsgi-core uwsgi-plugin-python3 iproute2
#                    (+ python3 python3-venv for the venv, curl for manual checks,
#                     chromium and libxml2-utils for the HTML and JUnit report tests)
#   a Python venv at ${ZDT_VENV:-<repo>/.venv} with pinned gunicorn, flup, supervisor and
#   uvicorn (with h11 and wsproto only: no uvloop/httptools extras), uvicorn-worker (gunicorn's
#   ASGI worker class), granian (no extras) and hypercorn, and one venv per other pinned
#   uvicorn and gunicorn version at <venv>-<package>-<version> (`app.server_version`);
#   maturin (pinned) in ${ZDT_BUILD_VENV:-<repo>/.venv-build}, for the wheel test.
# Runs as root on Debian 12 with no stdin; does nothing slow when all is there.
# apt runs only if a package is missing. The package's postinst must not leave
# a system nginx on port 80 (or haproxy): we install under a policy-rc.d that denies
# service starts (unless one already exists), and if /run/nginx.pid or
# /run/haproxy.pid still appears we stop exactly that PID.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ZDT_VENV:-$REPO/.venv}"
GUNICORN_VERSION=27.0.1
FLUP_VERSION=1.0.3
SUPERVISOR_VERSION=4.2.5
UVICORN_VERSION=0.54.0
H11_VERSION=0.16.0
# uvicorn's websocket protocol (pure Python; the sample ASGI app serves websockets).
WSPROTO_VERSION=1.3.2
# gunicorn's ASGI worker class (app kind gunicorn, worker_class = "uvicorn").
UVICORN_WORKER_VERSION=0.4.0
# granian (Rust HTTP server for ASGI/WSGI; app kind granian): 2.8.7 is the version issue 19 measured.
GRANIAN_VERSION=2.8.7
# hypercorn (ASGI; app kind hypercorn): 0.18.0 is the version issue 19 measured.
HYPERCORN_VERSION=0.18.0
# Other uvicorn versions a scenario may pin (app.server_version), each in its own venv:
# 0.50.0 is the last one whose SIGHUP restarts every worker at once.
UVICORN_OTHER_VERSIONS=(0.50.0)
# Other gunicorn versions (app.server_version): 20.1.0, the release gunicorn issue 3394
# reports HUP drops after.
GUNICORN_OTHER_VERSIONS=(20.1.0)
PKGS=(nginx haproxy wrk apache2-utils uwsgi-core uwsgi-plugin-python3 python3 python3-venv curl chromium libxml2-utils iproute2)
# Debian's python3: uwsgi-plugin-python3 is built against it, so the venv must use it
# (not a pyenv/other python3 that happens to come first on PATH).
SYS_PYTHON=/usr/bin/python3

log() { printf 'install-servers: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        log "need root to run: $*"
        return 1
    fi
}

# ---- Debian packages ---------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
    st="$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)"
    [ "$st" = installed ] || missing+=("$p")
done

POLICY=/usr/sbin/policy-rc.d
policy_created=0
cleanup() {
    if [ "$policy_created" = 1 ]; then as_root rm -f "$POLICY" || true; fi
}
trap cleanup EXIT

if [ "${#missing[@]}" -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    t0=$SECONDS
    nginx_pid_before=""
    [ -r /run/nginx.pid ] && nginx_pid_before="$(cat /run/nginx.pid 2>/dev/null || true)"
    haproxy_pid_before=""
    [ -r /run/haproxy.pid ] && haproxy_pid_before="$(cat /run/haproxy.pid 2>/dev/null || true)"
    if [ ! -e "$POLICY" ]; then
        # Deny service starts from maintainer scripts (exit 101 = action forbidden).
        printf '#!/bin/sh\n# temporary, from zdt-check .ci/install-servers.sh\nexit 101\n' |
            as_root tee "$POLICY" >/dev/null
        as_root chmod 0755 "$POLICY"
        policy_created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" </dev/null >/dev/null
    cleanup
    policy_created=0
    # Belt and braces: a system nginx started by the package (pidfile appeared or changed).
    if [ -r /run/nginx.pid ]; then
        pid="$(cat /run/nginx.pid 2>/dev/null || true)"
        if [ -n "$pid" ] && [ "$pid" != "$nginx_pid_before" ] && [ -d "/proc/$pid" ] &&
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = nginx ]; then
            log "stopping the nginx the package started (pid $pid from /run/nginx.pid)"
            as_root kill -QUIT "$pid" || true
            for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
            [ -d "/proc/$pid" ] && as_root kill -TERM "$pid" || true
        fi
    fi
    # The same for a system haproxy (master pid in /run/haproxy.pid; SIGUSR1 = soft stop).
    if [ -r /run/haproxy.pid ]; then
        pid="$(head -1 /run/haproxy.pid 2>/dev/null || true)"
        if [ -n "$pid" ] && [ "$pid" != "$haproxy_pid_before" ] && [ -d "/proc/$pid" ] &&
            [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = haproxy ]; then
            log "stopping the haproxy the package started (pid $pid from /run/haproxy.pid)"
            as_root kill -USR1 "$pid" || true
            for _ in $(seq 50); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
            [ -d "/proc/$pid" ] && as_root kill -TERM "$pid" || true
        fi
    fi
    log "apt: done in $((SECONDS - t0)) s"
fi

# ---- Python venv with gunicorn + flup + supervisor + uvicorn + granian + hypercorn -------------------
# has_versions PYTHON name==version...: every package installed at exactly that version.
has_versions() {
    local py="$1"
    shift
    [ -x "$py" ] && "$py" - "$@" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if all(version(n) == v for n, v in (a.split("==") for a in sys.argv[1:])) else 1)
EOF
}

venv_ok() {
    has_versions "$VENV/bin/python" "gunicorn==$GUNICORN_VERSION" "flup==$FLUP_VERSION" \
        "supervisor==$SUPERVISOR_VERSION" "uvicorn==$UVICORN_VERSION" "h11==$H11_VERSION" "wsproto==$WSPROTO_VERSION" \
        "uvicorn-worker==$UVICORN_WORKER_VERSION" "granian==$GRANIAN_VERSION" "hypercorn==$HYPERCORN_VERSION" &&
        [ -x "$VENV/bin/supervisord" ] && [ -x "$VENV/bin/supervisorctl" ] && [ -x "$VENV/bin/uvicorn" ] &&
        [ -x "$VENV/bin/granian" ] && [ -x "$VENV/bin/hypercorn" ]
}

if ! venv_ok; then
    t0=$SECONDS
    if [ ! -x "$VENV/bin/python" ]; then
        log "venv: creating $VENV"
        "$SYS_PYTHON" -m venv "$VENV"
    fi
    log "venv: pip install gunicorn==$GUNICORN_VERSION flup==$FLUP_VERSION supervisor==$SUPERVISOR_VERSION uvicorn==$UVICORN_VERSION h11==$H11_VERSION wsproto==$WSPROTO_VERSION uvicorn-worker==$UVICORN_WORKER_VERSION granian==$GRANIAN_VERSION hypercorn==$HYPERCORN_VERSION"
    PIP_NO_INPUT=1 "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "gunicorn==$GUNICORN_VERSION" "flup==$FLUP_VERSION" "supervisor==$SUPERVISOR_VERSION" \
        "uvicorn==$UVICORN_VERSION" "h11==$H11_VERSION" "wsproto==$WSPROTO_VERSION" \
        "uvicorn-worker==$UVICORN_WORKER_VERSION" "granian==$GRANIAN_VERSION" "hypercorn==$HYPERCORN_VERSION" </dev/null
    venv_ok || { log "venv: gunicorn/flup/supervisor/uvicorn/uvicorn-worker/granian/hypercorn not installed after pip"; exit 1; }
    log "venv: done in $((SECONDS - t0)) s"
fi

# ---- one venv per other pinned server version: <venv>-<package>-<version> -------------
# pinned_venv PACKAGE PROGRAM VERSION [MORE PINS...]
pinned_venv() {
    local package=$1 program=$2 v=$3
    shift 3
    local dir="$VENV-$package-$v"
    if ! { has_versions "$dir/bin/python" "$package==$v" "$@" && [ -x "$dir/bin/$program" ]; }; then
        t0=$SECONDS
        [ -x "$dir/bin/python" ] || { log "venv: creating $dir"; "$SYS_PYTHON" -m venv "$dir"; }
        log "venv $dir: pip install $package==$v $*"
        PIP_NO_INPUT=1 "$dir/bin/python" -m pip install -q --disable-pip-version-check \
            "$package==$v" "$@" </dev/null
        has_versions "$dir/bin/python" "$package==$v" || { log "venv $dir: $package $v not installed after pip"; exit 1; }
        log "venv $dir: done in $((SECONDS - t0)) s"
    fi
}
for v in "${UVICORN_OTHER_VERSIONS[@]}"; do pinned_venv uvicorn uvicorn "$v" "h11==$H11_VERSION"; done
for v in "${GUNICORN_OTHER_VERSIONS[@]}"; do pinned_venv gunicorn gunicorn "$v"; done

# ---- maturin, for the wheel test (tests/wheel.rs), in a venv of its own ------------
BUILD_VENV="${ZDT_BUILD_VENV:-$REPO/.venv-build}"
MATURIN_VERSION=1.16.0
if ! [ "$("$BUILD_VENV/bin/maturin" --version 2>/dev/null)" = "maturin $MATURIN_VERSION" ]; then
    t0=$SECONDS
    [ -x "$BUILD_VENV/bin/python" ] || "$SYS_PYTHON" -m venv "$BUILD_VENV"
    log "build venv: pip install maturin==$MATURIN_VERSION"
    PIP_NO_INPUT=1 "$BUILD_VENV/bin/python" -m pip install -q --disable-pip-version-check \
        "maturin==$MATURIN_VERSION" </dev/null
    log "build venv: done in $((SECONDS - t0)) s"
fi

# ---- one line per component -------------------------------------------------
pkgver() { dpkg-query -W -f='${Version}' "$1"; }
echo "nginx $(nginx -v 2>&1 | sed 's|.*nginx/||') (deb $(pkgver nginx))"
echo "haproxy $(/usr/sbin/haproxy -v | sed -n 's/^HAProxy version \([^ ]*\).*/\1/p') (deb $(pkgver haproxy))"
echo "wrk $(pkgver wrk)"
echo "ab $(ab -V | sed -n 's/.*Version \([0-9.]*\).*/\1/p' | head -1) (apache2-utils $(pkgver apache2-utils))"
echo "uwsgi $(uwsgi --version) (uwsgi-core $(pkgver uwsgi-core), uwsgi-plugin-python3 $(pkgver uwsgi-plugin-python3))"
echo "python $("$VENV/bin/python" -c 'import platform; print(platform.python_version())') (venv $VENV)"
echo "gunicorn $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("gunicorn"))')"
echo "flup $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("flup"))')"
echo "$("$BUILD_VENV/bin/maturin" --version) (venv $BUILD_VENV)"
echo "supervisor $("$VENV/bin/supervisord" --version)"
echo "uvicorn $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("uvicorn"), "(h11", version("h11") + ")")')"
echo "granian $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("granian"))')"
echo "hypercorn $("$VENV/bin/python" -c 'from importlib.metadata import version; print(version("hypercorn"))')"
for v in "${UVICORN_OTHER_VERSIONS[@]}"; do
    echo "uvicorn $("$VENV-uvicorn-$v/bin/python" -c 'from importlib.metadata import version; print(version("uvicorn"))') (venv $VENV-uvicorn-$v)"
done
for v in "${GUNICORN_OTHER_VERSIONS[@]}"; do
    echo "gunicorn $("$VENV-gunicorn-$v/bin/python" -c 'from importlib.metadata import version; print(version("gunicorn"))') (venv $VENV-gunicorn-$v)"
done
echo "chromium $(pkgver chromium)"
echo "xmllint (libxml2-utils $(pkgver libxml2-utils))"
