#!/usr/bin/env bash
# Side by side: `zdt-check load` (closed loop, classifying every request) vs wrk, ab
# and oha (if installed: cargo install oha), same server, same connections, same
# duration, alternating runs; prints requests/s of each, the median of each, and
# the ratios. Also peak RSS of a zdt-check run, and open loop: achieved rate vs
# target and send lateness, up to 80% of zdt-check's closed-loop median on nginx.
# The host's CPU pressure (/proc/pressure/cpu) is printed before and after: on a
# shared machine it says how far to trust the numbers.
#
# Last, the load generator's own cost (what it takes from the app on a small
# machine): open loop at 1000, 5000 and 20000 req/s against nginx, zdt-check's CPU
# seconds (user + system, /usr/bin/time) and CPU per request next to oha's
# (`oha -q RATE --latency-correction`), the same for both tools closed loop (with
# wrk), and system calls per request from `strace -f -c` in a separate short run.
#
#   benches/compare-wrk.sh [--install-oha] [--cpu-only | --engines] [CONNECTIONS=64] [DURATION=5s] [ROUNDS=3]
#
# ZDT_BIN=path compares another build of zdt-check (e.g. the previous commit's) against the
# same tools; oha is looked for on PATH and in ~/.cargo/bin.
#
# --install-oha: `cargo install oha --locked` when oha is missing (about 5 min);
#   without it and without oha the oha columns say "n/a".
# --cpu-only: only the CPU table (skips the requests/s and open-loop rate tables).
# --engines: only the engines table (issue 22): open loop at 1000, 5000, 20000 and
#   50000 req/s against nginx, zdt-check's epoll engine, its io_uring engine and oha
#   alternating in each round; CPU per request, system calls per request, achieved
#   rate and send lateness p50/p99 of each, and the ratios to oha.
#
# Servers: the built-in fixture (TCP) and nginx serving `return 200` (both on
# loopback, started here, stopped by PID at the end). Needs wrk (apt install wrk),
# strace (apt install strace) and nginx; build first with `cargo build --release`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
INSTALL_OHA=0; CPU_ONLY=0; ENGINES=0
while [ $# -gt 0 ]; do
    case "$1" in
        --install-oha) INSTALL_OHA=1; shift ;;
        --cpu-only) CPU_ONLY=1; shift ;;
        --engines) ENGINES=1; CPU_ONLY=1; shift ;;
        --) shift; break ;;
        -*) echo "unknown flag $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
C=${1:-64}; D=${2:-5s}; ROUNDS=${3:-3}
# The engine zdt_cpu and strace_per_req run (the --engines table sets it per run).
ENGINE=epoll
BIN=${ZDT_BIN:-target/release/zdt-check}
# cargo install puts oha here, often not on PATH.
export PATH="$PATH:$HOME/.cargo/bin"
[ -x "$BIN" ] || cargo build --release -q
command -v wrk >/dev/null || { echo "wrk not installed: apt-get install wrk" >&2; exit 2; }
if ! command -v oha >/dev/null && [ "$INSTALL_OHA" = 1 ]; then
    echo "installing oha (cargo install oha --locked, a few minutes)..." >&2
    cargo install oha --locked -q || echo "oha install failed: its columns will say n/a" >&2
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

# The built-in fixture and nginx `return 200`.
. benches/bench-servers.sh
start_fixture "$BIN"
start_nginx

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
if [ "$CPU_ONLY" = 0 ]; then
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
fi

