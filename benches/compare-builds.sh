#!/usr/bin/env bash
# Two builds of zdt-check side by side on the same servers, alternating: requests/s
# and CPU per request (user + system from /usr/bin/time) of `zdt-check load`, closed
# loop, keep-alive, against the built-in fixture (TCP) and nginx `return 200`. For
# "did this change slow the hot path?": build the previous commit into its own
# directory, then
#
#   benches/compare-builds.sh OLD_BIN [NEW_BIN=target/release/zdt-check] [ROUNDS=5] [C=64] [D=5s]
#
# Prints each round, the medians and new/old ratios. The servers run on the same 2
# cores, so only the ratios of one run mean something. Servers are started here
# and stopped by PID at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
OLD=${1:?usage: benches/compare-builds.sh OLD_BIN [NEW_BIN] [ROUNDS] [C] [D]}
NEW=${2:-target/release/zdt-check}
ROUNDS=${3:-5}; C=${4:-64}; D=${5:-5s}
for b in "$OLD" "$NEW"; do [ -x "$b" ] || { echo "not an executable: $b" >&2; exit 2; }; done
command -v nginx >/dev/null || { echo "nginx not installed" >&2; exit 2; }

WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT

. benches/bench-servers.sh
start_fixture "$NEW"
start_nginx

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# "requests/s µs-CPU-per-request" of one closed-loop run of build $1 against $2.
one() {
    /usr/bin/time -f '%U %S' -o "$WORK/t" "$1" load "$2" -c "$C" -d "$D" --json "$WORK/r.json" >/dev/null || true
    python3 - "$WORK/r.json" "$WORK/t" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))["runs"][0]["stats"]
assert s["identity_holds"], "accounting identity broken"
u, k = map(float, open(sys.argv[2]).read().split()[-2:])
n = max(s["scheduled"], 1)
print(round(s["sent_rate"]), round((u + k) / n * 1e6, 2))
PY
}

echo "cpu pressure before: $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
printf '%-8s %-6s %12s %12s %10s %10s %8s %8s\n' server round 'old req/s' 'new req/s' 'old us/req' 'new us/req' 'rps n/o' 'cpu n/o'
for name in fixture nginx; do
    url=$FIXTURE; [ "$name" = nginx ] && url=$NGINX
    : > "$WORK/or"; : > "$WORK/nr"; : > "$WORK/oc"; : > "$WORK/nc"
    for r in $(seq "$ROUNDS"); do
        read -r orps ocpu < <(one "$OLD" "$url")
        read -r nrps ncpu < <(one "$NEW" "$url")
        echo "$orps" >> "$WORK/or"; echo "$nrps" >> "$WORK/nr"; echo "$ocpu" >> "$WORK/oc"; echo "$ncpu" >> "$WORK/nc"
        printf '%-8s %-6s %12s %12s %10s %10s %8.2f %8.2f\n' "$name" "$r" "$orps" "$nrps" "$ocpu" "$ncpu" \
            "$(echo "$nrps $orps" | awk '{print $1/$2}')" "$(echo "$ncpu $ocpu" | awk '{print $1/$2}')"
    done
    a=$(median < "$WORK/or"); b=$(median < "$WORK/nr"); c=$(median < "$WORK/oc"); d=$(median < "$WORK/nc")
    printf '%-8s %-6s %12s %12s %10s %10s %8.2f %8.2f\n' "$name" median "$a" "$b" "$c" "$d" \
        "$(echo "$b $a" | awk '{print $1/$2}')" "$(echo "$d $c" | awk '{print $1/$2}')"
done
echo "cpu pressure after:  $(head -1 /proc/pressure/cpu 2>/dev/null || echo n/a)"
