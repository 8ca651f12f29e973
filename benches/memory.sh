#!/usr/bin/env bash
# Memory: peak RSS and JSON report size of `zdt-check load` in open loop against
# nginx `return 200`, for runs of different lengths at the same rate. Neither may
# grow with duration: cold windows keep a summary row only, and long runs get wider
# windows so the timeline stays at most 1200 rows.
#
#   benches/memory.sh RATE DURATION [DURATION...]     e.g. benches/memory.sh 30000 60s 600s
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RATE=${1:?rate}; shift
BIN=target/release/zdt-check
[ -x "$BIN" ] || cargo build --release -q
WORK=$(mktemp -d); NGX=""
cleanup() { [ -n "$NGX" ] && kill "$NGX" 2>/dev/null && wait "$NGX" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$WORK/n"
cat > "$WORK/n/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 1;
pid "$WORK/n/nginx.pid";
error_log "$WORK/n/error.log" warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000;
  client_body_temp_path "$WORK/n/cb"; proxy_temp_path "$WORK/n/p";
  fastcgi_temp_path "$WORK/n/f"; uwsgi_temp_path "$WORK/n/u"; scgi_temp_path "$WORK/n/s";
  server { listen 127.0.0.1:$PORT; location / { return 200 "ok\n"; } }
}
CONF
nginx -p "$WORK/n" -c "$WORK/n/nginx.conf" -e "$WORK/n/error.log" -g 'daemon off;' & NGX=$!
sleep 0.5
printf '%10s %10s %14s %12s %14s %10s\n' duration rate sent_rate peak_rss_MB json_KB failed
for d in "$@"; do
    /usr/bin/time -f '%M' -o "$WORK/rss" "$BIN" load "http://127.0.0.1:$PORT/" --rate "$RATE" -c 64 -d "$d" --json "$WORK/r.json" >/dev/null || true
    python3 - "$WORK/r.json" "$WORK/rss" "$d" "$RATE" <<'PY'
import json, os, sys
s = json.load(open(sys.argv[1]))["runs"][0]["stats"]
rss = int(open(sys.argv[2]).read().split()[-1]) / 1024
print("%10s %10s %14.0f %12.1f %14.0f %10d" % (sys.argv[3], sys.argv[4], s["sent_rate"], rss, os.path.getsize(sys.argv[1]) / 1024, s["failed"]))
PY
done