# The load generator's own CPU, open loop at fixed rates and closed loop, side by
# side with oha (and wrk, closed loop only: wrk has no open loop), against nginx.
# CPU is user + system of the whole process from /usr/bin/time (the same measure
# for every tool); zdt-check's own report of it (footprint.share_of_core, load
# phase only) is printed beside it as a cross-check.
cpu_of() { awk '{printf "%.3f", $1 + $2}' "$1"; }
zdt_cpu() { # RATE|closed -> "cpu_s requests share_reported sent/target lateness_p50_us lateness_p99_us"
    local rate_args=(); [ "$1" != closed ] && rate_args=(--rate "$1")
    /usr/bin/time -f '%U %S' -o "$WORK/t" "$BIN" load "$NGINX" "${rate_args[@]}" --engine "$ENGINE" -c "$C" -d "$D" --json "$WORK/c.json" >/dev/null 2>&1 || true
    python3 - "$WORK/c.json" "$(cpu_of "$WORK/t")" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["runs"][0]
s = r["stats"]
rate = 0 if sys.argv[3] == "closed" else float(sys.argv[3])
l = s["lateness"]
print(sys.argv[2], s["scheduled"] - s["never_sent"], "%.2f" % r["footprint"]["share_of_core"],
      "%.4f" % (s["sent_rate"] / rate if rate else 0), "%.0f" % (l["p50"] * 1000), "%.0f" % (l["p99"] * 1000))
PY
}
oha_requests() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(d.get("statusCodeDistribution",{}).values()) + sum(d.get("errorDistribution",{}).values()))' "$1"; }
oha_cpu() { # RATE|closed -> "cpu_s requests"
    local rate_args=(); [ "$1" != closed ] && rate_args=(-q "$1" --latency-correction)
    /usr/bin/time -f '%U %S' -o "$WORK/t" oha -z "$D" -c "$C" "${rate_args[@]}" --no-tui --output-format json "$NGINX" > "$WORK/oha.json" 2>/dev/null || true
    echo "$(cpu_of "$WORK/t") $(oha_requests "$WORK/oha.json")"
}
wrk_cpu() { # closed -> "cpu_s requests"
    /usr/bin/time -f '%U %S' -o "$WORK/t" wrk -t2 -c "$C" -d "$D" "$NGINX" > "$WORK/wrk.txt" 2>/dev/null || true
    echo "$(cpu_of "$WORK/t") $(awk '/requests in/ {print $1}' "$WORK/wrk.txt")"
}
per_req_us() { echo "$1 $2" | awk '{printf "%.2f", ($2 > 0) ? 1e6 * $1 / $2 : 0}'; }
SHORT=2s
strace_per_req() { # TOOL RATE|closed -> syscalls per request (short run under strace -f -c)
    local tool=$1 rate=$2 n calls
    case "$tool" in
        zdt)
            local ra=(); [ "$rate" != closed ] && ra=(--rate "$rate")
            strace -f -c -o "$WORK/st" "$BIN" load "$NGINX" "${ra[@]}" --engine "$ENGINE" -c "$C" -d "$SHORT" --json "$WORK/s.json" >/dev/null 2>&1 || true
            n=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["runs"][0]["stats"]; print(s["scheduled"] - s["never_sent"])' "$WORK/s.json") ;;
        oha)
            local ra=(); [ "$rate" != closed ] && ra=(-q "$rate" --latency-correction)
            strace -f -c -o "$WORK/st" oha -z "$SHORT" -c "$C" "${ra[@]}" --no-tui --output-format json "$NGINX" > "$WORK/so.json" 2>/dev/null || true
            n=$(oha_requests "$WORK/so.json") ;;
        wrk)
            strace -f -c -o "$WORK/st" wrk -t2 -c "$C" -d "$SHORT" "$NGINX" > "$WORK/sw.txt" 2>/dev/null || true
            n=$(awk '/requests in/ {print $1}' "$WORK/sw.txt") ;;
    esac
    calls=$(awk '$NF == "total" {print $4}' "$WORK/st")
    echo "${calls:-0} ${n:-0}" | awk '{printf "%.1f", ($2 > 0) ? $1 / $2 : 0}'
}
HAVE_OHA=0; command -v oha >/dev/null && HAVE_OHA=1
HAVE_STRACE=0; command -v strace >/dev/null && HAVE_STRACE=1

if [ "$ENGINES" = 1 ]; then
    [ "$HAVE_OHA" = 1 ] || { echo "--engines needs oha (cargo install oha --locked, or --install-oha)" >&2; exit 2; }
    [ "$HAVE_STRACE" = 1 ] || { echo "--engines needs strace" >&2; exit 2; }
    echo "engines against nginx, open loop, $C connections, $D per run, median of $ROUNDS rounds,"
    echo "epoll, io_uring and oha alternating in each round; syscalls from a separate $SHORT run under strace -f -c"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure before: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
    printf '%-7s %-9s | %8s %8s %7s %6s | %7s %6s | %8s %11s\n' \
        rate engine cpu_s reqs us/req ÷oha sc/req ÷oha sent/tg 'late50/99'
    for rate in 1000 5000 20000 50000; do
        for t in epoll io_uring oha; do for f in c r u t l m; do : > "$WORK/$t.$f"; done; done
        for _ in $(seq "$ROUNDS"); do
            for t in epoll io_uring oha; do
                if [ "$t" = oha ]; then
                    read -r c n < <(oha_cpu "$rate"); tg=-; l=-; m=-
                else
                    ENGINE=$t
                    read -r c n _ tg l m < <(zdt_cpu "$rate")
                fi
                echo "$c" >> "$WORK/$t.c"; echo "${n:-0}" >> "$WORK/$t.r"; per_req_us "$c" "${n:-0}" >> "$WORK/$t.u"; echo >> "$WORK/$t.u"
                echo "$tg" >> "$WORK/$t.t"; echo "$l" >> "$WORK/$t.l"; echo "$m" >> "$WORK/$t.m"
            done
        done
        ou=$(median < "$WORK/oha.u")
        ENGINE=epoll; osc=$(strace_per_req oha "$rate")
        for t in epoll io_uring oha; do
            u=$(median < "$WORK/$t.u")
            if [ "$t" = oha ]; then sc=$osc; tg=-; late=-
            else ENGINE=$t; sc=$(strace_per_req zdt "$rate"); tg=$(median < "$WORK/$t.t"); late="$(median < "$WORK/$t.l")/$(median < "$WORK/$t.m")"; fi
            printf '%-7s %-9s | %8s %8s %7s %6.2f | %7s %6.2f | %8s %11s\n' "$rate" "$t" "$(median < "$WORK/$t.c")" \
                "$(median < "$WORK/$t.r")" "$u" "$(ratio "$u" "$ou")" "$sc" "$(ratio "$sc" "$osc")" "$tg" "$late"
        done
    done
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); cpu pressure after:  $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
    echo "us/req = CPU (user + system) us per request sent; sc/req = system calls per request; ÷oha = ratio to oha;"
    echo "sent/tg = achieved rate / target; late50/99 = send lateness p50/p99 in us (zdt-check's own measure)"
    exit 0
