#!/usr/bin/env bash
# https (and HTTP/2, where this build of zdt-check has it) against oha, side by side
# in one run: the same nginx, the same connections and duration, the tools
# alternating round by round. For each case: requests/s and CPU per request of
# each tool (user + system of the whole process, /usr/bin/time), and the ratios
# zdt-check / oha. zdt-check classifies every request and verifies the certificate
# against the run's CA; oha is given the same CA when it takes `--cacert`, else
# `--insecure` (the table says which).
#
#   benches/compare-oha-tls.sh [CONNECTIONS=32] [DURATION=5s] [ROUNDS=3]
#
# Cases (closed loop unless a rate is given):
#   h1-keepalive   https, HTTP/1.1, kept connections
#   h1-fresh       https, HTTP/1.1, a new connection (a handshake) per request
#   h1-rate-2000   https, HTTP/1.1, kept connections, open loop at 2000 req/s
#   h2             https, ALPN h2, one connection per `CONNECTIONS`, streams as each tool does
#   h2-rate-2000   the same, open loop at 2000 req/s
# The h2 cases run only if `zdt-check load --help` lists `--protocol`.
#
# Needs nginx (with http2), openssl and oha (cargo install oha --locked; looked for
# on PATH and in ~/.cargo/bin). Build first with `cargo build --release`; ZDT_BIN
# names another build. Servers run on loopback and are stopped by PID at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
C=${1:-32}; D=${2:-5s}; ROUNDS=${3:-3}
BIN=${ZDT_BIN:-target/release/zdt-check}
export PATH="$PATH:$HOME/.cargo/bin"
[ -x "$BIN" ] || cargo build --release -q
for t in nginx openssl oha; do
    command -v "$t" >/dev/null || { echo "$t not installed (oha: cargo install oha --locked)" >&2; exit 2; }
done

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# A CA and a certificate for localhost, for this run only.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=bench-ca -keyout "$WORK/ca.key" -out "$WORK/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
    -keyout "$WORK/srv.key" -out "$WORK/srv.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\n' > "$WORK/ext"
openssl x509 -req -in "$WORK/srv.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" -CAcreateserial \
    -days 1 -extfile "$WORK/ext" -out "$WORK/srv.pem" 2>/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); P2=$(free_port)
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
  http2_max_requests 1000000;
  ssl_certificate "$WORK/srv.pem";
  ssl_certificate_key "$WORK/srv.key";
  server { listen 127.0.0.1:$P1 ssl; location / { return 200 "ok\n"; } }
  server { listen 127.0.0.1:$P2 ssl http2; location / { return 200 "ok\n"; } }
}
CONF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 100); do
    curl -s --cacert "$WORK/ca.pem" -o /dev/null "https://localhost:$P2/" 2>/dev/null && break
    sleep 0.05
done
H1="https://localhost:$P1/"
H2="https://localhost:$P2/"

OHA_TRUST=(--insecure); TRUST=insecure
if oha --help 2>/dev/null | grep -q -- '--cacert'; then OHA_TRUST=(--cacert "$WORK/ca.pem"); TRUST=cacert; fi
HAVE_H2=0; "$BIN" load --help 2>/dev/null | grep -q -- '--protocol' && HAVE_H2=1

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
cpu_of() { awk '{printf "%.3f", $1 + $2}' "$1"; }
per_req_us() { echo "$1 $2" | awk '{printf "%.2f", ($2 > 0) ? 1e6 * $1 / $2 : 0}'; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", ($2 > 0) ? $1/$2 : 0}'; }

# CASE -> "url zdt-args... | oha-args..."
case_args() {
    case "$1" in
        h1-keepalive) ZURL=$H1; ZA=(); OA=() ;;
        h1-fresh) ZURL=$H1; ZA=(--no-keep-alive); OA=(--disable-keepalive) ;;
        h1-rate-2000) ZURL=$H1; ZA=(--rate 2000); OA=(-q 2000 --latency-correction) ;;
        h2) ZURL=$H2; ZA=(--protocol h2); OA=(--http2) ;;
        h2-rate-2000) ZURL=$H2; ZA=(--protocol h2 --rate 2000); OA=(--http2 -q 2000 --latency-correction) ;;
    esac
}
zdt_run() { # -> "cpu_s requests failed"
    /usr/bin/time -f '%U %S' -o "$WORK/t" "$BIN" load "$ZURL" "${ZA[@]}" --ca-file "$WORK/ca.pem" \
        -c "$C" -d "$D" --json "$WORK/z.json" >/dev/null 2>&1 || true
    python3 - "$WORK/z.json" "$(cpu_of "$WORK/t")" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["stats"]
assert s["identity_holds"]
sent = s["scheduled"] - s["never_sent"]
print(sys.argv[2], sent, sent - s["ok"])
PY
}
oha_run() { # -> "cpu_s requests failed"
    /usr/bin/time -f '%U %S' -o "$WORK/t" oha -z "$D" -c "$C" "${OA[@]}" "${OHA_TRUST[@]}" --no-tui \
        --output-format json "$ZURL" > "$WORK/o.json" 2>/dev/null || true
    python3 - "$WORK/o.json" "$(cpu_of "$WORK/t")" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ok = sum(v for k, v in d.get("statusCodeDistribution", {}).items() if k.startswith("2"))
n = sum(d.get("statusCodeDistribution", {}).values()) + sum(d.get("errorDistribution", {}).values())
print(sys.argv[2], n, n - ok)
PY
}

secs=${D%s}
echo "nginx $(nginx -v 2>&1 | sed 's/.*\///'), oha $(oha --version | awk '{print $2}'), oha trust: $TRUST; $C connections, $D per run, median of $ROUNDS rounds"
echo "cpu pressure before: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
printf '%-14s | %9s %9s %6s | %8s %8s %6s | %7s %7s\n' case zdt_rps oha_rps ratio zdt_us oha_us ratio zdt_fail oha_fail
CASES=(h1-keepalive h1-fresh h1-rate-2000)
[ "$HAVE_H2" = 1 ] && CASES+=(h2 h2-rate-2000)
for cs in "${CASES[@]}"; do
    case_args "$cs"
    for f in zr zu zf or ou of; do : > "$WORK/$f"; done
    for _ in $(seq "$ROUNDS"); do
        read -r zc zn zf < <(zdt_run)
        read -r oc on of < <(oha_run)
        echo "$zn $secs" | awk '{print $1/$2}' >> "$WORK/zr"; per_req_us "$zc" "$zn" >> "$WORK/zu"; echo >> "$WORK/zu"; echo "$zf" >> "$WORK/zf"
        echo "$on $secs" | awk '{print $1/$2}' >> "$WORK/or"; per_req_us "$oc" "$on" >> "$WORK/ou"; echo >> "$WORK/ou"; echo "$of" >> "$WORK/of"
    done
    zr=$(median < "$WORK/zr"); orr=$(median < "$WORK/or"); zu=$(median < "$WORK/zu"); ou=$(median < "$WORK/ou")
    printf '%-14s | %9.0f %9.0f %6s | %8s %8s %6s | %7s %7s\n' "$cs" "$zr" "$orr" "$(ratio "$zr" "$orr")" \
        "$zu" "$ou" "$(ratio "$zu" "$ou")" "$(median < "$WORK/zf")" "$(median < "$WORK/of")"
done
echo "cpu pressure after:  $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
echo "rps = requests sent / duration; us = CPU microseconds per request; fail = requests not answered 2xx (median);"
echo "ratio = zdt-check / oha"
[ "$HAVE_H2" = 1 ] || echo "h2 cases skipped: this build of zdt-check has no --protocol"
