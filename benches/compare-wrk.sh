#!/usr/bin/env bash
# Side by side: `zdt-check load` (closed loop, classifying every request) vs wrk, ab
# and oha (if installed: cargo install oha), same server, same connections, same
# duration, alternating runs; prints requests/s of each, the median of each, and
# the ratios. Also peak RSS of a zdt-check run, and open loop: achieved rate vs
# target and send lateness, up to 80% of zdt-check's closed-loop median on nginx.
# The host's CPU pressure (/proc/pressure/cpu) is printed before and after: on a
# shared machine it says how far to trust the numbers.
#
#   benches/compare-wrk.sh [CONNECTIONS=64] [DURATION=5s] [ROUNDS=3]
#
# Servers: the built-in fixture (TCP) and nginx serving `return 200` (both on
# loopback, started here, stopped by PID at the end). Needs wrk (apt install wrk)
# and nginx; build first with `cargo build --release`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
C=${1:-64}; D=${2:-5s}; ROUNDS=${3:-3}
BIN=target/release/zdt-check
[ -x "$BIN" ] || cargo build --release -q
command -v wrk >/dev/null || { echo "wrk not installed: apt-get install wrk" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The built-in fixture.
"$BIN" fixture --listen tcp:127.0.0.1:0 --ready-file "$WORK/fixture.addr" >/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$WORK/fixture.addr" ] && break; sleep 0.05; done
FIXTURE="http://$(sed 's/^tcp://' "$WORK/fixture.addr")/"

# nginx `return 200` in a private prefix.
NGX_PORT=$(free_port)
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 1;
pid "$WORK/nginx/nginx.pid";
error_log "$WORK/nginx/error.log" warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path "$WORK/nginx/cb"; proxy_temp_path "$WORK/nginx/p";
  fastcgi_temp_path "$WORK/nginx/f"; uwsgi_temp_path "$WORK/nginx/u"; scgi_temp_path "$WORK/nginx/s";
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$NGX_PORT; location / { return 200 "ok\n"; } }
}
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$NGX_PORT/" 2>/dev/null && break; python3 -c 'import time; time.sleep(0.05)'; done
NGINX="http://127.0.0.1:$NGX_PORT/"

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

zdt_rps() {
    "$BIN" load "$1" -c "$C" -d "$D" --json "$WORK/z.json" >/dev/null || true
    python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["runs"][0]["stats"]; print(round(s["sent_rate"])); assert s["identity_holds"]' "$WORK/z.json"
}
wrk_rps() {
    wrk -t2 -c "$C" -d "$D" "$1" | awk '/Requests\/sec/ {print int($2)}'
}
oha_rps() {
    oha -z "$D" -c "$C" --no-tui --output-format json "$1" 2>/dev/null |
        python3 -c 'import json,sys; print(int(json.load(sys.stdin)["summary"]["requestsPerSec"]))'
}
ab_rps() {
    # ab is single-threaded; -k keep-alive, time-limited like the others.
    secs=${D%s}
    ab -q -k -c "$C" -t "$secs" -n 100000000 "$1" 2>/dev/null | awk '/Requests per second/ {print int($4)}'
}

HAVE_AB=0; command -v ab >/dev/null && HAVE_AB=1
HAVE_OHA=0; command -v oha >/dev/null && HAVE_OHA=1
ratio() { echo "$1 $2" | awk '{print ($2 > 0) ? $1/$2 : 0}'; }
echo "cpu pressure before: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
printf '%-10s %-8s %10s %10s %10s %10s %8s %8s %8s\n' server round zdt-check wrk ab oha zdt/wrk zdt/ab zdt/oha
for name in fixture nginx; do
    url=$FIXTURE; [ "$name" = nginx ] && url=$NGINX
    : > "$WORK/z"; : > "$WORK/w"; : > "$WORK/a"; : > "$WORK/o"
    for r in $(seq "$ROUNDS"); do
        z=$(zdt_rps "$url"); w=$(wrk_rps "$url"); a=0; o=0
        [ "$HAVE_AB" = 1 ] && a=$(ab_rps "$url")
        [ "$HAVE_OHA" = 1 ] && o=$(oha_rps "$url")
        echo "$z" >> "$WORK/z"; echo "$w" >> "$WORK/w"; echo "${a:-0}" >> "$WORK/a"; echo "${o:-0}" >> "$WORK/o"
        printf '%-10s %-8s %10s %10s %10s %10s %8.2f %8.2f %8.2f\n' "$name" "$r" "$z" "$w" "${a:-0}" "${o:-0}" \
            "$(ratio "$z" "$w")" "$(ratio "$z" "${a:-0}")" "$(ratio "$z" "${o:-0}")"
    done
    zm=$(median < "$WORK/z"); wm=$(median < "$WORK/w"); am=$(median < "$WORK/a"); om=$(median < "$WORK/o")
    printf '%-10s %-8s %10s %10s %10s %10s %8.2f %8.2f %8.2f\n' "$name" median "$zm" "$wm" "$am" "$om" \
        "$(ratio "$zm" "$wm")" "$(ratio "$zm" "$am")" "$(ratio "$zm" "$om")"
    [ "$name" = nginx ] && NGINX_MAX=$zm
done
echo "cpu pressure after:  $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"

echo
echo "peak RSS of zdt-check load (closed loop, $C connections, $D, nginx):"
/usr/bin/time -f '  %M KB max resident' "$BIN" load "$NGINX" -c "$C" -d "$D" >/dev/null 2> "$WORK/time" || true
tail -1 "$WORK/time"

echo
echo "open loop against nginx: achieved vs target (closed-loop median $NGINX_MAX req/s);"
echo "goal: sent within 1% of the target and send lateness p99 < 200 us"
printf '%10s %7s %10s %8s %12s %12s %12s %6s\n' target of_max sent ratio 'lateness p50' 'lateness p99' late_sends goal
for rate in 1000 10000 30000 $(awk -v m="$NGINX_MAX" 'BEGIN {print int(m*0.5), int(m*0.8)}'); do
    "$BIN" load "$NGINX" --rate "$rate" -c "$C" -d "$D" --json "$WORK/o.json" >/dev/null || true
    python3 - "$WORK/o.json" "$rate" "$NGINX_MAX" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["stats"]
t, m = float(sys.argv[2]), float(sys.argv[3])
r, l = s["sent_rate"] / t, s["lateness"]
ok = abs(r - 1) <= 0.01 and l["p99"] < 0.2
print("%10d %6.0f%% %10.0f %8.4f %10.0fus %10.0fus %12d %6s" % (t, 100 * t / m, s["sent_rate"], r, l["p50"] * 1000, l["p99"] * 1000, s["late_sends"], "yes" if ok else "NO"))
PY
done