fi

echo
echo "load generator CPU against nginx, $C connections, $D per run (median of $ROUNDS, tools alternating);"
echo "cpu = user + system seconds of the whole process; us/req = CPU microseconds per request;"
echo "syscalls/req from a separate $SHORT run under strace -f -c (strace slows the tool: counts, not rates)"
[ "$HAVE_OHA" = 1 ] || echo "oha not installed (cargo install oha --locked, or rerun with --install-oha): its columns say n/a"
[ "$HAVE_STRACE" = 1 ] || echo "strace not installed (apt-get install strace): syscall columns say n/a"
echo "cpu pressure before: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
printf '%-7s %-5s | %7s %8s %7s %7s %7s %11s | %7s %8s %7s | %6s | %7s %7s %6s\n' \
    rate other zdt_cpu zdt_reqs zdt_rep us/req sent/tg 'late50/99' oth_cpu oth_reqs us/req ratio zdt_sc oth_sc ratio
for pair in 1000:oha 5000:oha 20000:oha closed:wrk closed:oha; do
    rate=${pair%:*}; other=${pair#*:}
    [ "$other" = oha ] && [ "$HAVE_OHA" = 0 ] && other=n/a
    [ "$rate" = closed ] && [ "$other" = n/a ] && continue
    for f in zc zr zs zu zt zl zm oc or ou; do : > "$WORK/$f"; done
    for _ in $(seq "$ROUNDS"); do
        read -r zc zr zs zt zl zm < <(zdt_cpu "$rate")
        oc=0; orq=0
        case "$other" in
            oha) read -r oc orq < <(oha_cpu "$rate") ;;
            wrk) read -r oc orq < <(wrk_cpu) ;;
        esac
        echo "$zc" >> "$WORK/zc"; echo "$zr" >> "$WORK/zr"; echo "$zs" >> "$WORK/zs"
        echo "$zt" >> "$WORK/zt"; echo "$zl" >> "$WORK/zl"; echo "$zm" >> "$WORK/zm"
        echo "$oc" >> "$WORK/oc"; echo "${orq:-0}" >> "$WORK/or"
        per_req_us "$zc" "$zr" >> "$WORK/zu"; echo >> "$WORK/zu"
        per_req_us "$oc" "${orq:-0}" >> "$WORK/ou"; echo >> "$WORK/ou"
    done
    zcm=$(median < "$WORK/zc"); zrm=$(median < "$WORK/zr"); zsm=$(median < "$WORK/zs"); zu=$(median < "$WORK/zu")
    ztm=$(median < "$WORK/zt"); zlm=$(median < "$WORK/zl"); zmm=$(median < "$WORK/zm")
    if [ "$rate" = closed ]; then ztm=-; late=-; else late="$zlm/$zmm"; fi
    ocm=$(median < "$WORK/oc"); orm=$(median < "$WORK/or"); ou=$(median < "$WORK/ou")
    zsc=n/a; osc=n/a; scr=n/a; r=n/a
    if [ "$HAVE_STRACE" = 1 ]; then
        zsc=$(strace_per_req zdt "$rate")
        if [ "$other" != n/a ]; then
            osc=$(strace_per_req "$other" "$rate"); scr=$(printf '%.2f' "$(ratio "$zsc" "$osc")")
        fi
    fi
    if [ "$other" = n/a ]; then ocm=n/a; orm=n/a; ou=n/a; else r=$(printf '%.2f' "$(ratio "$zu" "$ou")"); fi
    printf '%-7s %-5s | %7s %8s %6s%% %7s %7s %11s | %7s %8s %7s | %6s | %7s %7s %6s\n' "$rate" "$other" \
        "$zcm" "$zrm" "$(awk -v s="$zsm" 'BEGIN {printf "%.0f", 100 * s}')" "$zu" "$ztm" "$late" "$ocm" "$orm" "$ou" "$r" "$zsc" "$osc" "$scr"
done
echo "cpu pressure after:  $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
echo "cpu in s, reqs = requests sent, us/req = CPU us per request, zdt_rep = share of one core in zdt-check's own"
echo "footprint (load phase only), sent/tg = zdt-check's achieved rate / target, late50/99 = its send lateness"
echo "p50/p99 in us (medians over rounds), *_sc = syscalls per request; ratio = zdt-check / the other tool"
